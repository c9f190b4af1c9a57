"""One small adapter per client library, used by `_worker.py`.

Every adapter exposes the same few callables so that the measured loop is the
same for all libraries and the adapter costs the same (one extra Python call)
for each:

- ``sync_session(h2, ca) -> Session`` and ``async_session(h2, ca) -> ASession``
  (the latter is awaited inside the running loop), each with
  ``get(url) -> (status, body_length)``, ``post(url, data) -> (status,
  body_length)`` and ``close()``;
- ``construct() -> object`` and ``destroy(object)`` for the client-construction
  measurements (sync clients; aiohttp's session is built inside a loop).

Library settings are the libraries' defaults except: a 60 s timeout (no
measured request comes near it), TLS verification against bench-server's CA,
HTTP/2 with prior knowledge for the h2 scenario, and urllib3's per-host pool
sized to 16 (its default of 1 would throw away 15 of 16 connections after
every request in the 16-thread scenario).
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import ssl
import typing
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

TIMEOUT = 60.0

Result = tuple[int, int]


@dataclass
class Session:
    get: Callable[[str], Result]
    post: Callable[[str, bytes], Result]
    close: Callable[[], None]


@dataclass
class ASession:
    get: Callable[[str], Awaitable[Result]]
    post: Callable[[str, bytes], Awaitable[Result]]
    close: Callable[[], Awaitable[None]]


@dataclass
class Adapter:
    name: str
    dist: str  # distribution name, for the version
    sync_session: Callable[[bool, str | None], Session] | None = None
    async_session: Callable[[bool, str | None], Awaitable[ASession]] | None = None
    construct: Callable[[], typing.Any] | None = None
    # May return an awaitable when `async_construct` is set.
    destroy: Callable[[typing.Any], typing.Any] | None = None
    async_construct: bool = False
    h2: bool = True  # supports HTTP/2 prior knowledge (h2c)
    note: str = ""


def version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _ssl_context(ca: str | None) -> ssl.SSLContext | bool:
    return ssl.create_default_context(cafile=ca) if ca else True


# --------------------------------------------------------------------- httpx-shaped


def _httpx_like(module: typing.Any, *, http1_param: bool = True, **extra: typing.Any) -> Adapter:
    """loopfree, httpx and httpxr share httpx's API."""

    def kwargs(h2: bool, ca: str | None) -> dict[str, typing.Any]:
        kw: dict[str, typing.Any] = {"timeout": TIMEOUT, **extra}
        if ca:
            kw["verify"] = ca if module.__name__ == "httpxr" else _ssl_context(ca)
        if h2:
            kw["http2"] = True
            if http1_param:
                kw["http1"] = False
        return kw

    def sync_session(h2: bool, ca: str | None) -> Session:
        client = module.Client(**kwargs(h2, ca))

        def get(url: str) -> Result:
            r = client.get(url)
            return r.status_code, len(r.content)

        def post(url: str, data: bytes) -> Result:
            r = client.post(url, content=data)
            return r.status_code, len(r.content)

        return Session(get, post, client.close)

    async def async_session(h2: bool, ca: str | None) -> ASession:
        client = module.AsyncClient(**kwargs(h2, ca))

        async def get(url: str) -> Result:
            r = await client.get(url)
            return r.status_code, len(r.content)

        async def post(url: str, data: bytes) -> Result:
            r = await client.post(url, content=data)
            return r.status_code, len(r.content)

        return ASession(get, post, client.aclose)

    def construct() -> typing.Any:
        return module.Client(**extra)

    def destroy(client: typing.Any) -> None:
        client.close()

    return Adapter(
        name=module.__name__,
        dist=module.__name__,
        sync_session=sync_session,
        async_session=async_session,
        construct=construct,
        destroy=destroy,
    )


def loopfree() -> Adapter:
    import loopfree as module

    return _httpx_like(module)


# Names a `loopfree.contrib.httpx` module may give its httpx transports.
_SYNC_TRANSPORT_NAMES = ("HTTPTransport", "LoopfreeTransport", "Transport", "SyncTransport")
_ASYNC_TRANSPORT_NAMES = ("AsyncHTTPTransport", "AsyncLoopfreeTransport", "AsyncTransport")


