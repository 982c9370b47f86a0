"""One playground session: its data, network, optimizer and training loop.

Training is the article's loop written with the public API (``forward(training=True)``,
the loss's gradient, ``backward``, ``opt.step(parameters(), gradients())``), one batch at a
time, so that it can pause, step one batch or one epoch, and start again from the same
initial weights. It runs in its own thread; every access to the network holds ``lock``.

>>> s = Session("demo", Settings(epochs=3))
>>> s.step_epoch(); s.epoch, len(s.losses)
(1, 1)
"""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

import neurocloud as nc
from neurocloud.playground.data import load
from neurocloud.playground.network import build_model, loss_for
from neurocloud.playground.settings import SettingError, Settings
from neurocloud.playground.views import views

__all__ = ["Session", "SessionError", "view_interval_s"]

#: the most often a running session publishes its views (and the SSE stream sends them)
view_interval_s = 0.1
_OPTIMIZERS = {
    "sgd": nc.optim.SGD,
    "adam": nc.optim.Adam,
    "adamw": nc.optim.AdamW,
    "rmsprop": nc.optim.RMSprop,
}


class SessionError(Exception):
    """A request the session cannot do now (``status`` 409) or at all."""

    def __init__(self, status: int, message: str, field: str = "") -> None:
        super().__init__(message)
        self.status, self.field = status, field


