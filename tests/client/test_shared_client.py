"""One client object, every event loop and thread: loopfree's core promise.

All scenarios use real sockets against the ``server`` fixture; nothing is
mocked.  httpx's AsyncClient ties pooled connections to the loop that opened
them, so most of these fail with httpx (``LOOPFREE_TEST_TARGET=httpx`` runs
this module against it; those tests are then expected failures).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import importlib
import logging
import os
import sys
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import sniffio
import trio
import uvloop

loopfree = importlib.import_module(os.environ.get("LOOPFREE_TEST_TARGET", "loopfree"))
IS_HTTPX = loopfree.__name__ == "httpx"


def fails_with_httpx(reason: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Expected failure only when this suite runs against httpx itself.

    httpx then also leaks transports of dead loops, so the conftest leak checks
    are relaxed for that run only (``allow_leaks``).
    """

    def decorate(test: Callable[..., None]) -> Callable[..., None]:
        if IS_HTTPX:
            test = pytest.mark.allow_leaks(test)
        return pytest.mark.xfail(IS_HTTPX, reason=f"httpx 0.28.1: {reason}", strict=True)(test)

    return decorate


LOOP_CLOSED = (
    "pooled connection belongs to a closed event loop (RuntimeError: Event loop is closed)"
)
THREADS = 16
RUNS_PER_THREAD = 20
REQUEST_DEADLINE = 15.0  # per request, so a hang fails instead of stalling the suite

# trust_env=False: this client is built at import time, before clean_environ runs.
SHARED = loopfree.AsyncClient(timeout=10, trust_env=False)


@pytest.fixture(scope="module", autouse=True)
def close_shared_client() -> Iterator[None]:
    yield
    with contextlib.suppress(Exception) if IS_HTTPX else contextlib.nullcontext():
        asyncio.run(SHARED.aclose())


# --------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------


async def get_ok(client: Any, url: str, **kwargs: Any) -> Any:
    async with asyncio.timeout(REQUEST_DEADLINE):
        response = await client.get(url, **kwargs)
    assert response.status_code == 200, response.text
    return response


def aclose_in_new_loop(client: Any) -> None:
    asyncio.run(client.aclose())


@contextlib.contextmanager
def captured_unraisables() -> Iterator[list[str]]:
    """Collect sys.unraisablehook calls (from any thread) into a list."""
    caught: list[str] = []
    previous = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        caught.append(
            f"{unraisable.err_msg or 'Exception ignored in'}: {unraisable.object!r}: {unraisable.exc_value!r}"
        )

    sys.unraisablehook = hook
    try:
        yield caught
    finally:
        sys.unraisablehook = previous


@contextlib.contextmanager
def captured_asyncio_errors() -> Iterator[list[str]]:
    """Collect ERROR+ records of the ``asyncio`` logger (from any thread)."""
    records: list[str] = []

    class Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Handler(level=logging.ERROR)
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield records
    finally:
        logger.removeHandler(handler)


