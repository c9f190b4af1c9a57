"""
`loopfree.main`: httpx's command line client, on loopfree.

    pip install 'loopfree[cli]'
    loopfree https://www.example.org -v

Same options and output as `httpx`'s CLI. click, rich and pygments are only
imported when the command runs (or is inspected), so `import loopfree` does
not need them. Differences from httpx's CLI: `-v` shows the request as sent
and every response's head, but no "* Connecting to ..." lines (the engine
does not report connection events), and response header names print
lower-case, as the engine receives them.
"""

from __future__ import annotations

import functools
import json
import sys
import typing

from ._client import Client
from ._exceptions import RequestError

if typing.TYPE_CHECKING:
    from ._response import Response

__all__ = ["main"]

_MISSING_DEPENDENCIES = (
    "The loopfree command line client could not run because the required "
    "dependencies were not installed.\n"
    "Make sure you've installed everything with: pip install 'loopfree[cli]'"
)

_OPTIONS_HELP = [
    (
        "-m, --method [cyan]METHOD",
        "Request method, such as GET, POST, PUT, PATCH, DELETE, OPTIONS, HEAD.\n"
        "[Default: GET, or POST if a request body is included]",
    ),
    ("-p, --params [cyan]<NAME VALUE> ...", "Query parameters to include in the request URL."),
    ("-c, --content [cyan]TEXT", "Byte content to include in the request body."),
    ("-d, --data [cyan]<NAME VALUE> ...", "Form data to include in the request body."),
    ("-f, --files [cyan]<NAME FILENAME> ...", "Form files to include in the request body."),
    ("-j, --json [cyan]TEXT", "JSON data to include in the request body."),
    ("-h, --headers [cyan]<NAME VALUE> ...", "Include additional HTTP headers in the request."),
    ("--cookies [cyan]<NAME VALUE> ...", "Cookies to include in the request."),
    (
        "--auth [cyan]<USER PASS>",
        "Username and password to include in the request. Specify '-' for the password "
        "to use a password prompt. Note that using --verbose/-v will expose the "
        "Authorization header, including the password encoding in a trivially "
        "reversible format.",
    ),
    (
        "--proxy [cyan]URL",
        "Send the request via a proxy. Should be the URL giving the proxy address.",
    ),
    (
        "--timeout [cyan]FLOAT",
        "Timeout value to use for network operations, such as establishing the "
        "connection, reading some data, etc... [Default: 5.0]",
    ),
    ("--follow-redirects", "Automatically follow redirects."),
    ("--no-verify", "Disable SSL verification."),
    ("--http2", "Send the request using HTTP/2, if the remote server supports it."),
    ("--download [cyan]FILE", "Save the response content as a file, rather than displaying it."),
    ("-v, --verbose", "Verbose output. Show request as well as response."),
    ("--help", "Show this message and exit."),
]


def _console() -> typing.Any:
    import rich.console

    return rich.console.Console()


def _print_help() -> None:
    import rich.table

    console = _console()
    console.print("[bold]loopfree", justify="center")
    console.print()
    console.print("A next generation HTTP client.", justify="center")
    console.print()
    console.print("Usage: [bold]loopfree[/bold] [cyan]<URL> [OPTIONS][/cyan] ", justify="left")
    console.print()
    table = rich.table.Table.grid(padding=1, pad_edge=True)
    table.add_column("Parameter", no_wrap=True, justify="left", style="bold")
    table.add_column("Description")
    for option, description in _OPTIONS_HELP:
        table.add_row(option, description)
    console.print(table)


def _print_http(text: str) -> None:
    """An HTTP head, highlighted, and the blank line after it."""
    import rich.syntax

    console = _console()
    console.print(rich.syntax.Syntax(text, "http", theme="ansi_dark", word_wrap=True))
    console.print(rich.syntax.Syntax("", "http", theme="ansi_dark", word_wrap=True))


def format_request_headers(response: Response) -> str:
    """The head of the request behind `response`, as sent."""
    request = response.request
    http2 = response.http_version == "HTTP/2"
    target = request.url.raw_path.decode("ascii")
    lines = [f"{request.method} {target} {response.http_version}"]
    for name, value in request.headers.raw:
        key = name.decode("ascii")
        lines.append(f"{key.lower() if http2 else key}: {value.decode('ascii')}")
    return "\n".join(lines)


def format_response_headers(response: Response) -> str:
    lines = [f"{response.http_version} {response.status_code} {response.reason_phrase}"]
    lines.extend(
        f"{name.decode('ascii')}: {value.decode('ascii')}" for name, value in response.headers.raw
    )
    return "\n".join(lines)


def _lexer_name(response: Response) -> str:
    import pygments.lexers  # type: ignore[import-untyped,unused-ignore]
    import pygments.util  # type: ignore[import-untyped,unused-ignore]

    content_type = response.headers.get("Content-Type")
    if content_type is None:
        return ""
    mime_type = content_type.partition(";")[0].strip()
    try:
        name: str = pygments.lexers.get_lexer_for_mimetype(mime_type).name
    except pygments.util.ClassNotFound:
        return ""
    return name


def _print_body(response: Response) -> None:
    import rich.syntax

    console = _console()
    lexer = _lexer_name(response)
    if not lexer:
        console.print(f"<{len(response.content)} bytes of binary data>")
        return
    text = response.text
    if lexer.lower() == "json":
        try:
            text = json.dumps(response.json(), indent=4)
        except ValueError:
            pass
    console.print(rich.syntax.Syntax(text, lexer, theme="ansi_dark", word_wrap=True))


