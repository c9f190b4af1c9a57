"""Proxies, through real proxy servers.

pproxy runs in a subprocess (``tests/contrib/proxy_servers.py``) serving HTTP
(forwarding and ``CONNECT``) and SOCKS5 on one port: ``proxy`` without
authentication, ``auth_proxy`` requiring ``user:pass``. Every test that
expects traffic through a proxy reads the proxy's own log for the connection
it must have made (and the target it was asked for); every test that expects
the proxy *not* to be used points it at a dead port, so that using it would
fail the request.

Each test runs with ``Client`` and with ``AsyncClient`` (under
``asyncio.run``). Set ``LOOPFREE_TEST_TARGET=httpx`` to run this module
against httpx itself (with its socks extra): every expectation here is
httpx's behaviour. Regression tests for four bugs this module found: socks5://
resolving names locally, a dead SOCKS proxy as ProxyError, a refused CONNECT
as ConnectError, and a CONNECT closed without an answer as ConnectError.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

loopfree = importlib.import_module(os.environ.get("LOOPFREE_TEST_TARGET", "loopfree"))
IS_LOOPFREE = loopfree.__name__ == "loopfree"


def _load_helpers() -> ModuleType:
    name = "_loopfree_test_contrib_proxy_servers"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).parent.parent / "contrib" / "proxy_servers.py"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


proxy_servers = _load_helpers()
ProxyServer = proxy_servers.ProxyServer

USER, PASSWORD = "user", "pass"
CREDENTIALS = (USER, PASSWORD)
WRONG_CREDENTIALS = (USER, "wrong")
TIMEOUT = 10.0

pytestmark = [
    # httpx warns about `verify=<str>`; loopfree may or may not.
    pytest.mark.filterwarnings("ignore:`verify=<str>` is deprecated:DeprecationWarning"),
    pytest.mark.timeout(30),
]


# --------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def proxy() -> Iterator[Any]:
    """pproxy: HTTP (forwarding, CONNECT) and SOCKS5, no authentication."""
    yield from proxy_servers.running_proxy()


@pytest.fixture(scope="session")
def auth_proxy() -> Iterator[Any]:
    """pproxy: HTTP (forwarding, CONNECT) and SOCKS5, requiring user:pass."""
    yield from proxy_servers.running_proxy(auth=CREDENTIALS)


@dataclass(frozen=True)
class Flavor:
    """Sync or async: one request with a fresh client, the same call shape."""

    is_async: bool

    def get(self, url: str, **client_kwargs: Any) -> Any:
        client_kwargs.setdefault("timeout", TIMEOUT)
        if not self.is_async:
            with loopfree.Client(**client_kwargs) as client:
                return client.get(url)

        async def main() -> Any:
            async with loopfree.AsyncClient(**client_kwargs) as client:
                return await client.get(url)

        return asyncio.run(main())

    def transport(self, **kwargs: Any) -> Any:
        cls = loopfree.AsyncHTTPTransport if self.is_async else loopfree.HTTPTransport
        return cls(**kwargs)


@pytest.fixture(params=[False, True], ids=["sync", "async"])
def flavor(request: pytest.FixtureRequest) -> Flavor:
    return Flavor(is_async=request.param)


@pytest.fixture
def dead_proxy(closed_port: int) -> str:
    """An http:// proxy URL on which nothing listens (connections are refused)."""
    return f"http://127.0.0.1:{closed_port}"


# --------------------------------------------------------------------------
# proxy=: HTTP forwarding, CONNECT, SOCKS5
# --------------------------------------------------------------------------


def test_http_proxy_forwards_plain_http(flavor: Flavor, proxy: Any, server: Any) -> None:
    mark = proxy.mark()
    response = flavor.get(f"{server.url}/echo_request?via=proxy", proxy=proxy.url())
    assert response.status_code == 200
    # The origin got an origin-form request line back from the proxy.
    assert response.json()["path"] == "/echo_request"
    assert response.json()["query_string"] == "via=proxy"
    proxy.expect_connection(mark, "http", server.netloc)


