"""Helpers for the "loopfree everywhere" tests (not a test module).

Everything here talks to real processes and real sockets:

- ``run_python`` runs a driver script in a fresh interpreter (its own session,
  so forked grandchildren die with it) and kills the whole group when it
  overruns, turning a hang into a test failure with the output attached;
- ``CHILD_PRELUDE`` is pasted at the top of driver scripts: it reaps forked
  children against a deadline and prints one JSON result line;
- ``established_to_port`` / ``rss_bytes`` read ``/proc`` for the leak checks;
- ``gunicorn`` starts a real gunicorn master on a pre-bound loopback socket.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
PYTHON = sys.executable
RESULT_MARKER = "RESULT:"

#: Pasted at the top of every driver script run with ``run_python``.
CHILD_PRELUDE = textwrap.dedent(
    '''
    import json as _json
    import os as _os
    import signal as _signal
    import sys as _sys
    import time as _time

    def emit(obj):
        """The one result line the test parses."""
        print("RESULT:" + _json.dumps(obj), flush=True)

    def finish(obj):
        """emit(), then exit without interpreter finalization.

        For drivers whose subject is not exit: a wake-up callback still
        running on loopfree's completion thread at exit can abort the process
        (tests/contexts/test_threads.py::test_interpreter_exit_*), which would
        make those tests fail at random for an unrelated reason.
        """
        emit(obj)
        _sys.stderr.flush()
        _os._exit(0)

    def reap(pid, timeout):
        """Wait for a forked child; SIGKILL it if it overruns.

        Returns the exit code, or "hung" (a regression, reported by the test)
        or "signal N" for a child that died of a signal.
        """
        deadline = _time.monotonic() + timeout
        while True:
            done, status = _os.waitpid(pid, _os.WNOHANG)
            if done:
                if _os.WIFEXITED(status):
                    return _os.WEXITSTATUS(status)
                return "signal %d" % _os.WTERMSIG(status)
            if _time.monotonic() > deadline:
                _os.kill(pid, _signal.SIGKILL)
                _os.waitpid(pid, 0)
                return "hung"
            _time.sleep(0.01)

    def run_child(body, timeout):
        """Fork; run body() in the child, whose return value is written to a
        pipe as JSON; never return from the child. Returns (exit, value)."""
        read_end, write_end = _os.pipe()
        pid = _os.fork()
        if pid == 0:
            code = 0
            try:
                _os.close(read_end)
                value = body()
            except BaseException as exc:
                import traceback
                value = {"error": "".join(traceback.format_exception(exc))}
                code = 1
            try:
                _os.write(write_end, _json.dumps(value).encode())
            finally:
                _os._exit(code)
        _os.close(write_end)
        status = reap(pid, timeout)
        chunks = []
        while True:
            chunk = _os.read(read_end, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        _os.close(read_end)
        raw = b"".join(chunks)
        return status, (_json.loads(raw) if raw else None)
    '''
)


@dataclass
class Completed:
    returncode: int
    stdout: str
    stderr: str
    elapsed: float

    @property
    def result(self) -> Any:
        """The last ``RESULT:`` line's JSON payload."""
        for line in reversed(self.stdout.splitlines()):
            if line.startswith(RESULT_MARKER):
                return json.loads(line[len(RESULT_MARKER) :])
        pytest.fail(f"driver printed no result line\n{self.describe()}", pytrace=False)

    def describe(self) -> str:
        return (
            f"exit code {self.returncode} after {self.elapsed:.2f}s\n"
            f"--- stdout ---\n{self.stdout[-6000:]}\n--- stderr ---\n{self.stderr[-6000:]}"
        )


def kill_group(process: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def run_python(
    source: str,
    *args: str,
    timeout: float,
    env: dict[str, str] | None = None,
    prelude: bool = True,
) -> Completed:
    """Run ``source`` in a new interpreter; fail (not hang) past ``timeout``."""
    code = (CHILD_PRELUDE if prelude else "") + textwrap.dedent(source)
    full_env = dict(os.environ)
    full_env.update(env or {})
    started = time.monotonic()
    process = subprocess.Popen(
        [PYTHON, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=full_env,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(process)
        stdout, stderr = process.communicate()
        done = Completed(-9, stdout, stderr, time.monotonic() - started)
        pytest.fail(f"driver hung (> {timeout}s), killed\n{done.describe()}", pytrace=False)
    finally:
        kill_group(process)  # forked grandchildren, if any survived
    return Completed(process.returncode, stdout, stderr, time.monotonic() - started)


# --------------------------------------------------------------------------
# /proc readers
# --------------------------------------------------------------------------

_TCP_ESTABLISHED = "01"


def socket_inodes(pid: int | str = "self") -> set[int]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    for entry in fd_dir.iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(entry)
            if target.startswith("socket:["):
                inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def established_to_port(port: int, pid: int | str = "self") -> int:
    """ESTABLISHED TCP connections *owned by pid* whose remote port is ``port``.

    Matching by socket inode keeps out the server's own end (remote port is
    the client's) and every other process's sockets.
    """
    mine = socket_inodes(pid)
    count = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(FileNotFoundError):
            lines = Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]
            for line in lines:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == _TCP_ESTABLISHED and int(fields[9]) in mine:
                    count += 1
    return count


def rss_bytes(pid: int | str = "self") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS line")


def wait_until(predicate: Any, timeout: float, interval: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


# --------------------------------------------------------------------------
# gunicorn
# --------------------------------------------------------------------------


@dataclass
class Gunicorn:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-8000:]


@contextlib.contextmanager
def gunicorn(
    app_dir: Path,
    app: str,
    args: Sequence[str],
    env: dict[str, str] | None = None,
    start_timeout: float = 30.0,
) -> Iterator[Gunicorn]:
    """A real gunicorn master serving ``app`` (``module:attr``) from ``app_dir``.

    The listening socket is bound here (port 0) and handed over as
    ``fd://N``, so the port is known without races. The app must answer
    ``GET /health`` with 200 once a worker is up.
    """
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    fd = listener.fileno()
    os.set_inheritable(fd, True)
    log_path = app_dir / f"gunicorn-{port}.log"
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env["PYTHONPATH"] = str(app_dir)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [
                PYTHON,
                "-m",
                "gunicorn",
                "--bind",
                f"fd://{fd}",
                "--chdir",
                str(app_dir),
                "--graceful-timeout",
                "2",
                "--log-level",
                "info",
                *args,
                app,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=(fd,),
            env=full_env,
            start_new_session=True,
        )
    listener.close()
    server = Gunicorn(process, port, log_path)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"gunicorn exited early ({process.returncode}):\n{server.log()}")
            try:
                status, _ = http_get(port, "/health", timeout=2)
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start in {start_timeout}s:\n{server.log()}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                pass
        kill_group(process)
        process.wait(10)


def http_get(port: int, path: str, timeout: float = 10.0) -> tuple[int, str]:
    """One request with the standard library (callers must not depend on loopfree)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode("utf-8", "replace")
    finally:
        conn.close()
