"""httpx's send pipeline (auth -> redirects -> one request per transport call),
`mounts=`, proxies, and `HTTPTransport` / `AsyncHTTPTransport`.

The pipeline runs whenever a request needs Python: `transport=`, `mounts=`,
environment proxies, auth or event hooks. Plain requests take the direct
path into the engine; the tests at the end check which path is taken.
"""

from __future__ import annotations

import asyncio
import datetime
import logging
import socket
import ssl
import threading
import typing
from unittest import mock

import loopfree
import pytest
import trio
from loopfree._transports.default import AsyncHTTPTransport, HTTPTransport

RUNNERS = {"asyncio": lambda fn: asyncio.run(fn()), "trio": trio.run}


@pytest.fixture(params=sorted(RUNNERS))
def run(request: pytest.FixtureRequest) -> typing.Callable[..., typing.Any]:
    """Runs a coroutine function to completion under asyncio, then trio."""
    return RUNNERS[request.param]


# --------------------------------------------------------------------------
# A MockTransport app with redirects and cookies
# --------------------------------------------------------------------------


def app(request: loopfree.Request) -> loopfree.Response:
    path = request.url.path
    if request.url.scheme not in ("http", "https"):
        raise loopfree.UnsupportedProtocol(f"Scheme {request.url.scheme!r} not supported.")
    if path.startswith("/redirect/"):
        # /redirect/<status>?to=<location>
        status = int(path.rsplit("/", 1)[1])
        location = request.url.params["to"].encode("utf-8")
        return loopfree.Response(status, headers=[(b"location", location)])
    if path == "/loop":
        return loopfree.Response(302, headers={"location": "/loop"})
    if path == "/set":
        return loopfree.Response(
            303, headers={"set-cookie": "session=abc; Path=/", "location": "/echo"}
        )
    if path == "/latin1":
        # Streamed content: the client times the response until it is closed.
        return loopfree.Response(200, content=iter(["café".encode("latin-1")]))
    body = request.read()
    return loopfree.Response(
        200,
        json={
            "method": request.method,
            "url": str(request.url),
            "headers": dict(request.headers),
            "body": body.decode("latin-1"),
        },
    )


def mock_client(**kwargs: typing.Any) -> loopfree.Client:
    return loopfree.Client(transport=loopfree.MockTransport(app), **kwargs)


def redirect(status: int, to: str, base: str = "https://example.org") -> str:
    return str(loopfree.URL(f"{base}/redirect/{status}", params={"to": to}))


# --------------------------------------------------------------------------
# Redirects in Python
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "method", "expected"),
    [
        (301, "GET", "GET"),
        (301, "POST", "GET"),
        (301, "PUT", "PUT"),
        (302, "POST", "GET"),
        (302, "HEAD", "HEAD"),
        (303, "PUT", "GET"),
        (303, "HEAD", "HEAD"),
        (307, "POST", "POST"),
        (308, "POST", "POST"),
    ],
)
def test_redirect_method(status: int, method: str, expected: str) -> None:
    with mock_client(follow_redirects=True) as client:
        response = client.request(method, redirect(status, "/echo"), content=b"data")
    assert [r.status_code for r in response.history] == [status]
    if expected == "HEAD":
        return
    echoed = response.json()
    assert echoed["method"] == expected
    # A body survives only when the method does.
    assert echoed["body"] == ("data" if expected == method else "")
    assert ("content-length" in echoed["headers"]) == (expected == method)


def test_relative_and_hostless_locations_and_fragments() -> None:
    with mock_client(follow_redirects=True) as client:
        relative = client.get(redirect(302, "../echo?x=1"))
        hostless = client.get(redirect(302, "https:///echo"))
        fragment = client.get(redirect(302, "/echo") + "#keep")
    assert relative.url == "https://example.org/echo?x=1"
    assert hostless.url == "https://example.org/echo"
    assert fragment.url == "https://example.org/echo#keep"


