"""Opt-in (marker ``real_model``): /v1/responses in front of a real model server.

Two ways to run it (otherwise it is skipped):

* ``CONVOSTORE_TEST_UPSTREAM=http://127.0.0.1:11434/v1 CONVOSTORE_TEST_MODEL=qwen2.5:0.5b``:
  any OpenAI-compatible model server you started (Ollama, vLLM, llama.cpp…) with a
  trained model; the test then also checks that the second turn knows the name.
* ``CONVOSTORE_TEST_LLAMA_PYTHON=/path/to/python``: a Python with ``llama-cpp-python[server]``,
  ``gguf`` and ``numpy`` installed (all from PyPI: ``pip install "llama-cpp-python[server]"
  gguf numpy``; llama-cpp-python is built from source, about 15 minutes on two cores).
  The test writes a tiny random-weight llama GGUF (``tiny_gguf.py``) and serves it with
  ``python -m llama_cpp.server``: a real inference engine answering real chat
  completions and SSE chunks, with gibberish text. Statefulness is then checked by the
  token counts the engine reports: the second turn's prompt holds the first turn.

    CONVOSTORE_TEST_LLAMA_PYTHON=/tmp/llvenv/bin/python python -m pytest -m real_model
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from openai import OpenAI

from convostore.api.app import create_app
from convostore.settings import Settings
from convostore.store.sqlite import SQLiteStore
from tests.responses.fake_upstream import serve
from tests.support import free_port, launched

pytestmark = pytest.mark.real_model

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ModelServer:
    url: str
    model: str
    trained: bool  # a real trained model: its answers can be judged


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    given = os.environ.get("CONVOSTORE_TEST_UPSTREAM")
    if given:
        yield ModelServer(given, os.environ.get("CONVOSTORE_TEST_MODEL", "default"), True)
        return
    python = os.environ.get("CONVOSTORE_TEST_LLAMA_PYTHON")
    if not python:
        pytest.skip(
            "no real model server: set CONVOSTORE_TEST_UPSTREAM (a running server) or "
            "CONVOSTORE_TEST_LLAMA_PYTHON (a Python with llama-cpp-python[server], gguf, numpy)"
        )
    folder = tmp_path_factory.mktemp("model")
    model = folder / "tiny.gguf"
    subprocess.run([python, str(HERE / "tiny_gguf.py"), str(model)], check=True, timeout=120)
    port = free_port()
    url = f"http://127.0.0.1:{port}/v1"
    command = [
        python,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--model_alias",
        "tiny",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
    ]
    with launched(
        command, probe=f"{url}/models", timeout=120, ready=lambda r: r.status_code == 200
    ):
        yield ModelServer(url, "tiny", False)


@pytest.fixture
def client(model_server: ModelServer, tmp_path: Path) -> Iterator[OpenAI]:
    app = create_app(
        Settings(upstream=model_server.url, access_log=False, metrics=False),
        SQLiteStore(tmp_path / "real.db"),
    )
    with serve(app) as base:
        sdk = OpenAI(base_url=base + "/v1", api_key="anything", max_retries=0, timeout=300)
        yield sdk
        sdk.close()


def test_two_turns_against_a_real_model(client: OpenAI, model_server: ModelServer) -> None:
    conv = client.conversations.create()
    options = {"model": model_server.model, "conversation": conv.id, "temperature": 0.0}
    first = client.responses.create(input="Hi, I'm Ana.", max_output_tokens=24, **options)  # type: ignore[arg-type]
    assert first.status in ("completed", "incomplete"), first
    assert first.output_text
    second = client.responses.create(input="What's my name?", max_output_tokens=24, **options)  # type: ignore[arg-type]
    assert first.usage is not None and second.usage is not None
    # The second prompt holds the first turn, input and answer.
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens // 2
    if model_server.trained:
        assert "ana" in second.output_text.lower()
    items = list(client.conversations.items.list(conv.id, order="asc"))
    assert [i.role for i in items] == ["user", "assistant", "user", "assistant"]  # type: ignore[union-attr]
    assert items[1].id == first.output[-1].id


def test_a_streamed_turn_against_a_real_model(client: OpenAI, model_server: ModelServer) -> None:
    conv = client.conversations.create(items=[{"role": "user", "content": "My name is Ana."}])
    events = list(
        client.responses.create(
            model=model_server.model,
            conversation=conv.id,
            input="Say my name.",
            max_output_tokens=24,
            temperature=0.0,
            stream=True,
        )
    )
    assert events[0].type == "response.created"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    # The random model never stops by itself: its answers end at max_output_tokens.
    assert events[-1].type in ("response.completed", "response.incomplete")
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == "".join(
        e.delta
        for e in events
        if e.type == "response.output_text.delta"  # type: ignore[union-attr]
    )
    if model_server.trained:
        assert "ana" in final.output_text.lower()
    items = list(client.conversations.items.list(conv.id, order="asc"))
    assert len(items) == 3 and items[2].id == final.output[-1].id


if __name__ == "__main__":  # pragma: no cover
    sys.exit(pytest.main([__file__, "-m", "real_model", "-v"]))