def _download(response: Response, download: typing.BinaryIO) -> None:
    import rich.markup
    import rich.progress

    _console().print()
    content_length = response.headers.get("Content-Length")
    with rich.progress.Progress(
        "[progress.description]{task.description}",
        "[progress.percentage]{task.percentage:>3.0f}%",
        rich.progress.BarColumn(bar_width=None),
        rich.progress.DownloadColumn(),
        rich.progress.TransferSpeedColumn(),
    ) as progress:
        task = progress.add_task(
            f"Downloading [bold]{rich.markup.escape(download.name)}",
            total=int(content_length or 0),
            start=content_length is not None,
        )
        for chunk in response.iter_bytes():
            download.write(chunk)
            progress.update(task, completed=response.num_bytes_downloaded)


def _on_response(response: Response, verbose: bool) -> None:
    """Event hook: every hop's head, preceded by its request's with -v."""
    if verbose:
        _print_http(format_request_headers(response))
    _print_http(format_response_headers(response))


def _run(
    url: str,
    method: str | None,
    params: list[tuple[str, str]],
    content: str | None,
    data: list[tuple[str, str]],
    files: list[tuple[str, typing.BinaryIO]],
    json: typing.Any,
    headers: list[tuple[str, str]],
    cookies: list[tuple[str, str]],
    auth: tuple[str, str] | None,
    proxy: str | None,
    timeout: float,
    follow_redirects: bool,
    verify: bool,
    http2: bool,
    download: typing.BinaryIO | None,
    verbose: bool,
) -> None:
    """An HTTP command line client. Sends a request and displays the response."""
    if not method:
        method = "POST" if content or data or files or json else "GET"
    on_response: typing.Callable[..., typing.Any] = functools.partial(_on_response, verbose=verbose)
    hooks = {"response": [on_response]}
    try:
        with (
            Client(
                proxy=proxy, timeout=timeout, http2=http2, verify=verify, event_hooks=hooks
            ) as client,
            client.stream(
                method,
                url,
                # None, not []: an empty list would drop the URL's own query.
                params=list(params) or None,
                content=content,
                data=dict(data),
                files=files,
                json=json,
                headers=headers,
                cookies=dict(cookies),
                auth=auth,
                follow_redirects=follow_redirects,
            ) as response,
        ):
            if download is not None:
                _download(response, download)
            else:
                response.read()
                if response.content:
                    _print_body(response)
    except RequestError as exc:
        _console().print(f"[red]{type(exc).__name__}[/red]: {exc}")
        sys.exit(1)
    sys.exit(0 if response.is_success else 1)


def _build_command() -> typing.Any:
    import click

    def validate_json(ctx: click.Context, param: click.Parameter, value: typing.Any) -> typing.Any:
        if value is None:
            return None
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            raise click.BadParameter("Not valid JSON") from None

    def validate_auth(ctx: click.Context, param: click.Parameter, value: typing.Any) -> typing.Any:
        if value == (None, None):
            return None
        username, password = value
        if password == "-":
            password = click.prompt("Password", hide_input=True)
        return (username, password)

    def handle_help(ctx: click.Context, param: click.Parameter, value: typing.Any) -> None:
        if value and not ctx.resilient_parsing:
            _print_help()
            ctx.exit()

    pair = (str, str)
    options = [
        click.argument("url", type=str),
        click.option("--method", "-m", "method", type=str),
        click.option("--params", "-p", "params", type=pair, multiple=True),
        click.option("--content", "-c", "content", type=str),
        click.option("--data", "-d", "data", type=pair, multiple=True),
        click.option("--files", "-f", "files", type=(str, click.File(mode="rb")), multiple=True),
        click.option("--json", "-j", "json", type=str, callback=validate_json),
        click.option("--headers", "-h", "headers", type=pair, multiple=True),
        click.option("--cookies", "cookies", type=pair, multiple=True),
        click.option("--auth", "auth", type=pair, default=(None, None), callback=validate_auth),
        click.option("--proxy", "proxy", type=str, default=None),
        click.option("--timeout", "timeout", type=float, default=5.0),
        click.option("--follow-redirects", "follow_redirects", is_flag=True, default=False),
        click.option("--no-verify", "verify", is_flag=True, default=True),
        click.option("--http2", "http2", type=bool, is_flag=True, default=False),
        click.option("--download", type=click.File("wb")),
        click.option("--verbose", "-v", type=bool, is_flag=True, default=False),
        click.option(
            "--help", is_flag=True, is_eager=True, expose_value=False, callback=handle_help
        ),
    ]
    command: typing.Any = _run
    for decorator in reversed(options):
        command = decorator(command)
    return click.command(name="loopfree", add_help_option=False)(command)


class _LazyCommand:
    """
    `loopfree.main`: the click command, built on first use. Calling it runs
    the CLI; any other attribute (`main.main(args)`, `main.name`, ...) is the
    click command's, so click's `CliRunner` can invoke it.
    """

    @functools.cached_property
    def _command(self) -> typing.Any:
        return _build_command()

    def __call__(self, *args: typing.Any, **kwargs: typing.Any) -> typing.Any:
        try:
            command = self._command
        except ImportError:
            print(_MISSING_DEPENDENCIES)
            sys.exit(1)
        return command(*args, **kwargs)

    def __getattr__(self, name: str) -> typing.Any:
        if name.startswith("__") or name == "_command":
            raise AttributeError(name)
        return getattr(self._command, name)

    def __repr__(self) -> str:
        return "<loopfree command line client (loopfree.main)>"


main = _LazyCommand()
