"""`loopfree.main`: httpx's command line client, run with click's CliRunner."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import typing

import loopfree
import loopfree._main
import pytest
from click.testing import CliRunner

VERSION = loopfree.__version__


def invoke(*args: str) -> tuple[int, list[str]]:
    result = CliRunner().invoke(loopfree.main, list(args))
    lines = [line.strip() for line in result.output.splitlines()]
    return result.exit_code, [line for line in lines if not line.startswith("date:")]


def response_head(status: str, content_type: str, length: int, *extra: str) -> list[str]:
    return [
        f"HTTP/1.1 {status}",
        "server: uvicorn",
        f"content-type: {content_type}",
        *extra,
        f"content-length: {length}",
        "",
    ]


def request_head(server: typing.Any, path: str, *extra: str) -> list[str]:
    return [
        f"GET {path} HTTP/1.1",
        f"Host: {server.netloc}",
        "Accept: */*",
        "Accept-Encoding: gzip, deflate, br, zstd",
        "Connection: keep-alive",
        f"User-Agent: python-httpx/{VERSION}",
        *extra,
        "",
    ]


TEXT = "text/plain; charset=utf-8"


def body_json(lines: list[str]) -> typing.Any:
    """The JSON body printed after the response head."""
    return json.loads("\n".join(lines[lines.index("") + 1 :]))


def test_help() -> None:
    code, lines = invoke("--help")
    assert code == 0
    assert "A next generation HTTP client." in lines
    assert any(line.startswith("--follow-redirects") for line in lines)


def test_get(server: typing.Any) -> None:
    assert invoke(server.url) == (0, [*response_head("200 OK", TEXT, 13), "Hello, world!"])


def test_json_is_pretty_printed(server: typing.Any) -> None:
    code, lines = invoke(f"{server.url}/json")
    assert code == 0
    assert lines == [
        *response_head("200 OK", "application/json", 19),
        "{",
        '"Hello": "world!"',
        "}",
    ]


def test_binary_and_query_string(server: typing.Any) -> None:
    code, lines = invoke(f"{server.url}/bytes?n=10")
    assert code == 0
    assert lines[-1] == "<10 bytes of binary data>"
    code, lines = invoke(f"{server.url}/bytes", "-p", "n", "20")
    assert lines[-1] == "<20 bytes of binary data>"


def test_redirect_not_followed_exits_1(server: typing.Any) -> None:
    assert invoke(f"{server.url}/redirect_301") == (
        1,
        response_head("301 Moved Permanently", TEXT, 0, "location: /"),
    )


def test_follow_redirects_shows_every_hop(server: typing.Any) -> None:
    code, lines = invoke(f"{server.url}/redirect_301", "--follow-redirects")
    assert code == 0
    assert lines == [
        *response_head("301 Moved Permanently", TEXT, 0, "location: /"),
        *response_head("200 OK", TEXT, 13),
        "Hello, world!",
    ]


def test_post_json_and_form(server: typing.Any) -> None:
    code, lines = invoke(f"{server.url}/echo_body", "-m", "POST", "-j", '{"hello": "world"}')
    assert code == 0
    assert lines[-3:] == ["{", '"hello": "world"', "}"]
    # A body without -m means POST.
    code, lines = invoke(f"{server.url}/echo_method", "-d", "a", "1")
    assert code == 0
    assert body_json(lines) == {"method": "POST", "body": "a=1"}


def test_verbose_and_auth(server: typing.Any) -> None:
    code, lines = invoke(server.url, "-v", "--auth", "username", "password")
    assert code == 0
    assert lines == [
        *request_head(server, "/", "Authorization: Basic dXNlcm5hbWU6cGFzc3dvcmQ="),
        *response_head("200 OK", TEXT, 13),
        "Hello, world!",
    ]


def test_headers_and_cookies(server: typing.Any) -> None:
    code, lines = invoke(f"{server.url}/echo_headers", "-h", "X-Test", "yes", "--cookies", "c", "1")
    assert code == 0
    echoed = body_json(lines)
    assert echoed["x-test"] == "yes"
    assert echoed["cookie"] == "c=1"


def test_download(server: typing.Any, tmp_path: pathlib.Path) -> None:
    target = tmp_path / "out"
    code, _ = invoke(f"{server.url}/bytes?n=5000", "--download", str(target))
    assert code == 0
    assert len(target.read_bytes()) == 5000


def test_errors(closed_port: int) -> None:
    assert invoke("invalid://example.org") == (
        1,
        ["UnsupportedProtocol: Request URL has an unsupported protocol 'invalid://'."],
    )
    code, lines = invoke(f"http://127.0.0.1:{closed_port}/")
    assert code == 1
    assert lines[0].startswith("ConnectError: ")


def test_cli_dependencies_are_imported_lazily() -> None:
    code = (
        "import sys, loopfree; "
        "assert not {'click', 'rich', 'pygments'} & set(sys.modules), sys.modules.keys(); "
        "print(repr(loopfree.main), loopfree.main.name)"
    )
    output = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "error"},
    ).stdout
    assert output.strip() == "<loopfree command line client (loopfree.main)> loopfree"


def test_missing_dependencies_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def missing() -> typing.NoReturn:
        raise ImportError("No module named 'click'")

    monkeypatch.setattr(loopfree._main, "_build_command", missing)
    with pytest.raises(SystemExit) as info:
        loopfree._main._LazyCommand()(["https://example.org"])
    assert info.value.code == 1
    assert "pip install 'loopfree[cli]'" in capsys.readouterr().out
