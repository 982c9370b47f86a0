"""The backward pass for one training row, shown: every unit's forward values, the loss,
and each weight's gradient by the chain rule, next to what ``model.backward`` computes and
the update ``w -= lr * grad``. A gradient check runs ``nc.gradcheck`` on a float64 copy.

The chain rule here is written out independently of the engine (NumPy on the weights), so
the two columns check each other: for weight ``w[i][j]`` of a dense layer,
``dL/dw = a_prev[i] * delta[j]`` with ``delta = dL/dz = dL/da * f'(z)``, and
``dL/da_prev = W @ delta``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

import neurocloud as nc
from neurocloud.playground.network import build_model, loss_for

if TYPE_CHECKING:
    from neurocloud.playground.session import Session

__all__ = ["MAX_WEIGHT_ROWS", "backward_view", "gradient_check"]

MAX_WEIGHT_ROWS = 400  # rows of the weight table sent (the tiny networks have far fewer)


def _activation_names(session: Session) -> list[str]:
    return [*session.settings.activations, loss_for(session.settings, session.data)[1]]


def backward_view(session: Session, row: int) -> dict[str, Any]:
    """The chain rule for training row ``row`` at the current weights (caller holds the lock)."""
    if not 0 <= row < len(session.X):
        raise ValueError(f"row: expected an integer in [0, {len(session.X) - 1}]; received {row}")
    model, loss, fused, lr = session.model, session.loss, session.fused, session.settings.lr
    x, y = session.X[row : row + 1].astype(np.float64), session.y[row : row + 1]
    params = [p.astype(np.float64) for p in model.parameters()]
    kernels, biases = params[0::2], params[1::2]
    names = _activation_names(session)
    a = x
    if session.settings.standardize:
        norm = model.layers[0]
        a = (a - norm.mean) / norm.scale
    inputs, zs, outs = [], [], []
    for W, b, name in zip(kernels, biases, names):
        inputs.append(a)
        z = a @ W + b
        a = nc.activations.get(name).forward(z)
        zs.append(z)
        outs.append(a)
    if fused:
        value = float(loss.value_from_logits(y, zs[-1]))
        delta = loss.gradient_from_logits(y, zs[-1])
        dl_da = None
    else:
        value = float(loss.value(y, a))
        dl_da = loss.gradient(y, a)
        act = nc.activations.get(names[-1])
        delta = act.backward(np.array(dl_da), zs[-1], outs[-1])
    layers: list[dict[str, Any]] = []
    grads: list[tuple[np.ndarray, np.ndarray]] = []
    for k in range(len(kernels) - 1, -1, -1):
        act = nc.activations.get(names[k])
        derivative = (
            act.backward(np.ones_like(zs[k]), zs[k], outs[k]) if names[k] != "softmax" else None
        )
        grads.append((inputs[k].T @ delta, delta[0].copy()))
        layers.append(
            {
                "layer": k + 1,
                "activation": names[k],
                "z": zs[k][0].tolist(),
                "a": outs[k][0].tolist(),
                "dL_da": None if dl_da is None else dl_da[0].tolist(),
                "f_prime": None
                if derivative is None or (fused and k == len(kernels) - 1)
                else derivative[0].tolist(),
                "delta": delta[0].tolist(),
            }
        )
        if k:
            dl_da = delta @ kernels[k].T
            prev = nc.activations.get(names[k - 1])
            delta = prev.backward(np.array(dl_da), zs[k - 1], outs[k - 1])
    grads.reverse()
    layers.reverse()
    engine = _engine_gradients(session, row)
    weights = []
    for k, (W, b) in enumerate(zip(kernels, biases)):
        gW, gb = grads[k]
        eW, eb = (engine[2 * k], engine[2 * k + 1]) if engine else (None, None)
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                weights.append(
                    _weight(
                        f"W{k + 1}[{i},{j}]",
                        W[i, j],
                        inputs[k][0, i],
                        layers[k]["delta"][j],
                        gW[i, j],
                        None if eW is None else eW[i, j],
                        lr,
                        k,
                        "a_prev",
                    )
                )
        for j in range(b.shape[0]):
            weights.append(
                _weight(
                    f"b{k + 1}[{j}]",
                    b[j],
                    1.0,
                    layers[k]["delta"][j],
                    gb[j],
                    None if eb is None else eb[j],
                    lr,
                    k,
                    "1",
                )
            )
    return {
        "row": row,
        "x": session.X[row].tolist(),
        "y": np.asarray(session.y[row]).tolist(),
        "input": inputs[0][0].tolist(),
        "loss": value,
        "loss_name": session.loss_name,
        "fused": fused,
        "lr": lr,
        "layers": layers,
        "weights": weights[:MAX_WEIGHT_ROWS],
        "weights_total": len(weights),
        "engine": engine is not None,
    }


def _weight(name, w, a_prev, delta, grad, engine, lr, layer, factor) -> dict[str, Any]:
    return {
        "name": name,
        "layer": layer + 1,
        "w": float(w),
        "a_prev": float(a_prev),
        "factor": factor,
        "delta": float(delta),
        "grad": float(grad),
        "engine": None if engine is None else float(engine),
        "updated": float(w - lr * grad),
    }


def _engine_gradients(session: Session, row: int) -> list[np.ndarray] | None:
    """``model.backward``'s gradients for the row; None with dropout (training mode would
    draw from the model's generator and change the rest of the training)."""
    if session.settings.dropout:
        return None
    model = session.model
    x, y = session.X[row : row + 1], session.y[row : row + 1]
    out = model.forward(x, training=True, logits=session.fused)
    if session.fused:
        grad = session.loss.gradient_from_logits(y, out)
    else:
        grad = session.loss.gradient(y, out)
    model.backward(grad, logits=session.fused)
    return [g.astype(np.float64).copy() for g in model.gradients()]


def gradient_check(session: Session, rows: int = 32) -> dict[str, Any]:
    """``nc.gradcheck`` on a float64 copy of the network (dropout left out) and its verdict."""
    copy = build_model(session.settings, session.data, session.X, dtype="float64", dropout=False)
    for target, source in zip(copy.parameters(), session.model.parameters()):
        target[...] = source
    report = nc.gradcheck(copy, session.X[:rows], session.y[:rows], loss=session.loss_name)
    return {
        "relative_error": float(report.relative_error),
        "errors": {k: float(v) for k, v in report.errors.items()},
        "passed": bool(report.passed),
        "verdict": str(report),
        "rows": min(rows, len(session.X)),
        "dropout_left_out": bool(session.settings.dropout),
    }
