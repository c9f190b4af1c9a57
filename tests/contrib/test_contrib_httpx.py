"""Real httpx clients over loopfree's engine: ``loopfree.contrib.httpx``.

``httpx.Client(transport=HTTPTransport())`` and
``httpx.AsyncClient(transport=AsyncHTTPTransport())`` are httpx objects all the
way (auth, redirects, decoding and exceptions are httpx's) whose requests go
through one loopfree engine.  The async one must then work where plain httpx
breaks: one client across event loops, Flask async views, trio.
"""

from __future__ import annotations

import asyncio
import gc
import importlib.util
import json
import ssl
import subprocess
import sys
import time
import weakref
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import loopfree
import pytest
import trio
from loopfree.contrib.httpx import AsyncHTTPTransport, HTTPTransport


def _load_flask_helpers() -> ModuleType:
    """The helpers of test_flask_shared_client.py, whatever pytest's import mode."""
    name = "_loopfree_contrib_flask_shared_client"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).with_name("test_flask_shared_client.py")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


flask_helpers = _load_flask_helpers()


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(transport=HTTPTransport(), timeout=10) as client:
        yield client


def run_async(main: Any, *args: Any, timeout: float = 10) -> Any:
    """`main(client, *args)` on a fresh asyncio loop, with a fresh async client."""

    async def runner() -> Any:
        async with httpx.AsyncClient(transport=AsyncHTTPTransport(), timeout=timeout) as client:
            return await main(client, *args)

    return asyncio.run(runner())


# --------------------------------------------------------------------------
# The transports themselves
# --------------------------------------------------------------------------


def test_transports_are_httpx_transports():
    with HTTPTransport() as transport:
        assert isinstance(transport, httpx.BaseTransport)
    transport_async = AsyncHTTPTransport()
    assert isinstance(transport_async, httpx.AsyncBaseTransport)
    asyncio.run(transport_async.aclose())


def test_importing_loopfree_does_not_import_httpx():
    code = "import sys, loopfree, loopfree.contrib; assert 'httpx' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"socket_options": [(6, 1, 1)]},
        {"proxy": httpx.Proxy("http://proxy:8080", ssl_context=ssl.create_default_context())},
        {"proxy": "ftp://proxy:21"},
        {"local_address": "not-an-ip"},
    ],
)
def test_unsupported_options_raise_value_error(kwargs):
    with pytest.raises(ValueError):
        HTTPTransport(**kwargs)
    with pytest.raises(ValueError):
        AsyncHTTPTransport(**kwargs)


def test_uds_transport_under_httpx(unix_server):
    with httpx.Client(transport=HTTPTransport(uds=unix_server)) as client:
        response = client.get("http://localhost/echo_headers")
    assert response.status_code == 200
    assert response.json()["host"] == "localhost"


def test_close_closes_the_engine(server):
    transport = HTTPTransport()
    with httpx.Client(transport=transport) as client:
        assert client.get(server.url + "/").status_code == 200
        assert transport._engine.pool_pid is not None
    assert transport._engine.pool_pid is None

    transport_async = AsyncHTTPTransport()

    async def main() -> None:
        async with httpx.AsyncClient(transport=transport_async) as client:
            assert (await client.get(server.url + "/")).status_code == 200

    asyncio.run(main())
    assert transport_async._engine.pool_pid is None


# --------------------------------------------------------------------------
# Sync
# --------------------------------------------------------------------------


def test_sync_get(server, client):
    response = client.get(server.url + "/json")
    assert isinstance(response, httpx.Response)
    assert response.status_code == 200
    assert response.json() == {"Hello": "world!"}
    assert response.http_version == "HTTP/1.1"
    assert response.reason_phrase == "OK"
    assert response.headers["content-type"] == "application/json"
    assert response.request.url == server.url + "/json"
    assert response.elapsed.total_seconds() > 0


def test_sync_post(server, client):
    response = client.post(server.url + "/echo_body", content=b"payload")
    assert response.content == b"payload"
    response = client.post(server.url + "/echo_method", json={"a": 1})
    assert response.json() == {"method": "POST", "body": '{"a":1}'}
    response = client.post(server.url + "/echo_body", content=iter([b"chunk", b"ed"]))
    assert response.content == b"chunked"


