"""`create_ssl_context()`, as in httpx: the `ssl.SSLContext` for `verify=`/`cert=`."""

from __future__ import annotations

import os
import ssl
import warnings

__all__ = ["CertTypes", "create_ssl_context"]

CertTypes = str | tuple[str, str] | tuple[str, str, str]


def _system_store_context() -> ssl.SSLContext:
    """
    A verifying context with the system's CA store, ignoring the environment.

    `ssl.create_default_context()` alone would not do for `trust_env=False`:
    OpenSSL's default verify paths read SSL_CERT_FILE and SSL_CERT_DIR
    themselves, so the compiled-in locations are loaded explicitly instead.
    """
    paths = ssl.get_default_verify_paths()
    cafile = paths.openssl_cafile if os.path.isfile(paths.openssl_cafile) else None
    capath = paths.openssl_capath if os.path.isdir(paths.openssl_capath) else None
    if cafile is None and capath is None:
        # No compiled-in store on disk (e.g. Windows, which has its own).
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=cafile, capath=capath)


def create_ssl_context(
    verify: ssl.SSLContext | str | os.PathLike[str] | bool = True,
    cert: CertTypes | None = None,
    trust_env: bool = True,
) -> ssl.SSLContext:
    """
    Build the client-side context for httpx's `verify=` and `cert=` values.

    `verify=True` trusts `SSL_CERT_FILE` or `SSL_CERT_DIR` when `trust_env`
    allows and one is set, and otherwise the system's default CA store
    (httpx uses certifi's bundle there; loopfree does not depend on certifi).
    With `trust_env=False` neither variable has any effect.
    `SSLKEYLOGFILE` is honoured by `ssl.create_default_context()` itself.
    """
    if verify is True:
        cafile = os.environ.get("SSL_CERT_FILE") if trust_env else None
        capath = os.environ.get("SSL_CERT_DIR") if trust_env else None
        if cafile:
            ctx = ssl.create_default_context(cafile=cafile)
        elif capath:
            ctx = ssl.create_default_context(capath=capath)
        elif trust_env:
            ctx = ssl.create_default_context()
        else:
            ctx = _system_store_context()
    elif verify is False:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif isinstance(verify, str | os.PathLike):
        warnings.warn(
            "`verify=<str>` is deprecated. "
            "Use `verify=ssl.create_default_context(cafile=...)` "
            "or `verify=ssl.create_default_context(capath=...)` instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        path = os.fspath(verify)
        if os.path.isdir(path):
            ctx = ssl.create_default_context(capath=path)
        else:
            ctx = ssl.create_default_context(cafile=path)
    elif isinstance(verify, ssl.SSLContext):
        # A caller-built context is used as-is (and `cert=` loads into it).
        ctx = verify
    else:
        raise TypeError(f"Invalid 'verify' argument: {verify!r}")

    if cert:
        warnings.warn(
            "`cert=...` is deprecated. Use `verify=<ssl_context>` instead, "
            "with `.load_cert_chain()` to configure the certificate chain.",
            DeprecationWarning,
            stacklevel=2,
        )
        if isinstance(cert, str):
            ctx.load_cert_chain(cert)
        else:
            ctx.load_cert_chain(*cert)

    return ctx
