"""Ctrl-C and Python signal handlers are answered promptly during a sync wait.

A sync request waits in Rust without the GIL; every 20 ms it runs Python's
pending signal handlers, and if one raises, the request is cancelled and the
exception propagates. Each scenario runs in a driver interpreter, in its main
thread (the only thread where CPython runs signal handlers), and measures the
latency from the signal to the exception there.
"""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from contexts_support import (
    CHILD_PRELUDE,
    PYTHON,
    gunicorn,
    http_get,
    kill_group,
    run_python,
    wait_until,
)

PROMPT = 0.1  # seconds from the signal to the exception


SIGINT_DRIVER = """
import threading
import loopfree

url = _sys.argv[1]
client = loopfree.Client(timeout=30)
client.get(url + "/")
sent = []

def interrupt():
    _time.sleep(0.3)
    sent.append(_time.monotonic())
    _os.kill(_os.getpid(), _signal.SIGINT)

if _sys.argv[3:] == ["busy"]:
    # Another thread drives the runtime: this request is handed to it.
    threading.Thread(target=lambda: client.get(url + "/slow?delay=3"), daemon=True).start()
    _time.sleep(0.1)
threading.Thread(target=interrupt, daemon=True).start()
started = _time.monotonic()
try:
    client.get(url + _sys.argv[2])
    outcome = "completed"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
caught = _time.monotonic()
after_started = _time.monotonic()
after = client.get(url + "/json")
emit({"outcome": outcome, "latency": caught - sent[0], "total": caught - started,
      "after": after.status_code, "after_json": after.json(),
      "after_took": _time.monotonic() - after_started})
"""


@pytest.mark.parametrize(
    ("path", "other_thread"),
    [
        ("/slow?delay=5", "idle"),
        # A large body read by the caller's thread into the final bytes.
        ("/stall_body?n=3000000&sent=400000&delay=5", "idle"),
        # Handed to the runtime that another sync caller drives.
        ("/slow?delay=5", "busy"),
    ],
    ids=["waiting-for-head", "reading-large-body", "while-another-thread-drives"],
)
def test_sigint_during_slow_request_raises_keyboard_interrupt_promptly(server, path, other_thread):
    done = run_python(SIGINT_DRIVER, server.url, path, other_thread, timeout=30)
    assert done.returncode == 0, done.describe()
    result = done.result
    assert result["outcome"] == "KeyboardInterrupt", result
    assert result["latency"] < PROMPT, result
    assert result["total"] < 1.0, result  # not the 5 s of the request
    # The client is still usable, and quickly (no wait on a stuck permit).
    assert result["after"] == 200
    assert result["after_json"] == {"Hello": "world!"}
    assert result["after_took"] < 1.0, result


EXTERNAL_SIGINT_DRIVER = """
import loopfree

url = _sys.argv[1]
client = loopfree.Client(timeout=30)
client.get(url + "/")
print("WAITING", flush=True)
try:
    client.get(url + "/slow?delay=5")
    outcome = "completed"
except KeyboardInterrupt:
    outcome = "KeyboardInterrupt"
caught = _time.monotonic()
emit({"outcome": outcome, "caught": caught, "after": client.get(url + "/").status_code})
"""


def test_sigint_from_another_process_like_ctrl_c(server):
    """The terminal's Ctrl-C: SIGINT sent from outside the process."""
    process = subprocess.Popen(
        [PYTHON, "-c", CHILD_PRELUDE + textwrap.dedent(EXTERNAL_SIGINT_DRIVER), server.url],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            assert selector.select(timeout=15), "driver never started its request"
            assert process.stdout.readline().strip() == "WAITING"
        time.sleep(0.3)  # the slow request is now in flight
        # CLOCK_MONOTONIC (time.monotonic) is system-wide on Linux, so the
        # driver's timestamp is comparable with ours.
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=15)
    finally:
        kill_group(process)
        process.wait(5)
    assert process.returncode == 0, stderr
    line = next(x for x in stdout.splitlines() if x.startswith("RESULT:"))
    result = json.loads(line[len("RESULT:") :])
    assert result["outcome"] == "KeyboardInterrupt"
    assert result["caught"] - sent < PROMPT, result["caught"] - sent
    assert result["after"] == 200


HANDLER_DRIVER = """
import threading
import loopfree

url = _sys.argv[1]
which = _sys.argv[2]

class WorkerTimeout(Exception):
    pass

ran = []

def handler(signum, frame):
    ran.append(_time.monotonic())
    raise WorkerTimeout(signum)

client = loopfree.Client(timeout=30)
client.get(url + "/")
sent = []
if which == "SIGALRM":
    # Like a worker-timeout alarm: the kernel delivers it, no helper thread.
    _signal.signal(_signal.SIGALRM, handler)
    sent.append(_time.monotonic() + 0.3)
    _signal.setitimer(_signal.ITIMER_REAL, 0.3)
else:
    # Like a supervisor's SIGTERM, sent from another thread of this process.
    _signal.signal(_signal.SIGTERM, handler)
    def terminate():
        _time.sleep(0.3)
        sent.append(_time.monotonic())
        _os.kill(_os.getpid(), _signal.SIGTERM)
    threading.Thread(target=terminate, daemon=True).start()
try:
    client.get(url + "/slow?delay=5")
    outcome = "completed"
except WorkerTimeout:
    outcome = "WorkerTimeout"
caught = _time.monotonic()
emit({"outcome": outcome, "handler_latency": ran[0] - sent[0], "latency": caught - sent[0],
      "after": client.get(url + "/").status_code})
"""


