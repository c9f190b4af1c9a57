"""
The exception tree, identical in names, parents and messages to httpx 0.28.1:

* HTTPError
  x RequestError
    + TransportError
      - TimeoutException
        · ConnectTimeout
        · ReadTimeout
        · WriteTimeout
        · PoolTimeout
      - NetworkError
        · ConnectError
        · ReadError
        · WriteError
        · CloseError
      - ProtocolError
        · LocalProtocolError
        · RemoteProtocolError
      - ProxyError
      - UnsupportedProtocol
    + DecodingError
    + TooManyRedirects
  x HTTPStatusError
* InvalidURL
* CookieConflict
* StreamError
  x StreamConsumed
  x StreamClosed
  x ResponseNotRead
  x RequestNotRead

The Rust core imports these classes by name from this module, so the classes
are declared once, in Python, and every name here is part of the contract.
"""

from __future__ import annotations

import typing

if typing.TYPE_CHECKING:
    from ._request import Request
    from ._response import Response

__all__ = [
    "CloseError",
    "ConnectError",
    "ConnectTimeout",
    "CookieConflict",
    "DecodingError",
    "HTTPError",
    "HTTPStatusError",
    "InvalidURL",
    "LocalProtocolError",
    "NetworkError",
    "PoolTimeout",
    "ProtocolError",
    "ProxyError",
    "ReadError",
    "ReadTimeout",
    "RemoteProtocolError",
    "RequestError",
    "RequestNotRead",
    "ResponseNotRead",
    "StreamClosed",
    "StreamConsumed",
    "StreamError",
    "TimeoutException",
    "TooManyRedirects",
    "TransportError",
    "UnsupportedProtocol",
    "WriteError",
    "WriteTimeout",
]


class HTTPError(Exception):
    """
    Base class of `RequestError` and `HTTPStatusError`, so that one
    `except HTTPError` covers both sending a request and `raise_for_status()`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self._request: Request | None = None

    @property
    def request(self) -> Request:
        # Errors raised deep in the transport know no request; the client
        # attaches it on the way out, so reading it earlier is a bug.
        if self._request is None:
            raise RuntimeError("The .request property has not been set.")
        return self._request

    @request.setter
    def request(self, request: Request) -> None:
        self._request = request


class RequestError(HTTPError):
    """
    Base class of every error that can happen while a request is being sent.
    """

    def __init__(self, message: str, *, request: Request | None = None) -> None:
        super().__init__(message)
        self._request = request


class TransportError(RequestError):
    """
    An error raised by the transport layer.
    """


class TimeoutException(TransportError):
    """
    An operation took longer than its timeout.
    """


class ConnectTimeout(TimeoutException):
    """
    Connecting to the host took too long.
    """


class ReadTimeout(TimeoutException):
    """
    Receiving data from the host took too long.
    """


class WriteTimeout(TimeoutException):
    """
    Sending data to the host took too long.
    """


class PoolTimeout(TimeoutException):
    """
    Waiting for a free connection in the pool took too long.
    """


class NetworkError(TransportError):
    """
    Base class of the errors met while talking to the network.
    """


class ReadError(NetworkError):
    """
    Receiving data from the network failed.
    """


class WriteError(NetworkError):
    """
    Sending data to the network failed.
    """


class ConnectError(NetworkError):
    """
    The connection could not be established.
    """


class CloseError(NetworkError):
    """
    The connection could not be closed cleanly.
    """


class ProxyError(TransportError):
    """
    The connection through the proxy could not be established.
    """


class UnsupportedProtocol(TransportError):
    """
    The URL's scheme is not one the transport can speak, e.g. `ftp://`.
    """


class ProtocolError(TransportError):
    """
    The HTTP protocol was violated.
    """


class LocalProtocolError(ProtocolError):
    """
    The client broke the protocol, e.g. a request sent without a `Host` header.
    """


class RemoteProtocolError(ProtocolError):
    """
    The server broke the protocol, e.g. by sending malformed HTTP.
    """


class DecodingError(RequestError):
    """
    The response body could not be decoded with its declared encoding.
    """


class TooManyRedirects(RequestError):
    """
    The redirect limit was exceeded.
    """


class HTTPStatusError(HTTPError):
    """
    The response has a 4xx or 5xx status; raised by `Response.raise_for_status()`.
    """

    def __init__(self, message: str, *, request: Request, response: Response) -> None:
        super().__init__(message)
        self.request = request
        self.response = response


class InvalidURL(Exception):
    """
    The URL is malformed.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


class CookieConflict(Exception):
    """
    A cookie was looked up by name but more than one cookie has that name.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


class StreamError(RuntimeError):
    """
    Base class of the errors caused by using a request or response stream
    the wrong way; these are programming errors, hence `RuntimeError`.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)


class StreamConsumed(StreamError):
    """
    The content was already streamed once and cannot be streamed again.
    """

    def __init__(self) -> None:
        super().__init__(
            "Attempted to read or stream some content, but the content has "
            "already been streamed. For requests, this could be due to passing "
            "a generator as request content, and then receiving a redirect "
            "response or a secondary request as part of an authentication flow."
            "For responses, this could be due to attempting to stream the response "
            "content more than once."
        )


class StreamClosed(StreamError):
    """
    The response content was read or streamed after the response was closed.
    """

    def __init__(self) -> None:
        super().__init__("Attempted to read or stream content, but the stream has been closed.")


class ResponseNotRead(StreamError):
    """
    The content of a streaming response was accessed before `read()`.
    """

    def __init__(self) -> None:
        super().__init__(
            "Attempted to access streaming response content, without having called `read()`."
        )


class RequestNotRead(StreamError):
    """
    The content of a streaming request was accessed before `read()`.
    """

    def __init__(self) -> None:
        super().__init__(
            "Attempted to access streaming request content, without having called `read()`."
        )
