"""Timeouts: which *Timeout class is raised, and which bound applies.

Regression tests for two engine changes: large bodies are sliced so that write
progress is visible (before it, a stalled upload raised ReadTimeout, or nothing
at all when the server answered before reading the body); and the connect
timeout is per request, with the read bound on the response head starting once
the connection is ready (before it, the connect timeout was per client and the
head wait was bounded by connect + write + read from the start: a silent server
with `read=0.3` took 5.3 s to raise).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import loopfree
import pytest

BIG_BODY = b"x" * (32 * 1024 * 1024)


def test_stalled_upload_raises_write_timeout(stalled_server: int) -> None:
    url = f"http://127.0.0.1:{stalled_server}/upload"
    with loopfree.Client(timeout=loopfree.Timeout(5.0, write=0.3)) as client:
        started = time.monotonic()
        with pytest.raises(loopfree.WriteTimeout) as info:
            client.put(url, content=BIG_BODY)
        assert time.monotonic() - started < 2.0
        assert info.value.request.url == url


def test_stalled_upload_raises_write_timeout_async(stalled_server: int) -> None:
    url = f"http://127.0.0.1:{stalled_server}/upload"

    async def main() -> None:
        async with loopfree.AsyncClient(timeout=loopfree.Timeout(5.0, write=0.3)) as client:
            with pytest.raises(loopfree.WriteTimeout):
                await client.put(url, content=BIG_BODY)

    started = time.monotonic()
    asyncio.run(main())
    assert time.monotonic() - started < 2.0


def test_unanswered_small_request_raises_read_timeout(stalled_server: int) -> None:
    url = f"http://127.0.0.1:{stalled_server}/small"
    with (
        loopfree.Client(timeout=loopfree.Timeout(0.2)) as client,
        pytest.raises(loopfree.ReadTimeout),
    ):
        client.post(url, content=b"small body")


def test_upload_that_completes_is_not_a_timeout(server) -> None:
    body = b"y" * (4 * 1024 * 1024)
    with loopfree.Client(timeout=loopfree.Timeout(10.0, write=1.0)) as client:
        response = client.post(server.url + "/echo_body", content=body)
    assert response.status_code == 200
    assert response.content == body


# --------------------------------------------------------------------------
# Connect timeouts per request; the read bound starts once connected
# --------------------------------------------------------------------------


def test_per_request_connect_timeout_overrides_the_client_s(full_backlog_port: int) -> None:
    url = f"http://127.0.0.1:{full_backlog_port}/"
    with loopfree.Client(timeout=loopfree.Timeout(5.0, connect=0.2)) as client:
        started = time.monotonic()
        with pytest.raises(loopfree.ConnectTimeout):
            client.get(url, timeout=loopfree.Timeout(5.0, connect=1.0))
        # The request's 1.0 s applied, not the client's 0.2 s.
        assert 0.8 < time.monotonic() - started < 3.0
        started = time.monotonic()
        with pytest.raises(loopfree.ConnectTimeout):
            client.get(url)
        assert time.monotonic() - started < 0.8


def test_transport_built_by_hand_takes_the_request_s_connect_timeout(
    full_backlog_port: int,
) -> None:
    url = f"http://127.0.0.1:{full_backlog_port}/"
    transport = loopfree.HTTPTransport()
    with loopfree.Client(transport=transport, timeout=loopfree.Timeout(5.0, connect=0.3)) as client:
        started = time.monotonic()
        with pytest.raises(loopfree.ConnectTimeout):
            client.get(url)
        assert time.monotonic() - started < 2.0


class SilentAfter:
    """
    A raw HTTP/1.1 server on one connection: it answers the first `answered`
    requests (keep-alive), then reads the next one and never answers.
    """

    def __init__(self, answered: int) -> None:
        self.answered = answered
        self.connections = 0
        self.stop = threading.Event()

    def serve(self, conn: socket.socket) -> None:
        self.connections += 1
        with conn:
            for _ in range(self.answered):
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(4096)
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            conn.recv(4096)
            self.stop.wait(10)


@pytest.mark.parametrize("answered", [0, 1], ids=["new-connection", "reused-connection"])
def test_read_timeout_counts_from_the_ready_connection(answered: int, raw_listener) -> None:
    server = SilentAfter(answered)
    with raw_listener(server.serve) as port:
        url = f"http://127.0.0.1:{port}/"
        try:
            with loopfree.Client(timeout=loopfree.Timeout(5.0, read=0.3)) as client:
                for _ in range(answered):
                    assert client.get(url).text == "ok"
                started = time.monotonic()
                with pytest.raises(loopfree.ReadTimeout):
                    client.get(url)
                # The read bound alone (not connect + read = 5.3 s).
                assert time.monotonic() - started < 2.0
            assert server.connections == 1
        finally:
            server.stop.set()
