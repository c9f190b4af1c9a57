"""Real proxy servers for the proxy tests: pproxy (pure Python) in a subprocess.

``ProxyServer`` runs one ``pproxy`` process listening on a free 127.0.0.1
port for both HTTP (plain forwarding and ``CONNECT``) and SOCKS5, optionally
requiring a username and password (HTTP ``Proxy-Authorization: Basic`` and
SOCKS5 username/password). pproxy is started with ``-v``, so it prints one
line per proxied connection, which the tests read back to prove that a
request really went through the proxy, and which target the proxy was asked
for::

    http 127.0.0.1:50312 -> 127.0.0.1:41025       (forwarded request or CONNECT)
    socks5 127.0.0.1:50320 -> localhost:41025     (SOCKS5; remote DNS keeps the name)
    Unauthorized HTTP from 127.0.0.1              (missing or wrong credentials)
    Unauthorized SOCKS b'user':b'bad' from 127.0.0.1

``RefusingProxy`` is a stand-in for the one case pproxy cannot play: a proxy
that refuses with a status other than 407.

Run as a script, this file is the proxy process itself: it starts pproxy
with two adjustments to pproxy 2.7.9, both outside what the tests check:

* uvloop is hidden from it: pproxy installs uvloop when importable and then
  calls ``asyncio.get_event_loop()``, which uvloop >= 0.22 refuses outside a
  running loop, so the process would die at startup.
* header names are matched case-insensitively, as HTTP requires (RFC 9110
  section 5.1). pproxy looks up ``Proxy-Authorization`` with a
  case-sensitive dict, so a client that sends header names in lower case,
  as hyper (and so loopfree) does, would always be refused with 407 and
  would have its credentials forwarded to the target. The shim finds the
  header in any case and strips it before forwarding.

pproxy also remembers a successful login per client IP for 30 days by
default, which would let unauthenticated requests from 127.0.0.1 through
after the first good one; ``--auth 0`` makes it check every connection.

Nothing here imports the code under test.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 5.0
LOG_TIMEOUT = 5.0

_SERVING = re.compile(r"^Serving on \S+ 127\.0\.0\.1:(\d+) by ")


class ProxyServer:
    """A pproxy subprocess serving HTTP and SOCKS5 on one 127.0.0.1 port."""

    def __init__(self, *, auth: tuple[str, str] | None = None) -> None:
        self.auth = auth
        self.port = 0
        self._lines: list[str] = []
        self._cond = threading.Condition()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> ProxyServer:
        listen = f"http+socks5://{LOOPBACK}:0/"
        if self.auth is not None:
            listen += f"#{self.auth[0]}:{self.auth[1]}"
        env = {
            key: value for key, value in os.environ.items() if not key.lower().endswith("_proxy")
        }
        env["PYTHONUNBUFFERED"] = "1"
        self._proc = subprocess.Popen(
            [sys.executable, "-u", __file__, "-l", listen, "-v", "--auth", "0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self._reader = threading.Thread(target=self._read, name="pproxy-log", daemon=True)
        self._reader.start()
        try:
            line = self._wait_for_line(0, _SERVING.match, START_TIMEOUT)
        except AssertionError:
            self.stop()
            raise RuntimeError(f"pproxy did not start:\n{self.log_text()}") from None
        match = _SERVING.match(line)
        assert match is not None
        self.port = int(match.group(1))
        return self

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(STOP_TIMEOUT)
        assert proc.stdout is not None
        proc.stdout.close()

    def __enter__(self) -> ProxyServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            with self._cond:
                self._lines.append(line.rstrip("\r\n"))
                self._cond.notify_all()

    # -- addresses ---------------------------------------------------------

    def url(self, scheme: str = "http", auth: tuple[str, str] | None = None) -> str:
        """``scheme://[user:pass@]127.0.0.1:PORT``, e.g. ``url("socks5h")``."""
        userinfo = f"{auth[0]}:{auth[1]}@" if auth is not None else ""
        return f"{scheme}://{userinfo}{LOOPBACK}:{self.port}"

    # -- the log -----------------------------------------------------------

    def mark(self) -> int:
        """A position in the log: pass it to ``expect()`` to see only later lines."""
        with self._cond:
            return len(self._lines)

    def lines_since(self, mark: int) -> list[str]:
        with self._cond:
            return self._lines[mark:]

    def log_text(self) -> str:
        with self._cond:
            return "\n".join(self._lines)

    def expect_connection(self, mark: int, protocol: str, target: str) -> str:
        """
        Wait for the first connection proxied with `protocol` ("http" or
        "socks5") after `mark` and check that it was to `target` ("host:port",
        as the client asked the proxy for it); fail with the log otherwise.
        """
        line = self._expect(mark, re.compile(rf"^{re.escape(protocol)} 127\.0\.0\.1:\d+ -> "))
        if not line.endswith(f" -> {target}"):
            raise AssertionError(
                f"pproxy was asked for another target than {target!r}: {line!r}; "
                f"its log since the mark:\n" + "\n".join(self.lines_since(mark))
            )
        return line

    def expect_refusal(self, mark: int, protocol: str) -> str:
        """Wait for pproxy's "Unauthorized HTTP|SOCKS" line after `mark`."""
        return self._expect(mark, re.compile(rf"^Unauthorized {re.escape(protocol.upper())}\b"))

    def _expect(self, mark: int, pattern: re.Pattern[str]) -> str:
        try:
            return self._wait_for_line(mark, pattern.search, LOG_TIMEOUT)
        except AssertionError:
            raise AssertionError(
                f"pproxy logged no line matching {pattern.pattern!r}; "
                f"its log since the mark:\n" + "\n".join(self.lines_since(mark))
            ) from None

    def _wait_for_line(self, mark: int, predicate: Callable[[str], object], timeout: float) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self._lines[mark:]:
                    if predicate(line):
                        return line
                mark = len(self._lines)
                remaining = deadline - time.monotonic()
                # The reader appends under the lock: once it has ended (the
                # process closed its output), every line has been seen.
                reader_done = self._reader is None or not self._reader.is_alive()
                if remaining <= 0 or reader_done:
                    raise AssertionError("no matching line")
                self._cond.wait(min(remaining, 0.1))


