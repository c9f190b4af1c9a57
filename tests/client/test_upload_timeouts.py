"""Timeouts around request bodies: which *Timeout class a stalled upload raises.

Regression tests for the engine change that slices large bodies so that write
progress is visible (before it, a stalled upload raised ReadTimeout, or nothing
at all when the server answered before reading the body).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import loopfree
import pytest

BIG_BODY = b"x" * (32 * 1024 * 1024)


@pytest.fixture
def stalled_server() -> Iterator[int]:
    """Accepts connections and never reads: uploads stall once buffers fill."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            accepted.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(2)
    listener.close()
    for conn in accepted:
        conn.close()


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