def test_http_proxy_tunnels_https_with_connect(
    flavor: Flavor, proxy: Any, tls_server: Any, ca_cert_path: str
) -> None:
    mark = proxy.mark()
    response = flavor.get(f"{tls_server.url}/json", proxy=proxy.url(), verify=ca_cert_path)
    assert response.status_code == 200
    assert response.json() == {"Hello": "world!"}
    assert response.url.scheme == "https"
    proxy.expect_connection(mark, "http", tls_server.netloc)


def test_socks5_proxy_for_http(flavor: Flavor, proxy: Any, server: Any) -> None:
    mark = proxy.mark()
    response = flavor.get(f"{server.url}/json", proxy=proxy.url("socks5"))
    assert response.json() == {"Hello": "world!"}
    proxy.expect_connection(mark, "socks5", server.netloc)


def test_socks5_proxy_for_https(
    flavor: Flavor, proxy: Any, tls_server: Any, ca_cert_path: str
) -> None:
    mark = proxy.mark()
    response = flavor.get(f"{tls_server.url}/json", proxy=proxy.url("socks5"), verify=ca_cert_path)
    assert response.json() == {"Hello": "world!"}
    proxy.expect_connection(mark, "socks5", tls_server.netloc)


def test_socks5h_proxy_resolves_the_host_remotely(flavor: Flavor, proxy: Any, server: Any) -> None:
    mark = proxy.mark()
    response = flavor.get(f"http://localhost:{server.port}/json", proxy=proxy.url("socks5h"))
    assert response.json() == {"Hello": "world!"}
    # The proxy was handed the name, not an address.
    proxy.expect_connection(mark, "socks5", f"localhost:{server.port}")


def test_socks5_proxy_sends_the_host_name_like_httpx(
    flavor: Flavor, proxy: Any, server: Any
) -> None:
    mark = proxy.mark()
    response = flavor.get(f"http://localhost:{server.port}/json", proxy=proxy.url("socks5"))
    assert response.json() == {"Hello": "world!"}
    proxy.expect_connection(mark, "socks5", f"localhost:{server.port}")


# --------------------------------------------------------------------------
# Proxy authentication
# --------------------------------------------------------------------------


def _proxy_with(auth_proxy: Any, how: str, credentials: tuple[str, str] | None) -> Any:
    if how == "url":
        return auth_proxy.url(auth=credentials)
    if how == "Proxy.headers":
        # Headers for the proxy itself: sent on forwarded requests and on CONNECT.
        headers = {}
        if credentials is not None:
            token = base64.b64encode(":".join(credentials).encode()).decode()
            headers["Proxy-Authorization"] = f"Basic {token}"
        return loopfree.Proxy(auth_proxy.url(), headers=headers)
    return loopfree.Proxy(auth_proxy.url(), auth=credentials)


@pytest.mark.parametrize("how", ["url", "Proxy.auth", "Proxy.headers"])
def test_http_proxy_credentials_for_http(
    flavor: Flavor, auth_proxy: Any, server: Any, how: str
) -> None:
    mark = auth_proxy.mark()
    response = flavor.get(
        f"{server.url}/echo_headers", proxy=_proxy_with(auth_proxy, how, CREDENTIALS)
    )
    assert response.status_code == 200
    # The proxy consumed the credentials: they are not passed on to the origin.
    assert "proxy-authorization" not in response.json()
    auth_proxy.expect_connection(mark, "http", server.netloc)


@pytest.mark.parametrize("how", ["url", "Proxy.auth", "Proxy.headers"])
def test_http_proxy_credentials_for_https(
    flavor: Flavor, auth_proxy: Any, tls_server: Any, ca_cert_path: str, how: str
) -> None:
    mark = auth_proxy.mark()
    response = flavor.get(
        f"{tls_server.url}/echo_headers",
        proxy=_proxy_with(auth_proxy, how, CREDENTIALS),
        verify=ca_cert_path,
    )
    assert response.status_code == 200
    assert "proxy-authorization" not in response.json()
    auth_proxy.expect_connection(mark, "http", tls_server.netloc)


