"""What the model server knows of a model: its context window, and how many tokens a
text is (issue 18).

* The window: ``--context-window model=tokens`` when the operator names the model; else
  what the model server says (vLLM and SGLang: ``max_model_len`` of the model in
  ``GET /v1/models``; llama.cpp: ``default_generation_settings.n_ctx`` of ``GET /props``);
  else the setting's bare default; else unknown (None). Asked once per model and kept; a
  model server that could not be asked is asked again after :data:`RETRY_SECONDS`.
* Tokens: the model server's own tokenizer (``POST /tokenize`` at its root, which vLLM,
  SGLang and llama.cpp serve) where it has one, plus :data:`MESSAGE_OVERHEAD` for the
  chat template's markers around a message. Without one, :func:`estimate`: UTF-8 bytes
  / 3, rounded up, plus the overhead: above the real count for English, code and the
  usual multilingual tokenizers (about 4 bytes a token), so a window filled by estimate
  is never overfilled by them.
* Cost: what is learnt of a model is kept for :data:`MODELS` model names at most; counts
  are kept per text (an LRU of :data:`CACHE_SIZE` entries), so an item is
  sent to the tokenizer once, the turn it is new; a turn sends at most
  :data:`CALLS_PER_TURN` texts to the tokenizer, concurrently, and estimates the rest
  (not kept: they are counted properly on a later turn). All of it is awaited I/O: the
  event loop is never blocked.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import orjson

from convostore.upstream.config import UpstreamConfig

MESSAGE_OVERHEAD = 8
BYTES_PER_TOKEN = 3
CACHE_SIZE = 100_000
MODELS = 256  # model names remembered (a client chooses them: the memory stays bounded)
CALLS_PER_TURN = 8
RETRY_SECONDS = 60.0


def estimate(text: str) -> int:
    """Tokens of ``text`` as one chat message, erring high (see the module's docstring)."""
    return -(-len(text.encode("utf-8", "surrogatepass")) // BYTES_PER_TOKEN) + MESSAGE_OVERHEAD


class Tokens:
    """Context windows and token counts of one model server, cached per model."""

    def __init__(self, config: UpstreamConfig, client: Callable[[], httpx.AsyncClient]):
        self.config = config
        self._client = client
        self._windows: OrderedDict[str, tuple[int | None, float]] = OrderedDict()
        self._tokenizer: OrderedDict[str, float] = OrderedDict()  # model → when found missing
        self._counts: OrderedDict[tuple[str, int, int], int] = OrderedDict()
        self._locks: dict[str, asyncio.Lock] = {}
        self.tokenize_calls = 0  # for benchmarks and tests: texts sent to /tokenize

    # -- the window --------------------------------------------------------------------------

    async def window(self, model: str) -> int | None:
        """The context window of ``model`` (the client's name), or None if unknown."""
        named = self.config.context_windows.get(model)
        if named is not None:
            return named
        upstream = self.config.model_for(model)
        known = self._windows.get(upstream)
        if known is None or (known[0] is None and time.monotonic() - known[1] > RETRY_SECONDS):
            lock = self._locks.setdefault(upstream, asyncio.Lock())
            async with lock:
                known = self._windows.get(upstream)
                if known is None or (
                    known[0] is None and time.monotonic() - known[1] > RETRY_SECONDS
                ):
                    known = (await self._discover(upstream), time.monotonic())
                    self._windows[upstream] = known
                    if len(self._windows) > MODELS:
                        forgotten, _ = self._windows.popitem(last=False)
                        self._locks.pop(forgotten, None)
        return known[0] if known[0] is not None else self.config.context_windows.get("")

    async def _discover(self, upstream: str) -> int | None:
        models = await self._get(self.config.url.rstrip("/") + "/models")
        if isinstance(models, dict) and isinstance(models.get("data"), list):
            for entry in models["data"]:
                if isinstance(entry, dict) and entry.get("id") == upstream:
                    size = entry.get("max_model_len")
                    if type(size) is int and size > 0:
                        return size
        props = await self._get(self.config.root_url + "/props")
        if isinstance(props, dict):
            settings = props.get("default_generation_settings")
            size = settings.get("n_ctx") if isinstance(settings, dict) else None
            if type(size) is int and size > 0:
                return size
        return None

    async def _get(self, url: str) -> Any:
        try:
            response = await self._client().get(url)
            if response.status_code != 200:
                return None
            return orjson.loads(response.content)
        except (httpx.HTTPError, orjson.JSONDecodeError):
            return None

    # -- counting ----------------------------------------------------------------------------

    async def count(self, model: str, texts: Sequence[str]) -> list[int]:
        """Tokens of each text as one chat message (its template overhead included)."""
        upstream = self.config.model_for(model)
        out: list[int | None] = []
        missing: list[int] = []
        for index, text in enumerate(texts):
            key = (upstream, hash(text), len(text))
            known = self._counts.get(key)
            if known is not None:
                self._counts.move_to_end(key)
            else:
                missing.append(index)
            out.append(known)
        if missing and self._has_tokenizer(upstream):
            asked = missing[:CALLS_PER_TURN]
            counted = await asyncio.gather(*(self._tokenize(upstream, texts[i]) for i in asked))
            for index, tokens in zip(asked, counted, strict=True):
                if tokens is not None:
                    out[index] = tokens + MESSAGE_OVERHEAD
                    key = (upstream, hash(texts[index]), len(texts[index]))
                    self._keep(key, tokens + MESSAGE_OVERHEAD)
        return [estimate(texts[i]) if n is None else n for i, n in enumerate(out)]

    def _has_tokenizer(self, upstream: str) -> bool:
        missing_since = self._tokenizer.get(upstream)
        return missing_since is None or time.monotonic() - missing_since > RETRY_SECONDS

    def _keep(self, key: tuple[str, int, int], tokens: int) -> None:
        self._counts[key] = tokens
        if len(self._counts) > CACHE_SIZE:
            self._counts.popitem(last=False)

    async def _tokenize(self, upstream: str, text: str) -> int | None:
        # vLLM and SGLang read "prompt", llama.cpp "content"; each ignores the other's key.
        body = {"model": upstream, "prompt": text, "content": text, "add_special_tokens": False}
        self.tokenize_calls += 1
        try:
            response = await self._client().post(
                self.config.root_url + "/tokenize",
                content=orjson.dumps(body),
                headers={"content-type": "application/json"},
            )
        except httpx.HTTPError:
            return None
        if response.status_code in (404, 405, 501):
            self._tokenizer[upstream] = time.monotonic()
            if len(self._tokenizer) > MODELS:
                self._tokenizer.popitem(last=False)
            return None
        try:
            answer = orjson.loads(response.content) if response.status_code == 200 else None
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            return None
        count = answer.get("count")
        if type(count) is int and count >= 0:
            return count
        tokens = answer.get("tokens")
        return len(tokens) if isinstance(tokens, list) else None
