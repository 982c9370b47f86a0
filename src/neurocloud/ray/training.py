"""Data-parallel training of one ``Sequential`` on Ray workers.

Every batch is split into one shard per worker. Each worker holds a copy of the model,
computes the gradient of the loss on its shard, and sends it back; the driver averages the
gradients weighted by shard size (or sample weight), applies one optimizer update and sends
the new weights to every worker. The averaged gradient is the gradient of the whole batch,
so the run equals single-process training on the same batches (to rounding: 1e-10 in
float64). Dropout draws its masks on each worker, so with dropout the runs differ.

The workers are Ray actors and the driver reduces (a parameter server): per step that is
one gradient per worker in, one weight vector out, through Ray's object store.

>>> history = fit(model, X, y, num_workers=2, epochs=10, batch_size=256)  # doctest: +SKIP
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from neurocloud.nn import losses, optim
from neurocloud.nn.callbacks import History
from neurocloud.nn.training import Trainer, _sample_weight, fused, targets
from neurocloud.nn.validation import as_features, positive_int

__all__ = ["GradientWorker", "fit", "start_workers", "step"]


class GradientWorker:
    """One worker: a copy of the model and the data set; answers shard gradients."""

    def __init__(self, model: Any, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None) -> None:
        self.model, self.X, self.y, self.sw = model, X, y, sw

    def gradient(
        self, rows: np.ndarray, weights: np.ndarray, trainer: Trainer
    ) -> tuple[np.ndarray, float, float]:
        """Set the model's weights, then return (gradient, loss, shard weight) for ``rows``."""
        model = self.model
        model.flat_parameters()[...] = weights
        sw = None if self.sw is None else self.sw[rows]
        fused_loss = fused(model, trainer.loss_fn)
        value = trainer.step(model, self.X[rows], self.y[rows], sw, fused_loss)
        weight = float(len(rows)) if sw is None else float(sw.sum())
        return model.flat_gradients(), value, weight


def _shards(rows: np.ndarray, num_workers: int) -> list[np.ndarray]:
    return [s for s in np.array_split(rows, num_workers) if len(s)]


def fit(
    model: Any,
    X: Any,
    y: Any,
    *,
    num_workers: int = 2,
    loss: str | losses.Loss = "mse",
    optimizer: str | optim.Optimizer = "adam",
    epochs: int = 1,
    batch_size: int | None = None,
    shuffle: bool = True,
    l2: float = 0.0,
    sample_weight: Any = None,
    num_cpus: float = 1,
) -> History:
    """Train ``model`` in place on ``num_workers`` Ray workers, data-parallel; the arguments
    mean what they mean in :meth:`neurocloud.Sequential.fit` (the batches and the shuffling
    are the same), and the returned ``History`` holds the loss per epoch.
    """
    import ray

    num_workers = positive_int(num_workers, "num_workers")
    loss_fn, opt = losses.get(loss), optim.get(optimizer)
    if opt.full_batch:
        raise ValueError(
            f"optimizer: expected a stochastic optimizer (sgd, adam, ...); received "
            f"{type(opt).__name__}, which works on the whole data set in one process."
        )
    epochs = positive_int(epochs, "epochs")
    X = as_features(X, model.input_dim, model.dtype)
    if not model.built:
        model.build(X.shape[1])
    y = targets(model, y, len(X), loss_fn, "y")
    sw = _sample_weight(sample_weight, len(X), model.dtype, "sample_weight")
    n = len(X)
    batch = n if batch_size is None else min(positive_int(batch_size, "batch_size"), n)
    shuffle = shuffle and batch < n

    trainer = Trainer(loss=loss_fn, l2=l2)  # the engine's own batch step, on every worker
    workers = start_workers(model, X, y, sw, num_workers, num_cpus)
    params, grads = [model.flat_parameters()], [model.flat_gradients()]
    history = History()
    history.on_train_begin(model)
    try:
        for epoch in range(epochs):
            order = model.rng.permutation(n) if shuffle else np.arange(n)
            total = 0.0
            for start in range(0, n, batch):
                value, weight = step(workers, order[start : start + batch], model, trainer)
                opt.step(params, grads)
                total += value * weight
            train_loss = total / (n if sw is None else float(sw.sum())) + trainer.l2_penalty(model)
            history.on_epoch_end(model, epoch, {"loss": train_loss})
            if not math.isfinite(train_loss):
                break
    finally:
        for worker in workers:
            ray.kill(worker)
    model.history = history
    return history


def start_workers(
    model: Any, X: np.ndarray, y: np.ndarray, sw: np.ndarray | None, count: int, num_cpus: float
) -> list[Any]:
    """``count`` :class:`GradientWorker` actors, each with a copy of ``model``; the data
    goes to Ray's object store once and is shared by the workers of each node."""
    import ray

    worker_class = ray.remote(num_cpus=num_cpus)(GradientWorker)
    data = [ray.put(a) for a in (X, y, sw)]
    workers = [worker_class.remote(model, *data) for _ in range(count)]
    ray.get([w.__ray_ready__.remote() for w in workers])
    return workers


def step(workers: list[Any], rows: np.ndarray, model: Any, trainer: Trainer):
    """One batch: shard gradients from the workers, their weighted mean into the model's
    gradient buffer (what the optimizer reads). Returns the batch's loss and weight.

    This is the one place that exchanges gradients. The reduction runs on the driver, which
    holds the only optimizer; the engine's ``Trainer.gradient_hook`` is the place for an
    all-reduce when each worker runs its own training loop instead."""
    import ray

    weights = ray.put(model.flat_parameters())
    shards = _shards(rows, len(workers))
    results = ray.get([w.gradient.remote(s, weights, trainer) for w, s in zip(workers, shards)])
    total = sum(weight for _, _, weight in results)
    gradient = model.flat_gradients()
    gradient[...] = 0
    for shard_gradient, _, weight in results:
        gradient += shard_gradient * (weight / total)
    value = sum(v * weight for _, v, weight in results) / total
    return value, total
