"""`Headers`: the case-insensitive HTTP header multi-dict, as in httpx."""

from __future__ import annotations

import typing
from collections.abc import Iterator, KeysView, Mapping, MutableMapping, Sequence, ValuesView

__all__ = ["SENSITIVE_HEADERS", "HeaderTypes", "Headers"]

HeaderTypes = typing.Union[
    "Headers",
    Mapping[str, str],
    Mapping[bytes, bytes],
    Sequence[tuple[str, str]],
    Sequence[tuple[bytes, bytes]],
]

# Header names whose values `repr()` hides.
SENSITIVE_HEADERS = frozenset({"authorization", "proxy-authorization"})


def _encode_value(value: str | bytes, encoding: str | None) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise TypeError(f"Header value must be str or bytes, not {type(value)}")
    return value.encode(encoding or "ascii")


def _detect_encoding(raw: list[tuple[bytes, bytes]]) -> str:
    # HTTP mandates ASCII, but real servers send UTF-8 or Latin-1; ISO-8859-1
    # decodes any byte, so it is the final fallback.
    if all(key.isascii() and value.isascii() for key, value in raw):
        return "ascii"
    try:
        for key, value in raw:
            key.decode("utf-8")
            value.decode("utf-8")
    except UnicodeDecodeError:
        return "iso-8859-1"
    return "utf-8"


