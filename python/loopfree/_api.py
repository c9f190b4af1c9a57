"""Top-level `request/get/post/...` and `stream`: one short-lived `Client` each."""

from __future__ import annotations

import typing
from contextlib import contextmanager

from ._client import Client
from ._config import DEFAULT_TIMEOUT_CONFIG

if typing.TYPE_CHECKING:
    from ._response import Response

__all__ = ["delete", "get", "head", "options", "patch", "post", "put", "request", "stream"]


def request(
    method: str,
    url: typing.Any,
    *,
    params: typing.Any = None,
    content: typing.Any = None,
    data: typing.Any = None,
    files: typing.Any = None,
    json: typing.Any = None,
    headers: typing.Any = None,
    cookies: typing.Any = None,
    auth: typing.Any = None,
    proxy: typing.Any = None,
    timeout: typing.Any = DEFAULT_TIMEOUT_CONFIG,
    follow_redirects: bool = False,
    verify: typing.Any = True,
    trust_env: bool = True,
) -> Response:
    """Send one request with a client that is closed afterwards."""
    with Client(
        cookies=cookies, proxy=proxy, verify=verify, timeout=timeout, trust_env=trust_env
    ) as client:
        return client.request(
            method,
            url,
            params=params,
            content=content,
            data=data,
            files=files,
            json=json,
            headers=headers,
            auth=auth,
            follow_redirects=follow_redirects,
        )


@contextmanager
def stream(
    method: str,
    url: typing.Any,
    *,
    params: typing.Any = None,
    content: typing.Any = None,
    data: typing.Any = None,
    files: typing.Any = None,
    json: typing.Any = None,
    headers: typing.Any = None,
    cookies: typing.Any = None,
    auth: typing.Any = None,
    proxy: typing.Any = None,
    timeout: typing.Any = DEFAULT_TIMEOUT_CONFIG,
    follow_redirects: bool = False,
    verify: typing.Any = True,
    trust_env: bool = True,
) -> typing.Iterator[Response]:
    """Like `request`, as a context manager that closes the response."""
    with (
        Client(
            cookies=cookies, proxy=proxy, verify=verify, timeout=timeout, trust_env=trust_env
        ) as client,
        client.stream(
            method,
            url,
            params=params,
            content=content,
            data=data,
            files=files,
            json=json,
            headers=headers,
            auth=auth,
            follow_redirects=follow_redirects,
        ) as response,
    ):
        yield response


def _without_body(method: str) -> typing.Callable[..., Response]:
    def send(url: typing.Any, **kwargs: typing.Any) -> Response:
        return request(method, url, **kwargs)

    send.__name__ = method.lower()
    send.__doc__ = f"Send a {method} request."
    return send


get = _without_body("GET")
options = _without_body("OPTIONS")
head = _without_body("HEAD")
post = _without_body("POST")
put = _without_body("PUT")
patch = _without_body("PATCH")
delete = _without_body("DELETE")
