"""`QueryParams` must behave exactly like `httpx.QueryParams`."""

from __future__ import annotations

import typing

import httpx
import pytest
from loopfree._query_params import QueryParams, primitive_value_to_str


def snapshot(build: typing.Callable[[], typing.Any]) -> list[typing.Any]:
    """Everything observable about the QueryParams `build()` returns, or its error."""
    try:
        params = build()
    except Exception as exc:
        return ["raises", type(exc).__name__, str(exc)]
    views: list[typing.Callable[[typing.Any], typing.Any]] = [
        str,
        repr,
        len,
        bool,
        list,
        lambda q: q.multi_items(),
        lambda q: list(q.keys()),
        lambda q: list(q.values()),
        lambda q: list(q.items()),
        lambda q: dict(q),
    ]
    result: list[typing.Any] = []
    for view in views:
        try:
            result.append(view(params))
        except Exception as exc:
            result.append(["raises", type(exc).__name__, str(exc)])
    return result


SOURCES: list[typing.Any] = [
    None,
    "",
    b"",
    "a=123&a=456&b=789",
    b"a=123&a=456&b=789",
    "a=1&b=2&a=3",
    "a",
    "a=",
    "=a",
    "&&a=1&&",
    "a=1;b=2",
    "a+b=c+d",
    "a%20b=c%2Bd%26",
    "a=%zz&b=%C3%BC&c=%FF",
    "q=ü",
    "x=1#frag",
    b"\xc3\xbc=1",
    {"a": ["123", "456"], "b": 789},
    {"a": ("123", "456"), "b": 789},
    {"a": True, "b": False, "c": None, "d": 1.5, "e": 0, "f": ""},
    {"a": []},
    {1: "int key", None: "none key", False: "bool key"},
    {"sp ace": "a&b=c", "ü": "ß"},
    [("a", "123"), ("a", "456"), ("b", "789")],
    (("a", "123"), ("a", "456"), ("b", "789")),
    [("a", None), ("a", True), (2, 3)],
    [],
    (),
    {},
]


@pytest.mark.parametrize("source", SOURCES)
def test_construction_matches_httpx(source: typing.Any) -> None:
    assert snapshot(lambda: QueryParams(source)) == snapshot(lambda: httpx.QueryParams(source))


def test_keyword_construction_matches_httpx() -> None:
    assert snapshot(lambda: QueryParams(a=1, b=[2, 3])) == snapshot(
        lambda: httpx.QueryParams(a=1, b=[2, 3])
    )


OPERATIONS: list[tuple[str, tuple[typing.Any, ...]]] = [
    ("set", ("a", "456")),
    ("set", ("new", None)),
    ("set", (1, True)),
    ("add", ("a", "456")),
    ("add", ("new", 1.5)),
    ("add", (2, False)),
    ("remove", ("a",)),
    ("remove", ("missing",)),
    ("merge", (None,)),
    ("merge", ({"b": "456"},)),
    ("merge", ({"a": "000", "c": "789"},)),
    ("merge", ("a=x&a=y",)),
    ("merge", ([("z", 1)],)),
]


@pytest.mark.parametrize(("method", "args"), OPERATIONS)
@pytest.mark.parametrize("source", ["a=123&a=456&b=789", "", "b=1&a=2"])
def test_copying_operations_match_httpx(
    source: str, method: str, args: tuple[typing.Any, ...]
) -> None:
    original = QueryParams(source)
    assert snapshot(lambda: getattr(original, method)(*args)) == snapshot(
        lambda: getattr(httpx.QueryParams(source), method)(*args)
    )
    # The receiver is never modified.
    assert original == QueryParams(source)


@pytest.mark.parametrize("key", ["a", "b", "A", "c", 1, None])
@pytest.mark.parametrize("source", ["a=123&a=456&b=789", {1: "x"}, ""])
def test_lookups_match_httpx(source: typing.Any, key: typing.Any) -> None:
    ours, theirs = QueryParams(source), httpx.QueryParams(source)
    assert (key in ours) == (key in theirs)
    assert ours.get(key) == theirs.get(key)
    assert ours.get(key, default="fallback") == theirs.get(key, default="fallback")
    assert ours.get_list(key) == theirs.get_list(key)
    if key in theirs:
        assert ours[key] == theirs[key]
    else:
        with pytest.raises(KeyError):
            ours[key]


@pytest.mark.parametrize(
    "source",
    [
        "a=123&a=456&b=789",
        {"a": ["123", "456"], "b": 789},
        [("a", "123"), ("a", "456"), ("b", "789")],
    ],
)
def test_multi_dict_access(source: typing.Any) -> None:
    params = QueryParams(source)
    assert params["a"] == "123"
    assert params.get("a") == "123"
    assert params.get("nope", default=None) is None
    assert params.get_list("a") == ["123", "456"]
    assert params.multi_items() == [("a", "123"), ("a", "456"), ("b", "789")]
    assert list(params) == ["a", "b"]
    assert list(params.values()) == ["123", "789"]
    assert dict(params) == {"a": "123", "b": "789"}
    assert str(params) == "a=123&a=456&b=789"
    assert repr(params) == "QueryParams('a=123&a=456&b=789')"


def test_get_list_returns_a_copy() -> None:
    params = QueryParams("a=1")
    params.get_list("a").append("2")
    assert params.get_list("a") == ["1"]


def test_equality_ignores_order() -> None:
    assert QueryParams({"a": "123", "b": "456"}) == QueryParams([("b", "456"), ("a", "123")])
    assert QueryParams("a=1&a=2") == QueryParams("a=2&a=1")
    assert QueryParams() == QueryParams({})
    assert QueryParams("a=1") != QueryParams("a=2")
    assert QueryParams("a=1") != "a=1"
    assert QueryParams("a=1") != httpx.QueryParams("a=1")


def test_hashing() -> None:
    params = [QueryParams("a=123"), QueryParams({"a": 123}), QueryParams("b=456")]
    assert len(set(params)) == 2
    assert hash(QueryParams("a=1")) == hash("a=1")


def test_mutation_is_refused() -> None:
    params = QueryParams("a=123")
    with pytest.raises(RuntimeError) as exc_info:
        params.update({"a": "456"})
    assert str(exc_info.value) == (
        "QueryParams are immutable since 0.18.0. Use `q = q.merge(...)` to create an updated copy."
    )
    with pytest.raises(RuntimeError) as exc_info:
        params["a"] = "456"
    assert str(exc_info.value) == (
        "QueryParams are immutable since 0.18.0. "
        "Use `q = q.set(key, value)` to create an updated copy."
    )
    assert params == QueryParams("a=123")


def test_bad_arguments() -> None:
    with pytest.raises(AssertionError, match="Too many arguments"):
        QueryParams("a=1", "b=2")  # type: ignore[call-arg]
    with pytest.raises(AssertionError, match="Cannot mix named and unnamed arguments"):
        QueryParams("a=1", b=2)
    with pytest.raises(UnicodeDecodeError):
        QueryParams(b"\xff=1")


@pytest.mark.parametrize(
    ("value", "expected"),
    [(True, "true"), (False, "false"), (None, ""), (0, "0"), (1.5, "1.5"), ("", ""), ("x", "x")],
)
def test_primitive_value_to_str(value: typing.Any, expected: str) -> None:
    assert primitive_value_to_str(value) == expected
