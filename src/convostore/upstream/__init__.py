"""The model server behind ``POST /v1/responses``: an OpenAI-compatible Chat Completions
endpoint (vLLM, SGLang, Ollama, llama.cpp, LM Studio, OpenAI itself), spoken to over HTTP.

This package knows the wire (URLs, keys, JSON, SSE framing, timeouts) and nothing of
conversations; it reports what went wrong with :class:`UpstreamError` and its subclasses,
which :mod:`convostore.service.responses` maps to the API's errors.
"""

from __future__ import annotations

from convostore.upstream.client import ChatStream, ChatUpstream
from convostore.upstream.config import UpstreamConfig
from convostore.upstream.errors import (
    UpstreamError,
    UpstreamRefused,
    UpstreamStreamBroken,
    UpstreamTimeout,
    UpstreamUnreachable,
)

__all__ = [
    "ChatStream",
    "ChatUpstream",
    "UpstreamConfig",
    "UpstreamError",
    "UpstreamRefused",
    "UpstreamStreamBroken",
    "UpstreamTimeout",
    "UpstreamUnreachable",
]
