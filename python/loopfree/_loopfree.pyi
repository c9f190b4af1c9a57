"""Stubs for the Rust extension module. See src/ for the implementation."""

from typing import Any

__version__: str

class Pending:
    """A request (or body chunk read) in flight on the runtime."""

    def wait(self) -> Any:
        """Block without the GIL, running signal handlers; cancel if one raises."""
    def add_done_callback(self, callback: Any, /) -> None:
        """Call `callback()` on the completion thread once done (now, if done)."""
    def ring_when_done(self, doorbell: Doorbell, token: int, /) -> None:
        """Ring `doorbell` with `token` from the runtime once done (now, if done)."""
    def cancel(self) -> None:
        """Abort the task; its connection is closed, not pooled."""
    def done(self) -> bool: ...
    def result(self) -> Any:
        """The outcome once done, or the mapped loopfree exception."""
    @property
    def runtime_pid(self) -> int: ...

class Doorbell:
    """A socket an asyncio loop watches; finished requests ring it without the GIL."""

    def __init__(self) -> None: ...
    def fileno(self) -> int: ...
    def take(self) -> list[int]:
        """The tokens rung since the last call, the socket emptied."""

class BodyReader:
    """The body of a streamed response."""

    def next_chunk(self) -> Pending: ...
    def close(self) -> None: ...
    @property
    def is_closed(self) -> bool: ...

class BodySender:
    """The caller's end of a streamed request body."""

    def __init__(self) -> None: ...
    def send(self, chunk: bytes) -> Pending:
        """Queue a chunk; the Pending gives False once the request no longer reads its body."""
    def close(self) -> None: ...

class Engine:
    """The Rust half of a client: pool, limiter and request start-up."""

    def __init__(
        self,
        *,
        verify: bool = True,
        ca_bundle_pem: bytes | None = None,
        identity_pem: bytes | None = None,
        http1: bool = True,
        http2: bool = False,
        max_connections: int | None = None,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float | None = None,
        connect_timeout: float | None = None,
        proxy: str | None = None,
        proxy_headers: list[tuple[bytes, bytes]] | None = None,
        local_address: str | None = None,
        uds: str | None = None,
        trust_env: bool = True,
    ) -> None: ...
    def start(
        self,
        method: str,
        url: str,
        headers: Any,
        body: bytes | BodySender | None,
        timeouts: tuple[float | None, float | None, float | None, float | None],
        follow_redirects: bool,
        max_redirects: int,
        stream: bool = False,
    ) -> Pending: ...
    def send(
        self,
        method: str,
        url: str,
        headers: Any,
        body: bytes | BodySender | None,
        timeouts: tuple[float | None, float | None, float | None, float | None],
        follow_redirects: bool,
        max_redirects: int,
        stream: bool = False,
    ) -> Any: ...
    def close(self) -> None: ...
    @property
    def pool_pid(self) -> int | None: ...

def abandoned_runtimes() -> int:
    """Runtimes this process abandoned because it was forked."""

def begin_shutdown() -> None:
    """Stop the completion thread from taking the GIL (interpreter exit)."""
