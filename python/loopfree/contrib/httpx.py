"""
Real httpx over loopfree's engine: transports for `httpx.Client` and
`httpx.AsyncClient`, for code that must hand an httpx client to a library
(SDKs that type-check `http_client=`) but wants loopfree's connection pool,
which belongs to no event loop.

    pip install loopfree httpx

    import httpx
    from loopfree.contrib.httpx import AsyncHTTPTransport, HTTPTransport

    client = httpx.Client(transport=HTTPTransport())
    async_client = httpx.AsyncClient(transport=AsyncHTTPTransport(http2=True))

httpx stays in charge of everything above the wire (auth, redirects, cookies,
event hooks, Content-Encoding decoding, timeouts configuration); each
transport owns one loopfree `Engine` and sends exactly one request per call.
The async transport waits like `loopfree.AsyncClient` does: on whichever
loop (asyncio, uvloop) or trio run is current, keeping no reference to it
between requests, so one `httpx.AsyncClient` works across `asyncio.run()`
calls, Flask async views and trio. The sync transport waits like
`loopfree.Client`: without the GIL, answering signals, and parking only the
greenlet under gevent or eventlet.

Errors are raised as the httpx exceptions of the same name (`httpx.ConnectError`,
`httpx.ReadTimeout`, ...), with loopfree's message and `.request` set.

Limits (see docs/migrating-from-httpx.md, "Keeping httpx, using the engine"):
request bodies are read into memory before they are sent; a non-empty `socket_options=` and a proxy with `ssl_context=` raise
`ValueError` (`uds=`, `local_address=` and proxy `headers=` are honoured);
request extensions other
than `timeout` (`sni_hostname`, `trace`) are ignored and responses carry
no `network_stream` extension.

httpx is not a dependency of loopfree: only this module imports it.
"""

from __future__ import annotations

import ssl
import time
import typing

try:
    import httpx
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "loopfree.contrib.httpx needs httpx installed: pip install loopfree httpx"
    ) from exc

from .. import _exceptions
from .._loopfree import Engine
from .._transports.default import (
    async_sleep,
    build_engine,
    engine_arguments,
    retry_delays,
    run_sync,
)
from .._waiting import wait_async, wait_sync

if typing.TYPE_CHECKING:
    from .._loopfree import BodyReader

__all__ = ["AsyncHTTPTransport", "HTTPTransport"]

ProxyTypes = str | httpx.URL | httpx.Proxy
CertTypes = str | tuple[str, str] | tuple[str, str, str]

_RETRYABLE = (_exceptions.ConnectError, _exceptions.ConnectTimeout)

# Every loopfree exception the engine can raise, by the httpx class of the
# same name. A subclass maps through its nearest listed ancestor.
_EXCEPTION_NAMES = (
    "HTTPError",
    "RequestError",
    "TransportError",
    "TimeoutException",
    "ConnectTimeout",
    "ReadTimeout",
    "WriteTimeout",
    "PoolTimeout",
    "NetworkError",
    "ConnectError",
    "ReadError",
    "WriteError",
    "CloseError",
    "ProtocolError",
    "LocalProtocolError",
    "RemoteProtocolError",
    "ProxyError",
    "UnsupportedProtocol",
    "DecodingError",
    "TooManyRedirects",
)
_EXCEPTION_MAP: dict[type[BaseException], type[httpx.RequestError]] = {
    getattr(_exceptions, name): getattr(httpx, name)
    for name in _EXCEPTION_NAMES
    if issubclass(getattr(httpx, name), httpx.RequestError)
}
_ENGINE_ERRORS = (_exceptions.RequestError, _exceptions.InvalidURL)


def _to_httpx(exc: BaseException, request: httpx.Request) -> Exception:
    """The httpx exception for a loopfree one: same name, message and request."""
    message = str(exc)
    if isinstance(exc, _exceptions.InvalidURL):
        return httpx.InvalidURL(message)
    for cls in type(exc).__mro__:
        mapped = _EXCEPTION_MAP.get(cls)
        if mapped is not None:
            return mapped(message, request=request)
    return httpx.TransportError(message, request=request)


def _validated_proxy(proxy: ProxyTypes | None) -> httpx.Proxy | None:
    """An `httpx.Proxy` (ValueError on an unknown scheme, as httpx)."""
    if isinstance(proxy, str | httpx.URL):
        return httpx.Proxy(url=proxy)
    return proxy


class _SyncEngineStream(httpx.SyncByteStream):
    """A streamed response body: raw chunks (httpx decodes Content-Encoding)."""

    def __init__(self, reader: BodyReader, request: httpx.Request) -> None:
        self._reader = reader
        self._request = request

    def __iter__(self) -> typing.Iterator[bytes]:
        try:
            while (chunk := wait_sync(self._reader.next_chunk())) is not None:
                yield chunk
        except _ENGINE_ERRORS as exc:
            raise _to_httpx(exc, self._request) from exc

    def close(self) -> None:
        self._reader.close()


