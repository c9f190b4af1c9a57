"""Fixtures for the "loopfree everywhere" tests.

``conn_log_server`` is a tiny raw-socket HTTP/1.1 server (keep-alive, one
thread per connection) that records, per TCP connection, the client's peer
port, every request line and every byte received, and whether and when the
peer closed it. Fork tests use it to prove from the server side which
connection served which request, and that a child never wrote to a connection
pooled by its parent.

It answers every request with JSON ``{"conn": N, "peer_port": P, "path": ...}``;
``/slow?delay=S`` sleeps first.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class LoggedConnection:
    conn_id: int
    peer_port: int
    requests: list[str] = field(default_factory=list)
    received: bytearray = field(default_factory=bytearray)
    closed_at: float | None = None


class ConnectionLogServer:
    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.ssl_context = ssl_context
        scheme = "https" if ssl_context else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self._lock = threading.Lock()
        self._connections: list[LoggedConnection] = []
        self._peers: dict[int, socket.socket] = {}
        self._threads: list[threading.Thread] = []
        self._stopping = False
        self._acceptor = threading.Thread(target=self._accept_loop, name="conn-log", daemon=True)

    # -- inspection ------------------------------------------------------

    def connections(self) -> list[LoggedConnection]:
        with self._lock:
            return [
                LoggedConnection(
                    c.conn_id, c.peer_port, list(c.requests), bytearray(c.received), c.closed_at
                )
                for c in self._connections
            ]

    def connection_of(self, conn_id: int) -> LoggedConnection:
        return next(c for c in self.connections() if c.conn_id == conn_id)

    # -- serving ---------------------------------------------------------

    def start(self) -> ConnectionLogServer:
        self._acceptor.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        except OSError:
            pass
        self.sock.close()
        with self._lock:
            peers = list(self._peers.values())
        for peer in peers:
            try:
                peer.shutdown(socket.SHUT_RDWR)  # wakes the blocked recv()
            except OSError:
                pass
        self._acceptor.join(5)
        for thread in self._threads:
            thread.join(5)

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                peer, address = self.sock.accept()
            except OSError:
                return
            with self._lock:
                record = LoggedConnection(len(self._connections) + 1, address[1])
                self._connections.append(record)
                self._peers[record.conn_id] = peer
            thread = threading.Thread(
                target=self._serve, args=(peer, record), name=f"conn-{record.conn_id}", daemon=True
            )
            self._threads.append(thread)
            thread.start()

    def _recv(self, peer: socket.socket, record: LoggedConnection) -> bytes:
        # Over TLS, b"" also means the peer sent close_notify: any closing of
        # the parent's connection by a child shows up as closed_at.
        try:
            data = peer.recv(65536)
        except OSError:
            data = b""
        with self._lock:
            if data:
                record.received += data
            elif record.closed_at is None:
                record.closed_at = time.monotonic()
        return data

    def _serve(self, peer: socket.socket, record: LoggedConnection) -> None:
        try:
            if self.ssl_context is not None:
                try:
                    peer = self.ssl_context.wrap_socket(peer, server_side=True)
                except (OSError, ssl.SSLError):
                    with self._lock:
                        record.closed_at = time.monotonic()
                    return
                with self._lock:
                    self._peers[record.conn_id] = peer
            self._exchange(peer, record)
        finally:
            peer.close()

    def _exchange(self, peer: socket.socket, record: LoggedConnection) -> None:
        buffer = b""
        while True:
            while b"\r\n\r\n" not in buffer:
                data = self._recv(peer, record)
                if not data:
                    return
                buffer += data
            head, buffer = buffer.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            _method, target, _ = lines[0].split(" ", 2)
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            while len(buffer) < length:
                data = self._recv(peer, record)
                if not data:
                    return
                buffer += data
            buffer = buffer[length:]
            with self._lock:
                record.requests.append(target)
            parts = urlsplit(target)
            if parts.path.startswith("/slow"):
                time.sleep(float(parse_qs(parts.query).get("delay", ["1"])[0]))
            body = json.dumps(
                {"conn": record.conn_id, "peer_port": record.peer_port, "path": target}
            ).encode()
            response = (
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                + f"content-length: {len(body)}\r\n\r\n".encode()
                + body
            )
            try:
                peer.sendall(response)
            except OSError:
                return


@pytest.fixture
def conn_log_server() -> Iterator[ConnectionLogServer]:
    server = ConnectionLogServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def tls_conn_log_server(cert_files: tuple[str, str]) -> Iterator[ConnectionLogServer]:
    """The same over TLS (trustme certificate; clients use ``verify=ca_cert_path``)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert_files)
    server = ConnectionLogServer(context).start()
    try:
        yield server
    finally:
        server.stop()
