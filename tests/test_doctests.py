"""Every runnable example in the package's docstrings runs and prints what it shows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import warnings

import pytest
from sklearn.exceptions import ConvergenceWarning

import neurocloud

MODULES = sorted(
    info.name for info in pkgutil.walk_packages(neurocloud.__path__, prefix="neurocloud.")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    module = importlib.import_module(name)
    with warnings.catch_warnings():
        # Examples use small epoch budgets: they show the API, not converged models.
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_public_modules_have_examples():
    """The public entry points each carry at least one runnable example."""
    for name in [
        "neurocloud",
        "neurocloud.nn.sequential",
        "neurocloud.nn.layers",
        "neurocloud.nn.losses",
        "neurocloud.nn.optim",
        "neurocloud.artifact",
        "neurocloud.sklearn",
        "neurocloud.explain",
        "neurocloud.datasets",
    ]:
        finder = doctest.DocTestFinder()
        tests = finder.find(importlib.import_module(name))
        assert sum(len(t.examples) for t in tests) > 0, name
