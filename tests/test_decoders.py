"""
Content-Encoding decoding of responses built from an undecoded stream, and
the chunkers and line splitting used when streaming a response.
"""

from __future__ import annotations

import asyncio
import gzip
import typing
import zlib

import brotli  # type: ignore[import-untyped]
import httpx
import pytest
import zstandard
from httpx import _decoders as httpx_decoders
from loopfree._content import ByteStream, IteratorByteStream
from loopfree._decoders import (
    SUPPORTED_DECODERS,
    ByteChunker,
    LineDecoder,
    TextChunker,
    TextDecoder,
)
from loopfree._exceptions import DecodingError
from loopfree._request import Request
from loopfree._response import Response

BODY = b"The quick brown fox jumps over the lazy dog. " * 200


def deflate_raw(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


def zstd_frames(data: bytes) -> bytes:
    # Two concatenated frames: each needs a fresh decompressor.
    half = len(data) // 2
    compressor = zstandard.ZstdCompressor()
    return compressor.compress(data[:half]) + compressor.compress(data[half:])


ENCODERS: dict[str, typing.Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
    "identity": lambda data: data,
}


def chunks_of(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def test_all_codings_supported() -> None:
    assert set(SUPPORTED_DECODERS) == {"identity", "gzip", "deflate", "br", "zstd"}


@pytest.mark.parametrize("coding", sorted(ENCODERS))
@pytest.mark.parametrize("piece_size", [1, 7, 100_000])
def test_decoding_streamed_content(coding: str, piece_size: int) -> None:
    encoded = ENCODERS[coding](BODY)
    response = Response(
        200,
        headers={"Content-Encoding": coding},
        content=iter(chunks_of(encoded, piece_size)),
    )
    assert response.read() == BODY
    assert response.num_bytes_downloaded == len(encoded)
    # The header describes the raw stream and is left as received.
    assert response.headers["content-encoding"] == coding


@pytest.mark.parametrize("coding", sorted(ENCODERS))
def test_decoding_matches_httpx(coding: str) -> None:
    encoded = ENCODERS[coding](BODY)
    ours = Response(200, headers={"Content-Encoding": coding}, content=encoded)
    theirs = httpx.Response(200, headers={"Content-Encoding": coding}, content=encoded)
    assert ours.content == theirs.content == BODY


def test_raw_deflate() -> None:
    response = Response(200, headers={"Content-Encoding": "deflate"}, content=deflate_raw(BODY))
    assert response.content == BODY


def test_zstd_multiple_frames() -> None:
    response = Response(200, headers={"Content-Encoding": "zstd"}, content=zstd_frames(BODY))
    assert response.content == BODY


@pytest.mark.parametrize(
    "header",
    ["gzip, br", "gzip,br", "GZIP , BR"],
)
def test_multiple_encodings_are_undone_in_reverse(header: str) -> None:
    encoded = brotli.compress(gzip.compress(BODY))
    headers = [("Content-Encoding", header)]
    assert Response(200, headers=headers, content=encoded).content == BODY
    assert httpx.Response(200, headers=headers, content=encoded).content == BODY


def test_multiple_encoding_headers() -> None:
    encoded = zlib.compress(gzip.compress(BODY))
    headers = [("Content-Encoding", "gzip"), ("Content-Encoding", "deflate")]
    assert Response(200, headers=headers, content=encoded).content == BODY


def test_unknown_encoding_is_passed_through() -> None:
    response = Response(200, headers={"Content-Encoding": "x-unknown"}, content=b"raw")
    assert response.content == b"raw"


def test_empty_encoded_bodies() -> None:
    for coding in ENCODERS:
        response = Response(200, headers={"Content-Encoding": coding}, content=b"")
        assert response.content == b""


@pytest.mark.parametrize("coding", ["gzip", "deflate", "br", "zstd"])
def test_invalid_data_raises_decoding_error(coding: str) -> None:
    request = Request("GET", "https://example.org")
    with pytest.raises(DecodingError) as exc_info:
        Response(200, headers={"Content-Encoding": coding}, content=b"not compressed")
    with pytest.raises(httpx.DecodingError):
        httpx.Response(200, headers={"Content-Encoding": coding}, content=b"not compressed")
    # Without a request there is none to attach.
    with pytest.raises(RuntimeError):
        exc_info.value.request  # noqa: B018

    response = Response(
        200,
        headers={"Content-Encoding": coding},
        stream=IteratorByteStream([b"not compressed"]),
        request=request,
    )
    with pytest.raises(DecodingError) as exc_info:
        response.read()
    assert exc_info.value.request is request


def test_decoding_error_after_valid_start() -> None:
    encoded = gzip.compress(BODY)
    body = encoded[:20] + b"\x00garbage" * 20
    response = Response(200, headers={"Content-Encoding": "gzip"}, content=iter([body]))
    with pytest.raises(DecodingError):
        response.read()


def test_truncated_zstd_is_an_error() -> None:
    encoded = zstandard.ZstdCompressor().compress(BODY)[:-10]
    with pytest.raises(DecodingError, match="Zstandard data is incomplete"):
        Response(200, headers={"Content-Encoding": "zstd"}, content=encoded)


def test_decoding_async_stream() -> None:
    async def body() -> typing.AsyncIterator[bytes]:
        for piece in chunks_of(gzip.compress(BODY), 10):
            yield piece

    response = Response(200, headers={"Content-Encoding": "gzip"}, content=body())
    assert asyncio.run(response.aread()) == BODY


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 5, 16])
@pytest.mark.parametrize(
    "pieces",
    [[], [b""], [b"abcdef"], [b"a", b"bc", b"", b"defgh", b"ijklmnopqrstuvwxyz"]],
)
def test_byte_chunker_matches_httpx(chunk_size: int | None, pieces: list[bytes]) -> None:
    ours = ByteChunker(chunk_size)
    theirs = httpx_decoders.ByteChunker(chunk_size)
    for piece in pieces:
        assert ours.decode(piece) == theirs.decode(piece)
    assert ours.flush() == theirs.flush()
    assert ours.flush() == []