def test_sync_headers_are_sent(server, client):
    response = client.get(server.url + "/echo_headers", headers={"X-Custom": "yes"})
    echoed = response.json()
    assert echoed["x-custom"] == "yes"
    assert echoed["user-agent"] == f"python-httpx/{httpx.__version__}"


def test_sync_stream(server, client):
    with client.stream("GET", server.url + "/drip?chunks=4&delay=0.05") as response:
        assert response.status_code == 200
        assert not response.is_closed
        chunks = list(response.iter_raw())
    assert b"".join(chunks) == b"0\n1\n2\n3\n"
    assert len(chunks) > 1
    assert response.is_closed


def test_sync_stream_closed_early_leaves_the_client_usable(server, client):
    with client.stream("GET", server.url + "/bytes?n=1000000") as response:
        first = next(response.iter_raw())
        assert first
    assert client.get(server.url + "/").text == "Hello, world!"


def test_sync_redirects_are_httpx_s(server, client):
    response = client.get(server.url + "/redirect_301")
    assert response.status_code == 301
    assert response.next_request is not None
    assert response.next_request.url == server.url + "/"

    response = client.get(server.url + "/redirect_301", follow_redirects=True)
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert [r.status_code for r in response.history] == [301]

    response = client.post(server.url + "/redirect_303", content=b"x", follow_redirects=True)
    assert response.json() == {"method": "GET", "body": ""}

    with pytest.raises(httpx.TooManyRedirects):
        client.get(server.url + "/redirect_loop", follow_redirects=True)


@pytest.mark.parametrize("path", ["/gzip", "/deflate", "/brotli", "/zstd"])
def test_sync_encoded_body_decoded_by_httpx(server, client, compressible_text, path):
    response = client.get(server.url + path)
    assert response.headers["content-encoding"] in ("gzip", "deflate", "br", "zstd")
    assert response.text == compressible_text
    # httpx received the raw bytes: fewer than it decoded.
    assert response.num_bytes_downloaded < len(response.content)


def test_sync_bad_gzip_is_httpx_decoding_error(server, client):
    with pytest.raises(httpx.DecodingError):
        client.get(server.url + "/bad_gzip")


def test_sync_read_timeout(server):
    with httpx.Client(transport=HTTPTransport(), timeout=0.3) as client:
        with pytest.raises(httpx.ReadTimeout) as info:
            client.get(server.url + "/slow?delay=2")
        assert info.value.request.url == server.url + "/slow?delay=2"
        assert isinstance(info.value.__cause__, loopfree.ReadTimeout)
        # A body that stalls after the head times out while streaming.
        with (
            pytest.raises(httpx.ReadTimeout),
            client.stream("GET", server.url + "/slow_response") as response,
        ):
            assert response.status_code == 200
            response.read()
        assert client.get(server.url + "/").status_code == 200


def test_sync_connection_refused(client, closed_port):
    url = f"http://127.0.0.1:{closed_port}/"
    with pytest.raises(httpx.ConnectError) as info:
        client.get(url)
    assert str(info.value)
    assert info.value.request.url == url
    assert not isinstance(info.value, loopfree.HTTPError)


