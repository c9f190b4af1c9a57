"""Auth flows: Basic, function, netrc and Digest, through a MockTransport."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import typing
from pathlib import Path
from urllib.request import parse_http_list, parse_keqv_list

import loopfree
import pytest
import trio
from loopfree._auth import Auth, BasicAuth, DigestAuth, FunctionAuth, NetRCAuth
from loopfree._transports import MockTransport

URL = "https://example.org/private/resource?page=2"


def echo_authorization(request: loopfree.Request) -> loopfree.Response:
    return loopfree.Response(200, json={"auth": request.headers.get("Authorization")})


def get_auth_header(auth: Auth | typing.Any, url: str = URL) -> str | None:
    with loopfree.Client(transport=MockTransport(echo_authorization)) as client:
        return typing.cast(str | None, client.get(url, auth=auth).json()["auth"])


def basic(username: bytes, password: bytes) -> str:
    return "Basic " + base64.b64encode(username + b":" + password).decode()


# --------------------------------------------------------------------------
# Basic and function auth
# --------------------------------------------------------------------------


def test_basic_auth() -> None:
    assert get_auth_header(BasicAuth("user", "pass:word")) == basic(b"user", b"pass:word")


def test_basic_auth_str_credentials_are_utf8() -> None:
    expected = basic("jos\u00e9".encode(), "\u20ac".encode())
    assert get_auth_header(BasicAuth("jos\u00e9", "\u20ac")) == expected


def test_basic_auth_bytes_credentials_are_sent_as_is() -> None:
    assert get_auth_header(BasicAuth(b"\xe9", b"\xff")) == basic(b"\xe9", b"\xff")


def test_tuple_auth_is_basic() -> None:
    assert get_auth_header(("user", "pw")) == basic(b"user", b"pw")


def test_function_auth() -> None:
    def add_token(request: loopfree.Request) -> loopfree.Request:
        request.headers["Authorization"] = "Token 123"
        return request

    assert get_auth_header(FunctionAuth(add_token)) == "Token 123"
    assert get_auth_header(add_token) == "Token 123"


def test_custom_auth_flow_with_response_body() -> None:
    """A flow that reads the first response's body to build the next request."""

    class TokenAuth(Auth):
        requires_response_body = True

        def auth_flow(
            self, request: loopfree.Request
        ) -> typing.Generator[loopfree.Request, loopfree.Response, None]:
            response = yield request
            if response.status_code == 401:
                request.headers["Authorization"] = f"Token {response.json()['token']}"
                yield request

    def handler(request: loopfree.Request) -> loopfree.Response:
        if request.headers.get("Authorization") == "Token t0k3n":
            return loopfree.Response(200, text="welcome")
        return loopfree.Response(401, json={"token": "t0k3n"})

    with loopfree.Client(transport=MockTransport(handler)) as client:
        response = client.get(URL, auth=TokenAuth())
    assert response.text == "welcome"
    assert [r.status_code for r in response.history] == [401]


# --------------------------------------------------------------------------
# NetRCAuth
# --------------------------------------------------------------------------


@pytest.fixture
def netrc_file(tmp_path: Path) -> str:
    path = tmp_path / "netrc"
    path.write_text(
        "machine example.org\n  login alice\n  password s3cret\n"
        "machine nopass.example.org\n  login bob\n"
    )
    path.chmod(0o600)
    return str(path)


def test_netrc_auth_known_host(netrc_file: str) -> None:
    assert get_auth_header(NetRCAuth(netrc_file)) == basic(b"alice", b"s3cret")


def test_netrc_auth_unknown_host_sends_nothing(netrc_file: str) -> None:
    assert get_auth_header(NetRCAuth(netrc_file), "https://other.example/") is None


def test_netrc_auth_host_without_password_sends_nothing(netrc_file: str) -> None:
    assert get_auth_header(NetRCAuth(netrc_file), "https://nopass.example.org/") is None


def test_netrc_auth_default_file_is_home_netrc(
    tmp_path: Path, netrc_file: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".netrc").write_text(Path(netrc_file).read_text())
    (tmp_path / ".netrc").chmod(0o600)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert get_auth_header(NetRCAuth()) == basic(b"alice", b"s3cret")


