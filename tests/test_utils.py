"""`loopfree._utils`: URLPattern (mount keys) and get_environment_proxies()."""

from __future__ import annotations

import random
import urllib.request

import httpx._utils
import loopfree
import pytest
from loopfree._utils import URLPattern, _environment_proxies, get_environment_proxies

PATTERN_CASES = [
    ("http://example.com", "http://example.com", True),
    ("http://example.com", "https://example.com", False),
    ("http://example.com", "http://other.com", False),
    ("http://example.com", "http://example.com:8080", True),
    ("http://example.com:123", "http://example.com:123", True),
    ("http://example.com:123", "http://example.com:456", False),
    ("http://example.com:123", "http://example.com", False),
    ("all://example.com", "http://example.com", True),
    ("all://example.com", "https://example.com", True),
    ("all://*", "https://anything.org", True),
    ("all://*.example.com", "https://www.example.com", True),
    ("all://*.example.com", "https://example.com", False),
    ("all://*example.com", "https://example.com", True),
    ("all://*example.com", "https://www.example.com", True),
    ("all://*example.com", "https://wwwexample.com", False),
    ("all://[::1]", "http://[::1]:8000/", True),
    ("all://127.0.0.1", "http://127.0.0.2/", False),
    ("http://", "http://example.com", True),
    ("http://", "https://example.com", False),
    ("all://", "https://example.com:123", True),
    ("", "https://example.com:123", True),
]


@pytest.mark.parametrize(("pattern", "url", "expected"), PATTERN_CASES)
def test_url_pattern_matches_like_httpx(pattern: str, url: str, expected: bool) -> None:
    assert URLPattern(pattern).matches(loopfree.URL(url)) is expected
    assert httpx._utils.URLPattern(pattern).matches(httpx.URL(url)) is expected


def test_url_pattern_priority_equality_and_hash() -> None:
    patterns = [
        URLPattern("http://example.com:123"),
        URLPattern("all://www.example.com"),
        URLPattern("http://example.com"),
        URLPattern("all://example.com"),
        URLPattern("http://"),
        URLPattern("all://"),
    ]
    shuffled = patterns[:]
    random.Random(4).shuffle(shuffled)
    assert sorted(shuffled) == patterns
    assert URLPattern("all://") == URLPattern("all://")
    assert URLPattern("all://") != "all://"
    assert len({URLPattern("http://"), URLPattern("http://")}) == 1
    assert repr(URLPattern("http://")) == "URLPattern('http://')"


@pytest.mark.parametrize("pattern", ["http", "https", "all"])
def test_url_pattern_requires_url_form(pattern: str) -> None:
    with pytest.raises(ValueError, match=f'use "{pattern}://"'):
        URLPattern(pattern)


ENVIRONMENT_CASES = [
    ({}, {}),
    ({"HTTP_PROXY": "http://127.0.0.1"}, {"http://": "http://127.0.0.1"}),
    ({"HTTP_PROXY": "127.0.0.1:3128"}, {"http://": "http://127.0.0.1:3128"}),
    (
        {"https_proxy": "http://127.0.0.1", "HTTP_PROXY": "https://127.0.0.1"},
        {"https://": "http://127.0.0.1", "http://": "https://127.0.0.1"},
    ),
    ({"all_proxy": "socks5://127.0.0.1"}, {"all://": "socks5://127.0.0.1"}),
    ({"TRAVIS_APT_PROXY": "http://127.0.0.1"}, {}),
    ({"no_proxy": "127.0.0.1"}, {"all://127.0.0.1": None}),
    ({"no_proxy": "192.168.0.0/16"}, {"all://192.168.0.0/16": None}),
    ({"no_proxy": "::1"}, {"all://[::1]": None}),
    ({"no_proxy": "localhost"}, {"all://localhost": None}),
    ({"no_proxy": "LocalHost"}, {"all://LocalHost": None}),
    ({"no_proxy": "github.com"}, {"all://*github.com": None}),
    ({"no_proxy": ".github.com"}, {"all://*.github.com": None}),
    ({"no_proxy": "http://github.com"}, {"http://github.com": None}),
    (
        {"no_proxy": " a.org , ,b.org", "HTTP_PROXY": "http://p"},
        {"http://": "http://p", "all://*a.org": None, "all://*b.org": None},
    ),
    ({"no_proxy": "a.org,*", "HTTP_PROXY": "http://p"}, {}),
]


@pytest.mark.parametrize(("environment", "expected"), ENVIRONMENT_CASES)
def test_get_environment_proxies_like_httpx(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], expected: dict[str, str | None]
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert get_environment_proxies() == expected
    assert httpx._utils.get_environment_proxies() == expected


URLLIB_CASES = [
    {},
    {"HTTP_PROXY": "http://a"},
    {"http_proxy": "http://lower", "HTTP_PROXY": "http://upper"},
    {"HTTPS_PROXY": "http://x", "https_proxy": ""},
    {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://cgi", "http_proxy": "http://lower"},
    {"REQUEST_METHOD": "GET", "HTTP_PROXY": "http://cgi"},
    {"NO_PROXY": "a,b", "no_proxy": ""},
    {"Mixed_Proxy": "z", "TRAVIS_APT_PROXY": "q", "ALL_PROXY": "socks5://c"},
]


@pytest.mark.parametrize("environment", URLLIB_CASES)
def test_environment_proxies_read_as_urllib_reads_them(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]
) -> None:
    # Regression guard for the fast scan that replaced urllib's on Linux.
    monkeypatch.delenv("REQUEST_METHOD", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert _environment_proxies() == urllib.request.getproxies_environment()
