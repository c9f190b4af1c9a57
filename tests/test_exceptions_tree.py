"""The exception tree must match httpx's name for name, parent for parent."""

from __future__ import annotations

import inspect

import httpx
import httpx._exceptions
import pytest
from loopfree import _exceptions
from loopfree._exceptions import (
    CookieConflict,
    HTTPError,
    HTTPStatusError,
    InvalidURL,
    ReadTimeout,
    RequestError,
    RequestNotRead,
    ResponseNotRead,
    StreamClosed,
    StreamConsumed,
    StreamError,
    TransportError,
)

NAMES = sorted(httpx._exceptions.__all__)


def test_all_is_httpx_all_and_sorted() -> None:
    assert _exceptions.__all__ == NAMES
    assert sorted(_exceptions.__all__) == _exceptions.__all__


@pytest.mark.parametrize("name", NAMES)
def test_same_parents_and_mro_as_httpx(name: str) -> None:
    ours, theirs = getattr(_exceptions, name), getattr(httpx, name)
    assert ours.__name__ == name
    assert [base.__name__ for base in ours.__bases__] == [
        base.__name__ for base in theirs.__bases__
    ]
    assert [cls.__name__ for cls in ours.__mro__] == [cls.__name__ for cls in theirs.__mro__]
    # Every ancestor is our own class (or a builtin), never httpx's. Public
    # classes report the package (`loopfree`), as httpx's report `httpx`.
    for cls in ours.__mro__:
        assert cls.__module__ in ("builtins", "loopfree", "loopfree._exceptions")


@pytest.mark.parametrize("name", NAMES)
def test_same_constructor_signature_as_httpx(name: str) -> None:
    ours, theirs = getattr(_exceptions, name), getattr(httpx, name)
    assert str(inspect.signature(ours)) == str(inspect.signature(theirs))


@pytest.mark.parametrize(
    "name", ["StreamConsumed", "StreamClosed", "ResponseNotRead", "RequestNotRead"]
)
def test_stream_error_messages_match_httpx(name: str) -> None:
    ours, theirs = getattr(_exceptions, name)(), getattr(httpx, name)()
    assert str(ours) == str(theirs)
    assert ours.args == theirs.args
    assert isinstance(ours, StreamError)
    assert isinstance(ours, RuntimeError)


def test_stream_error_messages() -> None:
    assert str(StreamClosed()) == (
        "Attempted to read or stream content, but the stream has been closed."
    )
    assert str(ResponseNotRead()) == (
        "Attempted to access streaming response content, without having called `read()`."
    )
    assert str(RequestNotRead()) == (
        "Attempted to access streaming request content, without having called `read()`."
    )
    assert str(StreamConsumed()).startswith(
        "Attempted to read or stream some content, but the content has already been streamed."
    )


def test_request_is_unset_by_default() -> None:
    exc = ReadTimeout("timed out")
    assert str(exc) == "timed out"
    assert exc.args == ("timed out",)
    with pytest.raises(RuntimeError) as exc_info:
        _ = exc.request
    assert str(exc_info.value) == "The .request property has not been set."


def test_request_can_be_set_later() -> None:
    request = object()
    exc = TransportError("broken")
    exc.request = request  # type: ignore[assignment]
    assert exc.request is request


def test_request_error_takes_request_by_keyword() -> None:
    request = object()
    exc = RequestError("failed", request=request)  # type: ignore[arg-type]
    assert exc.request is request
    with pytest.raises(TypeError):
        RequestError("failed", request)  # type: ignore[misc]


def test_http_error_request_unset() -> None:
    exc = HTTPError("plain")
    with pytest.raises(RuntimeError, match=r"^The \.request property has not been set\.$"):
        _ = exc.request


def test_http_status_error_keeps_request_and_response() -> None:
    request, response = object(), object()
    exc = HTTPStatusError("404 Not Found", request=request, response=response)  # type: ignore[arg-type]
    assert exc.request is request
    assert exc.response is response
    assert str(exc) == "404 Not Found"
    assert isinstance(exc, HTTPError)
    assert not isinstance(exc, RequestError)


def test_errors_outside_the_http_error_tree() -> None:
    for cls in (InvalidURL, CookieConflict):
        exc = cls("message")
        assert str(exc) == "message"
        assert not isinstance(exc, HTTPError)
        assert not hasattr(exc, "request")
