"""
`HTTPTransport` and `AsyncHTTPTransport`: httpx's network transports, over
loopfree's Rust engine.

Each transport owns one engine (a reqwest connection pool that belongs to no
event loop) and sends exactly one request per call: no redirects, no auth,
no cookies, which are the client's business. A client built without
`transport=` uses one of these as `client._transport`, and when nothing needs
Python (no auth, hooks, mounts or custom transport) hands requests to its
engine directly, redirects included.

A body still to be produced (a generator, a file, multipart with files)
is sent as the caller's stream produces it, chunk by chunk through a
`BodySender`, without being read into memory first.

`uds=`, `local_address=` and a `Proxy` with `headers=` are honoured by
the engine. What it cannot honour raises `ValueError` at construction
rather than being ignored: a non-empty `socket_options=` and a `Proxy` with
`ssl_context=`. `retries=` is honoured as in
httpcore: failures to connect are retried, with exponential backoff.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import ssl
import stat
import time
import typing

from .._config import DEFAULT_LIMITS, DEFAULT_TIMEOUT_CONFIG, Limits, Proxy
from .._content import AsyncByteStream, ByteStream, SyncByteStream
from .._engine_stream import engine_response
from .._exceptions import ConnectError, ConnectTimeout, RequestError
from .._loopfree import BodySender, Engine
from .._response import Response
from .._url import URL
from .._waiting import can_block, wait_async, wait_sync
from .base import AsyncBaseTransport, BaseTransport
from .pool import EnginePool

if typing.TYPE_CHECKING:
    from .._request import Request
    from .._ssl import CertTypes

__all__ = [
    "AsyncHTTPTransport",
    "HTTPTransport",
    "engine_arguments",
    "is_streamed",
    "run_sync",
]

ProxyTypes = str | URL | Proxy

_DEFAULT_TIMEOUTS = DEFAULT_TIMEOUT_CONFIG.as_dict()
_RETRY_BACKOFF_FACTOR = 0.5
_RETRYABLE = (ConnectError, ConnectTimeout)
_MIGRATING = "see docs/migrating-from-httpx.md"


def _read_pem(path: str | os.PathLike[str], status: os.stat_result | None = None) -> bytes:
    """A PEM file, or every file of a directory (a CA path) joined; `status`
    is the path's `os.stat`, when the caller has it already."""
    path = os.fspath(path)
    if status is None:
        status = os.stat(path)
    if stat.S_ISDIR(status.st_mode):
        chunks = []
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if os.path.isfile(full):
                with open(full, "rb") as handle:
                    chunks.append(handle.read())
        return b"\n".join(chunks)
    return _read_pem_file(path, status.st_ino, status.st_mtime_ns, status.st_size)


def _stat_or_none(path: str) -> os.stat_result | None:
    try:
        return os.stat(path)
    except (OSError, ValueError):  # missing, unreadable, or an embedded NUL
        return None


@functools.lru_cache(maxsize=16)
def _read_pem_file(path: str, inode: int, mtime_ns: int, size: int) -> bytes:
    """A PEM file's bytes, read once per version of the file (keyed by its
    stat): a client built under SSL_CERT_FILE read the system bundle anew each
    time, about a third of building one."""
    with open(path, "rb") as handle:
        return handle.read()


def tls_settings(
    verify: ssl.SSLContext | str | bool | os.PathLike[str],
    cert: CertTypes | None,
    trust_env: bool,
) -> dict[str, typing.Any]:
    """Translate httpx's `verify`/`cert` into the engine's TLS arguments."""
    settings: dict[str, typing.Any] = {"verify": True, "ca_bundle_pem": None}
    if isinstance(verify, ssl.SSLContext):
        if verify.verify_mode == ssl.CERT_NONE:
            settings["verify"] = False
        else:
            # CA certificates loaded from a file are readable back as DER;
            # a context with none (system store) keeps the built-in roots.
            ders = verify.get_ca_certs(binary_form=True)
            if ders:
                pems = (ssl.DER_cert_to_PEM_cert(der) for der in ders)
                settings["ca_bundle_pem"] = "".join(pems).encode("ascii")
    elif verify is False:
        settings["verify"] = False
    elif verify is True:
        if trust_env:
            env_path = os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR")
            # One stat per client for the cached bundle (was three).
            if env_path and (status := _stat_or_none(env_path)) is not None:
                settings["ca_bundle_pem"] = _read_pem(env_path, status)
    else:
        settings["ca_bundle_pem"] = _read_pem(verify)
    if cert is not None:
        if isinstance(cert, str | os.PathLike):
            settings["identity_pem"] = _read_pem(cert)
        else:
            certfile, keyfile = cert[0], cert[1] if len(cert) > 1 else None
            pem = _read_pem(certfile)
            if keyfile is not None:
                pem = pem + b"\n" + _read_pem(keyfile)
            settings["identity_pem"] = pem
    return settings