def contrib_httpx_available() -> tuple[bool, str]:
    try:
        found = importlib.util.find_spec("loopfree.contrib.httpx") is not None
    except ModuleNotFoundError:
        found = False
    if not found:
        return False, "loopfree.contrib.httpx does not exist in this build"
    module = importlib.import_module("loopfree.contrib.httpx")
    sync_names = [n for n in _SYNC_TRANSPORT_NAMES if hasattr(module, n)]
    async_names = [n for n in _ASYNC_TRANSPORT_NAMES if hasattr(module, n)]
    if not sync_names or not async_names:
        return False, (
            "loopfree.contrib.httpx has no transport class named one of "
            f"{_SYNC_TRANSPORT_NAMES} / {_ASYNC_TRANSPORT_NAMES}"
        )
    return True, f"httpx {version('httpx')} over {sync_names[0]}/{async_names[0]}"


def loopfree_httpx() -> Adapter:
    """httpx's Client on loopfree's transport (`loopfree.contrib.httpx`)."""
    import httpx

    module = importlib.import_module("loopfree.contrib.httpx")
    sync_cls = next(getattr(module, n) for n in _SYNC_TRANSPORT_NAMES if hasattr(module, n))
    async_cls = next(getattr(module, n) for n in _ASYNC_TRANSPORT_NAMES if hasattr(module, n))

    def transport_kwargs(h2: bool, ca: str | None) -> dict[str, typing.Any]:
        kw: dict[str, typing.Any] = {}
        if ca:
            kw["verify"] = _ssl_context(ca)
        if h2:
            kw.update(http1=False, http2=True)
        return kw

    def sync_session(h2: bool, ca: str | None) -> Session:
        client = httpx.Client(timeout=TIMEOUT, transport=sync_cls(**transport_kwargs(h2, ca)))

        def get(url: str) -> Result:
            r = client.get(url)
            return r.status_code, len(r.content)

        def post(url: str, data: bytes) -> Result:
            r = client.post(url, content=data)
            return r.status_code, len(r.content)

        return Session(get, post, client.close)

    async def async_session(h2: bool, ca: str | None) -> ASession:
        client = httpx.AsyncClient(timeout=TIMEOUT, transport=async_cls(**transport_kwargs(h2, ca)))

        async def get(url: str) -> Result:
            r = await client.get(url)
            return r.status_code, len(r.content)

        async def post(url: str, data: bytes) -> Result:
            r = await client.post(url, content=data)
            return r.status_code, len(r.content)

        return ASession(get, post, client.aclose)

    def construct() -> typing.Any:
        return httpx.Client(transport=sync_cls())

    return Adapter(
        name="loopfree+httpx",
        dist="loopfree",
        sync_session=sync_session,
        async_session=async_session,
        construct=construct,
        destroy=lambda c: c.close(),
    )


def httpx_() -> Adapter:
    import httpx

    return _httpx_like(httpx)


def httpxr() -> Adapter:
    import httpxr as module

    adapter = _httpx_like(module, http1_param=False)
    adapter.note = "h2 = http2=True (httpxr has no http1= switch)"
    return adapter


# --------------------------------------------------------------------- others


def aiohttp_() -> Adapter:
    import aiohttp

    async def async_session(h2: bool, ca: str | None) -> ASession:
        if h2:
            raise NotImplementedError("aiohttp has no HTTP/2")
        connector = aiohttp.TCPConnector(ssl=_ssl_context(ca) if ca else True)
        session = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=TIMEOUT)
        )

        async def get(url: str) -> Result:
            async with session.get(url) as r:
                body = await r.read()
                return r.status, len(body)

        async def post(url: str, data: bytes) -> Result:
            async with session.post(url, data=data) as r:
                body = await r.read()
                return r.status, len(body)

        return ASession(get, post, session.close)

    return Adapter(
        name="aiohttp",
        dist="aiohttp",
        async_session=async_session,
        # Built and closed inside the running loop (`close()` is a coroutine).
        construct=lambda: aiohttp.ClientSession(),
        destroy=lambda session: session.close(),
        async_construct=True,
        h2=False,
        note="async only",
    )


def urllib3_() -> Adapter:
    import urllib3

    def make(ca: str | None) -> typing.Any:
        kw: dict[str, typing.Any] = {"maxsize": 16, "retries": False, "timeout": TIMEOUT}
        if ca:
            kw["ca_certs"] = ca
        return urllib3.PoolManager(**kw)

    def sync_session(h2: bool, ca: str | None) -> Session:
        if h2:
            raise NotImplementedError("urllib3 has no stable HTTP/2")
        pool = make(ca)

        def get(url: str) -> Result:
            r = pool.request("GET", url)
            return r.status, len(r.data)

        def post(url: str, data: bytes) -> Result:
            r = pool.request("POST", url, body=data)
            return r.status, len(r.data)

        return Session(get, post, pool.clear)

    return Adapter(
        name="urllib3",
        dist="urllib3",
        sync_session=sync_session,
        construct=lambda: make(None),
        destroy=lambda p: p.clear(),
        h2=False,
        note="PoolManager(maxsize=16); sync only",
    )


