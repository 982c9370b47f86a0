"""Data-parallel training of one ``Sequential`` on Ray workers.

Every worker runs the engine's own :class:`neurocloud.nn.training.Trainer` on a copy of
the model and of the data: the same epochs, the same shuffled batches (each copy of the
model draws the same permutations), and for each batch the gradient of its own shard
(one part of the batch per worker). The Trainer's ``gradient_hook`` then all-reduces the
shard gradients, weighted by shard size (or sample weight), so every worker holds the
gradient of the whole batch and applies the same optimizer update to the same weights.
The run equals single-process training on the same batches (to rounding: 1e-10 in
float64). Dropout draws its masks on each worker, so with dropout the runs differ.

The all-reduce is :mod:`neurocloud.ray.allreduce`'s: through one actor and Ray's object
store (``allreduce="actor"``, the default) or ``ray.util.collective``'s gloo.

>>> history = fit(model, X, y, num_workers=2, epochs=10, batch_size=256)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from neurocloud.nn import losses, optim
from neurocloud.nn.callbacks import History
from neurocloud.nn.training import Trainer, _sample_weight, targets
from neurocloud.nn.validation import as_features, as_targets, positive_int
from neurocloud.ray import allreduce as allreduce_groups
from neurocloud.ray.allreduce import CollectiveAllReduce, Member, ObjectStoreAllReduce

if TYPE_CHECKING:
    from neurocloud.nn.sequential import Sequential

__all__ = ["ShardTrainer", "TrainingWorker", "fit", "shard_bounds", "start_workers"]


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[lo, hi)`` of an ``n``-row batch that worker ``rank`` computes: the split of
    ``np.array_split`` (the first ``n % world_size`` shards one row longer).

    >>> [shard_bounds(5, r, 2) for r in range(2)]
    [(0, 3), (3, 5)]
    """
    base, extra = divmod(n, world_size)
    lo = rank * base + min(rank, extra)
    return lo, lo + base + (rank < extra)


class ShardTrainer(Trainer):
    """A :class:`Trainer` whose step computes this worker's shard of each batch, and whose
    ``gradient_hook`` sums the weighted shard gradients over every worker.

    ``epoch_total`` adds up this worker's part of the epoch's loss (loss x weight).
    """

    def __init__(self, rank: int, world_size: int, member: Any, **settings: Any) -> None:
        super().__init__(**settings, gradient_hook=self.combine)
        self.rank, self.world_size, self.member = rank, world_size, member
        self.shard_weight = 0.0
        self.epoch_total = 0.0

    def step(
        self,
        model: Sequential,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        fused_loss: bool = False,
    ) -> float:
        lo, hi = shard_bounds(len(X), self.rank, self.world_size)
        sw = None if sample_weight is None else sample_weight[lo:hi]
        self.shard_weight = float(hi - lo) if sw is None else float(sw.sum())
        if self.shard_weight == 0:  # an empty shard (a batch smaller than the group)
            model.flat_gradients()[...] = 0
            return 0.0
        value = super().step(model, X[lo:hi], y[lo:hi], sw, fused_loss)
        self.epoch_total += value * self.shard_weight
        return value

    def combine(self, flat_gradients: np.ndarray, batch_weight: float) -> None:
        """The gradient hook: this shard's gradient times its share of the batch weight,
        summed over the workers (the batch's gradient), written back in place."""
        flat_gradients *= self.shard_weight / batch_weight
        flat_gradients[...] = self.member(flat_gradients)


class TrainingWorker:
    """One worker: a copy of the model and the data, trains one epoch per call."""

    def __init__(
        self,
        model: Sequential,
        rng_state: dict[str, Any],
        X: np.ndarray,
        y: np.ndarray,
        sw: np.ndarray | None,
        rank: int,
        world_size: int,
        member: Member,
        settings: dict[str, Any],
    ) -> None:
        self.model, self.X, self.y, self.sw = model, X, y, sw
        # The model's generator (pickling restarts it: set it to the driver's) draws the
        # batches' permutations, the same on every worker and as in one process; dropout
        # masks come from a generator of the worker's own.
        model.rng.bit_generator.state = rng_state
        own = np.random.default_rng(np.random.SeedSequence(model.seed, spawn_key=(7, rank)))
        for layer in model.layers:
            layer.rng = own
        self.trainer = ShardTrainer(rank, world_size, member, **settings)

    def epoch(self, index: int) -> tuple[float, float]:
        """Train epoch ``index``; returns (this worker's loss x weight, the L2 term)."""
        trainer = self.trainer
        trainer.initial_epoch, trainer.epochs, trainer.epoch_total = index, index + 1, 0.0
        with warnings.catch_warnings():  # the driver judges the whole batch's loss
            warnings.simplefilter("ignore", RuntimeWarning)
            trainer.fit(self.model, self.X, self.y, sample_weight=self.sw)
        return trainer.epoch_total, trainer.l2_penalty(self.model)

    def state(self) -> tuple[np.ndarray, np.random.Generator, dict[str, np.ndarray]]:
        """The weights, the model's generator and the optimizer's state, for the driver."""
        model, optimizer = self.model, self.trainer.optimizer
        return model.flat_parameters().copy(), model.rng, optimizer.state_dict()


