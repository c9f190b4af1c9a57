"""
Request and response body encoding: headers and bytes must equal what httpx
produces for the same input.
"""

from __future__ import annotations

import asyncio
import io
import typing

import pytest
from httpx import _content as httpx_content
from loopfree._content import (
    AsyncByteStream,
    AsyncIteratorByteStream,
    ByteStream,
    IteratorByteStream,
    SyncByteStream,
    UnattachedStream,
    encode_request,
    encode_response,
)
from loopfree._exceptions import StreamClosed, StreamConsumed


def read_sync(stream: typing.Any) -> bytes:
    return b"".join(stream)


def read_async(stream: typing.Any) -> bytes:
    async def collect() -> bytes:
        return b"".join([part async for part in stream])

    return asyncio.run(collect())


def test_byte_stream_is_sync_and_async_and_replayable() -> None:
    stream = ByteStream(b"abc")
    assert isinstance(stream, SyncByteStream)
    assert isinstance(stream, AsyncByteStream)
    assert list(stream) == [b"abc"]
    assert list(stream) == [b"abc"]
    assert read_async(stream) == b"abc"
    stream.close()
    asyncio.run(stream.aclose())


def test_base_classes_must_be_implemented() -> None:
    with pytest.raises(NotImplementedError, match="'__iter__' method must be implemented"):
        iter(SyncByteStream())
    with pytest.raises(NotImplementedError, match="'__aiter__' method must be implemented"):
        AsyncByteStream().__aiter__()


def test_unattached_stream_raises_stream_closed() -> None:
    stream = UnattachedStream()
    with pytest.raises(StreamClosed):
        list(stream)
    with pytest.raises(StreamClosed):
        read_async(stream)


EMPTY_CASES: list[dict[str, typing.Any]] = [
    {},
    {"content": b""},
    {"content": ""},
    {"data": {}},
    {"files": {}},
    {"json": None},
]


@pytest.mark.parametrize("kwargs", EMPTY_CASES)
def test_empty_request(kwargs: dict[str, typing.Any]) -> None:
    headers, stream = encode_request(**kwargs)
    assert headers == {}
    assert read_sync(stream) == b""
    assert isinstance(stream, ByteStream)


BODY_CASES: list[dict[str, typing.Any]] = [
    {"content": b"Hello, world!"},
    {"content": "Hello, wörld!"},
    {"data": {"a": "1", "b": ["x", "y"], "c": True, "d": False, "e": None, "f": 1.5}},
    {"data": {"q": "a b&c=d/é"}},
    {"data": {"a": ("1", 2)}},
    {"json": {"a": [1, 2.5, None, True], "é": "ü"}},
    {"json": [1, "two"]},
    {"json": "text"},
    {"json": 0},
    {"json": {}},
    {"content": b"wins", "data": {"a": "b"}, "json": {"c": "d"}},
    {"data": {"a": "b"}, "json": {"c": "d"}},
]


@pytest.mark.parametrize("kwargs", BODY_CASES)
def test_request_body_matches_httpx(kwargs: dict[str, typing.Any]) -> None:
    headers, stream = encode_request(**kwargs)
    expected_headers, expected_stream = httpx_content.encode_request(**kwargs)
    assert headers == expected_headers
    assert read_sync(stream) == read_sync(expected_stream)
    assert read_async(stream) == read_sync(expected_stream)


def test_json_is_compact_and_keeps_non_ascii() -> None:
    headers, stream = encode_request(json={"a": 1, "b": "é"})
    assert read_sync(stream) == '{"a":1,"b":"é"}'.encode()
    assert headers == {"Content-Length": "16", "Content-Type": "application/json"}


def test_json_rejects_nan() -> None:
    with pytest.raises(ValueError, match="Out of range float values are not JSON compliant"):
        encode_request(json={"a": float("nan")})


def test_urlencoded_data() -> None:
    headers, stream = encode_request(data={"a": "1", "b": ["2", "3"], "c": True})
    assert read_sync(stream) == b"a=1&b=2&b=3&c=true"
    assert headers == {
        "Content-Length": "18",
        "Content-Type": "application/x-www-form-urlencoded",
    }


def test_bytes_content_length() -> None:
    headers, stream = encode_request(content="é")
    assert headers == {"Content-Length": "2"}
    assert read_sync(stream) == "é".encode()


