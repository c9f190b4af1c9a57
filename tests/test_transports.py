"""The transports: base classes, MockTransport, WSGITransport, ASGITransport."""

from __future__ import annotations

import asyncio
import io
import sys
import typing

import loopfree
import pytest
import sniffio
import trio
from loopfree._transports import (
    ASGITransport,
    AsyncBaseTransport,
    BaseTransport,
    MockTransport,
    WSGITransport,
)


def _run_asyncio(fn: typing.Callable[[], typing.Awaitable[typing.Any]]) -> typing.Any:
    return asyncio.run(fn())  # type: ignore[arg-type]


# Both take a coroutine *function*, as trio.run does.
RUNNERS = {"asyncio": _run_asyncio, "trio": trio.run}


@pytest.fixture(params=sorted(RUNNERS))
def run(request: pytest.FixtureRequest) -> typing.Callable[..., typing.Any]:
    """Runs a coroutine function to completion under asyncio, then trio."""
    return RUNNERS[request.param]


# --------------------------------------------------------------------------
# Base classes
# --------------------------------------------------------------------------


class RecordingTransport(AsyncBaseTransport, BaseTransport):
    def __init__(self) -> None:
        self.closed = 0
        self.aclosed = 0

    def close(self) -> None:
        self.closed += 1

    async def aclose(self) -> None:
        self.aclosed += 1


def test_base_transport_requires_handle_request() -> None:
    request = loopfree.Request("GET", "https://example.org/")
    with pytest.raises(NotImplementedError, match="handle_request"):
        BaseTransport().handle_request(request)


def test_async_base_transport_requires_handle_async_request() -> None:
    request = loopfree.Request("GET", "https://example.org/")
    with pytest.raises(NotImplementedError, match="handle_async_request"):
        asyncio.run(AsyncBaseTransport().handle_async_request(request))


def test_base_transport_context_manager_closes() -> None:
    transport = RecordingTransport()
    with transport as entered:
        assert entered is transport
        assert transport.closed == 0
    assert (transport.closed, transport.aclosed) == (1, 0)


def test_base_transport_closes_on_error() -> None:
    transport = RecordingTransport()
    with pytest.raises(KeyError), transport:
        raise KeyError("boom")
    assert transport.closed == 1


def test_async_base_transport_context_manager_closes(run: typing.Any) -> None:
    transport = RecordingTransport()

    async def main() -> None:
        async with transport as entered:
            assert entered is transport
            assert transport.aclosed == 0

    run(main)
    assert (transport.closed, transport.aclosed) == (0, 1)


def test_default_close_methods_do_nothing() -> None:
    BaseTransport().close()
    asyncio.run(AsyncBaseTransport().aclose())


def test_client_closes_its_transport() -> None:
    transport = RecordingTransport()
    with loopfree.Client(transport=transport):
        pass
    assert transport.closed == 1


def test_async_client_closes_its_transport(run: typing.Any) -> None:
    transport = RecordingTransport()

    async def main() -> None:
        async with loopfree.AsyncClient(transport=transport):
            pass

    run(main)
    assert transport.aclosed == 1


# --------------------------------------------------------------------------
# MockTransport
# --------------------------------------------------------------------------


def echo(request: loopfree.Request) -> loopfree.Response:
    return loopfree.Response(
        200,
        json={
            "method": request.method,
            "url": str(request.url),
            "body": request.content.decode(),
        },
    )


def test_mock_transport_sync_handler() -> None:
    with loopfree.Client(transport=MockTransport(echo)) as client:
        response = client.post("https://example.org/path?a=1", content=b"hello")
    assert response.status_code == 200
    assert response.json() == {
        "method": "POST",
        "url": "https://example.org/path?a=1",
        "body": "hello",
    }
    assert response.request.url == "https://example.org/path?a=1"