@pytest.mark.parametrize("how", ["url", "Proxy.auth", "Proxy.headers"])
@pytest.mark.parametrize("credentials", [None, WRONG_CREDENTIALS], ids=["none", "wrong"])
def test_http_proxy_refusal_for_http_is_the_response(
    flavor: Flavor, auth_proxy: Any, server: Any, how: str, credentials: Any
) -> None:
    # httpx returns the proxy's 407 as the response of a forwarded request.
    mark = auth_proxy.mark()
    response = flavor.get(f"{server.url}/json", proxy=_proxy_with(auth_proxy, how, credentials))
    assert response.status_code == 407
    assert response.headers["proxy-authenticate"] == 'Basic realm="simple"'
    auth_proxy.expect_refusal(mark, "http")


@pytest.mark.parametrize("how", ["url", "Proxy.auth", "Proxy.headers"])
@pytest.mark.parametrize("credentials", [None, WRONG_CREDENTIALS], ids=["none", "wrong"])
def test_http_proxy_refusal_for_https_raises_proxy_error(
    flavor: Flavor,
    auth_proxy: Any,
    tls_server: Any,
    ca_cert_path: str,
    how: str,
    credentials: Any,
) -> None:
    # httpx raises ProxyError when CONNECT is answered with anything but 2xx.
    mark = auth_proxy.mark()
    with pytest.raises(loopfree.ProxyError):
        flavor.get(
            f"{tls_server.url}/json",
            proxy=_proxy_with(auth_proxy, how, credentials),
            verify=ca_cert_path,
        )
    auth_proxy.expect_refusal(mark, "http")


@pytest.mark.parametrize("status", ["403 Forbidden", "502 Bad Gateway"])
def test_http_proxy_refusing_to_forward_is_the_response(flavor: Flavor, status: str) -> None:
    with proxy_servers.RefusingProxy(status) as refusing:
        response = flavor.get("http://127.0.0.1:9/json", proxy=refusing.url)
    assert response.status_code == int(status.split()[0])
    assert refusing.request_lines == ["GET http://127.0.0.1:9/json HTTP/1.1"]


@pytest.mark.parametrize("status", ["403 Forbidden", "502 Bad Gateway"])
def test_http_proxy_refusing_to_connect_raises_proxy_error(flavor: Flavor, status: str) -> None:
    with proxy_servers.RefusingProxy(status) as refusing, pytest.raises(loopfree.ProxyError):
        flavor.get("https://127.0.0.1:9/json", proxy=refusing.url)
    assert refusing.request_lines == ["CONNECT 127.0.0.1:9 HTTP/1.1"]


def test_socks5_proxy_credentials(flavor: Flavor, auth_proxy: Any, server: Any) -> None:
    mark = auth_proxy.mark()
    response = flavor.get(f"{server.url}/json", proxy=auth_proxy.url("socks5", CREDENTIALS))
    assert response.json() == {"Hello": "world!"}
    auth_proxy.expect_connection(mark, "socks5", server.netloc)


def _httpx_leaks_a_socket(test: Any) -> Any:
    """httpcore leaks the socket of a refused SOCKS5 login (an unclosed-socket
    ResourceWarning): httpx's failure, not the behaviour tested here."""
    if IS_LOOPFREE:
        return test
    test = pytest.mark.filterwarnings("ignore::ResourceWarning")(test)
    return pytest.mark.allow_leaks("httpcore leaks a refused SOCKS5 login's socket")(test)


@_httpx_leaks_a_socket
def test_socks5_proxy_wrong_credentials_raise_proxy_error(
    flavor: Flavor, auth_proxy: Any, server: Any
) -> None:
    mark = auth_proxy.mark()
    with pytest.raises(loopfree.ProxyError):
        flavor.get(f"{server.url}/json", proxy=auth_proxy.url("socks5", WRONG_CREDENTIALS))
    auth_proxy.expect_refusal(mark, "socks")