class _AsyncEngineStream(httpx.AsyncByteStream):
    """A streamed response body, each chunk awaited on the current loop or trio."""

    def __init__(self, reader: BodyReader, request: httpx.Request) -> None:
        self._reader = reader
        self._request = request

    async def __aiter__(self) -> typing.AsyncIterator[bytes]:
        try:
            while (chunk := await wait_async(self._reader.next_chunk())) is not None:
                yield chunk
        except _ENGINE_ERRORS as exc:
            raise _to_httpx(exc, self._request) from exc

    async def aclose(self) -> None:
        self._reader.close()


class _EngineTransport:
    """What the sync and async transports share: the engine and its calls."""

    _engine: Engine
    retries: int

    # httpx's transport constructor, the same for the sync and async transport.
    def __init__(
        self,
        verify: ssl.SSLContext | str | bool = True,
        cert: CertTypes | None = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20),
        proxy: ProxyTypes | None = None,
        uds: str | None = None,
        local_address: str | None = None,
        retries: int = 0,
        socket_options: typing.Iterable[typing.Any] | None = None,
        *,
        connect_timeout: float | None = None,
    ) -> None:
        self.retries = retries
        self._engine = build_engine(
            verify=verify,
            cert=cert,
            trust_env=trust_env,
            http1=http1,
            http2=http2,
            limits=limits,
            # httpx ignores environment proxies once `transport=` is given:
            # the engine never reads them either.
            proxy=_validated_proxy(proxy),
            uds=uds,
            local_address=local_address,
            socket_options=socket_options,
            connect_timeout=connect_timeout,
        )

    @staticmethod
    def _arguments(request: httpx.Request, body: bytes) -> tuple[typing.Any, ...]:
        # httpx's client always sets a timeout; without one, as in httpcore,
        # none applies. Redirects are httpx's (the 3xx is returned), and so is
        # reading and decoding the body (streamed).
        timeout = request.extensions.get("timeout") or {}
        return engine_arguments(request, body, timeout, stream=True)

    @staticmethod
    def _response(
        request: httpx.Request,
        raw: typing.Any,
        stream: type[_SyncEngineStream] | type[_AsyncEngineStream],
    ) -> httpx.Response:
        head, _elapsed, _final, _history, _next, reader = raw
        status, version, reason, headers, _body, _downloaded = head
        return httpx.Response(
            status,
            headers=headers,
            stream=stream(reader, request),
            request=request,
            extensions={"http_version": version, "reason_phrase": reason},
        )


class HTTPTransport(_EngineTransport, httpx.BaseTransport):
    """
    `httpx.HTTPTransport`'s constructor, over one loopfree engine.

        client = httpx.Client(transport=HTTPTransport(http2=True, retries=2))

    httpx's per-request `connect` timeout applies; `connect_timeout=`
    (seconds, default none) adds one cap on connecting for every request.
    """

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        try:
            arguments = self._arguments(request, body)
            for delay in retry_delays(self.retries):
                try:
                    return self._response(
                        request, run_sync(self._engine, arguments), _SyncEngineStream
                    )
                except _RETRYABLE:
                    if delay:
                        time.sleep(delay)
            return self._response(request, run_sync(self._engine, arguments), _SyncEngineStream)
        except _ENGINE_ERRORS as exc:
            raise _to_httpx(exc, request) from exc

    def close(self) -> None:
        self._engine.close()


class AsyncHTTPTransport(_EngineTransport, httpx.AsyncBaseTransport):
    """
    `httpx.AsyncHTTPTransport`'s constructor, over one loopfree engine. It
    belongs to no event loop: one `httpx.AsyncClient` built on it works on
    any loop (asyncio, uvloop) or trio, one after another or at once.

        client = httpx.AsyncClient(transport=AsyncHTTPTransport())

    httpx's per-request `connect` timeout applies; `connect_timeout=`
    (seconds, default none) adds one cap on connecting for every request.
    """

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        try:
            arguments = self._arguments(request, body)
            for delay in retry_delays(self.retries):
                try:
                    raw = await wait_async(self._engine.start(*arguments))
                    return self._response(request, raw, _AsyncEngineStream)
                except _RETRYABLE:
                    if delay:
                        await async_sleep(delay)
            raw = await wait_async(self._engine.start(*arguments))
            return self._response(request, raw, _AsyncEngineStream)
        except _ENGINE_ERRORS as exc:
            raise _to_httpx(exc, request) from exc

    async def aclose(self) -> None:
        self._engine.close()
