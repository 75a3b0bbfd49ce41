"""get_item through convostore's connection protocol and app, in process, no socket.

    PYTHONPATH=src python benchmarks/get_item_inprocess.py [LABEL] [REQUESTS]

One ``GuardedHttpToolsProtocol`` (as ``convostore serve`` runs it) over a transport that
only counts writes, serving ``GET /v1/conversations/{id}/items/{item_id}`` from a SQLite
store, one request after the other on one kept-alive connection under uvloop. Prints the
process CPU time per request (best and median of 7 rounds): the Python side of a
request (parser callbacks, the app, the point query, the answer's bytes) without the
socket's system calls or wrk, so a loaded machine moves it much less than hotpaths.py.
Run it on two trees alternately to compare them (docs/benchmarks.md, issue 21).
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from typing import Any

import uvloop
from uvicorn.config import Config
from uvicorn.server import ServerState

from convostore.api.app import ConvoStore
from convostore.api.protocol import GuardedHttpToolsProtocol
from convostore.settings import Settings
from convostore.store.base import ConversationRow, NewConversation, Owner, StoredItem
from convostore.store.sqlite import SQLiteStore

REQUEST = (
    b"GET /v1/conversations/conv_x/items/msg_1 HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n"
    b"User-Agent: wrk\r\nAccept: */*\r\n\r\n"
)
BODY = (
    b'{"id":"msg_1","type":"message","role":"user","status":"completed",'
    b'"content":[{"type":"input_text","text":"hi"}]}'
)


class CountingTransport:
    def __init__(self) -> None:
        self.writes = 0
        self.last = b""
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes += 1
        self.last = data

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def get_extra_info(self, name: str) -> Any:
        return ("127.0.0.1", 1) if name in ("peername", "sockname") else None

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0


async def main(label: str, requests: int, rounds: int = 7) -> None:
    folder = tempfile.mkdtemp()
    store = SQLiteStore(os.path.join(folder, "x.db"))
    with open(os.devnull, "w") as sink:
        app = ConvoStore(Settings(), store, log_stream=sink)
        await app.startup()
        owner = Owner("default", "")
        conversation = ConversationRow("conv_x", 1, b"{}")
        new = NewConversation(conversation, [StoredItem("msg_1", "message", BODY, 0)])
        await store.create_conversation(owner, new)
        loop = asyncio.get_running_loop()
        config = Config(
            app=app,
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            proxy_headers=False,
        )
        config.load()
        state = ServerState()
        state.default_headers = [(b"date", b"Sun, 06 Dec 2026 04:00:00 GMT")]
        protocol = GuardedHttpToolsProtocol(config, state, {}, loop)
        transport = CountingTransport()
        protocol.connection_made(transport)  # type: ignore[arg-type]
        per_request = []
        for _ in range(rounds):
            start = time.process_time()
            for _ in range(requests):
                protocol.data_received(REQUEST)
                cycle = protocol.cycle
                while not cycle.response_complete:
                    await asyncio.sleep(0)
            per_request.append((time.process_time() - start) / requests * 1e6)
        assert transport.writes == rounds * requests, "one write per answer"
        assert transport.last.startswith(b"HTTP/1.1 200 OK\r\n"), transport.last[:80]
        protocol.connection_lost(None)
        await app.shutdown()
    per_request.sort()
    print(
        f"{label}: best {per_request[0]:.2f} us, median {per_request[len(per_request) // 2]:.2f} us "
        f"of CPU per request ({rounds} rounds of {requests})"
    )


if __name__ == "__main__":
    uvloop.run(
        main(
            sys.argv[1] if len(sys.argv) > 1 else "get_item",
            int(sys.argv[2]) if len(sys.argv) > 2 else 20_000,
        )
    )
