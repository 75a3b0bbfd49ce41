"""What can go wrong talking to the model server (facts, not API errors)."""

from __future__ import annotations


class UpstreamError(Exception):
    """Base of the model server's failures."""


class UpstreamUnreachable(UpstreamError):
    """No connection could be made, or it broke before an answer began."""


class UpstreamTimeout(UpstreamError):
    """The model server took longer than the configured timeout for one wait."""


class UpstreamStreamBroken(UpstreamError):
    """A stream began and then ended or broke before its last chunk."""


class UpstreamRefused(UpstreamError):
    """The model server answered with a non-2xx status.

    ``message``, ``param`` and ``code`` come from its error body when it sent one in the
    OpenAI envelope (or vLLM's older flat form), else a short description of the body.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        retry_after: int | None = None,
    ):
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.retry_after = retry_after
