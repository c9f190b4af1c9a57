"""
`Response` must behave like `httpx.Response`: most properties are checked
against httpx for the same input. `Response._from_engine`, the fast path for
bodies the Rust engine has already read and decoded, is tested at the end.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import pickle
import random
import re
import typing

import httpx
import pytest
from loopfree._content import AsyncIteratorByteStream, ByteStream, IteratorByteStream
from loopfree._exceptions import (
    HTTPStatusError,
    ResponseNotRead,
    StreamClosed,
    StreamConsumed,
)
from loopfree._headers import Headers
from loopfree._request import Request
from loopfree._response import Response

URL = "https://example.org/path"


def streaming_body(*chunks: bytes) -> typing.Iterator[bytes]:
    yield from chunks


async def async_streaming_body(*chunks: bytes) -> typing.AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


class RecordingStream(IteratorByteStream):
    """A sync stream that records whether it was closed."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__(chunks)
        self.closed = False

    def close(self) -> None:
        self.closed = True


class RecordingAsyncStream(AsyncIteratorByteStream):
    """An async stream that records whether it was closed."""

    def __init__(self, chunks: list[bytes]) -> None:
        super().__init__(async_streaming_body(*chunks))
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


def run(coroutine: typing.Coroutine[typing.Any, typing.Any, typing.Any]) -> typing.Any:
    return asyncio.run(coroutine)


# Basic attributes


def test_response() -> None:
    request = Request("GET", URL)
    response = Response(200, content=b"Hello, world!", request=request)
    assert response.status_code == 200
    assert response.reason_phrase == "OK"
    assert response.text == "Hello, world!"
    assert response.content == b"Hello, world!"
    assert response.request is request
    assert response.url == request.url
    assert response.http_version == "HTTP/1.1"
    assert response.encoding == "utf-8"
    assert response.headers == {"Content-Length": "13"}
    assert response.history == []
    assert response.next_request is None
    assert response.is_closed
    assert response.is_stream_consumed
    assert not response.is_error
    assert repr(response) == "<Response [200 OK]>"


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"content": b"abc"},
        {"content": "é"},
        {"text": "Hello, wörld"},
        {"html": "<p>hi</p>"},
        {"json": {"a": ["é", 1]}},
        {"content": b"abc", "headers": {"Content-Length": "3"}},
        {"content": b"abc", "headers": {"Content-Type": "x/y"}},
        {"content": [b"a", b"b"]},
        {"content": [b"a", b"b"], "headers": {"Content-Length": "2"}},
    ],
)
def test_constructor_matches_httpx(kwargs: dict[str, typing.Any]) -> None:
    ours = Response(200, **kwargs)
    theirs = httpx.Response(200, **kwargs)
    assert ours.headers.raw == theirs.headers.raw
    assert ours.is_closed == theirs.is_closed
    assert ours.is_stream_consumed == theirs.is_stream_consumed
    assert ours.num_bytes_downloaded == theirs.num_bytes_downloaded
    assert ours.read() == theirs.read()
    assert ours.text == theirs.text


def test_history_and_extensions_are_copied() -> None:
    first = Response(301)
    history = [first]
    extensions = {"http_version": b"HTTP/2"}
    response = Response(200, history=history, extensions=extensions)
    response.history.append(first)
    response.extensions["reason_phrase"] = b"Fine"
    assert history == [first]
    assert extensions == {"http_version": b"HTTP/2"}
    assert response.http_version == "HTTP/2"
    assert response.reason_phrase == "Fine"


@pytest.mark.parametrize("status_code", [100, 200, 204, 301, 404, 418, 451, 500, 599, 600, 99])
def test_reason_phrase_and_status_classes_match_httpx(status_code: int) -> None:
    ours = Response(status_code)
    theirs = httpx.Response(status_code)
    for name in [
        "reason_phrase",
        "is_informational",
        "is_success",
        "is_redirect",
        "is_client_error",
        "is_server_error",
        "is_error",
        "has_redirect_location",
    ]:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert repr(ours) == repr(theirs)


def test_reason_phrase_from_extensions() -> None:
    response = Response(200, extensions={"reason_phrase": b"Very OK"})
    assert response.reason_phrase == "Very OK"
    assert repr(response) == "<Response [200 Very OK]>"