def _validated_proxy(proxy: ProxyTypes | None) -> Proxy | None:
    """A `Proxy` (ValueError on an unknown scheme, as httpx)."""
    if isinstance(proxy, str | URL):
        return Proxy(url=proxy)
    return proxy


def proxy_engine_url(proxy: typing.Any) -> str:
    """
    The engine's URL for a validated proxy: loopfree's `Proxy` or httpx's
    (they have the same attributes). Raises ValueError for what the engine
    cannot honour.
    """
    if proxy.ssl_context is not None:
        raise ValueError(
            "loopfree cannot use a separate SSL context for the proxy connection "
            f"(Proxy(ssl_context=...)); the transport's verify= applies; {_MIGRATING}"
        )
    url = proxy.url
    if proxy.auth is not None:
        url = url.copy_with(username=proxy.auth[0], password=proxy.auth[1])
    if url.scheme == "socks5":
        # httpx always lets the SOCKS proxy resolve the name; reqwest does so
        # only for socks5h (plain socks5 would resolve .onion or internal
        # names locally and fail).
        url = url.copy_with(scheme="socks5h")
    return str(url)


def build_engine(
    *,
    verify: ssl.SSLContext | str | bool,
    cert: CertTypes | None,
    trust_env: bool,
    http1: bool,
    http2: bool,
    limits: typing.Any,
    proxy: typing.Any,
    uds: str | None,
    local_address: str | None,
    socket_options: typing.Iterable[typing.Any] | None,
    connect_timeout: float | None,
) -> Engine:
    """
    The engine behind a transport, from httpx's transport arguments (`limits`
    and a validated `proxy` may be loopfree's or httpx's). Raises ValueError
    at construction for what it cannot honour.
    """
    if socket_options:
        raise ValueError(
            "loopfree's transports do not support socket_options= (the engine sets "
            f"TCP_NODELAY itself); {_MIGRATING}"
        )
    if local_address is not None:
        ipaddress.ip_address(local_address)  # ValueError for anything but an IP
    proxy_headers = None
    if proxy is not None and proxy.headers:
        proxy_headers = [(bytes(k), bytes(v)) for k, v in proxy.headers.raw]
    return Engine(
        http1=http1,
        http2=http2,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        connect_timeout=connect_timeout,
        proxy=None if proxy is None else proxy_engine_url(proxy),
        proxy_headers=proxy_headers,
        local_address=local_address,
        uds=None if uds is None else os.fspath(uds),
        # Environment proxies are the client's business (its mounts), as in
        # httpx: the engine never reads them itself.
        trust_env=False,
        **tls_settings(verify, cert, trust_env),
    )


def engine_arguments(
    request: typing.Any,
    body: bytes | BodySender | None,
    timeout: typing.Mapping[str, float | None],
    *,
    follow_redirects: bool = False,
    max_redirects: int = 0,
    stream: bool,
) -> tuple[typing.Any, ...]:
    """
    The arguments of `Engine.start` / `Engine.send` for `request`, loopfree's
    or httpx's (they have the same attributes); a timeout left out is none.
    """
    return (
        request.method,
        str(request.url),
        request.headers.raw,
        body or None,
        (timeout.get("connect"), timeout.get("read"), timeout.get("write"), timeout.get("pool")),
        follow_redirects,
        max_redirects,
        stream,
    )


def run_sync(engine: Engine, arguments: tuple[typing.Any, ...]) -> typing.Any:
    """
    Run a request from sync code: on this thread (`Engine.send`) where it may
    block, else as a `Pending` waited for the way the context needs (gevent,
    eventlet).
    """
    if can_block():
        return engine.send(*arguments)
    return wait_sync(engine.start(*arguments))


def retry_delays(retries: int) -> typing.Iterator[float]:
    """httpcore's backoff: retry at once, then after 0.5 s, 1 s, 2 s, ..."""
    for attempt in range(retries):
        yield 0.0 if attempt == 0 else _RETRY_BACKOFF_FACTOR * 2 ** (attempt - 1)


async def async_sleep(seconds: float) -> None:
    """Sleep on whichever async library is running (asyncio or trio)."""
    import sniffio

    if sniffio.current_async_library() == "trio":
        import trio

        await trio.sleep(seconds)
    else:
        import asyncio

        await asyncio.sleep(seconds)


def is_streamed(request: Request) -> bool:
    """
    Whether the body is still to be produced (a generator, a file, a
    multipart body with files): it is then sent as it is produced, not read
    into memory first. A transport with `retries=` reads it first, since a
    failed connect would have consumed part of it.
    """
    return request._content is None and not isinstance(request.stream, ByteStream)