@contextlib.contextmanager
def captured_resource_warnings() -> Iterator[list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        collected: list[str] = []
        yield collected
    collected.extend(
        f"{w.category.__name__}: {w.message}"
        for w in caught
        if issubclass(w.category, ResourceWarning)
    )


def run_threads(count: int, target: Callable[[int], None], timeout: float = 90) -> list[str]:
    """Run ``target(i)`` in ``count`` threads; return formatted errors."""
    errors: list[str] = []
    lock = threading.Lock()

    def wrapper(i: int) -> None:
        try:
            target(i)
        except BaseException as exc:
            with lock:
                errors.append(f"thread {i}: {type(exc).__name__}: {exc}")

    threads = [
        threading.Thread(target=wrapper, args=(i,), name=f"caller-{i}", daemon=True)
        for i in range(count)
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    if stuck:
        errors.append(f"threads still running after {timeout}s: {stuck}")
    return errors


# --------------------------------------------------------------------------
# Scenarios
# --------------------------------------------------------------------------


@fails_with_httpx(LOOP_CLOSED)
def test_module_level_client_across_20_asyncio_runs(server):
    url = server.url + "/echo_request"
    for i in range(20):
        response = asyncio.run(get_ok(SHARED, url, params={"run": str(i)}))
        assert response.json()["query_string"] == f"run={i}"


@fails_with_httpx(LOOP_CLOSED)
def test_16_threads_each_running_20_event_loops(server):
    client = loopfree.AsyncClient(timeout=10)
    barrier = threading.Barrier(THREADS, timeout=30)
    done = [0] * THREADS

    def caller(i: int) -> None:
        barrier.wait()  # all threads start their loops at the same moment
        for n in range(RUNS_PER_THREAD):
            response = asyncio.run(
                get_ok(client, server.url + "/echo_request", params={"t": str(i), "n": str(n)})
            )
            # Responses must never be crossed between threads or loops.
            assert response.json()["query_string"] == f"t={i}&n={n}"
            done[i] += 1

    try:
        errors = run_threads(THREADS, caller)
    finally:
        with contextlib.suppress(Exception) if IS_HTTPX else contextlib.nullcontext():
            aclose_in_new_loop(client)
    assert errors == []
    assert done == [RUNS_PER_THREAD] * THREADS


@fails_with_httpx("closing the expired connection needs the closed loop that opened it")
def test_idle_past_keepalive_expiry_then_new_loop(server):
    client = loopfree.AsyncClient(limits=loopfree.Limits(keepalive_expiry=0.5), timeout=10)
    try:
        asyncio.run(get_ok(client, server.url + "/"))
        time.sleep(1.0)  # the pooled connection expires while no loop runs
        for _ in range(2):
            response = asyncio.run(get_ok(client, server.url + "/json"))
            assert response.json() == {"Hello": "world!"}
            time.sleep(0.7)
    finally:
        with contextlib.suppress(Exception) if IS_HTTPX else contextlib.nullcontext():
            aclose_in_new_loop(client)


@fails_with_httpx("unclosed transports of the dead loop emit ResourceWarning when collected")
def test_unclosed_clients_collected_after_their_loop_closed(server):
    async def use_and_abandon() -> weakref.ref:
        client = loopfree.AsyncClient(timeout=10)
        for _ in range(2):
            await get_ok(client, server.url + "/")
        # A stream left half-read as well.
        stream = client.stream("GET", server.url + "/bytes?n=200000")
        response = await stream.__aenter__()
        assert response.status_code == 200
        return weakref.ref(client)

    with (
        captured_unraisables() as unraisables,
        captured_asyncio_errors() as asyncio_errors,
        captured_resource_warnings() as resource_warnings,
    ):
        refs = [asyncio.run(use_and_abandon()) for _ in range(3)]
        for _ in range(3):
            gc.collect()
        time.sleep(0.2)  # let any background thread report
        gc.collect()

    assert [ref() for ref in refs] == [None, None, None], "clients were not garbage-collected"
    assert unraisables == []
    assert asyncio_errors == []
    assert resource_warnings == []


def test_sync_client_inside_running_event_loop(server):
    """The Jupyter case: blocking calls from inside a running asyncio loop."""
    with loopfree.Client(timeout=10) as client:

        async def notebook_cell() -> list[Any]:
            asyncio.get_running_loop()  # really inside a running loop
            responses = [client.get(server.url + "/json") for _ in range(3)]
            responses.append(loopfree.get(server.url + "/"))
            return responses

        responses = asyncio.run(notebook_cell())
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            responses += runner.run(notebook_cell())

    assert [r.status_code for r in responses] == [200] * 8
    assert responses[0].json() == {"Hello": "world!"}


@fails_with_httpx(LOOP_CLOSED)
def test_wait_for_timeout_cancels_promptly_and_client_survives(server):
    client = loopfree.AsyncClient(timeout=10)

    async def cancel_one() -> float:
        await get_ok(client, server.url + "/")  # warm: connection pooled
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(client.get(server.url + "/slow?delay=2"), 0.05)
        return time.monotonic() - started

    try:
        elapsed = asyncio.run(cancel_one())
        assert elapsed < 0.1, f"cancellation took {elapsed:.3f}s"
        for i in range(3):
            response = asyncio.run(
                get_ok(client, server.url + "/echo_request", params={"i": str(i)})
            )
            assert response.json()["query_string"] == f"i={i}"
    finally:
        with contextlib.suppress(Exception) if IS_HTTPX else contextlib.nullcontext():
            aclose_in_new_loop(client)


@fails_with_httpx(LOOP_CLOSED)
def test_uvloop_runs_share_one_client(server):
    client = loopfree.AsyncClient(timeout=10)
    try:
        for i in range(4):
            with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                assert isinstance(runner.get_loop(), uvloop.Loop)
                response = runner.run(
                    get_ok(client, server.url + "/echo_request", params={"i": str(i)})
                )
                assert response.json()["query_string"] == f"i={i}"
            # ...interleaved with a plain asyncio loop.
            asyncio.run(get_ok(client, server.url + "/"))
        uvloop.run(get_ok(client, server.url + "/json"))
    finally:
        with contextlib.suppress(Exception) if IS_HTTPX else contextlib.nullcontext():
            aclose_in_new_loop(client)


@fails_with_httpx("connections opened under one async library are reused under another")
def test_trio_and_asyncio_runs_share_one_client(server):
    client = loopfree.AsyncClient(timeout=10)

    async def trio_get(i: int) -> Any:
        assert sniffio.current_async_library() == "trio"
        with trio.fail_after(REQUEST_DEADLINE):
            response = await client.get(server.url + "/echo_request", params={"trio": str(i)})
        assert response.status_code == 200
        return response

    try:
        for i in range(3):
            response = trio.run(trio_get, i)
            assert response.json()["query_string"] == f"trio={i}"
            asyncio.run(get_ok(client, server.url + "/"))
    finally:
        with contextlib.suppress(Exception) if IS_HTTPX else contextlib.nullcontext():
            aclose_in_new_loop(client)


def test_in_flight_request_cancelled_by_asyncio_run_shutdown(server, capfd):
    """asyncio.run() cancels a still-running request task, then closes its loop.

    When the server answers ~2 s later nothing may complain: no unraisable
    exception, no asyncio error log, nothing on stderr.  The client then still
    works from a new loop.
    """
    client = loopfree.AsyncClient(timeout=10)

    async def main() -> None:
        task = asyncio.create_task(client.get(server.url + "/slow?delay=2"))
        await asyncio.sleep(0.3)
        assert not task.done()  # in flight; asyncio.run will cancel it

    async def use_then_close() -> Any:
        try:
            return await get_ok(client, server.url + "/json")
        finally:
            await client.aclose()

    with captured_unraisables() as unraisables, captured_asyncio_errors() as asyncio_errors:
        try:
            asyncio.run(main())
            time.sleep(2.5)  # the server has answered by now
            gc.collect()
            gc.collect()
        finally:
            response = asyncio.run(use_then_close())
    assert unraisables == []
    assert asyncio_errors == []
    stderr = capfd.readouterr().err
    for marker in ("Traceback", "Exception", "Error", "panicked"):
        assert marker not in stderr, stderr
    assert response.json() == {"Hello": "world!"}


def test_sync_client_shared_by_16_threads(server):
    barrier = threading.Barrier(THREADS, timeout=30)
    done = [0] * THREADS
    with loopfree.Client(timeout=10) as client:

        def caller(i: int) -> None:
            barrier.wait()
            for n in range(RUNS_PER_THREAD):
                response = client.get(
                    server.url + "/echo_request", params={"t": str(i), "n": str(n)}
                )
                assert response.status_code == 200
                assert response.json()["query_string"] == f"t={i}&n={n}"
                done[i] += 1

        errors = run_threads(THREADS, caller)
    assert errors == []
    assert done == [RUNS_PER_THREAD] * THREADS


@fails_with_httpx(LOOP_CLOSED)
def test_async_client_used_from_threads_and_main_thread_loops(server):
    """A client created in one thread, used by loops in others, closed in a third."""
    holder: dict[str, Any] = {}
    created = threading.Thread(
        target=lambda: holder.setdefault("client", loopfree.AsyncClient(timeout=10))
    )
    created.start()
    created.join(10)
    client = holder["client"]
    try:
        asyncio.run(get_ok(client, server.url + "/"))

        def caller(i: int) -> None:
            for _ in range(3):
                asyncio.run(get_ok(client, server.url + "/"))

        assert run_threads(4, caller, timeout=60) == []
        asyncio.run(get_ok(client, server.url + "/"))
    finally:
        # Closed from yet another thread and loop.
        close_errors = run_threads(1, lambda _: aclose_in_new_loop(client), timeout=10)
    assert IS_HTTPX or close_errors == []
    assert client.is_closed