# --------------------------------------------------------------------------
# Environment proxies (trust_env)
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variable", "scheme", "protocol"),
    [
        ("HTTP_PROXY", "http", "http"),
        ("ALL_PROXY", "socks5", "socks5"),
        ("http_proxy", "http", "http"),
    ],
)
def test_environment_proxy_for_http(
    flavor: Flavor,
    proxy: Any,
    server: Any,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    scheme: str,
    protocol: str,
) -> None:
    monkeypatch.setenv(variable, proxy.url(scheme))
    mark = proxy.mark()
    response = flavor.get(f"{server.url}/json")
    assert response.json() == {"Hello": "world!"}
    proxy.expect_connection(mark, protocol, server.netloc)


@pytest.mark.parametrize(
    ("variable", "scheme", "protocol"),
    [("HTTPS_PROXY", "http", "http"), ("ALL_PROXY", "http", "http")],
)
def test_environment_proxy_for_https(
    flavor: Flavor,
    proxy: Any,
    tls_server: Any,
    ca_cert_path: str,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
    scheme: str,
    protocol: str,
) -> None:
    monkeypatch.setenv(variable, proxy.url(scheme))
    mark = proxy.mark()
    response = flavor.get(f"{tls_server.url}/json", verify=ca_cert_path)
    assert response.json() == {"Hello": "world!"}
    proxy.expect_connection(mark, protocol, tls_server.netloc)


