"""
`Client` and `AsyncClient`, with httpx's API.

Both are thin: they merge client defaults into a `Request`, hand it to the
Rust `Engine`, wait in the way the calling context needs (`_waiting`) and wrap
the result in a `Response`. The engine owns the connection pool, which
belongs to no event loop, so one client object serves every thread, every
asyncio loop (one per request if need be), trio, gevent and forked children.
"""

from __future__ import annotations

import datetime
import enum
import logging
import os
import ssl
import typing
import warnings
from contextlib import asynccontextmanager, contextmanager

from ._auth import Auth, BasicAuth, FunctionAuth
from ._config import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_REDIRECTS,
    DEFAULT_TIMEOUT_CONFIG,
    USE_CLIENT_DEFAULT,
    Limits,
    Proxy,
    Timeout,
    UseClientDefault,
)
from ._content import AsyncByteStream, ByteStream, SyncByteStream
from ._cookies import Cookies
from ._engine_stream import EngineByteStream
from ._exceptions import RequestError
from ._headers import Headers
from ._loopfree import Engine, __version__
from ._query_params import QueryParams
from ._request import Request
from ._response import Response
from ._url import URL
from ._waiting import wait_async, wait_sync

__all__ = ["AsyncClient", "BaseClient", "Client"]

logger = logging.getLogger("loopfree")

USER_AGENT = f"python-loopfree/{__version__}"
# The engine decodes all four codings itself, so it always offers them.
ACCEPT_ENCODING = "gzip, deflate, br, zstd"

EventHook = typing.Callable[..., typing.Any]

PER_REQUEST_COOKIES_DEPRECATED = (
    "Setting per-request cookies=<...> is being deprecated, because "
    "the expected behaviour on cookie persistence is ambiguous. Set "
    "cookies directly on the client instance instead."
)


class ClientState(enum.Enum):
    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


def _read_ca_bundle(path: str | os.PathLike[str]) -> bytes:
    path = os.fspath(path)
    if os.path.isdir(path):
        chunks = []
        for name in sorted(os.listdir(path)):
            full = os.path.join(path, name)
            if os.path.isfile(full):
                with open(full, "rb") as handle:
                    chunks.append(handle.read())
        return b"\n".join(chunks)
    with open(path, "rb") as handle:
        return handle.read()


def _tls_settings(
    verify: ssl.SSLContext | str | bool | os.PathLike[str],
    cert: typing.Any,
    trust_env: bool,
) -> dict[str, typing.Any]:
    """Translate httpx's `verify`/`cert` into what the Rust engine takes."""
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
            if env_path and os.path.exists(env_path):
                settings["ca_bundle_pem"] = _read_ca_bundle(env_path)
    else:
        settings["ca_bundle_pem"] = _read_ca_bundle(verify)
    if cert is not None:
        if isinstance(cert, str | os.PathLike):
            settings["identity_pem"] = _read_ca_bundle(cert)
        else:
            certfile, keyfile = cert[0], cert[1] if len(cert) > 1 else None
            pem = _read_ca_bundle(certfile)
            if keyfile is not None:
                pem = pem + b"\n" + _read_ca_bundle(keyfile)
            settings["identity_pem"] = pem
    return settings


def _proxy_url(proxy: str | URL | Proxy | None) -> str | None:
    if proxy is None:
        return None
    if isinstance(proxy, Proxy):
        url = proxy.url
        if proxy.auth is not None:
            username, password = proxy.auth
            url = url.copy_with(username=username, password=password)
        return str(url)
    return str(proxy)


def _has_set_cookie(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() == b"set-cookie" for name, _ in raw_headers)