def test_request_and_elapsed_must_be_set() -> None:
    response = Response(200)
    with pytest.raises(RuntimeError, match="request instance has not been set"):
        response.request  # noqa: B018
    with pytest.raises(RuntimeError, match="request instance has not been set"):
        response.url  # noqa: B018
    with pytest.raises(RuntimeError, match=r"'\.elapsed' may only be accessed"):
        response.elapsed  # noqa: B018
    request = Request("GET", URL)
    response.request = request
    response.elapsed = datetime.timedelta(seconds=1)
    assert response.request is request
    assert response.url == request.url
    assert response.elapsed == datetime.timedelta(seconds=1)


@pytest.mark.parametrize(
    ("status_code", "headers"),
    [
        (301, {"Location": "https://example.org/new"}),
        (302, {"Location": "/relative"}),
        (303, {"location": "x"}),
        (307, {"Location": "x"}),
        (308, {"Location": "x"}),
        (300, {"Location": "x"}),
        (304, {"Location": "x"}),
        (301, {}),
    ],
)
def test_has_redirect_location(status_code: int, headers: dict[str, str]) -> None:
    assert (
        Response(status_code, headers=headers).has_redirect_location
        == httpx.Response(status_code, headers=headers).has_redirect_location
    )


# raise_for_status


@pytest.mark.parametrize(
    ("status_code", "headers"),
    [
        (101, {}),
        (303, {"Location": "https://example.org/other"}),
        (304, {}),
        (404, {}),
        (418, {}),
        (500, {}),
        (503, {}),
        (600, {}),
        (99, {}),
    ],
)
def test_raise_for_status_message_matches_httpx(status_code: int, headers: dict[str, str]) -> None:
    request = Request("GET", URL)
    response = Response(status_code, headers=headers, request=request)
    with pytest.raises(HTTPStatusError) as ours:
        response.raise_for_status()
    their_response = httpx.Response(status_code, headers=headers, request=httpx.Request("GET", URL))
    with pytest.raises(httpx.HTTPStatusError) as theirs:
        their_response.raise_for_status()
    assert str(ours.value) == str(theirs.value)
    assert ours.value.request is request
    assert ours.value.response is response


def test_raise_for_status_message() -> None:
    response = Response(404, request=Request("GET", URL))
    with pytest.raises(HTTPStatusError) as exc_info:
        response.raise_for_status()
    assert str(exc_info.value) == (
        "Client error '404 Not Found' for url 'https://example.org/path'\n"
        "For more information check: https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/404"
    )


def test_raise_for_status_returns_self_on_success() -> None:
    response = Response(204, request=Request("GET", URL))
    assert response.raise_for_status() is response


def test_raise_for_status_needs_a_request() -> None:
    with pytest.raises(RuntimeError, match="Cannot call `raise_for_status`"):
        Response(200).raise_for_status()


# Text and encoding

TEXT_CASES: list[tuple[dict[str, str], bytes]] = [
    ({}, b"plain"),
    ({}, "café".encode()),
    ({}, b"caf\xe9"),
    ({"Content-Type": "text/plain; charset=latin-1"}, "café".encode("latin-1")),
    ({"Content-Type": "text/plain; charset=ISO-8859-1"}, b"caf\xe9"),
    ({"Content-Type": 'text/plain; charset="utf-8"'}, "café".encode()),
    ({"Content-Type": "text/plain; CHARSET=utf-16"}, "café".encode("utf-16")),
    ({"Content-Type": "text/plain; charset=invalid-codec"}, "café".encode()),
    ({"Content-Type": "text/plain"}, "café".encode()),
    ({"Content-Type": "application/json"}, b'{"a": 1}'),
    ({"Content-Type": "text/plain; charset*=utf-8''latin-1"}, b"caf\xe9"),
    ({"Content-Type": "text/html; charset=shift_jis"}, "日本".encode("shift_jis")),
    ({"Content-Type": ""}, b"x"),
    ({}, b""),
]


@pytest.mark.parametrize(("headers", "content"), TEXT_CASES)
def test_text_and_encoding_match_httpx(headers: dict[str, str], content: bytes) -> None:
    ours = Response(200, headers=headers, content=content)
    theirs = httpx.Response(200, headers=headers, content=content)
    assert ours.charset_encoding == theirs.charset_encoding
    assert ours.encoding == theirs.encoding
    assert ours.text == theirs.text


