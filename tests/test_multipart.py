"""
`multipart/form-data` bodies must be byte for byte what httpx writes, given
the same boundary.
"""

from __future__ import annotations

import asyncio
import io
import typing
from pathlib import Path

import httpx
import pytest
from httpx import _multipart as httpx_multipart
from loopfree._content import encode_request
from loopfree._multipart import (
    DataField,
    FileField,
    MultipartStream,
    get_multipart_boundary_from_content_type,
)
from loopfree._request import Request

BOUNDARY = b"0123456789abcdef0123456789abcdef"


def encode_both(
    data: typing.Any, files: typing.Any, boundary: bytes = BOUNDARY
) -> tuple[tuple[dict[str, str], bytes], tuple[dict[str, str], bytes]]:
    ours_headers, ours_stream = encode_request(data=data, files=files, boundary=boundary)
    theirs_headers, theirs_stream = httpx._content.encode_request(
        data=data, files=files, boundary=boundary
    )
    return (
        (ours_headers, b"".join(ours_stream)),  # type: ignore[arg-type]
        (theirs_headers, b"".join(theirs_stream)),  # type: ignore[arg-type]
    )


CASES: list[tuple[str, typing.Callable[[], tuple[typing.Any, typing.Any]]]] = [
    ("bytes file", lambda: ({}, {"file": b"<file content>"})),
    ("str file", lambda: ({}, {"file": "<file content é>"})),
    ("BytesIO", lambda: ({}, {"file": io.BytesIO(b"<content>")})),
    ("named tuple", lambda: ({}, {"file": ("name.txt", b"x")})),
    ("no filename", lambda: ({}, {"file": (None, b"x")})),
    ("empty filename", lambda: ({}, {"file": ("", b"x")})),
    ("unknown type", lambda: ({}, {"file": ("name.unknownext", b"x")})),
    ("explicit type", lambda: ({}, {"file": ("a.txt", b"x", "image/png")})),
    ("None type", lambda: ({}, {"file": ("a.txt", b"x", None)})),
    (
        "extra headers",
        lambda: ({}, {"file": ("a.txt", b"x", "text/csv", {"X-Extra": "1"})}),
    ),
    (
        "header overrides type",
        lambda: ({}, {"file": ("a.txt", b"x", "text/csv", {"content-type": "text/xml"})}),
    ),
    (
        "data and files",
        lambda: (
            {"a": "1", "b": ["2", "3"], "c": 4, "d": 1.5, "e": True, "f": None, "g": b"raw"},
            {"file": ("a.txt", b"x")},
        ),
    ),
    ("files as list", lambda: ({}, [("f", b"1"), ("f", ("b.bin", b"2"))])),
    (
        "escaped names",
        lambda: (
            {'na"me\\\n\x1b\x00': "v"},
            {'fi"le\r': ('file "name"\t.txt', b"x")},
        ),
    ),
    ("unicode names", lambda: ({"ñame": "välue"}, {"fïle": ("fïle.txt", b"x")})),
]


@pytest.mark.parametrize(("name", "make"), CASES, ids=[name for name, _ in CASES])
def test_matches_httpx_byte_for_byte(
    name: str, make: typing.Callable[[], tuple[typing.Any, typing.Any]]
) -> None:
    ours, _ = encode_both(*make())
    _, theirs = encode_both(*make())
    assert ours == theirs


def test_exact_layout() -> None:
    headers, stream = encode_request(
        data={"field": "value"}, files={"file": ("a.txt", b"<bytes>")}, boundary=b"XYZ"
    )
    body = b"".join(stream)  # type: ignore[arg-type]
    assert body == (
        b"--XYZ\r\n"
        b'Content-Disposition: form-data; name="field"\r\n\r\n'
        b"value\r\n"
        b"--XYZ\r\n"
        b'Content-Disposition: form-data; name="file"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\n"
        b"<bytes>\r\n"
        b"--XYZ--\r\n"
    )
    assert headers == {
        "Content-Length": str(len(body)),
        "Content-Type": "multipart/form-data; boundary=XYZ",
    }


