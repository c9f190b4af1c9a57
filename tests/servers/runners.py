"""Background-thread servers for the test-suite (127.0.0.1 only).

Nothing here imports the code under test.  Every server binds its listening
socket itself (port 0, so the kernel picks a free port) before the serving
thread starts, which makes the port known up front, and ``stop()`` joins the
thread and closes every socket it created.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import logging
import os
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field

import uvicorn
from hypercorn.asyncio import serve as hypercorn_serve
from hypercorn.config import Config as HypercornConfig

LOOPBACK = "127.0.0.1"
START_TIMEOUT = 15.0
STOP_TIMEOUT = 15.0


@dataclass(frozen=True)
class ServerInfo:
    """Where a test server listens.  ``url`` has no trailing slash."""

    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    @property
    def netloc(self) -> str:
        return f"{self.host}:{self.port}"

    def __str__(self) -> str:
        return self.url


def bind_loopback(backlog: int | None = 128) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((LOOPBACK, 0))
    if backlog is not None:
        sock.listen(backlog)
    return sock


def wait_until_serving(info: ServerInfo, ssl_context: ssl.SSLContext | None = None) -> None:
    """Poll ``GET /`` with the standard library until the server answers 200."""
    deadline = time.monotonic() + START_TIMEOUT
    last_error: BaseException | None = None
    while time.monotonic() < deadline:
        conn: http.client.HTTPConnection
        if info.scheme == "https":
            conn = http.client.HTTPSConnection(info.host, info.port, timeout=2, context=ssl_context)
        else:
            conn = http.client.HTTPConnection(info.host, info.port, timeout=2)
        try:
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                return
            last_error = RuntimeError(f"status {response.status}")
        except (OSError, http.client.HTTPException) as exc:
            last_error = exc
        finally:
            conn.close()
        time.sleep(0.05)
    raise RuntimeError(f"test server {info.url} did not start: {last_error!r}")


class UvicornThread:
    """uvicorn (h11, plain asyncio loop) serving an ASGI app in a thread."""

    def __init__(
        self,
        app,
        *,
        certfile: str | None = None,
        keyfile: str | None = None,
        sock: socket.socket | None = None,
    ) -> None:
        # A given socket (a Unix one) is served as is, without the TCP check.
        self._unix = sock is not None
        self._sock = bind_loopback() if sock is None else sock
        config = uvicorn.Config(
            app,
            # Never "auto": that would install uvloop's policy process-wide.
            loop="asyncio",
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=2,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [self._sock]},
            name=f"uvicorn-{self.port}",
            daemon=True,
        )
        self.info = ServerInfo("https" if certfile else "http", LOOPBACK, self.port)

    @property
    def port(self) -> int:
        return 0 if self._unix else self._sock.getsockname()[1]

    def start(self, ssl_context: ssl.SSLContext | None = None) -> ServerInfo:
        self._thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("uvicorn thread died during startup")
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        if not self._unix:
            wait_until_serving(self.info, ssl_context)
        return self.info

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError("uvicorn thread did not stop")


class HypercornThread:
    """hypercorn (TLS, ALPN h2 + http/1.1) serving an ASGI app in a thread."""

    def __init__(self, app, *, certfile: str, keyfile: str) -> None:
        self._app = app
        self._sock = bind_loopback()
        self.info = ServerInfo("https", LOOPBACK, self._sock.getsockname()[1])
        config = HypercornConfig()
        # hypercorn takes ownership of (and closes) a duplicate of our socket.
        config.bind = [f"fd://{os.dup(self._sock.fileno())}"]
        config.certfile = certfile
        config.keyfile = keyfile
        config.alpn_protocols = ["h2", "http/1.1"]
        config.graceful_timeout = 1.0
        config.accesslog = None
        config.errorlog = logging.getLogger("hypercorn.error")
        self._config = config
        self._loop: asyncio.AbstractEventLoop | None = None
        self._shutdown: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name=f"hypercorn-{self.info.port}", daemon=True
        )

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._shutdown = asyncio.Event()
            self._ready.set()
            await hypercorn_serve(
                self._app, self._config, shutdown_trigger=self._shutdown.wait, mode="asgi"
            )

        try:
            asyncio.run(main())
        except BaseException as exc:  # reported by start()/stop()
            self._error = exc
            self._ready.set()

    def start(self, ssl_context: ssl.SSLContext | None = None) -> ServerInfo:
        self._thread.start()
        if not self._ready.wait(START_TIMEOUT) or self._error is not None:
            raise RuntimeError(f"hypercorn did not start: {self._error!r}")
        wait_until_serving(self.info, ssl_context)
        return self.info

    def stop(self) -> None:
        if self._loop is not None and self._shutdown is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                self._loop.call_soon_threadsafe(self._shutdown.set)
        self._thread.join(STOP_TIMEOUT)
        self._sock.close()
        if self._thread.is_alive():
            raise RuntimeError("hypercorn thread did not stop")
        if self._error is not None:
            raise RuntimeError("hypercorn failed") from self._error


@dataclass
class RecordingListener:
    """A raw TCP listener that accepts, reads and records, and never answers.

    Used to prove that nothing reached the wire: ``connections`` counts
    accepted connections and ``received`` collects every byte read.
    """

    sock: socket.socket = field(default_factory=bind_loopback)
    connections: int = 0
    received: bytearray = field(default_factory=bytearray)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._stop_r, self._stop_w = socket.socketpair()
        self._thread = threading.Thread(target=self._run, name="recording-listener", daemon=True)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    @property
    def info(self) -> ServerInfo:
        return ServerInfo("http", LOOPBACK, self.port)

    def snapshot(self) -> tuple[int, bytes]:
        with self._lock:
            return self.connections, bytes(self.received)

    def _run(self) -> None:
        peers: list[socket.socket] = []
        with selectors.DefaultSelector() as sel:
            self.sock.setblocking(False)
            sel.register(self.sock, selectors.EVENT_READ, "accept")
            sel.register(self._stop_r, selectors.EVENT_READ, "stop")
            try:
                while True:
                    for key, _ in sel.select(timeout=1):
                        if key.data == "stop":
                            return
                        if key.data == "accept":
                            try:
                                peer, _ = self.sock.accept()
                            except BlockingIOError:
                                continue
                            peer.setblocking(False)
                            peers.append(peer)
                            with self._lock:
                                self.connections += 1
                            sel.register(peer, selectors.EVENT_READ, "peer")
                        else:
                            peer = key.fileobj  # type: ignore[assignment]
                            try:
                                data = peer.recv(65536)
                            except (BlockingIOError, InterruptedError):
                                continue
                            except OSError:
                                data = b""
                            if data:
                                with self._lock:
                                    self.received += data
                            else:
                                sel.unregister(peer)
            finally:
                for peer in peers:
                    peer.close()

    def start(self) -> RecordingListener:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop_w.send(b"x")
        self._thread.join(STOP_TIMEOUT)
        self.sock.close()
        self._stop_r.close()
        self._stop_w.close()
        if self._thread.is_alive():
            raise RuntimeError("recording listener did not stop")


class FullBacklogListener:
    """A listening socket (backlog 0) whose accept queue is full.

    A connection that is never accepted fills the queue; further SYNs are
    dropped by the kernel, so a connect attempt hangs until it times out.
    ``filled`` is False if the kernel could not be made to drop SYNs.
    """

    def __init__(self) -> None:
        self.sock = bind_loopback(backlog=0)
        self._clients: list[socket.socket] = []
        self.filled = False
        for _ in range(8):
            client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            client.settimeout(0.25)
            try:
                client.connect((LOOPBACK, self.port))
            except TimeoutError:
                client.close()
                self.filled = True
                break
            self._clients.append(client)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self.sock.close()