CHARSETS = [
    "utf-8",
    "UTF8",
    "ascii",
    "latin-1",
    "windows-1252",
    "utf-16",
    "utf-32",
    "utf-8-sig",
    "shift_jis",
    "gb18030",
    "iso-2022-jp",
    "utf-7",
    "koi8-r",
]


@pytest.mark.parametrize("charset", CHARSETS)
def test_text_of_arbitrary_bytes_matches_httpx(charset: str) -> None:
    rng = random.Random(charset)
    headers = {"Content-Type": f"text/plain; charset={charset}"}
    for _ in range(100):
        content = rng.randbytes(rng.randint(1, 24))
        try:
            expected = httpx.Response(200, headers=headers, content=content).text
        except UnicodeError as exc:
            # The incremental UTF-16/32 decoders reject a body without a BOM.
            with pytest.raises(type(exc)):
                Response(200, headers=headers, content=content).text  # noqa: B018
        else:
            assert Response(200, headers=headers, content=content).text == expected


def test_default_encoding() -> None:
    response = Response(200, content="café".encode("cp1252"), default_encoding="cp1252")
    assert response.encoding == "cp1252"
    assert response.text == "café"
    # An explicit charset takes priority.
    response = Response(
        200,
        content="café".encode(),
        headers={"Content-Type": "text/plain; charset=utf-8"},
        default_encoding="cp1252",
    )
    assert response.text == "café"


def test_default_encoding_callable() -> None:
    seen: list[bytes] = []

    def autodetect(content: bytes) -> str:
        seen.append(content)
        return "latin-1"

    response = Response(200, content=b"caf\xe9", default_encoding=autodetect)
    assert response.text == "café"
    assert seen == [b"caf\xe9"]


def test_default_encoding_callable_before_reading() -> None:
    def autodetect(content: bytes) -> str:
        raise AssertionError("not called before the body is read")

    ours = Response(200, stream=IteratorByteStream([b"x"]), default_encoding=autodetect)
    theirs = httpx.Response(200, stream=httpx.ByteStream(b"x"), default_encoding=autodetect)
    assert ours.encoding == theirs.encoding == "utf-8"


def test_set_encoding() -> None:
    response = Response(200, content="café".encode("latin-1"))
    response.encoding = "latin-1"
    assert response.text == "café"
    with pytest.raises(
        ValueError,
        match=re.escape("Setting encoding after `text` has been accessed is not allowed."),
    ):
        response.encoding = "utf-8"


def test_encoding_may_be_set_to_none_like_httpx() -> None:
    ours = Response(
        200, content=b"caf\xe9", headers={"Content-Type": "text/plain; charset=latin-1"}
    )
    theirs = httpx.Response(
        200, content=b"caf\xe9", headers={"Content-Type": "text/plain; charset=latin-1"}
    )
    ours.encoding = None  # type: ignore[assignment]
    theirs.encoding = None  # type: ignore[assignment]
    assert ours.encoding is None
    assert ours.text == theirs.text == "caf\ufffd"


def test_text_replaces_undecodable_bytes() -> None:
    response = Response(200, content=b"a\xffb\xe2\x82")
    assert response.text == "a\ufffdb\ufffd"


# JSON


def test_json() -> None:
    response = Response(200, json={"greeting": "hello", "n": 1.5})
    assert response.json() == {"greeting": "hello", "n": 1.5}
    assert response.json(parse_float=str) == {"greeting": "hello", "n": "1.5"}


def test_json_autodetects_utf16() -> None:
    response = Response(200, content=json.dumps({"a": "é"}).encode("utf-16"))
    assert response.json() == {"a": "é"}


def test_json_invalid_raises_json_decode_error() -> None:
    response = Response(200, content=b"not json")
    with pytest.raises(json.JSONDecodeError):
        response.json()
    with pytest.raises(json.JSONDecodeError):
        httpx.Response(200, content=b"not json").json()


def test_json_needs_content() -> None:
    response = Response(200, content=streaming_body(b"{}"))
    with pytest.raises(ResponseNotRead):
        response.json()


# Links and cookies

