"""A transport that answers every request by calling a function: for tests."""

from __future__ import annotations

import inspect
import typing

from .._response import Response
from .base import AsyncBaseTransport, BaseTransport

if typing.TYPE_CHECKING:
    from .._request import Request

__all__ = ["MockTransport"]

SyncHandler = typing.Callable[["Request"], Response]
AsyncHandler = typing.Callable[["Request"], typing.Awaitable[Response]]


class MockTransport(AsyncBaseTransport, BaseTransport):
    """
    `MockTransport(handler)` calls `handler(request)` for each request and
    returns its response. The handler may be a plain function (usable from
    both clients) or a coroutine function (usable from `AsyncClient` only).
    The request body is read first, so handlers can use `request.content`.
    """

    def __init__(self, handler: SyncHandler | AsyncHandler) -> None:
        self.handler = handler

    def handle_request(self, request: Request) -> Response:
        request.read()
        response = self.handler(request)
        if not isinstance(response, Response):
            if inspect.isawaitable(response):
                # Close the coroutine so it does not warn "never awaited".
                close = getattr(response, "close", None)
                if close is not None:
                    close()
            raise TypeError("Cannot use an async handler in a sync Client")
        return response

    async def handle_async_request(self, request: Request) -> Response:
        await request.aread()
        response = self.handler(request)
        # The handler may be `async def`: its result is then to be awaited.
        if not isinstance(response, Response):
            response = await response
        return response