def test_mock_transport_reads_streaming_body_before_handler() -> None:
    def body() -> typing.Iterator[bytes]:
        yield b"chunk-1,"
        yield b"chunk-2"

    transport = MockTransport(echo)
    request = loopfree.Request("PUT", "https://example.org/", content=body())
    response = transport.handle_request(request)
    response.read()
    assert response.json()["body"] == "chunk-1,chunk-2"


def test_mock_transport_sync_handler_from_async_client(run: typing.Any) -> None:
    async def main() -> loopfree.Response:
        async with loopfree.AsyncClient(transport=MockTransport(echo)) as client:
            return await client.post("https://example.org/", content=b"x")

    assert run(main).json()["body"] == "x"


def test_mock_transport_async_handler(run: typing.Any) -> None:
    async def handler(request: loopfree.Request) -> loopfree.Response:
        # A real suspension point, in whichever library is running.
        if sniffio.current_async_library() == "trio":
            await trio.sleep(0)
        else:
            await asyncio.sleep(0)
        return loopfree.Response(201, text=request.content.decode()[::-1])

    async def body() -> typing.AsyncIterator[bytes]:
        yield b"ab"
        yield b"cd"

    async def main() -> loopfree.Response:
        async with loopfree.AsyncClient(transport=MockTransport(handler)) as client:
            return await client.post("https://example.org/", content=body())

    response = run(main)
    assert response.status_code == 201
    assert response.text == "dcba"


def test_mock_transport_async_handler_in_sync_client_is_a_type_error() -> None:
    async def handler(request: loopfree.Request) -> loopfree.Response:
        return loopfree.Response(200)  # pragma: no cover

    # With -W error, a coroutine left un-awaited would fail this test too.
    with (
        loopfree.Client(transport=MockTransport(handler)) as client,
        pytest.raises(TypeError, match="async handler in a sync Client"),
    ):
        client.get("https://example.org/")


def test_mock_transport_handler_exceptions_propagate() -> None:
    def handler(request: loopfree.Request) -> loopfree.Response:
        raise loopfree.ConnectError("no route", request=request)

    with (
        loopfree.Client(transport=MockTransport(handler)) as client,
        pytest.raises(loopfree.ConnectError) as info,
    ):
        client.get("https://example.org/")
    assert info.value.request.url == "https://example.org/"


# --------------------------------------------------------------------------
# WSGITransport
# --------------------------------------------------------------------------

WSGIEnviron = dict[str, typing.Any]
StartResponse = typing.Callable[..., typing.Any]


def environ_app(environ: WSGIEnviron, start_response: StartResponse) -> list[bytes]:
    """Answers with the CGI-style part of its environ, and the request body."""
    body = environ["wsgi.input"].read()
    fields = {key: value for key, value in environ.items() if isinstance(value, str)}
    fields["body"] = body.decode()
    fields["errors_is_stderr"] = str(environ["wsgi.errors"] is sys.stderr)
    import json

    payload = json.dumps(fields).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("X-App", "wsgi")])
    return [payload]


def test_wsgi_environ() -> None:
    transport = WSGITransport(app=environ_app)
    with loopfree.Client(transport=transport) as client:
        response = client.post(
            "https://example.org/some/path?x=1&y=%20",
            content=b'{"a": 1}',
            headers={"Content-Type": "application/json", "X-Custom-Header": "yes"},
        )
    assert response.status_code == 200
    assert response.headers["x-app"] == "wsgi"
    environ = response.json()
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["wsgi.url_scheme"] == "https"
    assert environ["PATH_INFO"] == "/some/path"
    assert environ["QUERY_STRING"] == "x=1&y=%20"
    assert environ["SERVER_NAME"] == "example.org"
    assert environ["SERVER_PORT"] == "443"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert environ["SCRIPT_NAME"] == ""
    assert environ["REMOTE_ADDR"] == "127.0.0.1"
    # CONTENT_TYPE and CONTENT_LENGTH carry no HTTP_ prefix; others do.
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["CONTENT_LENGTH"] == "8"
    assert "HTTP_CONTENT_TYPE" not in environ
    assert environ["HTTP_X_CUSTOM_HEADER"] == "yes"
    assert environ["HTTP_HOST"] == "example.org"
    assert environ["body"] == '{"a": 1}'
    assert environ["errors_is_stderr"] == "True"


