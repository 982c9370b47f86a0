"""The runnable examples in neurocloud.explain's docstrings run and print what they show."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "neurocloud.explain",
    "neurocloud.explain.agnostic",
    "neurocloud.explain.core",
    "neurocloud.explain.gradients",
    "neurocloud.explain.integrated",
    "neurocloud.explain.kinks",
    "neurocloud.explain.plot",
    "neurocloud.explain.result",
    "neurocloud.explain.serving",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
