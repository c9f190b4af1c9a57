"""
`Client` and `AsyncClient`, with httpx's API.

Two ways to send, chosen per request:

* the direct path: when the client routes every URL to its own network
  transport and the request needs nothing from Python (no auth, no event
  hooks), `send()` hands the request to the transport's Rust `Engine`, which
  also follows redirects, and wraps the result in a `Response`;
* httpx's pipeline otherwise (auth, hooks, `transport=`, `mounts=`, proxies
  from the environment): send -> auth flow -> redirect loop -> one request to
  the transport that `_transport_for_url()` picks, all in Python, hooks and
  cookies on every hop.

The engine owns the connection pool, which belongs to no event loop, so one
client object serves every thread, every asyncio loop (one per request if
need be), trio, gevent and forked children.
"""

from __future__ import annotations

import datetime
import enum
import functools
import logging
import ssl
import time
import typing
import warnings
from contextlib import asynccontextmanager, contextmanager
from http.cookiejar import CookieJar
from types import TracebackType

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
from ._engine_stream import engine_response
from ._exceptions import InvalidURL, RemoteProtocolError, RequestError, TooManyRedirects
from ._headers import Headers
from ._loopfree import Engine, __version__
from ._query_params import QueryParams
from ._request import Request
from ._response import Response
from ._status_codes import codes
from ._transports.default import (
    AsyncHTTPTransport,
    HTTPTransport,
    engine_arguments,
    is_streamed,
    run_sync,
)
from ._url import URL
from ._utils import URLPattern, get_environment_proxies
from ._waiting import wait_async

__all__ = ["AsyncClient", "BaseClient", "Client"]

# httpx's logger name and User-Agent product token, so that code switching by
# import keeps its logging configuration (`getLogger("httpx").setLevel(...)`
# is the usual way to quiet request logs) and servers that match on
# `python-httpx` treat it the same. The version is loopfree's own.
logger = logging.getLogger("httpx")

USER_AGENT = f"python-httpx/{__version__}"
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


