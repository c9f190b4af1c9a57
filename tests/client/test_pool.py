"""The connection pool: keep-alive limits, as seen from a server counting connections."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Iterator

import loopfree
import pytest


class CountingServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    lock = threading.Lock()


class KeepAliveHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        super().setup()
        with self.server.lock:  # type: ignore[attr-defined]
            self.server.connections += 1  # type: ignore[attr-defined]

    def do_GET(self) -> None:
        time.sleep(0.05)  # long enough for concurrent requests to need their own connection
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def counting_server() -> Iterator[CountingServer]:
    server = CountingServer(("127.0.0.1", 0), KeepAliveHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _url(server: CountingServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/"


def test_idle_connections_above_the_keepalive_cap_are_reused(counting_server) -> None:
    """
    Regression (connection churn): with 8 concurrent requests and a keep-alive
    cap of 2, hyper's pool closed 6 connections after every round, so each
    round opened new ones. The cap is soft now: idle connections up to
    max_connections stay until keepalive_expiry.
    """
    limits = loopfree.Limits(max_connections=8, max_keepalive_connections=2)

    async def main() -> None:
        async with loopfree.AsyncClient(limits=limits) as client:
            for _ in range(3):
                responses = await asyncio.gather(
                    *(client.get(_url(counting_server)) for _ in range(8))
                )
                assert all(r.text == "ok" for r in responses)

    asyncio.run(main())
    assert counting_server.connections == 8


def test_zero_keepalive_connections_disables_keep_alive(counting_server) -> None:
    limits = loopfree.Limits(max_connections=8, max_keepalive_connections=0)
    with loopfree.Client(limits=limits) as client:
        for _ in range(3):
            assert client.get(_url(counting_server)).text == "ok"
    assert counting_server.connections == 3


def test_sequential_requests_share_one_connection(counting_server) -> None:
    with loopfree.Client() as client:
        for _ in range(5):
            assert client.get(_url(counting_server)).text == "ok"
    assert counting_server.connections == 1