def test_wsgi_options() -> None:
    errors = io.StringIO()

    def app(environ: WSGIEnviron, start_response: StartResponse) -> list[bytes]:
        environ["wsgi.errors"].write("logged")
        start_response("200 OK", [])
        text = f"{environ['SCRIPT_NAME']}|{environ['REMOTE_ADDR']}|{environ['SERVER_PORT']}"
        return [text.encode()]

    transport = WSGITransport(
        app=app, script_name="/mount", remote_addr="1.2.3.4", wsgi_errors=errors
    )
    with loopfree.Client(transport=transport) as client:
        response = client.get("http://example.org:8080/")
    assert response.text == "/mount|1.2.3.4|8080"
    assert errors.getvalue() == "logged"


def test_wsgi_default_http_port() -> None:
    def app(environ: WSGIEnviron, start_response: StartResponse) -> list[bytes]:
        start_response("204 No Content", [])
        return [environ["SERVER_PORT"].encode()]

    response = WSGITransport(app=app).handle_request(loopfree.Request("GET", "http://a.test/"))
    assert response.status_code == 204
    assert response.read() == b"80"


def test_wsgi_lazy_start_response_and_close() -> None:
    """A generator app calls start_response only once iteration starts."""
    events: list[str] = []

    class Body:
        def __init__(self, start_response: StartResponse) -> None:
            self._start_response = start_response

        def __iter__(self) -> typing.Iterator[bytes]:
            self._start_response("202 Accepted", [("X-Lazy", "1")])
            events.append("started")
            yield b""
            yield b"Hello, "
            yield b""
            yield b"world"

        def close(self) -> None:
            events.append("closed")

    def app(environ: WSGIEnviron, start_response: StartResponse) -> Body:
        return Body(start_response)

    with loopfree.Client(transport=WSGITransport(app=app)) as client:
        response = client.get("http://example.org/")
    assert response.status_code == 202
    assert response.headers["X-Lazy"] == "1"
    assert response.content == b"Hello, world"
    assert events == ["started", "closed"]


def test_wsgi_streamed_response_is_closed_on_close() -> None:
    closed: list[bool] = []

    class Body(list[bytes]):
        def close(self) -> None:
            closed.append(True)

    def app(environ: WSGIEnviron, start_response: StartResponse) -> Body:
        start_response("200 OK", [])
        return Body([b"a", b"b"])

    response = WSGITransport(app=app).handle_request(loopfree.Request("GET", "http://a.test/"))
    assert closed == []
    assert list(response.iter_raw()) == [b"a", b"b"]
    assert closed == [True]


def _failing_app(environ: WSGIEnviron, start_response: StartResponse) -> list[bytes]:
    try:
        raise ValueError("app failure")
    except ValueError:
        start_response("500 Internal Server Error", [], sys.exc_info())
    return [b"error page"]


def test_wsgi_exc_info_is_raised() -> None:
    with (
        loopfree.Client(transport=WSGITransport(app=_failing_app)) as client,
        pytest.raises(ValueError, match="app failure"),
    ):
        client.get("http://example.org/")


def test_wsgi_exc_info_is_not_raised_when_disabled() -> None:
    transport = WSGITransport(app=_failing_app, raise_app_exceptions=False)
    with loopfree.Client(transport=transport) as client:
        response = client.get("http://example.org/")
    assert response.status_code == 500
    assert response.text == "error page"


def test_wsgi_app_exception_propagates() -> None:
    def app(environ: WSGIEnviron, start_response: StartResponse) -> list[bytes]:
        raise RuntimeError("crashed")

    with (
        loopfree.Client(transport=WSGITransport(app=app)) as client,
        pytest.raises(RuntimeError, match="crashed"),
    ):
        client.get("http://example.org/")