def test_history_next_request_and_hooks_per_hop() -> None:
    seen: list[tuple[str, str]] = []
    hooks = {
        "request": [lambda request: seen.append(("request", request.url.path))],
        "response": [lambda response: seen.append(("response", str(response.status_code)))],
    }
    with mock_client(event_hooks=hooks) as client:
        first = client.get(redirect(301, "/echo"))
        assert first.status_code == 301
        assert first.next_request is not None
        assert first.next_request.url == "https://example.org/echo"
        final = client.send(first.next_request)
        assert final.status_code == 200
        chained = client.get(redirect(302, redirect(307, "/echo")), follow_redirects=True)
    assert [r.status_code for r in chained.history] == [302, 307]
    assert chained.history[1].history == [chained.history[0]]
    assert seen[:4] == [
        ("request", "/redirect/301"),
        ("response", "301"),
        ("request", "/echo"),
        ("response", "200"),
    ]
    assert [event for event, _ in seen[4:]] == ["request", "response"] * 3


def test_too_many_redirects_and_max_redirects() -> None:
    with mock_client(follow_redirects=True) as client:
        with pytest.raises(loopfree.TooManyRedirects) as info:
            client.get("https://example.org/loop")
        assert info.value.request.url == "https://example.org/loop"
    with mock_client(follow_redirects=True, max_redirects=1) as client:
        assert client.get(redirect(302, "/echo")).status_code == 200
        with pytest.raises(loopfree.TooManyRedirects):
            client.get(redirect(302, redirect(302, "/echo")))


def test_bad_locations() -> None:
    with mock_client(follow_redirects=True) as client:
        with pytest.raises(loopfree.RemoteProtocolError, match="Invalid URL in location header"):
            client.get(redirect(302, "https://😇/"))
        with pytest.raises(loopfree.UnsupportedProtocol, match="Scheme 'market' not supported"):
            client.get(redirect(301, "market://details?id=42"))


def test_authorization_kept_on_same_origin_and_https_upgrade_only() -> None:
    headers = {"Authorization": "secret"}
    with mock_client(follow_redirects=True, headers=headers) as client:
        same = client.get(redirect(302, "/echo")).json()
        other = client.get(redirect(302, "https://example.com/echo")).json()
        upgrade = client.get(redirect(302, "https://example.org/echo", "http://example.org"))
        downgrade = client.get(redirect(302, "http://example.org/echo")).json()
    assert same["headers"]["authorization"] == "secret"
    assert "authorization" not in other["headers"]
    assert other["headers"]["host"] == "example.com"
    assert upgrade.json()["headers"]["authorization"] == "secret"
    assert "authorization" not in downgrade["headers"]


def test_redirect_headers_helper() -> None:
    client = loopfree.Client()
    request = client.build_request(
        "POST",
        "http://example.org/a",
        content=b"x",
        headers={"Authorization": "a", "Cookie": "c=1"},
    )
    headers = client._redirect_headers(request, loopfree.URL("https://example.org/b"), "GET")
    assert headers["Authorization"] == "a"
    assert headers["Host"] == "example.org"
    assert "Cookie" not in headers
    assert "Content-Length" not in headers
    headers = client._redirect_headers(request, loopfree.URL("http://example.org:8080/"), "POST")
    assert "Authorization" not in headers
    assert headers["Host"] == "example.org:8080"
    assert headers["Content-Length"] == "1"
    client.close()


def test_cookies_follow_every_hop() -> None:
    with mock_client(follow_redirects=True) as client:
        response = client.get("https://example.org/set")
        assert response.json()["headers"]["cookie"] == "session=abc"
        assert client.cookies["session"] == "abc"


def test_one_shot_body_cannot_be_replayed() -> None:
    class ConsumeBody(loopfree.BaseTransport):
        """Reads the body as a network transport would, without `request.read()`."""

        def handle_request(self, request: loopfree.Request) -> loopfree.Response:
            b"".join(typing.cast(typing.Iterable[bytes], request.stream))
            return app(request)

    def body() -> typing.Iterator[bytes]:
        yield b"once"

    with loopfree.Client(transport=ConsumeBody(), follow_redirects=True) as client:
        with pytest.raises(loopfree.StreamConsumed):
            client.post(redirect(307, "/echo"), content=body())
        # A 303 drops the body, so nothing needs replaying.
        assert client.post(redirect(303, "/echo"), content=body()).status_code == 200


