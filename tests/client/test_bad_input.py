"""Bad input and failing peers: the right httpx exception, and nothing on the wire.

``recording_listener`` is a raw TCP listener that records every accepted
connection and every byte; a request that must be rejected locally has to
leave it with zero bytes (and, for URL errors, zero connections).

Set ``LOOPFREE_TEST_TARGET=httpx`` to run this module against httpx; the few
places where httpx itself deviates from the spec are marked ``httpx_deviates``.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import socket
import threading
import time
from typing import Any

import httpx
import pytest

loopfree = importlib.import_module(os.environ.get("LOOPFREE_TEST_TARGET", "loopfree"))
IS_HTTPX = loopfree.__name__ == "httpx"


def httpx_deviates(reason: str) -> pytest.MarkDecorator:
    """Expected failure only when this suite runs against httpx itself."""
    return pytest.mark.xfail(IS_HTTPX, reason=f"httpx 0.28.1: {reason}", strict=True)


MODES = ["sync", "async"]


def fetch(mode: str, url: str, client_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """One GET with a fresh client, closed afterwards."""
    client_kwargs = {"timeout": 2.0, **(client_kwargs or {})}
    if mode == "sync":
        with loopfree.Client(**client_kwargs) as client:
            return client.get(url, **kwargs)

    async def main() -> Any:
        async with loopfree.AsyncClient(**client_kwargs) as client:
            return await client.get(url, **kwargs)

    return asyncio.run(main())


def expected_request_url(url: str) -> str:
    """The request URL httpx builds for ``url`` (what ``exc.request.url`` must be)."""
    with httpx.Client() as client:
        return str(client.build_request("GET", url).url)


def assert_nothing_sent(listener, *, allow_connect: bool = False) -> None:
    time.sleep(0.1)  # let the listener thread drain anything in flight
    connections, received = listener.snapshot()
    assert received == b"", f"bytes reached the wire: {received!r}"
    if not allow_connect:
        assert connections == 0, "a connection was opened"


# --------------------------------------------------------------------------
# URLs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "url",
    [
        pytest.param("http://[::1", id="unclosed-ipv6"),
        pytest.param("http://127.0.0.1:{port}x/", id="port-not-a-number"),
        pytest.param("http://[127.0.0.1]:{port}/", id="ipv4-in-brackets"),
        pytest.param("http://127.0.0.1:{port}/pa\x00th", id="nul-in-path"),
        pytest.param("http://127.0.0.1:{port}/\r\nX-Injected: 1", id="crlf-in-path"),
    ],
)
def test_invalid_url(recording_listener, mode, url):
    url = url.format(port=recording_listener.port)
    with pytest.raises(loopfree.InvalidURL):
        fetch(mode, url)
    with pytest.raises(loopfree.InvalidURL):
        loopfree.URL(url)
    assert_nothing_sent(recording_listener)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "url",
    [
        # httpx's URL percent-encodes the space; the name cannot resolve.
        pytest.param("http://exa mple.com:{port}/", id="space-in-host"),
        # httpx's URL accepts any integer port (and getaddrinfo would truncate
        # 99999 to 34463); loopfree refuses to connect instead.
        pytest.param("http://127.0.0.1:99999/", id="port-out-of-range"),
        pytest.param("http://127.0.0.1:123456/", id="port-far-out-of-range"),
    ],
)
def test_unreachable_url_is_a_connect_error(recording_listener, mode, url):
    """Regression: these raised InvalidURL where httpx (and its test suite) expect ConnectError."""
    url = url.format(port=recording_listener.port)
    loopfree.URL(url)  # a valid URL, as in httpx
    with pytest.raises(loopfree.ConnectError):
        fetch(mode, url)
    assert_nothing_sent(recording_listener)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param(
            "ftp://127.0.0.1:{port}/",
            "Request URL has an unsupported protocol 'ftp://'.",
            id="ftp",
        ),
        pytest.param(
            # No host: httpx reports the missing http(s) scheme first.
            "file:///etc/passwd",
            "Request URL is missing an 'http://' or 'https://' protocol.",
            id="file",
        ),
        pytest.param(
            "127.0.0.1:{port}/path",
            "Request URL is missing an 'http://' or 'https://' protocol.",
            id="no-scheme",
        ),
        pytest.param(
            "//127.0.0.1:{port}/path",
            "Request URL is missing an 'http://' or 'https://' protocol.",
            id="scheme-relative",
        ),
        pytest.param(
            "/just/a/path",
            "Request URL is missing an 'http://' or 'https://' protocol.",
            id="path-only",
        ),
    ],
)
def test_unsupported_protocol(recording_listener, mode, url, message):
    url = url.format(port=recording_listener.port)
    with pytest.raises(loopfree.UnsupportedProtocol) as info:
        fetch(mode, url)
    assert str(info.value) == message
    assert isinstance(info.value, loopfree.TransportError)
    assert isinstance(info.value.request, loopfree.Request)
    assert str(info.value.request.url) == expected_request_url(url)
    assert_nothing_sent(recording_listener)


# --------------------------------------------------------------------------
# Headers
# --------------------------------------------------------------------------


BAD_HEADERS = [
    pytest.param({"X-Value": "a\r\nX-Injected: 1"}, id="value-crlf"),
    pytest.param({"X-Value": "a\nb"}, id="value-lf"),
    pytest.param({"X-Value": "a\rb"}, id="value-cr"),
    pytest.param({"X-Value": "a\x00b"}, id="value-nul"),
    pytest.param({"X-Name\r\nX-Injected": "1"}, id="name-crlf"),
    pytest.param({"X-Na\nme": "1"}, id="name-lf"),
    pytest.param({"X-Name\x00": "1"}, id="name-nul"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("headers", BAD_HEADERS)
def test_illegal_header_per_request(recording_listener, mode, headers):
    url = recording_listener.info.url + "/"
    with pytest.raises(loopfree.LocalProtocolError) as info:
        fetch(mode, url, headers=headers)
    assert isinstance(info.value, loopfree.ProtocolError)
    assert str(info.value.request.url) == url
    # httpx opens the TCP connection before h11 rejects the header; loopfree may
    # reject earlier.  Either way not one byte may be written.
    assert_nothing_sent(recording_listener, allow_connect=True)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("headers", BAD_HEADERS[:4] + BAD_HEADERS[-1:])
def test_illegal_header_on_client(recording_listener, mode, headers):
    url = recording_listener.info.url + "/"
    with pytest.raises(loopfree.LocalProtocolError) as info:
        fetch(mode, url, client_kwargs={"headers": headers})
    assert str(info.value.request.url) == url
    assert_nothing_sent(recording_listener, allow_connect=True)


# --------------------------------------------------------------------------
# Bodies
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_json_on_non_json_body(server, mode):
    response = fetch(mode, server.url + "/not_json")
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


# --------------------------------------------------------------------------
# Connection failures
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_connection_refused(closed_port, mode):
    url = f"http://127.0.0.1:{closed_port}/path?q=1"
    started = time.monotonic()
    with pytest.raises(loopfree.ConnectError) as info:
        fetch(mode, url)
    assert time.monotonic() - started < 2
    assert isinstance(info.value, loopfree.NetworkError)
    assert str(info.value.request.url) == url


@pytest.fixture
def unresolvable_host() -> str:
    host = "nonexistent.invalid"
    # `.invalid` never resolves (RFC 6761).  A resolver that answers anyway
    # would make the client connect off-machine: refuse to run then.
    try:
        socket.getaddrinfo(host, 80, type=socket.SOCK_STREAM)
    except socket.gaierror:
        return host
    pytest.skip(f"the local resolver returns addresses for {host}")


@pytest.mark.parametrize("mode", MODES)
def test_unknown_host(unresolvable_host, mode):
    url = f"http://{unresolvable_host}/"
    # Generous timeout: even with an unreachable resolver this is a ConnectError
    # (name resolution failure), not a ConnectTimeout.
    with pytest.raises(loopfree.ConnectError) as info:
        fetch(mode, url, client_kwargs={"timeout": 30.0})
    assert str(info.value.request.url) == url


# --------------------------------------------------------------------------
# Timeouts
# --------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout(server, mode):
    url = server.url + "/slow?delay=2"
    started = time.monotonic()
    with pytest.raises(loopfree.ReadTimeout) as info:
        fetch(mode, url, client_kwargs={"timeout": 0.2})
    elapsed = time.monotonic() - started
    assert 0.15 < elapsed < 1.5
    assert isinstance(info.value, loopfree.TimeoutException)
    assert str(info.value.request.url) == url


@pytest.mark.parametrize("mode", MODES)
def test_read_timeout_between_chunks(server, mode):
    # Headers arrive at once; the body stalls longer than the read timeout.
    url = server.url + "/slow_response"
    with pytest.raises(loopfree.ReadTimeout) as info:
        fetch(mode, url, client_kwargs={"timeout": 0.3})
    assert str(info.value.request.url) == url


@pytest.mark.parametrize("mode", MODES)
def test_connect_timeout(full_backlog_port, mode):
    url = f"http://127.0.0.1:{full_backlog_port}/"
    started = time.monotonic()
    with pytest.raises(loopfree.ConnectTimeout) as info:
        fetch(mode, url, client_kwargs={"timeout": loopfree.Timeout(5, connect=0.3)})
    elapsed = time.monotonic() - started
    assert 0.25 < elapsed < 3
    assert str(info.value.request.url) == url


POOL_LIMITS = {"max_connections": 1, "max_keepalive_connections": 1}


def test_pool_timeout_sync(server):
    hold_url = server.url + "/slow?delay=1.5"
    url = server.url + "/"
    held: list[Any] = []
    with loopfree.Client(
        limits=loopfree.Limits(**POOL_LIMITS), timeout=loopfree.Timeout(5, pool=0.2)
    ) as client:
        holder = threading.Thread(target=lambda: held.append(client.get(hold_url)))
        holder.start()
        try:
            time.sleep(0.4)  # the holder owns the only connection now
            started = time.monotonic()
            with pytest.raises(loopfree.PoolTimeout) as info:
                client.get(url)
            assert time.monotonic() - started < 1.0
            assert str(info.value.request.url) == url
        finally:
            holder.join(10)
        assert [r.status_code for r in held] == [200]
        # The pool recovers once the connection is released.
        assert client.get(url).status_code == 200


def test_pool_timeout_async(server):
    hold_url = server.url + "/slow?delay=1.5"
    url = server.url + "/"

    async def main() -> None:
        async with loopfree.AsyncClient(
            limits=loopfree.Limits(**POOL_LIMITS), timeout=loopfree.Timeout(5, pool=0.2)
        ) as client:
            holder = asyncio.create_task(client.get(hold_url))
            await asyncio.sleep(0.4)
            assert not holder.done()
            started = time.monotonic()
            with pytest.raises(loopfree.PoolTimeout) as info:
                await client.get(url)
            assert time.monotonic() - started < 1.0
            assert str(info.value.request.url) == url
            assert (await holder).status_code == 200
            assert (await client.get(url)).status_code == 200

    asyncio.run(main())


def test_timeout_config_errors():
    # httpx requires all four values or a default.
    with pytest.raises(ValueError):
        loopfree.Timeout(pool=1)
    assert loopfree.Timeout(5, pool=0.2).pool == 0.2
    assert loopfree.Timeout(5, pool=0.2).read == 5
