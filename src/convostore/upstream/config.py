"""The upstream settings as one value: where, with which key, which model names, how long."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import urlsplit

# What an input_image's image_url may begin with to be sent to the model server (issue
# 15, L5): a model server that fetches images must not be made to fetch http://169.254…,
# file:// or an intranet page for a client. --upstream-image-url-prefixes replaces it.
DEFAULT_IMAGE_PREFIXES = ("https:", "data:image/")


@dataclass(frozen=True, slots=True)
class UpstreamConfig:
    """``url`` is the model server's base URL, e.g. ``http://127.0.0.1:8001/v1`` (the
    Chat Completions endpoint is ``url + /chat/completions``); empty means none."""

    url: str = ""
    key: str = field(default="", repr=False)
    model_map: dict[str, str] = field(default_factory=dict)
    timeout_seconds: float = 600.0
    lease_seconds: float = 30.0
    # streamed background responses (issue 17): events kept per response, and how often
    # a client following one from another process reads the database
    stream_events_max: int = 20000
    stream_poll_seconds: float = 0.2
    api: str = "chat"  # or "responses": the model server's own /responses (issue 17)
    # what an input_image's image_url may begin with (issue 15, L5)
    image_url_prefixes: tuple[str, ...] = DEFAULT_IMAGE_PREFIXES
    # the context window per client model name, "" for every other (--context-window)
    context_windows: dict[str, int] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.url)

    @property
    def chat_url(self) -> str:
        return self.url.rstrip("/") + "/chat/completions"

    @property
    def responses_url(self) -> str:
        return self.url.rstrip("/") + "/responses"

    @property
    def root_url(self) -> str:
        """The model server's root: ``url`` without a trailing ``/v1``, where vLLM, SGLang
        and llama.cpp serve ``/tokenize`` and llama.cpp ``/props``."""
        return self.url.rstrip("/").removesuffix("/v1")

    @property
    def shown(self) -> str:
        """The URL without credentials or query, for messages and logs."""
        parts = urlsplit(self.url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}"

    def model_for(self, model: str) -> str:
        return self.model_map.get(model, model)