def test_digest_auth_needs_a_replayable_body(run: typing.Any) -> None:
    def digest_app(request: loopfree.Request) -> loopfree.Response:
        if "authorization" in request.headers:
            return loopfree.Response(200)
        challenge = 'Digest realm="r", nonce="n", qop="auth", algorithm=MD5'
        return loopfree.Response(401, headers={"www-authenticate": challenge})

    class ConsumeBody(loopfree.AsyncBaseTransport):
        async def handle_async_request(self, request: loopfree.Request) -> loopfree.Response:
            async for _ in typing.cast(typing.AsyncIterable[bytes], request.stream):
                pass
            return digest_app(request)

    async def body() -> typing.AsyncIterator[bytes]:
        yield b"once"

    async def main() -> None:
        auth = loopfree.DigestAuth("user", "pass")
        async with loopfree.AsyncClient(transport=ConsumeBody()) as client:
            with pytest.raises(loopfree.StreamConsumed):
                await client.post("https://example.org/", content=body(), auth=auth)
            auth = loopfree.DigestAuth("user", "pass")
            response = await client.post("https://example.org/", content=b"x", auth=auth)
            assert response.status_code == 200
            assert [r.status_code for r in response.history] == [401]

    run(main)


# --------------------------------------------------------------------------
# Responses from custom transports
# --------------------------------------------------------------------------


def test_default_encoding_elapsed_and_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="httpx")
    with mock_client(default_encoding="latin-1") as client:
        response = client.get("https://example.org/latin1")
    assert response.text == "café"
    assert isinstance(response.elapsed, datetime.timedelta)
    assert caplog.record_tuples == [
        ("httpx", logging.INFO, 'HTTP Request: GET https://example.org/latin1 "HTTP/1.1 200 OK"')
    ]


def test_stream_true_leaves_the_body_unread() -> None:
    chunks = []

    def streaming(request: loopfree.Request) -> loopfree.Response:
        return loopfree.Response(200, content=iter([b"a", b"b"]))

    with loopfree.Client(transport=loopfree.MockTransport(streaming)) as client:
        with client.stream("GET", "https://example.org/") as response:
            assert not response.is_stream_consumed
            chunks.extend(response.iter_bytes())
        assert response.is_closed
    assert chunks == [b"a", b"b"]


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, asyncio.CancelledError])
def test_response_closed_on_base_exception_while_reading(
    run: typing.Any, interrupt: type[BaseException]
) -> None:
    closed = []

    class Interrupted(loopfree.AsyncByteStream, loopfree.SyncByteStream):
        def __iter__(self) -> typing.Iterator[bytes]:
            yield b"partial"
            raise interrupt

        async def __aiter__(self) -> typing.AsyncIterator[bytes]:
            yield b"partial"
            raise interrupt

        def close(self) -> None:
            closed.append("sync")

        async def aclose(self) -> None:
            closed.append("async")

    transport = loopfree.MockTransport(lambda request: loopfree.Response(200, stream=Interrupted()))
    with loopfree.Client(transport=transport) as client, pytest.raises(interrupt):
        client.get("https://example.org/")

    async def main() -> None:
        async with loopfree.AsyncClient(transport=transport) as client:
            with pytest.raises(interrupt):
                await client.get("https://example.org/")

    run(main)
    assert closed == ["sync", "async"]


def test_context_manager_enters_and_exits_every_transport(run: typing.Any) -> None:
    events: list[str] = []

    class Recording(loopfree.AsyncBaseTransport, loopfree.BaseTransport):
        def __init__(self, name: str) -> None:
            self.name = name

        def __enter__(self) -> Recording:
            events.append(f"{self.name}.enter")
            return self

        def __exit__(self, *exc_info: object) -> None:
            events.append(f"{self.name}.exit")

        async def __aenter__(self) -> Recording:
            events.append(f"{self.name}.aenter")
            return self

        async def __aexit__(self, *exc_info: object) -> None:
            events.append(f"{self.name}.aexit")

    with loopfree.Client(transport=Recording("t"), mounts={"http://": Recording("m")}):
        pass

    async def main() -> None:
        async with loopfree.AsyncClient(
            transport=Recording("t"), mounts={"http://": Recording("m"), "https://": None}
        ):
            pass

    run(main)
    sync_events = ["t.enter", "m.enter", "t.exit", "m.exit"]
    assert events == [*sync_events, "t.aenter", "m.aenter", "t.aexit", "m.aexit"]