def test_iterator_content_is_chunked_and_single_use() -> None:
    def generator() -> typing.Iterator[bytes]:
        yield b"Hello, "
        yield b"world!"

    headers, stream = encode_request(content=generator())
    assert headers == {"Transfer-Encoding": "chunked"}
    assert isinstance(stream, IteratorByteStream)
    assert read_sync(stream) == b"Hello, world!"
    with pytest.raises(StreamConsumed):
        read_sync(stream)


def test_list_content_is_replayable() -> None:
    headers, stream = encode_request(content=[b"a", b"b"])
    assert headers == {"Transfer-Encoding": "chunked"}
    assert read_sync(stream) == b"ab"
    assert read_sync(stream) == b"ab"


def test_file_like_content_uses_its_length() -> None:
    file = io.BytesIO(b"x" * 100_000)
    headers, stream = encode_request(content=file)
    assert headers == {"Content-Length": "100000"}
    chunks = list(stream)  # type: ignore[arg-type]
    assert [len(chunk) for chunk in chunks] == [65_536, 100_000 - 65_536]


def test_real_file_content(tmp_path: typing.Any) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(b"file body")
    with path.open("rb") as file:
        headers, stream = encode_request(content=file)
        assert headers == {"Content-Length": "9"}
        assert read_sync(stream) == b"file body"


def test_async_iterator_content() -> None:
    async def agen() -> typing.AsyncIterator[bytes]:
        yield b"Hello, "
        yield b"world!"

    headers, stream = encode_request(content=agen())
    assert headers == {"Transfer-Encoding": "chunked"}
    assert isinstance(stream, AsyncIteratorByteStream)
    assert not isinstance(stream, SyncByteStream)
    assert read_async(stream) == b"Hello, world!"
    with pytest.raises(StreamConsumed):
        read_async(stream)


def test_async_file_like_content_uses_aread() -> None:
    class AsyncFile:
        def __init__(self, data: bytes) -> None:
            self._file = io.BytesIO(data)
            self.sizes: list[int] = []

        async def aread(self, size: int) -> bytes:
            self.sizes.append(size)
            return self._file.read(size)

        def __aiter__(self) -> typing.AsyncIterator[bytes]:
            raise AssertionError("aread() should be used")

    file = AsyncFile(b"x" * 70_000)
    headers, stream = encode_request(content=file)
    assert headers == {"Transfer-Encoding": "chunked"}
    assert read_async(stream) == b"x" * 70_000
    assert file.sizes == [65_536, 65_536, 65_536]


@pytest.mark.parametrize("content", [{"a": "b"}, 123, object()])
def test_invalid_content_type(content: typing.Any) -> None:
    with pytest.raises(TypeError, match="Unexpected type for 'content'"):
        encode_request(content=content)


def test_raw_data_is_deprecated_but_works() -> None:
    with pytest.warns(DeprecationWarning, match=r"Use 'content=<\.\.\.>'"):
        headers, stream = encode_request(data=b"raw")  # type: ignore[arg-type]
    assert headers == {"Content-Length": "3"}
    assert read_sync(stream) == b"raw"


def test_multipart_boundary_is_passed_through() -> None:
    headers, stream = encode_request(data={"a": "1"}, files={"f": b"x"}, boundary=b"+++")
    assert headers["Content-Type"] == "multipart/form-data; boundary=+++"
    assert read_sync(stream).startswith(b"--+++\r\n")


RESPONSE_CASES: list[dict[str, typing.Any]] = [
    {},
    {"content": b"abc"},
    {"content": "é"},
    {"content": b""},
    {"text": "Hello, wörld"},
    {"text": ""},
    {"html": "<h1>hi</h1>"},
    {"json": {"a": ["é", 1]}},
    {"content": b"first", "text": "second"},
    {"text": "first", "html": "second", "json": "third"},
]


@pytest.mark.parametrize("kwargs", RESPONSE_CASES)
def test_response_body_matches_httpx(kwargs: dict[str, typing.Any]) -> None:
    headers, stream = encode_response(**kwargs)
    expected_headers, expected_stream = httpx_content.encode_response(**kwargs)
    assert headers == expected_headers
    assert read_sync(stream) == read_sync(expected_stream)


def test_response_text_and_html_headers() -> None:
    assert encode_response(text="hi")[0] == {
        "Content-Length": "2",
        "Content-Type": "text/plain; charset=utf-8",
    }
    assert encode_response(html="hi")[0] == {
        "Content-Length": "2",
        "Content-Type": "text/html; charset=utf-8",
    }
