"""
`Cookies` must behave like `httpx.Cookies`, including how it reads
`Set-Cookie` headers and writes the `Cookie` header through `CookieJar`.
"""

from __future__ import annotations

import http.cookiejar
import typing

import httpx
import pytest
from loopfree._cookies import Cookies
from loopfree._exceptions import CookieConflict
from loopfree._request import Request
from loopfree._response import Response


def test_set_get_delete() -> None:
    cookies = Cookies({"example-name": "example-value"})
    cookies["other"] = "x"
    assert cookies["example-name"] == "example-value"
    assert cookies.get("other") == "x"
    assert cookies.get("missing") is None
    assert cookies.get("missing", "default") == "default"
    del cookies["other"]
    assert "other" not in cookies
    with pytest.raises(KeyError, match="other"):
        cookies["other"]


@pytest.mark.parametrize(
    "value",
    [None, {}, {"a": "1", "b": "2"}, [("a", "1"), ("a", "2")], [("a", "1")]],
)
def test_constructor_matches_httpx(value: typing.Any) -> None:
    ours = Cookies(value)
    theirs = httpx.Cookies(value)
    assert repr(ours) == repr(theirs)
    assert len(ours) == len(theirs)
    assert list(ours) == list(theirs)
    assert bool(ours) == bool(theirs)


def test_constructor_from_cookies_copies() -> None:
    original = Cookies({"a": "1"})
    copy = Cookies(original)
    copy["b"] = "2"
    assert "b" not in original
    assert dict(copy) == {"a": "1", "b": "2"}


def test_constructor_from_jar_shares_it() -> None:
    jar = http.cookiejar.CookieJar()
    cookies = Cookies(jar)
    assert cookies.jar is jar
    cookies.set("a", "1")
    assert [cookie.name for cookie in jar] == ["a"]


def test_domain_and_path() -> None:
    cookies = Cookies()
    cookies.set("name", "a", domain="example.com")
    cookies.set("name", "b", domain="example.org")
    cookies.set("name", "c", domain="example.org", path="/sub")
    assert len(cookies) == 3
    assert cookies.get("name", domain="example.com") == "a"
    assert cookies.get("name", domain="example.org", path="/sub") == "c"
    with pytest.raises(CookieConflict, match="Multiple cookies exist with name=name"):
        cookies.get("name")
    with pytest.raises(CookieConflict):
        cookies["name"]
    with pytest.raises(CookieConflict):
        cookies.get("name", domain="example.org")

    cookies.delete("name", domain="example.org", path="/sub")
    assert cookies.get("name", domain="example.org") == "b"
    cookies.delete("name", domain="example.org")
    assert cookies.get("name") == "a"
    cookies.delete("name")
    assert not cookies


def test_deleting_a_missing_cookie_is_silent_like_httpx() -> None:
    cookies = Cookies({"a": "1"})
    cookies.delete("missing")
    del cookies["missing"]
    assert len(cookies) == 1
    their_cookies = httpx.Cookies({"a": "1"})
    del their_cookies["missing"]
    assert len(their_cookies) == 1


def test_clear() -> None:
    cookies = Cookies()
    cookies.set("a", "1", domain="example.com")
    cookies.set("b", "2", domain="example.com", path="/x")
    cookies.set("c", "3", domain="example.org")
    cookies.clear(domain="example.com", path="/x")
    assert sorted(cookies) == ["a", "c"]
    cookies.clear(domain="example.com")
    assert list(cookies) == ["c"]
    cookies.clear()
    assert len(cookies) == 0
    with pytest.raises(KeyError):
        cookies.clear(domain="missing.example")


def test_update() -> None:
    cookies = Cookies({"a": "1"})
    cookies.update({"a": "2", "b": "3"})
    assert dict(cookies) == {"a": "2", "b": "3"}
    cookies.update(Cookies({"c": "4"}))
    cookies.update(None)
    assert dict(cookies) == {"a": "2", "b": "3", "c": "4"}


def test_set_cookie_attributes_match_httpx() -> None:
    ours = Cookies()
    theirs = httpx.Cookies()
    ours.set("n", "v", domain=".example.com", path="/p")
    theirs.set("n", "v", domain=".example.com", path="/p")
    (our_cookie,) = list(ours.jar)
    (their_cookie,) = list(theirs.jar)
    assert vars(our_cookie) == vars(their_cookie)