def test_async_client_rejects_a_sync_only_body(server: typing.Any, run: typing.Any) -> None:
    def body() -> typing.Iterator[bytes]:
        yield b"sync"  # pragma: no cover

    async def main() -> None:
        # The direct path, then the pipeline: the same RuntimeError.
        async with loopfree.AsyncClient() as client:
            with pytest.raises(RuntimeError, match="sync request with an AsyncClient"):
                await client.post(f"{server.url}/echo_body", content=body())
        transport = loopfree.MockTransport(app)
        async with loopfree.AsyncClient(transport=transport) as client:
            with pytest.raises(RuntimeError, match="sync request with an AsyncClient"):
                await client.post("https://example.org/", content=body())

    run(main)


# --------------------------------------------------------------------------
# mounts=, proxy=, environment proxies
# --------------------------------------------------------------------------


def routed_proxy(client: typing.Any, url: str) -> str | None:
    transport = client._transport_for_url(loopfree.URL(url))
    if transport is client._transport:
        return None
    return str(transport.proxy.url)


@pytest.mark.parametrize(
    ("url", "mounts", "expected"),
    [
        ("http://example.com", {"https://": "http://p:1"}, None),
        ("http://example.com", {"http://*": "http://p:1"}, "http://p:1"),
        ("http://www.example.com", {"http://example.com": "http://p:1"}, None),
        ("http://www.example.com", {"http://*.example.com": "http://p:1"}, "http://p:1"),
        ("http://example.com", {"all://*example.com": "http://p:1"}, "http://p:1"),
        ("http://example.com:8080", {"http://example.com:8080": "http://p:1"}, "http://p:1"),
        (
            "http://example.com",
            {"all://": "http://p:1", "http://": "http://p:2", "all://example.com": "http://p:3"},
            "http://p:3",
        ),
    ],
)
def test_mounts_route_by_most_specific_pattern(
    url: str, mounts: dict[str, str], expected: str | None
) -> None:
    transports = {key: HTTPTransport(proxy=value) for key, value in mounts.items()}
    client = loopfree.Client(mounts=transports)
    assert routed_proxy(client, url) == expected
    # Mounted network transports route in Python: no direct path.
    assert client._engine is None
    client.close()


def test_mount_keys_must_be_url_patterns() -> None:
    with pytest.raises(ValueError, match='use "http://"'):
        loopfree.Client(mounts={"http": HTTPTransport()})


@pytest.mark.parametrize("proxy", ["ftp://127.0.0.1", loopfree.URL("file:///x")])
def test_unknown_proxy_schemes_are_rejected(proxy: typing.Any) -> None:
    with pytest.raises(ValueError, match="Unknown scheme for proxy URL"):
        loopfree.Client(proxy=proxy)
    with pytest.raises(ValueError, match="Unknown scheme for proxy URL"):
        HTTPTransport(proxy=proxy)


