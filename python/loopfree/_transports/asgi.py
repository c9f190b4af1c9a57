"""A transport that calls an ASGI application in-process, with no network."""

from __future__ import annotations

import typing
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping

import sniffio

from .._content import AsyncByteStream
from .._response import Response
from .base import AsyncBaseTransport

if typing.TYPE_CHECKING:
    from .._request import Request

__all__ = ["ASGITransport"]

_Message = MutableMapping[str, typing.Any]
_Receive = Callable[[], Awaitable[_Message]]
_Send = Callable[[_Message], Awaitable[None]]
_ASGIApp = Callable[[MutableMapping[str, typing.Any], _Receive, _Send], Awaitable[None]]


class _Event(typing.Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...

    async def wait(self) -> typing.Any: ...


def _create_event() -> _Event:
    """An event for whichever async library runs the caller: asyncio or trio."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        library = "asyncio"
    if library == "trio":
        import trio

        return trio.Event()
    import asyncio

    return asyncio.Event()


class ASGIResponseStream(AsyncByteStream):
    """The body the app sent, collected in full before the response is returned."""

    def __init__(self, body: list[bytes]) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b"".join(self._body)


class ASGITransport(AsyncBaseTransport):
    """
    Send requests straight to an ASGI app, e.g.
    `AsyncClient(transport=ASGITransport(app=app))`. The app runs in the
    calling task, under asyncio or trio.

    * `raise_app_exceptions` - re-raise exceptions from the app; set False to
      get a 500 response (or whatever the app had started) instead.
    * `root_path` - the path the app is mounted at (the scope's `root_path`).
    * `client` - the (host, port) of the client, as the app sees it.
    """

    def __init__(
        self,
        app: _ASGIApp,
        raise_app_exceptions: bool = True,
        root_path: str = "",
        client: tuple[str, int] = ("127.0.0.1", 123),
    ) -> None:
        self.app = app
        self.raise_app_exceptions = raise_app_exceptions
        self.root_path = root_path
        self.client = client

    def _scope(self, request: Request) -> dict[str, typing.Any]:
        url = request.url
        return {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "headers": [(name.lower(), value) for name, value in request.headers.raw],
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "server": (url.host, url.port),
            "client": self.client,
            "root_path": self.root_path,
        }

    async def handle_async_request(self, request: Request) -> Response:
        if not isinstance(request.stream, AsyncByteStream):
            raise RuntimeError("Attempted to send a sync request with an ASGI transport.")

        request_chunks = request.stream.__aiter__()
        request_complete = False

        status_code: int | None = None
        response_headers: typing.Any = None
        body_parts: list[bytes] = []
        response_complete = _create_event()

        async def receive() -> dict[str, typing.Any]:
            nonlocal request_complete
            if request_complete:
                # The body is all delivered: what comes next is the client
                # going away, which happens once the response is complete.
                await response_complete.wait()
                return {"type": "http.disconnect"}
            try:
                body = await request_chunks.__anext__()
            except StopAsyncIteration:
                request_complete = True
                return {"type": "http.request", "body": b"", "more_body": False}
            return {"type": "http.request", "body": body, "more_body": True}

        async def send(message: _Message) -> None:
            nonlocal status_code, response_headers
            if message["type"] == "http.response.start":
                if status_code is not None:
                    raise RuntimeError("The ASGI app sent 'http.response.start' twice.")
                status_code = message["status"]
                response_headers = message.get("headers", [])
            elif message["type"] == "http.response.body":
                if response_complete.is_set():
                    raise RuntimeError("The ASGI app sent a body after the response ended.")
                body = message.get("body", b"")
                # A HEAD response has no body, whatever the app sends.
                if body and request.method != "HEAD":
                    body_parts.append(body)
                if not message.get("more_body", False):
                    response_complete.set()

        try:
            await self.app(self._scope(request), receive, send)
        except Exception:
            if self.raise_app_exceptions:
                raise
            response_complete.set()
            if status_code is None:
                status_code = 500
            if response_headers is None:
                response_headers = {}

        if not response_complete.is_set() or status_code is None:
            raise RuntimeError("The ASGI app returned without completing a response.")

        return Response(
            status_code, headers=response_headers, stream=ASGIResponseStream(body_parts)
        )
