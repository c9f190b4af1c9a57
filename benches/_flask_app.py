"""Start `examples/flask_shared_client.py` with a chosen client library.

    python benches/_flask_app.py --lib loopfree|httpx|httpxr --upstream URL

The example app itself picks loopfree or httpx through ``LOOPFREE_DEMO_LIB``;
for httpxr (httpx's API, Rust core) this launcher makes ``import httpx`` return
httpxr before the app is imported. The app is run unchanged, on werkzeug's
threaded server, on a free port; it prints ``serving on http://HOST:PORT ...``.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "examples" / "flask_shared_client.py"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lib", required=True, choices=["loopfree", "httpx", "httpxr"])
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()

    os.environ["UPSTREAM_URL"] = args.upstream
    if args.lib == "loopfree":
        os.environ["LOOPFREE_DEMO_LIB"] = "loopfree"
    else:
        os.environ["LOOPFREE_DEMO_LIB"] = "httpx"
        if args.lib == "httpxr":
            import httpxr

            sys.modules["httpx"] = httpxr
    sys.argv = [str(APP), "--port", "0", "--quiet"]
    runpy.run_path(str(APP), run_name="__main__")


if __name__ == "__main__":
    main()
