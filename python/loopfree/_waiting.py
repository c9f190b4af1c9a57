"""
How a caller waits for a request that runs on the Rust runtime.

Every request runs on the one process-wide runtime and is represented by a
`Pending`. Only the *waiting* differs by context, and the context is detected
on every call, so a client is never bound to one thread, loop or library:

- plain sync code blocks in `Pending.wait()` without the GIL, running Python
  signal handlers every few milliseconds (Ctrl-C, gunicorn's timeouts);
- gevent-patched code parks the greenlet on the hub, so other greenlets run;
- asyncio code awaits a future on the *running* loop, completed through
  `call_soon_threadsafe`; a loop that has closed meanwhile is ignored;
- trio code parks the task and is rescheduled through the run's token.

The wake-up callback is dropped by the engine as soon as it has run or the
request is cancelled, so no event loop is referenced between requests.
"""

from __future__ import annotations

import asyncio
import functools
import sys
import typing

import sniffio

if typing.TYPE_CHECKING:
    from ._loopfree import Pending

__all__ = ["wait_async", "wait_sync"]


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


def wait_sync(pending: Pending) -> typing.Any:
    """Wait for `pending` from synchronous code."""
    if _gevent_patched():
        return _wait_gevent(pending)
    return pending.wait()


def _wait_gevent(pending: Pending) -> typing.Any:
    import gevent  # noqa: PLC0415 - only when the process is patched
    from gevent.hub import Waiter  # noqa: PLC0415

    hub = gevent.get_hub()
    waiter = Waiter(hub)
    # The watcher is started before the engine may call `send`, which is
    # thread-safe, so a completion can never be lost.
    watcher = hub.loop.async_()
    watcher.start(waiter.switch, None)
    try:
        pending.add_done_callback(watcher.send)
        waiter.get()
    except BaseException:
        pending.cancel()
        raise
    finally:
        watcher.stop()
        watcher.close()
    return pending.result()


async def wait_async(pending: Pending) -> typing.Any:
    """Wait for `pending` from a coroutine on asyncio (any loop) or trio."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = "asyncio"
    if library == "trio":
        return await _wait_trio(pending)
    return await _wait_asyncio(pending)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _wake_loop(loop: asyncio.AbstractEventLoop, future: asyncio.Future[None]) -> None:
    try:
        loop.call_soon_threadsafe(_resolve, future)
    except RuntimeError:
        # The loop closed before the response arrived: nobody is waiting.
        pass


async def _wait_asyncio(pending: Pending) -> typing.Any:
    loop = asyncio.get_running_loop()
    future: asyncio.Future[None] = loop.create_future()
    pending.add_done_callback(functools.partial(_wake_loop, loop, future))
    try:
        await future
    except BaseException:
        # Cancelled (task cancel, wait_for timeout, loop shutdown): drop the
        # Rust request so its half-read connection is closed, not pooled.
        pending.cancel()
        raise
    return pending.result()


async def _wait_trio(pending: Pending) -> typing.Any:
    import trio  # noqa: PLC0415 - only under trio

    token = trio.lowlevel.current_trio_token()
    task = trio.lowlevel.current_task()
    aborted = False

    def reschedule() -> None:
        # Runs on the trio thread, so it cannot race with `abort`.
        if not aborted:
            trio.lowlevel.reschedule(task)

    def wake() -> None:
        try:
            token.run_sync_soon(reschedule)
        except trio.RunFinishedError:
            pass

    def abort(_raise_cancel: typing.Any) -> trio.lowlevel.Abort:
        nonlocal aborted
        aborted = True
        pending.cancel()
        return trio.lowlevel.Abort.SUCCEEDED

    pending.add_done_callback(wake)
    await trio.lowlevel.wait_task_rescheduled(abort)
    return pending.result()