def _has_set_cookie(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    return any(name.lower() in _SET_COOKIE for name, _ in raw_headers)


def _engine_has_set_cookie(raw_headers: list[tuple[bytes, bytes]]) -> bool:
    """`_has_set_cookie` for the engine's headers, whose names are lower-case."""
    # A plain loop: no generator object per response on the hot path.
    for name, _ in raw_headers:  # noqa: SIM110
        if name in _SET_COOKIE:
            return True
    return False


_SET_COOKIE = (b"set-cookie", b"set-cookie2")

# URLs given as text are parsed once per text: a `URL` never changes, so
# requests to the same address can share one (and its cached text).
_shared_url = functools.lru_cache(maxsize=256)(URL)


_DEFAULT_PORTS = {"http": 80, "https": 443}

# Headers a Request sets itself; client headers naming them take the full path.
_REQUEST_MANAGED_HEADERS = frozenset((b"host", b"content-length", b"transfer-encoding"))


def _port_or_default(url: URL) -> int | None:
    return url.port if url.port is not None else _DEFAULT_PORTS.get(url.scheme)


def _same_origin(url: URL, other: URL) -> bool:
    return (
        url.scheme == other.scheme
        and url.host == other.host
        and _port_or_default(url) == _port_or_default(other)
    )


def _is_https_redirect(url: URL, location: URL) -> bool:
    """True if `location` is `url` upgraded from http:80 to https:443."""
    return (
        url.host == location.host
        and url.scheme == "http"
        and _port_or_default(url) == 80
        and location.scheme == "https"
        and _port_or_default(location) == 443
    )


def _matches_everything(pattern: URLPattern) -> bool:
    return not pattern.scheme and not pattern.host and pattern.port is None


def _log_response(request: Request, response: Response) -> None:
    logger.info(
        'HTTP Request: %s %s "%s %d %s"',
        request.method,
        request.url,
        response.http_version,
        response.status_code,
        response.reason_phrase,
    )


class _TimedSyncStream(SyncByteStream):
    """A transport's response body that sets `response.elapsed` when closed."""

    def __init__(self, stream: SyncByteStream, response: Response, start: float) -> None:
        self._stream = stream
        self._response = response
        self._start = start

    def __iter__(self) -> typing.Iterator[bytes]:
        yield from self._stream

    def close(self) -> None:
        self._response.elapsed = datetime.timedelta(seconds=time.perf_counter() - self._start)
        self._stream.close()


class _TimedAsyncStream(AsyncByteStream):
    """The async counterpart of `_TimedSyncStream`."""

    def __init__(self, stream: AsyncByteStream, response: Response, start: float) -> None:
        self._stream = stream
        self._response = response
        self._start = start

    async def __aiter__(self) -> typing.AsyncIterator[bytes]:
        async for chunk in self._stream:
            yield chunk

    async def aclose(self) -> None:
        self._response.elapsed = datetime.timedelta(seconds=time.perf_counter() - self._start)
        await self._stream.aclose()


# Enum members looked up once: `ClientState.X` costs a metaclass lookup
# (~0.2 µs) each time, twice per request on the hot path.
_CLOSED = ClientState.CLOSED
_OPENED = ClientState.OPENED


class BaseClient:
    """What `Client` and `AsyncClient` share: configuration and merging."""

    # The class's own `send`, to tell when a subclass or a patch replaced it.
    _own_send: typing.ClassVar[typing.Callable[..., typing.Any]]

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
        self._state = ClientState.UNOPENED

        # As in httpx: `_transport` serves every URL that no mount claims;
        # `proxy=` (or, under trust_env and without `transport=`, the
        # environment's proxies) become mounts, and `mounts=` come on top.
        network = {
            "verify": verify,
            "cert": cert,
            "trust_env": trust_env,
            "http1": http1,
            "http2": http2,
            "limits": limits,
        }
        proxy_map = self._get_proxy_map(proxy, trust_env and transport is None)
        self._transport: typing.Any = (
            self._network_transport(**network) if transport is None else transport
        )
        active: dict[URLPattern, typing.Any] = {
            URLPattern(key): None
            if value is None
            else self._network_transport(proxy=value, **network)
            for key, value in proxy_map.items()
        }
        if mounts is not None:
            active.update({URLPattern(key): value for key, value in mounts.items()})
        self._mounts: dict[URLPattern, typing.Any] = dict(sorted(active.items()))
        self._engine: Engine | None = self._direct_engine()

    _transport_class: typing.ClassVar[type[HTTPTransport] | type[AsyncHTTPTransport]]
    _timed_stream_class: typing.ClassVar[typing.Any]

    def _network_transport(self, **kwargs: typing.Any) -> typing.Any:
        return self._transport_class(**kwargs)

    def _get_proxy_map(
        self, proxy: str | URL | Proxy | None, allow_env_proxies: bool
    ) -> dict[str, Proxy | None]:
        if proxy is None:
            if not allow_env_proxies:
                return {}
            return {
                key: None if url is None else Proxy(url=url)
                for key, url in get_environment_proxies().items()
            }
        # Proxy() rejects unknown schemes (ValueError), as httpx does.
        return {"all://": Proxy(url=proxy) if isinstance(proxy, str | URL) else proxy}

    def _direct_engine(self) -> Engine | None:
        """
        The engine `send()` may use directly: set when every URL goes to one
        plain network transport (the client's own, or a proxy mounted for
        "all://"), which is then used with its redirects in Rust.
        """
        routed = [transport for transport in self._mounts.values() if transport is not None]
        if not routed:
            target = self._transport
        elif len(self._mounts) == 1 and _matches_everything(next(iter(self._mounts))):
            target = routed[0]
        else:
            return None
        if type(target) is not self._transport_class or target.retries:
            return None
        engine: Engine = target._engine
        return engine

    def _transport_for_url(self, url: URL) -> typing.Any:
        """The transport for `url`: the first mount that matches, else `_transport`."""
        for pattern, transport in self._mounts.items():
            if pattern.matches(url):
                return self._transport if transport is None else transport
        return self._transport

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
        if (
            content is None
            and data is None
            and files is None
            and json is None
            and params is None
            and headers is None
            and cookies is None
            and extensions is None
            and isinstance(timeout, UseClientDefault)
        ):
            plain = self._plain_request(method, url)
            if plain is not None:
                return plain
        url = self._merge_url(url)
        headers = self._merge_headers(headers)
        cookies = self._merge_cookies(cookies)
        params = self._merge_queryparams(params)
        extensions = {} if extensions is None else extensions
        if "timeout" not in extensions:
            resolved = self.timeout if isinstance(timeout, UseClientDefault) else Timeout(timeout)
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

    def _plain_request(self, method: str, url: URL | str) -> Request | None:
        """
        The hot path of build_request() for a request with nothing but a
        method and an absolute URL, when the client adds no params and no
        cookies and its headers leave Host and the body headers alone; None
        when any of that does not hold. It builds the same Request as the
        general path, without the merging steps that would change nothing.
        """
        jar = self._cookies.jar
        if self._params._dict or type(jar) is not CookieJar or jar._cookies:  # type: ignore[attr-defined]
            return None
        client_headers = self._headers
        if not client_headers._lookup().keys().isdisjoint(_REQUEST_MANAGED_HEADERS):
            return None
        merged_url = url if isinstance(url, URL) else _shared_url(url)
        uri = merged_url._uri
        if not (uri.scheme and uri.host):  # `is_absolute_url`, without a property call
            return None
        extensions = {"timeout": self._timeout.as_dict()}
        return Request._plain(method, merged_url, client_headers._raw, extensions)

    def _plain_direct(self, method: str, url: URL | str) -> Request | None:
        """
        The hot path of `request()` called with a method and a URL only: the
        request `build_request` would make, when `send` would take the direct
        path for it (no auth of any kind, no event hooks, one engine for every
        URL); else None. See `_direct_arguments`.
        """
        if self._engine is None or self._auth is not None:
            return None
        cls = type(self)
        instance = self.__dict__
        if (
            cls.send is not cls._own_send  # type: ignore[attr-defined]
            or cls.build_request is not _BUILD_REQUEST
            or "send" in instance
            or "build_request" in instance
        ):
            # request() calls both: one overridden or patched must run.
            return None
        hooks = self._event_hooks
        if hooks["request"] or hooks["response"] or self._state is _CLOSED:
            return None
        request = self._plain_request(method, url)
        if request is None or request.url._uri.userinfo:
            return None
        self._state = _OPENED
        return request

    def _direct_arguments(self, request: Request) -> tuple[typing.Any, ...]:
        """The engine's arguments for a request from `_plain_direct`."""
        timeout = self._timeout
        return (
            request.method,
            str(request.url),
            # The engine only reads the list: no copy (`headers.raw` makes one).
            request.headers._raw,
            None,
            (timeout.connect, timeout.read, timeout.write, timeout.pool),
            self.follow_redirects,
            self.max_redirects,
            False,
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
        if request.url.userinfo:
            username, password = request.url.username, request.url.password
            if username or password:
                return BasicAuth(username=username, password=password)
        return Auth()

    def _check_open(self) -> None:
        if self._state == ClientState.CLOSED:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        self._state = ClientState.OPENED

    def _set_timeout(self, request: Request) -> None:
        if "timeout" not in request.extensions:
            request.extensions = dict(**request.extensions, timeout=self._timeout.as_dict())

    # -- redirects in Python (the pipeline); the direct path's are in Rust ----

    def _build_redirect_request(self, request: Request, response: Response) -> Request:
        """The request that follows the redirect `response` to `request`."""
        method = self._redirect_method(request, response)
        url = self._redirect_url(request, response)
        return Request(
            method=method,
            url=url,
            headers=self._redirect_headers(request, url, method),
            cookies=Cookies(self.cookies),
            stream=self._redirect_stream(request, method),
            extensions=request.extensions,
        )

    def _redirect_method(self, request: Request, response: Response) -> str:
        method = request.method
        status = response.status_code
        # 303 means GET (RFC 7231 6.4.4); browsers do the same for 302, and
        # for a POST answered with 301.
        if status in (codes.SEE_OTHER, codes.FOUND) and method != "HEAD":
            return "GET"
        if status == codes.MOVED_PERMANENTLY and method == "POST":
            return "GET"
        return method

    def _redirect_url(self, request: Request, response: Response) -> URL:
        location = response.headers["Location"]
        try:
            url = URL(location)
        except InvalidURL as exc:
            raise RemoteProtocolError(
                f"Invalid URL in location header: {exc}.", request=request
            ) from None
        # An absolute-form Location without a host ("https:///path") keeps ours.
        if url.scheme and not url.host:
            url = url.copy_with(host=request.url.host)
        if url.is_relative_url:
            url = request.url.join(url)
        # A fragment carries over unless the Location has its own (RFC 7231 7.1.2).
        if request.url.fragment and not url.fragment:
            url = url.copy_with(fragment=request.url.fragment)
        return url

    def _redirect_headers(self, request: Request, url: URL, method: str) -> Headers:
        headers = Headers(request.headers)
        if not _same_origin(url, request.url):
            # Credentials stay with their origin, except on an upgrade of the
            # same host from http to https.
            if not _is_https_redirect(request.url, url):
                headers.pop("Authorization", None)
            headers["Host"] = url.netloc.decode("ascii")
        if method != request.method and method == "GET":
            # The body is dropped: so are the headers that describe it.
            headers.pop("Content-Length", None)
            headers.pop("Transfer-Encoding", None)
        # The client's cookie jar decides the Cookie header of the next hop.
        headers.pop("Cookie", None)
        return headers

    def _redirect_stream(
        self, request: Request, method: str
    ) -> SyncByteStream | AsyncByteStream | None:
        if method != request.method and method == "GET":
            return None
        return request.stream

    def _prepare_response(self, request: Request, response: Response, start: float) -> None:
        """What the pipeline does to every response a transport returns."""
        response.request = request
        if response._stream is not None:
            # (Engine responses that were read already carry their elapsed.)
            response.stream = self._timed_stream_class(response.stream, response, start)
        # The stock jar ignores responses without cookies: skip them cheaply.
        if type(self._cookies.jar) is not CookieJar or _has_set_cookie(response.headers.raw):
            self._cookies.extract_cookies(response)
        response.default_encoding = self._default_encoding
        if logger.isEnabledFor(logging.INFO):
            _log_response(request, response)

    # -- the direct path ------------------------------------------------------

    def _arguments(
        self, request: Request, body: bytes, follow_redirects: bool, stream: bool
    ) -> tuple[typing.Any, ...]:
        """The engine's arguments for the direct path (redirects in Rust)."""
        timeout = request.extensions.get("timeout") or self._timeout.as_dict()
        return engine_arguments(
            request,
            body,
            timeout,
            follow_redirects=follow_redirects,
            max_redirects=self.max_redirects,
            stream=stream,
        )

    def _build_response(self, request: Request, raw: typing.Any) -> Response:
        head, elapsed, final, history_raw, next_raw, reader = raw
        if (
            final is None
            and not history_raw
            and next_raw is None
            and reader is None
            and not _engine_has_set_cookie(head[3])
            and not logger.isEnabledFor(logging.INFO)
        ):
            # One read response and nothing else: what the general path below
            # builds for it, without its steps that would do nothing.
            return engine_response(head, request, elapsed, self._default_encoding)
        default_encoding = self._default_encoding
        history: list[Response] = []
        for index, (sent, hop) in enumerate(history_raw):
            hop_request = request if index == 0 else Request(sent[0], sent[1], headers=sent[2])
            hop_response = engine_response(
                hop, request=hop_request, elapsed=0.0, default_encoding=default_encoding
            )
            hop_response.history = list(history)
            if _engine_has_set_cookie(hop[3]):
                self.cookies.extract_cookies(hop_response)
            history.append(hop_response)
        final_request = request if final is None else Request(final[0], final[1], headers=final[2])
        response = engine_response(
            head,
            request=final_request,
            elapsed=elapsed,
            reader=reader,
            default_encoding=default_encoding,
        )
        if reader is not None:
            # Time to the head; the body is still to come.
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
        if _engine_has_set_cookie(head[3]):
            self.cookies.extract_cookies(response)
        if logger.isEnabledFor(logging.INFO):
            # One line per hop, as the pipeline (and httpx) logs them.
            for hop_response in history:
                _log_response(hop_response.request, hop_response)
            _log_response(final_request, response)
        return response


_BUILD_REQUEST = BaseClient.build_request


class Client(BaseClient):
    """
    An HTTP client with connection pooling, HTTP/2, redirects and cookies.

    One instance can be shared by every thread, by forked children and by
    gevent greenlets, and can be used from inside a running event loop.
    """

    _transport_class = HTTPTransport
    _timed_stream_class = _TimedSyncStream

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
        if (
            content is None
            and data is None
            and files is None
            and json is None
            and params is None
            and headers is None
            and cookies is None
            and extensions is None
            and auth is USE_CLIENT_DEFAULT
            and follow_redirects is USE_CLIENT_DEFAULT
            and timeout is USE_CLIENT_DEFAULT
        ):
            request = self._plain_direct(method, url)
            if request is not None:
                # What build_request() + send() do for it, in one step.
                try:
                    assert self._engine is not None
                    raw = run_sync(self._engine, self._direct_arguments(request))
                    return self._build_response(request, raw)
                except RequestError as exc:
                    exc.request = request
                    raise
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
        hooks = self._event_hooks
        if (
            self._engine is not None
            and type(flow_auth) is Auth
            and not hooks["request"]
            and not hooks["response"]
            and not is_streamed(request)
        ):
            # The direct path: one call into the engine, redirects included.
            if not isinstance(request.stream, SyncByteStream):
                raise RuntimeError(
                    "Attempted to send an async request with a sync Client instance."
                )
            try:
                assert self._engine is not None
                arguments = self._arguments(request, request.read(), follow, stream)
                return self._build_response(request, run_sync(self._engine, arguments))
            except RequestError as exc:
                exc.request = request
                raise

        self._set_timeout(request)
        response = self._send_handling_auth(request, flow_auth, follow, [], stream)
        try:
            if not stream:
                response.read()
        except BaseException:
            response.close()
            raise
        return response

    def _send_handling_auth(
        self,
        request: Request,
        auth: Auth,
        follow_redirects: bool,
        history: list[Response],
        stream: bool,
    ) -> Response:
        flow = auth.sync_auth_flow(request)
        try:
            request = next(flow)
            while True:
                response = self._send_handling_redirects(request, follow_redirects, history, stream)
                try:
                    try:
                        next_request = flow.send(response)
                    except StopIteration:
                        return response
                    response.history = list(history)
                    response.read()
                    request = next_request
                    history.append(response)
                except BaseException:
                    response.close()
                    raise
        finally:
            flow.close()

    def _send_handling_redirects(
        self,
        request: Request,
        follow_redirects: bool,
        history: list[Response],
        stream: bool,
    ) -> Response:
        while True:
            if len(history) > self.max_redirects:
                raise TooManyRedirects("Exceeded maximum allowed redirects.", request=request)
            for hook in self._event_hooks["request"]:
                hook(request)
            response = self._send_single_request(request, stream)
            try:
                for hook in self._event_hooks["response"]:
                    hook(response)
                response.history = list(history)
                if not response.has_redirect_location:
                    return response
                request = self._build_redirect_request(request, response)
                history = [*history, response]
                if not follow_redirects:
                    response.next_request = request
                    return response
                response.read()
            except BaseException:
                response.close()
                raise

    def _send_single_request(self, request: Request, stream: bool = True) -> Response:
        """Send one request to its transport: no auth, no redirects."""
        transport = self._transport_for_url(request.url)
        if not isinstance(request.stream, SyncByteStream):
            raise RuntimeError("Attempted to send an async request with a sync Client instance.")
        start = time.perf_counter()
        try:
            if type(transport).handle_request is HTTPTransport.handle_request:
                # Read at once what will be read anyway: one engine round trip.
                response: Response = transport._send(request, stream=stream)
            else:
                response = transport.handle_request(request)
        except RequestError as exc:
            exc.request = request
            raise
        # (`_stream` is None for engine responses read already.)
        assert response._stream is None or isinstance(response._stream, SyncByteStream)
        self._prepare_response(request, response, start)
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
        """Close the transport and every mounted transport."""
        if self._state != ClientState.CLOSED:
            self._state = ClientState.CLOSED
            self._transport.close()
            for transport in self._mounts.values():
                if transport is not None:
                    transport.close()

    def __enter__(self) -> Client:
        if self._state != ClientState.UNOPENED:
            msg = {
                ClientState.OPENED: "Cannot open a client instance more than once.",
                ClientState.CLOSED: ("Cannot reopen a client instance, once it has been closed."),
            }[self._state]
            raise RuntimeError(msg)
        self._state = ClientState.OPENED
        self._transport.__enter__()
        for transport in self._mounts.values():
            if transport is not None:
                transport.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self._state = ClientState.CLOSED
        self._transport.__exit__(exc_type, exc_value, traceback)
        for transport in self._mounts.values():
            if transport is not None:
                transport.__exit__(exc_type, exc_value, traceback)


Client._own_send = Client.send


class AsyncClient(BaseClient):
    """
    An asynchronous HTTP client for asyncio (any loop, including a new one
    per request), uvloop and trio.

    The connection pool lives in the Rust engine, not on an event loop, so a
    module-level instance keeps working across `asyncio.run()` calls, Flask
    async views, per-test loops and threads.
    """

    _transport_class = AsyncHTTPTransport
    _timed_stream_class = _TimedAsyncStream

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
        if (
            content is None
            and data is None
            and files is None
            and json is None
            and params is None
            and headers is None
            and cookies is None
            and extensions is None
            and auth is USE_CLIENT_DEFAULT
            and follow_redirects is USE_CLIENT_DEFAULT
            and timeout is USE_CLIENT_DEFAULT
        ):
            request = self._plain_direct(method, url)
            if request is not None:
                # What build_request() + send() do for it, in one step (the
                # arguments are not kept alive while the request is out).
                try:
                    assert self._engine is not None
                    pending = self._engine.start(*self._direct_arguments(request))
                    return self._build_response(request, await wait_async(pending))
                except RequestError as exc:
                    exc.request = request
                    raise
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
        hooks = self._event_hooks
        if (
            self._engine is not None
            and type(flow_auth) is Auth
            and not hooks["request"]
            and not hooks["response"]
            and not is_streamed(request)
        ):
            # The direct path: one call into the engine, redirects included.
            if not isinstance(request.stream, AsyncByteStream):
                raise RuntimeError(
                    "Attempted to send an sync request with an AsyncClient instance."
                )
            try:
                # (An in-memory body is read already: skip a coroutine.)
                body = request._content
                if body is None:
                    body = await request.aread()
                assert self._engine is not None
                pending = self._engine.start(*self._arguments(request, body, follow, stream))
                return self._build_response(request, await wait_async(pending))
            except RequestError as exc:
                exc.request = request
                raise

        self._set_timeout(request)
        response = await self._send_handling_auth(request, flow_auth, follow, [], stream)
        try:
            if not stream:
                await response.aread()
        except BaseException:
            await response.aclose()
            raise
        return response

    async def _send_handling_auth(
        self,
        request: Request,
        auth: Auth,
        follow_redirects: bool,
        history: list[Response],
        stream: bool,
    ) -> Response:
        flow = auth.async_auth_flow(request)
        try:
            request = await flow.__anext__()
            while True:
                response = await self._send_handling_redirects(
                    request, follow_redirects, history, stream
                )
                try:
                    try:
                        next_request = await flow.asend(response)
                    except StopAsyncIteration:
                        return response
                    response.history = list(history)
                    await response.aread()
                    request = next_request
                    history.append(response)
                except BaseException:
                    await response.aclose()
                    raise
        finally:
            await flow.aclose()

    async def _send_handling_redirects(
        self,
        request: Request,
        follow_redirects: bool,
        history: list[Response],
        stream: bool,
    ) -> Response:
        while True:
            if len(history) > self.max_redirects:
                raise TooManyRedirects("Exceeded maximum allowed redirects.", request=request)
            for hook in self._event_hooks["request"]:
                await hook(request)
            response = await self._send_single_request(request, stream)
            try:
                for hook in self._event_hooks["response"]:
                    await hook(response)
                response.history = list(history)
                if not response.has_redirect_location:
                    return response
                request = self._build_redirect_request(request, response)
                history = [*history, response]
                if not follow_redirects:
                    response.next_request = request
                    return response
                await response.aread()
            except BaseException:
                await response.aclose()
                raise

    async def _send_single_request(self, request: Request, stream: bool = True) -> Response:
        """Send one request to its transport: no auth, no redirects."""
        transport = self._transport_for_url(request.url)
        if not isinstance(request.stream, AsyncByteStream):
            raise RuntimeError("Attempted to send an sync request with an AsyncClient instance.")
        start = time.perf_counter()
        try:
            if type(transport).handle_async_request is AsyncHTTPTransport.handle_async_request:
                # Read at once what will be read anyway: one engine round trip.
                response: Response = await transport._send(request, stream=stream)
            else:
                response = await transport.handle_async_request(request)
        except RequestError as exc:
            exc.request = request
            raise
        # (`_stream` is None for engine responses read already.)
        assert response._stream is None or isinstance(response._stream, AsyncByteStream)
        self._prepare_response(request, response, start)
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
        """Close the transport and every mounted transport."""
        if self._state != ClientState.CLOSED:
            self._state = ClientState.CLOSED
            await self._transport.aclose()
            for transport in self._mounts.values():
                if transport is not None:
                    await transport.aclose()

    async def __aenter__(self) -> AsyncClient:
        if self._state != ClientState.UNOPENED:
            msg = {
                ClientState.OPENED: "Cannot open a client instance more than once.",
                ClientState.CLOSED: ("Cannot reopen a client instance, once it has been closed."),
            }[self._state]
            raise RuntimeError(msg)
        self._state = ClientState.OPENED
        await self._transport.__aenter__()
        for transport in self._mounts.values():
            if transport is not None:
                await transport.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self._state = ClientState.CLOSED
        await self._transport.__aexit__(exc_type, exc_value, traceback)
        for transport in self._mounts.values():
            if transport is not None:
                await transport.__aexit__(exc_type, exc_value, traceback)


AsyncClient._own_send = AsyncClient.send
