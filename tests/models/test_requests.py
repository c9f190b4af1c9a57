"""
`Request` must build the same headers and body as `httpx.Request`, and follow
its streaming, reading and pickling rules.
"""

from __future__ import annotations

import asyncio
import pickle
import typing

import httpx
import pytest
from loopfree._content import ByteStream, IteratorByteStream, SyncByteStream
from loopfree._cookies import Cookies
from loopfree._exceptions import RequestNotRead, StreamClosed
from loopfree._headers import Headers
from loopfree._multipart import MultipartStream
from loopfree._request import Request
from loopfree._url import URL


def test_method_is_upper_cased() -> None:
    assert Request("get", "https://example.org").method == "GET"
    assert Request("Patch", "https://example.org").method == "PATCH"
    # httpx 0.28 would keep bytes here; a str is what everything downstream expects.
    assert Request(b"delete", "https://example.org").method == "DELETE"


def test_url() -> None:
    request = Request("GET", "https://example.org/path?a=1")
    assert isinstance(request.url, URL)
    assert str(request.url) == "https://example.org/path?a=1"
    url = URL("https://example.org/")
    assert Request("GET", url).url == url


def test_params_replace_the_url_query_like_httpx() -> None:
    # httpx 0.28's `Request(params=...)` replaces the query (merging is the
    # client's job, in `build_request`).
    request = Request("GET", "https://example.org/?a=1", params={"b": "2", "c": ["3", "4"]})
    assert str(request.url) == "https://example.org/?b=2&c=3&c=4"
    theirs = httpx.Request("GET", "https://example.org/?a=1", params={"b": "2", "c": ["3", "4"]})
    assert str(request.url) == str(theirs.url)


REQUEST_CASES: list[tuple[str, str, dict[str, typing.Any]]] = [
    ("GET", "https://example.org", {}),
    ("GET", "https://example.org:8443/path", {}),
    ("GET", "http://example.org:80/", {}),
    ("GET", "http://[::1]:8000/", {}),
    ("GET", "https://user:pass@example.org/", {}),
    ("POST", "https://example.org", {}),
    ("PUT", "https://example.org", {}),
    ("PATCH", "https://example.org", {}),
    ("DELETE", "https://example.org", {}),
    ("POST", "https://example.org", {"content": b"abc"}),
    ("POST", "https://example.org", {"content": "é"}),
    ("POST", "https://example.org", {"content": b""}),
    ("POST", "https://example.org", {"data": {"a": "1", "b": ["2", "3"]}}),
    ("POST", "https://example.org", {"json": {"a": "é", "b": [1, 2]}}),
    ("POST", "https://example.org", {"json": {"a": 1}, "headers": {"Content-Type": "x/y"}}),
    ("POST", "https://example.org", {"content": b"a", "headers": {"Content-Length": "5"}}),
    ("POST", "https://example.org", {"content": b"a", "headers": {"Host": "other.org"}}),
    (
        "POST",
        "https://example.org",
        {"content": [b"a", b"b"], "headers": {"Content-Length": "2"}},
    ),
    ("POST", "https://example.org", {"content": [b"a", b"b"]}),
    ("GET", "https://example.org", {"headers": {"Transfer-Encoding": "chunked"}}),
    ("GET", "https://example.org", {"headers": [("X-A", "1"), ("x-a", "2")]}),
    ("GET", "https://example.org", {"cookies": {"a": "1", "b": "2"}}),
    ("GET", "https://example.org", {"cookies": {"a": "1"}, "headers": {"Cookie": "x=y"}}),
    ("GET", "https://example.org", {"params": {"q": "search"}}),
    ("POST", "https://example.org", {"files": {"f": b"x"}, "data": {"a": "b"}}),
    (
        "POST",
        "https://example.org",
        {"files": {"f": b"x"}, "headers": {"Content-Type": "multipart/form-data; boundary=B"}},
    ),
    ("GET", "/relative/path", {}),
]


@pytest.mark.parametrize(("method", "url", "kwargs"), REQUEST_CASES)
def test_headers_and_body_match_httpx(method: str, url: str, kwargs: dict[str, typing.Any]) -> None:
    ours = Request(method, url, **kwargs)
    theirs = httpx.Request(method, url, **kwargs)
    assert ours.method == theirs.method
    assert str(ours.url) == str(theirs.url)
    if "files" in kwargs and "Content-Type" not in kwargs.get("headers", {}):
        # Random boundaries differ, but nothing else does.
        boundary = ours.headers["content-type"].split("boundary=")[1]
        their_boundary = theirs.headers["content-type"].split("boundary=")[1]
        assert ours.read().replace(boundary.encode(), b"B") == theirs.read().replace(
            their_boundary.encode(), b"B"
        )
        assert [k for k, _ in ours.headers.raw] == [k for k, _ in theirs.headers.raw]
        return
    assert ours.headers.raw == theirs.headers.raw
    assert ours.read() == theirs.read()


def test_host_header_comes_first() -> None:
    request = Request("POST", "https://example.org:8443", headers={"X-A": "1"}, json={})
    assert request.headers.raw == [
        (b"Host", b"example.org:8443"),
        (b"X-A", b"1"),
        (b"Content-Length", b"2"),
        (b"Content-Type", b"application/json"),
    ]


