"""loopfree's benchmark harness.

    .venv/bin/python benches/run.py            # quick profile (what `make bench` runs)
    .venv/bin/python benches/run.py --full     # the full profile
    .venv/bin/python benches/run.py --quick --clients loopfree,httpx --scenarios seq,async64 --no-write

What it does, in order:

1. installs the pinned peers of `benches/requirements.txt` into this
   interpreter's environment if any is missing (`pip install -r`); a peer that
   cannot be installed is skipped with the reason;
2. builds `benches/server` (bench-server and the native reqwest client
   bench-native) into `benches/server/target` with cargo;
3. starts bench-server on one CPU (`taskset -c 1`, current-thread runtime);
4. for every scenario, runs R rounds; in each round every client runs once,
   in a fresh Python process pinned to the other CPU (`taskset -c 0`), in an
   order rotated every round (A B C, B C A, C A B, ...);
5. writes `docs/benchmarks.md` (tables, targets, method, machine, versions),
   `docs/benchmarks.png` (chart, with matplotlib) and
   `benches/results/latest.json` (every raw measurement).

Every child process has a timeout and every load loop a time bound; only
127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import importlib.metadata
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import typing
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SERVER_DIR = HERE / "server"
TARGET_DIR = SERVER_DIR / "target"
SERVER_BIN = TARGET_DIR / "release" / "bench-server"
NATIVE_BIN = TARGET_DIR / "release" / "bench-native"
WORKER = HERE / "_worker.py"
FLASK_APP = HERE / "_flask_app.py"
REQUIREMENTS = HERE / "requirements.txt"
DOC = ROOT / "docs" / "benchmarks.md"
RAW = HERE / "results" / "latest.json"

CLIENT_CPU = "0"
SERVER_CPU = "1"
KIB = 1024
MIB = 1024 * 1024
MU = "\u00b5"  # micro sign
TIMES = "\u00d7"  # multiplication sign

# A run during which other processes used more than this share of one CPU is
# flagged as noisy (the machine was not quiet).
NOISY_PCT = 15.0

# A cell whose server used at least this share of its CPU measured the server.
SERVER_BOUND_PCT = 90.0

# Variables that make some clients load a CA bundle from disk at construction.
# Cleared for the workers (unless --keep-ssl-env) so that every library uses
# its own default trust store, as on a machine without them.
SSL_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")

ALL_CLIENTS = (
    "loopfree",
    "loopfree+httpx",
    "httpx",
    "aiohttp",
    "urllib3",
    "pyreqwest",
    "wreq",
    "httpxr",
    "native",
    "native-hyper",
)
# The two bench-native clients (Rust, no Python worker).
NATIVE_CLIENTS = {"native", "native-hyper"}
SYNC_CLIENTS = {"loopfree", "loopfree+httpx", "httpx", "urllib3", "pyreqwest", "wreq", "httpxr"}
ASYNC_CLIENTS = {"loopfree", "loopfree+httpx", "httpx", "aiohttp", "pyreqwest", "wreq", "httpxr"}
H2_CLIENTS = {"loopfree", "loopfree+httpx", "httpx", "pyreqwest", "wreq", "httpxr", "native"}
FLASK_CLIENTS = ("loopfree", "httpx", "httpxr")


# =========================================================================== profiles


@dataclass(frozen=True)
class Profile:
    name: str
    rounds: int
    duration: float  # measured window per run, s
    warmup: float  # warm-up per run, s
    construct_count: int  # client constructions timed per run (at most)
    flask_seconds: float
    flask_concurrency: int
    rss_requests: int
    rss_bound: float  # time bound of one long run, s
    extra: bool  # the full profile's extra scenarios


PROFILES = {
    "quick": Profile(
        name="quick",
        rounds=3,
        duration=1.0,
        warmup=0.3,
        construct_count=200,
        flask_seconds=3.0,
        flask_concurrency=32,
        rss_requests=30_000,
        rss_bound=120.0,
        extra=False,
    ),
    "full": Profile(
        name="full",
        rounds=7,
        duration=3.0,
        warmup=1.0,
        construct_count=1000,
        flask_seconds=10.0,
        flask_concurrency=32,
        rss_requests=200_000,
        rss_bound=900.0,
        extra=True,
    ),
}


# =========================================================================== scenarios


@dataclass(frozen=True)
class Scenario:
    id: str
    title: str
    kind: str  # get | upload | newclient | construct | flask
    api: str  # sync | async | prefer-sync (sync where the client has it, else async)
    path: str = "/bytes/1k"
    concurrency: int = 1
    h2: bool = False
    tls: bool = False
    expect_len: int | None = 1024
    size: int = 0
    unit: str = "req/s"  # req/s | MiB/s | us (lower is better)
    full_only: bool = False

    @property
    def higher_is_better(self) -> bool:
        return self.unit != "us"


SCENARIOS = (
    Scenario("seq", "Sync, sequential GET 1 KiB (HTTP/1.1 keep-alive)", "get", "sync"),
    Scenario(
        "threads16", "16 threads sharing one sync client, GET 1 KiB", "get", "sync", concurrency=16
    ),
    Scenario(
        "async64",
        "asyncio, 64 concurrent tasks, one client, GET 1 KiB",
        "get",
        "async",
        concurrency=64,
    ),
    Scenario(
        "async1024",
        "asyncio, 1024 concurrent tasks, one client, GET 1 KiB",
        "get",
        "async",
        concurrency=1024,
    ),
    Scenario(
        "dl1m",
        "Download 1 MiB, sequential",
        "get",
        "prefer-sync",
        path="/bytes/1m",
        expect_len=MIB,
        unit="MiB/s",
    ),
    Scenario(
        "dl16m",
        "Download 16 MiB, sequential",
        "get",
        "prefer-sync",
        path="/bytes/16m",
        expect_len=16 * MIB,
        unit="MiB/s",
    ),
    Scenario(
        "up16m",
        "Upload 16 MiB (POST to /sink), sequential",
        "upload",
        "prefer-sync",
        path="/sink",
        expect_len=None,
        size=16 * MIB,
        unit="MiB/s",
    ),
    Scenario(
        "h2",
        "HTTP/2 (h2c, prior knowledge): 100 concurrent streams on one connection, GET 1 KiB",
        "get",
        "async",
        concurrency=100,
        h2=True,
    ),
    Scenario(
        "newclient",
        "A new client per request (build + GET 1 KiB + close), sequential",
        "newclient",
        "prefer-sync",
    ),
    Scenario(
        "construct",
        "Building a client after the first (lower is better)",
        "construct",
        "prefer-sync",
        unit="us",
    ),
    Scenario(
        "flask",
        "Flask async views sharing one AsyncClient, end to end (32 callers)",
        "flask",
        "async",
    ),
    Scenario(
        "tls",
        "TLS (rustls server): sync, sequential GET 1 KiB over https",
        "get",
        "sync",
        tls=True,
        full_only=True,
    ),
    Scenario(
        "gzip",
        "Sync, sequential GET of a gzip body (1 KiB decoded)",
        "get",
        "sync",
        path="/gzip",
        full_only=True,
    ),
)


def supports(client: str, scenario: Scenario) -> bool:
    if scenario.kind == "flask":
        return client in FLASK_CLIENTS
    if client == "native":
        return True
    if client == "native-hyper":
        # Plain HTTP/1.1 GETs only: its pool speaks nothing else.
        return scenario.kind == "get" and not scenario.h2 and not scenario.tls
    if scenario.h2 and client not in H2_CLIENTS:
        return False
    if scenario.api == "sync":
        return client in SYNC_CLIENTS
    if scenario.api == "async":
        return client in ASYNC_CLIENTS
    return client in SYNC_CLIENTS or client in ASYNC_CLIENTS


def api_for(client: str, scenario: Scenario) -> str:
    if scenario.api == "prefer-sync":
        return "sync" if client in SYNC_CLIENTS else "async"
    return scenario.api


# =========================================================================== helpers


def log(message: str = "") -> None:
    print(message, flush=True)


def run_child(
    cmd: list[str], timeout: float, env: dict[str, str] | None = None, cwd: Path = ROOT
) -> tuple[int | None, str, str]:
    """Run `cmd` in its own process group; kill that group on timeout.

    Returns (returncode or None on timeout, stdout, stderr).
    """
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=cwd,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
        return proc.returncode, out, err
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        return None, out, err + f"\n[killed after {timeout:.0f} s]"


def pinned(cpu: str, cmd: list[str]) -> list[str]:
    if shutil.which("taskset"):
        return ["taskset", "-c", cpu, *cmd]
    return cmd


def median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def fmt_num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if unit == "us":
        return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"
    if value >= 10_000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:,.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value: float | None) -> str:
    if value is None:
        return "—"
    if value >= 10:
        return f"{value:.0f}{TIMES}"
    return f"{value:.2f}{TIMES}"


def clean_env(keep_ssl_env: bool) -> dict[str, str]:
    env = dict(os.environ)
    if not keep_ssl_env:
        for name in SSL_ENV:
            env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def system_busy() -> float:
    """CPU seconds all CPUs have been busy since boot (/proc/stat)."""
    with open("/proc/stat") as handle:
        fields = [int(v) for v in handle.readline().split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def wait_until_quiet(max_wait: float, server: Server | None = None) -> float:
    """Wait (at most `max_wait` s) until other processes use < 10 % of a CPU.

    The server's own CPU is not counted. Returns the seconds waited.
    """
    t0 = time.perf_counter()
    announced = False
    while True:
        busy0 = system_busy()
        srv0 = proc_cpu(server.pid) if server else 0.0
        time.sleep(0.5)
        busy = (
            system_busy()
            - busy0
            - ((proc_cpu(server.pid) or 0.0) - (srv0 or 0.0) if server else 0.0)
        )
        waited = time.perf_counter() - t0
        if busy < 0.05 or waited >= max_wait:
            if announced and busy < 0.05:
                log(f"  ... quiet again after {waited:.0f} s")
            elif announced:
                log(f"  ... still busy after {waited:.0f} s; going on (the run may be flagged)")
            return waited
        if not announced:
            log(
                f"  ... machine busy ({busy / 0.5 * 100:.0f} % of a CPU), waiting up to {max_wait:.0f} s"
            )
            announced = True
        time.sleep(4.5)


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = 65536 if hard == resource.RLIM_INFINITY else min(hard, 65536)
    if soft < wanted:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))


# =========================================================================== setup


def read_requirements() -> list[tuple[str, str]]:
    pins = []
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if "==" in line:
            name, version = line.split("==", 1)
            pins.append((name.strip(), version.strip()))
    return pins


def installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def ensure_requirements(allow_install: bool) -> dict[str, str]:
    """Install missing pins. Returns {package: why it is unavailable}."""
    pins = read_requirements()
    missing = [(n, v) for n, v in pins if installed(n) != v]
    problems: dict[str, str] = {}
    if not missing:
        return problems
    names = ", ".join(f"{n}=={v}" for n, v in missing)
    if not allow_install:
        log(f"! not installing (--no-install): {names}")
        return {n: "not installed (--no-install)" for n, v in missing if installed(n) is None}
    log(f"- installing {names}")
    pip = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "-q"]
    code, _out, err = run_child([*pip, "-r", str(REQUIREMENTS)], timeout=900)
    if code == 0:
        return problems
    log("! `pip install -r benches/requirements.txt` failed; installing one by one")
    for name, version in missing:
        code, _out, err = run_child([*pip, f"{name}=={version}"], timeout=600)
        if code != 0:
            tail = [ln for ln in err.strip().splitlines() if ln.strip()][-2:]
            problems[name] = " / ".join(tail)[:300] or f"pip exited with {code}"
            log(f"! cannot install {name}=={version}: {problems[name]}")
    return problems


def build_native() -> None:
    cargo = shutil.which("cargo")
    if cargo is None:
        sys.exit("cargo is needed to build benches/server (bench-server, bench-native)")
    log("- building benches/server (cargo build --release) ...")
    t0 = time.perf_counter()
    code, _out, err = run_child(
        [
            cargo,
            "build",
            "--release",
            "--locked",
            "--quiet",
            "--manifest-path",
            str(SERVER_DIR / "Cargo.toml"),
            "--target-dir",
            str(TARGET_DIR),
        ],
        timeout=1800,
    )
    if code != 0:
        sys.stderr.write(err[-4000:])
        sys.exit("building benches/server failed")
    log(f"  done in {time.perf_counter() - t0:.0f} s")


def probe_clients(wanted: list[str], env: dict[str, str]) -> dict[str, dict[str, str]]:
    """Import each client in a child process: {client: {version, error?, note?}}."""
    code = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
import _clients
out = {}
for name in sys.argv[2].split(","):
    entry = {"version": _clients.version(_clients.DISTS[name])}
    try:
        if name == "loopfree+httpx":
            ok, why = _clients.contrib_httpx_available()
            entry["note"] = why
            if not ok:
                entry["error"] = why
                out[name] = entry
                continue
        adapter = _clients.FACTORIES[name]()
        if adapter.note:
            entry["note"] = adapter.note
    except Exception as exc:
        entry["error"] = f"{type(exc).__name__}: {exc}"[:300]
    out[name] = entry
print("PROBE " + json.dumps(out))
"""
    names = [c for c in wanted if c not in NATIVE_CLIENTS]
    result: dict[str, dict[str, str]] = {}
    if names:
        rc, out, err = run_child(
            [sys.executable, "-c", code, str(HERE), ",".join(names)], timeout=180, env=env
        )
        line = next((ln for ln in out.splitlines() if ln.startswith("PROBE ")), None)
        if line is None:
            sys.exit(f"cannot probe the clients (exit {rc}):\n{err[-3000:]}")
        result = json.loads(line[len("PROBE ") :])
    if "native" in wanted:
        result["native"] = {"version": f"reqwest {lock_version('reqwest')} (Rust)"}
    if "native-hyper" in wanted:
        result["native-hyper"] = {"version": f"hyper {lock_version('hyper')} (Rust)"}
    return result


