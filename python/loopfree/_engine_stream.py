"""The body of a streamed response, read from the Rust engine chunk by chunk."""

from __future__ import annotations

import typing

from ._content import AsyncByteStream, SyncByteStream
from ._exceptions import RequestError
from ._response import Response
from ._waiting import wait_async, wait_sync

if typing.TYPE_CHECKING:
    from ._loopfree import BodyReader
    from ._request import Request

__all__ = ["EngineByteStream", "engine_response"]


class EngineByteStream(SyncByteStream, AsyncByteStream):
    """
    Raw (still Content-Encoding-encoded) body chunks, as httpx's transports
    yield them. Each chunk is read on the runtime and waited for like a
    request, so sync, gevent, asyncio and trio callers all stream.
    """

    def __init__(self, reader: BodyReader, request: Request) -> None:
        self._reader = reader
        self._request = request

    def __iter__(self) -> typing.Iterator[bytes]:
        try:
            while (chunk := wait_sync(self._reader.next_chunk())) is not None:
                yield chunk
        except RequestError as exc:
            exc.request = self._request
            raise

    async def __aiter__(self) -> typing.AsyncIterator[bytes]:
        try:
            while (chunk := await wait_async(self._reader.next_chunk())) is not None:
                yield chunk
        except RequestError as exc:
            exc.request = self._request
            raise

    def close(self) -> None:
        self._reader.close()

    async def aclose(self) -> None:
        self._reader.close()


def engine_response(
    head: tuple[int, bytes, bytes, list[tuple[bytes, bytes]], bytes, int],
    request: Request,
    elapsed: float,
    default_encoding: str | typing.Callable[[bytes], str] = "utf-8",
    reader: BodyReader | None = None,
) -> Response:
    """
    The `Response` for one head the engine handed back: already read (and
    decoded) when `reader` is None, else streamed from `reader`. A streamed
    response's `elapsed` is left for whoever closes it to set.
    """
    status, version, reason, headers, body, downloaded = head
    if reader is None:
        return Response._from_engine(
            status, headers, body, request, version, reason, elapsed, default_encoding, downloaded
        )
    return Response(
        status,
        headers=headers,
        stream=EngineByteStream(reader, request),
        request=request,
        extensions={"http_version": version, "reason_phrase": reason},
        default_encoding=default_encoding,
    )
