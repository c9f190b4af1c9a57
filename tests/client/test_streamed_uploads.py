"""Streamed request bodies: generators, async generators, files and multipart.

Regression tests for "streaming request bodies are read into memory first":
the body now goes out as the caller's stream produces it. The proof does not
time anything: the generator refuses to produce its second chunk until a raw
server has received the first, which can only happen if the first chunk was
sent before the generator finished.
"""

from __future__ import annotations

import asyncio
import io
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import loopfree
import pytest
import trio

FIRST = b"first-chunk:" + b"a" * 1000
SECOND = b"second-chunk:" + b"b" * 1000


class ChunkWatcher:
    """
    A raw HTTP/1.1 server: it sets `first_seen` as soon as the first chunk's
    bytes arrive, reads the chunked body to its end, then answers with the
    number of body bytes it saw.
    """

    def __init__(self) -> None:
        self.first_seen = threading.Event()
        self.url = ""
        self.received = b""

    def serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(10)
            data = b""
            while not data.endswith(b"\r\n0\r\n\r\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
                if FIRST in data:
                    self.first_seen.set()
            self.received = data
            body = str(len(data)).encode()
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


@pytest.fixture
def watcher(raw_listener) -> Iterator[ChunkWatcher]:
    server = ChunkWatcher()
    with raw_listener(server.serve) as port:
        server.url = f"http://127.0.0.1:{port}/upload"
        yield server


def test_generator_body_is_sent_while_it_is_produced(watcher: ChunkWatcher) -> None:
    def body() -> Iterator[bytes]:
        yield FIRST
        # Buffering the whole body first would wait here forever.
        assert watcher.first_seen.wait(5), "the first chunk was not sent before the second"
        yield SECOND

    with loopfree.Client() as client:
        response = client.post(watcher.url, content=body())
    assert response.status_code == 200
    assert FIRST in watcher.received and SECOND in watcher.received
    assert b"Transfer-Encoding: chunked" in watcher.received


@pytest.mark.parametrize("library", ["asyncio", "trio"])
def test_async_generator_body_is_sent_while_it_is_produced(
    watcher: ChunkWatcher, library: str
) -> None:
    async def wait_first() -> bool:
        for _ in range(500):
            if watcher.first_seen.is_set():
                return True
            await (asyncio.sleep(0.01) if library == "asyncio" else trio.sleep(0.01))
        return False

    async def body() -> AsyncIterator[bytes]:
        yield FIRST
        assert await wait_first(), "the first chunk was not sent before the second"
        yield SECOND

    async def main() -> loopfree.Response:
        async with loopfree.AsyncClient() as client:
            return await client.post(watcher.url, content=body())

    response = asyncio.run(main()) if library == "asyncio" else trio.run(main)
    assert response.status_code == 200
    assert FIRST in watcher.received and SECOND in watcher.received


def test_generator_body_arrives_whole(server) -> None:
    chunks = [bytes([i]) * (100_000 + i) for i in range(40)]  # ~4 MiB, odd sizes
    with loopfree.Client() as client:
        response = client.post(server.url + "/echo_body", content=iter(chunks))
    assert response.content == b"".join(chunks)


def test_file_body_is_streamed_whole(server, tmp_path) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(bytes(range(256)) * 20_000)
    with loopfree.Client() as client, path.open("rb") as handle:
        # A file object is iterated as a stream, as httpx does.
        response = client.put(server.url + "/echo_body", content=handle)
    assert response.content == path.read_bytes()


def test_multipart_file_upload_matches_httpx(server) -> None:
    payload = b"\x00\x01" * 300_000
    files = {"upload": ("data.bin", io.BytesIO(payload), "application/octet-stream")}
    headers = {"Content-Type": "multipart/form-data; boundary=fixed-boundary"}
    with loopfree.Client() as client:
        ours = client.post(server.url + "/echo_body", files=files, data={"a": "1"}, headers=headers)
    files = {"upload": ("data.bin", io.BytesIO(payload), "application/octet-stream")}
    with httpx.Client() as client:
        theirs = client.post(
            server.url + "/echo_body", files=files, data={"a": "1"}, headers=headers
        )
    assert ours.status_code == 200
    assert ours.content == theirs.content


def test_empty_generator_sends_an_empty_body(server) -> None:
    with loopfree.Client() as client:
        response = client.post(server.url + "/echo_body", content=iter([b"", b""]))
    assert response.content == b""


def test_generator_exception_propagates_and_client_recovers(server) -> None:
    class Boom(Exception):
        pass

    def body() -> Iterator[bytes]:
        yield b"x" * 1000
        raise Boom("generator failed")

    with loopfree.Client() as client:
        with pytest.raises(Boom):
            client.post(server.url + "/echo_body", content=body())
        assert client.post(server.url + "/echo_body", content=b"ok").content == b"ok"


def test_streamed_body_cannot_follow_307(server) -> None:
    """A 307 must resend the body; a generator cannot be replayed (httpx: StreamConsumed)."""

    def body() -> Iterator[bytes]:
        yield b"once"

    for library in (loopfree, httpx):
        with (
            library.Client(follow_redirects=True) as client,
            pytest.raises(library.StreamConsumed),
        ):
            client.post(server.url + "/redirect_307", content=body())


def test_streamed_body_on_303_is_dropped_like_httpx(server) -> None:
    def body() -> Iterator[bytes]:
        yield b"once"

    with loopfree.Client(follow_redirects=True) as client:
        response = client.post(server.url + "/redirect_303", content=body())
    assert response.json() == {"method": "GET", "body": ""}
    assert len(response.history) == 1


def test_unread_answer_stops_the_generator(early_413_server) -> None:
    """The server answers 413 without reading: the body stops, the answer arrives."""
    produced = 0

    def body() -> Iterator[bytes]:
        nonlocal produced
        for _ in range(2000):  # 128 MiB if it were all produced
            produced += 1
            yield b"z" * 65536

    with loopfree.Client(timeout=5) as client:
        response = client.post(early_413_server, content=body())
    assert response.status_code == 413
    assert produced < 2000


@pytest.fixture
def early_413_server() -> Iterator[str]:
    """Reads the request head, answers 413 and closes without reading the body."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        listener.settimeout(10)
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(4096)
            conn.sendall(b"HTTP/1.1 413 Payload Too Large\r\nContent-Length: 0\r\n\r\n")
            time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/upload"
    listener.close()
    thread.join(5)


def test_slow_generator_is_not_a_write_timeout(server) -> None:
    """httpx puts no timeout on the caller's own stream; only the socket can stall."""

    def body() -> Iterator[bytes]:
        for _ in range(3):
            time.sleep(0.25)
            yield b"slow"

    with loopfree.Client(timeout=loopfree.Timeout(5.0, write=0.1)) as client:
        response = client.post(server.url + "/echo_body", content=body())
    assert response.content == b"slow" * 3


def test_stalled_streamed_upload_raises_write_timeout(stalled_server: int) -> None:
    def body() -> Iterator[bytes]:
        for _ in range(2000):
            yield b"s" * 65536

    url = f"http://127.0.0.1:{stalled_server}/upload"
    with loopfree.Client(timeout=loopfree.Timeout(5.0, write=0.3)) as client:
        started = time.monotonic()
        with pytest.raises(loopfree.WriteTimeout):
            client.post(url, content=body())
        assert time.monotonic() - started < 3.0