def test_wsgi_app_without_start_response() -> None:
    def app(environ: WSGIEnviron, start_response: StartResponse) -> list[bytes]:
        return []

    with pytest.raises(RuntimeError, match="start_response"):
        WSGITransport(app=app).handle_request(loopfree.Request("GET", "http://a.test/"))


# --------------------------------------------------------------------------
# ASGITransport
# --------------------------------------------------------------------------

Scope = dict[str, typing.Any]
Receive = typing.Callable[[], typing.Awaitable[dict[str, typing.Any]]]
Send = typing.Callable[[dict[str, typing.Any]], typing.Awaitable[None]]


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echoes the request body, and its scope (less the bytes) as headers."""
    assert scope["type"] == "http"
    chunks = []
    while True:
        message = await receive()
        assert message["type"] == "http.request"
        chunks.append(message["body"])
        if not message.get("more_body", False):
            break
    headers = [
        (b"x-path", scope["path"].encode()),
        (b"x-raw-path", scope["raw_path"]),
        (b"x-query", scope["query_string"]),
        (b"x-method", scope["method"].encode()),
        (b"x-root-path", scope["root_path"].encode()),
        (b"x-client", repr(scope["client"]).encode()),
        (b"x-server", repr(scope["server"]).encode()),
        (b"x-scheme", scope["scheme"].encode()),
        (b"x-chunks", str(len(chunks)).encode()),
        (b"x-request-headers", repr(scope["headers"]).encode()),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    # The body goes out in two messages; the transport joins them.
    body = b"".join(chunks)
    await send({"type": "http.response.body", "body": body[:1], "more_body": True})
    await send({"type": "http.response.body", "body": body[1:]})


def test_asgi_scope_and_body(run: typing.Any) -> None:
    async def body() -> typing.AsyncIterator[bytes]:
        yield b"first,"
        yield b"second"

    async def main() -> loopfree.Response:
        transport = ASGITransport(app=echo_app)
        async with loopfree.AsyncClient(transport=transport) as client:
            return await client.post(
                "http://example.org:8000/a%20b/c?q=1", content=body(), headers={"X-Up": "Yes"}
            )

    response = run(main)
    assert response.status_code == 200
    assert response.content == b"first,second"
    assert response.headers["x-path"] == "/a b/c"
    assert response.headers["x-raw-path"] == "/a%20b/c"
    assert response.headers["x-query"] == "q=1"
    assert response.headers["x-method"] == "POST"
    assert response.headers["x-root-path"] == ""
    assert response.headers["x-client"] == "('127.0.0.1', 123)"
    assert response.headers["x-server"] == "('example.org', 8000)"
    assert response.headers["x-scheme"] == "http"
    # The client reads a streaming body before the transport sees it.
    assert int(response.headers["x-chunks"]) >= 2
    # Header names reach the app lower-cased.
    assert "(b'x-up', b'Yes')" in response.headers["x-request-headers"]


def test_asgi_options(run: typing.Any) -> None:
    async def main() -> loopfree.Response:
        transport = ASGITransport(app=echo_app, root_path="/mount", client=("1.2.3.4", 5678))
        async with loopfree.AsyncClient(transport=transport) as client:
            return await client.get("https://example.org/")

    response = run(main)
    assert response.headers["x-root-path"] == "/mount"
    assert response.headers["x-client"] == "('1.2.3.4', 5678)"
    assert response.headers["x-server"] == "('example.org', None)"
    assert response.headers["x-scheme"] == "https"


def test_asgi_head_response_has_no_body(run: typing.Any) -> None:
    async def main() -> loopfree.Response:
        async with loopfree.AsyncClient(transport=ASGITransport(app=echo_app)) as client:
            return await client.request("HEAD", "http://example.org/", content=b"ignored")

    response = run(main)
    assert response.status_code == 200
    assert response.content == b""


def test_asgi_disconnect_after_response(run: typing.Any) -> None:
    """After the body, receive() reports http.disconnect once the response ends."""
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            seen.append(message["type"])
            if not message.get("more_body", False):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})
        seen.append((await receive())["type"])

    async def main() -> loopfree.Response:
        async with loopfree.AsyncClient(transport=ASGITransport(app=app)) as client:
            return await client.get("http://example.org/")

    assert run(main).text == "done"
    # As in httpx, an empty body still arrives as one chunk, then the end.
    assert seen == ["http.request", "http.request", "http.disconnect"]


async def raising_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/after-start":
        await send({"type": "http.response.start", "status": 202, "headers": []})
    raise ValueError("app failure")


def test_asgi_exception_is_raised(run: typing.Any) -> None:
    async def main() -> None:
        async with loopfree.AsyncClient(transport=ASGITransport(app=raising_app)) as client:
            await client.get("http://example.org/")

    with pytest.raises(ValueError, match="app failure"):
        run(main)


@pytest.mark.parametrize(("path", "status"), [("/", 500), ("/after-start", 202)])
def test_asgi_exception_not_raised_when_disabled(run: typing.Any, path: str, status: int) -> None:
    async def main() -> loopfree.Response:
        transport = ASGITransport(app=raising_app, raise_app_exceptions=False)
        async with loopfree.AsyncClient(transport=transport) as client:
            return await client.get(f"http://example.org{path}")

    response = run(main)
    assert response.status_code == status
    assert response.content == b""


def test_asgi_incomplete_response_is_an_error(run: typing.Any) -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})

    async def main() -> None:
        async with loopfree.AsyncClient(transport=ASGITransport(app=app)) as client:
            await client.get("http://example.org/")

    with pytest.raises(RuntimeError, match="without completing"):
        run(main)


def test_asgi_unread_response_stream(run: typing.Any) -> None:
    """Called directly, the transport returns a response whose stream is unread."""

    async def main() -> tuple[loopfree.Response, bytes]:
        transport = ASGITransport(app=echo_app)
        request = loopfree.Request("POST", "http://example.org/", content=b"payload")
        response = await transport.handle_async_request(request)
        return response, await response.aread()

    response, body = run(main)
    assert body == b"payload"
    assert response.is_closed


# --------------------------------------------------------------------------
# HTTPTransport._pool: the engine's pool, with httpcore's attribute names
# --------------------------------------------------------------------------


@pytest.mark.parametrize("transport_class", [loopfree.HTTPTransport, loopfree.AsyncHTTPTransport])
def test_pool_describes_proxy_and_limits(transport_class: typing.Any) -> None:
    import httpcore

    limits = loopfree.Limits(max_connections=7, max_keepalive_connections=3, keepalive_expiry=9)
    transport = transport_class(proxy="http://[::1]:3128", limits=limits, http2=True, retries=2)
    pool = transport._pool
    expected = httpcore.URL(scheme=b"http", host=b"::1", port=3128, target=b"/")
    assert pool._proxy_url == expected
    assert pool._proxy_url != httpcore.URL(scheme=b"http", host=b"::1", port=3129, target=b"/")
    assert pool._proxy_url != "http://[::1]:3128"
    assert (pool._max_connections, pool._max_keepalive_connections) == (7, 3)
    assert (pool._keepalive_expiry, pool._http1, pool._http2, pool._retries) == (9, True, True, 2)


def test_pool_without_proxy_has_no_proxy_url() -> None:
    transport = loopfree.HTTPTransport()
    assert not hasattr(transport._pool, "_proxy_url")
    assert "proxy=" not in repr(transport._pool)


def test_client_environment_proxy_mount_exposes_proxy_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://localhost:123")
    client = loopfree.Client()
    transport = client._transport_for_url(loopfree.URL("http://example.com"))
    assert transport._pool._proxy_url.host == b"localhost"
    assert transport._pool._proxy_url.port == 123
    client.close()
