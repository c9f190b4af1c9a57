"""Raw ASGI application used by every test server (HTTP/1.1, HTTPS, HTTP/2).

Routes are matched by prefix, like httpx's own test server; anything not
matched answers ``200 text/plain "Hello, world!"``.  The module has no
dependency on the code under test.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

import brotli
import zstandard

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HELLO = b"Hello, world!"
NOT_JSON = b"this is not json {"
#: The decoded body of /gzip, /brotli, /zstd and /deflate.
COMPRESSIBLE_TEXT = "".join(
    f"{i:04d} The quick brown fox jumps over the lazy dog. \u00e9\u00e8\u00ea\n" for i in range(200)
)
_COMPRESSIBLE_BYTES = COMPRESSIBLE_TEXT.encode("utf-8")
COMPRESSED_BODIES: dict[str, tuple[str, bytes]] = {
    "/gzip": ("gzip", gzip.compress(_COMPRESSIBLE_BYTES)),
    "/brotli": ("br", brotli.compress(_COMPRESSIBLE_BYTES)),
    "/zstd": ("zstd", zstandard.ZstdCompressor().compress(_COMPRESSIBLE_BYTES)),
    # "deflate" in HTTP means a zlib stream (RFC 9110 8.4.1.2).
    "/deflate": ("deflate", zlib.compress(_COMPRESSIBLE_BYTES)),
}
BYTES_PATTERN = bytes(range(256))


def _query(scope: Scope) -> dict[str, str]:
    return dict(parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))


def _headers(scope: Scope) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]


async def _read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return body
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def _sleep_unless_disconnected(receive: Receive, delay: float) -> bool:
    """Sleep ``delay`` seconds; return False early if the client went away.

    Must be called after the request body has been read.
    """
    try:
        message = await asyncio.wait_for(receive(), delay)
    except TimeoutError:
        return True
    return message["type"] != "http.disconnect"


async def _respond(
    send: Send,
    status: int = 200,
    body: bytes = b"",
    content_type: str | None = "text/plain; charset=utf-8",
    headers: list[tuple[str, str]] | None = None,
) -> None:
    raw_headers = []
    if content_type is not None:
        raw_headers.append((b"content-type", content_type.encode("latin-1")))
    for name, value in headers or []:
        raw_headers.append((name.encode("latin-1"), value.encode("latin-1")))
    if status not in (204, 304) and not (100 <= status < 200):
        raw_headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True).encode("utf-8")


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    assert scope["type"] == "http", scope["type"]
    path: str = scope["path"]
    query = _query(scope)
    body = await _read_body(receive)

    if path.startswith("/slow_response"):
        # Headers first, then a 1 s pause, then the body.
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": b"", "more_body": True})
        if await _sleep_unless_disconnected(receive, 1.0):
            await send({"type": "http.response.body", "body": HELLO})
        return

    if path.startswith("/stall_body"):
        # Declares n bytes, sends `sent` of them, then pauses `delay` seconds
        # before the rest: a large body that stalls part-way.
        n = int(query.get("n", str(1024 * 1024)))
        sent = int(query.get("sent", str(n // 4)))
        delay = float(query.get("delay", "30"))
        start = {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", str(n).encode())],
        }
        await send(start)
        await send({"type": "http.response.body", "body": b"s" * sent, "more_body": True})
        if await _sleep_unless_disconnected(receive, delay):
            await send({"type": "http.response.body", "body": b"s" * (n - sent)})
        return

    if path.startswith("/slow"):
        delay = float(query.get("delay", "1"))
        if await _sleep_unless_disconnected(receive, delay):
            await _respond(send, body=HELLO)
        return

    if path.startswith("/drip"):
        chunks = int(query.get("chunks", "3"))
        delay = float(query.get("delay", "0.1"))
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        for i in range(chunks):
            if i and not await _sleep_unless_disconnected(receive, delay):
                return
            await send({"type": "http.response.body", "body": f"{i}\n".encode(), "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return

    if path.startswith("/status/"):
        code = int(path[len("/status/") :].strip("/") or "200")
        await _respond(send, status=code, body=b"" if code in (204, 304) else str(code).encode())
        return

    if path.startswith("/echo_body"):
        content_type = dict(_headers(scope)).get("content-type", "application/octet-stream")
        await _respond(send, body=body, content_type=content_type)
        return

    if path.startswith("/echo_headers"):
        echoed: dict[str, str] = {}
        for name, value in _headers(scope):
            echoed[name] = f"{echoed[name]}, {value}" if name in echoed else value
        await _respond(send, body=_json(echoed), content_type="application/json")
        return

    if path.startswith("/echo_method"):
        payload = {"method": scope["method"], "body": body.decode("latin-1")}
        await _respond(send, body=_json(payload), content_type="application/json")
        return

    if path.startswith("/echo_request"):
        payload = {
            "method": scope["method"],
            "path": path,
            "query_string": scope.get("query_string", b"").decode("latin-1"),
            "query": parse_qsl(scope.get("query_string", b"").decode("latin-1")),
            "headers": _headers(scope),
            "body": body.decode("latin-1"),
            "http_version": scope.get("http_version"),
        }
        await _respond(send, body=_json(payload), content_type="application/json")
        return

    if path.startswith("/json"):
        await _respond(send, body=_json({"Hello": "world!"}), content_type="application/json")
        return

    if path.startswith("/not_json"):
        await _respond(send, body=NOT_JSON, content_type="application/json")
        return

    if path.startswith("/redirect_301"):
        await _respond(send, status=301, headers=[("location", "/")])
        return

    if path.startswith("/redirect_303"):
        await _respond(send, status=303, headers=[("location", "/echo_method")])
        return

    if path.startswith("/redirect_307"):
        await _respond(send, status=307, headers=[("location", "/echo_method")])
        return

    if path.startswith("/redirect_loop"):
        await _respond(send, status=302, headers=[("location", "/redirect_loop")])
        return

    if path.startswith("/redirect_to"):
        status = int(query.get("status", "302"))
        await _respond(send, status=status, headers=[("location", query.get("url", "/"))])
        return

    if path in COMPRESSED_BODIES:
        encoding, data = COMPRESSED_BODIES[path]
        await _respond(send, body=data, headers=[("content-encoding", encoding)])
        return

    if path.startswith("/bad_gzip"):
        await _respond(
            send, body=b"this is definitely not gzip data", headers=[("content-encoding", "gzip")]
        )
        return

    if path.startswith("/set_cookie"):
        cookies = [(name, f"{name}={value}; Path=/") for name, value in query.items()]
        await _respond(send, body=b"ok", headers=[("set-cookie", c) for _, c in cookies])
        return

    if path.startswith("/cookies"):
        jar: SimpleCookie = SimpleCookie()
        for name, value in _headers(scope):
            if name == "cookie":
                jar.load(value)
        payload = {name: morsel.value for name, morsel in jar.items()}
        await _respond(send, body=_json(payload), content_type="application/json")
        return

    if path.startswith("/bytes"):
        n = int(query.get("n", "1024"))
        data = (BYTES_PATTERN * (n // len(BYTES_PATTERN) + 1))[:n]
        await _respond(send, body=data, content_type="application/octet-stream")
        return

    await _respond(send, body=HELLO)