LINK_HEADERS = [
    '<https://example.org/page/2>; rel="next"',
    '<https://example.org/page/2>; rel="next", <https://example.org/page/9>; rel="last"',
    "<https://example.org/a>; rel=next; type='text/html'",
    "<https://example.org/a>",
    "<https://example.org/a>; rel",
    "<https://example.org/a>;rel=next,<https://example.org/b>;rel=prev",
    '  "<https://example.org/a>; rel=x"  ',
    "",
    "  ",
]


@pytest.mark.parametrize("link", LINK_HEADERS)
def test_links_match_httpx(link: str) -> None:
    assert (
        Response(200, headers={"Link": link}).links
        == httpx.Response(200, headers={"Link": link}).links
    )


def test_links() -> None:
    response = Response(
        200,
        headers={"Link": '<https://example.org/2>; rel="next", <https://example.org/x>'},
    )
    assert response.links == {
        "next": {"url": "https://example.org/2", "rel": "next"},
        "https://example.org/x": {"url": "https://example.org/x"},
    }
    assert Response(200).links == {}


def test_cookies() -> None:
    response = Response(
        200,
        headers=[("Set-Cookie", "a=1; Path=/"), ("Set-Cookie", "b=2")],
        request=Request("GET", URL),
    )
    assert dict(response.cookies) == {"a": "1", "b": "2"}
    assert response.cookies is response.cookies


# Sync streaming


def test_read() -> None:
    response = Response(200, content=streaming_body(b"Hello, ", b"world!"))
    assert not response.is_closed
    assert not response.is_stream_consumed
    with pytest.raises(ResponseNotRead) as exc_info:
        response.content  # noqa: B018
    assert str(exc_info.value) == str(httpx.ResponseNotRead())
    assert response.read() == b"Hello, world!"
    assert response.content == b"Hello, world!"
    assert response.is_closed
    assert response.is_stream_consumed
    assert response.num_bytes_downloaded == 13
    # Reading again returns the cached body.
    assert response.read() == b"Hello, world!"


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 5, 100])
def test_iter_bytes_matches_httpx(chunk_size: int | None) -> None:
    chunks = (b"Hello", b", ", b"", b"world", b"!")
    ours = Response(200, content=streaming_body(*chunks))
    theirs = httpx.Response(200, content=streaming_body(*chunks))
    assert list(ours.iter_bytes(chunk_size)) == list(theirs.iter_bytes(chunk_size))
    assert ours.is_closed
    # Streaming does not keep the body, so it cannot be streamed twice.
    with pytest.raises(StreamConsumed):
        list(ours.iter_bytes(chunk_size))
    with pytest.raises(httpx.StreamConsumed):
        list(theirs.iter_bytes(chunk_size))


@pytest.mark.parametrize("chunk_size", [None, 2, 4])
def test_iter_bytes_of_read_response(chunk_size: int | None) -> None:
    ours = Response(200, content=b"Hello, world!")
    theirs = httpx.Response(200, content=b"Hello, world!")
    assert list(ours.iter_bytes(chunk_size)) == list(theirs.iter_bytes(chunk_size))


def test_iter_bytes_of_empty_read_response() -> None:
    assert list(Response(200, content=b"").iter_bytes()) == []


@pytest.mark.parametrize("chunk_size", [None, 1, 3])
def test_iter_text_matches_httpx(chunk_size: int | None) -> None:
    data = "Hello, wörld! 😀".encode()
    chunks = [data[i : i + 2] for i in range(0, len(data), 2)]
    ours = Response(200, content=streaming_body(*chunks))
    theirs = httpx.Response(200, content=streaming_body(*chunks))
    assert list(ours.iter_text(chunk_size)) == list(theirs.iter_text(chunk_size))


def test_iter_text_uses_the_charset() -> None:
    response = Response(
        200,
        headers={"Content-Type": "text/plain; charset=latin-1"},
        content=streaming_body(b"caf", b"\xe9"),
    )
    assert "".join(response.iter_text()) == "café"


def test_iter_lines() -> None:
    chunks = (b"Hello,\r", b"\nworld", b"!\n\nlast")
    ours = Response(200, content=streaming_body(*chunks))
    theirs = httpx.Response(200, content=streaming_body(*chunks))
    assert list(ours.iter_lines()) == list(theirs.iter_lines())
    assert list(Response(200, content=streaming_body(*chunks)).iter_lines()) == [
        "Hello,",
        "world!",
        "",
        "last",
    ]


