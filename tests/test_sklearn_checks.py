"""scikit-learn's own estimator checks, run on both estimators in both precisions."""

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from neurocloud.sklearn import NeuralNetClassifier, NeuralNetRegressor

# Small networks and epoch budgets keep the ~60 checks per instance fast; the learning rate
# is raised so that the checks' accuracy thresholds are met within that budget.
SMALL = {"hidden_layer_sizes": (16,), "max_epochs": 30, "learning_rate": 0.02}
INSTANCES = [
    NeuralNetClassifier(**SMALL, dtype="float64"),
    NeuralNetRegressor(**SMALL, dtype="float64"),
    NeuralNetClassifier(**SMALL),
    NeuralNetRegressor(**SMALL),
]

# float64 passes every check. In float32 (the engine's default) two checks demand
# agreement to 1e-7, below float32's resolution (eps = 1.2e-7):
FLOAT32_PRECISION = {
    # fitting with integer sample_weight equals fitting on repeated rows, but the two sums
    # run in a different order, so the float32 results differ in the 6th-7th digit;
    # the float64 instances above pass this check.
    "check_sample_weight_equivalence_on_dense_data": "float32 rounding (rtol 1e-7 asked)",
    # predicting one row or twenty runs different BLAS kernels (gemv vs gemm), whose float32
    # results can differ by one unit in the last place (about 1.2e-7 for outputs near 1).
    "check_methods_subset_invariance": "float32 rounding (atol 1e-7 asked)",
}


def expected_failures(estimator):
    return FLOAT32_PRECISION if estimator.dtype == "float32" else {}


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@parametrize_with_checks(INSTANCES, expected_failed_checks=expected_failures, xfail_strict=False)
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)