class BaseClient:
    """What `Client` and `AsyncClient` share: configuration and merging."""

    def __init__(
        self,
        *,
        auth: typing.Any = None,
        params: typing.Any = None,
        headers: typing.Any = None,
        cookies: typing.Any = None,
        verify: ssl.SSLContext | str | bool = True,
        cert: typing.Any = None,
        trust_env: bool = True,
        http1: bool = True,
        http2: bool = False,
        proxy: str | URL | Proxy | None = None,
        mounts: typing.Any = None,
        timeout: typing.Any = DEFAULT_TIMEOUT_CONFIG,
        follow_redirects: bool = False,
        limits: Limits = DEFAULT_LIMITS,
        max_redirects: int = DEFAULT_MAX_REDIRECTS,
        event_hooks: typing.Mapping[str, list[EventHook]] | None = None,
        base_url: URL | str = "",
        transport: typing.Any = None,
        default_encoding: str | typing.Callable[[bytes], str] = "utf-8",
    ) -> None:
        if mounts:
            raise NotImplementedError(
                "mounts= is not supported yet by loopfree; see docs/migrating-from-httpx.md"
            )
        event_hooks = {} if event_hooks is None else event_hooks
        self._base_url = self._enforce_trailing_slash(URL(base_url))
        self._auth = self._build_auth(auth)
        self._params = QueryParams(params)
        self.headers = Headers(headers)
        self._cookies = Cookies(cookies)
        self._timeout = Timeout(timeout)
        self.follow_redirects = follow_redirects
        self.max_redirects = max_redirects
        self._event_hooks = {
            "request": list(event_hooks.get("request", [])),
            "response": list(event_hooks.get("response", [])),
        }
        self._trust_env = trust_env
        self._default_encoding = default_encoding
        self._transport = transport
        self._state = ClientState.UNOPENED
        self._engine = Engine(
            http1=http1,
            http2=http2,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            connect_timeout=self._timeout.connect,
            proxy=_proxy_url(proxy),
            trust_env=trust_env,
            **_tls_settings(verify, cert, trust_env),
        )

    @property
    def is_closed(self) -> bool:
        return self._state == ClientState.CLOSED

    @property
    def trust_env(self) -> bool:
        return self._trust_env

    def _enforce_trailing_slash(self, url: URL) -> URL:
        if url.raw_path.endswith(b"/"):
            return url
        return url.copy_with(raw_path=url.raw_path + b"/")

    @property
    def timeout(self) -> Timeout:
        return self._timeout

    @timeout.setter
    def timeout(self, timeout: typing.Any) -> None:
        self._timeout = Timeout(timeout)

    @property
    def event_hooks(self) -> dict[str, list[EventHook]]:
        return self._event_hooks

    @event_hooks.setter
    def event_hooks(self, event_hooks: dict[str, list[EventHook]]) -> None:
        self._event_hooks = {
            "request": list(event_hooks.get("request", [])),
            "response": list(event_hooks.get("response", [])),
        }

    @property
    def auth(self) -> Auth | None:
        return self._auth

    @auth.setter
    def auth(self, auth: typing.Any) -> None:
        self._auth = self._build_auth(auth)

    @property
    def base_url(self) -> URL:
        return self._base_url

    @base_url.setter
    def base_url(self, url: URL | str) -> None:
        self._base_url = self._enforce_trailing_slash(URL(url))

    @property
    def headers(self) -> Headers:
        return self._headers

    @headers.setter
    def headers(self, headers: typing.Any) -> None:
        client_headers = Headers(
            {
                b"Accept": b"*/*",
                b"Accept-Encoding": ACCEPT_ENCODING.encode("ascii"),
                b"Connection": b"keep-alive",
                b"User-Agent": USER_AGENT.encode("ascii"),
            }
        )
        client_headers.update(headers)
        self._headers = client_headers

    @property
    def cookies(self) -> Cookies:
        return self._cookies

    @cookies.setter
    def cookies(self, cookies: typing.Any) -> None:
        self._cookies = Cookies(cookies)

    @property
    def params(self) -> QueryParams:
        return self._params

    @params.setter
    def params(self, params: typing.Any) -> None:
        self._params = QueryParams(params)

    def build_request(
        self,
        method: str,
        url: URL | str,
        *,
        content: typing.Any = None,
        data: typing.Any = None,
        files: typing.Any = None,
        json: typing.Any = None,
        params: typing.Any = None,
        headers: typing.Any = None,
        cookies: typing.Any = None,
        timeout: typing.Any = USE_CLIENT_DEFAULT,
        extensions: dict[str, typing.Any] | None = None,
    ) -> Request:
        url = self._merge_url(url)
        headers = self._merge_headers(headers)
        cookies = self._merge_cookies(cookies)
        params = self._merge_queryparams(params)
        extensions = {} if extensions is None else extensions
        if "timeout" not in extensions:
            resolved = (
                self.timeout if isinstance(timeout, UseClientDefault) else Timeout(timeout)
            )
            extensions = dict(**extensions, timeout=resolved.as_dict())
        return Request(
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            extensions=extensions,
        )

    def _merge_url(self, url: URL | str) -> URL:
        merge_url = URL(url)
        if merge_url.is_relative_url:
            # Relative paths join onto base_url's path, keeping its prefix.
            raw_path = self.base_url.raw_path + merge_url.raw_path.lstrip(b"/")
            return self.base_url.copy_with(raw_path=raw_path)
        return merge_url

    def _merge_cookies(self, cookies: typing.Any = None) -> typing.Any:
        if cookies or self.cookies:
            merged = Cookies(self.cookies)
            merged.update(cookies)
            return merged
        return cookies

    def _merge_headers(self, headers: typing.Any = None) -> Headers:
        merged = Headers(self.headers)
        merged.update(headers)
        return merged

    def _merge_queryparams(self, params: typing.Any = None) -> typing.Any:
        if params or self.params:
            return self.params.merge(params)
        return params

    def _build_auth(self, auth: typing.Any) -> Auth | None:
        if auth is None:
            return None
        if isinstance(auth, tuple):
            return BasicAuth(username=auth[0], password=auth[1])
        if isinstance(auth, Auth):
            return auth
        if callable(auth):
            return FunctionAuth(func=auth)
        raise TypeError(f'Invalid "auth" argument: {auth!r}')

    def _build_request_auth(self, request: Request, auth: typing.Any) -> Auth:
        chosen = self._auth if isinstance(auth, UseClientDefault) else self._build_auth(auth)
        if chosen is not None:
            return chosen
        username, password = request.url.username, request.url.password
        if username or password:
            return BasicAuth(username=username, password=password)
        return Auth()

    def _check_open(self) -> None:
        if self._state == ClientState.CLOSED:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        self._state = ClientState.OPENED

    def _start(
        self, request: Request, body: bytes, follow_redirects: bool, stream: bool
    ) -> typing.Any:
        timeout = request.extensions.get("timeout") or self._timeout.as_dict()
        return self._engine.start(
            request.method,
            str(request.url),
            request.headers.raw,
            body or None,
            (timeout["connect"], timeout["read"], timeout["write"], timeout["pool"]),
            follow_redirects,
            self.max_redirects,
            stream,
        )

    def _build_response(self, request: Request, raw: typing.Any) -> Response:
        head, elapsed, final, history_raw, next_raw, reader = raw
        status, version, reason, headers, body, downloaded = head
        default_encoding = self._default_encoding
        history: list[Response] = []
        for index, (sent, hop) in enumerate(history_raw):
            hop_request = request if index == 0 else Request(sent[0], sent[1], headers=sent[2])
            hop_response = Response._from_engine(
                hop[0],
                hop[3],
                hop[4],
                request=hop_request,
                http_version=hop[1],
                reason_phrase=hop[2],
                elapsed=datetime.timedelta(0),
                default_encoding=default_encoding,
                num_bytes_downloaded=hop[5],
            )
            hop_response.history = list(history)
            if _has_set_cookie(hop[3]):
                self.cookies.extract_cookies(hop_response)
            history.append(hop_response)
        final_request = request if final is None else Request(final[0], final[1], headers=final[2])
        if reader is None:
            response = Response._from_engine(
                status,
                headers,
                body,
                request=final_request,
                http_version=version,
                reason_phrase=reason,
                elapsed=datetime.timedelta(seconds=elapsed),
                default_encoding=default_encoding,
                num_bytes_downloaded=downloaded,
            )
        else:
            response = Response(
                status,
                headers=headers,
                stream=EngineByteStream(reader, final_request),
                request=final_request,
                extensions={"http_version": version, "reason_phrase": reason},
                default_encoding=default_encoding,
            )
            response.elapsed = datetime.timedelta(seconds=elapsed)
        response.history = history
        if next_raw is not None:
            method, url, next_headers, keep_body = next_raw
            response.next_request = Request(
                method,
                url,
                headers=next_headers,
                stream=request.stream if keep_body else ByteStream(b""),
                extensions=request.extensions,
            )
        if _has_set_cookie(headers):
            self.cookies.extract_cookies(response)
        if logger.isEnabledFor(logging.INFO):
            logger.info(
                'HTTP Request: %s %s "%s %d %s"',
                final_request.method,
                final_request.url,
                response.http_version,
                response.status_code,
                response.reason_phrase,
            )
        return response


