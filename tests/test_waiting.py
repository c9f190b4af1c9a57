"""loopfree._waiting: how callers wait, and that waiting keeps no loop alive."""

from __future__ import annotations

import asyncio
import gc
import weakref

import loopfree
from loopfree import _waiting


def test_asyncio_completions_are_batched_per_loop(server) -> None:
    """Many requests finishing together wake their loop once per batch."""
    drains = 0
    original = _waiting._LoopInbox._drain

    def counting_drain(self: _waiting._LoopInbox) -> None:
        nonlocal drains
        drains += 1
        original(self)

    async def main() -> list[int]:
        async with loopfree.AsyncClient() as client:
            responses = await asyncio.gather(*(client.get(server.url) for _ in range(200)))
            return [r.status_code for r in responses]

    _waiting._LoopInbox._drain = counting_drain  # type: ignore[method-assign]
    try:
        statuses = asyncio.run(main())
    finally:
        _waiting._LoopInbox._drain = original  # type: ignore[method-assign]
    assert statuses == [200] * 200
    assert 1 <= drains < 200


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
