"""`Timeout`, `Limits`, `Proxy` and the sentinels must behave like httpx's."""

from __future__ import annotations

import math
import ssl
import typing

import httpx
import httpx._client
import httpx._config
import pytest
from loopfree import _config
from loopfree._config import (
    DEFAULT_LIMITS,
    DEFAULT_MAX_REDIRECTS,
    DEFAULT_TIMEOUT_CONFIG,
    UNSET,
    USE_CLIENT_DEFAULT,
    Limits,
    Proxy,
    Timeout,
    UnsetType,
    UseClientDefault,
)
from loopfree._url import URL


def outcome(build: typing.Callable[[], typing.Any]) -> typing.Any:
    """The repr and attributes of what `build()` returns, or its error."""
    try:
        value = build()
    except Exception as exc:
        return ["raises", type(exc).__name__, str(exc)]
    return [repr(value), dict(vars(value))]


TIMEOUT_CASES: list[tuple[tuple[typing.Any, ...], dict[str, typing.Any]]] = [
    ((), {}),
    ((None,), {}),
    ((5.0,), {}),
    ((5,), {}),
    ((None,), {"read": None}),
    ((None,), {"read": 5.0}),
    ((5.0,), {"pool": 60.0}),
    ((5.0,), {"connect": None}),
    ((5.0,), {"connect": 1.0, "read": 2.0, "write": 3.0, "pool": 4.0}),
    ((), {"connect": 1.0, "read": 2.0, "write": 3.0, "pool": 4.0}),
    ((), {"connect": 5.0, "read": 5.0, "write": 5.0, "pool": 5.0}),
    ((), {"connect": None, "read": None, "write": None, "pool": None}),
    ((), {"pool": 60.0}),
    ((), {"connect": 1.0, "read": 2.0, "write": 3.0}),
    (((1.0, 2.0, 3.0, 4.0),), {}),
    (((5.0, 5.0, 5.0, 5.0),), {}),
    (((None, 5.0, None, None),), {}),
    (((1.0, 2.0),), {}),
    (((1.0, 2.0, 3.0),), {}),
    (((1.0,),), {}),
]


@pytest.mark.parametrize(("args", "kwargs"), TIMEOUT_CASES)
def test_timeout_matches_httpx(args: tuple[typing.Any, ...], kwargs: dict[str, typing.Any]) -> None:
    assert outcome(lambda: Timeout(*args, **kwargs)) == outcome(
        lambda: httpx.Timeout(*args, **kwargs)
    )


def test_timeout_from_timeout() -> None:
    original = Timeout(1.0, pool=2.0)
    copied = Timeout(original)
    assert copied == original
    assert copied is not original
    with pytest.raises(AssertionError):
        Timeout(original, read=3.0)


def test_timeout_missing_default() -> None:
    with pytest.raises(ValueError) as exc_info:
        Timeout(pool=60.0)
    assert str(exc_info.value) == (
        "httpx.Timeout must either include a default, or set all four parameters explicitly."
    )


def test_timeout_as_dict_and_repr() -> None:
    timeout = Timeout(None, read=5.0)
    assert timeout.as_dict() == {"connect": None, "read": 5.0, "write": None, "pool": None}
    assert repr(timeout) == "Timeout(connect=None, read=5.0, write=None, pool=None)"
    assert repr(Timeout(timeout=5.0)) == "Timeout(timeout=5.0)"


def test_timeout_equality() -> None:
    assert Timeout(5.0) == Timeout(connect=5.0, read=5.0, write=5.0, pool=5.0)
    assert Timeout(5.0, pool=60.0) == Timeout((5.0, 5.0, 5.0, 60.0))
    assert Timeout(None) == Timeout(timeout=None)
    assert Timeout(5.0) != Timeout(6.0)
    assert Timeout(5.0) != 5.0
    assert Timeout(5.0) != httpx.Timeout(5.0)
    # Like httpx, NaN timeouts never compare equal and timeouts are unhashable.
    assert Timeout(math.nan) != Timeout(math.nan)
    with pytest.raises(TypeError):
        hash(Timeout(5.0))


LIMITS_CASES: list[dict[str, typing.Any]] = [
    {},
    {"max_connections": 100},
    {"max_connections": 100, "max_keepalive_connections": 20},
    {"max_connections": 1, "max_keepalive_connections": 0, "keepalive_expiry": None},
    {"keepalive_expiry": 0.5},
]


@pytest.mark.parametrize("kwargs", LIMITS_CASES)
def test_limits_matches_httpx(kwargs: dict[str, typing.Any]) -> None:
    assert outcome(lambda: Limits(**kwargs)) == outcome(lambda: httpx.Limits(**kwargs))


def test_limits() -> None:
    limits = Limits()
    assert limits.max_connections is None
    assert limits.max_keepalive_connections is None
    assert limits.keepalive_expiry == 5.0
    assert repr(Limits(max_connections=10)) == (
        "Limits(max_connections=10, max_keepalive_connections=None, keepalive_expiry=5.0)"
    )
    assert Limits(max_connections=100) == Limits(max_connections=100)
    assert Limits(max_connections=100) != Limits(max_connections=101)
    assert Limits() != httpx.Limits()
    with pytest.raises(TypeError):
        Limits(100)  # type: ignore[misc]


