"""Clients used before ``fork()`` keep working in the child and the parent.

Each scenario runs in a driver interpreter (``run_python``) that forks; every
forked child is reaped against a deadline and SIGKILLed on expiry, so a
regression (a child waiting forever on the parent's dead runtime threads)
fails the test instead of hanging it. The servers that record which TCP
connection served which request run here, in the pytest process, so the
proof that a child never touched its parent's pooled connection comes from
the server side.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from pathlib import Path

import pytest
from contexts_support import gunicorn, http_get, run_python

CHILD_TIMEOUT = 15  # seconds a forked child may take before it counts as hung


# --------------------------------------------------------------------------
# Plain os.fork()
# --------------------------------------------------------------------------

FORK_DRIVER = """
import asyncio
import loopfree
from loopfree import _loopfree

url = _sys.argv[1]
verify = _sys.argv[2] or True
client = loopfree.Client(timeout=10, verify=verify)
aclient = loopfree.AsyncClient(timeout=10, verify=verify)

def sync_get(path):
    response = client.get(url + path)
    return [response.status_code, response.json()["conn"]]

def async_get(path):
    async def main():
        response = await aclient.get(url + path)
        return [response.status_code, response.json()["conn"]]
    return asyncio.run(main())

result = {"parent_pid": _os.getpid()}
result["before"] = [sync_get("/parent/sync/1"), sync_get("/parent/sync/2"),
                    async_get("/parent/async/1"), async_get("/parent/async/2")]
result["parent_abandoned_before"] = _loopfree.abandoned_runtimes()

def child():
    started = _time.monotonic()
    out = {"pid": _os.getpid()}
    out["sync"] = [sync_get("/child/sync/1"), sync_get("/child/sync/2")]
    out["async"] = [async_get("/child/async/1"), async_get("/child/async/2")]
    out["abandoned"] = _loopfree.abandoned_runtimes()
    out["pool_pid"] = client._engine.pool_pid
    out["elapsed"] = _time.monotonic() - started
    return out

result["child_exit"], result["child"] = run_child(child, CHILD_TIMEOUT)
result["after"] = [sync_get("/parent/sync/3"), async_get("/parent/async/3")]
result["parent_abandoned_after"] = _loopfree.abandoned_runtimes()
result["parent_pool_pid"] = client._engine.pool_pid
finish(result)
"""


def run_fork_driver(url: str, verify: str = "") -> dict:
    source = f"CHILD_TIMEOUT = {CHILD_TIMEOUT}\n" + textwrap.dedent(FORK_DRIVER)
    done = run_python(source, url, verify, timeout=60)
    assert done.returncode == 0, done.describe()
    return done.result


@pytest.fixture(params=["http", "https"])
def logged_server(request: pytest.FixtureRequest):
    """(server, verify) for the plain and the TLS connection-logging server.

    Over TLS a child that wrote to, or closed (close_notify), its parent's
    connection would also break the parent's session, not only show up in
    the server's log.
    """
    if request.param == "http":
        return request.getfixturevalue("conn_log_server"), ""
    return request.getfixturevalue("tls_conn_log_server"), request.getfixturevalue("ca_cert_path")


def test_sync_and_async_clients_keep_working_after_fork(logged_server):
    server, verify = logged_server
    result = run_fork_driver(server.url, verify)
    child = result["child"]

    assert result["child_exit"] == 0, child
    assert [status for status, _ in result["before"]] == [200] * 4
    assert [status for status, _ in child["sync"] + child["async"]] == [200] * 4
    assert [status for status, _ in result["after"]] == [200] * 2
    # Two requests are well under a second; a child stuck on the parent's
    # runtime would only be stopped by the deadline.
    assert child["elapsed"] < 5
    # The child abandoned exactly the runtime it inherited and built its own
    # pool; the parent abandoned nothing and kept its pool.
    assert result["parent_abandoned_before"] == 0
    assert child["abandoned"] == 1
    assert child["pool_pid"] == child["pid"]
    assert result["parent_abandoned_after"] == 0
    assert result["parent_pool_pid"] == result["parent_pid"]


def test_child_never_uses_a_connection_pooled_by_its_parent(logged_server):
    server, verify = logged_server
    result = run_fork_driver(server.url, verify)
    assert result["child_exit"] == 0, result["child"]
    connections = {c.conn_id: c for c in server.connections()}

    parent_before = {conn for _, conn in result["before"]}
    parent_after = {conn for _, conn in result["after"]}
    child_conns = {conn for _, conn in result["child"]["sync"] + result["child"]["async"]}

    # Keep-alive works: the sync and async clients each reuse one connection.
    assert len(parent_before) == 2, result["before"]
    # The parent's connections were still usable after the child exited:
    # the child neither closed nor corrupted them.
    assert parent_after == parent_before
    # Every child request arrived on a NEW connection from a new peer port.
    assert child_conns.isdisjoint(parent_before)
    parent_ports = {connections[c].peer_port for c in parent_before}
    assert {connections[c].peer_port for c in child_conns}.isdisjoint(parent_ports)
    # Not one byte from the child reached the parent's connections...
    for conn in parent_before:
        record = connections[conn]
        assert all(path.startswith("/parent/") for path in record.requests), record.requests
        assert b"/child/" not in record.received
    # ...and everything the child sent is on its own connections.
    for conn in child_conns:
        assert all(path.startswith("/child/") for path in connections[conn].requests)
    # The parent's connections were never closed while the driver ran (they
    # close when the driver exits, after its last request on them).
    for conn in parent_before:
        record = connections[conn]
        assert record.requests[-1].endswith("/3"), record.requests


H2_DRIVER = """
import asyncio
import loopfree

