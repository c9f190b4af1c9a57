"""Request bodies of 64 KiB and more are sent from the caller's `bytes` object.

The engine keeps a reference to the object instead of copying it (16 MiB
upload: one copy and 16 MiB of peak RSS fewer). These tests pin what must not
change for such bodies: the bytes on the wire (also when a 307 redirect sends
them again, and for large chunks of a streamed body), and that the engine lets
go of the object once the request is done. Bodies below the threshold are
copied; each case runs on both sides of it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import typing
from collections.abc import Iterator

import loopfree
import pytest
import trio

THRESHOLD = 64 * 1024
SIZES = [1000, THRESHOLD - 1, THRESHOLD, 3 * 1024 * 1024 + 17]


def body_of(size: int) -> bytes:
    return os.urandom(size)


@pytest.mark.parametrize("size", SIZES)
def test_upload_is_echoed_intact(server: typing.Any, size: int) -> None:
    data = body_of(size)
    with loopfree.Client() as client:
        response = client.post(server.url + "/echo_body", content=data)
    assert response.status_code == 200
    assert response.content == data


@pytest.mark.parametrize("size", SIZES)
def test_async_upload_is_echoed_intact(server: typing.Any, size: int) -> None:
    data = body_of(size)

    async def main() -> bytes:
        async with loopfree.AsyncClient() as client:
            return (await client.post(server.url + "/echo_body", content=data)).content

    assert asyncio.run(main()) == data
    assert trio.run(main) == data


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024 + 17])
def test_307_redirect_sends_the_same_body_again(server: typing.Any, size: int) -> None:
    data = body_of(size)
    with loopfree.Client(follow_redirects=True) as client:
        response = client.post(server.url + "/redirect_to?status=307&url=/echo_body", content=data)
    assert [r.status_code for r in response.history] == [307]
    assert response.content == data


def test_streamed_upload_with_large_chunks(server: typing.Any) -> None:
    chunks = [body_of(256 * 1024) for _ in range(5)] + [body_of(100)]

    def produce() -> Iterator[bytes]:
        yield from chunks

    with loopfree.Client() as client:
        response = client.post(server.url + "/echo_body", content=produce())
    assert response.content == b"".join(chunks)


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024 + 17])
def test_engine_lets_go_of_the_body(server: typing.Any, size: int) -> None:
    data = body_of(size)
    with loopfree.Client() as client:
        client.get(server.url + "/")
        baseline = sys.getrefcount(data)
        response = client.post(server.url + "/echo_body", content=data)
        assert response.content == data
        del response  # its request holds the body too
        gc.collect()
        assert sys.getrefcount(data) == baseline


@pytest.mark.parametrize("size", [1000, 3 * 1024 * 1024 + 17])
def test_engine_lets_go_of_the_body_async(server: typing.Any, size: int) -> None:
    data = body_of(size)

    async def main() -> None:
        async with loopfree.AsyncClient() as client:
            await client.get(server.url + "/")
            baseline = sys.getrefcount(data)
            response = await client.post(server.url + "/echo_body", content=data)
            assert response.content == data
            del response
            gc.collect()
            assert sys.getrefcount(data) == baseline

    asyncio.run(main())
