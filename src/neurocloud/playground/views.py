"""What the playground's page draws, as JSON: loss curves, the weights for the network
graph, the fitted curve (1-D inputs, beyond the data too) or the decision surface (2-D).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from neurocloud.playground.network import loss_for

if TYPE_CHECKING:
    from neurocloud.playground.session import Session

__all__ = ["CURVE_POINTS", "GRID_SIDE", "MAX_CURVE", "data_points", "views"]

MAX_CURVE = 400  # loss values sent per curve (evenly spaced epochs beyond that)
CURVE_POINTS = 121
GRID_SIDE = 41
MAX_POINTS = 2000


def _thin(values: list[float]) -> list[list[float]]:
    n = len(values)
    picks = range(n) if n <= MAX_CURVE else np.unique(np.linspace(0, n - 1, MAX_CURVE).astype(int))
    return [[int(i) + 1, float(values[i])] for i in picks]


def _scores(session: Session, X: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore", invalid="ignore"):
        out = session.model.predict(X).astype(np.float64)
    if session.data.task == "classification" and session.data.classes > 2:
        return out.argmax(axis=1).astype(float)
    return out[:, 0]


def views(session: Session) -> dict[str, Any]:
    """The views of ``session`` now (the caller holds its lock)."""
    model, data = session.model, session.data
    params = model.parameters()
    view: dict[str, Any] = {
        "state": session.state,
        "error": session.error,
        "epoch": session.epoch,
        "epochs": session.settings.epochs,
        "batch": session.batch,
        "batches_per_epoch": -(-len(session.X) // session.batch_size),
        "steps": session.steps,
        "loss": _thin(session.losses),
        "val_loss": _thin(session.val_losses),
        "last_loss": session.losses[-1] if session.losses else None,
        "kernels": [k.astype(np.float64).tolist() for k in params[0::2]],
        "biases": [b.astype(np.float64).tolist() for b in params[1::2]],
        "dims": [data.X.shape[1], *[len(b) for b in params[1::2]]],
        "activations": [*session.settings.activations, _output(session)],
    }
    features = data.X.shape[1]
    if features == 1:
        lo, hi = float(data.X.min()), float(data.X.max())
        span = (hi - lo) or 1.0
        xs = np.linspace(lo - 0.5 * span, hi + 0.5 * span, CURVE_POINTS)
        ys = _scores(session, xs.reshape(-1, 1))
        view["curve"] = {"x": xs.tolist(), "y": ys.tolist(), "data_range": [lo, hi]}
    elif features == 2 and data.task == "classification":
        lo, hi = data.X.min(axis=0), data.X.max(axis=0)
        pad = 0.1 * np.maximum(hi - lo, 1e-9)
        gx = np.linspace(lo[0] - pad[0], hi[0] + pad[0], GRID_SIDE)
        gy = np.linspace(lo[1] - pad[1], hi[1] + pad[1], GRID_SIDE)
        mesh = np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)
        values = _scores(session, mesh).reshape(GRID_SIDE, GRID_SIDE)
        if data.classes > 2:
            values = values.astype(int)
        view["grid"] = {
            "x": gx.tolist(),
            "y": gy.tolist(),
            "values": values.tolist(),
            "classes": data.classes,
        }
    if data.task == "classification":
        scores = _scores(session, data.X)
        predicted = scores if data.classes > 2 else (scores >= 0.5)
        view["accuracy"] = float(np.mean(predicted == data.y))
    return view


def _output(session: Session) -> str:
    return loss_for(session.settings, session.data)[1]


def data_points(session: Session) -> dict[str, Any]:
    """The data, for plotting (at most ``MAX_POINTS`` rows, two features)."""
    data = session.data
    X, y = data.X[:MAX_POINTS], data.y[:MAX_POINTS]
    return {
        "name": data.name,
        "task": data.task,
        "rows": len(data.X),
        "features": data.X.shape[1],
        "feature_names": data.feature_names,
        "class_names": data.class_names,
        "X": X[:, :2].tolist(),
        "y": y.tolist(),
        "train_rows": len(session.X),
        "validation_rows": len(session.X_val),
    }