@pytest.mark.parametrize("chunk_size", [None, 2, 7])
def test_iter_raw(chunk_size: int | None) -> None:
    chunks = (b"Hello", b", world", b"!")
    ours = Response(200, content=streaming_body(*chunks))
    theirs = httpx.Response(200, content=streaming_body(*chunks))
    assert list(ours.iter_raw(chunk_size)) == list(theirs.iter_raw(chunk_size))
    assert ours.num_bytes_downloaded == 13
    assert ours.is_closed


def test_iter_raw_does_not_decode() -> None:
    import gzip

    body = gzip.compress(b"data")
    response = Response(200, headers={"Content-Encoding": "gzip"}, content=streaming_body(body))
    assert b"".join(response.iter_raw()) == body


def test_stream_consumed_and_closed() -> None:
    response = Response(200, content=streaming_body(b"a"))
    assert list(response.iter_raw()) == [b"a"]
    with pytest.raises(StreamConsumed):
        list(response.iter_raw())
    # Decoded access is only possible once the body is kept, which iter_raw does not.
    with pytest.raises(StreamConsumed):
        list(response.iter_bytes())

    response = Response(200, content=streaming_body(b"a"))
    response.close()
    with pytest.raises(StreamClosed):
        response.read()
    with pytest.raises(ResponseNotRead):
        response.content  # noqa: B018


def test_close_closes_the_stream_once() -> None:
    stream = RecordingStream([b"a", b"b"])
    response = Response(200, stream=stream)
    assert not response.is_closed
    response.close()
    assert stream.closed
    assert response.is_closed
    stream.closed = False
    response.close()
    assert not stream.closed


def test_reading_to_the_end_closes_the_stream() -> None:
    stream = RecordingStream([b"a", b"b"])
    response = Response(200, stream=stream)
    assert response.read() == b"ab"
    assert stream.closed


def test_sync_methods_reject_async_streams() -> None:
    response = Response(200, content=async_streaming_body(b"a"))
    with pytest.raises(
        RuntimeError, match=re.escape("Attempted to call a sync iterator on an async stream.")
    ):
        response.read()
    with pytest.raises(
        RuntimeError, match=re.escape("Attempted to call an sync close on an async stream.")
    ):
        response.close()
    run(response.aclose())


def test_streaming_response_headers() -> None:
    response = Response(200, content=streaming_body(b"a"))
    assert response.headers == {"Transfer-Encoding": "chunked"}
    response = Response(200, stream=IteratorByteStream([b"a"]))
    assert response.headers == {}
    assert response.read() == b"a"


# Async streaming


def test_aread() -> None:
    async def main() -> None:
        response = Response(200, content=async_streaming_body(b"Hello, ", b"world!"))
        with pytest.raises(ResponseNotRead):
            response.content  # noqa: B018
        assert await response.aread() == b"Hello, world!"
        assert await response.aread() == b"Hello, world!"
        assert response.content == b"Hello, world!"
        assert response.is_closed
        assert response.num_bytes_downloaded == 13

    run(main())


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 100])
def test_async_iterators_match_httpx(chunk_size: int | None) -> None:
    chunks = (b"Hel", b"lo\r", b"\nw\xc3", b"\xb6rld", b"!\nend")

    async def collect(response: typing.Any) -> list[bytes]:
        return [part async for part in response.aiter_bytes(chunk_size)]

    async def collect_text(response: typing.Any) -> list[str]:
        return [part async for part in response.aiter_text(chunk_size)]

    async def collect_lines(response: typing.Any) -> list[str]:
        return [part async for part in response.aiter_lines()]

    async def collect_raw(response: typing.Any) -> list[bytes]:
        return [part async for part in response.aiter_raw(chunk_size)]

    for collector in (collect, collect_text, collect_lines, collect_raw):
        ours = Response(200, content=async_streaming_body(*chunks))
        theirs = httpx.Response(200, content=async_streaming_body(*chunks))
        assert run(collector(ours)) == run(collector(theirs))
        assert ours.is_closed and theirs.is_closed


