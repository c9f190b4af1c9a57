"""Load-test examples/flask_shared_client.py with loopfree and with httpx.

    python examples/demo.py [--requests 2000] [--concurrency 32] [--libs loopfree,httpx]

Starts the embedded upstream (examples/upstream.py), then, for each library,
starts the Flask app in a fresh subprocess on werkzeug's threaded server, sends
N requests from C concurrent callers (stdlib ``http.client``, one keep-alive
connection per caller, so the load generator does not depend on the library
under test), stops the app and reports failures, throughput and latency.

Exit status: 0 if loopfree served every request; 1 if it failed any, could not
be imported, or (for any library) the app could not be started. httpx failures
are expected and never affect the exit status. Everything runs on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import http.client
import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from upstream import start_upstream  # noqa: E402

APP_SCRIPT = HERE / "flask_shared_client.py"
LIBS = ("loopfree", "httpx")  # always run in this order
APP_START_TIMEOUT = 60.0  # seconds for the app subprocess to import and bind


# --------------------------------------------------------------------------- load


@dataclass
class LoadResult:
    requests: int = 0
    ok: int = 0
    elapsed: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # of OK responses
    failures: Counter[str] = field(default_factory=Counter)  # as seen by the caller

    @property
    def failed(self) -> int:
        return self.requests - self.ok

    def merge(self, other: LoadResult) -> None:
        self.requests += other.requests
        self.ok += other.ok
        self.latencies_ms += other.latencies_ms
        self.failures += other.failures


def _is_ok(status: int, body: bytes) -> bool:
    if status != 200:
        return False
    try:
        return json.loads(body).get("ok") is True
    except ValueError:
        return False


def run_load(
    url: str, requests: int, concurrency: int, timeout: float, budget: float
) -> LoadResult:
    """GET ``url`` ``requests`` times from ``concurrency`` threads.

    ``timeout`` bounds every socket operation of a request; after ``budget``
    seconds no new requests are started (the rest count as failures), so a
    broken server can never make the demo hang.
    """
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    tickets = itertools.count()  # next() on a count is atomic under the GIL
    results = [LoadResult() for _ in range(concurrency)]
    start = time.perf_counter()
    deadline = start + budget

    def caller(result: LoadResult) -> None:
        conn: http.client.HTTPConnection | None = None
        while next(tickets) < requests:
            result.requests += 1
            if time.perf_counter() > deadline:
                result.failures[f"not sent: time budget of {budget:g} s used up"] += 1
                continue
            if conn is None:
                conn = http.client.HTTPConnection(host, port, timeout=timeout)
            t0 = time.perf_counter()
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read()
            except TimeoutError:
                result.failures[f"no response within {timeout:g} s"] += 1
            except (OSError, http.client.HTTPException) as exc:
                result.failures[f"{type(exc).__name__}: {exc}"] += 1
            else:
                if _is_ok(response.status, body):
                    result.ok += 1
                    result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                else:
                    result.failures[f"HTTP {response.status}"] += 1
                if not response.will_close:
                    continue
            conn.close()  # after errors and when the server asked to close
            conn = None
        if conn is not None:
            conn.close()

    threads = [
        threading.Thread(target=caller, args=(r,), name=f"caller-{i}", daemon=True)
        for i, r in enumerate(results)
    ]
    for t in threads:
        t.start()
    join_deadline = deadline + timeout + 10
    for t in threads:
        t.join(max(0.0, join_deadline - time.perf_counter()))
    total = LoadResult(elapsed=time.perf_counter() - start)
    for r in results:
        total.merge(r)
    if total.requests < requests:  # only if a caller is still stuck (should not happen)
        total.failures["caller thread did not finish"] += requests - total.requests
        total.requests = requests
    return total


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = math.ceil(pct / 100 * len(ordered))
    return ordered[min(max(rank, 1), len(ordered)) - 1]


# ------------------------------------------------------------------ app process

_LOG_RECORD = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,.]+\] [A-Z]+ in ")  # Flask's default format
_EXCEPTION_LINE = re.compile(
    r"^[A-Za-z_][\w.]*(: .*)?$"
)  # e.g. "RuntimeError: Event loop is closed"


def errors_in_log(log: str) -> Counter[str]:
    """Count the final exception line of every error record in a Flask log.

    Tracebacks that are not tied to a request ("Exception ignored in: ...",
    e.g. from garbage-collected transports) are skipped.
    """
    found: Counter[str] = Counter()
    current: str | None = None
    skip_next_exception = False
    for line in log.splitlines():
        if _LOG_RECORD.match(line):
            if current:
                found[current] += 1
            current = None
        elif line.startswith("Exception ignored"):
            skip_next_exception = True
        elif _EXCEPTION_LINE.match(line):
            if skip_next_exception:
                skip_next_exception = False
            else:
                current = re.sub(r"0x[0-9a-fA-F]+", "0x...", line.strip())
    if current:
        found[current] += 1
    return found


@dataclass
class App:
    proc: subprocess.Popen[str]
    log_path: Path
    url: str = ""
    banner: str = ""

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_app(lib: str, upstream_url: str, log_dir: Path) -> App:
    """Start the Flask app in a fresh interpreter; return once it is listening."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(LOOPFREE_DEMO_LIB=lib, UPSTREAM_URL=upstream_url)
    log_path = log_dir / f"{lib}.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, str(APP_SCRIPT), "--host", "127.0.0.1", "--port", "0", "--quiet"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
        )
    app = App(proc, log_path)

    # The app prints "serving on http://127.0.0.1:PORT lib=... version=..." once bound.
    first_line: list[str] = []
    reader = threading.Thread(
        target=lambda: first_line.append(proc.stdout.readline()),  # type: ignore[union-attr]
        daemon=True,
    )
    reader.start()
    reader.join(APP_START_TIMEOUT)
    line = first_line[0].strip() if first_line else ""
    match = re.match(r"serving on (\S+) lib=(\S+)", line)
    if not match or match.group(2) != lib:
        app.stop()
        tail = "\n".join(app.log().strip().splitlines()[-15:])
        reason = f"unexpected banner {line!r}" if line else "no banner"
        raise RuntimeError(f"the {lib} app did not start ({reason}); its log ends with:\n{tail}")
    app.url, app.banner = match.group(1), line
    return app


