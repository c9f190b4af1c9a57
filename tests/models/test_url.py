"""
`URL` must behave exactly like `httpx.URL`: most tests here run the same input
through both and compare every observable result, including error messages.
"""

from __future__ import annotations

import typing

import httpx
import pytest
from loopfree._exceptions import InvalidURL
from loopfree._query_params import QueryParams
from loopfree._url import URL
from loopfree._urlparse import (
    FRAGMENT_SAFE,
    PATH_SAFE,
    ParsedURL,
    quote,
    remove_dot_segments,
    urlparse,
)

PROPERTIES = [
    "scheme",
    "raw_scheme",
    "userinfo",
    "username",
    "password",
    "host",
    "raw_host",
    "port",
    "netloc",
    "path",
    "query",
    "raw_path",
    "fragment",
    "is_absolute_url",
    "is_relative_url",
]


def snapshot(build: typing.Callable[[], typing.Any]) -> list[typing.Any]:
    """Everything observable about the URL `build()` returns, or about its error."""
    try:
        url = build()
    except Exception as exc:
        return ["raises", type(exc).__name__, str(exc)]
    result: list[typing.Any] = [str(url), repr(url), url.params.multi_items()]
    for name in PROPERTIES:
        try:
            result.append((name, getattr(url, name)))
        except Exception as exc:
            result.append((name, "raises", type(exc).__name__, str(exc)))
    return result


# Inputs chosen to cover each branch of the parser, including the odd corners
# where httpx deviates from WHATWG; the expected results come from httpx itself.
URL_STRINGS: list[typing.Any] = [
    "",
    "/",
    "https://www.example.com/",
    "https://example.org:123/path/to/somewhere?abc=123#anchor",
    "HTTPS://jo%40email.com:a%20secret@müller.de:1234/pa%20th?search=ab#anchorlink",
    "https://www.example.com/path?",
    "https://www.example.com/path#",
    "https://www.example.com/path?#",
    "://example.com",
    "http://",
    "http:",
    "http:/",
    "http:///path",
    ":foo",
    "1http://example.com",
    "a+b.c-d://host/",
    "mailto:someone@example.com",
    "data:text/plain,hello world",
    "file:///etc/hosts",
    "localhost:8000",
    "example.com:80/path",
    "//example.com/path",
    "//example.com:8080",
    "../abc",
    "./a/../b",
    "?query-only",
    "#fragment-only",
    # percent-encoding in each component
    "https://example.com/!$&'()*+,;= abc ABC 123 :/[]@",
    "https://example.com/!$&'()*+,;=%20abc%20ABC%20123%20:/[]@",
    "https://example.com/ %61%62%63",
    "https://example.com/?!$&'()*+,;= abc ABC 123 :/[]@?",
    "https://example.com/?!$&%27()*+,;=%20abc%20ABC%20123%20:%2F[]@?",
    "https://example.com/?%20%97%98%99",
    "https://example.com/#!$&'()*+,;= abc ABC 123 :/[]@?#",
    'https://example.com/"<>`{}|\\^?"<>`{}|\\^#"<>`{}|\\^',
    "https://example.com/%zz/%/%2/%2G?%zz#%zz",
    "https://example.com/ /🌟/?q=🌟#🌟",
    "https://example.com/\u200b\x85?\u200b#\u200b",
    "http://webservice?u=phrase%20with spaces",
    "https://www.example.com/?a=b c&d=e/f",
    "https://www.example.com/?a=b+c&d=e/f",
    # userinfo
    "https://username:password@example.com",
    "https://username%40gmail.com:pa%20ssword@example.com",
    "https://username@gmail.com:pa ssword@example.com",
    "https://user name:p@ssword@example.com",
    "https://user:@example.com",
    "https://:pass@example.com",
    "https://@example.com",
    "https://a:b:c@example.com",
    "https://ü:ß@example.com",
    "https://u/x@example.com",
    # hosts
    "https://EXAMPLE.com/",
    "https://023b76x43144/",
    "https://1.2.3.4/",
    "https://999.999.999.999/",
    "https://01.2.3.4/",
    "https://1.2.3/",
    "https://[2001:db8::ff00:42:8329]/",
    "https://[2001:DB8::FF00:42:8329]:8443/",
    "http://[::ffff:192.168.0.1]:5678/",
    "http://[fe80::1%25eth0]/",
    "https://[2001]/",
    "https://[]/",
    "https://[::1/",
    "https://[::1]]/",
    "https://[::1]x/",
    "https://u:p@[invalid!]//evilHost/path?t=w#tw",
    "https://中国.icom.museum/",
    "http://中国.icom.museum:80/",
    "https://xn--fiqs8s.icom.museum/",
    "https://www.xn--fiqs8s.icom.museum/",
    "http://Königsgäßchen.de",
    "https://faß.de",
    "https://βόλος.com:443",
    "http://ශ්\u200dරී.com:444",
    "https://\u0646\u0627\u0645\u0647\u200c\u0627\u06cc.com:4433",
    "https://ÜBER.de",
    "https://☃.com/",
    "https://😇/",
    "https://ü..de/",
    "https://xn--/",
    "https://example.com./",
    # ports
    "https://example.com:123/",
    "https://example.com:443/",
    "http://example.com:80/",
    "HTTP://example.com:80/",
    "ws://example.com:80/",
    "wss://example.com:443/",
    "ftp://example.com:21/",
    "ftp://example.com:80/",
    "https://example.com:/",
    "https://example.com:abc/",
    "https://example.com: 81/",
    "https://example.com:+81/",
    "https://example.com:8_1/",
    "https://example.com:1:2/",
    # paths
    "https://example.com/abc/def/../ghi/./jkl",
    "https://example.com/../abc",
    "https://example.com/a/.",
    "https://example.com/a/..",
    "https://example.com/a/b/../../..",
    "https://example.com/%2e%2e/a",
    "https://example.com/a//b//",
    "scheme:a/../b",
    "scheme:a/./b/../../../c",
    "/a/../../b",
    # control characters and length
    "https://www.example.com/\n",
    "https://www.example.com/\t",
    "https://www.example.com/\x00",
    "https://www.example.com/\x7f",
    "\x1fhttps://www.example.com/",
    pytest.param("https://www.example.com/" + "x" * 65536, id="one-past-max-length"),
    pytest.param("https://www.example.com/" + "x" * (65536 - 24), id="max-length"),
]