class _EngineTransport:
    """What the sync and async transports share: the engine and its calls."""

    _engine: Engine
    _pool: EnginePool

    # httpx's transport constructor, the same for the sync and async transport.
    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        proxy: ProxyTypes | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: typing.Iterable[typing.Any] | None = None,
    ) -> None:
        self.proxy = _validated_proxy(proxy)
        self.retries = retries
        self._engine = build_engine(
            verify=verify,
            cert=cert,
            trust_env=trust_env,
            http1=http1,
            http2=http2,
            limits=limits,
            proxy=self.proxy,
            uds=uds,
            local_address=local_address,
            socket_options=socket_options,
            connect_timeout=None,
        )
        self._pool = EnginePool(
            self._engine,
            proxy=self.proxy,
            limits=limits,
            http1=http1,
            http2=http2,
            retries=retries,
        )

    def _arguments(
        self, request: Request, body: bytes | BodySender, stream: bool
    ) -> tuple[typing.Any, ...]:
        timeout = request.extensions.get("timeout") or _DEFAULT_TIMEOUTS
        return engine_arguments(request, body, timeout, stream=stream)

    @staticmethod
    def _response(request: Request, raw: typing.Any) -> Response:
        head, elapsed, _final, _history, _next, reader = raw
        return engine_response(head, request=request, elapsed=elapsed, reader=reader)


class HTTPTransport(_EngineTransport, BaseTransport):
    """
    The network transport of `Client`, with httpx's constructor.

        transport = HTTPTransport(retries=2, http2=True)
        client = Client(transport=transport)
        client = Client(mounts={"https://internal": HTTPTransport(verify="ca.pem")})
    """

    def handle_request(self, request: Request) -> Response:
        return self._send(request, stream=True)

    def _send(self, request: Request, stream: bool) -> Response:
        """
        Send `request`; `stream=False` returns the body read already (what a
        client does anyway when it will read it: one wait instead of two).
        """
        assert isinstance(request.stream, SyncByteStream)
        try:
            if self.retries == 0 and is_streamed(request):
                return self._response(request, self._send_streamed(request, stream))
            body = request.read()
            if self.retries:
                for delay in retry_delays(self.retries):
                    try:
                        raw = run_sync(self._engine, self._arguments(request, body, stream))
                        return self._response(request, raw)
                    except _RETRYABLE:
                        if delay:
                            time.sleep(delay)
            raw = run_sync(self._engine, self._arguments(request, body, stream))
            return self._response(request, raw)
        except RequestError as exc:
            exc.request = request
            raise

    def _send_streamed(self, request: Request, stream: bool) -> typing.Any:
        """Send the body chunk by chunk as the caller's stream produces it."""
        sender = BodySender()
        pending = self._engine.start(*self._arguments(request, sender, stream))
        try:
            for chunk in request.stream:  # type: ignore[union-attr]
                # False: the request no longer reads its body (it failed, or
                # was answered); its outcome says which.
                if chunk and not wait_sync(sender.send(bytes(chunk))):
                    break
            sender.close()
        except BaseException:
            pending.cancel()
            raise
        return wait_sync(pending)

    def close(self) -> None:
        self._pool.close()


class AsyncHTTPTransport(_EngineTransport, AsyncBaseTransport):
    """
    The network transport of `AsyncClient`, with httpx's constructor. Like
    the client, it works on any event loop (asyncio, uvloop, trio), one after
    another or several at once.
    """

    async def handle_async_request(self, request: Request) -> Response:
        return await self._send(request, stream=True)

    async def _send(self, request: Request, stream: bool) -> Response:
        assert isinstance(request.stream, AsyncByteStream)
        try:
            if self.retries == 0 and is_streamed(request):
                return self._response(request, await self._send_streamed(request, stream))
            body = await request.aread()
            if self.retries:
                for delay in retry_delays(self.retries):
                    try:
                        raw = await wait_async(
                            self._engine.start(*self._arguments(request, body, stream))
                        )
                        return self._response(request, raw)
                    except _RETRYABLE:
                        if delay:
                            await async_sleep(delay)
            pending = self._engine.start(*self._arguments(request, body, stream))
            return self._response(request, await wait_async(pending))
        except RequestError as exc:
            exc.request = request
            raise

    async def _send_streamed(self, request: Request, stream: bool) -> typing.Any:
        """Send the body chunk by chunk as the caller's stream produces it."""
        sender = BodySender()
        pending = self._engine.start(*self._arguments(request, sender, stream))
        try:
            async for chunk in request.stream:  # type: ignore[union-attr]
                if chunk and not await wait_async(sender.send(bytes(chunk))):
                    break
            sender.close()
        except BaseException:
            pending.cancel()
            raise
        return await wait_async(pending)

    async def aclose(self) -> None:
        self._pool.close()