def test_post_without_body_gets_content_length_zero() -> None:
    assert Request("POST", "https://example.org").headers["Content-Length"] == "0"
    assert "Content-Length" not in Request("GET", "https://example.org").headers


def test_explicit_content_length_wins_over_chunked() -> None:
    request = Request(
        "POST", "https://example.org", content=iter([b"ab"]), headers={"Content-Length": "2"}
    )
    assert "Transfer-Encoding" not in request.headers
    assert request.headers["Content-Length"] == "2"


def test_headers_argument_is_copied() -> None:
    headers = Headers({"a": "1"})
    request = Request("GET", "https://example.org", headers=headers)
    request.headers["b"] = "2"
    assert headers.raw == [(b"a", b"1")]


def test_in_memory_body_is_read_immediately() -> None:
    request = Request("POST", "https://example.org", content=b"abc")
    assert request.content == b"abc"
    assert isinstance(request.stream, ByteStream)
    assert list(request.stream) == [b"abc"]


def test_streaming_body_must_be_read_first() -> None:
    request = Request("POST", "https://example.org", content=iter([b"a", b"b"]))
    assert request.headers["Transfer-Encoding"] == "chunked"
    with pytest.raises(RequestNotRead) as exc_info:
        request.content  # noqa: B018
    assert str(exc_info.value) == str(httpx.RequestNotRead())
    assert request.read() == b"ab"
    assert request.content == b"ab"
    # The one-shot generator is swapped for a replayable in-memory stream.
    assert isinstance(request.stream, ByteStream)
    assert request.read() == b"ab"


def test_multipart_body_is_read_immediately_and_replaced() -> None:
    request = Request("POST", "https://example.org", files={"f": b"x"})
    assert isinstance(request.stream, MultipartStream)
    assert b"x" in request.read()
    assert isinstance(request.stream, ByteStream)


def test_aread() -> None:
    async def body() -> typing.AsyncIterator[bytes]:
        yield b"Hello, "
        yield b"world!"

    request = Request("POST", "https://example.org", content=body())
    with pytest.raises(RequestNotRead):
        request.content  # noqa: B018
    assert asyncio.run(request.aread()) == b"Hello, world!"
    assert request.content == b"Hello, world!"
    assert asyncio.run(request.aread()) == b"Hello, world!"
    assert list(request.stream) == [b"Hello, world!"]  # type: ignore[arg-type]


def test_stream_argument_adds_no_headers() -> None:
    stream = IteratorByteStream([b"abc"])
    request = Request("POST", "https://example.org", stream=stream, headers={"X": "1"})
    assert request.headers.raw == [(b"X", b"1")]
    assert request.stream is stream
    with pytest.raises(RequestNotRead):
        request.content  # noqa: B018
    assert request.read() == b"abc"


def test_cookies_argument() -> None:
    cookies = Cookies({"a": "1"})
    request = Request("GET", "https://example.org", cookies=cookies)
    assert request.headers["Cookie"] == "a=1"
    # An empty cookies argument sets nothing.
    assert "Cookie" not in Request("GET", "https://example.org", cookies={}).headers


def test_extensions_are_copied() -> None:
    extensions = {"timeout": {"connect": 1.0}}
    request = Request("GET", "https://example.org", extensions=extensions)
    assert request.extensions == extensions
    request.extensions["sni_hostname"] = "x"
    assert "sni_hostname" not in extensions
    assert Request("GET", "https://example.org").extensions == {}


def test_repr() -> None:
    request = Request("GET", "https://example.org/path?q=1")
    assert repr(request) == "<Request('GET', 'https://example.org/path?q=1')>"
    assert repr(request) == repr(httpx.Request("GET", "https://example.org/path?q=1"))


def test_data_bytes_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match="Use 'content=<...>'"):
        request = Request("POST", "https://example.org", data=b"raw")  # type: ignore[arg-type]
    assert request.content == b"raw"


def test_pickle_read_request() -> None:
    request = Request(
        "POST",
        "https://example.org",
        json={"a": 1},
        extensions={"timeout": {"connect": 1.0}},
    )
    restored = pickle.loads(pickle.dumps(request))
    assert restored.method == "POST"
    assert restored.url == request.url
    assert restored.headers == request.headers
    assert restored.content == b'{"a":1}'
    assert restored.extensions == {}
    with pytest.raises(StreamClosed):
        list(restored.stream)


def test_pickle_streaming_request() -> None:
    request = Request("POST", "https://example.org", content=[b"a"])
    restored = pickle.loads(pickle.dumps(request))
    with pytest.raises(RequestNotRead):
        restored.content  # noqa: B018
    with pytest.raises(StreamClosed):
        restored.read()

    with pytest.raises(StreamClosed):
        asyncio.run(restored.aread())


def test_read_of_async_only_stream_is_an_error() -> None:
    async def body() -> typing.AsyncIterator[bytes]:
        yield b""

    request = Request("POST", "https://example.org", content=body())
    assert not isinstance(request.stream, SyncByteStream)
    with pytest.raises(AssertionError):
        request.read()
    asyncio.run(request.aread())
