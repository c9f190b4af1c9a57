"""
`Headers` must behave exactly like `httpx.Headers`; many tests run the same
operations on both and compare every observable result.
"""

from __future__ import annotations

import pickle
import typing

import httpx
import pytest
from loopfree._headers import Headers

AnyHeaders = typing.Any


def observe(headers: AnyHeaders) -> dict[str, typing.Any]:
    """Everything public that a `Headers` instance shows."""
    return {
        "raw": headers.raw,
        "encoding": headers.encoding,
        "keys": list(headers.keys()),
        "values": list(headers.values()),
        "items": list(headers.items()),
        "multi_items": headers.multi_items(),
        "iter": list(headers),
        "len": len(headers),
        "dict": dict(headers),
        "repr": repr(headers),
    }


def outcome(operation: typing.Callable[[], typing.Any]) -> typing.Any:
    try:
        return ("ok", operation())
    except Exception as exc:
        return ("raised", type(exc).__name__, str(exc))


INPUTS: list[typing.Any] = [
    None,
    {},
    {"a": "123", "b": "789"},
    {"Content-Type": "text/html", "X-Trace": "abc"},
    [("a", "123"), ("A", "456"), ("b", "789")],
    [(b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2"), (b"Server", b"x")],
    (("a", "1"), ("b", "2")),
    {b"a": b"1", b"B": b"2"},
    [(b"Latin", b"caf\xe9")],
    [(b"Utf8", "café".encode())],
    [("Authorization", "Bearer x"), ("Proxy-Authorization", "y"), ("a", "b")],
    [("Authorization", "x"), ("authorization", "y")],
    [("a", "1, 2"), ("a", "3")],
    [("empty", "")],
]


@pytest.mark.parametrize("value", INPUTS)
def test_observable_state_matches_httpx(value: typing.Any) -> None:
    assert observe(Headers(value)) == observe(httpx.Headers(value))


@pytest.mark.parametrize("value", INPUTS)
def test_from_raw_matches_httpx(value: typing.Any) -> None:
    raw = httpx.Headers(value).raw
    assert observe(Headers._from_raw(raw)) == observe(httpx.Headers(raw))


def test_constructor_with_headers_copies() -> None:
    original = Headers({"a": "1"})
    copy = Headers(original)
    copy["b"] = "2"
    assert "b" not in original
    assert copy.raw == [(b"a", b"1"), (b"b", b"2")]


def test_raw_preserves_case_and_order() -> None:
    headers = Headers([("Content-Type", "a"), ("x-Mixed-CASE", "b"), ("content-type", "c")])
    assert headers.raw == [
        (b"Content-Type", b"a"),
        (b"x-Mixed-CASE", b"b"),
        (b"content-type", b"c"),
    ]
    assert headers["CONTENT-TYPE"] == "a, c"
    assert headers.multi_items() == [
        ("content-type", "a"),
        ("x-mixed-case", "b"),
        ("content-type", "c"),
    ]


def test_raw_is_a_copy() -> None:
    headers = Headers({"a": "1"})
    headers.raw.append((b"b", b"2"))
    assert headers.raw == [(b"a", b"1")]


def test_case_insensitive_access() -> None:
    headers = Headers({"Content-Type": "text/plain"})
    assert headers["content-type"] == "text/plain"
    assert headers["CONTENT-TYPE"] == "text/plain"
    assert "content-TYPE" in headers
    assert headers.get("Content-type") == "text/plain"
    assert headers.get("missing") is None
    assert headers.get("missing", "default") == "default"
    with pytest.raises(KeyError, match="missing"):
        headers["missing"]


def test_duplicates_are_merged_for_mapping_access() -> None:
    headers = Headers([("a", "1"), ("b", "2"), ("A", "3")])
    assert headers["a"] == "1, 3"
    assert list(headers.keys()) == ["a", "b"]
    assert list(headers.values()) == ["1, 3", "2"]
    assert list(headers.items()) == [("a", "1, 3"), ("b", "2")]
    assert len(headers) == 3
    assert headers.get_list("a") == ["1", "3"]


def test_get_list_split_commas() -> None:
    headers = Headers([("Vary", "Accept, Accept-Encoding"), ("vary", "Cookie")])
    assert headers.get_list("vary") == ["Accept, Accept-Encoding", "Cookie"]
    assert headers.get_list("vary", split_commas=True) == ["Accept", "Accept-Encoding", "Cookie"]
    assert headers.get_list("missing", split_commas=True) == []


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ([], "ascii"),
        ([(b"a", b"plain")], "ascii"),
        ([(b"a", "café".encode())], "utf-8"),
        ([(b"a", b"plain"), (b"b", b"caf\xe9")], "iso-8859-1"),
        ([("é".encode(), b"x")], "utf-8"),
    ],
)
def test_encoding_detection(raw: list[tuple[bytes, bytes]], expected: str) -> None:
    assert Headers(raw).encoding == expected
    assert Headers._from_raw(list(raw)).encoding == expected
    assert httpx.Headers(raw).encoding == expected