@pytest.mark.parametrize("chunk_size", [None, 1, 3, 5])
@pytest.mark.parametrize("pieces", [[], ["abcdef"], ["a", "bcé", "", "défgh"]])
def test_text_chunker_matches_httpx(chunk_size: int | None, pieces: list[str]) -> None:
    ours = TextChunker(chunk_size)
    theirs = httpx_decoders.TextChunker(chunk_size)
    for piece in pieces:
        assert ours.decode(piece) == theirs.decode(piece)
    assert ours.flush() == theirs.flush()


def test_byte_chunker_many_small_pieces() -> None:
    chunker = ByteChunker(chunk_size=1000)
    out: list[bytes] = []
    for _ in range(2500):
        out.extend(chunker.decode(b"x"))
    out.extend(chunker.flush())
    assert [len(chunk) for chunk in out] == [1000, 1000, 500]


def test_text_decoder_handles_split_multibyte_characters() -> None:
    decoder = TextDecoder("utf-8")
    encoded = "aé€😀".encode()
    text = "".join(decoder.decode(encoded[i : i + 1]) for i in range(len(encoded)))
    assert text + decoder.flush() == "aé€😀"


def test_text_decoder_replaces_invalid_bytes() -> None:
    decoder = TextDecoder("utf-8")
    assert decoder.decode(b"a\xffb") + decoder.flush() == "a\ufffdb"
    decoder = TextDecoder("utf-8")
    assert decoder.decode(b"a\xe2\x82") + decoder.flush() == "a\ufffd"


LINE_INPUTS: list[list[str]] = [
    [],
    [""],
    ["a\nb\nc"],
    ["a\nb\n"],
    ["a\r", "\nb"],
    ["a\r", "b\r\n", "\r"],
    ["a", "b", "c\n"],
    ["\n\n"],
    ["a\x0bb\x0cc\x1cd\x1de\x1ef\x85g\u2028h\u2029i"],
    ["trailing\r"],
    ["no newline"],
    ["\r\n", "\r\n"],
    ["x\r", "", "\n"],
]


@pytest.mark.parametrize("pieces", LINE_INPUTS)
def test_line_decoder_matches_httpx_and_splitlines(pieces: list[str]) -> None:
    ours = LineDecoder()
    theirs = httpx_decoders.LineDecoder()
    ours_lines: list[str] = []
    theirs_lines: list[str] = []
    for piece in pieces:
        ours_lines.extend(ours.decode(piece))
        theirs_lines.extend(theirs.decode(piece))
    ours_lines.extend(ours.flush())
    theirs_lines.extend(theirs.flush())
    assert ours_lines == theirs_lines
    assert ours_lines == "".join(pieces).splitlines()


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_iter_lines_over_chunked_stream(size: int) -> None:
    text = "first line\r\nsecond\rthird\n\nlast"
    data = text.encode()
    response = Response(200, stream=IteratorByteStream(chunks_of(data, size)))
    assert list(response.iter_lines()) == text.splitlines()


def test_byte_stream_reads_without_decoding_when_no_coding() -> None:
    response = Response(200, stream=ByteStream(b"plain"))
    assert response.read() == b"plain"
    assert response.num_bytes_downloaded == 5