def test_aiter_bytes_of_read_response() -> None:
    async def main() -> list[bytes]:
        response = Response(200, content=b"Hello, world!")
        return [part async for part in response.aiter_bytes(5)]

    assert run(main()) == [b"Hello", b", wor", b"ld!"]


def test_async_stream_consumed_and_closed() -> None:
    async def main() -> None:
        response = Response(200, content=async_streaming_body(b"a"))
        assert [part async for part in response.aiter_raw()] == [b"a"]
        with pytest.raises(StreamConsumed):
            [part async for part in response.aiter_raw()]

        stream = RecordingAsyncStream([b"a"])
        response = Response(200, stream=stream)
        await response.aclose()
        assert stream.closed
        with pytest.raises(StreamClosed):
            await response.aread()

    run(main())


def test_async_methods_reject_sync_streams() -> None:
    async def main() -> None:
        response = Response(200, content=streaming_body(b"a"))
        with pytest.raises(
            RuntimeError, match=re.escape("Attempted to call an async iterator on an sync stream.")
        ):
            await response.aread()
        with pytest.raises(
            RuntimeError, match=re.escape("Attempted to call an async close on an sync stream.")
        ):
            await response.aclose()
        response.close()

    run(main())


# Pickling


def test_pickle_read_response() -> None:
    request = Request("GET", URL)
    response = Response(
        200,
        headers={"Set-Cookie": "a=1"},
        content=b"Hello",
        request=request,
        extensions={"http_version": b"HTTP/2"},
        history=[Response(301, request=request)],
    )
    response.elapsed = datetime.timedelta(seconds=2)
    assert dict(response.cookies) == {"a": "1"}
    assert response.text == "Hello"
    restored = pickle.loads(pickle.dumps(response))
    assert restored.status_code == 200
    assert restored.headers == response.headers
    assert restored.content == b"Hello"
    assert restored.text == "Hello"
    assert restored.request.url == request.url
    assert restored.elapsed == datetime.timedelta(seconds=2)
    assert restored.is_closed
    assert restored.extensions == {}
    assert restored.http_version == "HTTP/1.1"
    assert [r.status_code for r in restored.history] == [301]
    assert dict(restored.cookies) == {"a": "1"}
    assert list(restored.iter_bytes()) == [b"Hello"]


def test_pickle_streaming_response() -> None:
    response = Response(200, content=streaming_body(b"a"))
    restored = pickle.loads(pickle.dumps(response))
    with pytest.raises(ResponseNotRead):
        restored.content  # noqa: B018
    with pytest.raises(StreamClosed):
        restored.read()
    with pytest.raises(StreamClosed):
        run(restored.aread())


# The engine fast path

RAW_HEADERS = [
    (b"Date", b"Mon, 01 Jan 2024 00:00:00 GMT"),
    (b"Content-Type", b"application/json; charset=utf-8"),
    (b"Content-Encoding", b"gzip"),
    (b"Set-Cookie", b"a=1"),
    (b"set-cookie", b"b=2"),
]


def engine_response(
    content: bytes = b'{"hello": "w\xc3\xb6rld"}',
    raw_headers: list[tuple[bytes, bytes]] | None = None,
    status_code: int = 200,
    default_encoding: typing.Any = "utf-8",
) -> Response:
    return Response._from_engine(
        status_code,
        list(RAW_HEADERS) if raw_headers is None else raw_headers,
        content,
        Request("GET", URL),
        b"HTTP/2",
        b"",
        0.012,
        default_encoding,
        len(content),
    )


def test_from_engine_attributes() -> None:
    raw = list(RAW_HEADERS)
    response = engine_response(raw_headers=raw)
    assert response.status_code == 200
    # Headers are kept exactly as received, and not parsed yet.
    assert response.headers.raw == RAW_HEADERS
    assert response.headers._index is None
    assert response.extensions == {"http_version": b"HTTP/2", "reason_phrase": b""}
    assert response.http_version == "HTTP/2"
    assert response.reason_phrase == ""
    # Kept in seconds until asked for, then a timedelta as in httpx.
    assert type(response.elapsed) is datetime.timedelta
    assert response.elapsed == datetime.timedelta(milliseconds=12)
    assert response.elapsed is response.elapsed
    response.elapsed = datetime.timedelta(seconds=3)
    assert response.elapsed == datetime.timedelta(seconds=3)
    assert response.history == []
    assert response.next_request is None
    assert response.is_closed
    assert response.is_stream_consumed
    assert response.content == b'{"hello": "w\xc3\xb6rld"}'
    assert response.num_bytes_downloaded == len(response.content)
    assert response.default_encoding == "utf-8"
    assert str(response.url) == URL
    assert repr(response) == "<Response [200 ]>"