def test_environment_proxy_with_credentials(
    flavor: Flavor, auth_proxy: Any, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", auth_proxy.url(auth=CREDENTIALS))
    mark = auth_proxy.mark()
    response = flavor.get(f"{server.url}/json")
    assert response.status_code == 200
    auth_proxy.expect_connection(mark, "http", server.netloc)


@pytest.mark.parametrize("variable", ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"])
def test_environment_proxies_ignored_without_trust_env(
    flavor: Flavor,
    server: Any,
    tls_server: Any,
    ca_cert_path: str,
    dead_proxy: str,
    monkeypatch: pytest.MonkeyPatch,
    variable: str,
) -> None:
    monkeypatch.setenv(variable, dead_proxy)
    target = tls_server if variable == "HTTPS_PROXY" else server
    response = flavor.get(f"{target.url}/json", trust_env=False, verify=ca_cert_path)
    assert response.json() == {"Hello": "world!"}
    # ... while with trust_env the dead proxy is used (the control).
    with pytest.raises(loopfree.ConnectError):
        flavor.get(f"{target.url}/json", verify=ca_cert_path)


@pytest.mark.parametrize(
    ("no_proxy", "host"),
    [("127.0.0.1", "127.0.0.1"), ("localhost", "localhost"), ("*", "127.0.0.1")],
)
def test_no_proxy_bypasses_environment_proxies(
    flavor: Flavor,
    server: Any,
    dead_proxy: str,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str,
    host: str,
) -> None:
    monkeypatch.setenv("ALL_PROXY", dead_proxy)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    response = flavor.get(f"http://{host}:{server.port}/json")
    assert response.json() == {"Hello": "world!"}


def test_no_proxy_spares_only_the_hosts_it_names(
    flavor: Flavor, proxy: Any, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url())
    monkeypatch.setenv("NO_PROXY", "example.invalid,localhost")
    mark = proxy.mark()
    response = flavor.get(f"{server.url}/json")
    assert response.json() == {"Hello": "world!"}
    proxy.expect_connection(mark, "http", server.netloc)


def test_http_proxy_variable_does_not_apply_to_https(
    flavor: Flavor,
    tls_server: Any,
    ca_cert_path: str,
    dead_proxy: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    response = flavor.get(f"{tls_server.url}/json", verify=ca_cert_path)
    assert response.json() == {"Hello": "world!"}


def test_explicit_proxy_wins_over_the_environment(
    flavor: Flavor, proxy: Any, server: Any, dead_proxy: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", dead_proxy)
    mark = proxy.mark()
    response = flavor.get(f"{server.url}/json", proxy=proxy.url())
    assert response.json() == {"Hello": "world!"}
    proxy.expect_connection(mark, "http", server.netloc)


# --------------------------------------------------------------------------
# mounts=
# --------------------------------------------------------------------------


def test_mounted_proxy_transports_route_by_scheme(
    flavor: Flavor,
    proxy: Any,
    server: Any,
    tls_server: Any,
    ca_cert_path: str,
    dead_proxy: str,
) -> None:
    def mounts() -> dict[str, Any]:
        return {
            "http://": flavor.transport(proxy=proxy.url()),
            "https://": flavor.transport(proxy=dead_proxy, verify=ca_cert_path),
        }

    mark = proxy.mark()
    response = flavor.get(f"{server.url}/json", mounts=mounts())
    assert response.json() == {"Hello": "world!"}
    proxy.expect_connection(mark, "http", server.netloc)
    with pytest.raises(loopfree.ConnectError):
        flavor.get(f"{tls_server.url}/json", mounts=mounts())


def test_mounted_socks_proxy_transport_for_one_host(
    flavor: Flavor, proxy: Any, server: Any, dead_proxy: str
) -> None:
    mounts = {
        "all://": flavor.transport(proxy=dead_proxy),
        f"all://localhost:{server.port}": flavor.transport(proxy=proxy.url("socks5h")),
    }
    mark = proxy.mark()
    response = flavor.get(f"http://localhost:{server.port}/json", mounts=mounts)
    assert response.json() == {"Hello": "world!"}
    proxy.expect_connection(mark, "socks5", f"localhost:{server.port}")


# --------------------------------------------------------------------------
# Failures
# --------------------------------------------------------------------------

DEAD_PROXY_CASES = [
    pytest.param("http", "http", id="http-proxy-http-target"),
    pytest.param("http", "https", id="http-proxy-https-target"),
    pytest.param(
        "socks5",
        "http",
        id="socks5-proxy",
    ),
]


@pytest.mark.parametrize(("proxy_scheme", "target_scheme"), DEAD_PROXY_CASES)
def test_dead_proxy_raises_connect_error(
    flavor: Flavor,
    server: Any,
    tls_server: Any,
    ca_cert_path: str,
    closed_port: int,
    proxy_scheme: str,
    target_scheme: str,
) -> None:
    target = tls_server if target_scheme == "https" else server
    with pytest.raises(loopfree.ConnectError):
        flavor.get(
            f"{target.url}/json",
            proxy=f"{proxy_scheme}://127.0.0.1:{closed_port}",
            verify=ca_cert_path,
        )


UNREACHABLE_TARGET_CASES = [
    pytest.param("http", "http", id="http-forwarding"),
    pytest.param(
        "http",
        "https",
        id="connect",
    ),
    pytest.param("socks5", "http", id="socks5"),
]


@pytest.mark.parametrize(("proxy_scheme", "target_scheme"), UNREACHABLE_TARGET_CASES)
def test_proxy_hanging_up_on_an_unreachable_target(
    flavor: Flavor,
    proxy: Any,
    closed_port: int,
    ca_cert_path: str,
    proxy_scheme: str,
    target_scheme: str,
) -> None:
    # pproxy accepts, fails to reach the target, and closes without a word.
    # Through SOCKS5 it has already answered "connected" and not read the
    # request, so the close may come as a reset: httpx then raises ReadError.
    expected: Any = loopfree.RemoteProtocolError
    if proxy_scheme == "socks5":
        expected = (loopfree.RemoteProtocolError, loopfree.ReadError)
    mark = proxy.mark()
    with pytest.raises(expected):
        flavor.get(
            f"{target_scheme}://127.0.0.1:{closed_port}/",
            proxy=proxy.url(proxy_scheme),
            verify=ca_cert_path,
        )
    proxy.expect_connection(mark, proxy_scheme, f"127.0.0.1:{closed_port}")


def test_proxy_with_an_unsupported_scheme_is_refused(flavor: Flavor) -> None:
    with pytest.raises(ValueError):
        flavor.get("http://127.0.0.1:1/", proxy="ftp://127.0.0.1:1")
