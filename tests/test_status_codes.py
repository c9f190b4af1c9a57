"""`codes` must be the same enum as `httpx.codes`."""

from __future__ import annotations

import httpx
import pytest
from loopfree import _status_codes
from loopfree._status_codes import codes


def test_same_members_as_httpx() -> None:
    ours = [(member.name, member.value, member.phrase) for member in codes]
    theirs = [(member.name, member.value, member.phrase) for member in httpx.codes]
    assert ours == theirs
    assert len(ours) == 62


def test_lower_case_aliases_are_plain_ints() -> None:
    for member in codes:
        alias = getattr(codes, member.name.lower())
        assert type(alias) is int
        assert alias == member.value == getattr(httpx.codes, member.name.lower())
    assert codes.not_found == 404  # type: ignore[attr-defined]


def test_members_are_ints() -> None:
    assert codes.NOT_FOUND == 404
    assert isinstance(codes.NOT_FOUND, int)
    assert codes(404) is codes.NOT_FOUND
    assert codes["NOT_FOUND"] is codes.NOT_FOUND
    assert str(codes.NOT_FOUND) == "404"
    assert f"{codes.OK}" == "200"
    assert repr(codes.OK) == "<codes.OK: 200>"
    assert codes.IM_A_TEAPOT.phrase == "I'm a teapot"
    with pytest.raises(ValueError):
        codes(499)


def test_classmethods_match_httpx() -> None:
    predicates = [
        "is_informational",
        "is_success",
        "is_redirect",
        "is_client_error",
        "is_server_error",
        "is_error",
    ]
    for value in range(0, 700):
        assert codes.get_reason_phrase(value) == httpx.codes.get_reason_phrase(value), value
        for name in predicates:
            ours, theirs = getattr(codes, name)(value), getattr(httpx.codes, name)(value)
            assert ours == theirs, (name, value)


def test_reason_phrases() -> None:
    assert codes.get_reason_phrase(404) == "Not Found"
    assert codes.get_reason_phrase(499) == ""
    assert codes.is_error(404)
    assert not codes.is_error(302)
    assert codes.is_redirect(codes.FOUND)


def test_all() -> None:
    assert _status_codes.__all__ == ["codes"]
