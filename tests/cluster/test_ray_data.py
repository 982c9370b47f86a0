"""Ray Data: predictions added row for row, in order, from tensors and from Parquet."""

from __future__ import annotations

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.ray import BatchPredictor, predict_batches

from .ray_helpers import upload

ray_data = pytest.importorskip("ray.data")
pq = pytest.importorskip("pyarrow.parquet")


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    model = nc.Sequential(
        [nc.layers.Dense(8, activation="tanh"), nc.layers.Dense(3)], input_dim=4, seed=3
    )
    return nc.save(model, tmp_path_factory.mktemp("models") / "wide"), model


@pytest.mark.parametrize("batch_size", [0, -1, 2.5, True])
def test_a_bad_batch_size_is_named_before_any_work(model_path, batch_size):
    with pytest.raises(ValueError, match=r"Expected batch_size to be a positive integer\. Rec"):
        predict_batches(None, model_path[0], batch_size=batch_size)


def test_predict_batches_over_from_numpy_equals_predict_in_order(ray_cluster, model_path):
    path, model = model_path
    X = np.random.default_rng(0).normal(size=(1000, 4)).astype(np.float32)
    ds = predict_batches(ray_data.from_numpy(X), path, batch_size=128, concurrency=1)
    out = ds.take_all()
    np.testing.assert_array_equal(np.stack([r["data"] for r in out]), X)
    np.testing.assert_allclose(np.stack([r["prediction"] for r in out]), model.predict(X), 1e-6)


def test_predict_batches_over_parquet_columns_equals_predict_in_order(
    ray_cluster, model_path, tmp_path
):
    import pyarrow as pa

    path, model = model_path
    X = np.random.default_rng(1).normal(size=(700, 4))
    table = pa.table({f"f{i}": X[:, i] for i in range(4)})
    for part, (start, stop) in enumerate(((0, 300), (300, 700))):
        pq.write_table(table.slice(start, stop - start), tmp_path / f"{part}.parquet")
    ds = predict_batches(ray_data.read_parquet(str(tmp_path)), path, batch_size=100, concurrency=1)
    frame = ds.to_pandas()
    np.testing.assert_array_equal(frame[[f"f{i}" for i in range(4)]].to_numpy(), X)
    np.testing.assert_allclose(np.stack(frame["prediction"]), model.predict(X), 1e-6)


def test_predict_batches_reads_the_model_from_an_s3_uri(ray_cluster, model_path, s3):
    path, model = model_path
    client, uri = s3
    upload(client, path, "data/wide")
    X = np.random.default_rng(1).normal(size=(300, 4)).astype(np.float32)
    out = predict_batches(ray_data.from_numpy(X), uri("data/wide"), concurrency=1).take_all()
    np.testing.assert_allclose(np.stack([r["prediction"] for r in out]), model.predict(X), 1e-6)


def test_predict_batches_names_a_missing_feature_column(ray_cluster, model_path):
    path, _ = model_path
    predictor = BatchPredictor(path, feature_columns=["a", "b"])
    with pytest.raises(ValueError, match=r"feature_columns: .* received \['b'\]"):
        predictor({"a": np.ones(2)})
