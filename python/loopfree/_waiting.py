"""
How a caller waits for a request that runs on the Rust runtime.

Every request runs on the one process-wide runtime and is represented by a
`Pending`. Only the *waiting* differs by context, and the context is detected
on every call, so a client is never bound to one thread, loop or library:

- plain sync code runs a request on its own thread (`Engine.send`, which
  drives the runtime meanwhile: no thread hand-off) or blocks in
  `Pending.wait()`, both without the GIL and running Python signal
  handlers every few milliseconds (Ctrl-C, gunicorn's timeouts);
- gevent-patched code parks the greenlet on the hub, so other greenlets run;
  eventlet-patched code does the same through a pipe its hub watches;
- asyncio code awaits a future on the *running* loop, resolved when the
  runtime rings the loop's `Doorbell` (a socket the loop watches, one byte
  per batch of finished requests) or, on a loop without `add_reader`,
  through `call_soon_threadsafe` once per batch; a loop that has closed
  meanwhile is ignored;
- trio code parks the task and is rescheduled through the run's token.

The wake-up callback is dropped by the engine as soon as it has run or the
request is cancelled, so no event loop is referenced between requests.
"""

from __future__ import annotations

import asyncio
import functools
import os
import sys
import typing
import weakref

import sniffio

from ._loopfree import Doorbell

if typing.TYPE_CHECKING:
    from ._loopfree import Pending

__all__ = ["can_block", "wait_async", "wait_sync"]


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("socket"))


def _eventlet_patched() -> bool:
    patcher = sys.modules.get("eventlet.patcher")
    return patcher is not None and bool(patcher.is_monkey_patched("socket"))


def can_block() -> bool:
    """
    Whether this sync caller may run a request on its own thread
    (`Engine.send`): not under gevent or eventlet, whose hub must keep
    running other greenlets meanwhile.
    """
    modules = sys.modules
    if "gevent.monkey" not in modules and "eventlet.patcher" not in modules:
        return True  # the usual case, without two calls
    return not _gevent_patched() and not _eventlet_patched()


def wait_sync(pending: Pending) -> typing.Any:
    """Wait for `pending` from synchronous code."""
    if _gevent_patched():
        return _wait_gevent(pending)
    if _eventlet_patched():
        return _wait_eventlet(pending)
    return pending.wait()


class _WakePipe:
    """
    A pipe the completion thread writes to, closed under a lock so that a late
    wake-up never writes into a file descriptor number reused meanwhile. The
    completion thread is a real OS thread, so the lock and `write` must be the
    unpatched originals, never eventlet's green ones.
    """

    def __init__(self, os_module: typing.Any, thread_module: typing.Any) -> None:
        self._os = os_module
        self.read_fd, self._write_fd = os_module.pipe()
        os_module.set_blocking(self.read_fd, False)
        self._lock = thread_module.allocate_lock()
        self._closed = False

    def wake(self) -> None:
        with self._lock:
            if not self._closed:
                self._os.write(self._write_fd, b"\0")

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._os.close(self.read_fd)
            self._os.close(self._write_fd)


def _wait_eventlet(pending: Pending) -> typing.Any:
    from eventlet.hubs import trampoline  # only when patched
    from eventlet.patcher import original

    pipe = _WakePipe(original("os"), original("_thread"))
    try:
        pending.add_done_callback(pipe.wake)
        while not pending.done():
            trampoline(pipe.read_fd, read=True)
    except BaseException:
        pending.cancel()
        raise
    finally:
        pipe.close()
    return pending.result()


def _wait_gevent(pending: Pending) -> typing.Any:
    import gevent  # only when the process is patched
    from gevent.hub import Waiter

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
    loop = asyncio._get_running_loop()
    if (
        loop is None
        or sniffio.thread_local.name is not None
        or sniffio.current_async_library_cvar.get() is not None
    ):
        # Not plain asyncio (trio, or a library named through sniffio); with
        # a running loop and neither set, sniffio would answer "asyncio".
        try:
            library = sniffio.current_async_library()
        except sniffio.AsyncLibraryNotFoundError:
            library = "asyncio"
        if library == "trio":
            return await _wait_trio(pending)
        loop = asyncio.get_running_loop()
    # asyncio, inline (one coroutine per request fewer): a future on the
    # running loop, resolved through the loop's inbox.
    future: asyncio.Future[None] = loop.create_future()
    inbox = _inbox(loop)
    token = inbox.expect(future, pending)
    try:
        await future
    except BaseException:
        # Cancelled (task cancel, wait_for timeout, loop shutdown): drop the
        # Rust request so its half-read connection is closed, not pooled.
        pending.cancel()
        inbox.forget(token)
        raise
    return pending.result()