url, verify = _sys.argv[1], _sys.argv[2]
client = loopfree.Client(timeout=10, verify=verify, http1=False, http2=True)
aclient = loopfree.AsyncClient(timeout=10, verify=verify, http1=False, http2=True)

def both(tag):
    async def one():
        return (await aclient.get(url + "/echo_request?" + tag)).http_version
    return [client.get(url + "/echo_request?" + tag).http_version, asyncio.run(one())]

before = both("parent")

def child():
    return both("child")

exit_code, value = run_child(child, 15)
finish({"before": before, "child_exit": exit_code, "child": value, "after": both("after")})
"""


def test_http2_connections_survive_fork(h2_server, ca_cert_path):
    """HTTP/2 connections have background tasks on the parent's runtime; the
    child opens its own, the parent's keep multiplexing afterwards."""
    done = run_python(H2_DRIVER, h2_server.url, ca_cert_path, timeout=60)
    assert done.returncode == 0, done.describe()
    result = done.result
    assert result["child_exit"] == 0, result["child"]
    assert result["before"] == result["child"] == result["after"] == ["HTTP/2", "HTTP/2"]


NESTED_DRIVER = """
import loopfree
from loopfree import _loopfree

url = _sys.argv[1]
client = loopfree.Client(timeout=10)
statuses = [client.get(url + "/top").status_code]

def grandchild():
    return {"status": client.get(url + "/grandchild").status_code,
            "abandoned": _loopfree.abandoned_runtimes()}

def child():
    status = client.get(url + "/child").status_code
    exit_code, value = run_child(grandchild, 15)
    return {"status": status, "abandoned": _loopfree.abandoned_runtimes(),
            "grandchild_exit": exit_code, "grandchild": value,
            "after": client.get(url + "/child-after").status_code}

exit_code, value = run_child(child, 30)
emit({"top": statuses, "child_exit": exit_code, "child": value,
      "after": client.get(url + "/top-after").status_code})
"""


def test_nested_fork_abandons_one_runtime_per_generation(conn_log_server):
    done = run_python(NESTED_DRIVER, conn_log_server.url, timeout=60)
    assert done.returncode == 0, done.describe()
    result = done.result
    assert result["child_exit"] == 0, result["child"]
    child = result["child"]
    assert child["grandchild_exit"] == 0, child["grandchild"]
    assert result["top"] == [200] and result["after"] == 200
    assert child["status"] == 200 and child["after"] == 200
    assert child["abandoned"] == 1
    # The grandchild inherits the child's count and abandons the child's runtime.
    assert child["grandchild"] == {"status": 200, "abandoned": 2}
    # Three processes, three pools: one connection each (plus none shared).
    by_path = {}
    for record in conn_log_server.connections():
        for path in record.requests:
            by_path[path] = record.conn_id
    assert by_path["/top"] == by_path["/top-after"]
    assert by_path["/child"] == by_path["/child-after"]
    assert len({by_path["/top"], by_path["/child"], by_path["/grandchild"]}) == 3