# httpx percent-encodes forbidden host characters and accepts any integer
# port; so does loopfree (sending to them raises ConnectError, see
# tests/client/test_bad_input.py).
LENIENT_LIKE_HTTPX = [
    "https://exam le.com/",
    "https://ex^ample.com/",
    "https://ex|ample.com/",
    "https://ex\\ample.com/",
    "https://example.com:-1/",
    "https://example.com:99999/",
    "https://example.com:65536/",
]


@pytest.mark.parametrize("url", LENIENT_LIKE_HTTPX)
def test_lenient_parts_match_httpx(url: str) -> None:
    assert snapshot(lambda: URL(url)) == snapshot(lambda: httpx.URL(url))


@pytest.mark.parametrize("url", URL_STRINGS)
def test_parse_matches_httpx(url: str) -> None:
    assert snapshot(lambda: URL(url)) == snapshot(lambda: httpx.URL(url))


# Keyword components, alone or replacing parts of a URL, in both URL() and
# copy_with(); the order of keywords matters for which error wins.
KEYWORD_CASES: list[typing.Any] = [
    ("", {"scheme": "https", "host": "www.example.com", "path": "/"}),
    ("", {"path": "abc"}),
    ("", {"path": "//abc"}),
    ("", {"path": ":abc"}),
    ("", {"scheme": "~", "host": "www.example.com", "path": "/"}),
    ("", {"scheme": "https", "host": "www.example.com", "path": "abc"}),
    ("", {"scheme": "https", "host": "example.com", "incorrect": "/"}),
    ("", {"scheme": "https", "host": "::ffff:192.168.0.1", "port": 443, "path": "/"}),
    ("", {"scheme": "https", "host": "[::ffff:192.168.0.1]", "port": 443, "path": "/"}),
    ("", {"host": "a:b"}),
    ("", {"host": "[a"}),
    ("", {"host": "a@b"}),
    ("", {"host": "a/b"}),
    ("", {"scheme": "http", "host": "ü.de"}),
    ("", {"port": 8080}),
    ("", {"port": True}),
    ("", {"port": "80"}),
    pytest.param("", {"path": "/" + "x" * 100_000}, id="long-path"),
    ("", {"path": "/\n"}),
    ("", {"fragment": "\x00"}),
    ("", {"query": b"a b"}),
    ("", {"query": "a=1"}),
    ("", {"userinfo": "user"}),
    ("", {"userinfo": b"a@b"}),
    ("", {"username": "a\nb", "host": "h"}),
    ("", {"raw_path": b"/x?"}),
    ("", {"path": "a?b"}),
    ("", {"path": "/a", "query": b"#"}),
    ("", {"netloc": b"a:b:c"}),
    ("", {"netloc": b"[::1]:80"}),
    ("", {"scheme": None, "host": None, "path": None}),
    ("", {"params": b"\xff"}),
    ("https://example.com", {"path": "/path to somewhere"}),
    ("https://example.com", {"query": b"a=123"}),
    ("https://example.com", {"query": None}),
    ("https://example.com?x", {"query": b""}),
    ("https://example.com", {"raw_path": b"/some/path"}),
    ("https://example.com", {"raw_path": b"/some/path?"}),
    ("https://example.com", {"raw_path": b"/some/path?a=123"}),
    ("https://example.com", {"raw_path": None}),
    ("https://example.com", {"netloc": b"example.net:444"}),
    ("https://example.com", {"netloc": None}),
    ("https://example.org", {"username": "username", "password": "password", "port": 444}),
    ("https://example.org", {"username": "tom@example.org", "password": "abc123@ %"}),
    ("https://example.org", {"username": "", "password": "secret"}),
    ("https://u:p@example.org", {"username": None, "password": None}),
    ("https://u:p@example.org", {"password": None}),
    ("https://u:p@example.org", {"userinfo": b"x:y"}),
    ("https://u:p@example.org", {"userinfo": b"x:y", "username": "z"}),
    ("https://example.org", {"userinfo": "should be bytes"}),
    ("https://example.org", {"pathh": "/incorrect-spelling"}),
    ("https://example.org", {"port": "443"}),
    ("https://example.org", {"path": b"/bytes"}),
    ("https://example.org", {"scheme": "https://xxxx:xxxx@xxxxxxx/xxxxx/xxx?x=x#xxxxx"}),
    ("https://example.org/a", {"scheme": "http"}),
    ("https://example.org/a", {"scheme": "HTTP", "port": 80}),
    ("https://example.org/a", {"scheme": ""}),
    ("https://example.org/a", {"host": ""}),
    ("https://example.org/a", {"host": "", "scheme": ""}),
    ("http://127.0.0.1:1234", {"host": "::ffff:192.168.0.1"}),
    ("http://example.com:1234", {"host": "[::ffff:192.168.0.1]"}),
    ("http://[::ffff:127.0.0.1]:1234", {"host": "example.com"}),
    ("http://example.com/p?x=1", {"params": {"a": "b c", "d": "e/f"}}),
    ("http://example.com/p?x=1", {"params": {}}),
    ("http://example.com/p?x=1", {"params": None}),
    ("http://example.com/p?x=1", {"params": "y=2"}),
    ("http://example.com/p", {"params": QueryParams("a=1&a=2")}),
    ("http://example.com/p", {"params": [("a", True), ("b", None)]}),
    ("http://example.com/p", {"params": {"u": "%"}}),
    ("http://example.com/p", {"params": {"u": "with%20spaces"}}),
    ("http://example.com/p", {"params": {"u": "http://example.com?q=foo%2Fa"}}),
    ("http://example.com/p", {"query": b"q=1", "params": {"a": 1}}),
    ("http://example.com/p", {"params": {"a": 1}, "query": b"q=1"}),
    ("http://example.com/p#f", {"fragment": None}),
    ("http://example.com/p#f", {"fragment": "a b"}),
    ("http://example.com/p", {"path": "/a/./b/../c"}),
    ("relative/path", {"path": "/abs"}),
    ("relative/path", {"host": "example.com"}),
]


