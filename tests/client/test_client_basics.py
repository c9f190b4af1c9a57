"""Public-API happy paths of Client and AsyncClient against real servers.

Every test taking ``make_client`` runs twice: with ``loopfree.Client`` and with
``loopfree.AsyncClient`` driven through one persistent event loop (so the async
run exercises the async API, not loop-hopping, which has its own tests).

Set ``LOOPFREE_TEST_TARGET=httpx`` to run this module against httpx itself:
everything here is httpx's behaviour and must pass there too.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import importlib
import inspect
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

loopfree = importlib.import_module(os.environ.get("LOOPFREE_TEST_TARGET", "loopfree"))

# httpx warns about `verify=<str>`; loopfree may or may not.  Either is fine here.
ignore_verify_str_deprecation = pytest.mark.filterwarnings(
    "ignore:`verify=<str>` is deprecated:DeprecationWarning"
)


class AsyncClientDriver:
    """Give an AsyncClient the sync Client's call shape.

    Every awaitable returned by the wrapped client is awaited on the same
    ``asyncio.Runner`` loop; ``close()`` maps to ``aclose()``.
    """

    def __init__(self, client: Any, runner: asyncio.Runner) -> None:
        self._client = client
        self._runner = runner

    def _run(self, awaitable: Any) -> Any:
        async def wait() -> Any:
            return await awaitable

        return self._runner.run(wait())

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, "aclose" if name == "close" else name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            result = attr(*args, **kwargs)
            return self._run(result) if inspect.isawaitable(result) else result

        return call

    def __enter__(self) -> AsyncClientDriver:
        entered = self._run(self._client.__aenter__())
        assert entered is self._client
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._run(self._client.__aexit__(*exc_info))


@pytest.fixture(params=["sync", "async"])
def make_client(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    created: list[Any] = []
    runner = asyncio.Runner() if request.param == "async" else None

    def factory(**kwargs: Any) -> Any:
        if runner is None:
            client = loopfree.Client(**kwargs)
        else:
            client = AsyncClientDriver(loopfree.AsyncClient(**kwargs), runner)
        created.append(client)
        return client

    try:
        yield factory
    finally:
        try:
            for client in created:
                client.close()
        finally:
            if runner is not None:
                runner.close()


def reference_request(method: str, url: str, **kwargs: Any) -> httpx.Request:
    """What httpx itself would put on the wire for the same call."""
    with httpx.Client() as client:
        return client.build_request(method, url, **kwargs)


# --------------------------------------------------------------------------
# Response fields
# --------------------------------------------------------------------------


def test_get_response_fields(make_client, server):
    client = make_client()
    response = client.get(server.url + "/")

    assert isinstance(response, loopfree.Response)
    assert response.status_code == 200
    assert response.reason_phrase == "OK"
    assert response.http_version == "HTTP/1.1"
    assert response.headers["content-type"] == "text/plain; charset=utf-8"
    assert response.headers["Content-Length"] == "13"
    assert isinstance(response.headers, loopfree.Headers)
    assert response.content == b"Hello, world!"
    assert response.text == "Hello, world!"
    assert response.encoding == "utf-8"
    assert response.url == loopfree.URL(server.url + "/")
    assert str(response.url) == server.url + "/"
    assert isinstance(response.request, loopfree.Request)
    assert response.request.method == "GET"
    assert response.request.url == response.url
    assert isinstance(response.elapsed, datetime.timedelta)
    assert datetime.timedelta(0) <= response.elapsed < datetime.timedelta(seconds=5)
    assert response.history == []
    assert response.is_success
    assert not response.is_error
    assert not response.is_redirect
    assert not response.is_informational
    assert not response.is_client_error
    assert not response.is_server_error
    assert response.raise_for_status() is response
    assert response.is_closed
    assert response.num_bytes_downloaded == 13


def test_json_response(make_client, server):
    response = make_client().get(server.url + "/json")
    assert response.headers["content-type"] == "application/json"
    assert response.encoding == "utf-8"
    assert response.json() == {"Hello": "world!"}


@pytest.mark.parametrize(
    ("code", "reason", "flags", "message_prefix"),
    [
        (201, "Created", {"is_success"}, None),
        (204, "No Content", {"is_success"}, None),
        (404, "Not Found", {"is_client_error", "is_error"}, "Client error '404 Not Found'"),
        (
            500,
            "Internal Server Error",
            {"is_server_error", "is_error"},
            "Server error '500 Internal Server Error'",
        ),
    ],
)
def test_status_codes(make_client, server, code, reason, flags, message_prefix):
    url = f"{server.url}/status/{code}"
    response = make_client().get(url)
    assert response.status_code == code
    assert response.reason_phrase == reason
    for flag in ("is_success", "is_redirect", "is_client_error", "is_server_error", "is_error"):
        assert getattr(response, flag) is (flag in flags), flag
    if message_prefix is None:
        assert response.raise_for_status() is response
    else:
        with pytest.raises(loopfree.HTTPStatusError) as info:
            response.raise_for_status()
        assert str(info.value).startswith(f"{message_prefix} for url '{url}'")
        assert info.value.response is response
        assert info.value.request is response.request


# --------------------------------------------------------------------------
# Methods, request building and per-request options
# --------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["post", "put", "patch", "delete", "options", "get"])
def test_method_helpers(make_client, server, method):
    client = make_client()
    kwargs = {"content": b"payload"} if method in ("post", "put", "patch") else {}
    response = getattr(client, method)(server.url + "/echo_method", **kwargs)
    assert response.status_code == 200
    assert response.request.method == method.upper()
    expected_body = "payload" if kwargs else ""
    assert response.json() == {"method": method.upper(), "body": expected_body}


def test_head(make_client, server):
    response = make_client().head(server.url + "/")
    assert response.status_code == 200
    assert response.request.method == "HEAD"
    assert response.headers["content-length"] == "13"
    assert response.content == b""


@pytest.mark.parametrize("method", ["GET", "POST", "PATCH", "QUERY", "delete"])
def test_request_method(make_client, server, method):
    response = make_client().request(method, server.url + "/echo_method", content=b"x")
    assert response.json() == {"method": method.upper(), "body": "x"}


def test_build_request_and_send(make_client, server):
    client = make_client()
    request = client.build_request(
        "POST", server.url + "/echo_request", content=b"abc", headers={"X-Custom": "yes"}
    )
    assert isinstance(request, loopfree.Request)
    assert request.method == "POST"
    assert request.url == loopfree.URL(server.url + "/echo_request")
    assert request.headers["x-custom"] == "yes"
    assert request.headers["content-length"] == "3"

    response = client.send(request)
    assert response.status_code == 200
    assert response.request.method == "POST"
    assert response.request.url == request.url
    echoed = response.json()
    assert echoed["method"] == "POST"
    assert echoed["body"] == "abc"
    assert ["x-custom", "yes"] in echoed["headers"]


def test_params_per_request_and_on_constructor(make_client, server):
    client_params = {"a": "1", "shared": "client"}
    request_params = {"b": "2 3", "shared": "req"}
    url = server.url + "/echo_request?x=0"
    response = make_client(params=client_params).get(url, params=request_params)
    with httpx.Client(params=client_params) as reference:
        expected = reference.build_request("GET", url, params=request_params).url
    assert str(response.request.url) == str(expected)
    # httpx 0.28 quirk: client params merged with request params (request wins per key)
    # *replace* the query string already in the URL.
    assert str(expected) == server.url + "/echo_request?a=1&shared=req&b=2+3"
    assert response.json()["query_string"] == "a=1&shared=req&b=2+3"


@pytest.mark.parametrize(
    ("client_params", "request_params", "expected_query"),
    [
        (None, None, "x=0"),
        (None, {"y": ["1", "2"]}, "y=1&y=2"),
        ({"a": "1"}, None, "a=1"),
    ],
)
def test_params_replace_query_in_url(
    make_client, server, client_params, request_params, expected_query
):
    url = server.url + "/echo_request?x=0"
    response = make_client(params=client_params).get(url, params=request_params)
    with httpx.Client(params=client_params) as reference:
        expected = reference.build_request("GET", url, params=request_params).url
    assert str(response.request.url) == str(expected)
    assert expected.query.decode() == expected_query
    assert response.json()["query_string"] == expected_query


def test_headers_per_request_and_on_constructor(make_client, server):
    client = make_client(headers={"X-Client": "c", "X-Both": "client"})
    response = client.get(
        server.url + "/echo_headers", headers={"X-Request": "r", "X-Both": "request"}
    )
    echoed = response.json()
    assert echoed["x-client"] == "c"
    assert echoed["x-request"] == "r"
    assert echoed["x-both"] == "request"
    assert client.headers["x-client"] == "c"


def test_cookies_on_constructor(make_client, server):
    client = make_client(cookies={"session": "abc"})
    assert client.get(server.url + "/cookies").json() == {"session": "abc"}


def test_per_request_cookies_are_deprecated_but_sent(make_client, server):
    client = make_client()
    with pytest.warns(DeprecationWarning, match="per-request cookies"):
        response = client.get(server.url + "/cookies", cookies={"one": "1"})
    assert response.json() == {"one": "1"}


def test_content_bytes(make_client, server):
    response = make_client().post(server.url + "/echo_body", content=b"\x00\x01binary\xff")
    assert response.content == b"\x00\x01binary\xff"
    assert response.request.headers["content-length"] == "9"


def test_form_data(make_client, server):
    data = {"a": "1", "b": "x y&z", "multi": ["1", "2"]}
    response = make_client().post(server.url + "/echo_body", data=data)
    expected = reference_request("POST", server.url + "/echo_body", data=data)
    assert response.content == expected.read() == b"a=1&b=x+y%26z&multi=1&multi=2"
    assert response.headers["content-type"] == "application/x-www-form-urlencoded"


def test_json_body(make_client, server):
    payload = {"k": [1, 2.5, None, True], "unicode": "\u00e9\u6f22"}
    response = make_client().post(server.url + "/echo_body", json=payload)
    expected = reference_request("POST", server.url + "/echo_body", json=payload)
    # Byte-for-byte what httpx 0.28 sends (compact separators, no ASCII escaping).
    assert response.content == expected.read()
    assert response.headers["content-type"] == "application/json"
    assert response.json() == payload


def test_basic_auth_per_request(make_client, server):
    response = make_client().get(server.url + "/echo_headers", auth=("user", "pass"))
    expected = "Basic " + base64.b64encode(b"user:pass").decode()
    assert response.json()["authorization"] == expected


def test_basic_auth_on_constructor(make_client, server):
    response = make_client(auth=("u", "p\u00e9")).get(server.url + "/echo_headers")
    with httpx.Client(auth=("u", "p\u00e9")) as ref:
        expected = ref.get(server.url + "/echo_headers").json()["authorization"]
    assert response.json()["authorization"] == expected


# --------------------------------------------------------------------------
# Constructor options
# --------------------------------------------------------------------------


def test_base_url(make_client, server):
    client = make_client(base_url=server.url + "/echo_request/")
    assert client.base_url == loopfree.URL(server.url + "/echo_request/")
    response = client.get("sub/path", params={"q": "1"})
    assert str(response.url) == server.url + "/echo_request/sub/path?q=1"
    assert response.json()["path"] == "/echo_request/sub/path"


def test_timeout_on_constructor(make_client, server):
    client = make_client(timeout=0.2)
    assert client.timeout == loopfree.Timeout(0.2)
    with pytest.raises(loopfree.ReadTimeout) as info:
        client.get(server.url + "/slow?delay=2")
    assert info.value.request.url == loopfree.URL(server.url + "/slow?delay=2")
    # A per-request timeout overrides the client's.
    assert client.get(server.url + "/slow?delay=0.4", timeout=5).status_code == 200


def test_follow_redirects_on_constructor(make_client, server):
    client = make_client(follow_redirects=True)
    response = client.get(server.url + "/redirect_301")
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [301]
    # Per-request value wins.
    assert client.get(server.url + "/redirect_301", follow_redirects=False).status_code == 301


def test_max_redirects_on_constructor(make_client, server):
    two_hops = server.url + "/redirect_to?url=/redirect_301"
    with pytest.raises(loopfree.TooManyRedirects) as info:
        make_client(max_redirects=1, follow_redirects=True).get(two_hops)
    assert info.value.request is not None
    response = make_client(max_redirects=2, follow_redirects=True).get(two_hops)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [302, 301]


def test_limits_on_constructor(make_client, server):
    client = make_client(limits=loopfree.Limits(max_connections=1, max_keepalive_connections=1))
    for i in range(5):
        response = client.get(server.url + "/echo_request", params={"i": str(i)})
        assert response.json()["query_string"] == f"i={i}"


# --------------------------------------------------------------------------
# Redirects
# --------------------------------------------------------------------------


def test_redirect_301_history(make_client, server):
    response = make_client().get(server.url + "/redirect_301", follow_redirects=True)
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert response.url == loopfree.URL(server.url + "/")
    assert len(response.history) == 1
    first = response.history[0]
    assert first.status_code == 301
    assert first.url == loopfree.URL(server.url + "/redirect_301")
    assert first.is_redirect
    assert first.headers["location"] == "/"


def test_redirect_303_post_becomes_get(make_client, server):
    response = make_client().post(
        server.url + "/redirect_303", content=b"data", follow_redirects=True
    )
    assert response.status_code == 200
    assert response.json() == {"method": "GET", "body": ""}
    assert response.request.method == "GET"
    assert [r.status_code for r in response.history] == [303]


def test_redirect_307_keeps_method_and_body(make_client, server):
    response = make_client().post(
        server.url + "/redirect_307", content=b"data", follow_redirects=True
    )
    assert response.status_code == 200
    assert response.json() == {"method": "POST", "body": "data"}
    assert [r.status_code for r in response.history] == [307]


def test_no_follow_gives_next_request(make_client, server):
    response = make_client().get(server.url + "/redirect_301")
    assert response.status_code == 301
    assert response.is_redirect
    assert response.has_redirect_location
    assert response.history == []
    assert isinstance(response.next_request, loopfree.Request)
    assert response.next_request.url == loopfree.URL(server.url + "/")
    assert response.next_request.method == "GET"


def test_redirect_loop_raises_too_many_redirects(make_client, server):
    with pytest.raises(loopfree.TooManyRedirects, match="Exceeded maximum allowed redirects"):
        make_client().get(server.url + "/redirect_loop", follow_redirects=True)


# --------------------------------------------------------------------------
# Content decoding
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "encoding"),
    [("/gzip", "gzip"), ("/brotli", "br"), ("/zstd", "zstd"), ("/deflate", "deflate")],
)
def test_compressed_bodies_are_decoded(make_client, server, compressible_text, path, encoding):
    response = make_client().get(server.url + path)
    assert response.status_code == 200
    assert response.headers["content-encoding"] == encoding
    assert response.text == compressible_text
    assert response.content == compressible_text.encode("utf-8")
    # Compressed size on the wire vs decoded size.
    assert response.num_bytes_downloaded < len(response.content)


def test_bad_gzip_raises_decoding_error(make_client, server):
    with pytest.raises(loopfree.DecodingError) as info:
        make_client().get(server.url + "/bad_gzip")
    assert info.value.request.url == loopfree.URL(server.url + "/bad_gzip")


def test_large_body(make_client, server, bytes_pattern):
    n = 3 * 1024 * 1024 + 17
    response = make_client().get(server.url + "/bytes", params={"n": str(n)})
    assert len(response.content) == n
    assert response.content == (bytes_pattern * (n // len(bytes_pattern) + 1))[:n]


# --------------------------------------------------------------------------
# Cookies and default headers
# --------------------------------------------------------------------------


def test_set_cookie_persists_on_client(make_client, server):
    client = make_client()
    response = client.get(server.url + "/set_cookie?flavour=oatmeal&size=big")
    assert response.cookies["flavour"] == "oatmeal"
    assert client.cookies["flavour"] == "oatmeal"
    assert client.cookies["size"] == "big"
    assert client.get(server.url + "/cookies").json() == {"flavour": "oatmeal", "size": "big"}


def test_default_request_headers_match_httpx(make_client, server):
    url = server.url + "/echo_headers"
    response = make_client().get(url)
    echoed = response.json()
    with httpx.Client() as reference:
        expected = reference.get(url).json()

    user_agent = echoed.pop("user-agent")
    # httpx's product token, with loopfree's version.
    assert user_agent == f"python-httpx/{loopfree.__version__}"
    assert response.request.headers["user-agent"] == user_agent
    expected.pop("user-agent")
    assert echoed == expected
    assert expected == {
        "host": server.netloc,
        "accept": "*/*",
        "accept-encoding": "gzip, deflate, br, zstd",
        "connection": "keep-alive",
    }


# --------------------------------------------------------------------------
# TLS and HTTP/2
# --------------------------------------------------------------------------


@ignore_verify_str_deprecation
def test_tls_with_ca_bundle_path(make_client, tls_server, ca_cert_path):
    response = make_client(verify=ca_cert_path).get(tls_server.url + "/json")
    assert response.status_code == 200
    assert response.json() == {"Hello": "world!"}
    assert response.url.scheme == "https"
    assert response.http_version == "HTTP/1.1"


def test_tls_default_verify_rejects_unknown_ca(make_client, tls_server):
    with pytest.raises(loopfree.ConnectError) as info:
        make_client().get(tls_server.url + "/")
    assert info.value.request.url == loopfree.URL(tls_server.url + "/")


def test_tls_verify_false(make_client, tls_server):
    response = make_client(verify=False).get(tls_server.url + "/")
    assert response.status_code == 200
    assert response.text == "Hello, world!"


@ignore_verify_str_deprecation
def test_http2(make_client, h2_server, ca_cert_path):
    client = make_client(http2=True, verify=ca_cert_path)
    for _ in range(3):
        response = client.get(h2_server.url + "/echo_request", params={"x": "1"})
        assert response.status_code == 200
        assert response.http_version == "HTTP/2"
        assert response.json()["http_version"] == "2"
        assert response.json()["query_string"] == "x=1"
    posted = client.post(h2_server.url + "/echo_body", content=b"h2 body")
    assert posted.content == b"h2 body"


@ignore_verify_str_deprecation
def test_http1_is_default_even_if_server_offers_h2(make_client, h2_server, ca_cert_path):
    response = make_client(verify=ca_cert_path).get(h2_server.url + "/")
    assert response.http_version == "HTTP/1.1"


# --------------------------------------------------------------------------
# Streaming
# --------------------------------------------------------------------------


def test_sync_stream(server):
    with (
        loopfree.Client() as client,
        client.stream("GET", server.url + "/drip?chunks=4&delay=0.05") as response,
    ):
        assert response.status_code == 200
        assert not response.is_closed
        body = b"".join(response.iter_bytes())
    assert body == b"0\n1\n2\n3\n"
    assert response.is_closed


def test_async_stream(server):
    async def main() -> bytes:
        async with (
            loopfree.AsyncClient() as client,
            client.stream("GET", server.url + "/drip?chunks=4&delay=0.05") as response,
        ):
            assert response.status_code == 200
            return b"".join([chunk async for chunk in response.aiter_bytes()])

    assert asyncio.run(main()) == b"0\n1\n2\n3\n"


# --------------------------------------------------------------------------
# Top-level functions, context managers, closed clients
# --------------------------------------------------------------------------


def test_top_level_functions(server):
    assert loopfree.get(server.url + "/").text == "Hello, world!"
    response = loopfree.post(server.url + "/echo_body", content=b"top")
    assert response.content == b"top"
    response = loopfree.request("PUT", server.url + "/echo_method", json={"a": 1})
    assert response.json() == {"method": "PUT", "body": '{"a":1}'}
    response = loopfree.get(server.url + "/redirect_301", follow_redirects=True)
    assert [r.status_code for r in response.history] == [301]
    assert loopfree.head(server.url + "/").status_code == 200
    assert loopfree.delete(server.url + "/echo_method").json()["method"] == "DELETE"


CLOSED_MESSAGE = "Cannot send a request, as the client has been closed."


def test_sync_context_manager_and_closed_client(server):
    with loopfree.Client() as client:
        assert not client.is_closed
        assert client.get(server.url + "/").status_code == 200
    assert client.is_closed
    with pytest.raises(RuntimeError) as info:
        client.get(server.url + "/")
    assert str(info.value) == CLOSED_MESSAGE
    client.close()  # idempotent


def test_sync_close_then_request(server):
    client = loopfree.Client()
    assert client.get(server.url + "/").status_code == 200
    client.close()
    with pytest.raises(RuntimeError) as info:
        client.get(server.url + "/")
    assert str(info.value) == CLOSED_MESSAGE


def test_async_context_manager_and_closed_client(server):
    async def main() -> None:
        async with loopfree.AsyncClient() as client:
            assert not client.is_closed
            assert (await client.get(server.url + "/")).status_code == 200
        assert client.is_closed
        with pytest.raises(RuntimeError) as info:
            await client.get(server.url + "/")
        assert str(info.value) == CLOSED_MESSAGE
        await client.aclose()  # idempotent

    asyncio.run(main())


def test_async_aclose_then_request(server):
    async def main() -> None:
        client = loopfree.AsyncClient()
        assert (await client.get(server.url + "/")).status_code == 200
        await client.aclose()
        with pytest.raises(RuntimeError) as info:
            await client.get(server.url + "/")
        assert str(info.value) == CLOSED_MESSAGE

    asyncio.run(main())


def test_async_client_methods_are_coroutine_functions():
    # `asyncio.create_task(client.get(...))` needs real coroutines.
    for name in ("get", "post", "request", "send", "aclose", "__aenter__", "__aexit__"):
        assert inspect.iscoroutinefunction(getattr(loopfree.AsyncClient, name)), name


def test_json_error_body_roundtrip(make_client, server):
    # Sanity check for /echo_body with non-ASCII JSON produced by the caller.
    body = json.dumps({"caf\u00e9": 1}).encode()
    response = make_client().post(
        server.url + "/echo_body", content=body, headers={"content-type": "application/json"}
    )
    assert response.json() == {"caf\u00e9": 1}


# Regression guard for the build_request() hot path (BaseClient._plain_request):
# a request with only a method and a URL must equal the general path's.
PLAIN_CLIENTS = {
    "default": {},
    "base_url": {"base_url": "http://example.org/api/"},
    "custom-headers": {"headers": {"X-Team": "a", "Accept": "text/html"}},
    "client-host-header": {"headers": {"Host": "override.example"}},
    "params": {"params": {"a": "1"}},
    "cookies": {"cookies": {"session": "s1"}},
    "timeout": {"timeout": loopfree.Timeout(3, read=7)},
}


@pytest.mark.parametrize("method", ["GET", "post", "HEAD", "DELETE", "PUT", "PATCH"])
@pytest.mark.parametrize("url", ["http://example.org:8080/p?q=1", "https://[::1]/", "/rel"])
@pytest.mark.parametrize("client_kwargs", PLAIN_CLIENTS.values(), ids=PLAIN_CLIENTS.keys())
def test_plain_build_request_matches_the_general_path(method, url, client_kwargs):
    if "cookies" in client_kwargs and url == "/rel":
        pytest.skip("a relative URL cannot carry cookies (ValueError in httpx too)")
    with loopfree.Client(**client_kwargs) as client:
        fast = client.build_request(method, url)
        # headers={} merges nothing but takes the general path.
        general = client.build_request(method, url, headers={})
        reference = httpx.Client(**client_kwargs).build_request(method, url, headers={})
    assert (fast.method, str(fast.url)) == (general.method, str(general.url))
    assert fast.headers.raw == general.headers.raw
    assert fast.extensions == general.extensions
    assert fast.read() == general.read() == b""
    assert fast.extensions["timeout"] is not client.timeout.as_dict()
    assert [k for k, _ in fast.headers.raw] == [k for k, _ in reference.headers.raw]


def test_plain_build_request_sees_client_changes_made_later():
    client = loopfree.Client()
    client.headers["X-Later"] = "1"
    client.cookies.set("late", "cookie", domain="example.org")
    request = client.build_request("GET", "http://example.org/")
    assert request.headers["x-later"] == "1"
    assert request.headers["cookie"] == "late=cookie"
    client.timeout = 9
    assert client.build_request("GET", "http://example.org/").extensions["timeout"]["read"] == 9
