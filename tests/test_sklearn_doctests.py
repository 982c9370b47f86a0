"""The runnable examples in the estimators', data sets' and training job's docstrings."""

from __future__ import annotations

import doctest
import importlib
import warnings

import pytest
from sklearn.exceptions import ConvergenceWarning

MODULES = [
    "neurocloud.sklearn",
    "neurocloud.sklearn._classifier",
    "neurocloud.sklearn._regressor",
    "neurocloud.sklearn._persist",
    "neurocloud.datasets",
    "neurocloud.training_job",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    with warnings.catch_warnings():
        # the examples use small epoch budgets: they show the API, not converged models
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
