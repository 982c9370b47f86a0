"""scikit-learn's own estimator checks: the default estimators pass all of them."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from neurocloud.sklearn import NeuralNetClassifier, NeuralNetRegressor

# The default estimators, exactly as users construct them: dtype="auto" computes in float64
# for the checks' float64 data, so every check passes with no expected failure.
DEFAULTS = [NeuralNetClassifier(), NeuralNetRegressor()]

# Explicit float32 (small networks keep the ~60 checks per instance fast; the learning rate
# is raised so that the checks' accuracy thresholds are met within that budget). Two checks
# demand agreement to 1e-7, below float32's resolution (eps = 1.2e-7):
# - fitting with integer sample_weight equals fitting on repeated rows, but the two sums run
#   in a different order, so the float32 results differ in the 6th-7th digit;
# - a subset's predictions equal the whole set's rows, but BLAS may round a row by the size
#   of its batch: OpenBLAS's AVX2 (Haswell) sgemm does (4 float32 ulps on one row of 60, on
#   AMD EPYC), its AVX-512 (SkylakeX) one did not, so there this check passes (XPASS).
SMALL = {"hidden_layer_sizes": (16,), "max_epochs": 30, "learning_rate": 0.02}
FLOAT32 = [
    NeuralNetClassifier(**SMALL, dtype="float32"),
    NeuralNetRegressor(**SMALL, dtype="float32"),
]
FLOAT32_PRECISION = {
    "check_sample_weight_equivalence_on_dense_data": "float32 rounding (rtol 1e-7 asked)",
    "check_methods_subset_invariance": "float32 rounding by batch size (rtol 1e-7 asked)",
}


def expected_failures(estimator):
    return FLOAT32_PRECISION if estimator.dtype == "float32" else {}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(DEFAULTS + FLOAT32, expected_failed_checks=expected_failures)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
