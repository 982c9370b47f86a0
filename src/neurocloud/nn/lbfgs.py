"""L-BFGS: a full-batch minimizer beside the optimizers, through ``scipy.optimize``.

An optimizer's ``step`` updates weights from one batch's gradient; L-BFGS instead
minimises the whole training objective, asking for its value and gradient wherever its
line search goes. ``fit(..., optimizer="lbfgs")`` hands it the full batch.

>>> import numpy as np
>>> x = LBFGS().minimize(lambda x: (float(((x - 3) ** 2).sum()), 2 * (x - 3)), np.zeros(2), 50)
>>> np.round(x, 6)
array([3., 3.])
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from neurocloud.nn.validation import check_number, positive_int

__all__ = ["LBFGS"]


class LBFGS:
    """L-BFGS-B for small full-batch problems; ``epochs`` bounds its iterations in ``fit``.

    SciPy works in float64 internally; the model's weights keep their own dtype.
    """

    name = "lbfgs"
    #: it needs the whole objective, not one batch at a time
    full_batch = True

    def __init__(self, history_size: int = 10, tol: float = 1e-9) -> None:
        self.history_size = positive_int(history_size, "history_size")
        self.tol = check_number(tol, "tol", low=0)
        self.message = ""

    def minimize(
        self,
        objective: Callable[[np.ndarray], tuple[float, np.ndarray]],
        x0: np.ndarray,
        max_iter: int,
        callback: Callable[[np.ndarray], bool | None] | None = None,
    ) -> np.ndarray:
        """Minimise ``objective(x) -> (value, gradient)`` from ``x0``; return the last x.

        ``callback(x)`` runs after each iteration; returning True stops.
        """
        from scipy.optimize import minimize

        def wrapped(x64: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = objective(x64.astype(x0.dtype))
            return value, grad.astype(np.float64)

        def on_iteration(intermediate_result) -> None:
            if callback is not None and callback(intermediate_result.x.astype(x0.dtype)):
                raise StopIteration

        result = minimize(
            wrapped,
            x0.astype(np.float64),
            jac=True,
            method="L-BFGS-B",
            callback=on_iteration,
            options={
                "maxiter": int(max_iter),
                "maxcor": self.history_size,
                "ftol": self.tol,
                "gtol": self.tol * 1e-1,
            },
        )
        self.message = str(result.message)  # why SciPy stopped, for History.stop_reason
        return result.x.astype(x0.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"history_size": self.history_size, "tol": self.tol}

    def state_dict(self) -> dict[str, np.ndarray]:
        """Nothing to resume: each ``fit`` starts a fresh minimisation."""
        return {}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        if state:
            raise ValueError(
                f"Expected no state for LBFGS (it keeps none between fits). "
                f"Received: {sorted(state)}"
            )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"LBFGS({args})"
