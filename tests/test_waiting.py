"""loopfree._waiting: how callers wait, and that waiting keeps no loop alive."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import weakref

import loopfree
from loopfree import _waiting


def _count_calls(monkeypatch, name: str) -> list[int]:
    calls = [0]
    original = getattr(_waiting._LoopInbox, name)

    def counting(self: _waiting._LoopInbox) -> None:
        calls[0] += 1
        original(self)

    monkeypatch.setattr(_waiting._LoopInbox, name, counting)
    return calls


async def _two_hundred(url: str) -> list[int]:
    async with loopfree.AsyncClient() as client:
        responses = await asyncio.gather(*(client.get(url) for _ in range(200)))
        return [r.status_code for r in responses]


def test_asyncio_completions_are_batched_per_loop(server, monkeypatch) -> None:
    """Many requests finishing together ring their loop's doorbell once per batch."""
    answers = _count_calls(monkeypatch, "_answer")
    drains = _count_calls(monkeypatch, "_drain")
    assert asyncio.run(_two_hundred(server.url)) == [200] * 200
    assert 1 <= answers[0] < 200
    assert drains[0] == 0  # the completion thread was not involved


class _LoopWithoutReaders(asyncio.SelectorEventLoop):
    """A loop that cannot watch file descriptors (as Windows' proactor loop)."""

    def add_reader(self, *args: object, **kwargs: object) -> None:
        raise NotImplementedError


def test_a_loop_without_add_reader_is_woken_by_the_completion_thread(server, monkeypatch) -> None:
    answers = _count_calls(monkeypatch, "_answer")
    drains = _count_calls(monkeypatch, "_drain")
    loop = _LoopWithoutReaders()
    try:
        assert loop.run_until_complete(_two_hundred(server.url)) == [200] * 200
    finally:
        loop.close()
    assert answers[0] == 0
    assert 1 <= drains[0] < 200


def test_doorbells_of_finished_loops_are_closed(server) -> None:
    """A new loop per request (Flask's async views) leaves no sockets behind."""
    client = loopfree.AsyncClient()

    def open_fds() -> int:
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    assert asyncio.run(client.get(server.url)).status_code == 200
    before = open_fds()
    for _ in range(50):
        assert asyncio.run(client.get(server.url)).status_code == 200
    assert open_fds() <= before + 2  # at most the latest loop's doorbell
    asyncio.run(client.aclose())


def test_a_cancelled_wait_is_forgotten(server) -> None:
    async def main() -> None:
        async with loopfree.AsyncClient() as client:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(client.get(server.url + "/slow?delay=2"), 0.1)
            inbox = _waiting._inbox(asyncio.get_running_loop())
            assert inbox._expected == {}
            assert (await client.get(server.url)).status_code == 200

    asyncio.run(main())


def test_a_loop_that_waited_is_not_kept_alive(server) -> None:
    client = loopfree.AsyncClient()
    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(client.get(server.url)).status_code == 200
    finally:
        loop.close()
    loop_ref = weakref.ref(loop)
    del loop
    gc.collect()
    assert loop_ref() is None
    assert len(_waiting._inboxes) == 0 or all(
        inbox._loop() is not None for inbox in _waiting._inboxes.values()
    )
    # The same client goes on working on another loop.
    assert asyncio.run(client.get(server.url)).status_code == 200
    asyncio.run(client.aclose())
