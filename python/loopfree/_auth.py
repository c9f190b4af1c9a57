"""Authentication flows, with httpx's generator protocol."""

from __future__ import annotations

import hashlib
import os
import re
import time
import typing
from base64 import b64encode
from urllib.request import parse_http_list

from ._cookies import Cookies
from ._exceptions import ProtocolError

if typing.TYPE_CHECKING:
    from ._request import Request
    from ._response import Response

__all__ = ["Auth", "BasicAuth", "DigestAuth", "FunctionAuth", "NetRCAuth"]


def _to_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else value


def _basic_auth_header(username: str | bytes, password: str | bytes) -> str:
    token = b64encode(b":".join((_to_bytes(username), _to_bytes(password)))).decode("ascii")
    return f"Basic {token}"


class Auth:
    """
    Base class for authentication schemes.

    `auth_flow` is a generator: it yields requests to send and receives their
    responses, so multi-step schemes (digest, token refresh) fit one protocol.
    Schemes that need I/O of their own override `sync_auth_flow` and
    `async_auth_flow` instead.
    """

    requires_request_body = False
    requires_response_body = False

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        yield request

    def sync_auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        if self.requires_request_body:
            request.read()
        flow = self.auth_flow(request)
        request = next(flow)
        while True:
            response = yield request
            if self.requires_response_body:
                response.read()
            try:
                request = flow.send(response)
            except StopIteration:
                break

    async def async_auth_flow(self, request: Request) -> typing.AsyncGenerator[Request, Response]:
        if self.requires_request_body:
            await request.aread()
        flow = self.auth_flow(request)
        request = next(flow)
        while True:
            response = yield request
            if self.requires_response_body:
                await response.aread()
            try:
                request = flow.send(response)
            except StopIteration:
                break


class FunctionAuth(Auth):
    """Auth from a plain callable that takes and returns a request."""

    def __init__(self, func: typing.Callable[[Request], Request]) -> None:
        self._func = func

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        yield self._func(request)


class BasicAuth(Auth):
    """HTTP Basic authentication; str credentials are sent UTF-8 encoded."""

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        self._auth_header = self._build_auth_header(username, password)

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        request.headers["Authorization"] = self._auth_header
        yield request

    def _build_auth_header(self, username: str | bytes, password: str | bytes) -> str:
        return _basic_auth_header(username, password)


class NetRCAuth(Auth):
    """
    Basic authentication with the credentials that a netrc file holds for the
    request's host; requests to hosts it has no password for go unchanged.
    `file=None` reads `~/.netrc`.
    """

    def __init__(self, file: str | None = None) -> None:
        # Imported here: only users of this class pay for the module.
        import netrc

        # Parsed once, so a malformed or missing file fails at construction.
        self._netrc_info = netrc.netrc(file)

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        auth_info = self._netrc_info.authenticators(request.url.host)
        if auth_info is not None and auth_info[2]:
            request.headers["Authorization"] = self._build_auth_header(
                username=auth_info[0], password=auth_info[2]
            )
        yield request

    def _build_auth_header(self, username: str | bytes, password: str | bytes) -> str:
        return _basic_auth_header(username, password)


class _DigestAuthChallenge(typing.NamedTuple):
    realm: bytes
    nonce: bytes
    algorithm: str
    opaque: bytes | None
    qop: bytes | None


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


