"""
Content-Encoding decoders, and the incremental chunkers and text/line decoders
used by `Response` streaming.

Only responses built from an undecoded stream use the content decoders: the
Rust engine hands back bodies that are already decoded.
"""

from __future__ import annotations

import codecs
import typing
import zlib
from collections.abc import Sequence

from ._exceptions import DecodingError

try:
    import brotli  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - optional dependency
    brotli = None

try:
    import zstandard
except ImportError:  # pragma: no cover - optional dependency
    zstandard = None  # type: ignore[assignment]

__all__ = [
    "SUPPORTED_DECODERS",
    "BrotliDecoder",
    "ByteChunker",
    "ContentDecoder",
    "DeflateDecoder",
    "GZipDecoder",
    "IdentityDecoder",
    "LineDecoder",
    "MultiDecoder",
    "TextChunker",
    "TextDecoder",
    "ZStandardDecoder",
]


class ContentDecoder:
    """Base class: `decode()` each chunk, then `flush()` once at the end."""

    def decode(self, data: bytes) -> bytes:
        raise NotImplementedError()

    def flush(self) -> bytes:
        raise NotImplementedError()


class IdentityDecoder(ContentDecoder):
    """
    Handle unencoded data.
    """

    def decode(self, data: bytes) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class DeflateDecoder(ContentDecoder):
    """
    Handle 'deflate' decoding, either zlib-wrapped (as the RFC says) or raw
    deflate (as some servers send it).
    """

    def __init__(self) -> None:
        self.first_attempt = True
        self.decompressor = zlib.decompressobj()

    def decode(self, data: bytes) -> bytes:
        was_first_attempt = self.first_attempt
        self.first_attempt = False
        try:
            return self.decompressor.decompress(data)
        except zlib.error as exc:
            if was_first_attempt:
                # Not zlib-wrapped: retry the first chunk as raw deflate.
                self.decompressor = zlib.decompressobj(-zlib.MAX_WBITS)
                return self.decode(data)
            raise DecodingError(str(exc)) from exc

    def flush(self) -> bytes:
        try:
            return self.decompressor.flush()
        except zlib.error as exc:  # pragma: no cover - zlib's flush rarely raises
            raise DecodingError(str(exc)) from exc


class GZipDecoder(ContentDecoder):
    """
    Handle 'gzip' decoding.
    """

    def __init__(self) -> None:
        self.decompressor = zlib.decompressobj(zlib.MAX_WBITS | 16)

    def decode(self, data: bytes) -> bytes:
        try:
            return self.decompressor.decompress(data)
        except zlib.error as exc:
            raise DecodingError(str(exc)) from exc

    def flush(self) -> bytes:
        try:
            return self.decompressor.flush()
        except zlib.error as exc:  # pragma: no cover - zlib's flush rarely raises
            raise DecodingError(str(exc)) from exc


class BrotliDecoder(ContentDecoder):
    """
    Handle 'br' decoding, with the `brotli` package.
    """

    def __init__(self) -> None:
        if brotli is None:  # pragma: no cover - optional dependency
            raise ImportError(
                "Using 'BrotliDecoder', but the 'brotli' package is not installed. "
                "Make sure to install it with `pip install brotli`."
            ) from None
        self.decompressor = brotli.Decompressor()

    def decode(self, data: bytes) -> bytes:
        if not data:
            return b""
        try:
            result: bytes = self.decompressor.process(data)
        except brotli.error as exc:
            raise DecodingError(str(exc)) from exc
        return result

    def flush(self) -> bytes:
        # `process()` decompresses eagerly, so nothing is ever left over; like
        # httpx, a truncated stream is not reported.
        return b""


class ZStandardDecoder(ContentDecoder):
    """
    Handle 'zstd' (RFC 8878) decoding, with the `zstandard` package.
    """

    def __init__(self) -> None:
        if zstandard is None:  # pragma: no cover - optional dependency
            raise ImportError(
                "Using 'ZStandardDecoder', but the 'zstandard' package is not installed. "
                "Make sure to install it with `pip install zstandard`."
            ) from None
        self.decompressor = zstandard.ZstdDecompressor().decompressobj()
        self.seen_data = False

    def decode(self, data: bytes) -> bytes:
        assert zstandard is not None
        self.seen_data = True
        output = []
        try:
            output.append(self.decompressor.decompress(data))
            # A body may hold several concatenated frames; each needs a fresh
            # decompressor.
            while self.decompressor.eof and self.decompressor.unused_data:
                unused_data = self.decompressor.unused_data
                self.decompressor = zstandard.ZstdDecompressor().decompressobj()
                output.append(self.decompressor.decompress(unused_data))
        except zstandard.ZstdError as exc:
            raise DecodingError(str(exc)) from exc
        return b"".join(output)

    def flush(self) -> bytes:
        if not self.seen_data:
            return b""
        remaining = self.decompressor.flush()
        if not self.decompressor.eof:
            raise DecodingError("Zstandard data is incomplete")
        return bytes(remaining)