class Session:
    """See the module docstring."""

    def __init__(self, session_id: str, settings: Settings) -> None:
        self.id = session_id
        self.lock = threading.RLock()
        self.touched = time.monotonic()
        self.version = 0
        self._view: dict[str, Any] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.saved_path: Any = None
        self.configure(settings)

    # --- set-up -------------------------------------------------------------------------
    def configure(self, settings: Settings) -> None:
        """Load the data and build the network for ``settings`` (stops any training)."""
        data = load(
            settings.data,
            csv_text=settings.csv,
            target=settings.target or None,
            noise=settings.noise,
            points=settings.points,
            seed=settings.seed,
        )
        loss_for(settings, data)  # a bad loss is an error before anything changes
        self.pause()
        with self.lock:
            self.settings, self.data = settings, data
            self.reset()

    def reset(self) -> None:
        """Back to the initial weights (the same ones: same seed), epoch 0."""
        self.pause()
        with self.lock:
            s, data = self.settings, self.data
            order = np.random.default_rng(s.seed).permutation(len(data.X))
            n_val = round(s.validation * len(data.X))
            if n_val and len(data.X) - n_val < 2:
                n_val = 0
            val, train = order[:n_val], order[n_val:]
            if n_val == 0:
                train = np.arange(len(data.X))
            self.X, self.y = data.X[train], self._targets(data.y[train])
            self.X_val, self.y_val = data.X[val], self._targets(data.y[val])
            self.loss_name, output = loss_for(s, data)
            self.loss = nc.losses.get(self.loss_name)
            self.model = build_model(s, data, self.X)
            self.fused = self.loss.logits_activation == output
            self.optimizer = _OPTIMIZERS[s.optimizer](lr=s.lr)
            self.rng = np.random.default_rng(s.seed)
            self.epoch = self.batch = self.steps = 0
            self.order: np.ndarray | None = None
            self.batch_losses: list[tuple[float, int]] = []
            self.losses: list[float] = []
            self.val_losses: list[float] = []
            self.state, self.error = "ready", ""
            self.publish()

    def _targets(self, y: np.ndarray) -> np.ndarray:
        if self.data.task == "classification" and self.data.classes > 2:
            return y.astype(np.int64)
        return y.reshape(-1, 1).astype(np.float64)

    # --- training -----------------------------------------------------------------------
    @property
    def batch_size(self) -> int:
        size = self.settings.batch_size
        return len(self.X) if size == 0 or size >= len(self.X) else size

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _step(self) -> None:
        """One batch: forward, loss, backward, L2, ``opt.step``; an epoch ends after the last."""
        bs = self.batch_size
        if self.order is None:
            full = bs == len(self.X)
            self.order = np.arange(len(self.X)) if full else self.rng.permutation(len(self.X))
            self.batch_losses = []
        idx = self.order[self.batch * bs : (self.batch + 1) * bs]
        xb, yb = self.X[idx], self.y[idx]
        with np.errstate(over="ignore", invalid="ignore"):
            value = self._batch(xb, yb)
        if not np.isfinite(value):
            self.state = "diverged"
            self.error = (
                f"the loss is no longer finite (epoch {self.epoch + 1}, batch {self.batch + 1}): "
                "training diverged; lower the learning rate and reset"
            )
            raise SessionError(409, self.error, "lr")
        self.batch_losses.append((value, len(idx)))
        self.batch += 1
        self.steps += 1
        if self.batch * bs >= len(self.X):
            total = sum(n for _, n in self.batch_losses)
            self.losses.append(sum(v * n for v, n in self.batch_losses) / total)
            if len(self.X_val):
                self.val_losses.append(self._loss_on(self.X_val, self.y_val))
            self.epoch += 1
            self.batch, self.order = 0, None

    def _batch(self, xb: np.ndarray, yb: np.ndarray) -> float:
        model, loss, fused = self.model, self.loss, self.fused
        out = model.forward(xb, training=True, logits=fused)
        if fused:
            value, grad = loss.value_from_logits(yb, out), loss.gradient_from_logits(yb, out)
        else:
            value, grad = loss.value(yb, out), loss.gradient(yb, out)
        model.backward(grad, logits=fused)
        params, grads = model.parameters(), model.gradients()
        if self.settings.l2:
            for kernel, kernel_grad in zip(params[0::2], grads[0::2]):
                value += 0.5 * self.settings.l2 * float(np.vdot(kernel, kernel))
                kernel_grad += self.settings.l2 * kernel
        self.optimizer.step(params, grads)
        return float(value)

    def _loss_on(self, X: np.ndarray, y: np.ndarray) -> float:
        with np.errstate(over="ignore", invalid="ignore"):
            out = self.model.forward(X, training=False, logits=self.fused)
            if self.fused:
                return float(self.loss.value_from_logits(y, out))
            return float(self.loss.value(y, out))

    def _require_idle(self) -> None:
        if self.state == "diverged":
            raise SessionError(409, self.error, "lr")
        if self.running:
            raise SessionError(409, "training is running; pause it first")
        if self.epoch >= self.settings.epochs:
            raise SessionError(
                409, f"all {self.settings.epochs} epochs are done; reset or raise epochs", "epochs"
            )

    def step_batch(self) -> None:
        with self.lock:
            self._require_idle()
            try:
                self._step()
                self.state = "paused"
            finally:
                self.publish()

    def step_epoch(self) -> None:
        with self.lock:
            self._require_idle()
            epoch = self.epoch
            try:
                while self.epoch == epoch:
                    self._step()
                self.state = "paused" if self.epoch < self.settings.epochs else "done"
            finally:
                self.publish()

    def start(self, pace: float = 0.0) -> None:
        """Train in a thread until the last epoch or :meth:`pause`; ``pace`` > 0 caps the
        epochs per second, so that a small network's training can be watched."""
        if isinstance(pace, bool) or not isinstance(pace, (int, float)) or not 0 <= pace <= 1e6:
            raise SettingError("pace", f"expected epochs per second >= 0; received {pace!r}")
        with self.lock:
            self._require_idle()
            self._stop.clear()
            self.state = "running"
            self._thread = threading.Thread(
                target=self._run, args=(float(pace),), name=f"playground-{self.id}"
            )
            self._thread.daemon = True
            self._thread.start()

    def _run(self, pace: float) -> None:
        try:
            self._train(pace)
        except SessionError:  # diverged: the state and message are set
            with self.lock:
                self.publish()
        except Exception as exc:  # shown on the page instead of a silent, dead thread
            with self.lock:
                self.state, self.error = "error", f"training stopped: {type(exc).__name__}: {exc}"
                self.publish()

    def _train(self, pace: float) -> None:
        published, started, first = 0.0, time.monotonic(), self.epoch
        while not self._stop.is_set():
            with self.lock:
                # Work in slices of ~20 ms so that pause, views and requests get the lock.
                until = time.perf_counter() + 0.02
                allowed = self.settings.epochs
                if pace:
                    allowed = min(allowed, first + 1 + int((time.monotonic() - started) * pace))
                while self.epoch < allowed and time.perf_counter() < until:
                    self._step()
                finished = self.epoch >= self.settings.epochs
                if finished:
                    self.state = "done"
                if finished or time.monotonic() - published >= view_interval_s:
                    self.publish()
                    published = time.monotonic()
            if finished:
                return
            if self.epoch >= allowed:  # ahead of the pace: wait, but wake up for a pause
                self._stop.wait(min(view_interval_s, 1.0 / pace))

    def pause(self) -> None:
        """Stop the training thread (it finishes the batch it is on)."""
        thread = self._thread
        if thread is None:
            return
        self._stop.set()
        thread.join()
        self._thread = None
        with self.lock:
            if self.state == "running":
                self.state = "paused"
            self.publish()

    # --- views --------------------------------------------------------------------------
    def publish(self) -> None:
        """Compute the views now (caller holds the lock) and bump ``version``."""
        self._view = views(self)
        self.version += 1

    def view(self) -> dict[str, Any]:
        return self._view
