"""A transport that calls a WSGI application in-process, with no network."""

from __future__ import annotations

import io
import itertools
import sys
import typing

from .._content import SyncByteStream
from .._response import Response
from .base import BaseTransport

if typing.TYPE_CHECKING:
    from _typeshed import OptExcInfo
    from _typeshed.wsgi import WSGIApplication

    from .._request import Request

__all__ = ["WSGITransport"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _drop_leading_empty(chunks: typing.Iterable[bytes]) -> typing.Iterable[bytes]:
    """
    Advance the app's iterable to its first non-empty chunk.

    Many WSGI apps (Flask's streaming responses among them) only call
    `start_response` once iteration starts, so the status and headers exist
    only after the first chunk has been pulled.
    """
    iterator = iter(chunks)
    for chunk in iterator:
        if chunk:
            return itertools.chain((chunk,), iterator)
    return ()


class WSGIByteStream(SyncByteStream):
    """The body returned by a WSGI app; closing it calls the iterable's `close()`."""

    def __init__(self, result: typing.Iterable[bytes]) -> None:
        # PEP 3333: `close()` belongs to the object the app returned, and is
        # looked up before the iterable is advanced.
        self._close = getattr(result, "close", None)
        self._result = _drop_leading_empty(result)

    def __iter__(self) -> typing.Iterator[bytes]:
        yield from self._result

    def close(self) -> None:
        if self._close is not None:
            self._close()


class WSGITransport(BaseTransport):
    """
    Send requests straight to a WSGI app, e.g.
    `Client(transport=WSGITransport(app=flask_app))`.

    * `raise_app_exceptions` - re-raise an exception the app reports through
      `start_response(..., exc_info)`; set False to get its error response.
    * `script_name` - the path the app is mounted at (`SCRIPT_NAME`).
    * `remote_addr` - the client address the app sees (`REMOTE_ADDR`).
    * `wsgi_errors` - the `wsgi.errors` stream; `sys.stderr` by default.
    """

    def __init__(
        self,
        app: WSGIApplication,
        raise_app_exceptions: bool = True,
        script_name: str = "",
        remote_addr: str = "127.0.0.1",
        wsgi_errors: typing.TextIO | None = None,
    ) -> None:
        self.app = app
        self.raise_app_exceptions = raise_app_exceptions
        self.script_name = script_name
        self.remote_addr = remote_addr
        self.wsgi_errors = wsgi_errors

    def _environ(self, request: Request) -> dict[str, typing.Any]:
        url = request.url
        port = url.port or _DEFAULT_PORTS[url.scheme]
        environ: dict[str, typing.Any] = {
            "wsgi.version": (1, 0),
            "wsgi.url_scheme": url.scheme,
            "wsgi.input": io.BytesIO(request.content),
            "wsgi.errors": self.wsgi_errors or sys.stderr,
            "wsgi.multithread": True,
            "wsgi.multiprocess": False,
            "wsgi.run_once": False,
            "REQUEST_METHOD": request.method,
            "SCRIPT_NAME": self.script_name,
            "PATH_INFO": url.path,
            "QUERY_STRING": url.query.decode("ascii"),
            "SERVER_NAME": url.host,
            "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": self.remote_addr,
        }
        for raw_name, raw_value in request.headers.raw:
            key = raw_name.decode("ascii").upper().replace("-", "_")
            # CGI names these two without the HTTP_ prefix.
            if key not in ("CONTENT_TYPE", "CONTENT_LENGTH"):
                key = "HTTP_" + key
            environ[key] = raw_value.decode("ascii")
        return environ

    def handle_request(self, request: Request) -> Response:
        request.read()
        environ = self._environ(request)

        started: tuple[str, list[tuple[str, str]], OptExcInfo | None] | None = None

        def start_response(
            status: str,
            response_headers: list[tuple[str, str]],
            exc_info: OptExcInfo | None = None,
        ) -> typing.Callable[[bytes], typing.Any]:
            nonlocal started
            started = (status, response_headers, exc_info)
            # The legacy `write()` callable is not supported; its data is dropped.
            return lambda _: None

        stream = WSGIByteStream(self.app(environ, start_response))

        if started is None:
            raise RuntimeError("The WSGI app did not call start_response().")
        status, response_headers, exc_info = started
        if exc_info and exc_info[0] and self.raise_app_exceptions:
            raise exc_info[1]

        headers = [
            (name.encode("ascii"), value.encode("ascii")) for name, value in response_headers
        ]
        return Response(int(status.split()[0]), headers=headers, stream=stream)
