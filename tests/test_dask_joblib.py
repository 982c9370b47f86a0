"""Dask's joblib backend runs GridSearchCV over the estimators with no neurocloud code:
the light alternative to Ray Tune, on a Dask cluster listening on 127.0.0.1 only."""

from __future__ import annotations

import distributed
import pytest
from sklearn.model_selection import GridSearchCV

import neurocloud as nc
from neurocloud.sklearn import NeuralNetClassifier


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_gridsearchcv_on_dask_joblib_backend_equals_local_search():
    import joblib

    data = nc.datasets.load("iris")
    grid = {"learning_rate": [1e-3, 1e-2], "hidden_layer_sizes": [(4,), (8,)]}
    estimator = NeuralNetClassifier(max_epochs=30, random_state=0)
    local = GridSearchCV(estimator, grid, cv=2).fit(data.X, data.y)
    with (
        distributed.LocalCluster(
            n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
        joblib.parallel_backend("dask"),
    ):
        on_dask = GridSearchCV(estimator, grid, cv=2, n_jobs=-1).fit(data.X, data.y)
        assert client.scheduler_info()["workers"]  # it ran on the cluster's worker
    assert on_dask.best_params_ == local.best_params_
    assert list(on_dask.cv_results_["mean_test_score"]) == list(
        local.cv_results_["mean_test_score"]
    )
