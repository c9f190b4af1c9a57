"""Large plain bodies read by the caller's thread straight into `bytes`.

A sync request whose final response has no Content-Encoding and a declared
length of 256 KiB or more has its body read by the calling thread into the
`bytes` it returns (one copy fewer, the body held once). These tests pin what
must stay as before for such bodies: the content, the response's byte counts
and elapsed time, HEAD, a body that ends early, a body that stalls (read
timeout) and the client's use afterwards. Async requests and small bodies take
the other path, so each case is checked against it too.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import loopfree
import pytest

LARGE = 3 * 1024 * 1024 + 17  # above the threshold, not a multiple of any chunk size


def expected(pattern: bytes, n: int) -> bytes:
    return (pattern * (n // len(pattern) + 1))[:n]


@pytest.mark.parametrize("n", [200 * 1024, 256 * 1024, LARGE])
def test_body_is_the_servers_bytes(server, bytes_pattern: bytes, n: int) -> None:
    with loopfree.Client() as client:
        response = client.get(f"{server.url}/bytes?n={n}")
    assert response.status_code == 200
    assert response.content == expected(bytes_pattern, n)
    assert type(response.content) is bytes
    assert response.headers["content-length"] == str(n)
    assert response.num_bytes_downloaded == n
    assert response.elapsed.total_seconds() > 0
    assert response.is_closed


def test_sync_and_async_read_the_same_large_body(server, bytes_pattern: bytes) -> None:
    url = f"{server.url}/bytes?n={LARGE}"
    with loopfree.Client() as client:
        sync_body = client.get(url).content

    async def fetch() -> bytes:
        async with loopfree.AsyncClient() as client:
            return (await client.get(url)).content

    assert sync_body == asyncio.run(fetch()) == expected(bytes_pattern, LARGE)


def test_head_of_a_large_body_is_empty(server) -> None:
    with loopfree.Client() as client:
        response = client.head(f"{server.url}/bytes?n={LARGE}")
    assert response.status_code == 200
    assert response.headers["content-length"] == str(LARGE)
    assert response.content == b""


def test_redirect_to_a_large_body(server, bytes_pattern: bytes) -> None:
    target = f"/bytes?n={LARGE}"
    with loopfree.Client(follow_redirects=True) as client:
        response = client.get(f"{server.url}/redirect_to", params={"url": target})
    assert [r.status_code for r in response.history] == [302]
    assert response.content == expected(bytes_pattern, LARGE)


def test_streamed_large_body_is_unchanged(server, bytes_pattern: bytes) -> None:
    with loopfree.Client() as client, client.stream("GET", f"{server.url}/bytes?n={LARGE}") as r:
        parts = list(r.iter_bytes())
    assert b"".join(parts) == expected(bytes_pattern, LARGE)


def _send_short_body(conn: socket.socket) -> None:
    """GET /<declared>/<sent>: declares a length, sends fewer bytes, closes."""
    with conn:
        _, declared, sent = conn.recv(65536).split(b" ")[1].split(b"/")
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %s\r\n\r\n" % declared)
        conn.sendall(b"z" * int(sent))


@pytest.fixture
def short_body_server(raw_listener) -> Iterator[int]:
    with raw_listener(_send_short_body) as port:
        yield port


@pytest.mark.parametrize("declared", [1024 * 1024, 1000])
def test_body_shorter_than_its_length_is_a_protocol_error(
    short_body_server: int, server, declared: int
) -> None:
    # As httpx (h11): RemoteProtocolError, on the large-body path and the
    # small one alike. (Regression: both raised DecodingError.)
    url = f"http://127.0.0.1:{short_body_server}/{declared}/{declared // 3}"
    with loopfree.Client(timeout=5) as client:
        with pytest.raises(loopfree.RemoteProtocolError) as info:
            client.get(url)
        assert info.value.request.url == url
        # The client is unharmed.
        assert client.get(server.url + "/json").json() == {"Hello": "world!"}


def test_body_shorter_than_its_length_is_a_protocol_error_async(short_body_server: int) -> None:
    async def main() -> None:
        async with loopfree.AsyncClient(timeout=5) as client:
            with pytest.raises(loopfree.RemoteProtocolError):
                await client.get(f"http://127.0.0.1:{short_body_server}/1048576/1000")

    asyncio.run(main())


def test_large_body_that_stalls_raises_read_timeout(server) -> None:
    url = f"{server.url}/stall_body?n={LARGE}&sent=400000&delay=10"
    with loopfree.Client(timeout=loopfree.Timeout(5.0, read=0.3)) as client:
        started = time.monotonic()
        with pytest.raises(loopfree.ReadTimeout):
            client.get(url)
        assert time.monotonic() - started < 2.0
        # The next request is answered at once, on another connection.
        assert client.get(server.url + "/json").status_code == 200


def test_large_body_that_pauses_within_the_read_timeout_completes(server) -> None:
    url = f"{server.url}/stall_body?n={LARGE}&sent=400000&delay=0.2"
    with loopfree.Client(timeout=loopfree.Timeout(5.0, read=2.0)) as client:
        response = client.get(url)
    assert len(response.content) == LARGE
    assert response.content[:400000] == b"s" * 400000
    assert response.elapsed.total_seconds() >= 0.2