# ----------------------------------------------------------------------- report


@dataclass
class Outcome:
    lib: str
    load: LoadResult | None = None
    app_errors: Counter[str] = field(default_factory=Counter)
    version: str = "?"
    error: str | None = None  # the run itself could not be done


def report(outcome: Outcome, concurrency: int) -> None:
    print(f"\n== {outcome.lib} {outcome.version} ==")
    if outcome.load is None:
        print(f"  not run: {outcome.error}")
        return
    r = outcome.load
    print(f"  requests    {r.requests} from {concurrency} concurrent callers")
    print(f"  OK          {r.ok}")
    print(f"  failures    {r.failed}")
    for text, count in r.failures.most_common(2):
        print(f"    {count:>6} x {text}")
    if outcome.app_errors:
        print("  errors in the app log (top 2):")
        for text, count in outcome.app_errors.most_common(2):
            print(f"    {count:>6} x {text}")
    print(f"  throughput  {r.requests / r.elapsed:.0f} req/s ({r.elapsed:.1f} s)")
    p50, p99 = percentile(r.latencies_ms, 50), percentile(r.latencies_ms, 99)
    print(f"  latency     p50 {p50:.1f} ms   p99 {p99:.1f} ms   (OK responses)")


def loopfree_import_error() -> str | None:
    """Return why ``import loopfree`` fails in a fresh interpreter, or None."""
    check = subprocess.run(
        [sys.executable, "-c", "import loopfree; loopfree.AsyncClient"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check.returncode == 0:
        return None
    lines = check.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {check.returncode}"


def parse_libs(value: str) -> list[str]:
    libs = {part.strip() for part in value.split(",") if part.strip()}
    unknown = libs - set(LIBS)
    if unknown or not libs:
        raise argparse.ArgumentTypeError(f"choose from {', '.join(LIBS)} (comma-separated)")
    return [lib for lib in LIBS if lib in libs]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="per library (default 2000)")
    parser.add_argument("--concurrency", type=int, default=32, help="concurrent callers (32)")
    parser.add_argument(
        "--libs",
        type=parse_libs,
        default=list(LIBS),
        help="comma-separated subset of loopfree,httpx (default: both)",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="per request, s (10)")
    parser.add_argument(
        "--budget", type=float, default=40.0, help="max seconds of load per library (40)"
    )
    parser.add_argument("--log-dir", type=Path, help="keep the app logs in this directory")
    args = parser.parse_args(argv)
    if args.requests < 1 or args.concurrency < 1:
        parser.error("--requests and --concurrency must be at least 1")

    if "loopfree" in args.libs:
        reason = loopfree_import_error()
        if reason is not None:
            print(f"loopfree cannot be imported with {sys.executable}:\n  {reason}")
            print("Build and install it first (e.g. `maturin develop --release`), or run")
            print("`python examples/demo.py --libs httpx` to see only the httpx half.")
            return 1

    print(
        f"Flask async views + before_request hook sharing ONE module-level AsyncClient;\n"
        f"werkzeug threaded server; {args.requests} requests per library from "
        f"{args.concurrency} concurrent callers."
    )
    outcomes: list[Outcome] = []
    upstream_url, stop_upstream = start_upstream()
    print(f"upstream: {upstream_url}")
    try:
        with tempfile.TemporaryDirectory(prefix="loopfree-demo-") as tmp:
            log_dir = args.log_dir or Path(tmp)
            log_dir.mkdir(parents=True, exist_ok=True)
            for lib in args.libs:
                outcome = Outcome(lib)
                outcomes.append(outcome)
                try:
                    app = start_app(lib, upstream_url, log_dir)
                except RuntimeError as exc:
                    outcome.error = str(exc)
                    report(outcome, args.concurrency)
                    continue
                outcome.version = app.banner.partition("version=")[2].split()[0]
                try:
                    outcome.load = run_load(
                        app.url, args.requests, args.concurrency, args.timeout, args.budget
                    )
                finally:
                    app.stop()
                outcome.app_errors = errors_in_log(app.log())
                report(outcome, args.concurrency)
    finally:
        stop_upstream()

    summary = []
    for o in outcomes:
        if o.load is None:
            summary.append(f"{o.lib}: not run")
        else:
            summary.append(f"{o.lib}: {o.load.failed} failures / {o.load.requests}")
    print("\n" + "   ".join(summary))

    if any(o.load is None for o in outcomes):
        return 1  # an app did not start: the demo itself is broken
    loopfree_failures = sum(o.load.failed for o in outcomes if o.lib == "loopfree" and o.load)
    return 1 if loopfree_failures else 0


if __name__ == "__main__":
    sys.exit(main())