def test_netrc_auth_missing_file_fails_at_construction(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        NetRCAuth(str(tmp_path / "absent"))


# --------------------------------------------------------------------------
# DigestAuth
# --------------------------------------------------------------------------

HASHES = {"MD5": "md5", "SHA": "sha1", "SHA-256": "sha256", "SHA-512": "sha512"}


def rfc7616_response(fields: dict[str, str], password: str, method: str) -> str:
    """The `response` value a server expects, computed from RFC 7616 section 3.4.1."""
    algorithm = fields.get("algorithm", "MD5")
    name = HASHES[algorithm.upper().removesuffix("-SESS")]

    def h(text: str) -> str:
        return hashlib.new(name, text.encode()).hexdigest()

    ha1 = h(f"{fields['username']}:{fields['realm']}:{password}")
    if algorithm.upper().endswith("-SESS"):
        ha1 = h(f"{ha1}:{fields['nonce']}:{fields['cnonce']}")
    ha2 = h(f"{method}:{fields['uri']}")
    if "qop" in fields:
        return h(f"{ha1}:{fields['nonce']}:{fields['nc']}:{fields['cnonce']}:{fields['qop']}:{ha2}")
    return h(f"{ha1}:{fields['nonce']}:{ha2}")


def parse_digest(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    assert scheme == "Digest"
    return parse_keqv_list(parse_http_list(rest))


class DigestServer:
    """A handler that demands digest auth and checks the answer like a server would."""

    def __init__(
        self,
        algorithm: str = "MD5",
        qop: str | None = "auth",
        password: str = "password123",
        opaque: str | None = "xyz",
        extra_headers: dict[str, str] | None = None,
    ) -> None:
        self.algorithm = algorithm
        self.qop = qop
        self.password = password
        self.opaque = opaque
        self.extra_headers = extra_headers or {}
        self.nonce = "dcd98b7102dd2f0e8b11d0f600bfb0c093"
        self.requests: list[loopfree.Request] = []
        # The flow re-sends the same Request object, so keep each header as sent.
        self.authorizations: list[str | None] = []

    def challenge(self) -> str:
        parts = ['realm="api@example.org"', f'nonce="{self.nonce}"']
        if self.qop is not None:
            parts.append(f'qop="{self.qop}"')
        if self.opaque is not None:
            parts.append(f'opaque="{self.opaque}"')
        parts.append(f"algorithm={self.algorithm}")
        return "Digest " + ", ".join(parts)

    def __call__(self, request: loopfree.Request) -> loopfree.Response:
        self.requests.append(request)
        header = request.headers.get("Authorization")
        self.authorizations.append(header)
        if header is not None:
            fields = parse_digest(header)
            if fields["response"] == rfc7616_response(fields, self.password, request.method):
                return loopfree.Response(200, json=fields)
        headers = {"WWW-Authenticate": self.challenge(), **self.extra_headers}
        return loopfree.Response(401, headers=headers)


ALGORITHMS = [
    "MD5",
    "MD5-SESS",
    "SHA",
    "SHA-SESS",
    "SHA-256",
    "SHA-256-SESS",
    "SHA-512",
    "SHA-512-SESS",
]


@pytest.mark.parametrize(
    ("qop", "algorithm"),
    [
        (qop, algorithm)
        for qop in ("auth", "auth, auth-int", None)
        for algorithm in ALGORITHMS
        # Like httpx, no cnonce is sent without qop, so a -sess digest then
        # cannot be checked by the server.
        if qop is not None or not algorithm.endswith("-SESS")
    ],
)
def test_digest_auth_succeeds(algorithm: str, qop: str | None) -> None:
    server = DigestServer(algorithm=algorithm, qop=qop)
    with loopfree.Client(transport=MockTransport(server)) as client:
        response = client.get(URL, auth=DigestAuth("user", "password123"))

    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
    assert len(server.requests) == 2
    assert server.authorizations[0] is None
    fields = response.json()
    assert fields["username"] == "user"
    assert fields["realm"] == "api@example.org"
    assert fields["uri"] == "/private/resource?page=2"
    assert fields["algorithm"] == algorithm
    assert fields["opaque"] == "xyz"
    if qop is None:
        assert {"qop", "nc", "cnonce"}.isdisjoint(fields)
    else:
        assert fields["qop"] == "auth"
        assert fields["nc"] == "00000001"
        assert len(fields["cnonce"]) == 16


def test_digest_auth_header_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tokens unquoted, strings quoted, in httpx's order."""
    monkeypatch.setattr(DigestAuth, "_get_client_nonce", lambda self, nc, nonce: b"0a4f113b")
    server = DigestServer(algorithm="SHA-256")
    with loopfree.Client(transport=MockTransport(server)) as client:
        client.get("https://example.org/dir/index.html", auth=DigestAuth("Mufasa", "password123"))
    header = server.authorizations[1]
    assert header is not None
    fields = parse_digest(header)
    assert header == (
        'Digest username="Mufasa", realm="api@example.org", '
        'nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", '
        f'response="{fields["response"]}", algorithm=SHA-256, opaque="xyz", '
        'qop=auth, nc=00000001, cnonce="0a4f113b"'
    )


def test_digest_auth_wrong_password_gives_the_second_401() -> None:
    server = DigestServer(password="other")
    with loopfree.Client(transport=MockTransport(server)) as client:
        response = client.get(URL, auth=DigestAuth("user", "password123"))
    assert response.status_code == 401
    assert len(server.requests) == 2


def test_digest_auth_reuses_the_challenge_with_a_growing_nonce_count() -> None:
    server = DigestServer()
    auth = DigestAuth("user", "password123")
    with loopfree.Client(transport=MockTransport(server)) as client:
        first = client.get(URL, auth=auth)
        second = client.get(URL, auth=auth)
    assert first.json()["nc"] == "00000001"
    # The remembered challenge authenticates the next request up front.
    assert second.history == []
    assert second.json()["nc"] == "00000002"
    assert len(server.requests) == 3


def test_digest_auth_client_nonce_is_overridable(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, bytes]] = []

    def fixed(self: DigestAuth, nonce_count: int, nonce: bytes) -> bytes:
        calls.append((nonce_count, nonce))
        return b"fixedcnonce"

    monkeypatch.setattr(DigestAuth, "_get_client_nonce", fixed)
    server = DigestServer()
    with loopfree.Client(transport=MockTransport(server)) as client:
        response = client.get(URL, auth=DigestAuth("user", "password123"))
    assert response.json()["cnonce"] == "fixedcnonce"
    assert calls == [(1, server.nonce.encode())]


def test_digest_auth_client_nonces_differ() -> None:
    auth = DigestAuth("user", "password123")
    nonces = {auth._get_client_nonce(1, b"abc") for _ in range(20)}
    assert len(nonces) == 20
    assert all(len(n) == 16 for n in nonces)


def test_digest_auth_non_401_is_returned_as_is() -> None:
    def handler(request: loopfree.Request) -> loopfree.Response:
        return loopfree.Response(200, headers={"WWW-Authenticate": DigestServer().challenge()})

    with loopfree.Client(transport=MockTransport(handler)) as client:
        response = client.get(URL, auth=DigestAuth("user", "password123"))
    assert response.status_code == 200
    assert response.history == []


@pytest.mark.parametrize("challenge", [None, 'Basic realm="x"'])
def test_digest_auth_401_without_digest_challenge_is_returned_as_is(
    challenge: str | None,
) -> None:
    requests: list[loopfree.Request] = []

    def handler(request: loopfree.Request) -> loopfree.Response:
        requests.append(request)
        headers = {} if challenge is None else {"WWW-Authenticate": challenge}
        return loopfree.Response(401, headers=headers)

    with loopfree.Client(transport=MockTransport(handler)) as client:
        response = client.get(URL, auth=DigestAuth("user", "password123"))
    assert response.status_code == 401
    assert len(requests) == 1


def test_digest_auth_picks_the_digest_challenge_among_several() -> None:
    server = DigestServer()

    def handler(request: loopfree.Request) -> loopfree.Response:
        response = server(request)
        if response.status_code == 401:
            headers = [
                ("WWW-Authenticate", 'Basic realm="x"'),
                ("WWW-Authenticate", server.challenge()),
            ]
            return loopfree.Response(401, headers=headers)
        return response

    with loopfree.Client(transport=MockTransport(handler)) as client:
        assert client.get(URL, auth=DigestAuth("user", "password123")).status_code == 200


@pytest.mark.parametrize(
    "challenge",
    [
        'Digest realm="x", qop="auth"',  # no nonce
        'Digest nonce="abc"',  # no realm
        'Digest realm="x", qop="auth,au',  # unterminated quote swallows the rest
    ],
)
def test_digest_auth_malformed_challenge(challenge: str) -> None:
    def handler(request: loopfree.Request) -> loopfree.Response:
        return loopfree.Response(401, headers={"WWW-Authenticate": challenge})

    with (
        loopfree.Client(transport=MockTransport(handler)) as client,
        pytest.raises(loopfree.ProtocolError, match="Malformed Digest"),
    ):
        client.get(URL, auth=DigestAuth("user", "password123"))


def test_digest_auth_int_only_is_not_implemented() -> None:
    server = DigestServer(qop="auth-int")
    with (
        loopfree.Client(transport=MockTransport(server)) as client,
        pytest.raises(NotImplementedError, match="auth-int"),
    ):
        client.get(URL, auth=DigestAuth("user", "password123"))


def test_digest_auth_unknown_qop_is_a_protocol_error() -> None:
    server = DigestServer(qop="quux")
    with (
        loopfree.Client(transport=MockTransport(server)) as client,
        pytest.raises(loopfree.ProtocolError, match="Unexpected qop"),
    ):
        client.get(URL, auth=DigestAuth("user", "password123"))


def test_digest_auth_forwards_cookies_set_by_the_challenge() -> None:
    server = DigestServer(extra_headers={"Set-Cookie": "session=abc123; Path=/"})
    with loopfree.Client(transport=MockTransport(server)) as client:
        response = client.get(URL, auth=DigestAuth("user", "password123"))
    assert response.status_code == 200
    assert server.requests[1].headers["Cookie"] == "session=abc123"


def test_digest_auth_bytes_credentials() -> None:
    server = DigestServer(password="p\u00e4ss")
    with loopfree.Client(transport=MockTransport(server)) as client:
        response = client.get(URL, auth=DigestAuth(b"user", "p\u00e4ss".encode()))
    assert response.status_code == 200


@pytest.mark.parametrize("library", ["asyncio", "trio"])
def test_digest_auth_async(library: str) -> None:
    server = DigestServer(algorithm="SHA-256-SESS")

    async def main() -> loopfree.Response:
        async with loopfree.AsyncClient(transport=MockTransport(server)) as client:
            return await client.get(URL, auth=DigestAuth("user", "password123"))

    response = asyncio.run(main()) if library == "asyncio" else trio.run(main)
    assert response.status_code == 200
    assert [r.status_code for r in response.history] == [401]