def test_encoding_can_be_set() -> None:
    headers = Headers([(b"a", "café".encode())])
    assert headers["a"] == "café"
    headers.encoding = "iso-8859-1"
    assert headers["a"] == "cafÃ©"
    assert repr(headers) == "Headers({'a': 'cafÃ©'}, encoding='iso-8859-1')"


def test_explicit_encoding_encodes_str_input() -> None:
    headers = Headers({"a": "café"}, encoding="utf-8")
    assert headers.raw == [(b"a", "café".encode())]
    assert headers.encoding == "utf-8"
    with pytest.raises(UnicodeEncodeError):
        Headers({"a": "café"})


def test_value_type_is_checked() -> None:
    with pytest.raises(TypeError, match="Header value must be str or bytes, not <class 'int'>"):
        Headers({"a": 1})  # type: ignore[arg-type]


def test_setitem_replaces_all_duplicates_in_place() -> None:
    headers = Headers([("a", "1"), ("b", "2"), ("A", "3")])
    headers["A"] = "x"
    assert headers.raw == [(b"A", b"x"), (b"b", b"2")]
    headers["c"] = "y"
    assert headers.raw == [(b"A", b"x"), (b"b", b"2"), (b"c", b"y")]
    assert list(headers.items()) == [("a", "x"), ("b", "2"), ("c", "y")]


def test_delitem_removes_all_occurrences() -> None:
    headers = Headers([("a", "1"), ("b", "2"), ("A", "3")])
    del headers["a"]
    assert headers.raw == [(b"b", b"2")]
    assert "a" not in headers
    with pytest.raises(KeyError):
        del headers["a"]


def test_update_replaces_existing_keys() -> None:
    headers = Headers([("a", "1"), ("b", "2"), ("A", "3")])
    headers.update({"a": "z", "c": "d"})
    assert headers.raw == [(b"b", b"2"), (b"a", b"z"), (b"c", b"d")]
    headers.update(None)
    assert headers.raw == [(b"b", b"2"), (b"a", b"z"), (b"c", b"d")]
    headers.update([("B", "x"), ("b", "y")])
    assert headers.get_list("b") == ["x", "y"]


def test_mutable_mapping_mixins() -> None:
    headers = Headers({"a": "1"})
    assert headers.setdefault("a", "x") == "1"
    assert headers.setdefault("b", "2") == "2"
    assert headers.pop("a") == "1"
    assert headers.raw == [(b"b", b"2")]
    headers.clear()
    assert headers.raw == []
    assert not headers


def test_copy_is_independent_and_keeps_encoding() -> None:
    headers = Headers([(b"a", b"caf\xe9")])
    copy = headers.copy()
    assert copy == headers
    assert copy.encoding == "iso-8859-1"
    copy["b"] = "2"
    assert "b" not in headers


@pytest.mark.parametrize(
    "other",
    [
        {"a": "1", "b": "2"},
        {"A": "1", "B": "2"},
        [("b", "2"), ("a", "1")],
        {"a": "1"},
        {"a": "2", "b": "2"},
        [("a", "1"), ("b", "2"), ("a", "1")],
        [("a", "1", "x")],
        "not headers",
        None,
        [],
    ],
)
def test_equality_matches_httpx(other: typing.Any) -> None:
    ours = Headers([("a", "1"), ("B", "2")])
    theirs = httpx.Headers([("a", "1"), ("B", "2")])
    assert (ours == other) == (theirs == other)
    assert (ours != other) == (theirs != other)


