"""Every way a request can be abandoned releases its connection and permit.

A cancelled wait cancels the Rust task, which drops the half-read connection
(closing it rather than returning it to the pool) and the connection-limit
permit. Each scenario proves both:

- the permit: the client allows ONE connection and the next request gets a
  1 s pool timeout, so a leaked permit turns into ``PoolTimeout``;
- the connection: the process's ESTABLISHED TCP connections to the server
  port (``/proc/self/net/tcp`` matched against this process's socket inodes)
  drop back to the baseline.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time

import loopfree
import pytest
import trio
from contexts_support import established_to_port, rss_bytes, socket_inodes, wait_until

SLOW = "/slow?delay=5"


def one_connection_client(cls):
    return cls(timeout=loopfree.Timeout(10, pool=1), limits=loopfree.Limits(max_connections=1))


def assert_connection_closed(port: int) -> None:
    # The aborted task is dropped on a runtime worker, asynchronously.
    assert wait_until(lambda: established_to_port(port) == 0, timeout=3), (
        f"{established_to_port(port)} connection(s) to the server still open"
    )


def test_asyncio_task_cancel_releases_the_connection(server):
    client = one_connection_client(loopfree.AsyncClient)

    async def main() -> dict:
        await client.get(server.url + "/")
        task = asyncio.create_task(client.get(server.url + SLOW))
        await asyncio.sleep(0.1)
        in_flight = established_to_port(server.port)
        started = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        took = time.monotonic() - started
        await asyncio.to_thread(assert_connection_closed, server.port)
        after = await client.get(server.url + "/json")
        return {"in_flight": in_flight, "took": took, "after": after.json()}

    result = asyncio.run(main())
    asyncio.run(client.aclose())
    assert result["in_flight"] == 1
    assert result["took"] < 0.1
    assert result["after"] == {"Hello": "world!"}


def test_wait_for_timeout_releases_the_connection(server):
    client = one_connection_client(loopfree.AsyncClient)

    async def main() -> dict:
        await client.get(server.url + "/")
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.get(server.url + SLOW), 0.1)
        took = time.monotonic() - started
        await asyncio.to_thread(assert_connection_closed, server.port)
        after = await client.get(server.url + "/json")
        return {"took": took, "after": after.json()}

    result = asyncio.run(main())
    asyncio.run(client.aclose())
    assert result["took"] < 0.3, result
    assert result["after"] == {"Hello": "world!"}


def test_trio_cancel_scope_releases_the_connection(server):
    client = one_connection_client(loopfree.AsyncClient)

    async def main() -> dict:
        await client.get(server.url + "/")
        with trio.CancelScope() as scope:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(client.get, server.url + SLOW)
                await trio.sleep(0.1)
                in_flight = established_to_port(server.port)
                scope.cancel()
        await trio.to_thread.run_sync(assert_connection_closed, server.port)
        after = await client.get(server.url + "/json")
        return {"in_flight": in_flight, "cancelled": scope.cancelled_caught, "after": after.json()}

    result = trio.run(main)
    trio.run(client.aclose)
    assert result["in_flight"] == 1
    assert result["cancelled"]
    assert result["after"] == {"Hello": "world!"}


class Interrupted(Exception):
    pass


def test_sync_call_interrupted_by_a_signal_releases_the_connection(server):
    # pytest runs tests in the main thread, where CPython runs handlers.
    # SIGUSR1 rather than SIGALRM, which pytest-timeout may be using.
    assert threading.current_thread() is threading.main_thread()
    client = one_connection_client(loopfree.Client)
    client.get(server.url + "/")

    def handler(signum, frame):
        raise Interrupted

    previous = signal.signal(signal.SIGUSR1, handler)
    timer = threading.Timer(
        0.1, signal.pthread_kill, args=(threading.main_thread().ident, signal.SIGUSR1)
    )
    try:
        timer.start()
        started = time.monotonic()
        with pytest.raises(Interrupted):
            client.get(server.url + SLOW)
        took = time.monotonic() - started
    finally:
        timer.cancel()
        timer.join()
        signal.signal(signal.SIGUSR1, previous)
    assert took < 0.3
    assert_connection_closed(server.port)
    assert client.get(server.url + "/json").json() == {"Hello": "world!"}
    client.close()


# --------------------------------------------------------------------------
# 1000 cancelled requests
# --------------------------------------------------------------------------

BATCHES = 20
BATCH_SIZE = 50
# Growth allowed after 1000 cancelled requests. RSS is a coarse measure:
# glibc keeps freed memory in per-thread arenas (tokio workers, the uvicorn
# server thread in this same process) and Python keeps its object arenas, so
# a few MiB of churn is noise. A real per-request leak would be much larger:
# each cancelled request holds a connection with hyper's read/write buffers
# (tens of KiB) plus its task, so leaking all 1000 means tens of MiB, and a
# leaked socket shows up exactly in the connection and fd counts below.
RSS_MARGIN = 20 * 1024 * 1024


def test_1000_cancelled_requests_leave_no_connection_or_memory_behind(server):
    client = loopfree.AsyncClient(timeout=10)

    async def batch() -> tuple[list[BaseException | object], int]:
        tasks = [
            asyncio.create_task(client.get(server.url + "/slow?delay=1")) for _ in range(BATCH_SIZE)
        ]
        await asyncio.sleep(0.01)
        opened = established_to_port(server.port)
        for task in tasks:
            task.cancel()
        return await asyncio.gather(*tasks, return_exceptions=True), opened

    async def run(batches: int) -> tuple[int, int]:
        cancelled = peak = 0
        for _ in range(batches):
            outcomes, opened = await batch()
            cancelled += sum(isinstance(o, asyncio.CancelledError) for o in outcomes)
            peak = max(peak, opened)
        return cancelled, peak

    # Warm up: runtime threads, allocator arenas, a first batch of sockets.
    asyncio.run(run(2))
    assert wait_until(lambda: established_to_port(server.port) == 0, timeout=5)
    sockets_before = len(socket_inodes())
    rss_before = rss_bytes()

    started = time.monotonic()
    cancelled, peak = asyncio.run(run(BATCHES))
    took = time.monotonic() - started

    assert cancelled == BATCHES * BATCH_SIZE
    # The requests really were on the wire when they were cancelled.
    assert peak >= 10, peak
    # Every connection is closed again...
    assert wait_until(lambda: established_to_port(server.port) == 0, timeout=5), (
        established_to_port(server.port)
    )
    # ...and so is every socket of this process (client and server ends).
    assert wait_until(lambda: len(socket_inodes()) <= sockets_before, timeout=5), (
        len(socket_inodes()),
        sockets_before,
    )
    growth = rss_bytes() - rss_before
    assert growth < RSS_MARGIN, f"RSS grew by {growth / 2**20:.1f} MiB"
    # The client still works, and was not slowed down by all that.
    assert asyncio.run(client.get(server.url + "/json")).json() == {"Hello": "world!"}
    asyncio.run(client.aclose())
    assert took < 20, took