class MultiDecoder(ContentDecoder):
    """
    Handle the case where multiple encodings have been applied.
    """

    def __init__(self, children: Sequence[ContentDecoder]) -> None:
        """
        'children' should be a sequence of decoders in the order in which
        each was applied.
        """
        # Decoding undoes the encodings in reverse order.
        self.children = list(reversed(children))

    def decode(self, data: bytes) -> bytes:
        for child in self.children:
            data = child.decode(data)
        return data

    def flush(self) -> bytes:
        data = b""
        for child in self.children:
            data = child.decode(data) + child.flush()
        return data


_AnyStr = typing.TypeVar("_AnyStr", str, bytes)


class _Chunker(typing.Generic[_AnyStr]):
    """Re-cuts a stream of pieces into pieces of exactly `chunk_size`."""

    def __init__(self, empty: _AnyStr, chunk_size: int | None = None) -> None:
        self._empty: _AnyStr = empty
        self._chunk_size = chunk_size
        # Pending pieces are joined only once a whole chunk is there, which
        # keeps many small pieces and a large chunk size linear.
        self._pending: list[_AnyStr] = []
        self._pending_length = 0

    def decode(self, content: _AnyStr) -> list[_AnyStr]:
        size = self._chunk_size
        if size is None:
            return [content] if content else []
        self._pending.append(content)
        self._pending_length += len(content)
        if self._pending_length < size:
            return []
        value = self._empty.join(self._pending)
        whole = len(value) - len(value) % size
        rest = value[whole:]
        self._pending = [rest] if rest else []
        self._pending_length = len(rest)
        return [value[i : i + size] for i in range(0, whole, size)]

    def flush(self) -> list[_AnyStr]:
        value = self._empty.join(self._pending)
        self._pending = []
        self._pending_length = 0
        return [value] if value else []


class ByteChunker(_Chunker[bytes]):
    """
    Handles returning byte content in fixed-size chunks.
    """

    def __init__(self, chunk_size: int | None = None) -> None:
        super().__init__(b"", chunk_size)


class TextChunker(_Chunker[str]):
    """
    Handles returning text content in fixed-size chunks.
    """

    def __init__(self, chunk_size: int | None = None) -> None:
        super().__init__("", chunk_size)


class TextDecoder:
    """
    Handles incrementally decoding bytes into text
    """

    def __init__(self, encoding: str = "utf-8") -> None:
        self.decoder = codecs.getincrementaldecoder(encoding)(errors="replace")

    def decode(self, data: bytes) -> str:
        return self.decoder.decode(data)

    def flush(self) -> str:
        return self.decoder.decode(b"", True)


# Every character `str.splitlines()` breaks on.
_NEWLINE_CHARS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"


class LineDecoder:
    """
    Handles incrementally reading lines from text.

    Splits exactly like `str.splitlines()` would on the whole text, keeping
    a `\\r` at the end of a chunk back in case a `\\n` starts the next one.
    """

    def __init__(self) -> None:
        self.buffer: list[str] = []
        self.trailing_cr: bool = False

    def decode(self, text: str) -> list[str]:
        if self.trailing_cr:
            text = "\r" + text
            self.trailing_cr = False
        if text.endswith("\r"):
            self.trailing_cr = True
            text = text[:-1]

        if not text:
            return []

        trailing_newline = text[-1] in _NEWLINE_CHARS
        lines = text.splitlines()

        if len(lines) == 1 and not trailing_newline:
            self.buffer.append(lines[0])
            return []

        if self.buffer:
            lines[0] = "".join(self.buffer) + lines[0]
            self.buffer = []

        if not trailing_newline:
            # The last piece is an incomplete line: keep it for later.
            self.buffer = [lines.pop()]

        return lines

    def flush(self) -> list[str]:
        if not self.buffer and not self.trailing_cr:
            return []
        lines = ["".join(self.buffer)]
        self.buffer = []
        self.trailing_cr = False
        return lines


SUPPORTED_DECODERS: dict[str, type[ContentDecoder]] = {"identity": IdentityDecoder}
SUPPORTED_DECODERS["gzip"] = GZipDecoder
SUPPORTED_DECODERS["deflate"] = DeflateDecoder
if brotli is not None:
    SUPPORTED_DECODERS["br"] = BrotliDecoder
if zstandard is not None:
    SUPPORTED_DECODERS["zstd"] = ZStandardDecoder