def test_proxy_argument_keeps_the_direct_path() -> None:
    client = loopfree.AsyncClient(proxy="socks5://localhost:1080")
    transport = client._transport_for_url(loopfree.URL("https://example.org"))
    assert isinstance(transport, AsyncHTTPTransport)
    assert transport.proxy.url == "socks5://localhost:1080"
    assert client._engine is transport._engine


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        ("http://google.com", {"HTTP_PROXY": "example.com"}, "http://example.com"),
        ("https://google.com", {"HTTP_PROXY": "http://example.com"}, None),
        ("http://google.com", {"HTTP_PROXY": "http://e.com", "NO_PROXY": "google.com"}, None),
        ("http://127.0.0.1", {"ALL_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1"}, None),
        ("http://127.0.0.1", {"ALL_PROXY": "http://p:1", "NO_PROXY": "1.1.1.1"}, "http://p:1"),
        ("http://courses.mit.edu", {"ALL_PROXY": "http://p:1", "NO_PROXY": "mit.edu"}, None),
        ("https://mit.edu.info", {"ALL_PROXY": "http://p:1", "NO_PROXY": "mit.edu"}, "http://p:1"),
        ("https://www.ex.com", {"ALL_PROXY": "http://p:1", "NO_PROXY": ".ex.com"}, None),
        ("https://www.ex.com", {"ALL_PROXY": "http://p:1", "NO_PROXY": "x.com"}, "http://p:1"),
        ("https://www.ex.com", {"ALL_PROXY": "http://p:1", "NO_PROXY": "*"}, None),
    ],
)
@pytest.mark.parametrize("client_class", [loopfree.Client, loopfree.AsyncClient])
def test_environment_proxies(
    monkeypatch: pytest.MonkeyPatch,
    client_class: typing.Any,
    url: str,
    env: dict[str, str],
    expected: str | None,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client = client_class()
    assert routed_proxy(client, url) == expected
    # Without trust_env, or with a transport, the environment is ignored.
    assert routed_proxy(client_class(trust_env=False), url) is None
    assert client_class(transport=loopfree.MockTransport(app))._mounts == {}


def test_no_proxy_alone_keeps_the_direct_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
    assert loopfree.Client()._engine is not None
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:1")
    assert loopfree.Client()._engine is None


def test_environment_proxy_is_used(
    recording_listener: typing.Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", recording_listener.info.url)
    with loopfree.Client(timeout=0.3) as client, pytest.raises(loopfree.ReadTimeout):
        client.get("http://proxied.invalid/path")
    _, received = recording_listener.snapshot()
    # Absolute-form request target: sent to the proxy, for the proxy to forward.
    assert received.startswith(b"GET http://proxied.invalid/path HTTP/1.1\r\n")


# --------------------------------------------------------------------------
# HTTPTransport / AsyncHTTPTransport against a real server
# --------------------------------------------------------------------------


def test_http_transport(server: typing.Any) -> None:
    with HTTPTransport() as transport:
        request = loopfree.Request("POST", f"{server.url}/echo_body", content=b"hello")
        response = transport.handle_request(request)
        assert not response.is_stream_consumed
        assert response.read() == b"hello"
        assert response.http_version == "HTTP/1.1"
        assert response.reason_phrase == "OK"
        # One hop only: redirects are the client's business.
        redirect_response = transport.handle_request(
            loopfree.Request("GET", f"{server.url}/redirect_301")
        )
        assert redirect_response.status_code == 301
        redirect_response.close()


def test_async_http_transport(server: typing.Any, run: typing.Any) -> None:
    transport = AsyncHTTPTransport()

    async def main() -> None:
        request = loopfree.Request("GET", f"{server.url}/drip?chunks=3&delay=0")
        response = await transport.handle_async_request(request)
        assert not response.is_stream_consumed
        assert b"".join([chunk async for chunk in response.aiter_bytes()]) == b"0\n1\n2\n"
        assert response.is_closed

    run(main)
    run(main)  # one transport, a second event loop
    asyncio.run(transport.aclose())


def test_client_with_http_transport_and_mounts(server: typing.Any) -> None:
    mounted = HTTPTransport()
    with loopfree.Client(
        transport=HTTPTransport(), mounts={f"all://{server.url.split('://')[1]}": mounted}
    ) as client:
        assert client._transport_for_url(loopfree.URL(server.url)) is mounted
        response = client.get(f"{server.url}/redirect_301", follow_redirects=True)
        assert response.status_code == 200
        assert [r.status_code for r in response.history] == [301]
        with client.stream("GET", f"{server.url}/bytes?n=100000") as streamed:
            assert len(streamed.read()) == 100000
        assert isinstance(streamed.elapsed, datetime.timedelta)


def test_auth_and_hooks_use_the_pipeline_on_the_default_transport(
    server: typing.Any, run: typing.Any
) -> None:
    def check(response: loopfree.Response) -> None:
        assert response.history == [] or response.history[0].status_code == 302
        urls.append(str(response.url))

    urls: list[str] = []
    target = f"{server.url}/redirect_to?url=/echo_headers"
    with loopfree.Client(event_hooks={"response": [check]}) as client:
        response = client.get(target, auth=("user", "pass"), follow_redirects=True)
    assert response.json()["authorization"] == "Basic dXNlcjpwYXNz"
    assert urls == [target, f"{server.url}/echo_headers"]

    async def main() -> None:
        async def hook(response: loopfree.Response) -> None:
            urls.append(str(response.url))

        async with loopfree.AsyncClient(event_hooks={"response": [hook]}) as client:
            response = await client.get(target, auth=("u", "p"), follow_redirects=True)
            assert response.json()["authorization"] == "Basic dTpw"

    urls.clear()
    run(main)
    assert urls == [target, f"{server.url}/echo_headers"]


def test_retries_reconnect_then_raise(closed_port: int) -> None:
    attempts = []

    class Counting(HTTPTransport):
        def _arguments(self, *args: typing.Any) -> typing.Any:
            attempts.append(1)
            return super()._arguments(*args)

    transport = Counting(retries=2)
    request = loopfree.Request("GET", f"http://127.0.0.1:{closed_port}/")
    with pytest.raises(loopfree.ConnectError) as info:
        transport.handle_request(request)
    assert info.value.request is request
    assert len(attempts) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"socket_options": [(1, 2, 3)]}, "socket_options="),
        ({"proxy": loopfree.Proxy("http://p:1", ssl_context=ssl.create_default_context())}, "ssl"),
        ({"local_address": "not-an-ip"}, "IP"),
    ],
)
def test_unsupported_transport_options(kwargs: dict[str, typing.Any], message: str) -> None:
    for transport_class in (HTTPTransport, AsyncHTTPTransport):
        with pytest.raises(ValueError, match=message):
            transport_class(**kwargs)


