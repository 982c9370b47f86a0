"""The forward pass at inference, planned once per model: the fewest NumPy calls per layer.

A request's row is a handful of tiny arrays, so NumPy's per-call cost, not arithmetic,
decides its latency: a ufunc that broadcasts a 1-D bias over a ``(1, n)`` row costs about
three times one whose operands have the same shape, and a scalar operand costs more than a
``(1, n)`` one. The plan keeps, for each Dense layer, the kernel, the bias as a ``(1, n)``
row (a view: training updates it) and an in-place activation with its constants in that
shape. Every element sees the same operations in the same order as in the layers' own
``forward``, so the outputs are bitwise theirs, the sign bits of nans aside
(``tests/test_inference_plan.py``).

>>> import numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(3, activation="sigmoid"), nc.layers.Dense(1)],
...                   input_dim=2, seed=0)
>>> x = np.ones((1, 2), np.float32)
>>> by_layers = m.layers[1].forward(m.layers[0].forward(x))
>>> bool(np.array_equal(InferencePlan(m.layers).run(x), by_layers))
True
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

import numpy as np

from neurocloud.nn import activations, kernels
from neurocloud.nn.layers import Dense, Layer
from neurocloud.nn.validation import all_finite, check_finite

__all__ = ["InferencePlan"]

#: an in-place activation: ``act(z)`` overwrites ``z`` with ``f(z)``
InPlace = Callable[[np.ndarray], object]

#: hidden products from which the plan writes into its thread's two reused buffers instead
#: of new arrays. A fresh array that large is fresh pages from the kernel as often as not
#: (malloc hands freed ones back), and each page's first write is a fault: on a 2-core VM
#: a 1,024-row mnist-shape predict took 363 faults and 3.9 ms, and 1.3 ms with the buffers.
SCRATCH_MIN_BYTES = 1 << 16
#: the largest buffer a thread keeps (two per dtype, so 8 MiB a thread for one dtype): the
#: products of one of ``predict``'s blocks fit (``sequential.PREDICT_BLOCK_BYTES``), unless
#: a layer is so wide that 64 rows of it take more; a larger product (a forward pass over
#: many rows, as ``evaluate`` runs) is allocated per call, as before
SCRATCH_MAX_BYTES = 1 << 22

_scratch = threading.local()


def _product(x: np.ndarray, kernel: np.ndarray, slot: int) -> np.ndarray:
    """``x.dot(kernel)``, written into this thread's buffer ``slot`` (0 or 1) when the
    product's size is within the buffers' range (the same BLAS call: the same bits)."""
    dtype = kernel.dtype
    size = len(x) * kernel.shape[1]
    if not SCRATCH_MIN_BYTES <= size * dtype.itemsize <= SCRATCH_MAX_BYTES or x.dtype != dtype:
        return x.dot(kernel)
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = {}
    flat = buffers.get((slot, dtype))
    if flat is None or flat.size < size:  # grown by doubling, up to the largest kept
        grown = 0 if flat is None else 2 * flat.size
        largest = SCRATCH_MAX_BYTES // dtype.itemsize
        flat = buffers[slot, dtype] = np.empty(max(size, min(grown, largest)), dtype)
    return np.dot(x, kernel, out=flat[:size].reshape(len(x), kernel.shape[1]))


def _sigmoid(units: int, dtype: np.dtype) -> InPlace:
    # activations.sigmoid's four passes; for one row the 0.5 is a (1, units) row (same
    # shape as z: NumPy's fastest loop), for more rows a scalar (its fastest there).
    half_row = np.full((1, units), 0.5, dtype)
    half = dtype.type(0.5)
    mul, add, tanh = np.multiply, np.add, np.tanh

    def sigmoid(z: np.ndarray) -> None:
        h = half_row if z.shape[0] == 1 else half
        mul(z, h, out=z)
        tanh(z, out=z)
        mul(z, h, out=z)
        add(z, h, out=z)

    return sigmoid


def _relu(units: int, dtype: np.dtype) -> InPlace:
    # For one row, zeros of its shape; for more, activations.zeros_like's (the same bits).
    zeros, zeros_like, maximum = np.zeros((1, units), dtype), activations.zeros_like, np.maximum

    def relu(z: np.ndarray) -> None:
        maximum(z, zeros if z.shape[0] == 1 else zeros_like(z), out=z)

    return relu


def _biased_relu(bias: np.ndarray, dtype: np.dtype) -> InPlace:
    # The bias and ReLU; where the compiled passes are loaded and the block is large
    # enough, in one pass (kernels.passes: the same bits).
    row, add, fused, relu = bias.reshape(1, -1), np.add, kernels.bias_relu, _relu(len(bias), dtype)

    def biased_relu(z: np.ndarray) -> None:
        if not fused(z, bias):
            add(z, row, out=z)
            relu(z)

    return biased_relu


def _biased_unit(bias: np.ndarray, act: InPlace | None) -> InPlace:
    # A layer of one unit (the article's output): for one row the bias is added in Python
    # floats, since NumPy's ufuncs take a slower path in place on a single element (0.83
    # against 0.30 us for two, NumPy 2.4). A float32 sum done in double and rounded once to
    # float32 is the float32 sum (53 >= 2 * 24 + 2 bits): NumPy's bits. A sum that is not
    # finite in the dtype (a nan, an infinity, an overflow) takes NumPy's add instead, with
    # its nan bits, its warnings and np.errstate's rules.
    row, add, limit = bias.reshape(1, 1), np.add, float(np.finfo(bias.dtype).max)

    def biased(z: np.ndarray) -> None:
        if z.shape[0] == 1 and -limit <= (total := z.item() + row.item()) <= limit:
            z[0, 0] = total
        else:
            add(z, row, out=z)
        if act is not None:
            act(z)

    return biased


#: widest row whose softmax takes its maximum in Python: past it, the row's conversion to
#: Python floats costs more than NumPy's reduction (32 us against 8 us at 1,000 units)
_SCALAR_SOFTMAX_UNITS = 32


def _softmax(units: int, dtype: np.dtype) -> InPlace:
    # Softmax.forward's passes: shift by the row maximum, exp, divide by the row sum (the
    # sum as a BLAS product with ones, the same call as activations.row_sum's).
    ones = np.ones(units, dtype)
    general = activations.Softmax()
    subtract, exp, divide = np.subtract, np.exp, np.divide

    def softmax(z: np.ndarray) -> None:
        if z.shape[0] != 1 or units > _SCALAR_SOFTMAX_UNITS:
            general.forward(z, out=z)
            return
        # A Python float holds a float32 or float64 value exactly, and NumPy's scalar loop
        # beats broadcasting a (1, 1) array. (A nan that max() skips makes the sum, and so
        # every output, nan, as in the reference; only the nans' sign bits may differ.)
        subtract(z, max(z.ravel().tolist()), out=z)
        exp(z, out=z)
        divide(z, z.dot(ones).item(), out=z)

    return softmax


#: activations with a planned form; any other runs its own ``forward(z, out=z)``
_PLANNED: dict[type, Callable[[int, np.dtype], InPlace]] = {
    activations.Sigmoid: _sigmoid,
    activations.ReLU: _relu,
    activations.Softmax: _softmax,
}


def _in_place(act: activations.Activation, units: int, dtype: np.dtype) -> InPlace | None:
    if type(act) is activations.Identity:
        return None
    planned = _PLANNED.get(type(act))
    if planned is not None:
        return planned(units, dtype)

    def general(z: np.ndarray) -> None:
        act.forward(z, out=z)

    return general


class InferencePlan:
    """The inference forward pass of ``layers`` (built), optionally without the last
    layer's activation (``logits=True``).

    ``run`` is reentrant: any number of threads may run one plan at once. Large hidden
    products go to buffers of the calling thread (:data:`SCRATCH_MIN_BYTES`), shared by
    every plan that thread runs; what ``run`` returns is never one of them.
    """

    def __init__(self, layers: Sequence[Layer], logits: bool = False) -> None:
        steps: list[tuple] = []
        last = len(layers) - 1
        #: the fewest rows from which some product goes to a reused buffer
        self._scratch_rows = 1 << 62
        for i, layer in enumerate(layers):
            if type(layer) is Dense:
                kernel = layer.params["kernel"]
                bias = layer.params["bias"].reshape(1, -1) if layer.use_bias else None
                skip = logits and i == last
                act = None if skip else _in_place(layer.activation, layer.units, kernel.dtype)
                if bias is not None and type(layer.activation) is activations.ReLU and not skip:
                    bias, act = None, _biased_relu(layer.params["bias"], kernel.dtype)
                # A product may go to a reused buffer only where no code but the plan's
                # own ever sees it: its activation is planned, and the next layer's product
                # reads it. (Buffers alternate, so no product overwrites its own input.)
                ours = skip or act is None or type(layer.activation) in _PLANNED
                feeds = i < last and type(layers[i + 1]) is Dense
                slot = i % 2 if ours and feeds else None
                if slot is not None:
                    width = layer.units * kernel.dtype.itemsize
                    self._scratch_rows = min(self._scratch_rows, -(-SCRATCH_MIN_BYTES // width))
                if bias is not None and layer.units == 1 and kernel.dtype in kernels.DTYPES:
                    bias, act = None, _biased_unit(layer.params["bias"], act)
                steps.append((kernel, bias, act, slot))
            else:
                activate = not (logits and i == last)
                steps.append((None, None, _layer_step(layer, activate), None))
        self._steps = tuple(steps)
        self._plain = tuple((k, b, a, None) for k, b, a, _ in steps)
        #: whether ``run`` always returns a new array (a Dense layer makes one, and the
        #: last one's is never a reused buffer); a plan of dropout alone, say, hands back
        #: its input
        self.fresh = any(step[0] is not None for step in steps)

    def run(self, X: np.ndarray) -> np.ndarray:
        """The outputs for ``X``, a 2-D array of the model's dtype (not checked here)."""
        return self._run(self._steps if len(X) >= self._scratch_rows else self._plain, X)

    @staticmethod
    def _run(steps: tuple, out: np.ndarray) -> np.ndarray:
        add = np.add
        for kernel, bias, act, slot in steps:
            if kernel is None:
                out = act(out)
                continue
            out = out.dot(kernel) if slot is None else _product(out, kernel, slot)
            if bias is not None:
                add(out, bias, out=out)
            if act is not None:
                act(out)
        return out

    def run_blocks(self, X: np.ndarray, rows: int, width: int, name: str = "X") -> np.ndarray:
        """``run`` over ``X`` in blocks of ``rows`` rows into a new ``(len(X), width)``
        array. Each block is checked for non-finite values just before it runs, while its
        rows are in the cache; the ValueError names the element's index in ``X``.

        (Checking the first product instead, narrower and already in the cache, is exact
        when every row of the first kernel has a non-zero weight, but measured no faster:
        the check brings the block into the cache for the product's own read.)
        """
        out = np.empty((len(X), width), X.dtype)
        steps = self._steps if rows >= self._scratch_rows else self._plain
        for start in range(0, len(X), rows):
            block = X[start : start + rows]
            if not all_finite(block):
                check_finite(X, name)
            out[start : start + rows] = self._run(steps, block)
        return out


def _layer_step(layer: Layer, activate: bool) -> Callable[[np.ndarray], np.ndarray]:
    def step(x: np.ndarray) -> np.ndarray:
        return layer.forward(x, training=False, activate=activate)

    return step