class Headers(MutableMapping[str, str]):
    """
    HTTP headers, as a case-insensitive multi-dict.
    """

    # `_raw` holds the (name as sent, value) pairs and is the only source of
    # truth. `_index` maps each lower-cased name to its values in order; it is
    # built on first lookup so that headers which are never read cost nothing.
    # The class-level defaults spare `_from_raw` from setting them.
    _raw: list[tuple[bytes, bytes]]
    _index: dict[bytes, list[bytes]] | None = None
    _encoding: str | None = None

    def __init__(self, headers: HeaderTypes | None = None, encoding: str | None = None) -> None:
        if isinstance(headers, Headers):
            self._raw = list(headers._raw)
        elif headers is None:
            self._raw = []
        else:
            items: typing.Iterable[tuple[str | bytes, str | bytes]] = (
                headers.items() if isinstance(headers, Mapping) else headers
            )
            self._raw = [
                (
                    key if isinstance(key, bytes) else key.encode(encoding or "ascii"),
                    _encode_value(value, encoding),
                )
                for key, value in items
            ]
        self._encoding = encoding

    @classmethod
    def _from_raw(cls, raw: list[tuple[bytes, bytes]]) -> Headers:
        """
        Wrap header pairs received from the network without copying or
        validating them. The list is owned by the new instance from then on.
        """
        self = object.__new__(cls)
        self._raw = raw
        return self

    def _lookup(self) -> dict[bytes, list[bytes]]:
        index = self._index
        if index is None:
            index = {}
            for key, value in self._raw:
                lower = key.lower()
                values = index.get(lower)
                if values is None:
                    index[lower] = [value]
                else:
                    values.append(value)
            self._index = index
        return index

    @property
    def encoding(self) -> str:
        """
        Header encoding is mandated as ascii, but we allow fallbacks to utf-8
        or iso-8859-1.
        """
        if self._encoding is None:
            self._encoding = _detect_encoding(self._raw)
        return self._encoding

    @encoding.setter
    def encoding(self, value: str) -> None:
        self._encoding = value

    @property
    def raw(self) -> list[tuple[bytes, bytes]]:
        """
        Returns a list of the raw header items, as byte pairs.
        """
        return list(self._raw)

    def _merged(self) -> dict[str, str]:
        encoding = self.encoding
        return {
            key.decode(encoding): ", ".join([value.decode(encoding) for value in values])
            for key, values in self._lookup().items()
        }

    def keys(self) -> KeysView[str]:
        encoding = self.encoding
        return {key.decode(encoding): None for key in self._lookup()}.keys()

    def values(self) -> ValuesView[str]:
        return self._merged().values()

    def items(self) -> typing.ItemsView[str, str]:
        """
        Return `(key, value)` items of headers. Concatenate headers
        into a single comma separated value when a key occurs multiple times.
        """
        return self._merged().items()

    def multi_items(self) -> list[tuple[str, str]]:
        """
        Return a list of `(key, value)` pairs of headers. Allow multiple
        occurrences of the same key without concatenating into a single
        comma separated value.
        """
        encoding = self.encoding
        return [(key.lower().decode(encoding), value.decode(encoding)) for key, value in self._raw]

    def get(self, key: str, default: typing.Any = None) -> typing.Any:
        """
        Return a header value. If multiple occurrences of the header occur
        then concatenate them together with commas.
        """
        try:
            return self[key]
        except KeyError:
            return default

    def get_list(self, key: str, split_commas: bool = False) -> list[str]:
        """
        Return a list of all header values for a given key.
        If `split_commas=True` is passed, then any comma separated header
        values are split into multiple return strings.
        """
        encoding = self.encoding
        found = self._lookup().get(key.lower().encode(encoding), [])
        values = [value.decode(encoding) for value in found]
        if not split_commas:
            return values
        return [item.strip() for value in values for item in value.split(",")]

    def update(self, headers: HeaderTypes | None = None) -> None:  # type: ignore[override]
        other = Headers(headers)
        for key in other:
            if key in self:
                del self[key]
        self._raw.extend(other._raw)
        self._index = None

    def copy(self) -> Headers:
        return Headers(self, encoding=self.encoding)

    def __getitem__(self, key: str) -> str:
        """
        Return a single header value.

        If there are multiple headers with the same key, then we concatenate
        them with commas. See: https://tools.ietf.org/html/rfc7230#section-3.2.2
        """
        encoding = self.encoding
        values = self._lookup().get(key.lower().encode(encoding))
        if values is None:
            raise KeyError(key)
        if len(values) == 1:
            return values[0].decode(encoding)
        return ", ".join([value.decode(encoding) for value in values])

    def __setitem__(self, key: str, value: str) -> None:
        """
        Set the header `key` to `value`, removing any duplicate entries.
        Retains insertion order.
        """
        # httpx encodes with the explicit encoding only, never a detected one.
        encoding = self._encoding or "utf-8"
        set_key = key.encode(encoding)
        set_value = value.encode(encoding)
        lookup_key = set_key.lower()
        index = self._lookup()
        raw = self._raw
        if lookup_key in index:
            found = [i for i, (item_key, _) in enumerate(raw) if item_key.lower() == lookup_key]
            for i in reversed(found[1:]):
                del raw[i]
            raw[found[0]] = (set_key, set_value)
        else:
            raw.append((set_key, set_value))
        # Replacing the first occurrence keeps the name's position, which is
        # exactly what assigning to an existing dict key does.
        index[lookup_key] = [set_value]

    def __delitem__(self, key: str) -> None:
        """
        Remove the header `key`.
        """
        del_key = key.lower().encode(self.encoding)
        index = self._lookup()
        if del_key not in index:
            raise KeyError(key)
        del index[del_key]
        self._raw = [item for item in self._raw if item[0].lower() != del_key]

    def __contains__(self, key: typing.Any) -> bool:
        return key.lower().encode(self.encoding) in self._lookup()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._raw)

    def __eq__(self, other: object) -> bool:
        try:
            other_headers = Headers(other)  # type: ignore[arg-type]
        except ValueError:
            return False
        self_items = sorted((key.lower(), value) for key, value in self._raw)
        other_items = sorted((key.lower(), value) for key, value in other_headers._raw)
        return self_items == other_items

    def __repr__(self) -> str:
        class_name = self.__class__.__name__
        encoding_str = "" if self.encoding == "ascii" else f", encoding={self.encoding!r}"
        as_list = [
            (key, "[secure]" if key in SENSITIVE_HEADERS else value)
            for key, value in self.multi_items()
        ]
        as_dict = dict(as_list)
        if len(as_dict) == len(as_list):
            return f"{class_name}({as_dict!r}{encoding_str})"
        return f"{class_name}({as_list!r}{encoding_str})"
