#!/usr/bin/env python3
"""
Run httpx 0.28.1's own test suite with the name `httpx` resolved to loopfree.

    .venv/bin/python compat/run.py                # the whole suite
    .venv/bin/python compat/run.py -- -k digest   # extra pytest arguments
    .venv/bin/python compat/run.py --reference    # against the real httpx

Steps: fetch the httpx sdist into compat/.cache/ (pip download, checked
against a pinned SHA-256), extract its tests/, install compat/requirements.txt
if anything there is missing, then run pytest on the suite with the
`httpx_alias` plugin, deselecting compat/excluded.txt. pytest's own output goes
to compat/.cache/last-run.log; this script prints passed/failed/skipped per
test module, the total, and the most common failure messages.

The suite runs in a fresh network namespace with only loopback up (via
`unshare --net`): its servers are on 127.0.0.1, and nothing a failing test
tries to reach elsewhere (example.org, 10.255.255.1) leaves the machine.

Exit status: 0 if at least compat/minimum_passed.txt tests passed (the
ratchet), 1 if fewer did, 2 if the run itself broke (pytest crashed, no
tests ran, setup failed).
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".cache"
VERSION = "0.28.1"
SDIST_NAME = f"httpx-{VERSION}.tar.gz"
SDIST_SHA256 = "75e98c5f16b0f35b567856f597f06ff2270a374470a5c2392242528e3e3e42fc"
SUITE_DIR = CACHE / f"httpx-{VERSION}-suite"
LOG_PATH = CACHE / "last-run.log"
REPORT_PATH = CACHE / "last-run.json"
REQUIREMENTS = HERE / "requirements.txt"
EXCLUDED = HERE / "excluded.txt"
MINIMUM = HERE / "minimum_passed.txt"

# httpx's [tool.pytest.ini_options], so that the suite runs as upstream runs
# it (warnings are errors) and does not pick up loopfree's own pytest config.
PYTEST_INI = """\
[pytest]
addopts = -rxXs
filterwarnings =
    error
    ignore: You seem to already have a custom sys.excepthook handler installed. I'll skip installing Trio's custom handler, but this means MultiErrors will not show full tracebacks.:RuntimeWarning
    ignore: trio.MultiError is deprecated since Trio 0.22.0:trio.TrioDeprecationWarning
    # Added here: click 8.2+ deprecates what test_main.py::test_download uses.
    ignore:'isolated_filesystem' is deprecated:DeprecationWarning
markers =
    copied_from(source, changes=None): mark test as copied from somewhere else
    network: marks tests which require network connection
"""

# A test that hangs (e.g. waiting on a feature loopfree lacks) must not stall
# the run; httpx's slowest test takes about a second.
PER_TEST_TIMEOUT = 60


class SetupError(Exception):
    pass


def fetch_sdist() -> Path:
    path = CACHE / SDIST_NAME
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
            cmd = [
                sys.executable, "-m", "pip", "download", "--no-deps",
                "--no-binary", ":all:", f"httpx=={VERSION}", "-d", tmp,
            ]  # fmt: skip
            result = subprocess.run(cmd, capture_output=True, text=True)
            downloaded = Path(tmp) / SDIST_NAME
            if result.returncode != 0 or not downloaded.exists():
                raise SetupError(f"pip download failed:\n{result.stdout}\n{result.stderr}")
            shutil.move(downloaded, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    if digest != SDIST_SHA256:
        path.unlink()
        raise SetupError(f"{SDIST_NAME} has SHA-256 {digest}, expected {SDIST_SHA256}")
    return path


def extract_suite(sdist: Path) -> Path:
    """Extract only tests/: the sdist's httpx/ package must not be importable."""
    # Bump when PYTEST_INI changes, so existing caches are rewritten.
    marker = SUITE_DIR / ".extracted-v2"
    if not marker.exists():
        shutil.rmtree(SUITE_DIR, ignore_errors=True)
        prefix = f"httpx-{VERSION}/"
        with tarfile.open(sdist) as tar:
            members = []
            for member in tar.getmembers():
                if not member.name.startswith(prefix + "tests/"):
                    continue
                member.name = member.name[len(prefix) :]
                members.append(member)
            tar.extractall(SUITE_DIR, members=members, filter="data")
        (SUITE_DIR / "pytest.ini").write_text(PYTEST_INI)
        marker.write_text(SDIST_SHA256 + "\n")
    return SUITE_DIR


def missing_requirements() -> list[str]:
    missing = []
    for line in REQUIREMENTS.read_text().splitlines():
        spec = line.split("#", 1)[0].strip()
        if not spec:
            continue
        name, _, version = spec.partition("==")
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            missing.append(spec)
            continue
        if version and installed != version:
            missing.append(spec)
    return missing


