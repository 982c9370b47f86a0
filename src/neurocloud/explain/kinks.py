"""Where a straight path from a baseline to an input crosses the network's kinks.

A ReLU network is piecewise linear: along the path ``b + a (x - b)`` its input gradient
jumps wherever a ReLU's input changes sign. A quadrature rule that steps over such jumps
converges only like ``1/steps`` (hundreds of thousands of steps for a 1e-3 completeness
error). Cutting the path at the jumps first leaves smooth pieces, on which Gauss-Legendre
converges fast: this module finds the cuts, :mod:`integrated` integrates the pieces.

The cuts are found layer by layer. Before the first kinked layer everything is affine in
``a``, so its pre-activations are linear between consecutive known cuts and each sign
change is located exactly by linear interpolation; adding those cuts makes the next
kinked layer's pre-activations linear between cuts again (for ReLU and leaky ReLU
networks), and so on. After a curved activation (tanh, ELU's negative side) the
interpolated cut is an estimate, refined by a few secant steps.

Rows are searched in groups, and every pass through the network goes in chunks of at most
:data:`neurocloud.explain.core.CHUNK_ROWS` points, each counted with
:func:`~neurocloud.explain.core.spend` (which checks the explanation's deadline and work
bound first): the number of cuts, and so the work, depends on the data.

>>> import numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(1, activation="relu", use_bias=False)],
...                   input_dim=1, seed=0, dtype="float64")
>>> m.layers[0].params["kernel"][...] = 1.0
>>> alphas, rows = path_breakpoints(m, np.array([[-1.0]]), np.array([[3.0]]))
>>> alphas.tolist()
[0.0, 0.25, 1.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from neurocloud.explain import core
from neurocloud.nn.layers import Activation, Dense

__all__ = ["KINKED_ACTIVATIONS", "PROBES", "path_breakpoints"]

#: activations whose derivative (ReLU, leaky ReLU) or second derivative (ELU) jumps at 0
KINKED_ACTIVATIONS = frozenset({"relu", "leaky_relu", "elu"})
#: activations that are affine on each side of 0, so interpolated cuts need no refining
_PIECEWISE_LINEAR = frozenset({"identity", "relu", "leaky_relu"})
_SECANT_STEPS = 4
#: evenly spaced points at which a path is sampled after a curved layer
PROBES = 64


def _activation_name(layer: Any) -> str | None:
    if isinstance(layer, (Dense, Activation)):
        return layer.activation.name
    return None


def _pre_activation(net: Any, index: int, points: np.ndarray) -> np.ndarray:
    """The input of layer ``index``'s activation at ``points`` (float64), in one pass."""
    x = np.asarray(points, dtype=net.dtype)
    for layer in net.layers[:index]:
        x = layer.forward(x, training=False)
    layer = net.layers[index]
    if isinstance(layer, Dense):
        x = layer.forward(x, training=False, activate=False)
    return np.array(x, dtype=np.float64)


def _evaluate(
    net: Any,
    index: int,
    start: np.ndarray,
    step: np.ndarray,
    alphas: np.ndarray,
    rows: np.ndarray,
    unit: np.ndarray | None = None,
) -> np.ndarray:
    """Layer ``index``'s pre-activations at ``start[rows] + alphas * step[rows]`` (only
    ``unit``'s, one per point, when given), in chunks whose work is counted first."""
    layers = net.layers[: index + 1]
    cost = start.shape[1] + sum(p.size for x in layers for p in getattr(x, "params", {}).values())
    chunk = core.CHUNK_ROWS
    parts = []
    for lo in range(0, len(alphas), chunk):
        at, where = alphas[lo : lo + chunk], rows[lo : lo + chunk]
        core.spend(len(at) * cost)
        z = _pre_activation(net, index, start[where] + at[:, None] * step[where])
        parts.append(z if unit is None else z[np.arange(len(at)), unit[lo : lo + chunk]])
    return np.concatenate(parts)


