"""
Routing helpers shared by the clients: `URLPattern`, the keys of `mounts=`,
and `get_environment_proxies()`, the proxy mounts that `trust_env` derives
from HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY. Same names and
behaviour as `httpx._utils`.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
import typing
from urllib.request import getproxies

from ._url import URL

__all__ = ["URLPattern", "get_environment_proxies"]


def _is_ip_address(
    hostname: str, version: type[ipaddress.IPv4Address] | type[ipaddress.IPv6Address]
) -> bool:
    # "192.168.0.0/16" counts as IPv4: NO_PROXY entries may be networks.
    try:
        version(hostname.split("/")[0])
    except ValueError:
        return False
    return True


def is_ipv4_hostname(hostname: str) -> bool:
    return _is_ip_address(hostname, ipaddress.IPv4Address)


def is_ipv6_hostname(hostname: str) -> bool:
    return _is_ip_address(hostname, ipaddress.IPv6Address)


def _no_proxy_key(hostname: str) -> str:
    """The mount key that exempts one NO_PROXY entry from proxying."""
    if "://" in hostname:
        return hostname
    if is_ipv4_hostname(hostname) or hostname.lower() == "localhost":
        return f"all://{hostname}"
    if is_ipv6_hostname(hostname):
        return f"all://[{hostname}]"
    # Following curl: "example.com" covers example.com and its subdomains
    # (but not "wwwexample.com"); ".example.com" only the subdomains.
    return f"all://*{hostname}"


def get_environment_proxies() -> dict[str, str | None]:
    """
    The proxy mounts the environment asks for, as `{pattern: proxy URL}`;
    a `None` value exempts the pattern (from NO_PROXY). Only the http, https
    and all proxies are taken: urllib also reports unrelated `*_PROXY`
    variables, such as TRAVIS_APT_PROXY.
    """
    # urllib reads the environment, and the system settings on Windows/macOS.
    found = getproxies() if _SYSTEM_PROXY_SETTINGS else _environment_proxies()
    mounts: dict[str, str | None] = {}
    for scheme in ("http", "https", "all"):
        url = found.get(scheme)
        if url:
            # A bare "host:port" means an http:// proxy.
            mounts[f"{scheme}://"] = url if "://" in url else f"http://{url}"

    for entry in found.get("no", "").split(","):
        hostname = entry.strip()
        if hostname == "*":
            # NO_PROXY=* switches every proxy off.
            return {}
        if hostname:
            mounts[_no_proxy_key(hostname)] = None
    return mounts


# Where urllib also reads the system's proxy settings (not only the environment).
_SYSTEM_PROXY_SETTINGS = sys.platform in ("darwin", "win32")


def _environment_proxies() -> dict[str, str]:
    """
    `urllib.request.getproxies_environment()`, faster: it decodes every
    variable of the environment, ~40 µs per client built; this looks at the
    raw names and decodes only the `*_proxy` ones (same result, same order of
    precedence: lower-case names win, and under CGI HTTP_PROXY is ignored).
    """
    environ = os.environb
    names = [name for name in environ if name[-6:].lower() == b"_proxy"]
    items = [(os.fsdecode(name), os.fsdecode(environ[name])) for name in names]
    proxies: dict[str, str] = {}
    for name, value in items:
        if value:
            proxies[name.lower()[:-6]] = value
    if b"REQUEST_METHOD" in environ:
        proxies.pop("http", None)
    for name, value in items:
        if name[-6:] == "_proxy":
            if value:
                proxies[name[:-6]] = value
            else:
                proxies.pop(name[:-6], None)
    return proxies


class URLPattern:
    """
    A `mounts=` key, matched against request URLs:

        URLPattern("all://")                   every URL
        URLPattern("https://")                 every https URL
        URLPattern("all://example.com")        example.com, any scheme and port
        URLPattern("http://example.com:8080")  that scheme, host and port only
        URLPattern("all://*.example.com")      subdomains of example.com
        URLPattern("all://*example.com")       example.com and its subdomains

    Patterns sort most specific first (with a port, then longer hosts, then
    longer schemes), which is the order a client tries its mounts in.
    """

    def __init__(self, pattern: str) -> None:
        if pattern and ":" not in pattern:
            raise ValueError(
                f"Proxy keys should use proper URL forms rather "
                f"than plain scheme strings. "
                f'Instead of "{pattern}", use "{pattern}://"'
            )
        url = URL(pattern)
        self.pattern = pattern
        self.scheme = "" if url.scheme == "all" else url.scheme
        self.host = "" if url.host == "*" else url.host
        self.port = url.port
        self.host_regex: re.Pattern[str] | None = None
        if self.host:
            if self.host.startswith("*."):
                suffix = re.escape(self.host[2:])
                self.host_regex = re.compile(f"^.+\\.{suffix}$")
            elif self.host.startswith("*"):
                suffix = re.escape(self.host[1:])
                self.host_regex = re.compile(f"^(.+\\.)?{suffix}$")
            else:
                self.host_regex = re.compile(f"^{re.escape(self.host)}$")

    def matches(self, other: URL) -> bool:
        if self.scheme and self.scheme != other.scheme:
            return False
        if self.host_regex is not None and not self.host_regex.match(other.host):
            return False
        return self.port is None or self.port == other.port

    @property
    def priority(self) -> tuple[int, int, int]:
        """Sort key: lower sorts first and is tried first."""
        return (0 if self.port is not None else 1, -len(self.host), -len(self.scheme))

    def __hash__(self) -> int:
        return hash(self.pattern)

    def __lt__(self, other: URLPattern) -> bool:
        return self.priority < other.priority

    def __eq__(self, other: typing.Any) -> bool:
        return isinstance(other, URLPattern) and self.pattern == other.pattern

    def __repr__(self) -> str:
        return f"URLPattern({self.pattern!r})"