def pyreqwest_() -> Adapter:
    from datetime import timedelta

    from pyreqwest.client import ClientBuilder, SyncClientBuilder

    def configure(builder: typing.Any, h2: bool, ca: str | None) -> typing.Any:
        builder = builder.timeout(timedelta(seconds=TIMEOUT))
        if h2:
            builder = builder.http2_prior_knowledge()
        if ca:
            with open(ca, "rb") as handle:
                builder = builder.add_root_certificate_pem(handle.read())
        return builder

    def sync_session(h2: bool, ca: str | None) -> Session:
        client = configure(SyncClientBuilder(), h2, ca).build()

        def get(url: str) -> Result:
            r = client.get(url).build().send()
            return r.status, len(r.bytes())

        def post(url: str, data: bytes) -> Result:
            r = client.post(url).body_bytes(data).build().send()
            return r.status, len(r.bytes())

        return Session(get, post, client.close)

    async def async_session(h2: bool, ca: str | None) -> ASession:
        client = configure(ClientBuilder(), h2, ca).build()

        async def get(url: str) -> Result:
            r = await client.get(url).build().send()
            return r.status, len(await r.bytes())

        async def post(url: str, data: bytes) -> Result:
            r = await client.post(url).body_bytes(data).build().send()
            return r.status, len(await r.bytes())

        return ASession(get, post, client.close)

    return Adapter(
        name="pyreqwest",
        dist="pyreqwest",
        sync_session=sync_session,
        async_session=async_session,
        construct=lambda: SyncClientBuilder().build(),
        destroy=lambda c: c.close(),
    )


def wreq_() -> Adapter:
    from datetime import timedelta
    from pathlib import Path

    import wreq
    import wreq.blocking

    def kwargs(h2: bool, ca: str | None) -> dict[str, typing.Any]:
        kw: dict[str, typing.Any] = {"timeout": timedelta(seconds=TIMEOUT)}
        if h2:
            kw["http2_only"] = True
        if ca:
            kw["tls_verify"] = Path(ca)
        return kw

    def sync_session(h2: bool, ca: str | None) -> Session:
        client = wreq.blocking.Client(**kwargs(h2, ca))

        def get(url: str) -> Result:
            r = client.get(url)
            body = r.bytes()
            return r.status.as_int(), len(body)

        def post(url: str, data: bytes) -> Result:
            r = client.post(url, body=data)
            body = r.bytes()
            return r.status.as_int(), len(body)

        return Session(get, post, client.close)

    async def async_session(h2: bool, ca: str | None) -> ASession:
        client = wreq.Client(**kwargs(h2, ca))

        async def get(url: str) -> Result:
            r = await client.get(url)
            body = await r.bytes()
            return r.status.as_int(), len(body)

        async def post(url: str, data: bytes) -> Result:
            r = await client.post(url, body=data)
            body = await r.bytes()
            return r.status.as_int(), len(body)

        async def close() -> None:
            client.close()

        return ASession(get, post, close)

    return Adapter(
        name="wreq",
        dist="wreq",
        sync_session=sync_session,
        async_session=async_session,
        construct=lambda: wreq.blocking.Client(),
        destroy=lambda c: c.close(),
    )


FACTORIES: dict[str, Callable[[], Adapter]] = {
    "loopfree": loopfree,
    "loopfree+httpx": loopfree_httpx,
    "httpx": httpx_,
    "aiohttp": aiohttp_,
    "urllib3": urllib3_,
    "pyreqwest": pyreqwest_,
    "wreq": wreq_,
    "httpxr": httpxr,
}

# Distribution behind each client name, for versions and installation checks.
DISTS = {
    "loopfree": "loopfree",
    "loopfree+httpx": "loopfree",
    "httpx": "httpx",
    "aiohttp": "aiohttp",
    "urllib3": "urllib3",
    "pyreqwest": "pyreqwest",
    "wreq": "wreq",
    "httpxr": "httpxr",
}
