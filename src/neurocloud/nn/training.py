"""The training loop: :class:`Trainer` owns the step, the loss, L2, callbacks and stopping.

``Sequential.fit`` builds a ``Trainer`` from its arguments and calls :meth:`Trainer.fit`;
the model only builds and runs its layers. A data-parallel trainer plugs in through
``gradient_hook``, which sees each batch's gradient before the update (to all-reduce it).

>>> import numpy as np, neurocloud as nc
>>> model = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
>>> trainer = Trainer(loss="mse", optimizer=nc.optim.SGD(lr=0.1), epochs=3)
>>> trainer.fit(model, [[0.0], [1.0]], [0.0, 2.0]).stop_reason
'reached max epochs (3)'
"""

from __future__ import annotations

import math
import signal
import threading
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from neurocloud.nn import losses, optim
from neurocloud.nn.callbacks import Callback, History, ProgressBar
from neurocloud.nn.validation import as_features, as_targets, check_number, positive_int

if TYPE_CHECKING:
    from neurocloud.nn.sequential import Sequential

__all__ = ["Trainer", "evaluate", "targets"]

#: ``gradient_hook(flat_gradients, batch_weight)``: may change the gradients in place
GradientHook = Callable[[np.ndarray, float], None]


def _sample_weight(sample_weight: Any, n: int, dtype: np.dtype, name: str) -> np.ndarray | None:
    if sample_weight is None:
        return None
    w = np.asarray(sample_weight, dtype=dtype)
    if w.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), one weight per row; received {w.shape}.")
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise ValueError(f"{name} must be finite, >= 0 and not all zero; received {w[:5]}...")
    return w


def targets(model: Sequential, y: Any, n: int, loss: losses.Loss, name: str = "y") -> np.ndarray:
    """``y`` checked against the model's outputs, one-hot for sparse-label losses."""
    y = as_targets(y, n, model.output_dim, model.dtype, loss.sparse_target, name)
    if loss.sparse_target:
        y = losses.one_hot(y, model.output_dim, model.dtype)
    return y


def fused(model: Sequential, loss: losses.Loss) -> bool:
    """Whether ``loss`` is computed from the logits of the model's last activation."""
    act = model.layers[-1].activation
    return act is not None and act.fuses_with_logits and loss.logits_activation == act.name


def evaluate(model: Sequential, X: Any, y: Any, loss: str | losses.Loss = "mse") -> float:
    """Mean ``loss`` of the model's predictions on ``(X, y)`` (see ``Sequential.evaluate``)."""
    loss_fn = losses.get(loss)
    X = as_features(X, model.input_dim, model.dtype)
    return _loss_value(model, X, targets(model, y, len(X), loss_fn), loss_fn, None)


def _loss_value(model, X, y, loss: losses.Loss, sample_weight) -> float:
    if fused(model, loss):
        return loss.value_from_logits(y, model.forward(X, logits=True), sample_weight)
    return loss.value(y, model.forward(X), sample_weight)


class _Interrupt:
    """While training, the first Ctrl-C sets ``seen`` (the loop stops after the batch it is
    in, weights and optimizer state consistent); a second one interrupts at once. Only
    where Python's own SIGINT handler is installed, in the main thread."""

    __slots__ = ("installed", "seen")

    def __init__(self) -> None:
        self.seen = False
        self.installed = (
            threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.default_int_handler
        )
        if self.installed:
            signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        self.seen = True
        signal.signal(signal.SIGINT, signal.default_int_handler)

    def close(self) -> None:
        if self.installed:
            signal.signal(signal.SIGINT, signal.default_int_handler)


