"""AsyncClient under trio, under anyio (both backends), and across libraries.

A request waits on trio by parking the task and being rescheduled through the
run's token from loopfree's completion thread; on asyncio, by a future
completed with ``call_soon_threadsafe``. The pool lives in Rust and belongs to
neither, so one client (even one TCP connection) serves both in turn.
"""

from __future__ import annotations

import asyncio
import time

import anyio
import loopfree
import pytest
import trio
import uvloop


async def _get_json_conn(client: loopfree.AsyncClient, url: str) -> tuple[int, int]:
    response = await client.get(url)
    return response.status_code, response.json()["conn"]


def test_async_client_under_trio_run(server):
    client = loopfree.AsyncClient(timeout=10)
    results: list[int] = []

    async def fetch() -> None:
        response = await client.get(server.url + "/slow?delay=0.2")
        results.append(response.status_code)

    async def main() -> float:
        await client.get(server.url + "/")
        started = trio.current_time()
        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(fetch)
        return trio.current_time() - started

    elapsed = trio.run(main)
    trio.run(client.aclose)
    assert results == [200] * 10
    assert elapsed < 0.5  # ten 200 ms requests, concurrently


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_anyio_task_group_and_fail_after(server, backend):
    client = loopfree.AsyncClient(timeout=10)

    async def main() -> dict:
        statuses: list[int] = []

        async def fetch(i: int) -> None:
            response = await client.get(server.url + "/echo_request", params={"i": str(i)})
            assert response.json()["query_string"] == f"i={i}"
            statuses.append(response.status_code)

        async with anyio.create_task_group() as group:
            for i in range(8):
                group.start_soon(fetch, i)
        started = time.monotonic()
        timed_out = False
        try:
            with anyio.fail_after(0.1):
                await client.get(server.url + "/slow?delay=5")
        except TimeoutError:
            timed_out = True
        took = time.monotonic() - started
        after = await client.get(server.url + "/")
        await client.aclose()
        return {
            "statuses": statuses,
            "timed_out": timed_out,
            "took": took,
            "after": after.status_code,
        }

    result = anyio.run(main, backend=backend)
    assert result["statuses"] == [200] * 8
    assert result["timed_out"]
    assert result["took"] < 0.5, result
    assert result["after"] == 200


def test_one_client_and_one_connection_across_trio_asyncio_and_uvloop(conn_log_server):
    """The same TCP connection serves trio, then asyncio, then uvloop, then trio."""
    client = loopfree.AsyncClient(timeout=10)
    url = conn_log_server.url
    seen = [
        trio.run(_get_json_conn, client, url + "/trio/1"),
        asyncio.run(_get_json_conn(client, url + "/asyncio/1")),
        uvloop.run(_get_json_conn(client, url + "/uvloop/1")),
        trio.run(_get_json_conn, client, url + "/trio/2"),
        asyncio.run(_get_json_conn(client, url + "/asyncio/2")),
    ]
    asyncio.run(client.aclose())
    assert [status for status, _ in seen] == [200] * 5
    # One keep-alive connection, whichever library the caller ran on.
    assert len({conn for _, conn in seen}) == 1, seen
    assert len(conn_log_server.connections()) == 1


def test_trio_move_on_after_returns_promptly_and_client_keeps_working(server):
    # One connection only: the next request succeeds only if the cancelled
    # one gave its permit back (pool=1 s turns a leak into PoolTimeout).
    client = loopfree.AsyncClient(
        timeout=loopfree.Timeout(10, pool=1), limits=loopfree.Limits(max_connections=1)
    )

    async def main() -> dict:
        await client.get(server.url + "/")
        started = trio.current_time()
        with trio.move_on_after(0.05) as scope:
            await client.get(server.url + "/slow?delay=5")
        took = trio.current_time() - started
        after = await client.get(server.url + "/json")
        return {"cancelled": scope.cancelled_caught, "took": took, "after": after.json()}

    result = trio.run(main)
    trio.run(client.aclose)
    assert result["cancelled"]
    assert result["took"] < 0.3, result
    assert result["after"] == {"Hello": "world!"}


def test_trio_guest_mode_inside_asyncio(server):
    """trio running as a guest on an asyncio loop (the qtrio/trio-asyncio setup)."""
    client = loopfree.AsyncClient(timeout=10)

    async def trio_main() -> list[int]:
        statuses: list[int] = []

        async def fetch() -> None:
            statuses.append((await client.get(server.url + "/slow?delay=0.1")).status_code)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(fetch)
        return statuses

    async def asyncio_main() -> list[int]:
        loop = asyncio.get_running_loop()
        done: asyncio.Future = loop.create_future()

        def finished(outcome) -> None:
            done.set_result(outcome)

        trio.lowlevel.start_guest_run(
            trio_main,
            run_sync_soon_threadsafe=loop.call_soon_threadsafe,
            done_callback=finished,
            host_uses_signal_set_wakeup_fd=True,
        )
        # Meanwhile the host loop runs its own request with the same client.
        host = await client.get(server.url + "/")
        outcome = await asyncio.wait_for(done, 10)
        return [host.status_code, *outcome.unwrap()]

    result = asyncio.run(asyncio_main())
    asyncio.run(client.aclose())
    assert result == [200] * 6