def start_workers(
    model: Sequential,
    X: np.ndarray,
    y: np.ndarray,
    sw: np.ndarray | None,
    count: int,
    num_cpus: float,
    group: ObjectStoreAllReduce | CollectiveAllReduce,
    settings: dict[str, Any],
) -> list[Any]:
    """``count`` :class:`TrainingWorker` actors, each with a copy of ``model``; the data
    goes to Ray's object store once and is shared by the workers of each node."""
    import ray

    worker_class = ray.remote(num_cpus=num_cpus)(TrainingWorker)
    data = [ray.put(a) for a in (X, y, sw)]
    rng = model.rng.bit_generator.state
    workers = [
        worker_class.remote(model, rng, *data, rank, count, group.member(rank), settings)
        for rank in range(count)
    ]
    ray.get([w.__ray_ready__.remote() for w in workers])
    return workers


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
    allreduce: str = "actor",
) -> History:
    """Train ``model`` in place on ``num_workers`` Ray workers, data-parallel; the arguments
    mean what they mean in :meth:`neurocloud.Sequential.fit` (the batches and the shuffling
    are the same), and the returned ``History`` holds the loss per epoch. ``optimizer``'s
    state afterwards is the workers' (as after ``model.fit``). ``allreduce`` is ``"actor"``
    (Ray core only) or ``"gloo"`` (``ray.util.collective``, needs PyTorch).
    """
    import ray

    num_workers = positive_int(num_workers, "num_workers")
    loss_fn, opt = losses.get(loss), optim.get(optimizer)
    if opt.full_batch:
        raise ValueError(
            f"optimizer: expected a stochastic optimizer (sgd, adam, ...); received "
            f"{type(opt).__name__}, which works on the whole data set in one process."
        )
    settings = dict(
        loss=loss_fn, optimizer=opt, epochs=epochs, batch_size=batch_size, shuffle=shuffle, l2=l2
    )
    Trainer(**settings)  # a wrong setting fails here, not in every worker
    X = as_features(X, model.input_dim, model.dtype)
    if not model.built:
        model.build(X.shape[1])
    targets(model, y, len(X), loss_fn, "y")  # checked here; the workers' Trainer encodes it
    y = as_targets(y, len(X), model.output_dim, model.dtype, loss_fn.sparse_target, "y")
    sw = _sample_weight(sample_weight, len(X), model.dtype, "sample_weight")
    total_weight = float(len(X) if sw is None else sw.sum())

    group = allreduce_groups.create(allreduce, num_workers)
    history = History()
    history.on_train_begin(model)
    workers: list[Any] = []
    try:
        workers = start_workers(model, X, y, sw, num_workers, num_cpus, group, settings)
        for epoch in range(positive_int(epochs, "epochs")):
            parts = ray.get([w.epoch.remote(epoch) for w in workers])
            train_loss = sum(part for part, _ in parts) / total_weight + parts[0][1]
            history.on_epoch_end(model, epoch, {"loss": train_loss})
            if not math.isfinite(train_loss):
                warnings.warn(
                    f"Training stopped at epoch {epoch + 1}: the loss became {train_loss}.",
                    RuntimeWarning,
                    stacklevel=2,
                )
                break
        weights, rng, state = ray.get(workers[0].state.remote())
        model.flat_parameters()[...] = weights
        model.rng.bit_generator.state = rng.bit_generator.state
        opt.load_state_dict(state)
    finally:
        for worker in workers:
            ray.kill(worker)
        group.close()
    model.history = history
    return history
