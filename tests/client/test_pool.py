"""The connection pool: keep-alive limits, as seen from a server counting connections."""

from __future__ import annotations

import asyncio
import http.server
import threading
import time
from collections.abc import Iterator

import loopfree
import pytest

BIG_BODY = b"x" * (1 << 20)


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
        if self.path == "/":
            time.sleep(0.05)  # long enough for concurrent requests to need their own connection
        body = BIG_BODY if self.path == "/big" else b"ok"
        if self.path == "/empty":
            self.send_response(204)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        if self.path == "/close":
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_HEAD = do_GET

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


# The pool's own rules for plain-HTTP connections (src/direct.rs), as a server sees them.


def test_connection_idle_past_keepalive_expiry_is_not_reused(counting_server) -> None:
    url = _url(counting_server) + "fast"
    with loopfree.Client(limits=loopfree.Limits(keepalive_expiry=0.3)) as client:
        assert client.get(url).text == "ok"
        assert client.get(url).text == "ok"  # within the expiry: reused
        assert counting_server.connections == 1
        time.sleep(0.6)
        assert client.get(url).text == "ok"
    assert counting_server.connections == 2


def test_response_with_connection_close_is_not_reused(counting_server) -> None:
    with loopfree.Client() as client:
        assert client.get(_url(counting_server) + "close").text == "ok"
        assert client.get(_url(counting_server) + "fast").text == "ok"
        assert client.get(_url(counting_server) + "fast").text == "ok"
    assert counting_server.connections == 2


@pytest.mark.parametrize("first", ["HEAD", "GET /empty"])
def test_bodiless_responses_give_their_connection_back(counting_server, first: str) -> None:
    """A HEAD or 204 response has no body to read to its end; its connection is reused."""
    method, _, path = first.partition(" ")
    with loopfree.Client() as client:
        response = client.request(method, _url(counting_server) + path.lstrip("/"))
        assert response.status_code in (200, 204)
        assert response.content == b""
        assert client.get(_url(counting_server) + "fast").text == "ok"
    assert counting_server.connections == 1


def test_streamed_body_closed_early_does_not_reuse_its_connection(counting_server) -> None:
    """Unread bytes are still on that connection: it is closed, never handed to the next request."""
    with loopfree.Client() as client:
        with client.stream("GET", _url(counting_server) + "big") as response:
            first = next(response.iter_bytes())
            assert 0 < len(first) < len(BIG_BODY)
        assert client.get(_url(counting_server) + "big").content == BIG_BODY
        assert client.get(_url(counting_server) + "fast").text == "ok"
    assert counting_server.connections == 2


def test_streamed_body_read_to_the_end_gives_its_connection_back(counting_server) -> None:
    with loopfree.Client() as client:
        with client.stream("GET", _url(counting_server) + "big") as response:
            assert b"".join(response.iter_bytes()) == BIG_BODY
        assert client.get(_url(counting_server) + "fast").text == "ok"
    assert counting_server.connections == 1


def test_connections_to_two_origins_are_pooled_apart(counting_server) -> None:
    """127.0.0.1 and localhost are different origins: one connection each, each reused."""
    port = counting_server.server_address[1]
    with loopfree.Client() as client:
        for _ in range(3):
            assert client.get(f"http://127.0.0.1:{port}/fast").text == "ok"
            assert client.get(f"http://localhost:{port}/fast").text == "ok"
    assert counting_server.connections == 2
