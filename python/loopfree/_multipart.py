"""`multipart/form-data` request bodies, byte for byte as httpx writes them."""

from __future__ import annotations

import io
import mimetypes
import os
import typing
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from pathlib import Path

from ._content import AsyncByteStream, RequestData, SyncByteStream, peek_filelike_length
from ._query_params import primitive_value_to_str

__all__ = [
    "DataField",
    "FileContent",
    "FileField",
    "FileTypes",
    "MultipartStream",
    "RequestFiles",
    "get_multipart_boundary_from_content_type",
]

FileContent = typing.IO[bytes] | bytes | str
FileTypes = (
    # file (or bytes)
    FileContent
    # (filename, file (or bytes))
    | tuple[str | None, FileContent]
    # (filename, file (or bytes), content_type)
    | tuple[str | None, FileContent, str | None]
    # (filename, file (or bytes), content_type, headers)
    | tuple[str | None, FileContent, str | None, Mapping[str, str]]
)
RequestFiles = Mapping[str, FileTypes] | Sequence[tuple[str, FileTypes]]

# The HTML5 form-data escaping of names and filenames: quotes, backslashes and
# control characters other than ESC.
_FORM_PARAM_ESCAPES: dict[int, str] = {ord('"'): "%22", ord("\\"): "\\\\"}
_FORM_PARAM_ESCAPES.update({c: f"%{c:02X}" for c in range(0x20) if c != 0x1B})


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _format_form_param(name: str, value: str) -> bytes:
    return f'{name}="{value.translate(_FORM_PARAM_ESCAPES)}"'.encode()


def get_multipart_boundary_from_content_type(content_type: bytes | None) -> bytes | None:
    """
    The boundary of a `multipart/form-data` content type (RFC 2046 5.1.1),
    so that a caller-chosen boundary is used to encode the body.
    """
    if not content_type or not content_type.startswith(b"multipart/form-data"):
        return None
    for section in content_type.split(b";")[1:]:
        section = section.strip()
        if section.lower().startswith(b"boundary="):
            return section[len(b"boundary=") :].strip(b'"')
    return None


class DataField:
    """
    A single form field item, within a multipart form field.
    """

    def __init__(self, name: str, value: str | bytes | int | float | None) -> None:
        if not isinstance(name, str):
            raise TypeError(f"Invalid type for name. Expected str, got {type(name)}: {name!r}")
        if value is not None and not isinstance(value, (str, bytes, int, float)):
            raise TypeError(
                f"Invalid type for value. Expected primitive type, got {type(value)}: {value!r}"
            )
        self.name = name
        self.value: str | bytes = (
            value if isinstance(value, bytes) else primitive_value_to_str(value)
        )
        self._headers = b"".join(
            [b"Content-Disposition: form-data; ", _format_form_param("name", name), b"\r\n\r\n"]
        )
        self._data = _to_bytes(self.value)

    def render_headers(self) -> bytes:
        return self._headers

    def render_data(self) -> bytes:
        return self._data

    def get_length(self) -> int:
        return len(self._headers) + len(self._data)

    def render(self) -> Iterator[bytes]:
        yield self._headers
        yield self._data