@pytest.mark.parametrize(("url", "kwargs"), KEYWORD_CASES)
def test_keyword_components_match_httpx(url: str, kwargs: dict[str, typing.Any]) -> None:
    httpx_kwargs = {
        key: httpx.QueryParams(str(value)) if isinstance(value, QueryParams) else value
        for key, value in kwargs.items()
    }
    assert snapshot(lambda: URL(url, **kwargs)) == snapshot(lambda: httpx.URL(url, **httpx_kwargs))
    assert snapshot(lambda: URL(url).copy_with(**kwargs)) == snapshot(
        lambda: httpx.URL(url).copy_with(**httpx_kwargs)
    )


JOIN_BASES = ["http://example.com/b/c/d;p?q", "/path/to/somewhere", "https://u:p@h:8/x/", ""]
JOIN_REFERENCES = [
    "g",
    "./g",
    "g/",
    "/g",
    "//g",
    "?y",
    "g?y",
    "#s",
    "g#s",
    "g?y#s",
    ";x",
    "g;x",
    "g;x?y#s",
    "",
    ".",
    "./",
    "..",
    "../",
    "../g",
    "../..",
    "../../",
    "../../g",
    "../../../g",
    "../../../../g",
    "/./g",
    "/../g",
    "g.",
    ".g",
    "g..",
    "..g",
    "./../g",
    "./g/.",
    "g/./h",
    "g/../h",
    "g;x=1/./y",
    "g;x=1/../y",
    "g?y/./x",
    "g?y/../x",
    "g#s/./x",
    "g#s/../x",
    "https://other.org/x",
    "g h",
    "//[::1]:8/p",
    "//[x]/",
]


