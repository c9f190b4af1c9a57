from __future__ import annotations

import typing
import warnings
from urllib.parse import unquote, urljoin

import idna

from ._query_params import QueryParams, QueryParamTypes
from ._urlparse import ParsedURL, urlparse

__all__ = ["URL"]

# The keyword arguments URL() accepts, with the type each must have; bytes
# values are ASCII-decoded before parsing.
_KEYWORD_TYPES: dict[str, type] = {
    "scheme": str,
    "username": str,
    "password": str,
    "userinfo": bytes,
    "host": str,
    "port": int,
    "netloc": bytes,
    "path": str,
    "query": bytes,
    "raw_path": bytes,
    "fragment": str,
    "params": object,
}


def _check_keyword_type(key: str, value: object) -> None:
    expected = _KEYWORD_TYPES.get(key)
    if expected is None:
        raise TypeError(f"{key!r} is an invalid keyword argument for URL()")
    if value is not None and not isinstance(value, expected):
        raise TypeError(
            f"Argument {key!r} must be {expected.__name__} but got {type(value).__name__}"
        )


class RawURL(typing.NamedTuple):
    """What the deprecated `URL.raw` returns."""

    raw_scheme: bytes
    raw_host: bytes
    port: int | None
    raw_path: bytes


class URL:
    """
    An immutable, normalised URL, parsed and validated on construction.

        url = URL("HTTPS://jo%40email.com:a%20secret@müller.de:1234/pa%20th?q=a#frag")
        url.scheme    "https"              url.userinfo  b"jo%40email.com:a%20secret"
        url.username  "jo@email.com"       url.password  "a secret"
        url.host      "müller.de"          url.raw_host  b"xn--mller-kva.de"
        url.port      1234                 url.netloc    b"xn--mller-kva.de:1234"
        url.path      "/pa th"             url.query     b"q=a"
        url.raw_path  b"/pa%20th?q=a"      url.fragment  "frag"

    The scheme and host are lower-cased and default ports become None. The
    bytes properties stay percent-encoded; the str ones are decoded.

    Components can be given as keywords, alone or to replace parts of `url`:
    `URL("https://example.com", path="/a", params={"q": 1})`.
    """

    _uri: ParsedURL

    def __init__(self, url: URL | str = "", **kwargs: typing.Any) -> None:
        components: dict[str, str | None] = {}
        for key, value in kwargs.items():
            _check_keyword_type(key, value)
            if key == "params":
                continue
            if isinstance(value, bytes):
                components[key] = value.decode("ascii")
            elif isinstance(value, int):
                components[key] = str(value)
            else:
                components[key] = value
        if "params" in kwargs:
            # `params` wins over `query`; no params means no "?" at all.
            params = kwargs["params"]
            components["query"] = str(QueryParams(params)) if params else None

        if isinstance(url, str):
            self._uri = urlparse(url, **components)
        elif isinstance(url, URL):
            self._uri = url._uri.copy_with(**components)
        else:
            raise TypeError(
                f"Invalid type for url.  Expected str or httpx.URL, got {type(url)}: {url!r}"
            )

    @property
    def scheme(self) -> str:
        """The lower-cased scheme, such as "https"; "" for a relative URL."""
        return self._uri.scheme

    @property
    def raw_scheme(self) -> bytes:
        """The scheme as ASCII bytes."""
        return self._uri.scheme.encode("ascii")

    @property
    def userinfo(self) -> bytes:
        """The percent-encoded "user:password" part, such as b"jo%40email.com:secret"."""
        return self._uri.userinfo.encode("ascii")

    @property
    def username(self) -> str:
        """The decoded user name."""
        return unquote(self._uri.userinfo.partition(":")[0])

    @property
    def password(self) -> str:
        """The decoded password."""
        return unquote(self._uri.userinfo.partition(":")[2])

    @property
    def host(self) -> str:
        """
        The lower-cased host, IDNA-decoded to Unicode ("中国.icom.museum"), and
        without brackets for IPv6 ("::1").
        """
        host = self._uri.host
        # Like httpx, only a punycode first label triggers decoding.
        return idna.decode(host) if host.startswith("xn--") else host

    @property
    def raw_host(self) -> bytes:
        """The lower-cased, IDNA-encoded host, such as b"xn--fiqs8s.icom.museum"."""
        return self._uri.host.encode("ascii")

    @property
    def port(self) -> int | None:
        """The port, or None when absent or the default of the scheme."""
        return self._uri.port

    def _host_header(self) -> tuple[bytes, bytes]:
        """The Host header for this URL, made once (clients share URLs)."""
        header: tuple[bytes, bytes] | None = self.__dict__.get("_host")
        if header is None:
            header = self.__dict__["_host"] = (b"Host", self.netloc)
        return header

    @property
    def netloc(self) -> bytes:
        """`host` or `host:port` as encoded bytes, as sent in a Host header."""
        return self._uri.netloc.encode("ascii")

    @property
    def path(self) -> str:
        """The decoded path, "/" when empty."""
        return unquote(self._uri.path or "/")

    @property
    def query(self) -> bytes:
        """
        The percent-encoded query without the "?". It stays encoded because it
        can only be decoded key by key; see `params`.
        """
        return (self._uri.query or "").encode("ascii")

    @property
    def params(self) -> QueryParams:
        """The query parsed into an immutable multi-dict."""
        return QueryParams(self._uri.query)

    @property
    def raw_path(self) -> bytes:
        """The encoded path and query, the target of an HTTP request line."""
        path = self._uri.path or "/"
        if self._uri.query is not None:
            path += "?" + self._uri.query
        return path.encode("ascii")

    @property
    def fragment(self) -> str:
        """The decoded fragment without the "#"."""
        return unquote(self._uri.fragment or "")

    @property
    def is_absolute_url(self) -> bool:
        """True when the URL has both a scheme and a host to connect to."""
        return bool(self._uri.scheme and self._uri.host)

    @property
    def is_relative_url(self) -> bool:
        """The opposite of `is_absolute_url`."""
        return not self.is_absolute_url

    def copy_with(self, **kwargs: typing.Any) -> URL:
        """A copy with the given components replaced; same keywords as URL()."""
        return URL(self, **kwargs)

    def copy_set_param(self, key: str, value: typing.Any = None) -> URL:
        return self.copy_with(params=self.params.set(key, value))

    def copy_add_param(self, key: str, value: typing.Any = None) -> URL:
        return self.copy_with(params=self.params.add(key, value))

    def copy_remove_param(self, key: str) -> URL:
        return self.copy_with(params=self.params.remove(key))

    def copy_merge_params(self, params: QueryParamTypes) -> URL:
        return self.copy_with(params=self.params.merge(params))

    def join(self, url: URL | str) -> URL:
        """Resolve `url` against this URL (RFC 3986 reference resolution)."""
        return URL(urljoin(str(self), str(URL(url))))

    def __hash__(self) -> int:
        return hash(str(self))

    def __eq__(self, other: typing.Any) -> bool:
        return isinstance(other, URL | str) and str(self) == str(URL(other))

    def __str__(self) -> str:
        # A URL never changes, and clients share parsed ones (the engine
        # takes the text of each request's URL): build the text once.
        text: str | None = self.__dict__.get("_text")
        if text is None:
            text = self.__dict__["_text"] = str(self._uri)
        return text

    def __repr__(self) -> str:
        userinfo = self._uri.userinfo
        if ":" in userinfo:
            userinfo = userinfo.partition(":")[0] + ":[secure]"
        masked = self._uri._replace(userinfo=userinfo)
        return f"{self.__class__.__name__}({str(masked)!r})"

    @property
    def raw(self) -> RawURL:
        """Deprecated: the (raw_scheme, raw_host, port, raw_path) tuple."""
        warnings.warn("URL.raw is deprecated.", stacklevel=2)
        return RawURL(self.raw_scheme, self.raw_host, self.port, self.raw_path)