def test_defaults_match_httpx() -> None:
    assert repr(DEFAULT_TIMEOUT_CONFIG) == repr(httpx._config.DEFAULT_TIMEOUT_CONFIG)
    assert Timeout(5.0) == DEFAULT_TIMEOUT_CONFIG
    assert repr(DEFAULT_LIMITS) == repr(httpx._config.DEFAULT_LIMITS)
    assert Limits(max_connections=100, max_keepalive_connections=20) == DEFAULT_LIMITS
    assert DEFAULT_MAX_REDIRECTS == httpx._config.DEFAULT_MAX_REDIRECTS == 20


PROXY_CASES: list[tuple[tuple[typing.Any, ...], dict[str, typing.Any]]] = [
    (("https://example.com",), {}),
    (("http://example.com:8080/path",), {}),
    (("socks5://example.com",), {}),
    (("socks5h://example.com",), {}),
    (("HTTP://EXAMPLE.com",), {}),
    (("https://username:password@example.com",), {}),
    (("https://user%40mail:p%20w@example.com",), {}),
    (("https://user@example.com",), {}),
    (("https://:secret@example.com",), {}),
    (("https://example.com",), {"auth": ("user", "pass")}),
    (("https://u:p@example.com",), {"auth": ("other", "pass")}),
    (("https://example.com",), {"headers": {"Proxy-Thing": "1"}}),
    (("https://example.com",), {"auth": ("ü", "ß"), "headers": [("A", "1"), ("a", "2")]}),
    (("invalid://example.com",), {}),
    (("example.com",), {}),
    (("ftp://example.com",), {"headers": 5}),
    (("https://[::1",), {}),
]


def proxy_outcome(build: typing.Callable[[], typing.Any]) -> typing.Any:
    try:
        proxy = build()
    except Exception as exc:
        return ["raises", type(exc).__name__, str(exc)]
    return [
        repr(proxy),
        str(proxy.url),
        proxy.auth,
        proxy.raw_auth,
        proxy.headers.multi_items(),
        proxy.ssl_context,
    ]


@pytest.mark.parametrize(("args", "kwargs"), PROXY_CASES)
def test_proxy_matches_httpx(args: tuple[typing.Any, ...], kwargs: dict[str, typing.Any]) -> None:
    assert proxy_outcome(lambda: Proxy(*args, **kwargs)) == proxy_outcome(
        lambda: httpx.Proxy(*args, **kwargs)
    )


def test_proxy_from_url() -> None:
    proxy = Proxy("https://example.com")
    assert isinstance(proxy.url, URL)
    assert str(proxy.url) == "https://example.com"
    assert proxy.auth is None
    assert proxy.raw_auth is None
    assert proxy.headers == {}
    assert repr(proxy) == "Proxy('https://example.com')"


def test_proxy_moves_credentials_to_auth() -> None:
    proxy = Proxy(URL("https://username:password@example.com"))
    assert str(proxy.url) == "https://example.com"
    assert proxy.auth == ("username", "password")
    assert proxy.raw_auth == (b"username", b"password")
    assert repr(proxy) == "Proxy('https://example.com', auth=('username', '********'))"


def test_proxy_headers_and_ssl_context() -> None:
    context = ssl.create_default_context()
    proxy = Proxy("http://example.com", headers={"X-Proxy": "1"}, ssl_context=context)
    assert proxy.headers["x-proxy"] == "1"
    assert proxy.ssl_context is context
    assert repr(proxy) == "Proxy('http://example.com', headers={'x-proxy': '1'})"


def test_proxy_invalid_scheme() -> None:
    with pytest.raises(ValueError) as exc_info:
        Proxy("invalid://example.com")
    assert str(exc_info.value) == "Unknown scheme for proxy URL URL('invalid://example.com')"


def test_sentinels() -> None:
    assert isinstance(UNSET, UnsetType)
    assert isinstance(USE_CLIENT_DEFAULT, UseClientDefault)
    assert UNSET is not USE_CLIENT_DEFAULT
    # Same names and roles as httpx's, but our own objects.
    assert type(USE_CLIENT_DEFAULT).__name__ == type(httpx._client.USE_CLIENT_DEFAULT).__name__
    assert type(UNSET).__name__ == type(httpx._config.UNSET).__name__
    assert not isinstance(USE_CLIENT_DEFAULT, httpx._client.UseClientDefault)


def test_public_names() -> None:
    # The order is ruff's isort-style one (constants, classes, functions).
    assert _config.__all__ == [
        "DEFAULT_LIMITS",
        "DEFAULT_MAX_REDIRECTS",
        "DEFAULT_TIMEOUT_CONFIG",
        "UNSET",
        "USE_CLIENT_DEFAULT",
        "Limits",
        "Proxy",
        "Timeout",
        "TimeoutTypes",
        "UnsetType",
        "UseClientDefault",
    ]
    for name in _config.__all__:
        assert hasattr(_config, name)
