"""The training loop behind ``Sequential.fit``: batches, validation, callbacks, L-BFGS."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from neurocloud.nn import losses, optim
from neurocloud.nn.callbacks import Callback, History, ProgressBar
from neurocloud.nn.validation import as_features, as_targets, positive_int

if TYPE_CHECKING:
    from neurocloud.nn.sequential import Sequential

__all__ = ["fit"]


def _sample_weight(sample_weight: Any, n: int, dtype: np.dtype, name: str) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=dtype)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one weight per row; received {w.shape}.")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"{name} must be finite, >= 0 and not all zero; received {w[:5]}...")
    return w


def _targets(model: Sequential, y: Any, n: int, loss: losses.Loss, name: str) -> np.ndarray:
    y = as_targets(y, n, model.output_dim, model.dtype, loss.sparse_target, name)
    if loss.sparse_target:
        y = losses.one_hot(y, model.output_dim, model.dtype)
    return y


def fit(
    model: Sequential,
    X: Any,
    y: Any,
    *,
    loss: str | losses.Loss = "mse",
    optimizer: str | optim.Optimizer = "adam",
    epochs: int = 1,
    batch_size: int | None = None,
    shuffle: bool = True,
    validation_split: float = 0.0,
    validation_data: Sequence[Any] | None = None,
    callbacks: Sequence[Callback] | None = None,
    verbose: int = 0,
    l2: float = 0.0,
    sample_weight: Any = None,
) -> History:
    """Train ``model`` in place; see :meth:`neurocloud.Sequential.fit` for the arguments."""
    loss_fn = losses.get(loss)
    opt = optim.get(optimizer)
    epochs = positive_int(epochs, "epochs")
    if not (isinstance(l2, (int, float)) and math.isfinite(l2) and l2 >= 0):
        raise ValueError(f"Expected l2 >= 0. Received: l2={l2!r}")
    if not (isinstance(validation_split, (int, float)) and 0 <= validation_split < 1):
        raise ValueError(
            f"Expected validation_split in [0, 1). Received: validation_split={validation_split!r}"
        )

    X = as_features(X, model.input_dim, model.dtype)
    if not model.built:
        model.build(X.shape[1])
    y = _targets(model, y, len(X), loss_fn, "y")
    sw = _sample_weight(sample_weight, len(X), model.dtype, "sample_weight")

    val: tuple[np.ndarray, np.ndarray, np.ndarray | None] | None = None
    if validation_data is not None:
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
            raise ValueError("validation_data must be a tuple (X_val, y_val[, sample_weight]).")
        Xv = as_features(validation_data[0], model.input_dim, model.dtype, "validation X")
        yv = _targets(model, validation_data[1], len(Xv), loss_fn, "validation y")
        swv = (
            None
            if len(validation_data) == 2
            else _sample_weight(
                validation_data[2], len(Xv), model.dtype, "validation sample_weight"
            )
        )
        val = (Xv, yv, swv)
    elif validation_split > 0:
        n_val = round(len(X) * validation_split)
        if n_val < 1 or n_val >= len(X):
            raise ValueError(
                f"validation_split={validation_split} leaves {n_val} validation rows out of "
                f"{len(X)}: need at least one row on each side."
            )
        perm = model.rng.permutation(len(X))
        vi, ti = perm[:n_val], perm[n_val:]
        val = (X[vi], y[vi], None if sw is None else sw[vi])
        X, y, sw = X[ti], y[ti], None if sw is None else sw[ti]

    n = len(X)
    batch = n if batch_size is None else min(positive_int(batch_size, "batch_size"), n)
    fused = model.fused_output(loss_fn)
    history = History()
    history.params = {"epochs": epochs, "batch_size": batch, "samples": n}
    hooks: list[Callback] = [history, *(callbacks or [])]
    if verbose:
        hooks.append(ProgressBar(epochs))
    model.stop_training = False
    model.stop_reason = ""  # a callback that sets stop_training may say why here
    for hook in hooks:
        hook.on_train_begin(model)

    def end_epoch(epoch: int, train_loss: float) -> None:
        logs = {"loss": train_loss}
        if val is not None:
            logs["val_loss"] = model.evaluate_loss(val[0], val[1], loss_fn, fused, val[2])
        for hook in hooks:
            hook.on_epoch_end(model, epoch, logs)
        if not math.isfinite(train_loss):
            warnings.warn(
                f"Training stopped at epoch {epoch}: the loss became {train_loss}. "
                "Lower the learning rate or standardise the inputs.",
                RuntimeWarning,
                stacklevel=3,
            )
            model.stop_training = True
            model.stop_reason = f"loss became {train_loss} at epoch {epoch + 1}"

    if opt.full_batch:
        _fit_full_batch(model, opt, X, y, sw, loss_fn, fused, l2, epochs, end_epoch)
    else:
        _fit_minibatch(model, opt, X, y, sw, loss_fn, fused, l2, epochs, batch, shuffle, end_epoch)
    history.stop_reason = model.stop_reason or _stop_reason(opt, epochs, len(history.epoch))
    for hook in hooks:
        hook.on_train_end(model)
    model.history = history
    return history


def _stop_reason(opt: optim.Optimizer, epochs: int, ran: int) -> str:
    if ran >= epochs:
        return f"reached max epochs ({epochs})"
    if opt.full_batch:
        tol, message = getattr(opt, "tol", None), getattr(opt, "message", "")
        return f"converged: {opt.name} met its tolerance tol={tol} ({message})"
    return f"stopped by a callback at epoch {ran}"


def _fit_minibatch(
    model, opt, X, y, sw, loss_fn, fused, l2, epochs, batch, shuffle, end_epoch
) -> None:
    params, grads = [model.flat_parameters()], [model.flat_gradients()]
    n = len(X)
    # With a single batch the order of rows cannot matter, so there is nothing to shuffle.
    shuffle = shuffle and batch < n
    if shuffle:
        # Each shuffled batch is gathered into the same buffers: no copy of the whole data
        # set per epoch, and the rows are still in cache when the first layer reads them.
        x_buf, y_buf = (
            np.empty((batch, X.shape[1]), X.dtype),
            np.empty((batch, *y.shape[1:]), y.dtype),
        )
        w_buf = None if sw is None else np.empty(batch, sw.dtype)
    for epoch in range(epochs):
        perm = model.rng.permutation(n) if shuffle else None
        total = 0.0
        for start in range(0, n, batch):
            stop = min(start + batch, n)
            if perm is None:
                xb, yb = X[start:stop], y[start:stop]
                swb = None if sw is None else sw[start:stop]
            else:
                rows, m = perm[start:stop], stop - start
                xb = X.take(rows, axis=0, out=x_buf[:m], mode="clip")  # valid rows: no check
                yb = y.take(rows, axis=0, out=y_buf[:m], mode="clip")
                swb = None if sw is None else sw.take(rows, out=w_buf[:m], mode="clip")
            value = model.train_step(xb, yb, loss_fn, fused, l2, swb)
            opt.step(params, grads)
            total += value * (stop - start if swb is None else float(swb.sum()))
        end_epoch(epoch, total / (n if sw is None else float(sw.sum())) + model.l2_penalty(l2))
        if model.stop_training:
            break


def _fit_full_batch(model, opt, X, y, sw, loss_fn, fused, l2, epochs, end_epoch) -> None:
    flat = model.flat_parameters()
    last = {"value": math.nan}
    iteration = {"epoch": 0}

    def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
        flat[...] = x
        value = model.train_step(X, y, loss_fn, fused, l2, sw) + model.l2_penalty(l2)
        last["value"] = value
        return value, model.flat_gradients().copy()

    def on_iteration(x: np.ndarray) -> bool:
        flat[...] = x
        end_epoch(iteration["epoch"], last["value"])
        iteration["epoch"] += 1
        return model.stop_training

    flat[...] = opt.minimize(objective, flat.copy(), max_iter=epochs, callback=on_iteration)
    if iteration["epoch"] == 0:
        # Converged before its first iteration (e.g. started at the optimum): still one entry.
        end_epoch(0, objective(flat.copy())[0])
