"""The public surface: exactly httpx's names where we have them, sorted like httpx."""

import types

import httpx
import loopfree


def test_all_lists_every_public_name_sorted_case_insensitively():
    # Submodules (loopfree.contrib after its import) are attributes, not exports.
    public = {
        name
        for name, value in vars(loopfree).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType)
    }
    exported = {name for name in loopfree.__all__ if not name.startswith("__")}
    assert exported == public
    assert loopfree.__all__ == sorted(loopfree.__all__, key=str.casefold)


def test_public_names_are_httpx_names():
    extra = set(loopfree.__all__) - set(httpx.__all__)
    # FunctionAuth is public in loopfree only; httpx keeps it in httpx._auth.
    assert extra == {"FunctionAuth"}


def test_public_classes_report_the_package_module():
    for name in loopfree.__all__:
        obj = getattr(loopfree, name)
        if isinstance(obj, type):
            assert obj.__module__ == "loopfree", name