def _run_handler_driver(url: str, which: str) -> dict:
    done = run_python(HANDLER_DRIVER, url, which, timeout=30)
    assert done.returncode == 0, done.describe()
    return done.result


def test_sigalrm_handler_raising_a_custom_exception_runs_promptly(server):
    result = _run_handler_driver(server.url, "SIGALRM")
    assert result["outcome"] == "WorkerTimeout", result
    # The itimer fires at +0.3 s; allow timer slack on the low side.
    assert -0.02 < result["handler_latency"] < PROMPT, result
    assert result["latency"] < PROMPT, result
    assert result["after"] == 200


def test_sigterm_handler_raising_a_custom_exception_runs_promptly(server):
    result = _run_handler_driver(server.url, "SIGTERM")
    assert result["outcome"] == "WorkerTimeout", result
    assert result["latency"] < PROMPT, result
    assert result["after"] == 200


NON_RAISING_DRIVER = """
import threading
import loopfree

url = _sys.argv[1]
ran = []
_signal.signal(_signal.SIGUSR1, lambda signum, frame: ran.append(_time.monotonic()))
client = loopfree.Client(timeout=30)
client.get(url + "/")
sent = []

def poke():
    for _ in range(5):
        _time.sleep(0.1)
        sent.append(_time.monotonic())
        _os.kill(_os.getpid(), _signal.SIGUSR1)

threading.Thread(target=poke, daemon=True).start()
started = _time.monotonic()
response = client.get(url + "/slow?delay=0.8")
emit({"status": response.status_code, "took": _time.monotonic() - started,
      "sent": sent, "ran": ran})
"""


def test_handler_that_does_not_raise_runs_during_the_wait_and_the_request_completes(server):
    done = run_python(NON_RAISING_DRIVER, server.url, timeout=30)
    assert done.returncode == 0, done.describe()
    result = done.result
    assert result["status"] == 200
    assert 0.75 < result["took"] < 2.0, result
    # Each handler ran while the request was still waiting, within PROMPT.
    assert len(result["ran"]) == len(result["sent"]) == 5, result
    for sent, ran in zip(result["sent"], result["ran"], strict=True):
        assert 0 <= ran - sent < PROMPT, result


# --------------------------------------------------------------------------
# gunicorn's worker timeout (SIGABRT from the master)
# --------------------------------------------------------------------------

TIMEOUT_APP = """
import os

from flask import Flask

import loopfree

UPSTREAM = os.environ["UPSTREAM"]
client = loopfree.Client(timeout=60)
app = Flask(__name__)


@app.get("/health")
def health():
    return "ok"


@app.get("/hang")
def hang():
    return str(client.get(UPSTREAM + "/slow?delay=30").status_code)
"""


def test_gunicorn_sync_worker_timeout_aborts_a_waiting_request(server, tmp_path: Path):
    """gunicorn's master sends SIGABRT to a worker past ``--timeout``; the
    worker's handler (``sys.exit(1)``) must run during the wait. If it could
    not, the master would escalate to SIGKILL on its next check."""
    (tmp_path / "timeout_app.py").write_text(TIMEOUT_APP)
    with gunicorn(
        tmp_path,
        "timeout_app:app",
        ["-k", "sync", "-w", "1", "--timeout", "2"],
        env={"UPSTREAM": server.url},
    ) as running:
        started = time.monotonic()
        try:
            status, _ = http_get(running.port, "/hang", timeout=20)
        except (OSError, ConnectionError):
            status = 0  # the worker died with the connection open
        took = time.monotonic() - started
        # The master logs the timeout, then the worker logs its exit.
        wait_until(lambda: "Worker exiting" in running.log(), timeout=10)
        log = running.log()
    assert "WORKER TIMEOUT" in log, log
    # gunicorn's SIGABRT handler ran inside the wait (its traceback passes
    # through the engine's blocking send) and the worker exited by itself...
    assert "in handle_abort" in log and "return engine.send(*arguments)" in log, log
    assert "Worker exiting" in log, log
    # ...so the master never had to escalate to SIGKILL.
    assert "SIGKILL" not in log, log
    assert status != 200
    # --timeout 2 plus the master's 1 s check interval, not the 30 s upstream.
    assert took < 6, (took, log)
