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


def get(
    url: typing.Any,
    *,
    params: typing.Any = None,
    headers: typing.Any = None,
    cookies: typing.Any = None,
    auth: typing.Any = None,
    proxy: typing.Any = None,
    follow_redirects: bool = False,
    verify: typing.Any = True,
    timeout: typing.Any = DEFAULT_TIMEOUT_CONFIG,
    trust_env: bool = True,
) -> Response:
    """Send a GET request; see `request()` for the parameters."""
    return request(
        "GET",
        url,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        proxy=proxy,
        follow_redirects=follow_redirects,
        verify=verify,
        timeout=timeout,
        trust_env=trust_env,
    )


def options(
    url: typing.Any,
    *,
    params: typing.Any = None,
    headers: typing.Any = None,
    cookies: typing.Any = None,
    auth: typing.Any = None,
    proxy: typing.Any = None,
    follow_redirects: bool = False,
    verify: typing.Any = True,
    timeout: typing.Any = DEFAULT_TIMEOUT_CONFIG,
    trust_env: bool = True,
) -> Response:
    """Send a OPTIONS request; see `request()` for the parameters."""
    return request(
        "OPTIONS",
        url,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        proxy=proxy,
        follow_redirects=follow_redirects,
        verify=verify,
        timeout=timeout,
        trust_env=trust_env,
    )


def head(
    url: typing.Any,
    *,
    params: typing.Any = None,
    headers: typing.Any = None,
    cookies: typing.Any = None,
    auth: typing.Any = None,
    proxy: typing.Any = None,
    follow_redirects: bool = False,
    verify: typing.Any = True,
    timeout: typing.Any = DEFAULT_TIMEOUT_CONFIG,
    trust_env: bool = True,
) -> Response:
    """Send a HEAD request; see `request()` for the parameters."""
    return request(
        "HEAD",
        url,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        proxy=proxy,
        follow_redirects=follow_redirects,
        verify=verify,
        timeout=timeout,
        trust_env=trust_env,
    )


def post(
    url: typing.Any,
    *,
    content: typing.Any = None,
    data: typing.Any = None,
    files: typing.Any = None,
    json: typing.Any = None,
    params: typing.Any = None,
    headers: typing.Any = None,
    cookies: typing.Any = None,
    auth: typing.Any = None,
    proxy: typing.Any = None,
    follow_redirects: bool = False,
    verify: typing.Any = True,
    timeout: typing.Any = DEFAULT_TIMEOUT_CONFIG,
    trust_env: bool = True,
) -> Response:
    """Send a POST request; see `request()` for the parameters."""
    return request(
        "POST",
        url,
        content=content,
        data=data,
        files=files,
        json=json,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        proxy=proxy,
        follow_redirects=follow_redirects,
        verify=verify,
        timeout=timeout,
        trust_env=trust_env,
    )


def put(
    url: typing.Any,
    *,
    content: typing.Any = None,
    data: typing.Any = None,
    files: typing.Any = None,
    json: typing.Any = None,
    params: typing.Any = None,
    headers: typing.Any = None,
    cookies: typing.Any = None,
    auth: typing.Any = None,
    proxy: typing.Any = None,
    follow_redirects: bool = False,
    verify: typing.Any = True,
    timeout: typing.Any = DEFAULT_TIMEOUT_CONFIG,
    trust_env: bool = True,
) -> Response:
    """Send a PUT request; see `request()` for the parameters."""
    return request(
        "PUT",
        url,
        content=content,
        data=data,
        files=files,
        json=json,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        proxy=proxy,
        follow_redirects=follow_redirects,
        verify=verify,
        timeout=timeout,
        trust_env=trust_env,
    )


def patch(
    url: typing.Any,
    *,
    content: typing.Any = None,
    data: typing.Any = None,
    files: typing.Any = None,
    json: typing.Any = None,
    params: typing.Any = None,
    headers: typing.Any = None,
    cookies: typing.Any = None,
    auth: typing.Any = None,
    proxy: typing.Any = None,
    follow_redirects: bool = False,
    verify: typing.Any = True,
    timeout: typing.Any = DEFAULT_TIMEOUT_CONFIG,
    trust_env: bool = True,
) -> Response:
    """Send a PATCH request; see `request()` for the parameters."""
    return request(
        "PATCH",
        url,
        content=content,
        data=data,
        files=files,
        json=json,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        proxy=proxy,
        follow_redirects=follow_redirects,
        verify=verify,
        timeout=timeout,
        trust_env=trust_env,
    )


def delete(
    url: typing.Any,
    *,
    params: typing.Any = None,
    headers: typing.Any = None,
    cookies: typing.Any = None,
    auth: typing.Any = None,
    proxy: typing.Any = None,
    follow_redirects: bool = False,
    timeout: typing.Any = DEFAULT_TIMEOUT_CONFIG,
    verify: typing.Any = True,
    trust_env: bool = True,
) -> Response:
    """Send a DELETE request; see `request()` for the parameters."""
    return request(
        "DELETE",
        url,
        params=params,
        headers=headers,
        cookies=cookies,
        auth=auth,
        proxy=proxy,
        follow_redirects=follow_redirects,
        timeout=timeout,
        verify=verify,
        trust_env=trust_env,
    )