def test_repr() -> None:
    cookies = Cookies()
    assert repr(cookies) == "<Cookies[]>"
    cookies.set("a", "1", domain="example.org")
    assert repr(cookies) == "<Cookies[<Cookie a=1 for example.org />]>"


def test_bool() -> None:
    assert not Cookies()
    assert Cookies({"a": ""})


SET_COOKIE_HEADERS: list[list[tuple[str, str]]] = [
    [],
    [("Set-Cookie", "a=1")],
    [("Set-Cookie", "a=1; Path=/; HttpOnly"), ("set-cookie", "b=2; Max-Age=3600")],
    [("Set-Cookie", "sub=1; Domain=sub.example.org")],
    [("Set-Cookie", "other=1; Domain=other.com")],
    [("Set-Cookie", "p=1; Path=/deep/path")],
    [("Set-Cookie", "expired=1; Expires=Thu, 01 Jan 1970 00:00:00 GMT")],
    [("Set-Cookie2", 'v=1; Version="1"')],
    [("Content-Type", "text/plain")],
]


@pytest.mark.parametrize("headers", SET_COOKIE_HEADERS)
def test_extract_cookies_matches_httpx(headers: list[tuple[str, str]]) -> None:
    url = "https://example.org/path/page"
    ours = Response(200, headers=headers, request=Request("GET", url))
    theirs = httpx.Response(200, headers=headers, request=httpx.Request("GET", url))
    assert repr(ours.cookies) == repr(theirs.cookies)
    assert dict(ours.cookies) == dict(theirs.cookies)


def test_extract_cookies_from_engine_response() -> None:
    request = Request("GET", "https://example.org/")
    response = Response._from_engine(
        200,
        [(b"set-cookie", b"session=abc; Path=/"), (b"set-cookie", b"theme=dark")],
        b"",
        request,
        b"HTTP/2",
        b"",
        0.0,
        "utf-8",
        0,
    )
    cookies = Cookies()
    cookies.extract_cookies(response)
    assert dict(cookies) == {"session": "abc", "theme": "dark"}


def test_extract_cookies_needs_a_request_like_httpx() -> None:
    with pytest.raises(RuntimeError, match="request instance has not been set"):
        Cookies().extract_cookies(Response(200))
    with pytest.raises(RuntimeError, match="request instance has not been set"):
        httpx.Cookies().extract_cookies(httpx.Response(200))


def test_extract_cookies_uses_custom_jar_hooks() -> None:
    class RecordingJar(http.cookiejar.CookieJar):
        def __init__(self) -> None:
            super().__init__()
            self.calls = 0

        def extract_cookies(self, response: typing.Any, request: typing.Any) -> None:
            self.calls += 1
            super().extract_cookies(response, request)

    jar = RecordingJar()
    response = Response(200, request=Request("GET", "https://example.org"))
    Cookies(jar).extract_cookies(response)
    # Even without Set-Cookie headers an overriding jar is consulted.
    assert jar.calls == 1


def test_set_cookie_header() -> None:
    cookies = Cookies()
    cookies.set("a", "1")
    cookies.set("scoped", "2", domain="example.org", path="/")
    cookies.set("elsewhere", "3", domain="other.com")
    request = Request("GET", "https://example.org/x")
    cookies.set_cookie_header(request)
    assert request.headers["Cookie"] == "a=1; scoped=2"

    their_cookies = httpx.Cookies()
    their_cookies.set("a", "1")
    their_cookies.set("scoped", "2", domain="example.org", path="/")
    their_cookies.set("elsewhere", "3", domain="other.com")
    their_request = httpx.Request("GET", "https://example.org/x")
    their_cookies.set_cookie_header(their_request)
    assert request.headers.raw == their_request.headers.raw


def test_round_trip_through_request_and_response() -> None:
    response = Response(
        200,
        headers=[("Set-Cookie", "token=xyz; Path=/api")],
        request=Request("GET", "https://example.org/api/login"),
    )
    cookies = Cookies()
    cookies.extract_cookies(response)
    inside = Request("GET", "https://example.org/api/data")
    outside = Request("GET", "https://example.org/other")
    cookies.set_cookie_header(inside)
    cookies.set_cookie_header(outside)
    assert inside.headers.get("cookie") == "token=xyz"
    assert "cookie" not in outside.headers
