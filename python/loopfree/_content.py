"""Byte streams, and the encoding of request and response bodies, as in httpx."""

from __future__ import annotations

import inspect
import os
import typing
import warnings
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping
from json import dumps as json_dumps
from urllib.parse import urlencode

from ._exceptions import StreamClosed, StreamConsumed
from ._query_params import primitive_value_to_str

if typing.TYPE_CHECKING:
    from ._multipart import MultipartStream, RequestFiles

__all__ = [
    "AsyncByteStream",
    "AsyncIteratorByteStream",
    "ByteStream",
    "IteratorByteStream",
    "RequestContent",
    "RequestData",
    "ResponseContent",
    "SyncByteStream",
    "UnattachedStream",
    "encode_request",
    "encode_response",
]

RequestContent = str | bytes | Iterable[bytes] | AsyncIterable[bytes]
ResponseContent = str | bytes | Iterable[bytes] | AsyncIterable[bytes]
RequestData = Mapping[str, typing.Any]


class SyncByteStream:
    """Base class for synchronous request and response bodies."""

    def __iter__(self) -> Iterator[bytes]:
        raise NotImplementedError("The '__iter__' method must be implemented.")

    def close(self) -> None:
        """
        Subclasses can override this method to release any network resources
        after a request/response cycle is complete.
        """


class AsyncByteStream:
    """Base class for asynchronous request and response bodies."""

    def __aiter__(self) -> AsyncIterator[bytes]:
        raise NotImplementedError("The '__aiter__' method must be implemented.")

    async def aclose(self) -> None:
        """
        Subclasses can override this method to release any network resources
        after a request/response cycle is complete.
        """


class ByteStream(AsyncByteStream, SyncByteStream):
    """A body held in memory; replayable, and usable from sync and async code."""

    def __init__(self, stream: bytes) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        return iter((self._stream,))

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._stream


class IteratorByteStream(SyncByteStream):
    """A body produced by a bytes iterable or a binary file-like object."""

    CHUNK_SIZE = 65_536

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream
        self._is_stream_consumed = False
        # Only a generator is known to be one-shot; other iterables may replay.
        self._is_generator = inspect.isgenerator(stream)

    def __iter__(self) -> Iterator[bytes]:
        if self._is_stream_consumed and self._is_generator:
            raise StreamConsumed()
        self._is_stream_consumed = True
        return self._iter()

    def _iter(self) -> Iterator[bytes]:
        read = getattr(self._stream, "read", None)
        if read is not None:
            # File-like objects are read in bounded chunks rather than by line.
            chunk = read(self.CHUNK_SIZE)
            while chunk:
                yield chunk
                chunk = read(self.CHUNK_SIZE)
        else:
            yield from self._stream


class AsyncIteratorByteStream(AsyncByteStream):
    """A body produced by an async bytes iterable or an async file-like object."""

    CHUNK_SIZE = 65_536

    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream
        self._is_stream_consumed = False
        self._is_generator = inspect.isasyncgen(stream)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._is_stream_consumed and self._is_generator:
            raise StreamConsumed()
        self._is_stream_consumed = True
        aread = getattr(self._stream, "aread", None)
        if aread is not None:
            chunk = await aread(self.CHUNK_SIZE)
            while chunk:
                yield chunk
                chunk = await aread(self.CHUNK_SIZE)
        else:
            async for part in self._stream:
                yield part


class UnattachedStream(AsyncByteStream, SyncByteStream):
    """
    The stream of an unpickled request or response: it is no longer attached
    to any I/O, so reading it raises `StreamClosed`.
    """

    def __iter__(self) -> Iterator[bytes]:
        raise StreamClosed()

    def __aiter__(self) -> AsyncIterator[bytes]:
        raise StreamClosed()


def peek_filelike_length(stream: typing.Any) -> int | None:
    """
    The length in bytes of a file-like object, found without reading it, or
    `None` when it cannot be known.
    """
    try:
        length: int = os.fstat(stream.fileno()).st_size
    except (AttributeError, OSError):
        try:
            # Seekable in-memory objects, e.g. `io.BytesIO`.
            offset = stream.tell()
            length = stream.seek(0, os.SEEK_END)
            stream.seek(offset)
        except (AttributeError, OSError):
            return None
    return length