class _LoopInbox:
    """
    Wake-ups for one asyncio loop. Where the loop can watch a file descriptor
    (asyncio's selector loops, uvloop), a finished request rings the inbox's
    `Doorbell` from the runtime, without the GIL, and one reader callback
    resolves every future rung since it last ran. Elsewhere the completion
    thread appends finished futures and schedules one `drain` per batch with
    `call_soon_threadsafe`. Either way it refers to its loop weakly and lives
    in a weak mapping keyed by the loop, so no loop is kept alive by loopfree;
    the doorbell's socket closes when the loop is collected.
    """

    __slots__ = (
        "__weakref__",
        "_doorbell",
        "_expected",
        "_futures",
        "_loop",
        "_next_token",
        "_scheduled",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = weakref.ref(loop)
        self._futures: list[asyncio.Future[None]] = []
        self._scheduled = False
        self._expected: dict[int, asyncio.Future[None]] = {}
        self._next_token = 0
        self._doorbell: Doorbell | None = Doorbell()
        try:
            loop.add_reader(self._doorbell.fileno(), self._answer)
        except NotImplementedError:
            self._doorbell = None  # a loop without add_reader: the completion thread

    def expect(self, future: asyncio.Future[None], pending: Pending) -> int:
        """Resolve `future` when `pending` is done; returns its token."""
        doorbell = self._doorbell
        if doorbell is None:
            pending.add_done_callback(functools.partial(self.push, future))
            return -1
        token = self._next_token
        self._next_token = token + 1
        self._expected[token] = future
        pending.ring_when_done(doorbell, token)
        return token

    def forget(self, token: int) -> None:
        """The caller stopped waiting (cancelled)."""
        self._expected.pop(token, None)

    def _answer(self) -> None:
        """On the loop, when the doorbell rang."""
        assert self._doorbell is not None
        expected = self._expected
        for token in self._doorbell.take():
            future = expected.pop(token, None)
            if future is not None and not future.done():
                future.set_result(None)

    def push(self, future: asyncio.Future[None]) -> None:
        """On the completion thread (with the GIL)."""
        self._futures.append(future)
        if self._scheduled:
            return
        loop = self._loop()
        if loop is None:
            self._futures.clear()
            return
        self._scheduled = True
        try:
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            # The loop closed before the response arrived: nobody is waiting.
            self._futures.clear()
            self._scheduled = False

    def _drain(self) -> None:
        """On the loop. `_scheduled` is cleared before the list is taken, so
        a future pushed meanwhile is either in this batch or schedules the next."""
        self._scheduled = False
        futures, self._futures = self._futures, []
        for future in futures:
            if not future.done():
                future.set_result(None)


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopInbox] = (
    weakref.WeakKeyDictionary()
)


def _inbox(loop: asyncio.AbstractEventLoop) -> _LoopInbox:
    global _last_inbox
    last = _last_inbox
    if last is not None and last._loop() is loop:
        return last  # the usual case: the same loop as the previous request
    inbox = _inboxes.get(loop)
    if inbox is None:
        inbox = _inboxes[loop] = _LoopInbox(loop)
    _last_inbox = inbox
    return inbox


# The inbox found last (it holds its loop weakly, so this keeps no loop alive).
_last_inbox: _LoopInbox | None = None


def _forget_inboxes() -> None:
    # A forked child must not share its parent's doorbell sockets.
    global _last_inbox
    _last_inbox = None
    _inboxes.clear()


os.register_at_fork(after_in_child=_forget_inboxes)


async def _wait_trio(pending: Pending) -> typing.Any:
    import trio  # only under trio

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
