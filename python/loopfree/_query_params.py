from __future__ import annotations

import typing
from collections.abc import ItemsView, Iterator, KeysView, Mapping, Sequence, ValuesView
from urllib.parse import parse_qsl, urlencode

__all__ = ["PrimitiveData", "QueryParamTypes", "QueryParams", "primitive_value_to_str"]

PrimitiveData = str | int | float | bool | None

QueryParamTypes = typing.Union[
    "QueryParams",
    Mapping[str, PrimitiveData | Sequence[PrimitiveData]],
    list[tuple[str, PrimitiveData]],
    tuple[tuple[str, PrimitiveData], ...],
    str,
    bytes,
]

_IMMUTABLE = "QueryParams are immutable since 0.18.0. "


def primitive_value_to_str(value: PrimitiveData) -> str:
    """
    Render a query or form value as text: booleans the JSON way ("true",
    "false"), None as "", anything else with `str()`.
    """
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    return str(value)


class QueryParams(Mapping[str, str]):
    """
    An immutable multi-dict of URL query parameters.

    Indexing, `get()`, `values()` and `items()` see the first value of each
    key; `get_list()` and `multi_items()` see them all. `set()`, `add()`,
    `remove()` and `merge()` return new instances.
    """

    _dict: dict[str, list[str]]

    def __init__(self, *args: QueryParamTypes | None, **kwargs: typing.Any) -> None:
        assert len(args) < 2, "Too many arguments."
        assert not (args and kwargs), "Cannot mix named and unnamed arguments."
        value = args[0] if args else kwargs

        if value is None or isinstance(value, str | bytes):
            text = value.decode("ascii") if isinstance(value, bytes) else value or ""
            self._dict = {}
            for key, item in parse_qsl(text, keep_blank_values=True):
                self._dict.setdefault(key, []).append(item)
        elif isinstance(value, QueryParams):
            self._dict = {key: list(items) for key, items in value._dict.items()}
        else:
            pairs: dict[typing.Any, list[typing.Any]] = {}
            if isinstance(value, list | tuple):
                for pair in value:
                    pairs.setdefault(pair[0], []).append(pair[1])
            else:
                for key, given in value.items():
                    pairs[key] = list(given) if isinstance(given, list | tuple) else [given]
            self._dict = {
                str(key): [primitive_value_to_str(item) for item in items]
                for key, items in pairs.items()
            }

    def _with_dict(self, new_dict: dict[str, list[str]]) -> QueryParams:
        params = QueryParams()
        params._dict = new_dict
        return params

    def keys(self) -> KeysView[str]:
        """The distinct keys, in order of first appearance."""
        return self._dict.keys()

    def values(self) -> ValuesView[str]:
        """The first value of each key."""
        return {key: items[0] for key, items in self._dict.items()}.values()

    def items(self) -> ItemsView[str, str]:
        """(key, first value) for each key."""
        return {key: items[0] for key, items in self._dict.items()}.items()

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (key, value) pair, repeated keys included, grouped by key."""
        return [(key, item) for key, items in self._dict.items() for item in items]

    def get(self, key: typing.Any, default: typing.Any = None) -> typing.Any:
        """The first value of `key`, or `default` if it is absent."""
        if key in self._dict:
            return self._dict[str(key)][0]
        return default

    def get_list(self, key: str) -> list[str]:
        """All the values of `key`, possibly none."""
        return list(self._dict.get(str(key), []))

    def set(self, key: str, value: typing.Any = None) -> QueryParams:
        """A copy in which `key` has the single value `value`."""
        return self._with_dict({**self._dict, str(key): [primitive_value_to_str(value)]})

    def add(self, key: str, value: typing.Any = None) -> QueryParams:
        """A copy with `value` appended to the values of `key`."""
        appended = [*self.get_list(key), primitive_value_to_str(value)]
        return self._with_dict({**self._dict, str(key): appended})

    def remove(self, key: str) -> QueryParams:
        """A copy without `key`."""
        new_dict = dict(self._dict)
        new_dict.pop(str(key), None)
        return self._with_dict(new_dict)

    def merge(self, params: QueryParamTypes | None = None) -> QueryParams:
        """A copy in which the keys of `params` replace those already present."""
        return self._with_dict({**self._dict, **QueryParams(params)._dict})

    def __getitem__(self, key: typing.Any) -> str:
        return self._dict[key][0]

    def __contains__(self, key: typing.Any) -> bool:
        return key in self._dict

    def __iter__(self) -> Iterator[typing.Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._dict)

    def __bool__(self) -> bool:
        return bool(self._dict)

    def __hash__(self) -> int:
        return hash(str(self))

    def __eq__(self, other: typing.Any) -> bool:
        # Order matters neither between keys nor between a key's values.
        if not isinstance(other, self.__class__):
            return False
        return sorted(self.multi_items()) == sorted(other.multi_items())

    def __str__(self) -> str:
        return urlencode(self.multi_items())

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}({str(self)!r})"

    def update(self, params: QueryParamTypes | None = None) -> None:
        raise RuntimeError(_IMMUTABLE + "Use `q = q.merge(...)` to create an updated copy.")

    def __setitem__(self, key: str, value: str) -> None:
        raise RuntimeError(_IMMUTABLE + "Use `q = q.set(key, value)` to create an updated copy.")
