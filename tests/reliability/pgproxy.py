"""A TCP proxy in front of PostgreSQL that can cut a connection at a chosen moment.

``cut_on(tag)`` arms it: the first answer from the server that carries the command tag
``tag`` (``b"COMMIT"``, ``b"INSERT 0 "``…) is not passed on; both sides of that
connection are closed instead. The server has then finished the command (for a COMMIT,
or a single statement that commits by itself: the write is durable) while the client
never hears it: the ambiguous commit of issue 20, made to happen on purpose.
"""

from __future__ import annotations

import contextlib
import socket
import threading


class CuttingProxy:
    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.lock = threading.Lock()
        self.armed: bytes | None = None
        self.cuts = 0
        self.sockets: list[socket.socket] = []
        self.closed = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def cut_on(self, tag: bytes) -> None:
        with self.lock:
            self.armed = tag

    def _accept(self) -> None:
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            with self.lock:
                self.sockets += [client, server]
            threading.Thread(target=self._pump, args=(client, server, False), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, True), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_server: bool) -> None:
        try:
            while True:
                data = source.recv(65536)
                if not data:
                    break
                if from_server:
                    with self.lock:
                        tag = self.armed
                        hit = tag is not None and b"C\x00\x00\x00" in data and tag in data
                        if hit:
                            self.armed = None
                            self.cuts += 1
                    if hit:
                        break
                sink.sendall(data)
        except OSError:
            pass
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.closed = True
        self.listener.close()
        with self.lock:
            for sock in self.sockets:
                with contextlib.suppress(OSError):
                    sock.close()