@pytest.mark.parametrize("base", JOIN_BASES)
@pytest.mark.parametrize("reference", JOIN_REFERENCES)
def test_join_matches_httpx(base: str, reference: str) -> None:
    assert snapshot(lambda: URL(base).join(reference)) == snapshot(
        lambda: httpx.URL(base).join(reference)
    )


@pytest.mark.parametrize(
    ("reference", "expected"),
    [
        ("g", "http://example.com/b/c/g"),
        ("//g", "http://g"),
        ("?y", "http://example.com/b/c/d;p?y"),
        ("#s", "http://example.com/b/c/d;p?q#s"),
        ("", "http://example.com/b/c/d;p?q"),
        ("..", "http://example.com/b/"),
        ("../../../../g", "http://example.com/g"),
        ("g;x=1/../y", "http://example.com/b/c/y"),
        ("g#s/../x", "http://example.com/b/c/g#s/../x"),
    ],
)
def test_join_rfc3986_examples(reference: str, expected: str) -> None:
    url = URL("http://example.com/b/c/d;p?q")
    assert url.join(reference) == expected
    assert url.join(URL(reference)) == expected


def test_join_keeps_url_brackets_in_query() -> None:
    # httpx issue 1833: "[]" in the base query once broke joining.
    assert URL("https://example.com/?[]").join("/") == "https://example.com/"


def test_components_of_a_complete_url() -> None:
    url = URL("HTTPS://jo%40email.com:a%20secret@müller.de:1234/pa%20th?search=ab#anchorlink")
    assert url.scheme == "https"
    assert url.raw_scheme == b"https"
    assert url.userinfo == b"jo%40email.com:a%20secret"
    assert url.username == "jo@email.com"
    assert url.password == "a secret"
    assert url.host == "müller.de"
    assert url.raw_host == b"xn--mller-kva.de"
    assert url.port == 1234
    assert url.netloc == b"xn--mller-kva.de:1234"
    assert url.path == "/pa th"
    assert url.query == b"search=ab"
    assert url.params == QueryParams({"search": "ab"})
    assert url.raw_path == b"/pa%20th?search=ab"
    assert url.fragment == "anchorlink"
    assert url.is_absolute_url
    assert not url.is_relative_url
    assert (
        str(url)
        == "https://jo%40email.com:a%20secret@xn--mller-kva.de:1234/pa%20th?search=ab#anchorlink"
    )


