"""One measurement in a fresh process: `python benches/_worker.py SPEC_JSON`.

`benches/run.py` starts this pinned to CPU 0 (`taskset -c 0`), once per
(scenario, client, round). It imports the client library, builds the client,
warms up, then runs a closed loop for a fixed time and prints ONE line
``RESULT {json}`` with:

- ``ops``, ``errors``, ``bytes``, ``elapsed`` (s) of the measured window;
- ``cpu_s``: user+sys CPU of this whole process (every thread, Rust runtimes
  included) in that window, from ``resource.getrusage(RUSAGE_SELF)``;
- ``base_kb``: RSS with the client built, before its first request; the
  peak RSS (VmHWM) is reset there, so ``hwm_kb`` is the peak over the warm-up
  and the window, and ``hwm_kb - base_kb`` what the requests cost at most;
- ``rss0_kb``/``rss1_kb``: RSS at the start and the end of the window;
- ``srv_cpu_s``: CPU the server process used in the window (from /proc);
- ``sys_busy_s``: CPU time all CPUs were busy in the window (/proc/stat), so
  the harness can flag load from other processes;
- ``conns``: connections the server accepted in the window (its `/stats`);
- ``gc_collections``/``gc_collected``: Python GC activity in the window;
- kind-specific extras (``construct_us``, ``rss_samples_kb``).

Spec keys: client, kind (get|upload|newclient|construct|rss), api
(sync|async), concurrency, url, h2, ca, expect_len, size, duration, warmup,
server_pid, stats_url, count.
"""

from __future__ import annotations

import asyncio
import gc
import http.client
import json
import os
import resource
import sys
import threading
import time
import traceback
import typing
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _clients

CLK_TCK = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------- metrics


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak_rss() -> None:
    # "5" resets VmHWM to the current RSS (Linux >= 4.0); best effort.
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
    except OSError:
        pass


def baseline_rss() -> int | None:
    """RSS once the client is built, before any request; peak RSS counts from here."""
    gc.collect()
    reset_peak_rss()
    return status_kb("VmRSS:")