def encode_content(
    content: str | bytes | Iterable[bytes] | AsyncIterable[bytes],
) -> tuple[dict[str, str], SyncByteStream | AsyncByteStream]:
    if isinstance(content, (bytes, str)):
        body = content.encode("utf-8") if isinstance(content, str) else content
        headers = {"Content-Length": str(len(body))} if body else {}
        return headers, ByteStream(body)

    # A dict is iterable too, but passing one as content is always a mistake
    # (it was meant as `data=` or `json=`).
    if isinstance(content, Iterable) and not isinstance(content, dict):
        length = peek_filelike_length(content)
        if length is None:
            return {"Transfer-Encoding": "chunked"}, IteratorByteStream(content)
        return {"Content-Length": str(length)}, IteratorByteStream(content)

    if isinstance(content, AsyncIterable):
        return {"Transfer-Encoding": "chunked"}, AsyncIteratorByteStream(content)

    raise TypeError(f"Unexpected type for 'content', {type(content)!r}")


def encode_urlencoded_data(data: RequestData) -> tuple[dict[str, str], ByteStream]:
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        if isinstance(value, (list, tuple)):
            pairs.extend((key, primitive_value_to_str(item)) for item in value)
        else:
            pairs.append((key, primitive_value_to_str(value)))
    body = urlencode(pairs, doseq=True).encode("utf-8")
    headers = {
        "Content-Length": str(len(body)),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return headers, ByteStream(body)


def encode_multipart_data(
    data: RequestData, files: RequestFiles, boundary: bytes | None
) -> tuple[dict[str, str], MultipartStream]:
    # Imported here because `_multipart` builds on the stream classes above.
    from ._multipart import MultipartStream

    multipart = MultipartStream(data=data, files=files, boundary=boundary)
    return multipart.get_headers(), multipart


def _encode_text_body(text: str, content_type: str) -> tuple[dict[str, str], ByteStream]:
    body = text.encode("utf-8")
    headers = {"Content-Length": str(len(body)), "Content-Type": content_type}
    return headers, ByteStream(body)


def encode_json(json: typing.Any) -> tuple[dict[str, str], ByteStream]:
    # Compact and non-ASCII preserving, byte for byte what httpx 0.28 sends.
    body = json_dumps(json, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode(
        "utf-8"
    )
    headers = {"Content-Length": str(len(body)), "Content-Type": "application/json"}
    return headers, ByteStream(body)


def encode_request(
    content: RequestContent | None = None,
    data: RequestData | None = None,
    files: RequestFiles | None = None,
    json: typing.Any | None = None,
    boundary: bytes | None = None,
) -> tuple[dict[str, str], SyncByteStream | AsyncByteStream]:
    """
    Handles encoding the given `content`, `data`, `files`, and `json`,
    returning a two-tuple of (<headers>, <stream>).
    """
    if data is not None and not isinstance(data, Mapping):
        # requests-style `data=<bytes>` still works, treated as `content=`.
        message = "Use 'content=<...>' to upload raw bytes/text content."
        warnings.warn(message, DeprecationWarning, stacklevel=2)
        return encode_content(data)

    if content is not None:
        return encode_content(content)
    if files:
        return encode_multipart_data(data or {}, files, boundary)
    if data:
        return encode_urlencoded_data(data)
    if json is not None:
        return encode_json(json)
    return {}, ByteStream(b"")


def encode_response(
    content: ResponseContent | None = None,
    text: str | None = None,
    html: str | None = None,
    json: typing.Any | None = None,
) -> tuple[dict[str, str], SyncByteStream | AsyncByteStream]:
    """
    Handles encoding the given `content`, returning a two-tuple of
    (<headers>, <stream>).
    """
    if content is not None:
        return encode_content(content)
    if text is not None:
        return _encode_text_body(text, "text/plain; charset=utf-8")
    if html is not None:
        return _encode_text_body(html, "text/html; charset=utf-8")
    if json is not None:
        return encode_json(json)
    return {}, ByteStream(b"")
