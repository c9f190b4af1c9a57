"""`Response`, as in httpx, plus the fast constructor used by the Rust engine."""

from __future__ import annotations

import codecs
import datetime
import email.message
import json as jsonlib
import re
import typing
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from types import TracebackType

from ._content import (
    AsyncByteStream,
    ByteStream,
    ResponseContent,
    SyncByteStream,
    UnattachedStream,
    encode_response,
)
from ._cookies import Cookies
from ._decoders import (
    SUPPORTED_DECODERS,
    ByteChunker,
    ContentDecoder,
    IdentityDecoder,
    LineDecoder,
    MultiDecoder,
    TextChunker,
    TextDecoder,
)
from ._exceptions import (
    HTTPStatusError,
    RequestError,
    ResponseNotRead,
    StreamClosed,
    StreamConsumed,
)
from ._headers import Headers, HeaderTypes
from ._request import Request
from ._status_codes import codes
from ._url import URL

__all__ = ["Response", "ResponseExtensions"]

ResponseExtensions = Mapping[str, typing.Any]

# Statuses whose Location header makes them a followable redirect.
_REDIRECT_STATUSES = frozenset(
    {
        codes.MOVED_PERMANENTLY,
        codes.FOUND,
        codes.SEE_OTHER,
        codes.TEMPORARY_REDIRECT,
        codes.PERMANENT_REDIRECT,
    }
)

# Stateless codecs, for which a one-shot `bytes.decode()` gives exactly what
# httpx's incremental decoder does, several times faster. Others differ, e.g.
# the incremental UTF-16 and UTF-32 decoders insist on a BOM.
_ONE_SHOT_CODECS = frozenset({"utf-8", "ascii", "iso8859-1", "cp1252"})

_ERROR_TYPES = {
    1: "Informational response",
    3: "Redirect response",
    4: "Client error",
    5: "Server error",
}


def _is_known_encoding(encoding: str) -> bool:
    try:
        codecs.lookup(encoding)
    except LookupError:
        return False
    return True


def _parse_content_type_charset(content_type: str) -> str | None:
    # Most content types carry no charset at all; that answer needs no parser.
    if "charset" not in content_type.lower():
        return None
    msg = email.message.Message()
    msg["content-type"] = content_type
    return msg.get_content_charset(failobj=None)


def _parse_header_links(value: str) -> list[dict[str, str]]:
    """
    Parse a Link header (`<url>; rel="next"; type="x", <url2>`) into one dict
    per link, with the URL under "url" and each parameter under its name.
    """
    links: list[dict[str, str]] = []
    strip_chars = " '\""
    value = value.strip(strip_chars)
    if not value:
        return links
    for link_value in re.split(", *<", value):
        url, _, params = link_value.partition(";")
        link = {"url": url.strip("<> '\"")}
        for param in params.split(";"):
            # A parameter that is not exactly `key=value` ends the list.
            pair = param.split("=")
            if len(pair) != 2:
                break
            link[pair[0].strip(strip_chars)] = pair[1].strip(strip_chars)
        links.append(link)
    return links


class _AttachRequest:
    """
    Attach the response's request to any `RequestError` raised in the block,
    e.g. a `DecodingError` while streaming.
    """

    __slots__ = ("_request",)

    def __init__(self, request: Request | None) -> None:
        self._request = request

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._request is not None and isinstance(exc, RequestError):
            exc.request = self._request