def server_cpu(pid: int | None) -> float | None:
    if not pid:
        return None
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def system_busy() -> float | None:
    """CPU seconds all CPUs spent busy (from /proc/stat), to spot foreign load."""
    try:
        with open("/proc/stat") as handle:
            fields = [int(v) for v in handle.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def server_connections(stats_url: str | None) -> int | None:
    if not stats_url:
        return None
    parts = urlsplit(stats_url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
    try:
        conn.request("GET", parts.path)
        return int(json.loads(conn.getresponse().read())["connections"])
    except (OSError, ValueError, KeyError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def gc_totals() -> tuple[int, int]:
    stats = gc.get_stats()
    return sum(s["collections"] for s in stats), sum(s["collected"] for s in stats)


class Tally:
    __slots__ = ("bytes", "errors", "first_error", "ops")

    def __init__(self) -> None:
        self.ops = 0
        self.errors = 0
        self.bytes = 0
        self.first_error: str | None = None

    def fail(self, what: str) -> None:
        self.errors += 1
        if self.first_error is None:
            self.first_error = what[:300]

    def add(self, other: Tally) -> None:
        self.ops += other.ops
        self.errors += other.errors
        self.bytes += other.bytes
        if self.first_error is None:
            self.first_error = other.first_error


# --------------------------------------------------------------------- loops


def make_sync_op(
    spec: dict[str, typing.Any], adapter: _clients.Adapter
) -> typing.Callable[[], tuple[int, int]]:
    """The one request the sync loop repeats (on a shared session)."""
    url, kind = spec["url"], spec["kind"]
    if kind == "newclient":
        assert adapter.sync_session is not None

        def new_client_get() -> tuple[int, int]:
            session = adapter.sync_session(False, spec.get("ca"))  # type: ignore[misc]
            try:
                return session.get(url)
            finally:
                session.close()

        return new_client_get
    session = adapter.sync_session(spec.get("h2", False), spec.get("ca"))  # type: ignore[misc]
    if kind == "upload":
        data = b"u" * spec["size"]
        return lambda: (session.post(url, data)[0], len(data))
    return lambda: session.get(url)


def sync_loop(
    op: typing.Callable[[], tuple[int, int]], expect: int | None, deadline: float
) -> Tally:
    tally = Tally()
    clock = time.perf_counter
    while clock() < deadline:
        try:
            status, length = op()
        except Exception as exc:
            tally.fail(f"{type(exc).__name__}: {exc}")
            time.sleep(0.001)
            continue
        if status == 200 and (expect is None or length == expect):
            tally.ops += 1
            tally.bytes += length
        else:
            tally.fail(f"status {status}, {length} bytes")
    return tally


def run_sync(
    op: typing.Callable[[], tuple[int, int]], spec: dict[str, typing.Any], seconds: float
) -> Tally:
    threads = max(1, int(spec.get("concurrency", 1)))
    deadline = time.perf_counter() + seconds
    expect = spec.get("expect_len")
    if threads == 1:
        return sync_loop(op, expect, deadline)
    tallies: list[Tally] = []

    def target() -> None:
        tallies.append(sync_loop(op, expect, deadline))

    pool = [threading.Thread(target=target, daemon=True) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=seconds + 120)
    total = Tally()
    for tally in tallies:
        total.add(tally)
    if len(tallies) != threads:
        total.fail(f"{threads - len(tallies)} threads did not finish")
    return total


async def async_loop(
    op: typing.Callable[[], typing.Awaitable[tuple[int, int]]], expect: int | None, deadline: float
) -> Tally:
    tally = Tally()
    clock = time.perf_counter
    while clock() < deadline:
        try:
            status, length = await op()
        except Exception as exc:
            tally.fail(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(0.001)
            continue
        if status == 200 and (expect is None or length == expect):
            tally.ops += 1
            tally.bytes += length
        else:
            tally.fail(f"status {status}, {length} bytes")
    return tally


async def run_async_window(
    op: typing.Callable[[], typing.Awaitable[tuple[int, int]]],
    spec: dict[str, typing.Any],
    seconds: float,
) -> Tally:
    deadline = time.perf_counter() + seconds
    tasks = max(1, int(spec.get("concurrency", 1)))
    results = await asyncio.gather(
        *(async_loop(op, spec.get("expect_len"), deadline) for _ in range(tasks)),
        return_exceptions=True,
    )
    total = Tally()
    for result in results:
        if isinstance(result, BaseException):
            total.fail(f"{type(result).__name__}: {result}")
        else:
            total.add(result)
    return total


# --------------------------------------------------------------------- measurement


class Window:
    """Metrics around the measured window."""

    def __init__(self, spec: dict[str, typing.Any]) -> None:
        self.spec = spec

    def __enter__(self) -> Window:
        gc.collect()
        self.conns0 = server_connections(self.spec.get("stats_url"))
        self.rss0 = status_kb("VmRSS:")
        self.gc0 = gc_totals()
        self.srv0 = server_cpu(self.spec.get("server_pid"))
        self.busy0 = system_busy()
        self.cpu0 = cpu_seconds()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.elapsed = time.perf_counter() - self.t0
        self.cpu = cpu_seconds() - self.cpu0
        busy1 = system_busy()
        self.busy = None if busy1 is None or self.busy0 is None else busy1 - self.busy0
        srv1 = server_cpu(self.spec.get("server_pid"))
        self.srv = None if srv1 is None or self.srv0 is None else srv1 - self.srv0
        self.gc1 = gc_totals()
        self.hwm = status_kb("VmHWM:")
        self.rss1 = status_kb("VmRSS:")
        conns1 = server_connections(self.spec.get("stats_url"))
        self.conns = None if conns1 is None or self.conns0 is None else conns1 - self.conns0

    def result(self, tally: Tally, base_kb: int | None) -> dict[str, typing.Any]:
        return {
            "base_kb": base_kb,
            "ops": tally.ops,
            "errors": tally.errors,
            "first_error": tally.first_error,
            "bytes": tally.bytes,
            "elapsed": self.elapsed,
            "cpu_s": self.cpu,
            "rss0_kb": self.rss0,
            "hwm_kb": self.hwm,
            "rss1_kb": self.rss1,
            "srv_cpu_s": self.srv,
            "sys_busy_s": self.busy,
            "conns": self.conns,
            "gc_collections": self.gc1[0] - self.gc0[0],
            "gc_collected": self.gc1[1] - self.gc0[1],
        }


def measure_sync(spec: dict[str, typing.Any], adapter: _clients.Adapter) -> dict[str, typing.Any]:
    op = make_sync_op(spec, adapter)
    base_kb = baseline_rss()
    op()  # one request first: connect (and fail early if the client cannot)
    run_sync(op, spec, spec["warmup"])
    with Window(spec) as window:
        tally = run_sync(op, spec, spec["duration"])
    return window.result(tally, base_kb)


async def make_async_op(
    spec: dict[str, typing.Any], adapter: _clients.Adapter
) -> tuple[
    typing.Callable[[], typing.Awaitable[tuple[int, int]]],
    typing.Callable[[], typing.Awaitable[None]],
]:
    url, kind = spec["url"], spec["kind"]
    assert adapter.async_session is not None
    if kind == "newclient":

        async def new_client_get() -> tuple[int, int]:
            session = await adapter.async_session(False, spec.get("ca"))  # type: ignore[misc]
            try:
                return await session.get(url)
            finally:
                await session.close()

        async def nothing() -> None:
            return None

        return new_client_get, nothing
    session = await adapter.async_session(spec.get("h2", False), spec.get("ca"))
    if kind == "upload":
        data = b"u" * spec["size"]

        async def upload() -> tuple[int, int]:
            status, _ = await session.post(url, data)
            return status, len(data)

        return upload, session.close
    return (lambda: session.get(url)), session.close


async def measure_async(
    spec: dict[str, typing.Any], adapter: _clients.Adapter
) -> dict[str, typing.Any]:
    op, close = await make_async_op(spec, adapter)
    base_kb = baseline_rss()
    await op()  # one request first: connect (h2: exactly one connection)
    await run_async_window(op, spec, spec["warmup"])
    with Window(spec) as window:
        tally = await run_async_window(op, spec, spec["duration"])
    await close()
    return window.result(tally, base_kb)


def measure_construct(
    spec: dict[str, typing.Any], adapter: _clients.Adapter
) -> dict[str, typing.Any]:
    """µs to build a client once one has been built (the first is not timed)."""
    assert adapter.construct is not None and adapter.destroy is not None
    construct, destroy = adapter.construct, adapter.destroy
    count, budget = spec["count"], spec["duration"]

    async def in_loop() -> list[float]:
        return run()

    def run() -> list[float]:
        samples: list[float] = []
        first = construct()
        finish(destroy(first))
        deadline = time.perf_counter() + budget
        while len(samples) < count and time.perf_counter() < deadline:
            t0 = time.perf_counter()
            client = construct()
            samples.append((time.perf_counter() - t0) * 1e6)
            finish(destroy(client))
        return samples

    pending: list[typing.Any] = []

    def finish(maybe_awaitable: typing.Any) -> None:
        if maybe_awaitable is not None and hasattr(maybe_awaitable, "__await__"):
            pending.append(maybe_awaitable)

    if adapter.async_construct:

        async def main() -> list[float]:
            samples = await in_loop()
            for awaitable in pending:
                await awaitable
            return samples

        samples = asyncio.run(main())
    else:
        samples = run()
    samples.sort()
    return {
        "ops": len(samples),
        "errors": 0,
        "construct_us": samples[len(samples) // 2] if samples else None,
        "construct_min_us": samples[0] if samples else None,
    }


def measure_rss(spec: dict[str, typing.Any], adapter: _clients.Adapter) -> dict[str, typing.Any]:
    """A long run of `count` requests, sampling RSS 20 times along the way."""
    total, samples_wanted = spec["count"], 20
    step = max(1, total // samples_wanted)
    samples: list[int | None] = []
    tally = Tally()
    expect = spec.get("expect_len")
    deadline = time.perf_counter() + spec["duration"]  # a safety bound, not the target

    def record(status: int, length: int) -> None:
        if status == 200 and (expect is None or length == expect):
            tally.ops += 1
        else:
            tally.fail(f"status {status}, {length} bytes")

    t0 = time.perf_counter()
    cpu0 = cpu_seconds()
    if spec["api"] == "sync":
        op = make_sync_op(spec, adapter)
        for i in range(total):
            if i % step == 0:
                samples.append(status_kb("VmRSS:"))
                if time.perf_counter() > deadline:
                    tally.fail("time bound reached before the request count")
                    break
            try:
                record(*op())
            except Exception as exc:
                tally.fail(f"{type(exc).__name__}: {exc}")
    else:

        async def main() -> None:
            aop, close = await make_async_op(spec, adapter)
            counter = iter(range(total))
            tasks = max(1, int(spec.get("concurrency", 1)))

            async def task() -> None:
                for i in counter:
                    if i % step == 0:
                        samples.append(status_kb("VmRSS:"))
                        if time.perf_counter() > deadline:
                            tally.fail("time bound reached before the request count")
                            return
                    try:
                        record(*(await aop()))
                    except Exception as exc:
                        tally.fail(f"{type(exc).__name__}: {exc}")

            await asyncio.gather(*(task() for _ in range(tasks)))
            await close()

        asyncio.run(main())
    samples.append(status_kb("VmRSS:"))
    return {
        "ops": tally.ops,
        "errors": tally.errors,
        "first_error": tally.first_error,
        "elapsed": time.perf_counter() - t0,
        "cpu_s": cpu_seconds() - cpu0,
        "rss_samples_kb": samples,
        "hwm_kb": status_kb("VmHWM:"),
    }


def main() -> int:
    spec = json.loads(sys.argv[1])
    try:
        adapter = _clients.FACTORIES[spec["client"]]()
        kind = spec["kind"]
        if kind == "construct":
            result = measure_construct(spec, adapter)
        elif kind == "rss":
            result = measure_rss(spec, adapter)
        elif spec["api"] == "sync":
            result = measure_sync(spec, adapter)
        else:
            result = asyncio.run(measure_async(spec, adapter))
    except Exception as exc:
        traceback.print_exc()
        result = {"fatal": f"{type(exc).__name__}: {exc}"[:500]}
    print("RESULT " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    # Leave without waiting for non-daemon library threads or slow finalizers.
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
