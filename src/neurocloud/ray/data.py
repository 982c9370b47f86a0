"""Ray Data: score a large data set with a saved model, in actors spread over a cluster.

>>> import ray  # doctest: +SKIP
>>> ds = ray.data.read_parquet("s3://bucket/rows/")  # doctest: +SKIP
>>> predict_batches(ds, "models/digits").write_parquet("s3://bucket/scored/")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from neurocloud.nn.validation import positive_int

__all__ = ["DEFAULT_NUM_CPUS", "BatchPredictor", "predict_batches"]

# Half a CPU per actor leaves room for the tasks that read the data: at one CPU each, as
# many actors as CPUs held every CPU and the reads never ran.
DEFAULT_NUM_CPUS = 0.5


class BatchPredictor:
    """Loads the model at ``path`` (a folder, or a URI copied to this node) once, then
    adds its predictions to every batch.

    A batch is a dict of NumPy columns (Ray Data's ``"numpy"`` format). The input is the
    one 2-D tensor column when there is one (``ray.data.from_numpy``'s ``"data"``), else the
    ``feature_columns`` (default: every column but the output) side by side, in order. The
    predictions go to ``output_column``: one value per row for a one-output model, else a
    row of outputs.

    >>> import tempfile, neurocloud as nc
    >>> path = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0),
    ...                tempfile.mkdtemp() + "/m")
    >>> out = BatchPredictor(path)({"a": np.ones(3), "b": np.zeros(3)})
    >>> out["prediction"].shape
    (3,)
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        output_column: str = "prediction",
        feature_columns: Sequence[str] | None = None,
    ) -> None:
        from neurocloud.artifact import load_artifact
        from neurocloud.ray.uri import local_path

        self.model = load_artifact(local_path(path)).model
        self.output_column = output_column
        self.feature_columns = None if feature_columns is None else list(feature_columns)

    def features(self, batch: dict[str, np.ndarray]) -> np.ndarray:
        """The model's input rows in ``batch``; a clear error when there are none."""
        names = self.feature_columns or [c for c in batch if c != self.output_column]
        missing = [c for c in names if c not in batch]
        if missing:
            raise ValueError(
                f"feature_columns: expected columns of the data set; received {missing}, "
                f"and the batch has {list(batch)}."
            )
        if len(names) == 1 and np.asarray(batch[names[0]]).ndim == 2:
            return np.asarray(batch[names[0]])
        columns = [np.asarray(batch[c]) for c in names]
        if any(c.ndim != 1 for c in columns):
            raise ValueError(
                "Expected one 2-D tensor column or 1-D numeric columns; received columns "
                f"{names} with shapes {[c.shape for c in columns]}."
            )
        return np.column_stack(columns)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        out = self.model.predict(self.features(batch))
        batch[self.output_column] = out[:, 0] if out.shape[1] == 1 else out
        return batch


def predict_batches(
    dataset: Any,
    path: str | os.PathLike[str],
    *,
    batch_size: int = 4096,
    concurrency: int | tuple[int, int] | None = None,
    num_cpus: float | None = None,
    output_column: str = "prediction",
    feature_columns: Sequence[str] | None = None,
) -> Any:
    """``dataset`` (a ``ray.data.Dataset``) with the predictions of the model at ``path``
    added as ``output_column``, row for row and in order.

    The model is loaded once per actor (:class:`BatchPredictor`); ``concurrency`` actors
    (default: Ray's autoscaling pool) each take ``num_cpus`` CPUs (default 0.5).
    ``path`` must be readable from every node: shared storage, or a URI
    (``s3://bucket/models/digits``) that each actor copies to its node's cache.

    >>> import ray  # doctest: +SKIP
    >>> predict_batches(ray.data.from_numpy(X), "models/seed").to_pandas()  # doctest: +SKIP
    """
    from neurocloud.artifact import load_artifact
    from neurocloud.ray.uri import local_path

    load_artifact(local_path(path))  # a missing or broken model fails here, not in every actor
    positive_int(batch_size, "batch_size")
    dataset.context.execution_options.preserve_order = True
    return dataset.map_batches(
        BatchPredictor,
        fn_constructor_args=(os.fspath(path),),
        fn_constructor_kwargs={"output_column": output_column, "feature_columns": feature_columns},
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=concurrency,
        num_cpus=DEFAULT_NUM_CPUS if num_cpus is None else num_cpus,
    )
