"""Threads, and sync calls made while an event loop is running (Jupyter).

In Jupyter (ipykernel) a cell runs inside a callback of the kernel's running
asyncio loop, so a sync HTTP call there must not try to run (or nest) a loop
of its own. loopfree's sync wait never touches any event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time

import loopfree
import uvloop
from contexts_support import run_python


def test_sync_client_inside_a_running_loop_coroutine_and_callback(server):
    client = loopfree.Client(timeout=10)
    aclient = loopfree.AsyncClient(timeout=10)

    async def cell() -> dict:
        loop = asyncio.get_running_loop()
        assert loop.is_running()
        # 1. A sync call straight from a coroutine ("cell" code).
        from_coroutine = client.get(server.url + "/json").json()
        # 2. From a plain loop callback, as ipykernel runs cells.
        done: asyncio.Future = loop.create_future()

        def callback() -> None:
            try:
                done.set_result(client.get(server.url + "/echo_request?cb=1").json())
            except BaseException as exc:
                done.set_exception(exc)

        loop.call_soon(callback)
        from_callback = await done
        # 3. Top-level await of the async client in the same "cell".
        awaited = (await aclient.get(server.url + "/json")).json()
        return {
            "coroutine": from_coroutine,
            "callback": from_callback["query_string"],
            "awaited": awaited,
        }

    for runner in (asyncio.run, uvloop.run):
        result = runner(cell())
        assert result == {
            "coroutine": {"Hello": "world!"},
            "callback": "cb=1",
            "awaited": {"Hello": "world!"},
        }
    client.close()
    asyncio.run(aclient.aclose())


def test_sync_call_in_running_loop_does_not_disturb_the_loop(server):
    """After a blocking sync call the loop's other tasks resume normally."""
    client = loopfree.Client(timeout=10)
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.01)

    async def main() -> int:
        task = asyncio.create_task(ticker())
        await asyncio.sleep(0.05)
        status = client.get(server.url + "/slow?delay=0.2").status_code
        before = len(ticks)
        await asyncio.sleep(0.1)
        task.cancel()
        assert len(ticks) > before + 3  # the loop ticks again afterwards
        return status

    assert asyncio.run(main()) == 200
    client.close()


THREADS = 16
REQUESTS_PER_THREAD = 25


def test_16_threads_share_one_sync_client(server):
    client = loopfree.Client(timeout=10)
    failures: list[str] = []
    ok = 0
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS, timeout=10)
    deadline = time.monotonic() + 40

    def worker(t: int) -> None:
        nonlocal ok
        try:
            barrier.wait()
            for n in range(REQUESTS_PER_THREAD):
                if time.monotonic() > deadline:
                    raise TimeoutError("deadline")
                response = client.get(
                    server.url + "/echo_request", params={"t": str(t), "n": str(n)}
                )
                # Each thread gets its own response, never another thread's.
                if response.status_code != 200 or response.json()["query_string"] != (
                    f"t={t}&n={n}"
                ):
                    raise AssertionError(f"{response.status_code} {response.text[:200]}")
                with lock:
                    ok += 1
        except BaseException as exc:
            with lock:
                failures.append(f"thread {t}: {exc!r}")

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.1, deadline + 5 - time.monotonic()))
    assert not any(thread.is_alive() for thread in threads), "threads still running"
    assert not failures, failures[:3]
    assert ok == THREADS * REQUESTS_PER_THREAD

    # The 16 waits overlap: the GIL is released while waiting.
    results: list[int] = []
    started = time.monotonic()
    slow = [
        threading.Thread(
            target=lambda: results.append(client.get(server.url + "/slow?delay=0.3").status_code),
            daemon=True,
        )
        for _ in range(THREADS)
    ]
    for thread in slow:
        thread.start()
    for thread in slow:
        thread.join(10)
    elapsed = time.monotonic() - started
    assert results == [200] * THREADS
    assert elapsed < 1.0, elapsed  # 16 x 0.3 s = 4.8 s if serialised
    client.close()


# --------------------------------------------------------------------------
# Interpreter exit while loopfree threads are busy
# --------------------------------------------------------------------------
#
# At exit CPython marks the runtime as finalizing; from then on any other
# thread that tries to take the GIL is ended with pthread_exit(). On a thread
# whose stack has Rust frames that forced unwind aborts the whole process
# (SIGABRT, "FATAL: exception not rethrown"), so loopfree must never re-take
# the GIL from Rust once exit has begun.

DAEMON_WAIT_DRIVER = """
import threading
import loopfree

url = _sys.argv[1]
client = loopfree.Client(timeout=30)
client.get(url + "/")
started = threading.Event()

def background():
    started.set()
    client.get(url + "/slow?delay=5")

threading.Thread(target=background, daemon=True).start()
started.wait(5)
_time.sleep(0.2)  # the daemon thread is now waiting in Pending.wait()
emit({"main": "exiting"})
"""


def test_interpreter_exit_while_a_daemon_thread_waits_on_a_request(server):
    """A daemon thread blocked in a sync request must not crash interpreter exit."""
    done = run_python(DAEMON_WAIT_DRIVER, server.url, timeout=30)
    assert done.result == {"main": "exiting"}
    assert done.returncode == 0, done.describe()  # not -6 (SIGABRT)
    assert done.elapsed < 5, done.describe()  # exit did not wait for the request


WAKE_AT_EXIT_DRIVER = """
import asyncio
import loopfree

url = _sys.argv[1]

woken_from_another_thread = []

class SlowWakeLoop(asyncio.SelectorEventLoop):
    # No add_reader: loopfree falls back to waking the loop from its
    # completion thread, whose callback holds a claim on the GIL.
    def add_reader(self, *args, **kwargs):
        raise NotImplementedError

    # Widens a real race: the wake-up callback (run by loopfree's completion
    # thread) releases and re-takes the GIL, as the self-pipe send inside
    # call_soon_threadsafe does, while the main thread returns and exits.
    def call_soon_threadsafe(self, *args, **kwargs):
        woken_from_another_thread.append(1)
        handle = super().call_soon_threadsafe(*args, **kwargs)
        deadline = _time.monotonic() + 0.5
        while _time.monotonic() < deadline:
            _time.sleep(0.0002)
        return handle

client = loopfree.AsyncClient(timeout=10)

async def main():
    return (await client.get(url + "/")).status_code

with asyncio.Runner(loop_factory=SlowWakeLoop) as runner:
    status = runner.run(main())
    emit({"status": status, "woken_from_another_thread": bool(woken_from_another_thread)})
"""


def test_interpreter_exit_while_a_wakeup_callback_is_running(server):
    """The script ends right after ``asyncio.run(client.get(...))``.

    Without the widened window this aborts in roughly 1 run in 5 here."""
    done = run_python(WAKE_AT_EXIT_DRIVER, server.url, timeout=30)
    assert done.result == {"status": 200, "woken_from_another_thread": True}
    assert done.returncode == 0, done.describe()  # not -6 (SIGABRT)
