"""
URL parsing, validation and normalisation with the same results as httpx 0.28.1.

A URL is split as

    [scheme ":"] ["//" [userinfo "@"] host [":" port]] path ["?" query] ["#" fragment]

and each part is then normalised: the scheme and host are lower-cased, IDNA
hosts are punycode-encoded, default ports are dropped, "." and ".." segments are
removed from the path of absolute URLs, and every part is percent-encoded with
its own safe set (taken from the WHATWG URL spec). Existing "%xx" escapes are
kept as they are, because "%" is safe in every part.

The parsed form keeps `query` and `fragment` as None when the URL has no "?" or
"#" at all, and as "" when it ends with a bare "?" or "#", so that a URL
round-trips through `str()` unchanged.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import string
import typing

import idna

from ._exceptions import InvalidURL

__all__ = [
    "FRAGMENT_SAFE",
    "HOST_SAFE",
    "MAX_URL_LENGTH",
    "PASSWORD_SAFE",
    "PATH_SAFE",
    "QUERY_SAFE",
    "USERINFO_SAFE",
    "USERNAME_SAFE",
    "ParsedURL",
    "encode_host",
    "normalize_port",
    "quote",
    "remove_dot_segments",
    "urlparse",
    "validate_path",
]

MAX_URL_LENGTH = 65536

_DEFAULT_PORTS = {"ftp": 21, "http": 80, "https": 443, "ws": 80, "wss": 443}

_UNRESERVED = string.ascii_letters + string.digits + "-._~"
_SUB_DELIMS = "!$&'()*+,;="


def _printable_ascii_except(excluded: str) -> str:
    # Every WHATWG percent-encode set contains the C0 controls and everything
    # above 0x7E, so a safe set is "printable ASCII minus a few characters".
    return "".join(chr(i) for i in range(0x20, 0x7F) if chr(i) not in excluded)


FRAGMENT_SAFE = _printable_ascii_except(' "<>`')
QUERY_SAFE = _printable_ascii_except(' "#<>')
PATH_SAFE = _printable_ascii_except(' "#<>?`{}')
# The WHATWG userinfo set, used for the username and the password separately...
USERNAME_SAFE = _printable_ascii_except(' "#<>?`{}/:;=@[\\]^|')
PASSWORD_SAFE = USERNAME_SAFE
# ...while a joint "user:password" string must keep its ':' separator.
USERINFO_SAFE = _printable_ascii_except(' "#<>?`{}/;=@[\\]^|')
# RFC 3986 reg-name plus the characters WHATWG lets through in hosts.
HOST_SAFE = _UNRESERVED + _SUB_DELIMS + '"`{}%|\\'

_UNSAFE_PATTERNS: dict[str, re.Pattern[str]] = {}


def quote(text: str, safe: str) -> str:
    """
    Percent-encode (as UTF-8) every character of `text` that is neither
    unreserved nor in `safe`. "%xx" escapes survive because every safe set
    used for URLs contains "%".
    """
    pattern = _UNSAFE_PATTERNS.get(safe)
    if pattern is None:
        pattern = re.compile(f"[^{re.escape(_UNRESERVED + safe)}]+")
        _UNSAFE_PATTERNS[safe] = pattern
    if pattern.search(text) is None:
        return text
    return pattern.sub(_percent_encode_match, text)


def _percent_encode_match(match: re.Match[str]) -> str:
    return "".join(f"%{byte:02X}" for byte in match.group().encode("utf-8"))


_URL_PARTS = re.compile(
    r"(?:(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*)?:)?"
    r"(?://(?P<authority>[^/?#]*))?"
    r"(?P<path>[^?#]*)"
    r"(?:\?(?P<query>[^#]*))?"
    r"(?:#(?P<fragment>.*))?"
)
_SCHEME = re.compile(r"(?:[a-zA-Z][a-zA-Z0-9+.-]*)?")
# Characters a component given on its own may not contain, because they would
# end that component when the URL is written out.
_FORBIDDEN_IN_COMPONENT = {"authority": "/?#", "path": "?#", "query": "#", "userinfo": "@"}
_IPV4_LIKE = re.compile(r"[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+")
# Tab, CR and LF included: they could smuggle extra lines into a request.
_ASCII_CONTROL = re.compile("[\x00-\x1f\x7f]")


class ParsedURL(typing.NamedTuple):
    """
    A normalised URL: every field is ASCII, already percent-encoded, and the
    host is stored without IPv6 brackets.
    """

    scheme: str
    userinfo: str
    host: str
    port: int | None
    path: str
    query: str | None
    fragment: str | None

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.userinfo}@{self.netloc}" if self.userinfo else self.netloc

    def copy_with(self, **components: str | None) -> ParsedURL:
        if not components:
            return self
        # Re-parse from the encoded parts so that the replacements are
        # validated exactly like a fresh URL would be.
        merged: dict[str, str | None] = {
            "scheme": self.scheme,
            "authority": self.authority,
            "path": self.path,
            "query": self.query,
            "fragment": self.fragment,
        }
        merged.update(components)
        return urlparse("", **merged)

    def __str__(self) -> str:
        authority = self.authority
        return "".join(
            [
                f"{self.scheme}:" if self.scheme else "",
                f"//{authority}" if authority else "",
                self.path,
                "" if self.query is None else f"?{self.query}",
                "" if self.fragment is None else f"#{self.fragment}",
            ]
        )


def _first_control_character(text: str) -> tuple[int, str] | None:
    match = _ASCII_CONTROL.search(text)
    return None if match is None else (match.start(), match.group())


def _check_component(name: str, value: str) -> None:
    if len(value) > MAX_URL_LENGTH:
        raise InvalidURL(f"URL component '{name}' too long")
    control = _first_control_character(value)
    if control is not None:
        index, char = control
        raise InvalidURL(
            f"Invalid non-printable ASCII character in URL {name} component, "
            f"{char!r} at position {index}."
        )
    forbidden = _FORBIDDEN_IN_COMPONENT.get(name, "")
    if any(char in value for char in forbidden) or (
        name == "scheme" and not _SCHEME.fullmatch(value)
    ):
        raise InvalidURL(f"Invalid URL component '{name}'")


def _expand_components(components: dict[str, str | None]) -> None:
    """Rewrite the compound keyword components into the basic ones, in place."""
    if "netloc" in components:
        netloc = components.pop("netloc") or ""
        components["host"], _, components["port"] = netloc.partition(":")

    if "username" in components or "password" in components:
        username = quote(components.pop("username", "") or "", USERNAME_SAFE)
        password = quote(components.pop("password", "") or "", PASSWORD_SAFE)
        components["userinfo"] = f"{username}:{password}" if password else username

    if "raw_path" in components:
        raw_path = components.pop("raw_path") or ""
        path, has_query, query = raw_path.partition("?")
        components["path"] = path
        components["query"] = query if has_query else None

    if "host" in components:
        host = components["host"] or ""
        # A bare IPv6 address must be bracketed to be told apart from a port.
        if ":" in host and not (host.startswith("[") and host.endswith("]")):
            components["host"] = f"[{host}]"


def _split_authority(authority: str) -> tuple[str, str, str]:
    # The last '@' ends the userinfo, so an unescaped '@' in a password works.
    userinfo, _, host_port = authority.rpartition("@")
    if host_port.startswith("[") and "]" in host_port:
        host_end = host_port.rindex("]") + 1
    else:
        colon = host_port.find(":")
        host_end = len(host_port) if colon == -1 else colon
    host, port = host_port[:host_end], host_port[host_end:]
    return userinfo, host, port.removeprefix(":")


def urlparse(url: str = "", **components: str | None) -> ParsedURL:
    """
    Parse `url` (see `_urlparse`). A plain string is parsed once and then
    served from a cache: clients send to the same few URLs again and again,
    and `ParsedURL` is immutable, so sharing the result is safe.
    """
    if not components:
        return _parse_cached(url)
    return _urlparse(url, **components)


@functools.lru_cache(maxsize=1024)
def _parse_cached(url: str) -> ParsedURL:
    return _urlparse(url)


def _urlparse(url: str = "", **components: str | None) -> ParsedURL:
    """
    Parse `url`, with any of the keyword components (scheme, authority,
    userinfo, username, password, host, port, netloc, path, raw_path, query,
    fragment) replacing the matching part, and return the normalised result.
    Raises InvalidURL for input that cannot form a valid URL.
    """
    if len(url) > MAX_URL_LENGTH:
        raise InvalidURL("URL too long")
    control = _first_control_character(url)
    if control is not None:
        index, char = control
        raise InvalidURL(
            f"Invalid non-printable ASCII character in URL, {char!r} at position {index}."
        )

    _expand_components(components)
    for name, value in components.items():
        if value is not None:
            _check_component(name, value)

    match = _URL_PARTS.match(url)
    assert match is not None  # Every part of the pattern may be empty.
    parts = match.groupdict()
    scheme = components.get("scheme", parts["scheme"]) or ""
    authority = components.get("authority", parts["authority"]) or ""
    path = components.get("path", parts["path"]) or ""
    query = components.get("query", parts["query"])
    fragment = components.get("fragment", parts["fragment"])

    parsed_userinfo, parsed_host, parsed_port = _split_authority(authority)
    userinfo = components.get("userinfo", parsed_userinfo) or ""
    host = components.get("host", parsed_host) or ""
    port = components.get("port", parsed_port)

    encoded_userinfo = quote(userinfo, USERINFO_SAFE)
    encoded_host = encode_host(host)
    # httpx compares the port with the default of the scheme as written, before
    # lower-casing, so "HTTP://h:80" keeps its port; we do the same.
    normalized_port = normalize_port(port, scheme)

    has_scheme = scheme != ""
    has_authority = encoded_userinfo != "" or encoded_host != "" or normalized_port is not None
    validate_path(path, has_scheme=has_scheme, has_authority=has_authority)
    if has_scheme or has_authority:
        path = remove_dot_segments(path)

    return ParsedURL(
        scheme=scheme.lower(),
        userinfo=encoded_userinfo,
        host=encoded_host,
        port=normalized_port,
        path=quote(path, PATH_SAFE),
        query=None if query is None else quote(query, QUERY_SAFE),
        fragment=None if fragment is None else quote(fragment, FRAGMENT_SAFE),
    )


def encode_host(host: str) -> str:
    """
    Validate and normalise a host: IP literals are checked (IPv6 loses its
    brackets), names are lower-cased, and non-ASCII names are IDNA-encoded.
    """
    if not host:
        return ""
    if _IPV4_LIKE.fullmatch(host):
        try:
            ipaddress.IPv4Address(host)
        except ipaddress.AddressValueError:
            raise InvalidURL(f"Invalid IPv4 address: {host!r}") from None
        return host
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ipaddress.AddressValueError:
            raise InvalidURL(f"Invalid IPv6 address: {host!r}") from None
        return host[1:-1]
    if host.isascii():
        # As httpx: forbidden characters are percent-encoded here, and a
        # request to such a host fails with ConnectError before it is sent.
        return quote(host.lower(), HOST_SAFE)
    try:
        return idna.encode(host.lower()).decode("ascii")
    except idna.IDNAError:
        raise InvalidURL(f"Invalid IDNA hostname: {host!r}") from None


def normalize_port(port: str | None, scheme: str) -> int | None:
    """The port as an int, or None when it is absent or the scheme's default."""
    if not port:
        return None
    try:
        number = int(port)
    except ValueError:
        raise InvalidURL(f"Invalid port: {port!r}") from None
    # As httpx, any integer is a port here; sending to one outside 0-65535
    # raises ConnectError before anything is sent.
    return None if number == _DEFAULT_PORTS.get(scheme) else number


def validate_path(path: str, *, has_scheme: bool, has_authority: bool) -> None:
    """Reject paths that RFC 3986 section 3.3 forbids in this kind of URL."""
    if has_authority and path and not path.startswith("/"):
        raise InvalidURL("For absolute URLs, path must be empty or begin with '/'")
    if not has_scheme and not has_authority:
        # Either would be read back as something other than a path.
        if path.startswith("//"):
            raise InvalidURL("Relative URLs cannot have a path starting with '//'")
        if path.startswith(":"):
            raise InvalidURL("Relative URLs cannot have a path starting with ':'")


def remove_dot_segments(path: str) -> str:
    """
    Drop "." segments, and ".." segments with their parent, never climbing
    above the root: "/a/./b/../c" becomes "/a/c".
    """
    segments = path.split("/")
    if "." not in segments and ".." not in segments:
        return path
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if kept and kept != [""]:
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    return "/".join(kept)