FIRST_USE_IN_CHILD_DRIVER = """
import loopfree
from loopfree import _loopfree

url = _sys.argv[1]
client = loopfree.Client(timeout=10)  # created, never used, before the fork

def child():
    return {"status": client.get(url + "/child").status_code,
            "abandoned": _loopfree.abandoned_runtimes()}

exit_code, value = run_child(child, 15)
emit({"child_exit": exit_code, "child": value,
      "parent": client.get(url + "/parent").status_code,
      "parent_abandoned": _loopfree.abandoned_runtimes()})
"""


def test_client_created_before_fork_first_used_in_child(conn_log_server):
    done = run_python(FIRST_USE_IN_CHILD_DRIVER, conn_log_server.url, timeout=60)
    assert done.returncode == 0, done.describe()
    result = done.result
    assert result["child_exit"] == 0, result["child"]
    # No runtime existed before the fork, so there was none to abandon.
    assert result["child"] == {"status": 200, "abandoned": 0}
    assert result["parent"] == 200
    assert result["parent_abandoned"] == 0


IN_FLIGHT_DRIVER = """
import threading
import loopfree

url = _sys.argv[1]
client = loopfree.Client(timeout=10)
client.get(url + "/warmup")
stop = threading.Event()
background = []

def keep_busy():
    # Requests in flight on the runtime at the moment of every fork.
    while not stop.is_set():
        background.append(client.get(url + "/slow?delay=0.03").status_code)

thread = threading.Thread(target=keep_busy)
thread.start()

def child():
    return [client.get(url + "/child/%d" % i).status_code for i in range(3)]

children = []
for _ in range(5):
    _time.sleep(0.05)
    children.append(run_child(child, 15))
stop.set()
thread.join(15)
emit({"children": children, "background": background, "thread_alive": thread.is_alive()})
"""


def test_fork_while_another_thread_has_a_request_in_flight(conn_log_server):
    done = run_python(IN_FLIGHT_DRIVER, conn_log_server.url, timeout=90)
    assert done.returncode == 0, done.describe()
    result = done.result
    assert result["children"] == [[0, [200, 200, 200]]] * 5, result["children"]
    assert not result["thread_alive"]
    assert result["background"] and set(result["background"]) == {200}


# --------------------------------------------------------------------------
# multiprocessing (fork start method)
# --------------------------------------------------------------------------

MULTIPROCESSING_DRIVER = """
import multiprocessing
import loopfree
from loopfree import _loopfree

url = _sys.argv[1]
client = loopfree.Client(timeout=10)
assert client.get(url + "/json").status_code == 200  # runtime + pool in the parent

def work(worker):
    statuses = [client.get(url + "/echo_request", params={"w": worker, "n": n}).status_code
                for n in range(50)]
    return {"pid": _os.getpid(), "statuses": statuses,
            "abandoned": _loopfree.abandoned_runtimes()}

if __name__ == "__main__":
    context = multiprocessing.get_context("fork")
    with context.Pool(4) as pool:
        results = pool.map_async(work, range(4), chunksize=1).get(timeout=40)
    emit({"parent_pid": _os.getpid(), "results": results,
          "parent_after": client.get(url + "/json").status_code})
"""


def test_multiprocessing_fork_pool(server):
    done = run_python(MULTIPROCESSING_DRIVER, server.url, timeout=60)
    assert done.returncode == 0, done.describe()
    result = done.result
    assert len(result["results"]) == 4
    for worker in result["results"]:
        assert worker["statuses"] == [200] * 50
        assert worker["pid"] != result["parent_pid"]
        assert worker["abandoned"] == 1
    assert result["parent_after"] == 200