def test_repr_hides_the_password() -> None:
    url = URL("https://user:secret@example.com/path")
    assert repr(url) == "URL('https://user:[secure]@example.com/path')"
    assert "secret" in str(url)
    assert repr(URL("https://user@example.com")) == "URL('https://user@example.com')"


def test_trailing_question_mark_is_kept() -> None:
    assert URL("https://example.com/path").raw_path == b"/path"
    assert URL("https://example.com/path?").raw_path == b"/path?"
    assert URL("https://example.com/path?").query == b""


def test_relative_urls() -> None:
    url = URL("../abc")
    assert url.path == "../abc"
    assert url.is_relative_url
    assert URL("https://example.com/../abc").path == "/abc"
    assert URL("//example.com").is_relative_url


def test_default_ports_are_dropped() -> None:
    assert URL("https://example.com:443/").port is None
    assert URL("http://example.com:80") == URL("http://example.com")
    assert URL("https://example.com:123/").port == 123


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("https://example.com:abc/", "Invalid port: 'abc'"),
        ("https://999.999.999.999/", "Invalid IPv4 address: '999.999.999.999'"),
        ("https://[2001]/", "Invalid IPv6 address: '[2001]'"),
        ("https://☃.com/", "Invalid IDNA hostname: '☃.com'"),
        pytest.param("https://www.example.com/" + "x" * 100_000, "URL too long", id="too-long"),
        (
            "https://www.example.com/\n",
            "Invalid non-printable ASCII character in URL, '\\n' at position 24.",
        ),
    ],
)
def test_invalid_urls(url: str, message: str) -> None:
    with pytest.raises(InvalidURL) as exc_info:
        URL(url)
    assert str(exc_info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"path": "/" + "x" * 100_000}, "URL component 'path' too long"),
        (
            {"path": "/\n"},
            "Invalid non-printable ASCII character in URL path component, '\\n' at position 1.",
        ),
        ({"scheme": "~"}, "Invalid URL component 'scheme'"),
        ({"path": "//abc"}, "Relative URLs cannot have a path starting with '//'"),
        ({"path": ":abc"}, "Relative URLs cannot have a path starting with ':'"),
        (
            {"host": "example.com", "path": "abc"},
            "For absolute URLs, path must be empty or begin with '/'",
        ),
    ],
)
def test_invalid_components(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidURL) as exc_info:
        URL(**kwargs)
    assert str(exc_info.value) == message


def test_invalid_argument_types() -> None:
    with pytest.raises(TypeError) as exc_info:
        URL(scheme="https", incorrect="/")
    assert str(exc_info.value) == "'incorrect' is an invalid keyword argument for URL()"
    with pytest.raises(TypeError) as exc_info:
        URL("https://example.org").copy_with(userinfo="should be bytes")
    assert str(exc_info.value) == "Argument 'userinfo' must be bytes but got str"
    with pytest.raises(TypeError) as exc_info:
        URL(1)  # type: ignore[arg-type]
    assert str(exc_info.value) == (
        "Invalid type for url.  Expected str or httpx.URL, got <class 'int'>: 1"
    )


def test_ipv6_hosts() -> None:
    url = URL("http://[::ffff:192.168.0.1]:5678/")
    assert url.host == "::ffff:192.168.0.1"
    assert url.raw_host == b"::ffff:192.168.0.1"
    assert url.netloc == b"[::ffff:192.168.0.1]:5678"
    copied = URL("http://example.com:1234").copy_with(host="::1")
    assert str(copied) == "http://[::1]:1234"


