"""Check a network's analytic gradients against central finite differences.

Run it on float64 models: float32 rounding swamps the finite differences. The default
step ``eps=1e-5`` is near the cube root of float64's epsilon, which balances the central
difference's truncation error against rounding. The report's verdict (``passed``) compares
the relative error with ``tolerance``: 1e-6 in float64; a float32 model gets a warning, a
step of 1e-3 and a tolerance of 1e-2 (its rounding leaves about 1e-4 on a correct network).

>>> import numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(3, activation="tanh"), nc.layers.Dense(1)],
...                   input_dim=2, seed=0, dtype="float64")
>>> X, y = np.random.default_rng(0).normal(size=(4, 2)), np.zeros((4, 1))
>>> report = gradcheck(m, X, y, loss="mse")
>>> report.relative_error < 1e-6, report.passed, report.tolerance
(True, True, 1e-06)
>>> str(report).split(":")[0]
'gradcheck passed'
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from neurocloud.nn import losses

__all__ = ["GradcheckReport", "gradcheck", "relative_error"]

#: (eps, tolerance) per model dtype: float64 is the strict check; float32 is a coarse one
_DEFAULTS = {"float64": (1e-5, 1e-6), "float32": (1e-3, 1e-2)}


def relative_error(analytic: np.ndarray, numeric: np.ndarray) -> float:
    """Normwise relative error ``max|a - n| / max(max|a|, max|n|, 1e-8)``.

    Normwise rather than per element: a tiny component's finite-difference rounding
    noise says nothing about whether the gradient is right.
    """
    if analytic.size == 0:
        return 0.0
    scale = max(float(np.max(np.abs(analytic))), float(np.max(np.abs(numeric))), 1e-8)
    return float(np.max(np.abs(analytic - numeric))) / scale


@dataclass
class GradcheckReport:
    """Relative errors per parameter array (and the input gradient), and overall.

    ``relative_error`` treats all gradients as one vector: the largest deviation over the
    largest gradient. Per array, ``errors`` can exceed it for an array whose gradients are
    far smaller than the rest, where finite differences cannot resolve them relatively.
    """

    errors: dict[str, float] = field(default_factory=dict)
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    tolerance: float = 1e-6
    dtype: str = "float64"

    @property
    def passed(self) -> bool:
        """The verdict: ``relative_error <= tolerance``."""
        return self.relative_error <= self.tolerance

    def __str__(self) -> str:
        verdict, sign = ("passed", "<=") if self.passed else ("FAILED", ">")
        worst = max(self.errors, key=self.errors.get, default="-")
        line = (
            f"gradcheck {verdict}: relative error {self.relative_error:.2e} {sign} "
            f"tolerance {self.tolerance:g} ({self.dtype}; worst array: {worst})"
        )
        if self.dtype != "float64":
            line += "; for a strict check, build the model with dtype='float64'"
        return line

    @property
    def relative_error(self) -> float:
        scale = max(max(self.scale.values(), default=0.0), 1e-8)
        return max(self.max_abs_diff.values(), default=0.0) / scale


def gradcheck(
    model: Any,
    X: Any,
    y: Any,
    loss: str = "mse",
    eps: float | None = None,
    max_checks: int | None = 200,
    seed: int = 0,
    tolerance: float | None = None,
) -> GradcheckReport:
    """Compare ``model.backward``'s gradients with central differences of ``loss``.

    Checks every weight (or ``max_checks`` of them per array, chosen at random) and the
    gradient with respect to ``X``. Training-mode randomness (dropout) is not supported.
    ``eps`` and ``tolerance`` default by the model's dtype (1e-5 and 1e-6 in float64);
    ``report.passed`` is the verdict and ``str(report)`` says it with the tolerance.
    """
    dtype = np.dtype(model.dtype).name
    default_eps, default_tolerance = _DEFAULTS.get(dtype, _DEFAULTS["float32"])
    if dtype != "float64":
        warnings.warn(
            f"gradcheck on a {dtype} model: rounding limits finite differences to about 1e-4 "
            f"relative error, so the verdict uses tolerance={default_tolerance:g} and can miss "
            "small mistakes. For a strict check (1e-6), build the same network with "
            "dtype='float64' and check that.",
            UserWarning,
            stacklevel=2,
        )
    eps = default_eps if eps is None else eps
    loss_fn = losses.get(loss)
    X = np.array(X, dtype=model.dtype)
    if not model.built:
        model.build(X.shape[1])
    y = np.asarray(y, dtype=model.dtype)
    if loss_fn.sparse_target:
        y = losses.one_hot(y, model.output_dim, model.dtype)
    elif y.ndim == 1:
        y = y.reshape(-1, 1)

    def value() -> float:
        return loss_fn.value(y, model.forward(X))

    tape = model.record(X, training=False)
    grad_x = model.backward(loss_fn.gradient(y, tape.output), tape)
    rng = np.random.default_rng(seed)
    report = GradcheckReport(
        tolerance=default_tolerance if tolerance is None else float(tolerance), dtype=dtype
    )
    targets = dict(model.state_dict())
    analytic = {
        f"layers.{i}.{k}": g.copy()
        for i, layer in enumerate(model.layers)
        for k, g in layer.grads.items()
    }
    targets = {k: v for k, v in targets.items() if k in analytic}
    targets["input"], analytic["input"] = X, grad_x
    for name, array in targets.items():
        flat = array.reshape(-1)
        idx = np.arange(flat.size)
        if max_checks is not None and flat.size > max_checks:
            idx = rng.choice(flat.size, size=max_checks, replace=False)
        numeric = np.empty(len(idx))
        for j, k in enumerate(idx):
            original = flat[k]
            flat[k] = original + eps
            plus = value()
            flat[k] = original - eps
            minus = value()
            flat[k] = original
            numeric[j] = (plus - minus) / (2 * eps)
        exact = analytic[name].reshape(-1)[idx]
        report.errors[name] = relative_error(exact, numeric)
        if idx.size:
            report.max_abs_diff[name] = float(np.max(np.abs(exact - numeric)))
            report.scale[name] = float(max(np.max(np.abs(exact)), np.max(np.abs(numeric))))
    return report