class FileField:
    """
    A single file field item, within a multipart form field.
    """

    CHUNK_SIZE = 64 * 1024

    def __init__(self, name: str, value: FileTypes) -> None:
        self.name = name

        fileobj: FileContent
        headers: dict[str, str] = {}
        content_type: str | None = None

        # The tuple forms mirror the requests API.
        if isinstance(value, tuple):
            if len(value) == 2:
                filename, fileobj = value
            elif len(value) == 3:
                filename, fileobj, content_type = value
            else:
                filename, fileobj, content_type, extra_headers = value
                # Copied so that adding Content-Type leaves the caller's mapping alone.
                headers = dict(extra_headers)
        else:
            filename = Path(str(getattr(value, "name", "upload"))).name
            fileobj = value

        if content_type is None and filename:
            content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"

        # An explicit Content-Type header wins over the tuple's content type.
        has_content_type_header = any("content-type" in key.lower() for key in headers)
        if content_type is not None and not has_content_type_header:
            headers["Content-Type"] = content_type

        if isinstance(fileobj, io.StringIO):
            raise TypeError("Multipart file uploads require 'io.BytesIO', not 'io.StringIO'.")
        if isinstance(fileobj, io.TextIOBase):
            raise TypeError("Multipart file uploads must be opened in binary mode, not text mode.")

        self.filename = filename
        self.file = fileobj
        self.headers = headers
        self._headers: bytes | None = None

    def get_length(self) -> int | None:
        headers = self.render_headers()
        if isinstance(self.file, (str, bytes)):
            return len(headers) + len(_to_bytes(self.file))
        file_length = peek_filelike_length(self.file)
        if file_length is None:
            return None
        return len(headers) + file_length

    def render_headers(self) -> bytes:
        if self._headers is None:
            parts = [b"Content-Disposition: form-data; ", _format_form_param("name", self.name)]
            if self.filename:
                parts.extend([b"; ", _format_form_param("filename", self.filename)])
            for header_name, header_value in self.headers.items():
                parts.extend([f"\r\n{header_name}: ".encode(), header_value.encode()])
            parts.append(b"\r\n\r\n")
            self._headers = b"".join(parts)
        return self._headers

    def render_data(self) -> Iterator[bytes]:
        if isinstance(self.file, (str, bytes)):
            yield _to_bytes(self.file)
            return

        # Rewind, so that a body can be sent again (redirects, retries).
        if hasattr(self.file, "seek"):
            try:
                self.file.seek(0)
            except io.UnsupportedOperation:
                pass

        chunk = self.file.read(self.CHUNK_SIZE)
        while chunk:
            yield _to_bytes(chunk)
            chunk = self.file.read(self.CHUNK_SIZE)

    def render(self) -> Iterator[bytes]:
        yield self.render_headers()
        yield from self.render_data()


class MultipartStream(SyncByteStream, AsyncByteStream):
    """
    Request content as streaming multipart encoded form data.
    """

    def __init__(
        self,
        data: RequestData,
        files: RequestFiles,
        boundary: bytes | None = None,
    ) -> None:
        if boundary is None:
            boundary = os.urandom(16).hex().encode("ascii")
        self.boundary = boundary
        self.content_type = "multipart/form-data; boundary=" + boundary.decode("ascii")
        self.fields = list(self._iter_fields(data, files))

    def _iter_fields(
        self, data: RequestData, files: RequestFiles
    ) -> Iterator[FileField | DataField]:
        for name, value in data.items():
            if isinstance(value, (tuple, list)):
                for item in value:
                    yield DataField(name=name, value=item)
            else:
                yield DataField(name=name, value=value)

        file_items = files.items() if isinstance(files, Mapping) else files
        for name, file_value in file_items:
            yield FileField(name=name, value=file_value)

    def iter_chunks(self) -> Iterator[bytes]:
        for field in self.fields:
            yield b"--%s\r\n" % self.boundary
            yield from field.render()
            yield b"\r\n"
        yield b"--%s--\r\n" % self.boundary

    def get_content_length(self) -> int | None:
        """
        Return the length of the multipart encoded content, or `None` if
        any of the files have a length that cannot be determined upfront.
        """
        boundary_length = len(self.boundary)
        length = 0
        for field in self.fields:
            field_length = field.get_length()
            if field_length is None:
                return None
            # b"--{boundary}\r\n" + field + b"\r\n"
            length += 2 + boundary_length + 2 + field_length + 2
        # b"--{boundary}--\r\n"
        return length + 2 + boundary_length + 4

    def get_headers(self) -> dict[str, str]:
        content_length = self.get_content_length()
        if content_length is None:
            return {"Transfer-Encoding": "chunked", "Content-Type": self.content_type}
        return {"Content-Length": str(content_length), "Content-Type": self.content_type}

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_chunks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.iter_chunks():
            yield chunk
