"""
`EnginePool`: what `transport._pool` is on loopfree's network transports.

httpx's transports wrap an httpcore pool at `transport._pool`, and code that
inspects a transport (which proxy does this mount use? which limits?) reads
that pool's attributes. loopfree's pool lives in the Rust engine; this is its
Python handle, with httpcore's attribute names for the configuration it
holds. It is not an httpcore pool and cannot send requests itself.
"""

from __future__ import annotations

import dataclasses
import typing

if typing.TYPE_CHECKING:
    from .._config import Limits, Proxy
    from .._loopfree import Engine

__all__ = ["EnginePool", "ProxyOrigin"]


@dataclasses.dataclass(frozen=True, eq=False)
class ProxyOrigin:
    """
    A proxy URL as httpcore's pools keep it: scheme, host and target as
    bytes. `origin == httpcore.URL(...)` holds when the four parts match
    (the reverse does not: httpcore's `__eq__` requires its own class).
    """

    scheme: bytes
    host: bytes
    port: int | None
    target: bytes

    def _parts(self) -> tuple[bytes, bytes, int | None, bytes]:
        return (self.scheme, self.host, self.port, self.target)

    def __eq__(self, other: object) -> bool:
        try:
            theirs = (other.scheme, other.host, other.port, other.target)  # type: ignore[attr-defined]
        except AttributeError:
            return NotImplemented
        return self._parts() == theirs

    def __hash__(self) -> int:
        return hash(self._parts())


class EnginePool:
    """The engine's connection pool, as seen from Python."""

    def __init__(
        self,
        engine: Engine,
        *,
        proxy: Proxy | None,
        limits: Limits,
        http1: bool,
        http2: bool,
        retries: int,
    ) -> None:
        self._engine = engine
        self._max_connections = limits.max_connections
        self._max_keepalive_connections = limits.max_keepalive_connections
        self._keepalive_expiry = limits.keepalive_expiry
        self._http1 = http1
        self._http2 = http2
        self._retries = retries
        if proxy is not None:
            url = proxy.url
            self._proxy_url = ProxyOrigin(url.raw_scheme, url.raw_host, url.port, url.raw_path)

    def close(self) -> None:
        """Close the pool's idle connections (what closing the transport does)."""
        self._engine.close()

    def __repr__(self) -> str:
        proxy = getattr(self, "_proxy_url", None)
        via = "" if proxy is None else f", proxy={proxy.scheme.decode()}://{proxy.host.decode()}"
        return f"<EnginePool max_connections={self._max_connections}{via}>"