def lock_version(crate: str) -> str:
    text = (SERVER_DIR / "Cargo.lock").read_text()
    match = re.search(rf'name = "{re.escape(crate)}"\nversion = "([^"]+)"', text)
    return match.group(1) if match else "?"


# =========================================================================== server


class Server:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            pinned(SERVER_CPU, [str(SERVER_BIN), "--threads", "1", "--stdin-watchdog"]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.stop()
            sys.exit("bench-server did not start within 30 s")
        info = json.loads(line)
        self.h1, self.h2c, self.tls = info["h1"], info["h2c"], info["tls"]
        self.ca: str = info["ca"]
        self.pid: int = info["pid"]

    def base(self, scenario: Scenario) -> str:
        if scenario.tls:
            return f"https://127.0.0.1:{self.tls}"
        if scenario.h2:
            return f"http://127.0.0.1:{self.h2c}"
        return f"http://127.0.0.1:{self.h1}"

    @property
    def stats_url(self) -> str:
        return f"http://127.0.0.1:{self.h1}/stats"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(OSError):
                assert self.proc.stdin is not None
                self.proc.stdin.close()  # the watchdog exits on EOF
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        with contextlib.suppress(OSError):
            os.unlink(self.ca)


# =========================================================================== one run


@dataclass
class Run:
    scenario: str
    client: str
    round: int
    value: float | None = None  # req/s, MiB/s or µs
    cpu_us: float | None = None  # CPU µs per request
    hwm_mib: float | None = None
    delta_mib: float | None = None  # peak RSS minus the RSS before the first request
    srv_pct: float | None = None
    noise_pct: float | None = None  # CPU used by other processes, % of one CPU
    conns: int | None = None
    ops: int = 0
    errors: int = 0
    error: str | None = None
    wall: float = 0.0
    raw: dict[str, typing.Any] = field(default_factory=dict)


def worker_spec(
    scenario: Scenario, client: str, server: Server, profile: Profile
) -> dict[str, typing.Any]:
    return {
        "client": client,
        "kind": scenario.kind,
        "api": api_for(client, scenario),
        "concurrency": scenario.concurrency,
        "url": server.base(scenario) + scenario.path,
        "h2": scenario.h2,
        "ca": server.ca if scenario.tls else None,
        "expect_len": scenario.expect_len,
        "size": scenario.size,
        "duration": profile.duration,
        "warmup": profile.warmup,
        "server_pid": server.pid,
        "stats_url": None if scenario.h2 or scenario.tls else server.stats_url,
        "count": profile.construct_count,
    }


def native_cmd(
    scenario: Scenario, server: Server, profile: Profile, engine: str = "reqwest"
) -> list[str]:
    mode = {"get": "get", "upload": "upload", "newclient": "newclient", "construct": "construct"}[
        scenario.kind
    ]
    cmd = [
        str(NATIVE_BIN),
        "--mode",
        mode,
        "--url",
        server.base(scenario) + scenario.path,
        "--concurrency",
        str(scenario.concurrency),
        "--duration",
        str(profile.duration),
        "--warmup",
        str(profile.warmup),
        "--server-pid",
        str(server.pid),
        "--count",
        str(profile.construct_count),
        "--engine",
        engine,
    ]
    if scenario.h2:
        cmd.append("--h2")
    if scenario.tls:
        cmd += ["--ca", server.ca]
    if scenario.size:
        cmd += ["--size", str(scenario.size)]
    if scenario.expect_len is not None:
        cmd += ["--expect-len", str(scenario.expect_len)]
    return cmd


def summarise_raw(run: Run, scenario: Scenario, raw: dict[str, typing.Any]) -> None:
    run.raw = raw
    if "fatal" in raw:
        run.error = raw["fatal"]
        return
    run.ops = int(raw.get("ops") or 0)
    run.errors = int(raw.get("errors") or 0)
    if raw.get("first_error"):
        run.error = raw["first_error"]
    if scenario.kind == "construct":
        run.value = raw.get("construct_us")
        return
    elapsed = raw.get("elapsed") or 0.0
    if elapsed <= 0 or run.ops == 0:
        run.error = run.error or "no request completed"
        return
    if scenario.unit == "MiB/s":
        run.value = raw.get("bytes", 0) / MIB / elapsed
    else:
        run.value = run.ops / elapsed
    if raw.get("cpu_s") is not None:
        run.cpu_us = raw["cpu_s"] / run.ops * 1e6
    if raw.get("hwm_kb"):
        run.hwm_mib = raw["hwm_kb"] / KIB
        if raw.get("base_kb"):
            run.delta_mib = (raw["hwm_kb"] - raw["base_kb"]) / KIB
    if raw.get("srv_cpu_s") is not None:
        run.srv_pct = raw["srv_cpu_s"] / elapsed * 100
        if raw.get("sys_busy_s") is not None and raw.get("cpu_s") is not None:
            foreign = raw["sys_busy_s"] - raw["cpu_s"] - raw["srv_cpu_s"]
            run.noise_pct = max(0.0, foreign / elapsed * 100)
    run.conns = raw.get("conns")


def parse_result(out: str) -> dict[str, typing.Any] | None:
    for line in reversed(out.splitlines()):
        if line.startswith("RESULT "):
            return typing.cast(dict[str, typing.Any], json.loads(line[len("RESULT ") :]))
        if line.startswith("{"):  # bench-native prints bare JSON
            with contextlib.suppress(ValueError):
                return typing.cast(dict[str, typing.Any], json.loads(line))
    return None


def run_one(
    scenario: Scenario,
    client: str,
    rnd: int,
    server: Server,
    profile: Profile,
    env: dict[str, str],
) -> Run:
    run = Run(scenario.id, client, rnd)
    timeout = 90 + 3 * (profile.duration + profile.warmup)
    t0 = time.perf_counter()
    if client in NATIVE_CLIENTS:
        engine = "hyper" if client == "native-hyper" else "reqwest"
        cmd = pinned(CLIENT_CPU, native_cmd(scenario, server, profile, engine))
    else:
        spec = worker_spec(scenario, client, server, profile)
        cmd = pinned(CLIENT_CPU, [sys.executable, str(WORKER), json.dumps(spec)])
    code, out, err = run_child(cmd, timeout=timeout, env=env)
    run.wall = time.perf_counter() - t0
    raw = parse_result(out)
    if raw is None:
        tail = " | ".join(ln for ln in err.strip().splitlines()[-3:])
        run.error = f"no result (exit {code}): {tail}"[:400]
        return run
    summarise_raw(run, scenario, raw)
    return run


# =========================================================================== flask


def flask_load(
    url: str, seconds: float, concurrency: int, timeout: float = 6.0
) -> tuple[int, Counter[str], float]:
    """GET `url` from `concurrency` keep-alive stdlib callers for `seconds`.

    Returns (OK responses, failures by reason, elapsed). A response is OK when
    it is a 200 whose JSON has ``"ok": true`` (what the example app returns).
    """
    host, port = url.split("//", 1)[1].split("/", 1)[0].split(":")
    deadline = time.perf_counter() + seconds
    oks = [0] * concurrency
    failures: list[Counter[str]] = [Counter() for _ in range(concurrency)]

    def caller(i: int) -> None:
        conn: http.client.HTTPConnection | None = None
        while time.perf_counter() < deadline:
            if conn is None:
                conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                body = response.read()
            except TimeoutError:
                failures[i][f"no response within {timeout:g} s"] += 1
                conn.close()
                conn = None
                continue
            except (OSError, http.client.HTTPException) as exc:
                failures[i][type(exc).__name__] += 1
                conn.close()
                conn = None
                time.sleep(0.01)
                continue
            ok = False
            if response.status == 200:
                with contextlib.suppress(ValueError):
                    ok = json.loads(body).get("ok") is True
            if ok:
                oks[i] += 1
            else:
                failures[i][f"HTTP {response.status}"] += 1
            if response.will_close:
                conn.close()
                conn = None
        if conn is not None:
            conn.close()

    t0 = time.perf_counter()
    threads = [threading.Thread(target=caller, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=seconds + timeout + 30)
    total: Counter[str] = Counter()
    for counter in failures:
        total += counter
    return sum(oks), total, time.perf_counter() - t0


def proc_cpu(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def proc_hwm_kb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_flask(client: str, rnd: int, server: Server, profile: Profile, env: dict[str, str]) -> Run:
    run = Run("flask", client, rnd)
    t_start = time.perf_counter()
    cmd = pinned(
        CLIENT_CPU,
        [
            sys.executable,
            str(FLASK_APP),
            "--lib",
            client,
            "--upstream",
            f"http://127.0.0.1:{server.h1}",
        ],
    )
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        cwd=ROOT,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], 60)
        line = proc.stdout.readline() if ready else ""
        match = re.search(r"serving on (http://\S+)", line)
        if not match:
            run.error = f"the app did not start: {line.strip()[:200]}"
            return run
        url = match.group(1)
        # The app's pid (taskset execs, so the pid is the Python process).
        flask_load(url, min(1.0, profile.warmup * 3), 8)
        srv0, cpu0 = server_cpu_of(server), proc_cpu(proc.pid)
        busy0, self0 = system_busy(), own_cpu()
        oks, failures, elapsed = flask_load(url, profile.flask_seconds, profile.flask_concurrency)
        busy1, self1 = system_busy(), own_cpu()
        srv1, cpu1 = server_cpu_of(server), proc_cpu(proc.pid)
        if None not in (srv0, srv1, cpu0, cpu1) and elapsed > 0:
            known = (cpu1 - cpu0) + (srv1 - srv0) + (self1 - self0)  # type: ignore[operator]
            run.noise_pct = max(0.0, (busy1 - busy0 - known) / elapsed * 100)
        hwm = proc_hwm_kb(proc.pid)
        failed = sum(failures.values())
        run.ops, run.errors = oks, failed
        run.value = oks / elapsed if elapsed > 0 else None
        if cpu0 is not None and cpu1 is not None and oks:
            run.cpu_us = (cpu1 - cpu0) / oks * 1e6
        if srv0 is not None and srv1 is not None and elapsed > 0:
            run.srv_pct = (srv1 - srv0) / elapsed * 100
        run.hwm_mib = hwm / KIB if hwm else None
        if failures:
            top = ", ".join(f"{n} {TIMES} {reason}" for reason, n in failures.most_common(2))
            run.error = f"{failed} of {oks + failed} failed ({top})"
        run.raw = {"ok": oks, "failed": failed, "failures": dict(failures), "elapsed": elapsed}
        return run
    finally:
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=5)
        run.wall = time.perf_counter() - t_start


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def server_cpu_of(server: Server) -> float | None:
    return proc_cpu(server.pid)


