"""Every module's ``__all__`` names things that exist, and only those."""

from __future__ import annotations

import importlib
import pkgutil

import pytest

import baton

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(baton.__path__, prefix="baton.")
    if ".migrations" not in info.name and not info.name.endswith("__main__")
)


def test_there_are_modules() -> None:
    assert {"baton.model", "baton.engine.decide", "baton.audit", "baton.policy.expr"} <= set(MODULES)


@pytest.mark.parametrize("name", MODULES)
def test_all_is_accurate(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if exported is None:
        return  # packages without a public surface of their own
    assert len(exported) == len(set(exported)), f"{name}.__all__ repeats a name"
    missing = [item for item in exported if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names missing attributes: {missing}"
    assert all(not item.startswith("_") for item in exported), f"{name}.__all__ exports a private name"