class RefusingProxy:
    """
    A stand-in HTTP proxy (a thread, not pproxy) that answers every request,
    ``CONNECT`` or forwarded, with one fixed status and closes the
    connection, recording each request line. pproxy never refuses with
    anything but 407, so this covers "403 Forbidden" / "502 Bad Gateway".
    """

    def __init__(self, status: str) -> None:
        self.status = status
        self.request_lines: list[str] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind((LOOPBACK, 0))
        self._sock.listen(16)
        self._sock.settimeout(0.1)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="refusing-proxy", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self._sock.getsockname()[1]}"

    def __enter__(self) -> RefusingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._thread.join(STOP_TIMEOUT)
        self._sock.close()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(STOP_TIMEOUT)
                data = b""
                with contextlib.suppress(OSError):
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    self.request_lines.append(data.split(b"\r\n", 1)[0].decode("latin-1"))
                    conn.sendall(
                        f"HTTP/1.1 {self.status}\r\nContent-Length: 0\r\n"
                        "Connection: close\r\n\r\n".encode("ascii")
                    )


def running_proxy(auth: tuple[str, str] | None = None) -> Iterator[ProxyServer]:
    """Generator for a pytest fixture: a started `ProxyServer`, stopped afterwards."""
    server = ProxyServer(auth=auth).start()
    try:
        yield server
    finally:
        server.stop()


# ---------------------------------------------------------------------------
# The proxy process
# ---------------------------------------------------------------------------


def _patch_pproxy_header_case() -> None:
    """Make pproxy's HTTP front end find Proxy-Authorization in any case."""
    from pproxy import proto

    original = proto.HTTP.http_accept

    async def http_accept(
        self: Any,
        user: Any,
        method: str,
        path: str,
        authority: Any,
        ver: str,
        lines: Any,
        host: str,
        pauth: str | None,
        reply: Any,
        **kw: Any,
    ) -> Any:
        if pauth is None and isinstance(lines, str):
            kept = []
            for line in lines.split("\r\n"):
                name, sep, value = line.partition(":")
                name = name.strip().lower()
                if sep and name == "proxy-authorization":
                    pauth = value.strip()
                elif not (sep and name.startswith("proxy-")):
                    kept.append(line)
                if sep and name == "host" and not host:
                    host = value.strip()
            lines = "\r\n".join(kept)
        return await original(
            self, user, method, path, authority, ver, lines, host, pauth, reply, **kw
        )

    proto.HTTP.http_accept = http_accept


def _main(argv: list[str]) -> None:
    import asyncio

    sys.modules["uvloop"] = None  # type: ignore[assignment]  # hide it from pproxy
    asyncio.set_event_loop(asyncio.new_event_loop())
    _patch_pproxy_header_case()
    from pproxy.server import main

    main(argv)


if __name__ == "__main__":
    _main(sys.argv[1:])