@dataclass
class Trainer:
    """The settings of one training run, and the loop that runs them.

    ``optimizer`` is a step rule (``nc.optim.Adam``...) or the full-batch minimizer
    ``nc.optim.LBFGS``. ``l2`` adds ``0.5 * l2 * ||kernel||^2`` to the loss.
    ``initial_epoch`` continues a run: epochs are numbered from it, training ends at
    ``epochs``. ``gradient_hook(flat_gradients, batch_weight)`` runs after each batch's
    backward pass (batch weight: its row count, or the sum of its sample weights) and may
    change the gradients in place before the update: a data-parallel trainer all-reduces
    them there.

    The first Ctrl-C (in the main thread) stops after the current batch; ``fit`` then
    returns normally, callbacks' ``on_train_end`` run, ``stop_reason`` is "interrupted at
    epoch N". A ``KeyboardInterrupt`` that arrives anyway (another SIGINT handler, a second
    Ctrl-C) runs ``on_train_end`` too, sets ``model.history`` and is re-raised.
    Epochs in messages count from 1; ``History.epoch`` holds 0-based indices.
    """

    loss: str | losses.Loss = "mse"
    optimizer: str | optim.Optimizer | optim.LBFGS = "adam"
    epochs: int = 1
    batch_size: int | None = None
    shuffle: bool = True
    l2: float = 0.0
    callbacks: Sequence[Callback] = ()
    verbose: int = 0
    initial_epoch: int = 0
    gradient_hook: GradientHook | None = None
    loss_fn: losses.Loss = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.loss_fn = losses.get(self.loss)
        self.optimizer = optim.get(self.optimizer)
        self.epochs = positive_int(self.epochs, "epochs")
        self.l2 = check_number(self.l2, "l2", low=0)
        self.initial_epoch = check_number(self.initial_epoch, "initial_epoch", low=0, integer=True)
        if self.batch_size is not None:
            self.batch_size = positive_int(self.batch_size, "batch_size")
        for hook in self.callbacks:
            if not isinstance(hook, Callback):
                raise TypeError(
                    f"Expected callbacks to be nc.callbacks.Callback instances. Received: {hook!r}"
                )

    # --- one batch --------------------------------------------------------------------
    def step(
        self,
        model: Sequential,
        X: np.ndarray,
        y: np.ndarray,
        sample_weight: np.ndarray | None = None,
        fused_loss: bool = False,
    ) -> float:
        """One forward and backward pass on a batch: fills the model's gradients (L2
        included) and returns the batch's mean loss (without the L2 term)."""
        tape = model.record(X, training=True, logits=fused_loss)
        out, loss = tape.output, self.loss_fn
        if fused_loss:
            value, grad = loss.value_and_gradient_from_logits(y, out, sample_weight)
        else:
            value, grad = loss.value_and_gradient(y, out, sample_weight)
        shared = np.may_share_memory(grad, out) or np.may_share_memory(grad, y)
        if shared or grad.dtype != model.dtype:  # backward overwrites it
            grad = np.array(grad, dtype=model.dtype)
        tape.backward(grad, input_grad=False)
        if self.l2:
            for kernel, kernel_grad in model._kernels:
                kernel_grad += self.l2 * kernel
        return value

    def l2_penalty(self, model: Sequential) -> float:
        """``0.5 * l2 * sum(kernel ** 2)``, the term whose gradient :meth:`step` adds."""
        if not self.l2:
            return 0.0
        return 0.5 * self.l2 * sum(float(np.vdot(k, k)) for k, _ in model._kernels)

    # --- the run ------------------------------------------------------------------------
    def fit(
        self,
        model: Sequential,
        X: Any,
        y: Any,
        *,
        sample_weight: Any = None,
        validation_data: Sequence[Any] | None = None,
        validation_split: float = 0.0,
    ) -> History:
        """Train ``model`` in place; returns its :class:`History` (also ``model.history``)."""
        check_number(validation_split, "validation_split", low=0, high=1, high_open=True)
        X = as_features(X, model.input_dim, model.dtype)
        if not model.built:
            model.build(X.shape[1])
        loss = self.loss_fn
        y = targets(model, y, len(X), loss, "y")
        sw = _sample_weight(sample_weight, len(X), model.dtype, "sample_weight")
        val = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) not in (2, 3):
                raise ValueError("validation_data must be a tuple (X_val, y_val[, sample_weight]).")
            Xv = as_features(validation_data[0], model.input_dim, model.dtype, "validation X")
            yv = targets(model, validation_data[1], len(Xv), loss, "validation y")
            swv = None
            if len(validation_data) == 3:
                swv = _sample_weight(validation_data[2], len(Xv), model.dtype, "validation weight")
            val = (Xv, yv, swv)
        elif validation_split > 0:
            n_val = round(len(X) * validation_split)
            if n_val < 1 or n_val >= len(X):
                raise ValueError(
                    f"validation_split={validation_split} leaves {n_val} validation rows out "
                    f"of {len(X)}: need at least one row on each side."
                )
            # Drawn from the seed, not the model's running generator, so that a resumed
            # run (initial_epoch > 0) holds out the same rows as the run it continues.
            split = np.random.default_rng(np.random.SeedSequence(model.seed, spawn_key=(1,)))
            perm = split.permutation(len(X))
            vi, ti = perm[:n_val], perm[n_val:]
            val = (X[vi], y[vi], None if sw is None else sw[vi])
            X, y, sw = X[ti], y[ti], None if sw is None else sw[ti]
        return self._run(model, X, y, sw, val)

    def _run(self, model, X, y, sw, val) -> History:
        fused_loss = fused(model, self.loss_fn)
        history = History()
        hooks: list[Callback] = [history, *self.callbacks]
        if self.verbose:
            hooks.append(ProgressBar(self.epochs, initial=self.initial_epoch))
        # epoch: epochs done; interrupted: the epoch index running when Ctrl-C came
        state = {"epoch": self.initial_epoch, "interrupted": self.initial_epoch, "reason": None}
        model.stop_training = False
        model.stop_reason = ""  # a callback that sets stop_training may say why here
        for hook in hooks:
            hook.trainer = self
            hook.on_train_begin(model)

        def end_epoch(epoch: int, train_loss: float) -> None:
            logs = {"loss": train_loss}
            if val is not None:
                logs["val_loss"] = _loss_value(model, val[0], val[1], self.loss_fn, val[2])
            for hook in hooks:
                hook.on_epoch_end(model, epoch, logs)
            state["epoch"] = epoch + 1
            if not math.isfinite(train_loss):
                warnings.warn(
                    f"Training stopped at epoch {epoch + 1}: the loss became {train_loss}. "
                    "Lower the learning rate or standardise the inputs.",
                    RuntimeWarning,
                    stacklevel=4,
                )
                state["reason"] = f"loss became {train_loss} at epoch {epoch + 1}"
                model.stop_training = True

        interrupted = _Interrupt()
        try:
            run = self._full_batch if self.optimizer.full_batch else self._minibatch
            run(model, X, y, sw, fused_loss, end_epoch, interrupted, state)
            if interrupted.seen and state["reason"] is None:
                state["reason"] = f"interrupted at epoch {state['interrupted'] + 1}"
        except KeyboardInterrupt:
            history.stop_reason = f"interrupted at epoch {state['interrupted'] + 1}"
            self._finish(model, hooks, history)
            raise
        finally:
            interrupted.close()
        for hook in hooks:
            hook.on_train_end(model)
        if state["reason"] is None:
            stoppers = [h.stop_reason for h in self.callbacks if h.stop_reason]
            if model.stop_reason:
                state["reason"] = model.stop_reason
            elif stoppers:
                state["reason"] = stoppers[0]
            elif model.stop_training:
                state["reason"] = f"stopped by a callback at epoch {state['epoch']}"
            elif state["epoch"] < self.epochs:
                opt = self.optimizer
                state["reason"] = (
                    f"converged: {opt.name} met its tolerance tol={opt.tol} "
                    f"({getattr(opt, 'message', '')})"
                )
            else:
                state["reason"] = f"reached max epochs ({self.epochs})"
        history.stop_reason = state["reason"]
        model.history = history
        return history

    @staticmethod
    def _finish(model, hooks, history) -> None:
        for hook in hooks:
            hook.on_train_end(model)
        model.history = history

    def _minibatch(self, model, X, y, sw, fused_loss, end_epoch, interrupted, state) -> None:
        params, grads = [model.flat_parameters()], [model.flat_gradients()]
        flat_grads, hook, opt = grads[0], self.gradient_hook, self.optimizer
        n = len(X)
        batch = n if self.batch_size is None else min(self.batch_size, n)
        # With a single batch the order of rows cannot matter, so there is nothing to shuffle.
        shuffle = self.shuffle and batch < n
        if shuffle:
            # Each shuffled batch is gathered into the same buffers: no copy of the whole
            # data set per epoch, and the rows are still in cache when the first layer reads.
            x_buf = np.empty((batch, X.shape[1]), X.dtype)
            y_buf = np.empty((batch, *y.shape[1:]), y.dtype)
            w_buf = None if sw is None else np.empty(batch, sw.dtype)
        for epoch in range(self.initial_epoch, self.epochs):
            state["interrupted"] = epoch
            perm = model.rng.permutation(n) if shuffle else None
            total = 0.0
            for start in range(0, n, batch):
                stop = min(start + batch, n)
                if perm is None:
                    xb, yb = X[start:stop], y[start:stop]
                    swb = None if sw is None else sw[start:stop]
                else:
                    rows, m = perm[start:stop], stop - start
                    xb = X.take(rows, axis=0, out=x_buf[:m], mode="clip")  # valid rows
                    yb = y.take(rows, axis=0, out=y_buf[:m], mode="clip")
                    swb = None if sw is None else sw.take(rows, out=w_buf[:m], mode="clip")
                value = self.step(model, xb, yb, swb, fused_loss)
                weight = stop - start if swb is None else float(swb.sum())
                if hook is not None:
                    hook(flat_grads, weight)
                opt.step(params, grads)
                total += value * weight
                if interrupted.seen:  # mid-epoch: consistent at this batch boundary
                    return
            mean = total / (n if sw is None else float(sw.sum()))
            end_epoch(epoch, mean + self.l2_penalty(model))
            if model.stop_training or interrupted.seen:
                return

    def _full_batch(self, model, X, y, sw, fused_loss, end_epoch, interrupted, state) -> None:
        flat, hook = model.flat_parameters(), self.gradient_hook
        weight = float(len(X) if sw is None else sw.sum())
        last = {"value": math.nan}

        def objective(x: np.ndarray) -> tuple[float, np.ndarray]:
            flat[...] = x
            value = self.step(model, X, y, sw, fused_loss) + self.l2_penalty(model)
            if hook is not None:
                hook(model.flat_gradients(), weight)
            last["value"] = value
            return value, model.flat_gradients().copy()

        def on_iteration(x: np.ndarray) -> bool:
            flat[...] = x
            state["interrupted"] = state["epoch"]
            end_epoch(state["epoch"], last["value"])
            return model.stop_training or interrupted.seen

        budget = self.epochs - self.initial_epoch
        if budget <= 0:
            return
        flat[...] = self.optimizer.minimize(objective, flat.copy(), budget, on_iteration)
        if state["epoch"] == self.initial_epoch:
            # Converged before its first iteration (e.g. started at the optimum): one entry.
            end_epoch(self.initial_epoch, objective(flat.copy())[0])