# --------------------------------------------------------------------------
# gunicorn --preload
# --------------------------------------------------------------------------

PRELOAD_APP = """
import asyncio
import os

from flask import Flask, jsonify, request

import loopfree
from loopfree import _loopfree

UPSTREAM = os.environ["UPSTREAM"]
MASTER_PID = os.getpid()
client = loopfree.Client(timeout=10)
aclient = loopfree.AsyncClient(timeout=10)
# Used at import time, in the master, before gunicorn forks the workers.
IMPORT_STATUS = client.get(UPSTREAM + "/json").status_code


async def _warm_async():
    return (await aclient.get(UPSTREAM + "/json")).status_code


ASYNC_IMPORT_STATUS = asyncio.run(_warm_async())
app = Flask(__name__)


@app.get("/health")
def health():
    return "ok"


def describe(upstream):
    return jsonify(
        pid=os.getpid(),
        master_pid=MASTER_PID,
        import_status=[IMPORT_STATUS, ASYNC_IMPORT_STATUS],
        abandoned=_loopfree.abandoned_runtimes(),
        upstream=upstream.status_code,
        query=upstream.json()["query_string"],
    )


@app.get("/sync/<int:caller>/<int:n>")
def sync_view(caller, n):
    return describe(client.get(UPSTREAM + "/echo_request", params={"c": caller, "n": n}))


@app.get("/async/<int:caller>/<int:n>")
async def async_view(caller, n):
    return describe(await aclient.get(UPSTREAM + "/echo_request", params={"c": caller, "n": n}))
"""

CALLERS = 8
REQUESTS_PER_CALLER = 25


def load(port: int, callers: int, per_caller: int, path) -> tuple[list[dict], list[str]]:
    """``callers`` threads x ``per_caller`` stdlib requests; bounded by a deadline."""
    results: list[dict] = []
    failures: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + 40

    def caller(i: int) -> None:
        for n in range(per_caller):
            if time.monotonic() > deadline:
                with lock:
                    failures.append(f"caller {i}: deadline")
                return
            try:
                status, body = http_get(port, path(i, n), timeout=10)
            except OSError as exc:
                with lock:
                    failures.append(f"caller {i} request {n}: {exc!r}")
                return
            with lock:
                if status != 200:
                    failures.append(f"caller {i} request {n}: {status}\n{body[:2000]}")
                    return
                results.append({"caller": i, "n": n, **json.loads(body)})

    threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.1, deadline + 10 - time.monotonic()))
    if any(thread.is_alive() for thread in threads):
        failures.append("callers still running after the deadline")
    return results, failures


@pytest.mark.parametrize(
    "worker_args",
    [
        pytest.param(["-k", "sync", "-w", "2"], id="sync"),
        pytest.param(["-k", "gthread", "-w", "2", "--threads", "4"], id="gthread"),
    ],
)
def test_gunicorn_preload_with_client_used_at_import(server, tmp_path: Path, worker_args):
    (tmp_path / "preload_app.py").write_text(PRELOAD_APP)
    with gunicorn(
        tmp_path,
        "preload_app:app",
        ["--preload", "--timeout", "30", *worker_args],
        env={"UPSTREAM": server.url},
    ) as running:
        results, failures = load(
            running.port,
            CALLERS,
            REQUESTS_PER_CALLER,
            lambda i, n: f"/{'sync' if (i + n) % 2 else 'async'}/{i}/{n}",
        )
        log = running.log()
    assert not failures, f"{len(results)} ok; first failure: {failures[0]}\n{log}"
    assert len(results) == CALLERS * REQUESTS_PER_CALLER
    master_pid = running.process.pid
    for item in results:
        assert item["upstream"] == 200
        assert item["query"] == f"c={item['caller']}&n={item['n']}"
        assert item["import_status"] == [200, 200]
        # The app was imported (and its client used) in the master only...
        assert item["master_pid"] == master_pid
        # ...and each worker is a fork of it that abandoned its runtime.
        assert item["pid"] != master_pid
        assert item["abandoned"] == 1