def test_uds_transport_talks_over_the_unix_socket(unix_server: str) -> None:
    with loopfree.Client(transport=HTTPTransport(uds=unix_server)) as client:
        response = client.get("http://localhost/echo_headers")
    assert response.status_code == 200
    assert response.json()["host"] == "localhost"

    async def main() -> typing.Any:
        transport = AsyncHTTPTransport(uds=unix_server)
        async with loopfree.AsyncClient(transport=transport) as client:
            return await client.post("http://localhost/echo_body", content=b"over uds")

    assert asyncio.run(main()).content == b"over uds"


def test_local_address_binds_the_source_address() -> None:
    """127.0.0.2 is loopback too on Linux: the server sees it as the peer."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    peers: list[str] = []

    def serve() -> None:
        conn, peer = listener.accept()
        with conn:
            peers.append(peer[0])
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    with loopfree.Client(transport=HTTPTransport(local_address="127.0.0.2")) as client:
        assert client.get(url).status_code == 204
    thread.join(5)
    listener.close()
    assert peers == ["127.0.0.2"]


# --------------------------------------------------------------------------
# Which path a request takes
# --------------------------------------------------------------------------


def test_direct_path_is_kept_for_plain_requests(server: typing.Any) -> None:
    calls = []
    client = loopfree.Client()
    transport = client._transport
    original = transport._send
    transport._send = lambda *args, **kwargs: calls.append(1) or original(*args, **kwargs)
    assert client._engine is transport._engine
    client.get(f"{server.url}/redirect_301", follow_redirects=True)
    assert calls == []
    client.get(f"{server.url}/", auth=("a", "b"))
    assert calls == [1]
    client.event_hooks["request"].append(lambda request: None)
    client.get(f"{server.url}/redirect_301", follow_redirects=True)
    assert calls == [1, 1, 1]
    client.close()


# Regression guard for request()'s hot path (BaseClient._plain_direct): a call
# with only a method and a URL must behave as build_request() + send(), also
# when the client was changed after it was built.
def _set_auth(client: typing.Any) -> None:
    client.auth = ("user", "secret")


def _add_hook(client: typing.Any) -> None:
    client.event_hooks["request"].append(lambda request: request.headers.update({"x-hook": "1"}))


def _follow(client: typing.Any) -> None:
    client.follow_redirects = True


def _set_cookie_later(client: typing.Any) -> None:
    client.cookies.set("late", "cookie")


CLIENT_CHANGES: dict[str, typing.Any] = {
    "none": lambda client: None,
    "auth": _set_auth,
    "hook": _add_hook,
    "follow": _follow,
    "cookie": _set_cookie_later,
}


@pytest.mark.parametrize("change", CLIENT_CHANGES.values(), ids=CLIENT_CHANGES.keys())
@pytest.mark.parametrize("path", ["/echo_headers", "/redirect_to?url=/echo_headers"])
def test_plain_request_is_build_request_and_send(server: typing.Any, change, path) -> None:
    with loopfree.Client() as client:
        change(client)
        url = server.url + path
        fast = client.get(url)
        general = client.send(client.build_request("GET", url))
    assert fast.status_code == general.status_code
    assert fast.content == general.content
    assert [r.status_code for r in fast.history] == [r.status_code for r in general.history]
    assert str(fast.request.url) == str(general.request.url)
    assert fast.request.headers.raw == general.request.headers.raw
    assert fast.request.extensions == general.request.extensions
    assert fast.extensions == general.extensions
    assert fast.elapsed > datetime.timedelta(0)


def test_plain_request_with_userinfo_sends_basic_auth(server: typing.Any) -> None:
    url = server.url.replace("http://", "http://user:secret@") + "/echo_headers"
    with loopfree.Client() as client:
        assert client.get(url).json()["authorization"] == "Basic dXNlcjpzZWNyZXQ="


def test_plain_request_on_a_closed_client_raises(server: typing.Any) -> None:
    client = loopfree.Client()
    client.close()
    with pytest.raises(RuntimeError, match="client has been closed"):
        client.get(server.url + "/")


def test_plain_async_request_is_build_request_and_send(server: typing.Any) -> None:
    async def main() -> None:
        async def hook(request: loopfree.Request) -> None:
            request.headers["x-hook"] = "1"

        async with loopfree.AsyncClient() as client:
            client.event_hooks["request"].append(hook)
            url = server.url + "/echo_headers"
            fast = await client.get(url)
            general = await client.send(client.build_request("GET", url))
            assert fast.json() == general.json()
            assert fast.json()["x-hook"] == "1"
            assert fast.request.headers.raw == general.request.headers.raw
        with pytest.raises(RuntimeError, match="client has been closed"):
            await client.get(server.url + "/")

    asyncio.run(main())


def test_explicit_http_transport_keeps_the_direct_path() -> None:
    assert loopfree.Client(transport=HTTPTransport())._engine is not None
    assert loopfree.Client(transport=HTTPTransport(retries=1))._engine is None
    assert loopfree.AsyncClient(transport=HTTPTransport())._engine is None
    assert loopfree.Client(transport=loopfree.MockTransport(app))._engine is None


# Regression (request()'s hot path skipped overrides): `client.get(url)` went
# straight to the engine, so a subclass's `send` or `build_request`, or one
# patched onto the instance (as `mock.patch.object(client, "send")` does),
# was never called. httpx's request() always calls both.
class _CountsBuildRequest:
    """Records each build_request() and send() call of a client subclass."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def build_request(self, *args: typing.Any, **kwargs: typing.Any) -> loopfree.Request:
        self.calls.append("build_request")
        return super().build_request(*args, **kwargs)  # type: ignore[misc]


