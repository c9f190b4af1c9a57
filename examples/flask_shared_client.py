"""Flask async views sharing ONE module-level AsyncClient.

Run it (against ``python examples/upstream.py`` on port 8001)::

    python examples/flask_shared_client.py --port 5000
    curl http://127.0.0.1:5000/

Environment:

* ``LOOPFREE_DEMO_LIB``: ``loopfree`` (default) or ``httpx``. The code below is
  identical for both because loopfree has httpx's public API.
* ``UPSTREAM_URL``: base URL of the upstream API (default ``http://127.0.0.1:8001``).

Why this is interesting
-----------------------
Flask runs every ``async def`` view and hook through asgiref's ``async_to_sync``,
which creates a brand-new event loop for that one call and closes it afterwards.
A single request to ``/`` below therefore runs on TWO short-lived loops: one for
``authenticate()`` and one for ``index()``.

httpx ties each pooled connection to the event loop that opened it. The next call
that picks that connection out of the shared pool is running on a different loop,
and the original one is already closed, so under load a large share of requests
fail with ``RuntimeError: Event loop is closed`` (or "... attached to a different
loop"). The usual workarounds are a new client per request (no connection reuse)
or a sync ``httpx.Client`` (no async).

loopfree keeps its connection pool in its Rust core instead of on a Python event
loop, so an awaited request works from whichever loop (or thread) awaits it. The
module-level ``CLIENT`` can therefore be shared by every view, every hook, every
thread and every loop, and still reuse its keep-alive connections.
"""

from __future__ import annotations

import argparse
import logging
import os

from flask import Flask, abort, g

if os.environ.get("LOOPFREE_DEMO_LIB", "loopfree") == "httpx":
    import httpx
else:
    import loopfree as httpx  # drop-in replacement: same API, loop-independent pool

UPSTREAM_URL = os.environ.get("UPSTREAM_URL", "http://127.0.0.1:8001")
UPSTREAM_TOKEN = os.environ.get("UPSTREAM_TOKEN", "demo-token")

# ONE client for the whole process, created at import time and shared by all
# threads and all (short-lived) event loops. Safe with loopfree; see the docstring.
CLIENT = httpx.AsyncClient(base_url=UPSTREAM_URL, timeout=5.0)

app = Flask(__name__)


@app.before_request
async def authenticate() -> None:
    """Check the caller against the upstream auth service (runs on its own loop)."""
    response = await CLIENT.get("/auth", headers={"Authorization": f"Bearer {UPSTREAM_TOKEN}"})
    if response.status_code != 200:
        abort(401)
    g.user = response.json()["user"]


@app.get("/")
async def index() -> dict[str, object]:
    """Fetch data from upstream (on yet another loop) and return it."""
    response = await CLIENT.get("/")
    response.raise_for_status()
    return {**response.json(), "user": g.user}


def main() -> None:
    """Serve the app on werkzeug's threaded server (one thread per connection)."""
    from werkzeug.serving import make_server

    parser = argparse.ArgumentParser(description="Flask app sharing one AsyncClient.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5000, help="0 picks a free port")
    parser.add_argument("--quiet", action="store_true", help="no per-request access log")
    args = parser.parse_args()
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)

    server = make_server(args.host, args.port, app, threaded=True)
    # examples/demo.py waits for this line; it also confirms which library is in use.
    print(
        f"serving on http://{args.host}:{server.port} "
        f"lib={httpx.__name__} version={getattr(httpx, '__version__', '?')} upstream={UPSTREAM_URL}",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
