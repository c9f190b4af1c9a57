"""`create_ssl_context()`: httpx's `verify=`/`cert=` semantics as an `ssl.SSLContext`."""

from __future__ import annotations

import ssl
from pathlib import Path

import loopfree
import pytest
import trustme
from loopfree._ssl import create_ssl_context


def ca_subjects(ctx: ssl.SSLContext) -> list[str]:
    """The common names of the CA certificates a context has loaded from files."""
    names = []
    for cert in ctx.get_ca_certs():
        for rdn in cert["subject"]:
            for key, value in rdn:
                if key in ("commonName", "organizationalUnitName"):
                    names.append(value)
    return names


def trustme_ou(ca: trustme.CA) -> str:
    """The organisational unit trustme gives this CA: unique per CA."""
    ctx = ssl.create_default_context(cafile=None, cadata=ca.cert_pem.bytes().decode())
    (cert,) = ctx.get_ca_certs()
    return next(v for rdn in cert["subject"] for k, v in rdn if k == "organizationalUnitName")


@pytest.fixture
def no_ca_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SSL_CERT_FILE", "SSL_CERT_DIR", "SSLKEYLOGFILE"):
        monkeypatch.delenv(name, raising=False)


def test_default_verifies(no_ca_env: None) -> None:
    ctx = create_ssl_context()
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ctx.check_hostname is True
    assert ctx.protocol == ssl.PROTOCOL_TLS_CLIENT


def test_ssl_cert_file_is_trusted(
    no_ca_env: None, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA, ca_cert_path: str
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca_cert_path)
    assert trustme_ou(ca) in ca_subjects(create_ssl_context())
    # trust_env=False ignores the variable.
    assert trustme_ou(ca) not in ca_subjects(create_ssl_context(trust_env=False))


def test_ssl_cert_dir_is_used(
    no_ca_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    seen: list[dict[str, object]] = []
    real = ssl.create_default_context

    def spy(*args: object, **kwargs: object) -> ssl.SSLContext:
        seen.append(kwargs)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", spy)
    create_ssl_context()
    create_ssl_context(trust_env=False)
    # CA directories are read lazily by OpenSSL, so check what was asked for.
    assert seen[0] == {"capath": str(tmp_path)}
    assert str(tmp_path) not in seen[1].values()


def test_ssl_cert_file_wins_over_dir(
    no_ca_env: None, monkeypatch: pytest.MonkeyPatch, ca: trustme.CA, ca_cert_path: str
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", ca_cert_path)
    monkeypatch.setenv("SSL_CERT_DIR", "/nonexistent")
    assert trustme_ou(ca) in ca_subjects(create_ssl_context())


def test_verify_false() -> None:
    ctx = create_ssl_context(verify=False)
    assert ctx.verify_mode == ssl.CERT_NONE
    assert ctx.check_hostname is False


def test_verify_path_is_deprecated_but_loads(ca: trustme.CA, ca_cert_path: str) -> None:
    with pytest.warns(DeprecationWarning, match="verify=<str>"):
        ctx = create_ssl_context(verify=ca_cert_path)
    assert ctx.verify_mode == ssl.CERT_REQUIRED
    assert ca_subjects(ctx) == [trustme_ou(ca)]


def test_verify_directory(tmp_path: Path) -> None:
    with pytest.warns(DeprecationWarning):
        ctx = create_ssl_context(verify=str(tmp_path))
    assert ctx.verify_mode == ssl.CERT_REQUIRED


def test_verify_missing_file() -> None:
    with pytest.warns(DeprecationWarning), pytest.raises(FileNotFoundError):
        create_ssl_context(verify="/path/to/nowhere")


def test_verify_context_is_returned_unchanged() -> None:
    given = ssl.create_default_context()
    assert create_ssl_context(verify=given) is given


def test_verify_invalid_type() -> None:
    with pytest.raises(TypeError, match="verify"):
        create_ssl_context(verify=42)  # type: ignore[arg-type]


def test_cert_pair_is_loaded(cert_files: tuple[str, str]) -> None:
    given = ssl.create_default_context()
    with pytest.warns(DeprecationWarning, match="cert="):
        ctx = create_ssl_context(verify=given, cert=cert_files)
    assert ctx is given


def test_cert_combined_file(cert_files: tuple[str, str], tmp_path: Path) -> None:
    certfile, keyfile = cert_files
    combined = tmp_path / "combined.pem"
    combined.write_bytes(Path(keyfile).read_bytes() + Path(certfile).read_bytes())
    with pytest.warns(DeprecationWarning):
        create_ssl_context(cert=str(combined))


def test_cert_without_key_fails(cert_files: tuple[str, str]) -> None:
    with pytest.warns(DeprecationWarning), pytest.raises(ssl.SSLError):
        create_ssl_context(cert=cert_files[0])


def test_keylog_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = str(tmp_path / "keys.log")
    monkeypatch.setenv("SSLKEYLOGFILE", path)
    assert create_ssl_context().keylog_filename == path


def test_context_works_with_the_client(
    no_ca_env: None, monkeypatch: pytest.MonkeyPatch, ca_cert_path: str, tls_server: object
) -> None:
    """The context is accepted as `verify=`: trusted CA connects, default store does not."""
    url = f"{tls_server.url}/json"  # type: ignore[attr-defined]
    monkeypatch.setenv("SSL_CERT_FILE", ca_cert_path)
    with loopfree.Client(verify=create_ssl_context()) as client:
        assert client.get(url).status_code == 200
    monkeypatch.delenv("SSL_CERT_FILE")
    with (
        loopfree.Client(verify=create_ssl_context(), trust_env=False) as client,
        pytest.raises(loopfree.ConnectError),
    ):
        client.get(url)


def test_a_changed_ca_file_is_read_again(
    monkeypatch: pytest.MonkeyPatch, tls_server, ca: trustme.CA, tmp_path: Path
) -> None:
    """CA files are cached per (inode, mtime, size): a rewritten file counts."""
    bundle = tmp_path / "bundle.pem"
    bundle.write_bytes(trustme.CA().cert_pem.bytes())  # not the server's CA
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    with pytest.raises(loopfree.ConnectError), loopfree.Client() as client:
        client.get(tls_server.url)
    bundle.write_bytes(ca.cert_pem.bytes() + b"\n")  # the server's CA now
    with loopfree.Client() as client:
        assert client.get(tls_server.url).status_code == 200


def test_a_ca_directory_from_the_environment_is_trusted(
    no_ca_env: None, monkeypatch: pytest.MonkeyPatch, tls_server, ca: trustme.CA, tmp_path: Path
) -> None:
    """SSL_CERT_DIR names a directory: every file in it is read (one stat per client)."""
    (tmp_path / "server-ca.pem").write_bytes(ca.cert_pem.bytes())
    (tmp_path / "other-ca.pem").write_bytes(trustme.CA().cert_pem.bytes())
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path))
    with loopfree.Client() as client:
        assert client.get(tls_server.url).status_code == 200


@pytest.mark.parametrize("name", ["SSL_CERT_FILE", "SSL_CERT_DIR"])
def test_a_missing_ca_path_in_the_environment_is_ignored(
    no_ca_env: None, monkeypatch: pytest.MonkeyPatch, tls_server, tmp_path: Path, name: str
) -> None:
    """As with httpx, a variable naming nothing leaves the default roots in place."""
    monkeypatch.setenv(name, str(tmp_path / "missing.pem"))
    with pytest.raises(loopfree.ConnectError), loopfree.Client() as client:
        client.get(tls_server.url)  # the test CA is not a default root
