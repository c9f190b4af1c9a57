"""Authentication flows, with httpx's generator protocol."""

from __future__ import annotations

import typing
from base64 import b64encode

if typing.TYPE_CHECKING:
    from ._request import Request
    from ._response import Response

__all__ = ["Auth", "BasicAuth", "FunctionAuth"]


class Auth:
    """
    Base class for authentication schemes.

    `auth_flow` is a generator: it yields requests to send and receives their
    responses, so multi-step schemes (digest, token refresh) fit one protocol.
    """

    requires_request_body = False
    requires_response_body = False

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        yield request

    def sync_auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        if self.requires_request_body:
            request.read()
        flow = self.auth_flow(request)
        request = next(flow)
        while True:
            response = yield request
            if self.requires_response_body:
                response.read()
            try:
                request = flow.send(response)
            except StopIteration:
                break

    async def async_auth_flow(
        self, request: Request
    ) -> typing.AsyncGenerator[Request, Response]:
        if self.requires_request_body:
            await request.aread()
        flow = self.auth_flow(request)
        request = next(flow)
        while True:
            response = yield request
            if self.requires_response_body:
                await response.aread()
            try:
                request = flow.send(response)
            except StopIteration:
                break


class FunctionAuth(Auth):
    """Auth from a plain callable that takes and returns a request."""

    def __init__(self, func: typing.Callable[[Request], Request]) -> None:
        self._func = func

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        yield self._func(request)


class BasicAuth(Auth):
    """HTTP Basic authentication."""

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        self._auth_header = self._build_auth_header(username, password)

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        request.headers["Authorization"] = self._auth_header
        yield request

    @staticmethod
    def _build_auth_header(username: str | bytes, password: str | bytes) -> str:
        user = username.encode("latin-1") if isinstance(username, str) else username
        secret = password.encode("latin-1") if isinstance(password, str) else password
        token = b64encode(b":".join((user, secret))).decode("ascii")
        return f"Basic {token}"