class Response:
    # Class-level defaults for state that is computed lazily, or that
    # `_from_engine` leaves unset (`_stream`).
    _text: str | None = None
    _decoder: ContentDecoder | None = None
    _cookies: Cookies | None = None
    # Seconds (a float) until first read: a timedelta per response costs
    # more than the rest of `_from_engine`, and few callers look.
    _elapsed: datetime.timedelta | float | None = None
    _stream: SyncByteStream | AsyncByteStream | None = None
    # Unlike the others, `_encoding` may legitimately be set to None, so
    # "not computed yet" is the attribute's absence.
    _encoding: str | None

    def __init__(
        self,
        status_code: int,
        *,
        headers: HeaderTypes | None = None,
        content: ResponseContent | None = None,
        text: str | None = None,
        html: str | None = None,
        json: typing.Any = None,
        stream: SyncByteStream | AsyncByteStream | None = None,
        request: Request | None = None,
        extensions: ResponseExtensions | None = None,
        history: list[Response] | None = None,
        default_encoding: str | Callable[[bytes], str] = "utf-8",
    ) -> None:
        self.status_code = status_code
        self.headers = Headers(headers)
        self._request = request
        # Set by the client when a redirect is received but not followed.
        self.next_request: Request | None = None
        self.extensions: dict[str, typing.Any] = {} if extensions is None else dict(extensions)
        self.history = [] if history is None else list(history)
        self.is_closed = False
        self.is_stream_consumed = False
        self.default_encoding = default_encoding
        self._content: bytes | None = None
        self._num_bytes_downloaded = 0

        if stream is None:
            default_headers, self._stream = encode_response(content, text, html, json)
            self._prepare(default_headers)
            if isinstance(self._stream, ByteStream):
                # Load the response body, except for streaming content.
                self.read()
                # httpx counts only bytes received from a transport, never a
                # body given to the constructor.
                self._num_bytes_downloaded = 0
        else:
            # `stream=` is the transport-level API: it adds no content headers.
            self._stream = stream

    @classmethod
    def _from_engine(
        cls,
        status_code: int,
        raw_headers: list[tuple[bytes, bytes]],
        content: bytes,
        request: Request,
        http_version: bytes,
        reason_phrase: bytes,
        elapsed: float,
        default_encoding: str | Callable[[bytes], str],
        num_bytes_downloaded: int,
    ) -> Response:
        """
        Build a complete, already read and closed response from what the
        engine hands back: `content` is the decoded body, `raw_headers` is
        taken over as-is and `elapsed` is in seconds. Nothing is parsed or
        converted until it is asked for. Positional only: the client's hot
        path calls it once per request.
        """
        self = object.__new__(cls)
        self.status_code = status_code
        self.headers = Headers._from_raw(raw_headers)
        self._request = request
        self.next_request = None
        self.extensions = {"http_version": http_version, "reason_phrase": reason_phrase}
        self.history = []
        self.is_closed = True
        self.is_stream_consumed = True
        self.default_encoding = default_encoding
        self._content = content
        # Bytes on the wire, before Content-Encoding decoding, as in httpx.
        self._num_bytes_downloaded = num_bytes_downloaded
        self._elapsed = elapsed
        return self

    def _prepare(self, default_headers: dict[str, str]) -> None:
        for key, value in default_headers.items():
            # An explicit Content-Length wins over chunked encoding.
            if key.lower() == "transfer-encoding" and "content-length" in self.headers:
                continue
            self.headers.setdefault(key, value)

    @property
    def stream(self) -> SyncByteStream | AsyncByteStream:
        stream = self._stream
        if stream is None:
            # Engine responses get their (already consumed) stream on demand.
            stream = self._stream = ByteStream(self.content)
        return stream

    @stream.setter
    def stream(self, stream: SyncByteStream | AsyncByteStream) -> None:
        self._stream = stream

    @property
    def elapsed(self) -> datetime.timedelta:
        """
        Returns the time taken for the complete request/response
        cycle to complete.
        """
        elapsed = self._elapsed
        if elapsed is None:
            raise RuntimeError(
                "'.elapsed' may only be accessed after the response has been read or closed."
            )
        if isinstance(elapsed, float):
            elapsed = self._elapsed = datetime.timedelta(seconds=elapsed)
        return elapsed

    @elapsed.setter
    def elapsed(self, elapsed: datetime.timedelta) -> None:
        self._elapsed = elapsed

    @property
    def request(self) -> Request:
        """
        Returns the request instance associated to the current response.
        """
        if self._request is None:
            raise RuntimeError("The request instance has not been set on this response.")
        return self._request

    @request.setter
    def request(self, value: Request) -> None:
        self._request = value

    @property
    def http_version(self) -> str:
        http_version: bytes | None = self.extensions.get("http_version")
        if http_version is None:
            return "HTTP/1.1"
        return http_version.decode("ascii", errors="ignore")

    @property
    def reason_phrase(self) -> str:
        reason_phrase: bytes | None = self.extensions.get("reason_phrase")
        if reason_phrase is None:
            return codes.get_reason_phrase(self.status_code)
        return reason_phrase.decode("ascii", errors="ignore")

    @property
    def url(self) -> URL:
        """
        Returns the URL for which the request was made.
        """
        return self.request.url

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise ResponseNotRead()
        return self._content

    @property
    def text(self) -> str:
        if self._text is None:
            content = self.content
            if not content:
                self._text = ""
            else:
                encoding = self.encoding or "utf-8"
                if codecs.lookup(encoding).name in _ONE_SHOT_CODECS:
                    self._text = content.decode(encoding, "replace")
                else:
                    decoder = TextDecoder(encoding)
                    self._text = decoder.decode(content) + decoder.flush()
        return self._text

    @property
    def encoding(self) -> str | None:
        """
        Return an encoding to use for decoding the byte content into text.
        The priority for determining this is given by...

        * `.encoding = <>` has been set explicitly.
        * The encoding as specified by the charset parameter in the Content-Type header.
        * The encoding as determined by `default_encoding`, which may either be
          a string like "utf-8" indicating the encoding to use, or may be a callable
          which enables charset autodetection.
        """
        if "_encoding" in self.__dict__:
            return self._encoding
        encoding = self.charset_encoding
        if encoding is None or not _is_known_encoding(encoding):
            if isinstance(self.default_encoding, str):
                encoding = self.default_encoding
            elif self._content is not None:
                encoding = self.default_encoding(self._content)
        self._encoding = encoding or "utf-8"
        return self._encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        """
        Set the encoding to use for decoding the byte content into text.

        If the `text` attribute has been accessed, attempting to set the
        encoding will throw a ValueError.
        """
        if self._text is not None:
            raise ValueError("Setting encoding after `text` has been accessed is not allowed.")
        self._encoding = value

    @property
    def charset_encoding(self) -> str | None:
        """
        Return the encoding, as specified by the Content-Type header.
        """
        content_type = self.headers.get("Content-Type")
        if content_type is None:
            return None
        return _parse_content_type_charset(content_type)

    def _get_content_decoder(self) -> ContentDecoder:
        """
        The decoder for the response's Content-Encoding; unknown codings are
        passed through undecoded.
        """
        if self._decoder is None:
            decoders: list[ContentDecoder] = []
            for value in self.headers.get_list("content-encoding", split_commas=True):
                decoder_cls = SUPPORTED_DECODERS.get(value.strip().lower())
                if decoder_cls is not None:
                    decoders.append(decoder_cls())
            if len(decoders) == 1:
                self._decoder = decoders[0]
            elif decoders:
                self._decoder = MultiDecoder(children=decoders)
            else:
                self._decoder = IdentityDecoder()
        return self._decoder

    @property
    def is_informational(self) -> bool:
        """
        A property which is `True` for 1xx status codes, `False` otherwise.
        """
        return 100 <= self.status_code <= 199

    @property
    def is_success(self) -> bool:
        """
        A property which is `True` for 2xx status codes, `False` otherwise.
        """
        return 200 <= self.status_code <= 299

    @property
    def is_redirect(self) -> bool:
        """
        A property which is `True` for 3xx status codes, `False` otherwise.

        Note that not all responses with a 3xx status code indicate a URL redirect.

        Use `response.has_redirect_location` to determine responses with a properly
        formed URL redirection.
        """
        return 300 <= self.status_code <= 399

    @property
    def is_client_error(self) -> bool:
        """
        A property which is `True` for 4xx status codes, `False` otherwise.
        """
        return 400 <= self.status_code <= 499

    @property
    def is_server_error(self) -> bool:
        """
        A property which is `True` for 5xx status codes, `False` otherwise.
        """
        return 500 <= self.status_code <= 599

    @property
    def is_error(self) -> bool:
        """
        A property which is `True` for 4xx and 5xx status codes, `False` otherwise.
        """
        return 400 <= self.status_code <= 599

    @property
    def has_redirect_location(self) -> bool:
        """
        Returns True for 3xx responses with a properly formed URL redirection,
        `False` otherwise.
        """
        return self.status_code in _REDIRECT_STATUSES and "Location" in self.headers

    def raise_for_status(self) -> Response:
        """
        Raise the `HTTPStatusError` if one occurred.
        """
        request = self._request
        if request is None:
            raise RuntimeError(
                "Cannot call `raise_for_status` as the request "
                "instance has not been set on this response."
            )
        if self.is_success:
            return self

        error_type = _ERROR_TYPES.get(self.status_code // 100, "Invalid status code")
        message = f"{error_type} '{self.status_code} {self.reason_phrase}' for url '{self.url}'\n"
        if self.has_redirect_location:
            message += f"Redirect location: '{self.headers['location']}'\n"
        message += (
            "For more information check: "
            f"https://developer.mozilla.org/en-US/docs/Web/HTTP/Status/{self.status_code}"
        )
        raise HTTPStatusError(message, request=request, response=self)

    def json(self, **kwargs: typing.Any) -> typing.Any:
        return jsonlib.loads(self.content, **kwargs)

    @property
    def cookies(self) -> Cookies:
        if self._cookies is None:
            self._cookies = Cookies()
            self._cookies.extract_cookies(self)
        return self._cookies

    @property
    def links(self) -> dict[str | None, dict[str, str]]:
        """
        Returns the parsed header links of the response, if any
        """
        header = self.headers.get("link")
        if header is None:
            return {}
        return {(link.get("rel") or link.get("url")): link for link in _parse_header_links(header)}

    @property
    def num_bytes_downloaded(self) -> int:
        return self._num_bytes_downloaded

    def __repr__(self) -> str:
        return f"<Response [{self.status_code} {self.reason_phrase}]>"

    def __getstate__(self) -> dict[str, typing.Any]:
        # The stream and decoder are tied to live I/O, and a CookieJar holds
        # a lock: none of them can be pickled. Cookies are re-parsed on demand.
        return {
            name: value
            for name, value in self.__dict__.items()
            if name not in ("extensions", "_stream", "is_closed", "_decoder", "_cookies")
        }

    def __setstate__(self, state: dict[str, typing.Any]) -> None:
        self.__dict__.update(state)
        self.is_closed = True
        self.extensions = {}
        self.stream = UnattachedStream()

    def read(self) -> bytes:
        """
        Read and return the response content.
        """
        if self._content is None:
            self._content = b"".join(self.iter_bytes())
        return self._content

    def _iter_content(self, chunk_size: int | None) -> Iterator[bytes]:
        content = self.content
        chunk_size = len(content) if chunk_size is None else chunk_size
        for i in range(0, len(content), max(chunk_size, 1)):
            yield content[i : i + chunk_size]

    def iter_bytes(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """
        A byte-iterator over the decoded response content.
        This allows us to handle gzip, deflate, brotli, and zstd encoded responses.
        """
        if self._content is not None:
            yield from self._iter_content(chunk_size)
            return
        decoder = self._get_content_decoder()
        chunker = ByteChunker(chunk_size=chunk_size)
        with _AttachRequest(self._request):
            for raw_bytes in self.iter_raw():
                yield from chunker.decode(decoder.decode(raw_bytes))
            yield from chunker.decode(decoder.flush())
            yield from chunker.flush()

    def iter_text(self, chunk_size: int | None = None) -> Iterator[str]:
        """
        A str-iterator over the decoded response content
        that handles both gzip, deflate, etc but also detects the content's
        string encoding.
        """
        decoder = TextDecoder(encoding=self.encoding or "utf-8")
        chunker = TextChunker(chunk_size=chunk_size)
        with _AttachRequest(self._request):
            for byte_content in self.iter_bytes():
                yield from chunker.decode(decoder.decode(byte_content))
            yield from chunker.decode(decoder.flush())
            yield from chunker.flush()

    def iter_lines(self) -> Iterator[str]:
        decoder = LineDecoder()
        with _AttachRequest(self._request):
            for text in self.iter_text():
                yield from decoder.decode(text)
            yield from decoder.flush()

    def iter_raw(self, chunk_size: int | None = None) -> Iterator[bytes]:
        """
        A byte-iterator over the raw response content.
        """
        if self.is_stream_consumed:
            raise StreamConsumed()
        if self.is_closed:
            raise StreamClosed()
        stream = self.stream
        if not isinstance(stream, SyncByteStream):
            raise RuntimeError("Attempted to call a sync iterator on an async stream.")

        self.is_stream_consumed = True
        self._num_bytes_downloaded = 0
        chunker = ByteChunker(chunk_size=chunk_size)
        with _AttachRequest(self._request):
            for raw_stream_bytes in stream:
                self._num_bytes_downloaded += len(raw_stream_bytes)
                yield from chunker.decode(raw_stream_bytes)
        yield from chunker.flush()
        self.close()

    def close(self) -> None:
        """
        Close the response and release the connection.
        Automatically called if the response body is read to completion.
        """
        if self._stream is None:
            # An engine response: closed from the start, nothing to release.
            return
        if not isinstance(self.stream, SyncByteStream):
            raise RuntimeError("Attempted to call an sync close on an async stream.")
        if not self.is_closed:
            self.is_closed = True
            with _AttachRequest(self._request):
                self.stream.close()

    async def aread(self) -> bytes:
        """
        Read and return the response content.
        """
        if self._content is None:
            self._content = b"".join([part async for part in self.aiter_bytes()])
        return self._content

    async def aiter_bytes(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """
        A byte-iterator over the decoded response content.
        This allows us to handle gzip, deflate, brotli, and zstd encoded responses.
        """
        if self._content is not None:
            for chunk in self._iter_content(chunk_size):
                yield chunk
            return
        decoder = self._get_content_decoder()
        chunker = ByteChunker(chunk_size=chunk_size)
        with _AttachRequest(self._request):
            async for raw_bytes in self.aiter_raw():
                for chunk in chunker.decode(decoder.decode(raw_bytes)):
                    yield chunk
            for chunk in chunker.decode(decoder.flush()):
                yield chunk
            for chunk in chunker.flush():
                yield chunk

    async def aiter_text(self, chunk_size: int | None = None) -> AsyncIterator[str]:
        """
        A str-iterator over the decoded response content
        that handles both gzip, deflate, etc but also detects the content's
        string encoding.
        """
        decoder = TextDecoder(encoding=self.encoding or "utf-8")
        chunker = TextChunker(chunk_size=chunk_size)
        with _AttachRequest(self._request):
            async for byte_content in self.aiter_bytes():
                for chunk in chunker.decode(decoder.decode(byte_content)):
                    yield chunk
            for chunk in chunker.decode(decoder.flush()):
                yield chunk
            for chunk in chunker.flush():
                yield chunk

    async def aiter_lines(self) -> AsyncIterator[str]:
        decoder = LineDecoder()
        with _AttachRequest(self._request):
            async for text in self.aiter_text():
                for line in decoder.decode(text):
                    yield line
            for line in decoder.flush():
                yield line

    async def aiter_raw(self, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """
        A byte-iterator over the raw response content.
        """
        if self.is_stream_consumed:
            raise StreamConsumed()
        if self.is_closed:
            raise StreamClosed()
        stream = self.stream
        if not isinstance(stream, AsyncByteStream):
            raise RuntimeError("Attempted to call an async iterator on an sync stream.")

        self.is_stream_consumed = True
        self._num_bytes_downloaded = 0
        chunker = ByteChunker(chunk_size=chunk_size)
        with _AttachRequest(self._request):
            async for raw_stream_bytes in stream:
                self._num_bytes_downloaded += len(raw_stream_bytes)
                for chunk in chunker.decode(raw_stream_bytes):
                    yield chunk
        for chunk in chunker.flush():
            yield chunk
        await self.aclose()

    async def aclose(self) -> None:
        """
        Close the response and release the connection.
        Automatically called if the response body is read to completion.
        """
        if self._stream is None:
            # An engine response: closed from the start, nothing to release.
            return
        if not isinstance(self.stream, AsyncByteStream):
            raise RuntimeError("Attempted to call an async close on an sync stream.")
        if not self.is_closed:
            self.is_closed = True
            with _AttachRequest(self._request):
                await self.stream.aclose()
