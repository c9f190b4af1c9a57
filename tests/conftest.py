"""Shared fixtures: real servers on 127.0.0.1 and leak checks.

Servers live in ``tests/servers/`` and are loaded by file path, so this works
with any ``--import-mode`` and without touching ``sys.path``.  Nothing here
imports the code under test.
"""

from __future__ import annotations

import contextlib
import gc
import importlib.util
import logging
import os
import socket
import ssl
import sys
import threading
import typing
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import pytest
import trustme

SERVERS_DIR = Path(__file__).parent / "servers"


def _load_server_module(name: str) -> ModuleType:
    module_name = f"_loopfree_test_servers_{name}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, SERVERS_DIR / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


asgi_app = _load_server_module("app")
runners = _load_server_module("runners")
ServerInfo = runners.ServerInfo

ENVIRONMENT_VARIABLES = {
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "SSLKEYLOGFILE",
}


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "allow_leaks(reason): skip the asyncio-error-log and unraisable-exception checks "
        "(only for tests that demonstrate another library's failure)",
    )


# --------------------------------------------------------------------------
# Environment and leak checks (autouse)
# --------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove proxy / CA / key-log variables (any case), like httpx's conftest."""
    for name in list(os.environ):
        if name.upper() in ENVIRONMENT_VARIABLES:
            monkeypatch.delenv(name)


@pytest.fixture(scope="session", autouse=True)
def _freeze_startup_objects() -> Iterator[None]:
    """Keep the per-test ``gc.collect()`` calls cheap.

    Objects alive before the first test (imported modules, collected test
    functions) move to the permanent generation, so each collection only walks
    what the tests allocate (~0.1 s -> ~0 s per collection here).
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


class _ListHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(autouse=True)
def fail_on_asyncio_error_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail the test if the ``asyncio`` logger logs at ERROR or above.

    That catches "Task exception was never retrieved", "Exception in callback",
    "Task was destroyed but it is pending!", "Unclosed ..." and friends, from
    any thread.  Garbage is collected first (by fail_on_unraisable_exceptions,
    which depends on this fixture and so is torn down before it) so that
    destructors log in time.
    """
    handler = _ListHandler()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
        # fail_on_unraisable_exceptions (torn down just before) has collected garbage.
    finally:
        logger.removeHandler(handler)
    if handler.records and not request.node.get_closest_marker("allow_leaks"):
        formatter = logging.Formatter("%(levelname)s %(name)s [%(threadName)s]: %(message)s")
        details = "\n".join(formatter.format(r) for r in handler.records)
        pytest.fail(f"asyncio logged errors during the test:\n{details}", pytrace=False)


def _assert_unraisable_warnings_are_errors() -> None:
    """Probe the active warning filters: an unraisable exception must fail the test."""
    with warnings.catch_warnings():
        try:
            warnings.warn(pytest.PytestUnraisableExceptionWarning("filter probe"), stacklevel=1)
        except pytest.PytestUnraisableExceptionWarning:
            return
    pytest.fail(
        "PytestUnraisableExceptionWarning is not an error: keep "
        'filterwarnings = ["error"] in [tool.pytest.ini_options]',
        pytrace=False,
    )


@pytest.fixture(autouse=True)
def fail_on_unraisable_exceptions(
    request: pytest.FixtureRequest, fail_on_asyncio_error_logs: None
) -> Iterator[None]:
    """Make finalizers run inside the test so unraisable exceptions count.

    pytest's unraisableexception plugin turns anything reaching
    ``sys.unraisablehook`` into ``PytestUnraisableExceptionWarning``, and the
    project's ``filterwarnings = ["error"]`` turns that into a failure of the
    phase in which it happened.  Collecting here attributes destructor errors
    (including ``ResourceWarning``\\s raised as errors) to this test's teardown.
    """
    allow_leaks = request.node.get_closest_marker("allow_leaks") is not None
    previous_hook = sys.unraisablehook
    if allow_leaks:
        # Only for tests demonstrating another library's breakage: swallow its
        # destructor noise for the whole test instead of reporting it.
        sys.unraisablehook = lambda unraisable: None
    else:
        _assert_unraisable_warnings_are_errors()
    try:
        yield
        # pytest keeps the last failure's traceback (and so its frames' locals)
        # in sys.last_*; drop it so this test's garbage is collected now.
        for name in ("last_type", "last_value", "last_traceback", "last_exc"):
            if hasattr(sys, name):
                delattr(sys, name)
        with warnings.catch_warnings():
            if allow_leaks:
                warnings.simplefilter("ignore")
            # Twice: finalizers run by the first pass can free more cycles.
            gc.collect()
            gc.collect()
    finally:
        sys.unraisablehook = previous_hook


