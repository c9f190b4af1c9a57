"""gevent (and eventlet): a sync Client parks the greenlet, not the hub.

Monkey-patching is process-wide and irreversible, so every scenario runs in a
driver interpreter that calls ``monkey.patch_all()`` before anything else;
the pytest process is never patched. Upstreams are the session's uvicorn
``server`` (``/slow?delay=S`` answers after S seconds).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import pytest
from contexts_support import CHILD_PRELUDE, PYTHON, gunicorn, http_get, run_python

GEVENT_PRELUDE = "from gevent import monkey\nmonkey.patch_all()\n"


def run_gevent(source: str, *args: str, timeout: float = 30) -> dict:
    """Run a driver whose very first statement is ``monkey.patch_all()``."""
    code = GEVENT_PRELUDE + CHILD_PRELUDE + textwrap.dedent(source)
    done = run_python(code, *args, timeout=timeout, prelude=False)
    assert done.returncode == 0, done.describe()
    return done.result


HEARTBEAT = """
import gevent
import loopfree

url = _sys.argv[1]
ticks = 0

def heartbeat():
    global ticks
    while True:
        gevent.sleep(0.01)
        ticks += 1

def timed(fn, *args, **kwargs):
    started = _time.monotonic()
    try:
        return ["ok", fn(*args, **kwargs).status_code, _time.monotonic() - started]
    except Exception as exc:
        return [type(exc).__name__, str(exc), _time.monotonic() - started]
"""


def test_ten_greenlets_run_concurrently_and_the_hub_keeps_ticking(server):
    result = run_gevent(
        HEARTBEAT
        + """
client = loopfree.Client(timeout=10)
client.get(url + "/")  # runtime started, one pooled connection
beat = gevent.spawn(heartbeat)
started = _time.monotonic()
jobs = [gevent.spawn(timed, client.get, url + "/slow?delay=0.2") for _ in range(10)]
gevent.joinall(jobs, timeout=10)
elapsed = _time.monotonic() - started
beat.kill()
emit({"results": [job.value for job in jobs], "elapsed": elapsed, "ticks": ticks,
      "patched": monkey.is_module_patched("socket")})
""",
        server.url,
    )
    assert result["patched"]
    assert [r[:2] for r in result["results"]] == [["ok", 200]] * 10
    # Ten 200 ms requests, concurrently: well under the 2 s they take in turn.
    assert result["elapsed"] < 0.4, result
    # A 10 ms heartbeat over ~0.2 s: ~20 ticks if the hub never blocked; a
    # blocking wait would give 0-1.
    assert result["ticks"] >= 10, result


def test_pool_exhaustion_waits_cooperatively(server):
    result = run_gevent(
        HEARTBEAT
        + """
client = loopfree.Client(timeout=10, limits=loopfree.Limits(max_connections=2))
client.get(url + "/")
beat = gevent.spawn(heartbeat)
started = _time.monotonic()
jobs = [gevent.spawn(timed, client.get, url + "/slow?delay=0.2") for _ in range(6)]
gevent.joinall(jobs, timeout=10)
elapsed = _time.monotonic() - started
beat.kill()
emit({"results": [job.value for job in jobs], "elapsed": elapsed, "ticks": ticks})
""",
        server.url,
    )
    assert [r[:2] for r in result["results"]] == [["ok", 200]] * 6, result
    # Six 200 ms requests through two connections: three waves, ~0.6 s. Less
    # would mean the limit was ignored; much more, that waiting serialised.
    assert 0.55 <= result["elapsed"] < 1.2, result
    assert result["ticks"] >= 30, result


def test_pool_timeout_raises_without_deadlock(server):
    result = run_gevent(
        HEARTBEAT
        + """
client = loopfree.Client(
    timeout=loopfree.Timeout(5, pool=0.1), limits=loopfree.Limits(max_connections=2)
)
client.get(url + "/")
beat = gevent.spawn(heartbeat)
started = _time.monotonic()
jobs = [gevent.spawn(timed, client.get, url + "/slow?delay=0.5") for _ in range(6)]
gevent.joinall(jobs, timeout=10)
elapsed = _time.monotonic() - started
after = timed(client.get, url + "/")
beat.kill()
emit({"results": [job.value for job in jobs], "elapsed": elapsed, "ticks": ticks,
      "after": after})
""",
        server.url,
    )
    outcomes = sorted(r[0] for r in result["results"])
    assert outcomes == ["PoolTimeout"] * 4 + ["ok"] * 2, result
    for outcome, _, took in result["results"]:
        if outcome == "PoolTimeout":
            assert 0.09 <= took < 0.4, result  # the 0.1 s pool timeout, promptly
    assert result["elapsed"] < 1.2, result
    assert result["ticks"] >= 30, result
    assert result["after"][:2] == ["ok", 200]  # permits came back


def test_gevent_timeout_cancels_the_request_and_frees_the_connection(server):
    result = run_gevent(
        HEARTBEAT
        + """
client = loopfree.Client(timeout=10, limits=loopfree.Limits(max_connections=1))
client.get(url + "/")
started = _time.monotonic()
try:
    with gevent.Timeout(0.1):
        client.get(url + "/slow?delay=5")
    outcome = "no timeout"
except gevent.Timeout:
    outcome = "timeout"