def test_sync_retries_connect_failures(closed_port):
    with (
        httpx.Client(transport=HTTPTransport(retries=1), timeout=5) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(f"http://127.0.0.1:{closed_port}/")


def test_sync_tls(tls_server, ca_cert_path):
    with httpx.Client(transport=HTTPTransport(verify=ca_cert_path), timeout=10) as client:
        assert client.get(tls_server.url + "/json").json() == {"Hello": "world!"}
    with (
        httpx.Client(transport=HTTPTransport(), timeout=10) as client,
        pytest.raises(httpx.ConnectError),
    ):
        client.get(tls_server.url + "/json")


GEVENT_DRIVER = """
from gevent import monkey
monkey.patch_all()

import json, sys, time
import gevent, httpx
from loopfree.contrib.httpx import HTTPTransport

url = sys.argv[1]
with httpx.Client(transport=HTTPTransport(), timeout=10) as client:
    started = time.monotonic()
    jobs = [gevent.spawn(client.get, url + "/slow?delay=0.3") for _ in range(10)]
    gevent.joinall(jobs, raise_error=True)
    elapsed = time.monotonic() - started
print(json.dumps({"statuses": [job.value.status_code for job in jobs], "elapsed": elapsed}))
"""


def test_sync_greenlets_run_concurrently_under_gevent(server):
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_DRIVER, server.url],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["statuses"] == [200] * 10
    assert result["elapsed"] < 1.5  # ten 0.3 s requests at once, not one after another


def test_sync_http2(h2_server, ca_cert_path):
    transport = HTTPTransport(verify=ca_cert_path, http2=True)
    with httpx.Client(transport=transport, timeout=10) as client:
        response = client.get(h2_server.url + "/echo_request")
    assert response.http_version == "HTTP/2"
    assert response.json()["http_version"] == "2"


# --------------------------------------------------------------------------
# Async
# --------------------------------------------------------------------------


def test_async_get_and_post(server):
    async def main(client: httpx.AsyncClient) -> None:
        response = await client.get(server.url + "/json")
        assert response.json() == {"Hello": "world!"}
        assert response.http_version == "HTTP/1.1"
        assert response.reason_phrase == "OK"
        response = await client.post(server.url + "/echo_method", json={"a": 1})
        assert response.json() == {"method": "POST", "body": '{"a":1}'}

        async def parts() -> Any:
            yield b"async "
            yield b"chunks"

        response = await client.post(server.url + "/echo_body", content=parts())
        assert response.content == b"async chunks"

    run_async(main)


def test_async_stream(server):
    async def main(client: httpx.AsyncClient) -> list[bytes]:
        async with client.stream("GET", server.url + "/drip?chunks=4&delay=0.05") as response:
            assert response.status_code == 200
            return [chunk async for chunk in response.aiter_raw()]

    chunks = run_async(main)
    assert b"".join(chunks) == b"0\n1\n2\n3\n"
    assert len(chunks) > 1


def test_async_redirects_are_httpx_s(server):
    async def main(client: httpx.AsyncClient) -> None:
        response = await client.get(server.url + "/redirect_301")
        assert response.status_code == 301
        response = await client.get(server.url + "/redirect_307", follow_redirects=True)
        assert response.json() == {"method": "GET", "body": ""}
        assert [r.status_code for r in response.history] == [307]

    run_async(main)


def test_async_gzip_decoded_by_httpx(server, compressible_text):
    async def main(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get(server.url + "/gzip")

    response = run_async(main)
    assert response.headers["content-encoding"] == "gzip"
    assert response.text == compressible_text


def test_async_read_timeout(server):
    async def main(client: httpx.AsyncClient) -> None:
        with pytest.raises(httpx.ReadTimeout) as info:
            await client.get(server.url + "/slow?delay=2")
        assert info.value.request.url == server.url + "/slow?delay=2"
        with pytest.raises(httpx.ReadTimeout):
            async with client.stream("GET", server.url + "/slow_response") as response:
                await response.aread()
        assert (await client.get(server.url + "/")).status_code == 200

    run_async(main, timeout=0.3)


def test_async_connection_refused(closed_port):
    url = f"http://127.0.0.1:{closed_port}/"

    async def main(client: httpx.AsyncClient) -> None:
        with pytest.raises(httpx.ConnectError) as info:
            await client.get(url)
        assert info.value.request.url == url

    run_async(main)


def test_async_cancellation_leaves_the_client_usable(server):
    async def main(client: httpx.AsyncClient) -> str:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.2):
                await client.get(server.url + "/slow?delay=2")
        return (await client.get(server.url + "/")).text

    assert run_async(main) == "Hello, world!"


# --------------------------------------------------------------------------
# One httpx.AsyncClient, many event loops
# --------------------------------------------------------------------------