class Client(BaseClient):
    """
    An HTTP client with connection pooling, HTTP/2, redirects and cookies.

    One instance can be shared by every thread, by forked children and by
    gevent greenlets, and can be used from inside a running event loop.
    """

    def request(
        self,
        method: str,
        url: URL | str,
        *,
        content: typing.Any = None,
        data: typing.Any = None,
        files: typing.Any = None,
        json: typing.Any = None,
        params: typing.Any = None,
        headers: typing.Any = None,
        cookies: typing.Any = None,
        auth: typing.Any = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: typing.Any = USE_CLIENT_DEFAULT,
        extensions: dict[str, typing.Any] | None = None,
    ) -> Response:
        if cookies is not None:
            warnings.warn(PER_REQUEST_COOKIES_DEPRECATED, DeprecationWarning, stacklevel=2)
        request = self.build_request(
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            timeout=timeout,
            extensions=extensions,
        )
        return self.send(request, auth=auth, follow_redirects=follow_redirects)

    @contextmanager
    def stream(
        self,
        method: str,
        url: URL | str,
        **kwargs: typing.Any,
    ) -> typing.Iterator[Response]:
        auth = kwargs.pop("auth", USE_CLIENT_DEFAULT)
        follow_redirects = kwargs.pop("follow_redirects", USE_CLIENT_DEFAULT)
        request = self.build_request(method, url, **kwargs)
        response = self.send(request, auth=auth, follow_redirects=follow_redirects, stream=True)
        try:
            yield response
        finally:
            response.close()

    def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        auth: typing.Any = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Response:
        self._check_open()
        follow = (
            self.follow_redirects
            if isinstance(follow_redirects, UseClientDefault)
            else follow_redirects
        )
        flow_auth = self._build_request_auth(request, auth)
        if type(flow_auth) is Auth:
            return self._send_single(request, follow, stream)
        flow = flow_auth.sync_auth_flow(request)
        history: list[Response] = []
        try:
            request = next(flow)
            while True:
                response = self._send_single(request, follow, stream)
                response.history = history + response.history
                try:
                    next_request = flow.send(response)
                except StopIteration:
                    return response
                history.append(response)
                request = next_request
        finally:
            flow.close()

    def _send_single(self, request: Request, follow_redirects: bool, stream: bool) -> Response:
        if isinstance(request.stream, AsyncByteStream) and not isinstance(
            request.stream, SyncByteStream
        ):
            raise RuntimeError("Attempted to send an async request with a sync Client instance.")
        for hook in self._event_hooks["request"]:
            hook(request)
        try:
            body = request.read()
            if self._transport is not None:
                response = self._transport.handle_request(request)
                response.request = request
                if not stream:
                    response.read()
            else:
                pending = self._start(request, body, follow_redirects, stream)
                response = self._build_response(request, wait_sync(pending))
        except RequestError as exc:
            exc.request = request
            raise
        for hook in self._event_hooks["response"]:
            hook(response)
        return response

    def get(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return self.request("GET", url, **kwargs)

    def options(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return self.request("OPTIONS", url, **kwargs)

    def head(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return self.request("HEAD", url, **kwargs)

    def post(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        if self._state != ClientState.CLOSED:
            self._state = ClientState.CLOSED
            self._engine.close()
            if self._transport is not None:
                self._transport.close()

    def __enter__(self) -> Client:
        if self._state != ClientState.UNOPENED:
            msg = {
                ClientState.OPENED: "Cannot open a client instance more than once.",
                ClientState.CLOSED: (
                    "Cannot reopen a client instance, once it has been closed."
                ),
            }[self._state]
            raise RuntimeError(msg)
        self._state = ClientState.OPENED
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncClient(BaseClient):
    """
    An asynchronous HTTP client for asyncio (any loop, including a new one
    per request), uvloop and trio.

    The connection pool lives in the Rust engine, not on an event loop, so a
    module-level instance keeps working across `asyncio.run()` calls, Flask
    async views, per-test loops and threads.
    """

    async def request(
        self,
        method: str,
        url: URL | str,
        *,
        content: typing.Any = None,
        data: typing.Any = None,
        files: typing.Any = None,
        json: typing.Any = None,
        params: typing.Any = None,
        headers: typing.Any = None,
        cookies: typing.Any = None,
        auth: typing.Any = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
        timeout: typing.Any = USE_CLIENT_DEFAULT,
        extensions: dict[str, typing.Any] | None = None,
    ) -> Response:
        if cookies is not None:
            warnings.warn(PER_REQUEST_COOKIES_DEPRECATED, DeprecationWarning, stacklevel=2)
        request = self.build_request(
            method,
            url,
            content=content,
            data=data,
            files=files,
            json=json,
            params=params,
            headers=headers,
            cookies=cookies,
            timeout=timeout,
            extensions=extensions,
        )
        return await self.send(request, auth=auth, follow_redirects=follow_redirects)

    @asynccontextmanager
    async def stream(
        self,
        method: str,
        url: URL | str,
        **kwargs: typing.Any,
    ) -> typing.AsyncIterator[Response]:
        auth = kwargs.pop("auth", USE_CLIENT_DEFAULT)
        follow_redirects = kwargs.pop("follow_redirects", USE_CLIENT_DEFAULT)
        request = self.build_request(method, url, **kwargs)
        response = await self.send(
            request, auth=auth, follow_redirects=follow_redirects, stream=True
        )
        try:
            yield response
        finally:
            await response.aclose()

    async def send(
        self,
        request: Request,
        *,
        stream: bool = False,
        auth: typing.Any = USE_CLIENT_DEFAULT,
        follow_redirects: bool | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> Response:
        self._check_open()
        follow = (
            self.follow_redirects
            if isinstance(follow_redirects, UseClientDefault)
            else follow_redirects
        )
        flow_auth = self._build_request_auth(request, auth)
        if type(flow_auth) is Auth:
            return await self._send_single(request, follow, stream)
        flow = flow_auth.async_auth_flow(request)
        history: list[Response] = []
        try:
            request = await flow.__anext__()
            while True:
                response = await self._send_single(request, follow, stream)
                response.history = history + response.history
                try:
                    next_request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
                history.append(response)
                request = next_request
        finally:
            await flow.aclose()

    async def _send_single(
        self, request: Request, follow_redirects: bool, stream: bool
    ) -> Response:
        for hook in self._event_hooks["request"]:
            await hook(request)
        try:
            body = await request.aread()
            if self._transport is not None:
                response = await self._transport.handle_async_request(request)
                response.request = request
                if not stream:
                    await response.aread()
            else:
                pending = self._start(request, body, follow_redirects, stream)
                response = self._build_response(request, await wait_async(pending))
        except RequestError as exc:
            exc.request = request
            raise
        for hook in self._event_hooks["response"]:
            await hook(response)
        return response

    async def get(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return await self.request("GET", url, **kwargs)

    async def options(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return await self.request("OPTIONS", url, **kwargs)

    async def head(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return await self.request("HEAD", url, **kwargs)

    async def post(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: URL | str, **kwargs: typing.Any) -> Response:
        return await self.request("DELETE", url, **kwargs)

    async def aclose(self) -> None:
        if self._state != ClientState.CLOSED:
            self._state = ClientState.CLOSED
            self._engine.close()
            if self._transport is not None:
                await self._transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        if self._state != ClientState.UNOPENED:
            msg = {
                ClientState.OPENED: "Cannot open a client instance more than once.",
                ClientState.CLOSED: (
                    "Cannot reopen a client instance, once it has been closed."
                ),
            }[self._state]
            raise RuntimeError(msg)
        self._state = ClientState.OPENED
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
