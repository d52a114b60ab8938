"""Every docstring example in the package runs and prints what it says (the examples are the
documentation of each pass; a stale one misleads)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import policystrata

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(policystrata.__path__, prefix="policystrata.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0, f"{result.failed} docstring example(s) of {name} failed"