class DigestAuth(Auth):
    """
    HTTP Digest authentication (RFC 7616; RFC 2069 when the server offers no
    qop). The request is sent first without credentials; a 401 with a Digest
    challenge is answered once. The challenge is then remembered, so later
    requests through the same instance authenticate up front.
    """

    _ALGORITHM_TO_HASH_FUNCTION: typing.ClassVar[dict[str, typing.Callable[..., typing.Any]]] = {
        "MD5": hashlib.md5,
        "MD5-SESS": hashlib.md5,
        "SHA": hashlib.sha1,
        "SHA-SESS": hashlib.sha1,
        "SHA-256": hashlib.sha256,
        "SHA-256-SESS": hashlib.sha256,
        "SHA-512": hashlib.sha512,
        "SHA-512-SESS": hashlib.sha512,
    }

    def __init__(self, username: str | bytes, password: str | bytes) -> None:
        self._username = _to_bytes(username)
        self._password = _to_bytes(password)
        self._last_challenge: _DigestAuthChallenge | None = None
        self._nonce_count = 1

    def auth_flow(self, request: Request) -> typing.Generator[Request, Response, None]:
        if self._last_challenge is not None:
            request.headers["Authorization"] = self._build_auth_header(
                request, self._last_challenge
            )

        response = yield request

        if response.status_code != 401 or "www-authenticate" not in response.headers:
            return

        for auth_header in response.headers.get_list("www-authenticate"):
            if auth_header.lower().startswith("digest "):
                break
        else:
            # A 401 with only other schemes (e.g. Basic) is not ours to answer.
            return

        self._last_challenge = self._parse_challenge(request, response, auth_header)
        self._nonce_count = 1

        request.headers["Authorization"] = self._build_auth_header(request, self._last_challenge)
        # Servers may tie the challenge to a session cookie set on the 401.
        if response.cookies:
            Cookies(response.cookies).set_cookie_header(request=request)
        yield request

    def _parse_challenge(
        self, request: Request, response: Response, auth_header: str
    ) -> _DigestAuthChallenge:
        """
        Parse `Digest realm="x", qop="auth,auth-int", nonce="abc", opaque="y"`.
        """
        scheme, _, fields = auth_header.partition(" ")
        assert scheme.lower() == "digest"

        params: dict[str, str] = {}
        for field in parse_http_list(fields):
            key, _, value = field.strip().partition("=")
            params[key] = _unquote(value)

        try:
            realm = params["realm"].encode()
            nonce = params["nonce"].encode()
        except KeyError as exc:
            raise ProtocolError(
                "Malformed Digest WWW-Authenticate header", request=request
            ) from exc
        algorithm = params.get("algorithm", "MD5")
        opaque = params["opaque"].encode() if "opaque" in params else None
        qop = params["qop"].encode() if "qop" in params else None
        return _DigestAuthChallenge(
            realm=realm, nonce=nonce, algorithm=algorithm, opaque=opaque, qop=qop
        )

    def _build_auth_header(self, request: Request, challenge: _DigestAuthChallenge) -> str:
        hash_func = self._ALGORITHM_TO_HASH_FUNCTION[challenge.algorithm.upper()]

        def digest(data: bytes) -> bytes:
            return hash_func(data).hexdigest().encode()  # type: ignore[no-any-return]

        path = request.url.raw_path
        ha2 = digest(b":".join((request.method.encode(), path)))

        nc_value = b"%08x" % self._nonce_count
        cnonce = self._get_client_nonce(self._nonce_count, challenge.nonce)
        self._nonce_count += 1

        ha1 = digest(b":".join((self._username, challenge.realm, self._password)))
        if challenge.algorithm.lower().endswith("-sess"):
            ha1 = digest(b":".join((ha1, challenge.nonce, cnonce)))

        qop = self._resolve_qop(challenge.qop, request=request)
        if qop is None:
            # RFC 2069: no qop, no nonce count, no client nonce.
            response_digest = digest(b":".join((ha1, challenge.nonce, ha2)))
        else:
            response_digest = digest(b":".join((ha1, challenge.nonce, nc_value, cnonce, qop, ha2)))

        fields: dict[str, bytes] = {
            "username": self._username,
            "realm": challenge.realm,
            "nonce": challenge.nonce,
            "uri": path,
            "response": response_digest,
            "algorithm": challenge.algorithm.encode(),
        }
        if challenge.opaque:
            fields["opaque"] = challenge.opaque
        if qop:
            fields["qop"] = b"auth"
            fields["nc"] = nc_value
            fields["cnonce"] = cnonce

        return "Digest " + self._get_header_value(fields)

    def _get_client_nonce(self, nonce_count: int, nonce: bytes) -> bytes:
        seed = str(nonce_count).encode() + nonce + time.ctime().encode() + os.urandom(8)
        return hashlib.sha1(seed).hexdigest()[:16].encode()

    def _get_header_value(self, header_fields: dict[str, bytes]) -> str:
        # RFC 7616 sends these three as tokens; everything else is quoted.
        unquoted = ("algorithm", "qop", "nc")
        parts = []
        for name, value in header_fields.items():
            text = value.decode("utf-8")
            parts.append(f"{name}={text}" if name in unquoted else f'{name}="{text}"')
        return ", ".join(parts)

    def _resolve_qop(self, qop: bytes | None, request: Request) -> bytes | None:
        if qop is None:
            return None
        qops = re.split(b", ?", qop)
        if b"auth" in qops:
            return b"auth"
        if qops == [b"auth-int"]:
            raise NotImplementedError("Digest auth-int support is not yet implemented")
        raise ProtocolError(f'Unexpected qop value "{qop!r}" in digest auth', request=request)