def test_idna_hosts() -> None:
    url = URL("http://中国.icom.museum:80/")
    assert url == URL("http://xn--fiqs8s.icom.museum:80/")
    assert url.host == "中国.icom.museum"
    assert url.raw_host == b"xn--fiqs8s.icom.museum"
    assert url.port is None
    assert URL("https://xn--fiqs8s.icom.museum/").host == "中国.icom.museum"


def test_copy_with() -> None:
    url = URL("https://www.example.com/")
    assert url.copy_with() == url
    url = url.copy_with(scheme="http")
    assert str(url) == "http://www.example.com/"
    url = url.copy_with(netloc=b"example.com")
    assert str(url) == "http://example.com/"
    url = url.copy_with(path="/abc")
    assert str(url) == "http://example.com/abc"
    url = url.copy_with(username="tom@example.org", password="abc123@ %")
    assert url.userinfo == b"tom%40example.org:abc123%40%20%"
    assert url.password == "abc123@ %"


def test_param_helpers() -> None:
    url = URL("https://example.org:123/?a=123")
    assert url.copy_set_param("a", "456") == "https://example.org:123/?a=456"
    assert url.copy_add_param("a", "456") == "https://example.org:123/?a=123&a=456"
    assert url.copy_remove_param("a") == "https://example.org:123/"
    assert url.copy_merge_params({"b": "456"}) == "https://example.org:123/?a=123&b=456"
    assert url.copy_set_param("b", True) == "https://example.org:123/?a=123&b=true"


def test_params_are_form_encoded() -> None:
    url = URL("https://www.example.com/", params={"a": "b c", "d": "e/f"})
    assert url.raw_path == b"/?a=b+c&d=e%2Ff"
    assert str(URL("http://webservice", params={"u": "with%20spaces"})) == (
        "http://webservice?u=with%2520spaces"
    )
    # params replace the query of the URL rather than extending it.
    url = URL("https://example.org/path?b=456", params={"a": "123"})
    assert str(url) == "https://example.org/path?a=123"


def test_equality_and_hashing() -> None:
    url = URL("https://example.org:123/path?abc=123#anchor")
    assert url == "https://example.org:123/path?abc=123#anchor"
    assert url == URL("HTTPS://EXAMPLE.org:123/path?abc=123#anchor")
    assert url != "https://example.org:123/path"
    assert url != 123
    assert url != httpx.URL(str(url))
    assert hash(url) == hash(str(url))
    assert len({URL("http://a/"), URL("http://A:80/"), URL("http://b/")}) == 2


def test_raw_is_deprecated() -> None:
    url = URL("https://example.org:123/path?q")
    with pytest.warns(UserWarning, match=r"^URL\.raw is deprecated\.$"):
        raw = url.raw
    assert raw == (b"https", b"example.org", 123, b"/path?q")
    assert raw.raw_path == b"/path?q"


def test_quote_keeps_escapes_and_encodes_utf8() -> None:
    assert quote("a b%20c%zz", PATH_SAFE) == "a%20b%20c%zz"
    assert quote("ü`", FRAGMENT_SAFE) == "%C3%BC%60"
    assert quote("plain", PATH_SAFE) == "plain"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/b/c", "/a/b/c"),
        ("/a/./b/../c", "/a/c"),
        ("/../a", "/a"),
        ("/a/.", "/a"),
        ("/a/..", ""),
        ("a/../../b", "b"),
        ("/a.b/..c", "/a.b/..c"),
    ],
)
def test_remove_dot_segments(path: str, expected: str) -> None:
    assert remove_dot_segments(path) == expected


def test_parsed_url_round_trips() -> None:
    parsed = urlparse("https://u:p@[::1]:8080/p?q#f")
    assert parsed == ParsedURL("https", "u:p", "::1", 8080, "/p", "q", "f")
    assert parsed.authority == "u:p@[::1]:8080"
    assert parsed.netloc == "[::1]:8080"
    assert str(parsed) == "https://u:p@[::1]:8080/p?q#f"
    assert parsed.copy_with() is parsed
    assert str(parsed.copy_with(path="/x")) == "https://u:p@[::1]:8080/x?q#f"