# =========================================================================== RSS long run


def run_rss(
    api: str, server: Server, profile: Profile, env: dict[str, str], client: str = "loopfree"
) -> dict[str, typing.Any]:
    spec = {
        "client": client,
        "kind": "rss",
        "api": api,
        "concurrency": 1 if api == "sync" else 64,
        "url": f"http://127.0.0.1:{server.h1}/bytes/1k",
        "expect_len": 1024,
        "count": profile.rss_requests,
        "duration": profile.rss_bound,
    }
    code, out, err = run_child(
        pinned(CLIENT_CPU, [sys.executable, str(WORKER), json.dumps(spec)]),
        timeout=profile.rss_bound + 120,
        env=env,
    )
    raw = parse_result(out)
    if raw is None:
        tail = " | ".join(err.strip().splitlines()[-3:])
        return {"api": api, "client": client, "error": f"no result (exit {code}): {tail}"[:400]}
    raw.update(api=api, client=client)
    samples = [s for s in raw.get("rss_samples_kb") or [] if s]
    if len(samples) >= 4:
        # The baseline is taken after 10 % of the requests (pool and allocator warm).
        base_index = max(1, len(samples) // 10)
        base = samples[base_index]
        raw["baseline_kb"] = base
        raw["final_kb"] = samples[-1]
        raw["max_kb"] = max(samples[base_index:])
        raw["growth_pct"] = (samples[-1] - base) / base * 100
        raw["max_growth_pct"] = (raw["max_kb"] - base) / base * 100
    return raw


# =========================================================================== statistics


@dataclass
class Cell:
    """Everything measured for one (scenario, client)."""

    runs: list[Run]

    def values(self) -> list[float]:
        return [r.value for r in self.runs if r.value is not None]

    def med(self, attr: str) -> float | None:
        vals = [getattr(r, attr) for r in self.runs if getattr(r, attr) is not None]
        return median(vals)

    @property
    def value(self) -> float | None:
        return median(self.values())

    @property
    def errors(self) -> int:
        return sum(r.errors for r in self.runs)

    @property
    def first_error(self) -> str | None:
        return next((r.error for r in self.runs if r.error), None)


def paired_ratio(scenario: Scenario, mine: Cell, other: Cell) -> float | None:
    """Median over rounds of loopfree's advantage over `other` in the same round.

    > 1 means loopfree is better (faster, or quicker to construct).
    """
    by_round = {r.round: r.value for r in other.runs if r.value}
    ratios = []
    for run in mine.runs:
        theirs = by_round.get(run.round)
        if run.value and theirs:
            ratios.append(run.value / theirs if scenario.higher_is_better else theirs / run.value)
    return median(ratios)


# =========================================================================== report


def machine_info() -> dict[str, str]:
    info: dict[str, str] = {}
    try:
        lscpu = subprocess.run(
            ["lscpu"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
        fields = dict(
            (k.strip(), v.strip())
            for k, v in (ln.split(":", 1) for ln in lscpu.splitlines() if ":" in ln)
        )
        info["CPU"] = fields.get("Model name", "?")
        info["CPUs"] = (
            f"{fields.get('CPU(s)', '?')} ({fields.get('Thread(s) per core', '?')} thread(s) per core, so {'no SMT siblings' if fields.get('Thread(s) per core') == '1' else 'SMT siblings'})"
        )
        if fields.get("Hypervisor vendor"):
            info["Virtualisation"] = f"{fields['Hypervisor vendor']} guest"
    except (OSError, subprocess.SubprocessError):
        info["CPU"] = platform.processor() or "?"
    with contextlib.suppress(OSError):
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        info["Memory"] = f"{mem_kb / MIB:.0f} GiB"
    info["Kernel"] = platform.release()
    info["Python"] = f"{platform.python_implementation()} {platform.python_version()}"
    gov = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
    info["CPU governor"] = (
        gov.read_text().strip() if gov.exists() else "n/a (no cpufreq in this VM)"
    )
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        info["Rust"] = subprocess.run(
            ["rustc", "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.strip()
    info["loopfree commit"] = git_head()
    return info


def git_head() -> str:
    """The checked-out commit, read from .git without running git."""
    git = ROOT / ".git"
    try:
        head = (git / "HEAD").read_text().strip()
        if not head.startswith("ref: "):
            return head[:12]
        ref = head[5:]
        ref_file = git / ref
        if ref_file.exists():
            return f"{ref_file.read_text().strip()[:12]} ({ref.rsplit('/', 1)[-1]})"
        packed = git / "packed-refs"
        if packed.exists():
            for line in packed.read_text().splitlines():
                if line.endswith(" " + ref):
                    return f"{line.split()[0][:12]} ({ref.rsplit('/', 1)[-1]})"
    except OSError:
        pass
    return "?"


@dataclass
class Target:
    name: str
    ok: bool | None  # None: could not be evaluated
    detail: str


def evaluate_targets(
    cells: dict[str, dict[str, Cell]], rss: list[dict[str, typing.Any]]
) -> list[Target]:
    by_id = {s.id: s for s in SCENARIOS}
    targets: list[Target] = []

    def cell(sid: str, client: str) -> Cell | None:
        return cells.get(sid, {}).get(client)

    for sid in ("seq", "threads16", "async64"):
        lf = cell(sid, "loopfree")
        for peer, want in (("pyreqwest", 1.25), ("httpx", 10.0)):
            name = f"{sid}: loopfree {'>='} {want:g}{TIMES} {peer}"
            other = cell(sid, peer)
            if lf is None or other is None:
                targets.append(Target(name, None, "not measured"))
                continue
            ratio = paired_ratio(by_id[sid], lf, other)
            detail = (
                f"loopfree {fmt_num(lf.value)} vs {peer} {fmt_num(other.value)} req/s: "
                f"{fmt_ratio(ratio)}"
            )
            targets.append(Target(name, None if ratio is None else ratio >= want, detail))

    a64, a1024 = cell("async64", "loopfree"), cell("async1024", "loopfree")
    name = "async1024: loopfree no worse than at async64 (within 5 %)"
    if a64 and a1024 and a64.value and a1024.value:
        ratio = a1024.value / a64.value
        targets.append(
            Target(
                name,
                ratio >= 0.95,
                f"{fmt_num(a1024.value)} vs {fmt_num(a64.value)} req/s ({ratio:.2f}{TIMES})",
            )
        )
    else:
        targets.append(Target(name, None, "not measured"))

    lf, native = cell("dl16m", "loopfree"), cell("dl16m", "native")
    name = "dl16m: loopfree >= 90 % of the native client's MiB/s"
    if lf and native and lf.value and native.value:
        ratio = paired_ratio(by_id["dl16m"], lf, native)
        targets.append(
            Target(
                name,
                None if ratio is None else ratio >= 0.9,
                f"{fmt_num(lf.value)} vs {fmt_num(native.value)} MiB/s "
                f"({(ratio or 0) * 100:.0f} %)",
            )
        )
    else:
        targets.append(Target(name, None, "not measured"))
    name = "dl16m: loopfree peak RSS <= 2 x body (at most 32 MiB above the RSS before the first request)"
    if lf and lf.med("delta_mib") is not None:
        delta = lf.med("delta_mib") or 0.0
        targets.append(
            Target(
                name,
                delta <= 32.0,
                f"peak RSS {fmt_num(lf.med('hwm_mib'))} MiB, {delta:.1f} MiB above the RSS "
                f"before the first request ({delta / 16:.2f}{TIMES} the body)",
            )
        )
    else:
        targets.append(Target(name, None, "not measured"))

    for entry in rss:
        name = (
            f"RSS flat (+-5 %) over {entry.get('ops', '?'):,} requests ({entry['api']})"
            if isinstance(entry.get("ops"), int)
            else f"RSS flat ({entry['api']})"
        )
        if "growth_pct" in entry:
            growth = entry["growth_pct"]
            targets.append(
                Target(
                    name,
                    abs(growth) <= 5.0 and entry.get("errors", 0) == 0,
                    f"{entry['baseline_kb'] / KIB:.1f} MiB after 10 % -> "
                    f"{entry['final_kb'] / KIB:.1f} MiB at the end ({growth:+.1f} %), "
                    f"max {entry['max_growth_pct']:+.1f} %",
                )
            )
        else:
            targets.append(Target(name, None, entry.get("error", "not measured")))

    lf = cell("construct", "loopfree")
    name = f"construct: loopfree client after the first <= 100 {MU}s"
    if lf and lf.value:
        targets.append(Target(name, lf.value <= 100, f"{fmt_num(lf.value, 'us')} {MU}s"))
    else:
        targets.append(Target(name, None, "not measured"))
    return targets


def unit_label(scenario: Scenario) -> str:
    return f"{MU}s" if scenario.unit == "us" else scenario.unit


def write_report(
    path: Path,
    profile: Profile,
    argv: list[str],
    scenarios: list[Scenario],
    clients: list[str],
    probe: dict[str, dict[str, str]],
    skipped: dict[str, str],
    cells: dict[str, dict[str, Cell]],
    rss: list[dict[str, typing.Any]],
    targets: list[Target],
    machine: dict[str, str],
    started: datetime.datetime,
    wall: float,
    waited: float,
    chart: Path | None,
) -> None:
    lines: list[str] = []
    add = lines.append
    add("# Benchmarks")
    add("")
    add(
        f"Generated by `{' '.join(argv)}` ({profile.name} profile) on "
        f"{started:%Y-%m-%d %H:%M} UTC in {wall / 60:.1f} min"
        f"{f' ({waited / 60:.1f} min of it waiting for other processes to go quiet)' if waited >= 1 else ''}"
        ". Rerun with `make bench` "
        "(quick) or `.venv/bin/python benches/run.py --full`; do not edit by hand."
    )
    add("")
    add(
        f"Throughput is the median of {profile.rounds} rounds; **lf/x** is loopfree's advantage "
        "over that client, computed per round (paired) and then the median: "
        f"> 1{TIMES} means loopfree is faster. CPU is the client process's user+sys CPU "
        f"(every thread) per request; *srv* is the server's CPU share of its core."
    )
    add("")
    if chart is not None:
        add(f"![throughput per scenario]({chart.name})")
        add("")

    # ---- summary
    add("## Summary")
    add("")
    shown = [c for c in clients if any(c in cells.get(s.id, {}) for s in scenarios)]
    add("| scenario | unit | " + " | ".join(shown) + " |")
    add("|---|---|" + "---:|" * len(shown))
    for scenario in scenarios:
        row = cells.get(scenario.id, {})
        vals = []
        for client in shown:
            c = row.get(client)
            if c is None:
                vals.append("")
            elif c.value is None:
                vals.append("failed")
            else:
                mark = " \u26a0" if c.errors else ""
                text = fmt_num(c.value, scenario.unit) + mark
                vals.append(f"**{text}**" if client == "loopfree" else text)
        add(f"| {scenario.id} | {unit_label(scenario)} | " + " | ".join(vals) + " |")
    add("")
    add(
        "\u26a0 = some requests failed (see the scenario's table). Scenario ids are explained below."
    )
    add("")

    # ---- targets
    add("## Targets")
    add("")
    add("| target | result | measured |")
    add("|---|---|---|")
    for target in targets:
        verdict = "n/a" if target.ok is None else ("met" if target.ok else "**MISSED**")
        add(f"| {target.name} | {verdict} | {target.detail} |")
    add("")

    # ---- per scenario
    add("## Scenarios")
    add("")
    for scenario in scenarios:
        row = cells.get(scenario.id, {})
        if not row:
            continue
        unit = unit_label(scenario)
        add(f"### `{scenario.id}`: {scenario.title}")
        add("")
        add(scenario_note(scenario))
        add("")
        if scenario.kind == "construct":
            add(f"| client | {unit} per client (median) | range | lf/x |")
            add("|---|---:|---:|---:|")
        else:
            rss_head = "peak RSS MiB (+ growth)" if scenario.unit == "MiB/s" else "peak RSS MiB"
            add(
                f"| client | {unit} (median) | range | lf/x | CPU {MU}s/req | {rss_head} | "
                "srv CPU | conns | errors / flags |"
            )
            add("|---|---:|---:|---:|---:|---:|---:|---:|---|")
        lf = row.get("loopfree")
        ordered = sorted(
            row.items(),
            key=lambda kv: (
                kv[1].value is None,
                -(kv[1].value or 0) if scenario.higher_is_better else (kv[1].value or 0),
            ),
        )
        for client, c in ordered:
            vals = c.values()
            rng = (
                f"{fmt_num(min(vals), scenario.unit)}\u2013{fmt_num(max(vals), scenario.unit)}"
                if vals
                else "—"
            )
            ratio = (
                ""
                if client == "loopfree" or lf is None
                else fmt_ratio(paired_ratio(scenario, lf, c))
            )
            name = f"**{client}**" if client == "loopfree" else client
            if scenario.kind == "construct":
                add(f"| {name} | {fmt_num(c.value, 'us')} | {rng} | {ratio} |")
                continue
            hwm = c.med("hwm_mib")
            rss_text = fmt_num(hwm)
            if scenario.unit == "MiB/s" and c.med("delta_mib") is not None:
                rss_text += f" (+{fmt_num(c.med('delta_mib'))})"
            srv = c.med("srv_pct")
            conns = c.med("conns")
            errs = ""
            if c.errors or (c.value is None and c.first_error):
                errs = f"{c.errors}: {c.first_error or ''}"[:160].replace("|", "/")
            if srv is not None and srv >= SERVER_BOUND_PCT:
                errs = (errs + " " if errs else "") + "server-bound"
            noise = c.med("noise_pct")
            if noise is not None and noise > NOISY_PCT:
                errs = (errs + " " if errs else "") + f"noisy: {noise:.0f} % foreign CPU"
            add(
                f"| {name} | {fmt_num(c.value, scenario.unit)} | {rng} | {ratio} | "
                f"{fmt_num(c.med('cpu_us'))} | {rss_text} | "
                f"{'—' if srv is None else f'{srv:.0f} %'} | "
                f"{'—' if conns is None else f'{conns:.0f}'} | {errs} |"
            )
        add("")

    # ---- RSS
    if rss:
        add("## RSS over a long run (loopfree)")
        add("")
        add(
            f"{profile.rss_requests:,} GET 1 KiB requests in one process, RSS sampled 20 times; "
            "the baseline is the sample after 10 % of the requests."
        )
        add("")
        add(
            "| api | requests | errors | req/s | RSS after 10 % | RSS at end | growth | max growth |"
        )
        add("|---|---:|---:|---:|---:|---:|---:|---:|")
        for entry in rss:
            if "growth_pct" not in entry:
                add(f"| {entry['api']} | — | — | — | — | — | {entry.get('error', 'failed')} | |")
                continue
            rate = entry["ops"] / entry["elapsed"] if entry.get("elapsed") else None
            add(
                f"| {entry['api']}{'' if entry['api'] == 'sync' else ' (64 tasks)'} | "
                f"{entry['ops']:,} | {entry['errors']} | {fmt_num(rate)} | "
                f"{entry['baseline_kb'] / KIB:.1f} MiB | {entry['final_kb'] / KIB:.1f} MiB | "
                f"{entry['growth_pct']:+.1f} % | {entry['max_growth_pct']:+.1f} % |"
            )
        add("")

    # ---- method
    add("## Method")
    add("")
    add(
        f"- **Topology.** `bench-server` (`benches/server`, hyper 1.x on a current-thread tokio "
        f"runtime) is pinned to CPU {SERVER_CPU}; every measurement runs in a **fresh process** "
        f"pinned to CPU {CLIENT_CPU} (`taskset`), so a client's own threads (Rust runtimes "
        "included) share one CPU. The harness itself sits on the server's CPU and is idle "
        "while a measurement runs (except in `flask`, where it is the load generator)."
    )
    add(
        f"- **One run** = import, build the client, one request, {profile.warmup:g} s warm-up, "
        f"`gc.collect()`, then a closed loop for {profile.duration:g} s. Rounds: "
        f"{profile.rounds}; the client order is rotated every round (A B C, B C A, ...)."
    )
    add(
        "- **Measured:** completed requests / elapsed (or bytes / elapsed); CPU from "
        "`resource.getrusage(RUSAGE_SELF)` (all threads) / requests; peak RSS = `VmHWM`, "
        "reset through `/proc/self/clear_refs` once the client is built, so it covers the "
        "warm-up and the window; for bodies, *+ growth* is that peak minus the RSS before "
        "the first request (what the requests cost at most, allocator caching included); "
        "server CPU from "
        "`/proc/<pid>/stat`; *conns* = connections the server accepted in the window. "
        "Every response is checked (status 200 and body length); failures are counted."
    )
    add(
        "- **Client settings:** library defaults, plus a 60 s timeout, HTTP/2 prior knowledge "
        "in `h2`, and verification against the server's generated CA in `tls`. Pools: "
        "loopfree, httpx, httpxr and aiohttp cap connections at 100 (their default); "
        "pyreqwest and wreq do not cap them; urllib3 uses `PoolManager(maxsize=16)`. "
        f"`{', '.join(SSL_ENV)}` are removed from the workers' environment (they make "
        "some clients read a CA bundle file at construction)."
    )
    add(
        "- **native** is `bench-native` (`benches/native/main.rs`): reqwest "
        f"{lock_version('reqwest')} with loopfree's own pool settings (at most 100 requests "
        "in flight, 20 idle connections per host, TCP_NODELAY) on a current-thread tokio "
        "runtime: the ceiling for a Python client built on the same stack. Its sync "
        "scenarios are the same loops with async tasks (16 tasks stand for 16 threads)."
    )
    add(
        f"- **native-hyper** is `bench-native --engine hyper`: the same loops on hyper "
        f"{lock_version('hyper')}'s `client::conn::http1` connections from a minimal pool "
        "(a list of idle connections), without reqwest: no redirects, proxies, timeouts or "
        "URL parsing per request. Plain HTTP/1.1 GETs only. It shows what reqwest's own "
        "per-request layer costs, i.e. the most an engine written directly on hyper could gain."
    )
    add(
        "- **flask**: `examples/flask_shared_client.py` run unchanged (werkzeug threaded "
        "server, pinned like the other clients) against bench-server's `/` and `/auth`; "
        f"{profile.flask_concurrency} stdlib keep-alive callers in the harness for "
        f'{profile.flask_seconds:g} s; a response is OK when it is a 200 with `"ok": true`. '
        "The table's throughput counts OK responses only."
    )
    add(
        "- Downloads, uploads and new-client runs use each library's sync API (aiohttp's "
        "async API, one request at a time, since it has no sync one)."
    )
    add("")

    # ---- machine and versions
    add("## Machine")
    add("")
    add("| | |")
    add("|---|---|")
    for key, value in machine.items():
        add(f"| {key} | {value} |")
    add("")
    add("## Versions")
    add("")
    add("| client | version | notes |")
    add("|---|---|---|")
    for client in clients:
        entry = probe.get(client, {})
        note = skipped.get(client) or entry.get("note", "")
        add(f"| {client} | {entry.get('version', '?')} | {note} |")
    add(
        f"| bench-server | hyper {lock_version('hyper')}, h2 {lock_version('h2')}, "
        f"tokio {lock_version('tokio')}, rustls {lock_version('rustls')} | |"
    )
    add("")
    add("## Reproduce")
    add("")
    add("```console")
    add("$ make bench                          # = .venv/bin/python benches/run.py (quick)")
    add("$ .venv/bin/python benches/run.py --full")
    add(
        "$ .venv/bin/python benches/run.py --scenarios seq,async64 --clients loopfree,pyreqwest --no-write"
    )
    add("```")
    add("")
    add(
        "Raw measurements of the last run: `benches/results/latest.json` (not committed). "
        "See `benches/README.md` for the layout."
    )
    add("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def scenario_note(scenario: Scenario) -> str:
    notes = {
        "seq": "One thread, one request at a time, on one keep-alive connection.",
        "threads16": "16 OS threads share one sync client (native: 16 tasks).",
        "async64": "64 asyncio tasks share one client on one event loop.",
        "async1024": "1024 tasks on one client: most of them wait for one of the pool's connections.",
        "dl1m": "Whole body read into memory (`.content` / `.read()` / `.bytes()`).",
        "dl16m": "Whole body read into memory. *+ growth* = peak RSS above the RSS before the first request.",
        "up16m": "The server reads and discards the body, then answers its length.",
        "h2": "One HTTP/2 connection with prior knowledge (h2c), 100 tasks multiplexed on it.",
        "newclient": "Each request builds a new client (default TLS settings), connects, and closes the client.",
        "construct": f"{MU}s to build one more client with default settings once one has been built (the first, with its one-time set-up, is not timed).",
        "flask": "Requests served per second by the Flask app, each of which makes two upstream calls through the shared client on two short-lived event loops.",
        "tls": "rustls server, certificate from the server's generated CA; keep-alive, so one handshake per run.",
        "gzip": "A 97-byte gzip body decoded to 1 KiB by the client.",
    }
    return notes.get(scenario.id, "")


def write_chart(
    path: Path, scenarios: list[Scenario], clients: list[str], cells: dict[str, dict[str, Cell]]
) -> Path | None:
    try:
        import matplotlib
        import matplotlib.ticker

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("! matplotlib is not installed: no chart")
        return None
    shown = [s for s in scenarios if cells.get(s.id)]
    if not shown:
        return None
    cols = 3
    rows = (len(shown) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(15, 3.1 * rows), squeeze=False)
    palette = {
        "loopfree": "#d62728",
        "loopfree+httpx": "#ff9896",
        "native": "#7f7f7f",
        "native-hyper": "#bdbdbd",
    }
    for ax in axes.flat[len(shown) :]:
        ax.axis("off")
    for ax, scenario in zip(axes.flat, shown, strict=False):
        row = cells[scenario.id]
        names = [c for c in clients if c in row and row[c].value is not None]
        values = [row[c].value or 0.0 for c in names]
        colors = [palette.get(c, "#1f77b4") for c in names]
        ax.barh(names[::-1], values[::-1], color=colors[::-1])
        ax.set_title(
            f"{scenario.id} ({unit_label(scenario)}"
            f"{', lower is better' if not scenario.higher_is_better else ''})",
            fontsize=10,
        )
        ax.tick_params(labelsize=8)
        if values and max(values) / max(min(values), 1e-9) > 30:
            ax.set_xscale("log")
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        for i, v in enumerate(values[::-1]):
            ax.text(v, i, " " + fmt_num(v, scenario.unit), va="center", fontsize=7)
    fig.suptitle(
        "loopfree benchmarks (median of rounds; server and client each pinned to one CPU)",
        fontsize=11,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


# =========================================================================== main


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="loopfree benchmark harness")
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--quick",
        dest="profile",
        action="store_const",
        const="quick",
        help="3 rounds of 1 s, 30k-request RSS run (the default; ~8 min once built)",
    )
    group.add_argument(
        "--full",
        dest="profile",
        action="store_const",
        const="full",
        help="7 rounds of 3 s, 200k-request RSS run, plus tls and gzip (~50 min)",
    )
    parser.set_defaults(profile="quick")
    parser.add_argument("--clients", help=f"comma-separated subset of {','.join(ALL_CLIENTS)}")
    parser.add_argument(
        "--scenarios", help=f"comma-separated subset of {','.join(s.id for s in SCENARIOS)},rss"
    )
    parser.add_argument("--rounds", type=int, help="override the profile's rounds")
    parser.add_argument("--duration", type=float, help="override the measured seconds per run")
    parser.add_argument("--no-install", action="store_true", help="never pip install")
    parser.add_argument("--no-build", action="store_true", help="use the built benches/server")
    parser.add_argument("--no-write", action="store_true", help="do not write docs/ (JSON only)")
    parser.add_argument(
        "--keep-ssl-env", action="store_true", help=f"keep {'/'.join(SSL_ENV)} for the workers"
    )
    parser.add_argument("--output", type=Path, default=DOC, help="markdown report path")
    parser.add_argument(
        "--report-only",
        type=Path,
        metavar="JSON",
        help="only rebuild the report and chart from an earlier run's results JSON",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=0.0,
        metavar="S",
        help="before each run wait up to S s for other processes to go quiet, and repeat "
        "a run that other processes disturbed once (default 0: only flag such runs)",
    )
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    if args.report_only:
        return report_only(args.report_only, args.output)
    profile = PROFILES[args.profile]
    if args.rounds or args.duration:
        profile = Profile(
            **{
                **profile.__dict__,
                "rounds": args.rounds or profile.rounds,
                "duration": args.duration or profile.duration,
            }
        )
    started = datetime.datetime.now(datetime.UTC)
    t_start = time.perf_counter()
    if not sys.platform.startswith("linux"):
        sys.exit("the harness needs Linux (/proc, taskset)")

    wanted_clients = list(ALL_CLIENTS)
    if args.clients:
        wanted_clients = [c for c in args.clients.split(",") if c]
        unknown = set(wanted_clients) - set(ALL_CLIENTS)
        if unknown:
            sys.exit(f"unknown clients: {', '.join(sorted(unknown))}")
    wanted_scenarios = [s for s in SCENARIOS if profile.extra or not s.full_only]
    run_rss_check = True
    if args.scenarios:
        ids = [s for s in args.scenarios.split(",") if s]
        unknown = set(ids) - {s.id for s in SCENARIOS} - {"rss"}
        if unknown:
            sys.exit(f"unknown scenarios: {', '.join(sorted(unknown))}")
        wanted_scenarios = [s for s in SCENARIOS if s.id in ids]
        run_rss_check = "rss" in ids

    log(
        f"loopfree benchmarks: {profile.name} profile, {profile.rounds} rounds of {profile.duration:g} s"
    )
    problems = ensure_requirements(not args.no_install)
    if not args.no_build or not (SERVER_BIN.exists() and NATIVE_BIN.exists()):
        build_native()
    raise_fd_limit()
    env = clean_env(args.keep_ssl_env)
    probe = probe_clients(wanted_clients, env)
    skipped: dict[str, str] = {}
    clients: list[str] = []
    for client in wanted_clients:
        entry = probe.get(client, {})
        if "error" in entry:
            dist_problem = problems.get(client)
            skipped[client] = f"skipped: {dist_problem or entry['error']}"
            log(f"! {client}: {skipped[client]}")
        else:
            clients.append(client)
    if "loopfree" not in clients:
        sys.exit("loopfree cannot be imported: run `make build` first")
    for client in clients:
        log(f"  {client:15} {probe[client]['version']}")

    # The harness stays off the clients' CPU from here on.
    with contextlib.suppress(OSError):
        os.sched_setaffinity(0, {int(SERVER_CPU)})
    server = Server()
    log(f"- bench-server pid {server.pid}: h1 :{server.h1}, h2c :{server.h2c}, tls :{server.tls}")

    cells: dict[str, dict[str, Cell]] = {}
    rss: list[dict[str, typing.Any]] = []
    plan = [(s, [c for c in clients if supports(c, s)]) for s in wanted_scenarios]
    total_runs = sum(len(cs) * profile.rounds for _, cs in plan)
    done = 0
    waited = 0.0  # seconds spent waiting for a quiet machine (--quiet-wait)
    try:
        for scenario, scenario_clients in plan:
            if not scenario_clients:
                continue
            log(f"\n== {scenario.id}: {scenario.title}")
            cells[scenario.id] = {c: Cell([]) for c in scenario_clients}
            n = len(scenario_clients)
            for rnd in range(profile.rounds):
                order = scenario_clients[rnd % n :] + scenario_clients[: rnd % n]
                for client in order:
                    if not server.alive():
                        sys.exit("bench-server died")
                    for attempt in range(2):
                        if args.quiet_wait:
                            waited += wait_until_quiet(args.quiet_wait, server)
                        if scenario.kind == "flask":
                            run = run_flask(client, rnd, server, profile, env)
                        else:
                            run = run_one(scenario, client, rnd, server, profile, env)
                        noisy = run.noise_pct is not None and run.noise_pct > NOISY_PCT
                        if not (noisy and args.quiet_wait and attempt == 0):
                            break
                        log(
                            f"  ... {client} r{rnd + 1} was noisy ({run.noise_pct:.0f} %), once more"
                        )
                    cells[scenario.id][client].runs.append(run)
                    done += 1
                    progress(done, total_runs, scenario, run, t_start)
        if run_rss_check and "loopfree" in clients:
            log(f"\n== rss: loopfree, {profile.rss_requests:,} requests per api")
            for api in ("sync", "async"):
                entry = run_rss(api, server, profile, env)
                rss.append(entry)
                if "growth_pct" in entry:
                    log(
                        f"  {api:5} {entry['ops']:,} requests, RSS {entry['baseline_kb'] / KIB:.1f} -> "
                        f"{entry['final_kb'] / KIB:.1f} MiB ({entry['growth_pct']:+.1f} %)"
                    )
                else:
                    log(f"  {api:5} {entry.get('error')}")
    finally:
        server.stop()

    wall = time.perf_counter() - t_start
    targets = evaluate_targets(cells, rss)
    machine = machine_info()
    RAW.parent.mkdir(parents=True, exist_ok=True)
    RAW.write_text(
        json.dumps(
            {
                "profile": profile.__dict__,
                "started": started.isoformat(),
                "machine": machine,
                "clients": probe,
                "skipped": skipped,
                "runs": [r.__dict__ for cs in cells.values() for c in cs.values() for r in c.runs],
                "rss": rss,
                "targets": [t.__dict__ for t in targets],
                "argv": argv,
                "scenarios": [s.id for s in wanted_scenarios],
                "wanted_clients": wanted_clients,
                "clients_run": clients,
                "wall": wall,
                "waited": waited,
            },
            indent=1,
        )
    )
    print_summary(wanted_scenarios, clients, cells, targets)
    if not args.no_write:
        render(
            args.output,
            profile,
            argv,
            wanted_scenarios,
            wanted_clients,
            probe,
            skipped,
            cells,
            rss,
            targets,
            machine,
            started,
            wall,
            waited,
        )
    log(
        f"total {wall / 60:.1f} min"
        + (f" ({waited / 60:.1f} min waiting for quiet)" if waited else "")
    )
    return 0


def render(
    output: Path,
    profile: Profile,
    argv: list[str],
    scenarios: list[Scenario],
    wanted_clients: list[str],
    probe: dict[str, dict[str, str]],
    skipped: dict[str, str],
    cells: dict[str, dict[str, Cell]],
    rss: list[dict[str, typing.Any]],
    targets: list[Target],
    machine: dict[str, str],
    started: datetime.datetime,
    wall: float,
    waited: float,
) -> None:
    """Write the markdown report and the chart beside it."""
    chart = write_chart(output.with_suffix(".png"), scenarios, wanted_clients, cells)
    write_report(
        output,
        profile,
        ["benches/run.py", *argv],
        scenarios,
        wanted_clients,
        probe,
        skipped,
        cells,
        rss,
        targets,
        machine,
        started,
        wall,
        waited,
        chart,
    )
    shown = output.relative_to(ROOT) if output.is_relative_to(ROOT) else output
    log(f"\nwrote {shown}{f' and {chart.name}' if chart else ''}")


def report_only(path: Path, output: Path) -> int:
    """Rebuild the report and the chart from a results JSON of an earlier run."""
    data = json.loads(path.read_text())
    profile = Profile(**data["profile"])
    by_id = {s.id: s for s in SCENARIOS}
    cells: dict[str, dict[str, Cell]] = {}
    for raw in data["runs"]:
        run = Run(**raw)
        cells.setdefault(run.scenario, {}).setdefault(run.client, Cell([])).runs.append(run)
    ids = data.get("scenarios") or [s.id for s in SCENARIOS if s.id in cells]
    scenarios = [by_id[i] for i in ids if i in by_id]
    wanted = data.get("wanted_clients") or [c for c in ALL_CLIENTS if c in data["clients"]]
    rss = data.get("rss", [])
    render(
        output,
        profile,
        data.get("argv", []),
        scenarios,
        wanted,
        data["clients"],
        data.get("skipped", {}),
        cells,
        rss,
        evaluate_targets(cells, rss),
        data["machine"],
        datetime.datetime.fromisoformat(data["started"]),
        data.get("wall", 0.0),
        data.get("waited", 0.0),
    )
    return 0


def progress(done: int, total: int, scenario: Scenario, run: Run, t_start: float) -> None:
    elapsed = time.perf_counter() - t_start
    value = fmt_num(run.value, scenario.unit) if run.value is not None else "failed"
    cpu = f"  cpu {run.cpu_us:,.0f} {MU}s/req" if run.cpu_us else ""
    err = f"  ({run.errors} errors: {run.error[:80]})" if run.errors else ""
    if run.noise_pct is not None and run.noise_pct > NOISY_PCT:
        err += f"  [noisy: {run.noise_pct:.0f} % foreign CPU]"
    if run.value is None and run.error:
        err = f"  ({run.error[:120]})"
    log(
        f"[{done:3}/{total}] r{run.round + 1} {run.client:15} {value:>9} {unit_label(scenario):5}"
        f"{cpu}{err}  [{run.wall:.1f} s, {elapsed / 60:.1f} min]"
    )


def print_summary(
    scenarios: list[Scenario],
    clients: list[str],
    cells: dict[str, dict[str, Cell]],
    targets: list[Target],
) -> None:
    log("\n== summary (median)")
    shown = [c for c in clients if any(c in cells.get(s.id, {}) for s in scenarios)]
    log(f"{'scenario':11}" + "".join(f"{c[:14]:>15}" for c in shown))
    for scenario in scenarios:
        row = cells.get(scenario.id)
        if not row:
            continue
        line = f"{scenario.id:11}"
        for client in shown:
            c = row.get(client)
            text = (
                ""
                if c is None
                else ("failed" if c.value is None else fmt_num(c.value, scenario.unit))
            )
            line += f"{text:>15}"
        log(line)
    log("\n== targets")
    for target in targets:
        verdict = "n/a   " if target.ok is None else ("met   " if target.ok else "MISSED")
        log(f"  {verdict} {target.name}: {target.detail}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