# --------------------------------------------------------------------------
# Certificates
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def localhost_cert(ca: trustme.CA) -> trustme.LeafCert:
    return ca.issue_cert("localhost", "127.0.0.1")


@pytest.fixture(scope="session")
def ca_cert_path(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """PEM file with the test CA, usable as ``verify=ca_cert_path``."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture(scope="session")
def cert_files(
    localhost_cert: trustme.LeafCert, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, str]:
    """(certfile, keyfile) for the TLS servers."""
    directory = tmp_path_factory.mktemp("server-cert")
    certfile = directory / "server.pem"
    keyfile = directory / "server.key"
    localhost_cert.cert_chain_pems[0].write_to_path(str(certfile))
    for pem in localhost_cert.cert_chain_pems[1:]:
        pem.write_to_path(str(certfile), append=True)
    localhost_cert.private_key_pem.write_to_path(str(keyfile))
    return str(certfile), str(keyfile)


@pytest.fixture(scope="session")
def ca_ssl_context(ca_cert_path: str) -> ssl.SSLContext:
    """A stdlib client context trusting the test CA (for readiness probes)."""
    return ssl.create_default_context(cafile=ca_cert_path)


# --------------------------------------------------------------------------
# Servers
# --------------------------------------------------------------------------


@pytest.fixture(scope="session")
def server() -> Iterator[ServerInfo]:
    """uvicorn, HTTP/1.1, plain text.  ``server.url`` is ``http://127.0.0.1:PORT``."""
    runner = runners.UvicornThread(asgi_app.app)
    try:
        yield runner.start()
    finally:
        runner.stop()


@contextlib.contextmanager
def _raw_listener(on_connection: Callable[[socket.socket], None]) -> Iterator[int]:
    """
    A loopback listener whose accept thread hands each connection to
    `on_connection`; yields its port and stops with the block.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            on_connection(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        thread.join(2)
        listener.close()


@pytest.fixture
def raw_listener() -> Callable[[Callable[[socket.socket], None]], typing.ContextManager[int]]:
    """`with raw_listener(on_connection) as port:` a hand-written server."""
    return _raw_listener


@pytest.fixture
def stalled_server() -> Iterator[int]:
    """Accepts connections and never reads: uploads stall once buffers fill."""
    accepted: list[socket.socket] = []

    def keep(conn: socket.socket) -> None:
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        accepted.append(conn)

    with _raw_listener(keep) as port:
        yield port
    for conn in accepted:
        conn.close()


@pytest.fixture
def unix_server(tmp_path: Path) -> Iterator[str]:
    """uvicorn serving the test app on a Unix socket; yields the socket path."""
    path = str(tmp_path / "app.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(16)
    runner = runners.UvicornThread(asgi_app.app, sock=sock)
    runner.start()
    try:
        yield path
    finally:
        runner.stop()


@pytest.fixture(scope="session")
def tls_server(cert_files: tuple[str, str], ca_ssl_context: ssl.SSLContext) -> Iterator[ServerInfo]:
    """uvicorn over HTTPS with a trustme certificate for localhost and 127.0.0.1."""
    certfile, keyfile = cert_files
    runner = runners.UvicornThread(asgi_app.app, certfile=certfile, keyfile=keyfile)
    try:
        yield runner.start(ca_ssl_context)
    finally:
        runner.stop()


@pytest.fixture(scope="session")
def h2_server(cert_files: tuple[str, str], ca_ssl_context: ssl.SSLContext) -> Iterator[ServerInfo]:
    """hypercorn over HTTPS offering ALPN h2 and http/1.1."""
    certfile, keyfile = cert_files
    runner = runners.HypercornThread(asgi_app.app, certfile=certfile, keyfile=keyfile)
    try:
        yield runner.start(ca_ssl_context)
    finally:
        runner.stop()


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port that refuses connections (bound, never listening)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((runners.LOOPBACK, 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture
def recording_listener() -> Iterator[runners.RecordingListener]:
    """Raw TCP listener that records accepted connections and received bytes."""
    listener = runners.RecordingListener().start()
    try:
        yield listener
    finally:
        listener.stop()


@pytest.fixture
def full_backlog_port() -> Iterator[int]:
    """A listening 127.0.0.1 port whose accept queue is full: connects hang."""
    listener = runners.FullBacklogListener()
    try:
        if not listener.filled:
            pytest.skip("could not fill a backlog-0 accept queue on this kernel")
        yield listener.port
    finally:
        listener.close()


@pytest.fixture(scope="session")
def compressible_text() -> str:
    """The decoded body of /gzip, /brotli, /zstd and /deflate."""
    return asgi_app.COMPRESSIBLE_TEXT


@pytest.fixture(scope="session")
def bytes_pattern() -> bytes:
    """/bytes?n=N returns (bytes_pattern * k)[:N]."""
    return asgi_app.BYTES_PATTERN