def test_one_async_client_across_20_asyncio_runs(server):
    client = httpx.AsyncClient(transport=AsyncHTTPTransport(), timeout=10)

    async def get(i: int) -> str:
        response = await client.get(server.url + "/echo_request", params={"run": str(i)})
        response.raise_for_status()
        return str(response.json()["query_string"])

    try:
        for i in range(20):
            assert asyncio.run(get(i)) == f"run={i}"
    finally:
        asyncio.run(client.aclose())


def test_no_event_loop_is_kept_between_requests(server):
    client = httpx.AsyncClient(transport=AsyncHTTPTransport(), timeout=10)

    async def main() -> None:
        async with client.stream("GET", server.url + "/drip?chunks=2&delay=0.01") as response:
            await response.aread()
        await client.get(server.url + "/")

    runner = asyncio.Runner()
    runner.run(main())
    loop = weakref.ref(runner.get_loop())
    runner.close()
    del runner
    gc.collect()
    assert loop() is None
    asyncio.run(client.aclose())


def test_one_async_client_under_trio_and_asyncio(server):
    client = httpx.AsyncClient(transport=AsyncHTTPTransport(), timeout=10)
    results: list[int] = []

    async def fetch(i: int) -> None:
        response = await client.get(server.url + "/echo_request", params={"trio": str(i)})
        assert response.json()["query_string"] == f"trio={i}"
        results.append(response.status_code)

    async def trio_main() -> None:
        with trio.fail_after(10):
            async with trio.open_nursery() as nursery:
                for i in range(10):
                    nursery.start_soon(fetch, i)
            async with client.stream("GET", server.url + "/drip?chunks=3&delay=0.05") as response:
                assert b"".join([c async for c in response.aiter_bytes()]) == b"0\n1\n2\n"

    async def asyncio_main() -> int:
        return (await client.get(server.url + "/")).status_code

    try:
        for _ in range(2):
            trio.run(trio_main)
            assert asyncio.run(asyncio_main()) == 200
    finally:
        trio.run(client.aclose)
    assert results == [200] * 20


def test_flask_async_views_share_one_httpx_client_over_the_engine(server):
    """tests/contrib/test_flask_shared_client.py, with a real httpx.AsyncClient."""
    client = httpx.AsyncClient(transport=AsyncHTTPTransport(), timeout=10)
    try:
        with flask_helpers.serve_wsgi(flask_helpers.create_app(client, server.url)) as port:
            ok, failures = flask_helpers.run_callers(port)
    finally:
        flask_helpers.close_client(client, lenient=False)
        del client

    total = flask_helpers.CALLERS * flask_helpers.REQUESTS_PER_CALLER
    assert total == 16 * 50
    assert not failures, f"{ok}/{total} requests succeeded; first failure:\n{failures[0]}"
    assert ok == total


def test_connect_timeout_per_request_and_per_transport(full_backlog_port):
    url = f"http://127.0.0.1:{full_backlog_port}/"
    # httpx's per-request connect timeout reaches the engine.
    with httpx.Client(transport=HTTPTransport(), timeout=httpx.Timeout(5, connect=0.3)) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout):
            client.get(url)
        assert time.monotonic() - started < 3
    # connect_timeout= caps connecting for every request of the transport.
    with httpx.Client(transport=HTTPTransport(connect_timeout=0.3), timeout=5) as client:
        started = time.monotonic()
        with pytest.raises(httpx.ConnectTimeout):
            client.get(url)
        assert time.monotonic() - started < 3


def test_socks5_proxy_is_resolved_by_the_proxy_like_loopfrees_own_transport() -> None:
    # Regression: the adapter had its own copy of the proxy step without the
    # socks5 -> socks5h mapping, so it resolved names locally (httpx never does).
    from loopfree._transports.default import proxy_engine_url
    from loopfree.contrib.httpx import _validated_proxy

    proxy = _validated_proxy("socks5://u:p@127.0.0.1:1080")
    assert proxy_engine_url(proxy) == "socks5h://u:p@127.0.0.1:1080"