def test_from_engine_does_not_decode_or_add_headers() -> None:
    # A gzip Content-Encoding header is left as-is; the body is trusted as decoded.
    response = engine_response(content=b"already decoded")
    assert response.read() == b"already decoded"
    assert "content-length" not in response.headers
    assert response.headers["content-encoding"] == "gzip"


def test_from_engine_body_access() -> None:
    response = engine_response()
    assert response.json() == {"hello": "wörld"}
    assert response.text == '{"hello": "wörld"}'
    assert response.encoding == "utf-8"
    assert list(response.iter_bytes(8)) == [b'{"hello"', b': "w\xc3\xb6rl', b'd"}']
    assert list(response.iter_text()) == ['{"hello": "wörld"}']
    assert list(response.iter_lines()) == ['{"hello": "wörld"}']
    with pytest.raises(StreamConsumed):
        list(response.iter_raw())

    async def main() -> None:
        assert await response.aread() == response.content
        assert [part async for part in response.aiter_bytes()] == [response.content]
        with pytest.raises(StreamConsumed):
            [part async for part in response.aiter_raw()]
        await response.aclose()

    run(main())


def test_from_engine_close_is_a_no_op() -> None:
    response = engine_response()
    response.close()
    run(response.aclose())
    assert response.is_closed
    assert response.content


def test_from_engine_stream_holds_the_body() -> None:
    response = engine_response(content=b"body")
    assert isinstance(response.stream, ByteStream)
    assert list(response.stream) == [b"body"]
    replacement = IteratorByteStream([b"x"])
    response.stream = replacement
    assert response.stream is replacement


def test_from_engine_matches_equivalent_httpx_response() -> None:
    ours = engine_response(status_code=404)
    theirs = httpx.Response(
        404,
        headers=RAW_HEADERS,
        stream=httpx.ByteStream(ours.content),
        request=httpx.Request("GET", URL),
        extensions={"http_version": b"HTTP/2", "reason_phrase": b""},
    )
    theirs._content = ours.content  # what httpx's transport path ends with, minus decoding
    for name in [
        "status_code",
        "http_version",
        "reason_phrase",
        "encoding",
        "charset_encoding",
        "text",
        "links",
        "is_error",
        "is_client_error",
        "has_redirect_location",
    ]:
        assert getattr(ours, name) == getattr(theirs, name), name
    assert ours.headers.raw == theirs.headers.raw
    assert dict(ours.cookies) == dict(theirs.cookies)
    with pytest.raises(HTTPStatusError) as ours_error:
        ours.raise_for_status()
    with pytest.raises(httpx.HTTPStatusError) as theirs_error:
        theirs.raise_for_status()
    assert str(ours_error.value) == str(theirs_error.value)


def test_from_engine_default_encoding() -> None:
    response = engine_response(
        content="café".encode("latin-1"), raw_headers=[], default_encoding="latin-1"
    )
    assert response.text == "café"
    response = engine_response(
        content="café".encode("latin-1"), raw_headers=[], default_encoding=lambda _: "cp1252"
    )
    assert response.encoding == "cp1252"


def test_from_engine_headers_are_mutable() -> None:
    raw: list[tuple[bytes, bytes]] = [(b"X-A", b"1")]
    response = engine_response(raw_headers=raw)
    response.headers["x-b"] = "2"
    assert response.headers.raw == [(b"X-A", b"1"), (b"x-b", b"2")]
    assert isinstance(response.headers, Headers)


def test_from_engine_pickle() -> None:
    response = engine_response()
    restored = pickle.loads(pickle.dumps(response))
    assert restored.content == response.content
    assert restored.headers == response.headers
    assert restored.elapsed == response.elapsed
    assert restored.is_closed
    assert restored.extensions == {}
    with pytest.raises(StreamConsumed):
        list(restored.iter_raw())