def test_equality() -> None:
    assert Headers({"a": "1"}) == Headers({"A": "1"})
    assert Headers({"a": "1"}) == {"a": "1"}
    assert Headers({"a": "1"}) == [("A", "1")]
    assert Headers({"a": "1"}) != {"a": "2"}
    assert Headers({"a": "1"}) != "a string"
    assert Headers([("a", "1"), ("a", "2")]) == [("a", "2"), ("a", "1")]


def test_repr() -> None:
    assert repr(Headers({"A": "1"})) == "Headers({'a': '1'})"
    assert repr(Headers([("a", "1"), ("a", "2")])) == "Headers([('a', '1'), ('a', '2')])"
    assert (
        repr(Headers({"Authorization": "secret", "Proxy-Authorization": "x", "a": "b"}))
        == "Headers({'authorization': '[secure]', 'proxy-authorization': '[secure]', 'a': 'b'})"
    )
    assert repr(Headers([(b"a", b"\xff")])) == "Headers({'a': 'ÿ'}, encoding='iso-8859-1')"


OPERATIONS: list[tuple[str, typing.Callable[[AnyHeaders], typing.Any]]] = [
    ("setitem new", lambda h: h.__setitem__("new", "v")),
    ("setitem existing", lambda h: h.__setitem__("SET-COOKIE", "v")),
    ("setitem non-ascii", lambda h: h.__setitem__("x", "é")),
    ("delitem", lambda h: h.__delitem__("Server")),
    ("delitem missing", lambda h: h.__delitem__("missing")),
    ("update", lambda h: h.update({"server": "y", "n": "1"})),
    ("update list", lambda h: h.update([("a", "1"), ("A", "2")])),
    ("setdefault", lambda h: h.setdefault("server", "z")),
    ("pop", lambda h: h.pop("set-cookie")),
    ("popitem", lambda h: h.popitem()),
    ("clear", lambda h: h.clear()),
    ("get_list", lambda h: h.get_list("Set-Cookie", split_commas=True)),
    ("contains", lambda h: "SERVER" in h),
    ("encoding then setitem", lambda h: (h.encoding, h.__setitem__("x", "é"))),
    ("set encoding", lambda h: h.__setattr__("encoding", "iso-8859-1")),
]


@pytest.mark.parametrize("raw_input", [False, True])
@pytest.mark.parametrize(("name", "operation"), OPERATIONS, ids=[name for name, _ in OPERATIONS])
def test_mutations_match_httpx(
    name: str, operation: typing.Callable[[AnyHeaders], typing.Any], raw_input: bool
) -> None:
    raw = [(b"Set-Cookie", b"a=1, b=2"), (b"Server", b"x"), (b"set-cookie", b"c=3")]
    ours = Headers._from_raw(list(raw)) if raw_input else Headers(raw)
    theirs = httpx.Headers(raw)
    # Read once first, so that lazily built lookups are exercised too.
    assert ours.get("server") == theirs.get("server")
    assert outcome(lambda: operation(ours)) == outcome(lambda: operation(theirs))
    assert observe(ours) == observe(theirs)


def test_from_raw_takes_the_list_over_and_defers_work() -> None:
    raw = [(b"Content-Type", b"text/plain"), (b"X-A", b"1"), (b"x-a", b"2")]
    headers = Headers._from_raw(raw)
    # No lookup structure and no encoding detection until first use.
    assert headers._index is None
    assert headers._encoding is None
    assert headers.raw == raw
    assert headers.raw is not raw
    assert len(headers) == 3
    assert headers._index is None
    assert headers["x-a"] == "1, 2"
    assert headers._index is not None
    assert headers.encoding == "ascii"


def test_pickle_round_trip() -> None:
    headers = Headers([(b"A", b"1"), (b"b", b"caf\xe9")])
    headers["a"]  # builds the lazy lookup first
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        restored = pickle.loads(pickle.dumps(headers, protocol=protocol))
        assert restored.raw == headers.raw
        assert restored.encoding == "iso-8859-1"
        assert restored["b"] == "café"


def test_is_a_mutable_mapping() -> None:
    import collections.abc

    assert isinstance(Headers(), collections.abc.MutableMapping)
    with pytest.raises(TypeError):
        hash(Headers())
