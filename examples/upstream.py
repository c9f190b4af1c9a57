"""A tiny, fast upstream HTTP server for the loopfree examples.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies, pipelining)
to stand in for a real backend API, and is written directly on top of
``asyncio.Protocol`` so it is cheap enough never to be the bottleneck of the
Flask demo (it serves well over 1000 requests/s on one core).

Endpoints
---------
``GET /``      -> 200 ``{"ok": true, "n": <request counter>}``
``GET /auth``  -> 200 ``{"user": "demo"}`` when sent ``Authorization: Bearer demo-token``,
                  401 ``{"error": "unauthorized"}`` otherwise
anything else  -> 404

Standalone::

    python examples/upstream.py --port 8001

As a library (used by ``examples/demo.py``)::

    from upstream import start_upstream

    url, stop = start_upstream()           # serves on 127.0.0.1, free port
    ...
    stop()

``start_upstream()`` runs the server in its own subprocess by default, so it
does not compete for the GIL with whatever generates the load;
``start_upstream(in_process=True)`` runs it on a background thread instead.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable

TOKEN = "demo-token"
READY_PREFIX = "upstream listening on "

_MAX_HEAD = 64 * 1024
_counter = itertools.count(1)


def _response(status: int, reason: str, payload: object, keep_alive: bool, head: bool) -> bytes:
    body = json.dumps(payload, separators=(",", ":")).encode()
    lines = [
        f"HTTP/1.1 {status} {reason}",
        "Server: loopfree-demo-upstream",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
    ]
    if not keep_alive:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (b"" if head else body)


def _route(method: str, target: str, headers: dict[str, str]) -> tuple[int, str, object]:
    path = target.split("?", 1)[0]
    if method not in ("GET", "HEAD"):
        return 405, "Method Not Allowed", {"error": "method not allowed"}
    if path == "/":
        return 200, "OK", {"ok": True, "n": next(_counter)}
    if path == "/auth":
        if headers.get("authorization") == f"Bearer {TOKEN}":
            return 200, "OK", {"user": "demo"}
        return 401, "Unauthorized", {"error": "unauthorized"}
    return 404, "Not Found", {"error": "not found"}


class _HTTPProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        # Loop so that pipelined requests in one segment are all answered.
        while self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HEAD:
                    self.transport.close()
                return
            try:
                request_line, *header_lines = self.buf[:end].decode("latin-1").split("\r\n")
                method, target, version = request_line.split(" ", 2)
                headers = {}
                for line in header_lines:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
            except ValueError:
                self.transport.write(_response(400, "Bad Request", {}, False, False))
                self.transport.close()
                return
            if "chunked" in headers.get("transfer-encoding", "").lower():
                self.transport.write(_response(501, "Not Implemented", {}, False, False))
                self.transport.close()
                return
            if len(self.buf) < end + 4 + length:
                return  # wait for the rest of the body
            del self.buf[: end + 4 + length]

            connection = headers.get("connection", "").lower()
            if version == "HTTP/1.1":
                keep_alive = "close" not in connection
            else:
                keep_alive = "keep-alive" in connection
            status, reason, payload = _route(method, target, headers)
            self.transport.write(_response(status, reason, payload, keep_alive, method == "HEAD"))
            if not keep_alive:
                self.transport.close()
                return


async def _serve(host: str, port: int, on_ready: Callable[[str], None]) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_HTTPProtocol, host, port, backlog=1024, reuse_address=True)
    bound_port = server.sockets[0].getsockname()[1]
    on_ready(f"http://{host}:{bound_port}")
    async with server:
        await server.serve_forever()


def start_upstream(
    host: str = "127.0.0.1", port: int = 0, *, in_process: bool = False
) -> tuple[str, Callable[[], None]]:
    """Start the upstream server; return ``(base_url, stop)``.

    ``port=0`` picks a free port. ``stop()`` is idempotent.
    """
    if in_process:
        return _start_thread(host, port)
    return _start_subprocess(host, port)


def _start_thread(host: str, port: int) -> tuple[str, Callable[[], None]]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    result: dict[str, object] = {}

    def on_ready(url: str) -> None:
        result["url"] = url
        ready.set()

    def run() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(_serve(host, port, on_ready))
        result["task"] = task
        try:
            loop.run_until_complete(task)
        except BaseException as exc:  # includes CancelledError on stop()
            result.setdefault("error", exc)
        finally:
            ready.set()
            loop.close()

    thread = threading.Thread(target=run, name="upstream", daemon=True)
    thread.start()
    ready.wait(10)
    if "url" not in result:
        raise RuntimeError(f"upstream failed to start: {result.get('error')!r}")

    def stop() -> None:
        if thread.is_alive():
            loop.call_soon_threadsafe(result["task"].cancel)  # type: ignore[attr-defined]
            thread.join(5)

    return str(result["url"]), stop


def _start_subprocess(host: str, port: int) -> tuple[str, Callable[[], None]]:
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--host", host, "--port", str(port)],
        stdout=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # the child prints its URL as soon as it is bound
    if not line.startswith(READY_PREFIX):
        proc.kill()
        proc.wait()
        raise RuntimeError(f"upstream failed to start (exit code {proc.poll()}): {line!r}")
    url = line[len(READY_PREFIX) :].split()[0]

    def stop() -> None:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()

    return url, stop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001, help="0 picks a free port")
    args = parser.parse_args()

    def on_ready(url: str) -> None:
        print(f"{READY_PREFIX}{url}  (Ctrl-C to stop)", flush=True)

    try:
        asyncio.run(_serve(args.host, args.port, on_ready))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
