"""
pytest plugin: run httpx's own test suite against loopfree.

Loaded with `-p httpx_alias`, so it is imported while pytest parses its
options, before any conftest or test module runs `import httpx`. From then on:

* `import httpx` gives the `loopfree` package itself (`httpx.Client is
  loopfree.Client`), via `sys.modules`;
* `import httpx._x` / `from httpx._x import y` give `loopfree._x`, when that
  private module exists. Tests of httpx internals that loopfree lacks fail
  with ImportError at collection, which the report counts as one failure.

`httpcore` is left alone: it is httpx's transport library, not loopfree's,
and the few tests that use it exercise httpx's own HTTPTransport.

Set LOOPFREE_COMPAT_REFERENCE=1 to skip the alias and run the suite against
the real httpx, to check that the harness itself passes everything.

`--compat-report=PATH` writes each test's outcome (and for failures the
exception line) as JSON, for `compat/run.py` to summarise.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import json
import os
import sys
import types
import typing

import pytest

REFERENCE = os.environ.get("LOOPFREE_COMPAT_REFERENCE") == "1"


class _AliasLoader(importlib.abc.Loader):
    """Hands back an already imported loopfree module under its httpx name."""

    def __init__(self, module: types.ModuleType) -> None:
        self._module = module

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return self._module

    def exec_module(self, module: types.ModuleType) -> None:
        # Already executed as `loopfree.*`; running it twice would create a
        # second copy of every class.
        return None


class _HttpxAliasFinder(importlib.abc.MetaPathFinder):
    """
    Resolves `httpx` and `httpx.<sub>` to `loopfree` and `loopfree.<sub>`.

    `httpx` itself is normally found in `sys.modules`; the finder catches a
    re-import after a test deletes it from there, which would otherwise load
    the real httpx from site-packages.
    """

    def find_spec(
        self,
        fullname: str,
        path: typing.Sequence[str] | None,
        target: types.ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "httpx" and not fullname.startswith("httpx."):
            return None
        real_name = "loopfree" + fullname[len("httpx") :]
        try:
            module = importlib.import_module(real_name)
        except ModuleNotFoundError as exc:
            if exc.name != real_name:
                raise
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (loopfree has no {real_name!r})",
                name=fullname,
            ) from None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(module))


def _install_alias() -> None:
    import loopfree

    existing = sys.modules.get("httpx")
    if existing is not None and existing is not loopfree:
        # Something imported the real httpx before us; its submodules would
        # leak into the run, so drop them all.
        for name in [n for n in sys.modules if n == "httpx" or n.startswith("httpx.")]:
            del sys.modules[name]
    sys.modules["httpx"] = loopfree
    sys.meta_path.insert(0, _HttpxAliasFinder())


if not REFERENCE:
    _install_alias()


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--compat-report",
        default=None,
        help="write each test's outcome to this JSON file",
    )
    parser.addoption(
        "--compat-collected",
        default=None,
        help="write the ids of all collected tests to this file, one a line",
    )
    parser.addoption(
        "--compat-exclude",
        default=None,
        help="a file of test ids to deselect, one a line (an id ending in '::' "
        "excludes everything under it)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    import httpx  # the alias, unless REFERENCE

    target = "real httpx (reference run)" if REFERENCE else "loopfree (aliased)"
    return f"httpx resolves to: {target}, {httpx.__file__}"


class _Recorder:
    """Collects one outcome per test id: the worst of its setup/call/teardown."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.outcomes: dict[str, dict[str, str]] = {}

    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.outcomes[report.nodeid] = {
                "outcome": "error",
                "when": "collect",
                "message": _crash_message(report),
            }

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        previous = self.outcomes.get(report.nodeid)
        if previous is not None and previous["outcome"] in ("failed", "error"):
            return  # keep the first failure: later phases only add noise
        if hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        elif report.skipped:
            outcome = "skipped"
        elif report.failed:
            outcome = "failed" if report.when == "call" else "error"
        elif report.when == "call" or previous is None:
            outcome = "passed"
        else:
            return
        entry = {"outcome": outcome, "when": report.when}
        if outcome in ("failed", "error", "skipped"):
            entry["message"] = _crash_message(report)
        self.outcomes[report.nodeid] = entry

    @pytest.hookimpl
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        with open(self.path, "w", encoding="utf-8") as handle:
            json.dump(self.outcomes, handle, indent=1, sort_keys=True)


def _crash_message(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (file, line, reason)
        return str(longrepr[2])
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return str(crash.message)
    return str(longrepr).strip().splitlines()[-1] if longrepr else ""


def _is_excluded(nodeid: str, excluded: set[str]) -> bool:
    if nodeid in excluded:
        return True
    # A bare test name covers all its parametrizations, `module.py::` all of
    # a module's tests. Unlike `--deselect`, `test_a` does not cover `test_ab`.
    base = nodeid.split("[", 1)[0]
    if base in excluded:
        return True
    parts = nodeid.split("::")
    return any("::".join(parts[:i]) + "::" in excluded for i in range(1, len(parts)))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    path = config.getoption("--compat-exclude")
    if not path:
        return
    with open(path, encoding="utf-8") as handle:
        excluded = {line.strip() for line in handle if line.strip()}
    kept: list[pytest.Item] = []
    dropped: list[pytest.Item] = []
    for item in items:
        (dropped if _is_excluded(item.nodeid, excluded) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def pytest_collection_finish(session: pytest.Session) -> None:
    path = session.config.getoption("--compat-collected")
    if path:
        with open(path, "w", encoding="utf-8") as handle:
            handle.writelines(f"{item.nodeid}\n" for item in session.items)


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--compat-report")
    if path:
        config.pluginmanager.register(_Recorder(path), "httpx_alias_recorder")