def _refine(
    net: Any, index: int, start: np.ndarray, step: np.ndarray, rows, lo, hi, z_lo, z_hi, unit
) -> np.ndarray:
    """Secant (regula falsi) steps on ``z_unit(a) = 0`` inside each bracket ``[lo, hi]``."""
    for _ in range(_SECANT_STEPS):
        guess = lo + (hi - lo) * z_lo / (z_lo - z_hi)
        z = _evaluate(net, index, start, step, guess, rows, unit)
        left = np.sign(z) == np.sign(z_lo)
        lo, z_lo = np.where(left, guess, lo), np.where(left, z, z_lo)
        hi, z_hi = np.where(left, hi, guess), np.where(left, z_hi, z)
    return lo + (hi - lo) * z_lo / (z_lo - z_hi)


def path_breakpoints(
    net: Any, start: np.ndarray, end: np.ndarray, probes: int = PROBES
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted fractions ``a`` in ``[0, 1]`` where a kinked activation's input crosses zero
    on the path from ``start[r]`` to ``end[r]``, with ``0`` and ``1`` included.

    After a curved layer a pre-activation may dip below zero and back between two known
    cuts, so it is also sampled at ``probes`` evenly spaced points to find its sign
    changes. Returns ``(alphas, rows)``: flat arrays sorted by row, then by ``a``.
    Networks that are not a stack of known layers get only ``0`` and ``1`` (no cuts).
    """
    n = len(start)
    group = max(1, core.CHUNK_ROWS // (probes + 2))
    alphas, rows = [], []
    for first in range(0, n, group):
        found, found_rows = _group_breakpoints(
            net, start[first : first + group], end[first : first + group], probes
        )
        alphas.append(found)
        rows.append(found_rows + first)
    if not alphas:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    return np.concatenate(alphas), np.concatenate(rows)


def _group_breakpoints(
    net: Any, start: np.ndarray, end: np.ndarray, probes: int
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`path_breakpoints` of a group of rows."""
    n = len(start)
    alphas, rows = np.tile([0.0, 1.0], n), np.repeat(np.arange(n), 2)
    grid = np.linspace(0.0, 1.0, probes + 1)[1:-1]
    step = end - start
    curved_before = False
    for index, layer in enumerate(getattr(net, "layers", [])):
        if _activation_name(layer) in KINKED_ACTIVATIONS:
            at, at_rows = alphas, rows
            if curved_before:
                at = np.concatenate([alphas, np.tile(grid, n)])
                at_rows = np.concatenate([rows, np.repeat(np.arange(n), len(grid))])
            order = np.lexsort((at, at_rows))
            at, at_rows = at[order], at_rows[order]
            z = _evaluate(net, index, start, step, at, at_rows)
            z_lo, z_hi = z[:-1], z[1:]
            crossing = (at_rows[1:] == at_rows[:-1])[:, None] & (z_lo * z_hi < 0)
            pair, unit = np.nonzero(crossing)
            lo, hi = at[pair], at[pair + 1]
            z_lo, z_hi = z_lo[pair, unit], z_hi[pair, unit]
            if curved_before and len(pair):
                cuts = _refine(net, index, start, step, at_rows[pair], lo, hi, z_lo, z_hi, unit)
            else:
                cuts = lo + (hi - lo) * z_lo / (z_lo - z_hi)
            alphas = np.concatenate([alphas, np.clip(cuts, lo, hi)])
            rows = np.concatenate([rows, at_rows[pair]])
        curved_before = curved_before or _curves(layer, _activation_name(layer))
    order = np.lexsort((alphas, rows))
    alphas, rows = alphas[order], rows[order]
    keep = np.ones(len(alphas), dtype=bool)
    keep[1:] = (rows[1:] != rows[:-1]) | (alphas[1:] > alphas[:-1])
    return alphas[keep], rows[keep]


def _curves(layer: Any, name: str | None) -> bool:
    """Whether ``layer`` bends a straight path (layers without an activation are affine
    when they are the engine's Normalization or inference-time Dropout)."""
    if name is not None:
        return name not in _PIECEWISE_LINEAR
    return type(layer).__name__ not in ("Normalization", "Dropout")
