"""`Request`, as in httpx."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterable, Iterable, Mapping

from ._content import (
    AsyncByteStream,
    ByteStream,
    RequestContent,
    RequestData,
    SyncByteStream,
    UnattachedStream,
    encode_request,
)
from ._cookies import Cookies, CookieTypes
from ._exceptions import RequestNotRead
from ._headers import Headers, HeaderTypes
from ._multipart import RequestFiles, get_multipart_boundary_from_content_type
from ._query_params import QueryParamTypes
from ._url import URL

__all__ = ["Request", "RequestExtensions"]

RequestExtensions = Mapping[str, typing.Any]


# Methods that get `Content-Length: 0` when sent without a body.
_METHODS_WITH_BODY = frozenset(("POST", "PUT", "PATCH"))


# The stream of every body-less request from `Request._plain` (a ByteStream
# never changes, and one object per request would only feed the GC).
_EMPTY_STREAM = ByteStream(b"")


class Request:
    def __init__(
        self,
        method: str | bytes,
        url: URL | str,
        *,
        params: QueryParamTypes | None = None,
        headers: HeaderTypes | None = None,
        cookies: CookieTypes | None = None,
        content: RequestContent | None = None,
        data: RequestData | None = None,
        files: RequestFiles | None = None,
        json: typing.Any | None = None,
        stream: SyncByteStream | AsyncByteStream | None = None,
        extensions: RequestExtensions | None = None,
    ) -> None:
        self.method = (method if isinstance(method, str) else method.decode("ascii")).upper()
        self.url = URL(url) if params is None else URL(url, params=params)
        self.headers = Headers(headers)
        self.extensions: dict[str, typing.Any] = {} if extensions is None else dict(extensions)
        self._content: bytes | None = None

        if cookies:
            Cookies(cookies).set_cookie_header(self)

        self.stream: SyncByteStream | AsyncByteStream
        if stream is None:
            content_type: str | None = self.headers.get("content-type")
            default_headers, self.stream = encode_request(
                content=content,
                data=data,
                files=files,
                json=json,
                # A boundary given in the Content-Type header is the one to use.
                boundary=get_multipart_boundary_from_content_type(
                    content_type.encode(self.headers.encoding) if content_type else None
                ),
            )
            self._prepare(default_headers)
            # In-memory bodies are loaded now; streaming ones stay unread.
            if isinstance(self.stream, ByteStream):
                self.read()
        else:
            # `stream=` is the transport-level API (copying requests for
            # redirects, server-side requests): it adds no headers at all.
            self.stream = stream

    @classmethod
    def _plain(
        cls,
        method: str,
        url: URL,
        headers_raw: list[tuple[bytes, bytes]],
        extensions: dict[str, typing.Any],
    ) -> Request:
        """
        What `Request(method, url, headers=Headers._from_raw(headers_raw),
        extensions=extensions)` builds for a request without a body, built
        directly: the client's hot path. `headers_raw` must not name Host,
        Content-Length or Transfer-Encoding; it is copied.
        """
        self = object.__new__(cls)
        method = method.upper()
        self.method = method
        self.url = url
        raw = [url._host_header()] if url._uri.host else []
        if method in _METHODS_WITH_BODY:
            raw.append((b"Content-Length", b"0"))
        raw.extend(headers_raw)
        self.headers = Headers._from_raw(raw)
        self.extensions = extensions
        self._content = b""
        self.stream = _EMPTY_STREAM
        return self

    def _prepare(self, default_headers: dict[str, str]) -> None:
        headers = self.headers
        for key, value in default_headers.items():
            # An explicit Content-Length wins over chunked encoding.
            if key.lower() == "transfer-encoding" and "Content-Length" in headers:
                continue
            headers.setdefault(key, value)

        auto_headers: list[tuple[bytes, bytes]] = []
        if "Host" not in headers and self.url.host:
            auto_headers.append((b"Host", self.url.netloc))
        has_content_length = "Content-Length" in headers or "Transfer-Encoding" in headers
        if not has_content_length and self.method in _METHODS_WITH_BODY:
            auto_headers.append((b"Content-Length", b"0"))

        # Host and Content-Length go first, ahead of the caller's headers.
        self.headers = Headers._from_raw(auto_headers + headers.raw)

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RequestNotRead()
        return self._content

    def read(self) -> bytes:
        """
        Read and return the request content.
        """
        if self._content is None:
            stream = self.stream
            assert isinstance(stream, Iterable)
            self._content = b"".join(stream)
            if not isinstance(stream, ByteStream):
                # Keep the body replayable even if the original stream is not.
                self.stream = ByteStream(self._content)
        return self._content

    async def aread(self) -> bytes:
        """
        Read and return the request content.
        """
        if self._content is None:
            stream = self.stream
            assert isinstance(stream, AsyncIterable)
            self._content = b"".join([part async for part in stream])
            if not isinstance(stream, ByteStream):
                # Keep the body replayable even if the original stream is not.
                self.stream = ByteStream(self._content)
        return self._content

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__}({self.method!r}, {str(self.url)!r})>"

    def __getstate__(self) -> dict[str, typing.Any]:
        return {
            name: value
            for name, value in self.__dict__.items()
            if name not in ("extensions", "stream")
        }

    def __setstate__(self, state: dict[str, typing.Any]) -> None:
        self.__dict__.update(state)
        # The stream does not survive pickling: reading it raises StreamClosed.
        self.extensions = {}
        self.stream = UnattachedStream()
