from __future__ import annotations

import typing

from ._headers import Headers, HeaderTypes
from ._url import URL

if typing.TYPE_CHECKING:
    import ssl

__all__ = [
    "DEFAULT_LIMITS",
    "DEFAULT_MAX_REDIRECTS",
    "DEFAULT_TIMEOUT_CONFIG",
    "UNSET",
    "USE_CLIENT_DEFAULT",
    "Limits",
    "Proxy",
    "Timeout",
    "TimeoutTypes",
    "UnsetType",
    "UseClientDefault",
]


class UnsetType:
    """The type of `UNSET`, the marker of a `Timeout` argument that was not given."""


UNSET = UnsetType()


class UseClientDefault:
    """
    The type of `USE_CLIENT_DEFAULT`, the default of per-request arguments such
    as `auth=` and `timeout=`. It means "whatever the client was configured
    with", which `None` cannot mean because `None` explicitly turns the
    feature off (`timeout=None` is no timeout).
    """


USE_CLIENT_DEFAULT = UseClientDefault()

TimeoutTypes = typing.Union[
    float | None,
    tuple[float | None, float | None, float | None, float | None],
    "Timeout",
]


class Timeout:
    """
    The four timeouts of a request, in seconds; None disables one.

        Timeout(None)               # no timeouts
        Timeout(5.0)                # 5s for each of connect, read, write and pool
        Timeout(5.0, connect=10.0)  # 10s to connect, 5s for the rest
        Timeout(None, read=5.0)     # only reads are limited
        Timeout(connect=1.0, read=2.0, write=3.0, pool=4.0)
        Timeout((1.0, 2.0, 3.0, 4.0))

    `pool` limits the wait for a free connection in the pool.
    """

    connect: float | None
    read: float | None
    write: float | None
    pool: float | None

    def __init__(
        self,
        timeout: TimeoutTypes | UnsetType = UNSET,
        *,
        connect: float | UnsetType | None = UNSET,
        read: float | UnsetType | None = UNSET,
        write: float | UnsetType | None = UNSET,
        pool: float | UnsetType | None = UNSET,
    ) -> None:
        if isinstance(timeout, Timeout):
            assert connect is UNSET
            assert read is UNSET
            assert write is UNSET
            assert pool is UNSET
            self.connect, self.read = timeout.connect, timeout.read
            self.write, self.pool = timeout.write, timeout.pool
        elif isinstance(timeout, tuple):
            # Like httpx, shorter tuples leave write and pool unlimited.
            self.connect, self.read = timeout[0], timeout[1]
            self.write = timeout[2] if len(timeout) > 2 else None
            self.pool = timeout[3] if len(timeout) > 3 else None
        elif not (
            isinstance(connect, UnsetType)
            or isinstance(read, UnsetType)
            or isinstance(write, UnsetType)
            or isinstance(pool, UnsetType)
        ):
            self.connect, self.read, self.write, self.pool = connect, read, write, pool
        else:
            if isinstance(timeout, UnsetType):
                raise ValueError(
                    "httpx.Timeout must either include a default, or set all "
                    "four parameters explicitly."
                )
            self.connect = timeout if isinstance(connect, UnsetType) else connect
            self.read = timeout if isinstance(read, UnsetType) else read
            self.write = timeout if isinstance(write, UnsetType) else write
            self.pool = timeout if isinstance(pool, UnsetType) else pool

    def as_dict(self) -> dict[str, float | None]:
        return {"connect": self.connect, "read": self.read, "write": self.write, "pool": self.pool}

    def __eq__(self, other: typing.Any) -> bool:
        # Field by field, not via tuples, so that NaN never equals itself.
        return (
            isinstance(other, self.__class__)
            and self.connect == other.connect
            and self.read == other.read
            and self.write == other.write
            and self.pool == other.pool
        )

    def __repr__(self) -> str:
        name = self.__class__.__name__
        if len({self.connect, self.read, self.write, self.pool}) == 1:
            return f"{name}(timeout={self.connect})"
        return (
            f"{name}(connect={self.connect}, read={self.read}, "
            f"write={self.write}, pool={self.pool})"
        )


class Limits:
    """
    Connection pool limits.

    * max_connections: the most connections open at once (None: no limit).
    * max_keepalive_connections: the most idle connections kept for reuse;
      should not exceed max_connections.
    * keepalive_expiry: seconds an idle connection is kept before closing.
    """

    def __init__(
        self,
        *,
        max_connections: int | None = None,
        max_keepalive_connections: int | None = None,
        keepalive_expiry: float | None = 5.0,
    ) -> None:
        self.max_connections = max_connections
        self.max_keepalive_connections = max_keepalive_connections
        self.keepalive_expiry = keepalive_expiry

    def __eq__(self, other: typing.Any) -> bool:
        return (
            isinstance(other, self.__class__)
            and self.max_connections == other.max_connections
            and self.max_keepalive_connections == other.max_keepalive_connections
            and self.keepalive_expiry == other.keepalive_expiry
        )

    def __repr__(self) -> str:
        return (
            f"{self.__class__.__name__}(max_connections={self.max_connections}, "
            f"max_keepalive_connections={self.max_keepalive_connections}, "
            f"keepalive_expiry={self.keepalive_expiry})"
        )


class Proxy:
    """
    A proxy server: its URL (http, https, socks5 or socks5h), credentials,
    extra headers for the proxy, and the TLS context used to reach it.
    Credentials in the URL are moved to `auth`.
    """

    def __init__(
        self,
        url: URL | str,
        *,
        ssl_context: ssl.SSLContext | None = None,
        auth: tuple[str, str] | None = None,
        headers: HeaderTypes | None = None,
    ) -> None:
        url = URL(url)
        proxy_headers = Headers(headers)
        if url.scheme not in ("http", "https", "socks5", "socks5h"):
            raise ValueError(f"Unknown scheme for proxy URL {url!r}")
        if url.username or url.password:
            auth = (url.username, url.password)
            url = url.copy_with(username=None, password=None)

        self.url = url
        self.auth = auth
        self.headers = proxy_headers
        self.ssl_context = ssl_context

    @property
    def raw_auth(self) -> tuple[bytes, bytes] | None:
        """The credentials as UTF-8 bytes."""
        if self.auth is None:
            return None
        return self.auth[0].encode("utf-8"), self.auth[1].encode("utf-8")

    def __repr__(self) -> str:
        # Never show the password.
        auth = f", auth={(self.auth[0], '********')!r}" if self.auth else ""
        headers = f", headers={dict(self.headers)!r}" if self.headers else ""
        return f"Proxy({str(self.url)!r}{auth}{headers})"


DEFAULT_TIMEOUT_CONFIG = Timeout(timeout=5.0)
DEFAULT_LIMITS = Limits(max_connections=100, max_keepalive_connections=20)
DEFAULT_MAX_REDIRECTS = 20