def test_real_file_uses_its_name_and_length(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    path.write_bytes(b'{"a": 1}')
    with path.open("rb") as ours_file, path.open("rb") as theirs_file:
        ours, _ = encode_both({}, {"upload": ours_file})
        _, theirs = encode_both({}, {"upload": theirs_file})
    assert ours == theirs
    assert b'filename="report.json"\r\nContent-Type: application/json' in ours[1]
    assert ours[0]["Content-Length"] == str(len(ours[1]))


def test_file_without_known_length_is_chunked() -> None:
    class Unsized:
        def __init__(self) -> None:
            self._data = io.BytesIO(b"stream data")

        def read(self, size: int = -1) -> bytes:
            return self._data.read(size)

    headers, stream = encode_request(files={"f": ("f.bin", Unsized())}, boundary=b"B")  # type: ignore[dict-item]
    assert headers == {
        "Transfer-Encoding": "chunked",
        "Content-Type": "multipart/form-data; boundary=B",
    }
    assert b"stream data" in b"".join(stream)  # type: ignore[arg-type]


def test_file_is_rewound_so_the_body_can_be_resent() -> None:
    stream = MultipartStream(data={}, files={"f": io.BytesIO(b"abc")}, boundary=b"B")
    first = b"".join(stream)
    assert first == b"".join(stream)
    assert b"abc" in first


def test_async_iteration() -> None:
    stream = MultipartStream(data={"a": "b"}, files={"f": b"x"}, boundary=b"B")

    async def collect() -> bytes:
        return b"".join([part async for part in stream])

    assert asyncio.run(collect()) == b"".join(stream)


def test_random_boundary() -> None:
    first = MultipartStream(data={}, files={"f": b"x"})
    second = MultipartStream(data={}, files={"f": b"x"})
    assert len(first.boundary) == 32
    assert first.boundary != second.boundary
    assert first.content_type == "multipart/form-data; boundary=" + first.boundary.decode()


def test_extra_headers_mapping_is_not_modified() -> None:
    extra = {"X-Extra": "1"}
    field = FileField("f", ("a.txt", b"x", None, extra))
    assert extra == {"X-Extra": "1"}
    assert field.headers == {"X-Extra": "1", "Content-Type": "text/plain"}


@pytest.mark.parametrize(
    ("file", "message"),
    [
        (io.StringIO("text"), "Multipart file uploads require 'io.BytesIO', not 'io.StringIO'."),
        (
            io.TextIOWrapper(io.BytesIO(b"text")),
            "Multipart file uploads must be opened in binary mode, not text mode.",
        ),
    ],
)
def test_text_files_are_rejected(file: typing.Any, message: str) -> None:
    with pytest.raises(TypeError) as ours:
        FileField("f", file)
    with pytest.raises(TypeError) as theirs:
        httpx_multipart.FileField("f", file)
    assert str(ours.value) == str(theirs.value) == message


@pytest.mark.parametrize(
    ("name", "value"),
    [(1, "a"), ("a", {"b": "c"}), ("a", object())],
)
def test_invalid_data_fields(name: typing.Any, value: typing.Any) -> None:
    with pytest.raises(TypeError) as ours:
        DataField(name, value)
    with pytest.raises(TypeError) as theirs:
        httpx_multipart.DataField(name, value)
    assert str(ours.value) == str(theirs.value)


def test_data_field_rendering() -> None:
    field = DataField("n", 5)
    assert field.value == "5"
    assert list(field.render()) == [b'Content-Disposition: form-data; name="n"\r\n\r\n', b"5"]
    assert field.get_length() == len(b"".join(field.render()))


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        b"",
        b"text/plain",
        b"multipart/form-data",
        b"multipart/form-data; boundary=abc",
        b'multipart/form-data; boundary="quoted"',
        b"multipart/form-data; charset=utf-8; BOUNDARY=upper",
        b"multipart/form-data;boundary=nospace",
        b"multipart/mixed; boundary=abc",
    ],
)
def test_boundary_from_content_type_matches_httpx(content_type: bytes | None) -> None:
    assert get_multipart_boundary_from_content_type(
        content_type
    ) == httpx_multipart.get_multipart_boundary_from_content_type(content_type)


def test_boundary_from_content_type() -> None:
    assert get_multipart_boundary_from_content_type(b'multipart/form-data; boundary="q"') == b"q"
    assert get_multipart_boundary_from_content_type(b"text/plain; boundary=x") is None


def test_request_uses_boundary_from_its_content_type_header() -> None:
    content_type = "multipart/form-data; boundary=custom-boundary"
    ours = Request(
        "POST", "https://example.org", files={"f": b"x"}, headers={"Content-Type": content_type}
    )
    theirs = httpx.Request(
        "POST", "https://example.org", files={"f": b"x"}, headers={"Content-Type": content_type}
    )
    assert ours.read() == theirs.read()
    assert ours.read().startswith(b"--custom-boundary\r\n")
    assert ours.headers.raw == theirs.headers.raw