class _CountingClient(_CountsBuildRequest, loopfree.Client):
    def send(self, request: loopfree.Request, **kwargs: typing.Any) -> loopfree.Response:
        self.calls.append("send")
        return super().send(request, **kwargs)


class _CountingAsyncClient(_CountsBuildRequest, loopfree.AsyncClient):
    async def send(self, request: loopfree.Request, **kwargs: typing.Any) -> loopfree.Response:
        self.calls.append("send")
        return await super().send(request, **kwargs)


def test_plain_request_calls_overridden_send_and_build_request(server: typing.Any) -> None:
    with _CountingClient() as client:
        assert client.get(server.url + "/").status_code == 200
        assert client.calls == ["build_request", "send"]


def test_plain_async_request_calls_overridden_send_and_build_request(
    server: typing.Any, run: typing.Any
) -> None:
    async def main() -> None:
        async with _CountingAsyncClient() as client:
            assert (await client.get(server.url + "/")).status_code == 200
            assert client.calls == ["build_request", "send"]

    run(main)


@pytest.mark.parametrize("name", ["send", "build_request"])
def test_plain_request_calls_a_method_patched_onto_the_instance(
    server: typing.Any, name: str
) -> None:
    with loopfree.Client() as client:
        with mock.patch.object(client, name, wraps=getattr(client, name)) as patched:
            assert client.get(server.url + "/").status_code == 200
        assert patched.call_count == 1
        # Unpatched again: the hot path is back, with the same result.
        assert client.get(server.url + "/").status_code == 200


@pytest.mark.parametrize("name", ["send", "build_request"])
def test_plain_async_request_calls_a_method_patched_onto_the_instance(
    server: typing.Any, name: str
) -> None:
    async def main() -> None:
        async with loopfree.AsyncClient() as client:
            with mock.patch.object(client, name, wraps=getattr(client, name)) as patched:
                assert (await client.get(server.url + "/")).status_code == 200
            assert patched.call_count == 1

    asyncio.run(main())


def test_plain_request_calls_a_method_patched_onto_the_class(server: typing.Any) -> None:
    with loopfree.Client() as client:
        with mock.patch.object(
            loopfree.Client, "send", autospec=True, side_effect=loopfree.Client.send
        ) as patched:
            assert client.get(server.url + "/").status_code == 200
        assert patched.call_count == 1
