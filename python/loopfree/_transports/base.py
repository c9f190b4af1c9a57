"""The transport interface: what a client hands each request to."""

from __future__ import annotations

import typing
from types import TracebackType

if typing.TYPE_CHECKING:
    from .._request import Request
    from .._response import Response

__all__ = ["AsyncBaseTransport", "BaseTransport"]

T = typing.TypeVar("T", bound="BaseTransport")
A = typing.TypeVar("A", bound="AsyncBaseTransport")


class BaseTransport:
    """
    Sends one request and returns its response, for `Client(transport=...)`.

    The response's stream may still be unread: a caller that does not read it
    must close it, so that whatever it holds (a connection, an app) is freed.
    """

    def __enter__(self: T) -> T:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        self.close()

    def handle_request(self, request: Request) -> Response:
        raise NotImplementedError("The 'handle_request' method must be implemented.")

    def close(self) -> None:
        pass


class AsyncBaseTransport:
    """The async counterpart of `BaseTransport`, for `AsyncClient(transport=...)`."""

    async def __aenter__(self: A) -> A:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc_value: BaseException | None = None,
        traceback: TracebackType | None = None,
    ) -> None:
        await self.aclose()

    async def handle_async_request(self, request: Request) -> Response:
        raise NotImplementedError("The 'handle_async_request' method must be implemented.")

    async def aclose(self) -> None:
        pass