def install_requirements() -> None:
    missing = missing_requirements()
    if not missing:
        return
    print(f"installing test requirements: {' '.join(missing)}", flush=True)
    cmd = [sys.executable, "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)]
    if subprocess.run(cmd).returncode != 0:
        raise SetupError("pip install -r compat/requirements.txt failed")


def read_excluded() -> dict[str, str]:
    excluded = {}
    for number, line in enumerate(EXCLUDED.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        test_id, sep, reason = line.partition(" | ")
        if not sep or not reason.strip():
            raise SetupError(f"excluded.txt line {number}: expected '<test id> | <reason>'")
        excluded[test_id.strip()] = reason.strip()
    return excluded


def read_minimum() -> int:
    return int(MINIMUM.read_text().split()[0])


def _loopback_up() -> None:
    """Bring up `lo` in a fresh network namespace (where it starts down)."""
    import fcntl
    import socket
    import struct

    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, siocgifflags, request))[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH14x", b"lo", flags | iff_up))


def _blackhole_unroutable() -> None:
    """
    Route 10.255.255.0/24 into `lo` inside the namespace. test_connect_timeout
    connects to 10.255.255.1 to wait for a connect timeout; without a route the
    kernel answers ENETUNREACH at once. Over `lo` the SYN is silently dropped
    (the address is not local and nothing forwards), so the connect waits, as
    on a real network, and no packet leaves the namespace.
    """
    subprocess.run(["ip", "route", "add", "10.255.255.0/24", "dev", "lo"], check=True)


def _pytest_command(extra: list[str]) -> list[str]:
    return [
        sys.executable, "-m", "pytest", "tests",
        "-c", "pytest.ini", "--rootdir", ".",
        "-p", "httpx_alias", "-p", "no:cacheprovider",
        *extra,
    ]  # fmt: skip


def _pytest_env(reference: bool) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH")]))
    env["LOOPFREE_COMPAT_REFERENCE"] = "1" if reference else "0"
    env.pop("PYTEST_ADDOPTS", None)
    return env


def reference_ids(suite: Path) -> list[str] | None:
    """
    Every test id of the suite, as collected against the real httpx: the
    denominator. A module that fails to import under loopfree (a missing
    name at module level) then counts all its tests as failed, not one.
    """
    path = CACHE / f"reference-ids-{VERSION}.txt"
    if not path.exists():
        cmd = _pytest_command(["--collect-only", "-q", f"--compat-collected={path}"])
        result = subprocess.run(
            cmd, cwd=suite, env=_pytest_env(reference=True), capture_output=True, text=True
        )
        if result.returncode != 0:
            path.unlink(missing_ok=True)
            print(
                "warning: could not collect the suite against the real httpx "
                f"(pip install httpx=={VERSION}); counting only the tests that ran",
                file=sys.stderr,
            )
            return None
    return path.read_text().splitlines()


def run_pytest(
    suite: Path, excluded: dict[str, str], reference: bool, isolate: bool, extra: list[str]
) -> int:
    exclude_file = CACHE / "excluded-ids.txt"
    exclude_file.write_text("".join(f"{test_id}\n" for test_id in excluded))
    REPORT_PATH.unlink(missing_ok=True)
    cmd = _pytest_command(
        [
            f"--compat-report={REPORT_PATH}",
            f"--compat-exclude={exclude_file}",
            f"--timeout={PER_TEST_TIMEOUT}",
            "--tb=short",
            "-q",
            "--continue-on-collection-errors",
            *extra,
        ]
    )
    if not isolate:
        # Without a private namespace, tests marked `network` would really
        # try to reach the internet (and 10.255.255.1): never run those.
        cmd += ["-m", "not network"]
    else:
        if shutil.which("unshare") is None:
            raise SetupError("`unshare` is missing: install util-linux, or pass --no-isolate")
        if shutil.which("ip") is None:
            raise SetupError("`ip` is missing: install iproute2, or pass --no-isolate")
        cmd = ["unshare", "--net", "--", sys.executable, __file__, "--in-netns", "--", *cmd]
    print(f"running httpx {VERSION}'s test suite; pytest output in {LOG_PATH}", flush=True)
    with LOG_PATH.open("w") as log:
        return subprocess.run(
            cmd, cwd=suite, env=_pytest_env(reference), stdout=log, stderr=subprocess.STDOUT
        ).returncode


def module_of(test_id: str) -> str:
    return test_id.split("::", 1)[0]


def normalise_message(message: str) -> str:
    """A failure message with the details that differ per test blurred out."""
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    first = re.sub(r"0x[0-9a-f]+", "0x…", first)
    first = re.sub(r"'[^']{40,}'", "'…'", first)
    return first[:160]


def _is_excluded(test_id: str, excluded: dict[str, str]) -> bool:
    # The same rule as the plugin's: exact id, bare name, or a `::` prefix.
    if test_id in excluded or test_id.split("[", 1)[0] in excluded:
        return True
    parts = test_id.split("::")
    return any("::".join(parts[:i]) + "::" in excluded for i in range(1, len(parts)))


def summarise(
    outcomes: dict[str, dict[str, str]],
    expected: list[str] | None,
    excluded: dict[str, str],
    groups: int,
    list_failures: bool,
) -> tuple[int, int, int]:
    per_module: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    messages: collections.Counter[str] = collections.Counter()
    # Modules that failed to import: their one entry stands for all their tests.
    collect_errors = {
        test_id: entry for test_id, entry in outcomes.items() if entry.get("when") == "collect"
    }
    for test_id, entry in outcomes.items():
        if test_id in collect_errors and expected is not None:
            continue
        bucket = {"xpassed": "passed", "xfailed": "skipped", "error": "failed"}.get(
            entry["outcome"], entry["outcome"]
        )
        per_module[module_of(test_id)][bucket] += 1
        if bucket == "failed":
            messages[normalise_message(entry.get("message", ""))] += 1
    for test_id in expected or ():
        if test_id in outcomes or _is_excluded(test_id, excluded):
            continue
        # Expected but never run: its module (or class) could not be collected.
        per_module[module_of(test_id)]["failed"] += 1
        error = collect_errors.get(module_of(test_id))
        reason = normalise_message(error.get("message", "")) if error else "(not collected)"
        messages[f"[collection] {reason}"] += 1

    width = max([len(m) for m in per_module] + [len("module")])
    print(f"\n{'module':<{width}}  {'passed':>6}  {'failed':>6}  {'skipped':>7}  {'total':>5}")
    total: collections.Counter[str] = collections.Counter()
    for module in sorted(per_module):
        counts = per_module[module]
        total.update(counts)
        print(
            f"{module:<{width}}  {counts['passed']:>6}  {counts['failed']:>6}  "
            f"{counts['skipped']:>7}  {sum(counts.values()):>5}"
        )
    print(
        f"{'TOTAL':<{width}}  {total['passed']:>6}  {total['failed']:>6}  "
        f"{total['skipped']:>7}  {sum(total.values()):>5}"
    )
    if list_failures:
        print("\nfailing tests:")
        for test_id, entry in sorted(outcomes.items()):
            if entry["outcome"] in ("failed", "error"):
                print(f"{test_id}  |  {normalise_message(entry.get('message', ''))}")
    if groups and messages:
        print(f"\nmost common failure messages (of {sum(messages.values())} failures):")
        for message, count in messages.most_common(groups):
            print(f"{count:>5}  {message}")
    return total["passed"], total["failed"], total["skipped"]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--in-netns"]:
        # Re-invoked by `unshare --net`: bring loopback up, then become pytest.
        _loopback_up()
        _blackhole_unroutable()
        command = argv[2:] if argv[1:2] == ["--"] else argv[1:]
        os.execv(command[0], command)

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--reference", action="store_true", help="run against the real httpx (check the harness)"
    )
    parser.add_argument(
        "--no-install", action="store_true", help="do not pip install missing requirements"
    )
    parser.add_argument(
        "--no-isolate", action="store_true", help="run without a private network namespace"
    )
    parser.add_argument(
        "--groups", type=int, default=20, help="how many failure messages to list (default 20)"
    )
    parser.add_argument(
        "--list-failures", action="store_true", help="print every failing test id and message"
    )
    parser.add_argument(
        "--update-ratchet",
        action="store_true",
        help="raise compat/minimum_passed.txt to this run's passed count",
    )
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    args = parser.parse_args(argv)

    try:
        suite = extract_suite(fetch_sdist())
        if not args.no_install:
            install_requirements()
        excluded = read_excluded()
        minimum = read_minimum()
    except SetupError as exc:
        print(f"compat setup failed: {exc}", file=sys.stderr)
        return 2

    code = run_pytest(suite, excluded, args.reference, not args.no_isolate, args.pytest_args)
    if code not in (0, 1) or not REPORT_PATH.exists():
        print(f"pytest exited with {code}; see {LOG_PATH}:", file=sys.stderr)
        print("".join(LOG_PATH.read_text().splitlines(keepends=True)[-30:]), file=sys.stderr)
        return 2

    outcomes = json.loads(REPORT_PATH.read_text())
    expected = None if args.pytest_args else reference_ids(suite)
    passed, failed, skipped = summarise(
        outcomes, expected, excluded, args.groups, args.list_failures
    )
    target = "httpx (reference)" if args.reference else "loopfree"
    if expected is not None:
        n_excluded = sum(1 for test_id in expected if _is_excluded(test_id, excluded))
    else:
        n_excluded = len(excluded)
    # Deliberately not pytest's "N passed, N failed" form: CI reads that form
    # as this run's verdict, and failures here are expected and ratcheted.
    print(
        f"\ncompat[{target}]: passed={passed} failed={failed} skipped={skipped} "
        f"excluded={n_excluded} of {passed + failed + skipped}"
    )
    if args.reference or args.pytest_args:
        return 0  # a partial or reference run says nothing about the ratchet
    if passed < minimum:
        print(f"REGRESSION: {passed} passed, below the ratchet of {minimum}", file=sys.stderr)
        return 1
    if passed > minimum:
        if args.update_ratchet:
            MINIMUM.write_text(f"{passed}\n")
            print(f"ratchet raised: compat/minimum_passed.txt is now {passed}")
        else:
            print(f"ratchet: {passed} > {minimum}; raise it with --update-ratchet")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