took = _time.monotonic() - started
# With one connection allowed, this only works if the cancelled request
# gave its permit back; pool=1 s turns a leak into PoolTimeout.
after = timed(client.get, url + "/", timeout=loopfree.Timeout(5, pool=1))
emit({"outcome": outcome, "took": took, "after": after})
""",
        server.url,
    )
    assert result["outcome"] == "timeout"
    assert result["took"] < 0.3, result
    assert result["after"][:2] == ["ok", 200], result


def test_gevent_threadpool_threads_share_the_client(server):
    """Native threads of gevent's threadpool (each with its own hub) also wait fine."""
    result = run_gevent(
        HEARTBEAT
        + """
client = loopfree.Client(timeout=10)
client.get(url + "/")
beat = gevent.spawn(heartbeat)
pool = gevent.get_hub().threadpool
started = _time.monotonic()
jobs = [pool.spawn(timed, client.get, url + "/slow?delay=0.2") for _ in range(4)]
gevent.joinall(jobs, timeout=10)
elapsed = _time.monotonic() - started
beat.kill()
emit({"results": [job.value for job in jobs], "elapsed": elapsed, "ticks": ticks})
""",
        server.url,
    )
    assert [r[:2] for r in result["results"]] == [["ok", 200]] * 4, result
    assert result["elapsed"] < 0.4, result
    assert result["ticks"] >= 10, result


# --------------------------------------------------------------------------
# gunicorn -k gevent
# --------------------------------------------------------------------------

GEVENT_APP = """
import os

from flask import Flask, jsonify

import loopfree
from loopfree import _loopfree

UPSTREAM = os.environ["UPSTREAM"]
client = loopfree.Client(timeout=10)
if os.environ.get("USE_AT_IMPORT"):
    client.get(UPSTREAM + "/json")
app = Flask(__name__)


@app.get("/health")
def health():
    return "ok"


@app.get("/slow/<int:n>")
def slow(n):
    from gevent import monkey

    response = client.get(UPSTREAM + "/slow", params={"delay": "0.5", "n": n})
    return jsonify(
        status=response.status_code,
        pid=os.getpid(),
        patched=monkey.is_module_patched("socket"),
        abandoned=_loopfree.abandoned_runtimes(),
    )
"""


@pytest.mark.parametrize("preload", [False, True], ids=["no-preload", "preload"])
def test_gunicorn_gevent_worker_makes_concurrent_upstream_calls(server, tmp_path: Path, preload):
    (tmp_path / "gevent_app.py").write_text(GEVENT_APP)
    args = ["-k", "gevent", "-w", "1", "--worker-connections", "100", "--timeout", "30"]
    env = {"UPSTREAM": server.url}
    if preload:
        args.append("--preload")
        env["USE_AT_IMPORT"] = "1"
    callers = 8
    results: list[tuple[int, str]] = []
    lock = threading.Lock()
    with gunicorn(tmp_path, "gevent_app:app", args, env=env) as running:
        http_get(running.port, "/slow/0")  # worker warmed up, runtime started

        def call(n: int) -> None:
            try:
                outcome = http_get(running.port, f"/slow/{n}", timeout=10)
            except OSError as exc:
                outcome = (0, repr(exc))
            with lock:
                results.append(outcome)

        threads = [threading.Thread(target=call, args=(n,), daemon=True) for n in range(callers)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        elapsed = time.monotonic() - started
        log = running.log()
    assert len(results) == callers, log
    bodies = [json.loads(body) if status == 200 else body for status, body in results]
    assert all(status == 200 for status, _ in results), (bodies, log)
    assert {b["status"] for b in bodies} == {200}
    assert all(b["patched"] for b in bodies)
    assert len({b["pid"] for b in bodies}) == 1  # one worker served them all
    assert {b["abandoned"] for b in bodies} == ({1} if preload else {0})
    # Eight 0.5 s upstream calls in one worker process: ~0.5 s if they overlap,
    # 4 s if the wait blocked the worker's hub.
    assert elapsed < 1.5, (elapsed, log)


# --------------------------------------------------------------------------
# eventlet (not a dev dependency: runs only where it is installed)
# --------------------------------------------------------------------------


def _eventlet_available() -> bool:
    if importlib.util.find_spec("eventlet") is not None:
        return True
    # Also honour an eventlet reachable only through PYTHONPATH for the driver.
    probe = subprocess.run(
        [PYTHON, "-c", "import eventlet"], capture_output=True, timeout=30, env=dict(os.environ)
    )
    return probe.returncode == 0


needs_eventlet = pytest.mark.skipif(
    not _eventlet_available(), reason="eventlet is not installed (it is a pinned dev dependency)"
)

EVENTLET_DRIVER = """
import warnings
warnings.simplefilter("ignore")
import eventlet
eventlet.monkey_patch()
import loopfree

url = _sys.argv[1]
client = loopfree.Client(timeout=10)
client.get(url + "/")
ticks = 0

def heartbeat():
    global ticks
    while True:
        eventlet.sleep(0.01)
        ticks += 1

beat = eventlet.spawn(heartbeat)
started = _time.monotonic()
pool = eventlet.GreenPool()
statuses = list(pool.imap(lambda _: client.get(url + "/slow?delay=0.2").status_code, range(10)))
elapsed = _time.monotonic() - started
beat.kill()
emit({"statuses": statuses, "elapsed": elapsed, "ticks": ticks})
"""


@needs_eventlet
def test_eventlet_green_threads_get_correct_responses(server):
    done = run_python(EVENTLET_DRIVER, server.url, timeout=30)
    assert done.returncode == 0, done.describe()
    assert done.result["statuses"] == [200] * 10


@needs_eventlet
def test_eventlet_green_threads_run_concurrently(server):
    done = run_python(EVENTLET_DRIVER, server.url, timeout=30)
    assert done.returncode == 0, done.describe()
    assert done.result["elapsed"] < 0.4, done.result
    assert done.result["ticks"] >= 10, done.result
