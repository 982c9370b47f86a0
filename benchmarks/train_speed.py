"""Training and inference speed: neurocloud vs PyTorch (CPU, eager) vs scikit-learn's MLP.

Every system trains the same architecture with Adam (lr 1e-3), the same batch size, float32
data and the same number of steps. The systems are interleaved (the order rotates every
round) and each cell is the median over the rounds, so a burst of load on a shared machine
hits every system alike. The GEMM floor is the time of the matrix products alone that one
training step needs (forward: one per layer; backward: two per layer, one for the first),
run with NumPy into preallocated arrays in neurocloud's process. Each peer runs in a worker
process of its own: in one process, PyTorch's OpenMP threads and OpenBLAS's threads spin
against each other between calls, which measures their interference, not their speed.
PyTorch gets its fastest CPU Adam (``fused=True``) and its better of 1 and 2 threads.

Lower bounds: each optimizer's update alone (neurocloud's Adam, compiled where numba is
installed, and PyTorch's compiled fused Adam) over the model's parameter count for an
epoch's steps, added to the GEMM floor, and the GEMM floor with neurocloud's update in the
same loop, without and with the gathering of each shuffled batch into a buffer (the work
every shuffled minibatch step must do before a bias, activation or loss pass); then a
whole step on NumPy without the engine, its gathering, bias, activation and
bias-gradient passes, and Adam updating the weights the next products read
(``step_floor_system``); for batch inference, ``predict``'s input check alone added to the
forward GEMMs, and predict's own NumPy calls on its blocks without the engine's Python
(``_passes_floor_run``); for a single row, the GEMMs and one NumPy call for each
element-wise pass (``_calls_floor_run``).

Peak memory is the growth of the resident set (VmHWM minus VmRSS, after resetting the
high-water mark through /proc/self/clear_refs) during each system's first epoch, after its
data and model exist.

Full run (about six minutes), the command behind benchmarks/README.md:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python benchmarks/train_speed.py

The ``env -u`` lets OpenBLAS pick its native kernel for this command alone; this machine's
environment pins OPENBLAS_CORETYPE=Haswell (keep it in tests and CI). Without it the same
command measures the pinned kernel. The header reports the kernel that ran.

Short run: ``--quick``. ``--against OTHER/src`` times neurocloud alone (and its GEMM floor,
as a control) from this checkout and from another, interleaved: the ratio per workload.
``NEUROCLOUD_COMPILED`` is ``always`` unless set (Adam's compiled kernel, where numba is
installed, from the warm-up on); ``0`` measures the NumPy path.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

import neurocloud as nc

LR = 1e-3


@dataclass(frozen=True)
class Workload:
    name: str
    sizes: tuple[int, ...]  # input, hidden..., output
    activation: str
    batch: int | None  # None: full batch
    epochs: int  # epochs per timed run (tiny: 1000 full-batch steps)
    classify: bool

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(0)
        if self.name == "tiny":
            from neurocloud.demo import X, Y

            return X.astype(np.float32), Y.astype(np.float32)
        if self.name == "digits":
            from sklearn.datasets import load_digits

            X, y = load_digits(return_X_y=True)
            return (X / 16.0).astype(np.float32), y
        rows = {"mnist-shape": 60_000, "wide": 8_192}[self.name]
        X = rng.standard_normal((rows, self.sizes[0]), dtype=np.float32)
        return X, rng.integers(0, self.sizes[-1], rows)


WORKLOADS = {
    w.name: w
    for w in (
        Workload("tiny", (1, 2, 2, 1), "sigmoid", None, 1000, False),
        Workload("digits", (64, 128, 10), "relu", 64, 1, True),
        Workload("mnist-shape", (784, 256, 128, 10), "relu", 128, 1, True),
        Workload("wide", (1024, 2048, 2048, 10), "relu", 512, 1, True),
    )
}


# --- the systems: each returns a function that runs one timed unit (an epoch) ----------------
def neurocloud_system(w: Workload, X: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    out_act = "softmax" if w.classify else None
    hidden = [nc.layers.Dense(u, activation=w.activation) for u in w.sizes[1:-1]]
    model = nc.Sequential(
        [*hidden, nc.layers.Dense(w.sizes[-1], activation=out_act)], input_dim=w.sizes[0], seed=0
    )
    loss = "sparse_categorical_crossentropy" if w.classify else "mse"
    opt = nc.optim.Adam(lr=LR)
    return lambda: model.fit(X, y, loss=loss, optimizer=opt, epochs=w.epochs, batch_size=w.batch)


def torch_system(threads: int) -> Callable:
    def make(w: Workload, X: np.ndarray, y: np.ndarray) -> Callable[[], None]:
        import torch

        torch.manual_seed(0)
        mods: list = []
        for a, b in zip(w.sizes[:-2], w.sizes[1:-1]):
            mods += [
                torch.nn.Linear(a, b),
                torch.nn.ReLU() if w.activation == "relu" else torch.nn.Sigmoid(),
            ]
        model = torch.nn.Sequential(*mods, torch.nn.Linear(w.sizes[-2], w.sizes[-1]))
        # fused=True: PyTorch's fastest Adam on the CPU (the default loop is ~25% slower here)
        opt = torch.optim.Adam(model.parameters(), lr=LR, fused=True)
        loss_fn = torch.nn.CrossEntropyLoss() if w.classify else torch.nn.MSELoss()
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        n, batch = len(X), w.batch or len(X)
        gen = torch.Generator().manual_seed(0)

        def step(xb, yb) -> None:
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xb), yb).backward()
            opt.step()

        def epoch() -> None:
            torch.set_num_threads(threads)
            for _ in range(w.epochs):
                if batch >= n:
                    step(Xt, yt)
                    continue
                perm = torch.randperm(n, generator=gen)
                Xs, ys = Xt[perm], yt[perm]
                for i in range(0, n, batch):
                    step(Xs[i : i + batch], ys[i : i + batch])

        return epoch

    return make


def sklearn_system(w: Workload, X: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    cls = MLPClassifier if w.classify else MLPRegressor
    act = {"relu": "relu", "sigmoid": "logistic"}[w.activation]
    settings = dict(
        hidden_layer_sizes=w.sizes[1:-1],
        activation=act,
        solver="adam",
        learning_rate_init=LR,
        alpha=0.0,
        batch_size=w.batch or len(X),
        random_state=0,
        tol=0.0,
        n_iter_no_change=10**9,
    )
    target = y if w.classify else y.ravel()
    if w.epochs == 1:  # one epoch per partial_fit call, state kept between calls
        model = cls(**settings)
        classes = np.unique(y) if w.classify else None
        kwargs = {"classes": classes} if w.classify else {}
        return lambda: model.partial_fit(X, target, **kwargs)

    def epochs() -> None:  # its own loop is faster than 1000 partial_fit calls
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            cls(**settings, max_iter=w.epochs, shuffle=False).fit(X, target)

    return epochs


def gemm_floor_system(
    w: Workload, X: np.ndarray, y: np.ndarray, adam: bool = False, gather: bool = False
) -> Callable[[], None]:
    """Only the GEMMs of the training steps, into preallocated arrays; with ``adam``,
    neurocloud's Adam update of the model's parameter count after each step's GEMMs, on
    the gradient buffer the GEMMs have just written (as in training: the update finds the
    cache as the GEMMs leave it); with ``gather`` too, each epoch's shuffled batches are
    gathered into one buffer as ``fit`` gathers them (rows and labels), and the products
    read it: the work every shuffled minibatch step does before any bias, activation or
    loss pass."""
    rng = np.random.default_rng(1)
    n, batch = len(X), w.batch or len(X)
    gather = gather and batch < n
    if gather:
        x_buf = np.empty((batch, X.shape[1]), X.dtype)
        y_buf = np.empty((batch, *y.shape[1:]), y.dtype)
    kernels = [
        rng.standard_normal((a, b), dtype=np.float32) * 0.01
        for a, b in zip(w.sizes[:-1], w.sizes[1:])
    ]
    # the kernel gradients are views into one flat buffer, as in a model (biases after them)
    flat_grads = _placed(np.zeros(_param_count(w), np.float32), 1)
    grads, offset = [], 0
    for k in kernels:
        grads.append(flat_grads[offset : offset + k.size].reshape(k.shape))
        offset += k.size
    if adam:
        params = [_placed(rng.standard_normal(flat_grads.size, dtype=np.float32), 0)]
        opt = nc.optim.Adam(lr=LR)

    def buffers(rows: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        acts = [np.empty((rows, d), np.float32) for d in w.sizes]
        deltas = [rng.standard_normal((rows, d), dtype=np.float32) for d in w.sizes]
        return acts, deltas

    by_rows = {rows: buffers(rows) for rows in {batch, n % batch or batch}}

    def epoch() -> None:
        for _ in range(w.epochs):
            perm = rng.permutation(n) if gather else None
            for start in range(0, n, batch):
                if perm is None:
                    xb = X[start : start + batch]
                else:
                    rows = perm[start : start + batch]
                    xb = X.take(rows, axis=0, out=x_buf[: len(rows)], mode="clip")
                    y.take(rows, axis=0, out=y_buf[: len(rows)], mode="clip")
                acts, deltas = by_rows[len(xb)]
                acts[0] = xb
                for i, k in enumerate(kernels):
                    np.matmul(acts[i], k, out=acts[i + 1])
                for i in range(len(kernels) - 1, -1, -1):
                    np.matmul(acts[i].T, deltas[i + 1], out=grads[i])
                    if i:
                        np.matmul(deltas[i + 1], kernels[i].T, out=deltas[i])
                if adam:
                    opt.step(params, [flat_grads])

    return epoch


def step_floor_system(w: Workload, X: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    """A training step on NumPy without the engine: gather the shuffled batch into a buffer,
    run each layer's product, add its bias and apply its activation, then mask the gradient
    by the activation's derivative, sum the bias gradients, run the products, and update
    the weights in place with Adam. The passes are neurocloud's own (compiled where
    loaded); the loss's gradient is a fixed array. What neurocloud adds beyond this loop
    is the loss and the engine's Python."""
    rng = np.random.default_rng(1)
    n, batch = len(X), w.batch or len(X)
    dims = list(zip(w.sizes[:-1], w.sizes[1:]))
    flat_grads = _placed(np.zeros(_param_count(w), np.float32), 1)
    # As in a model: the weights and their gradients are views into two flat buffers, and
    # Adam updates the weights the next step's products read (a writer on one core and
    # readers on both: 1.63x -> 1.87x the floor for mnist-shape, measured in one process).
    flat = _placed(rng.standard_normal(flat_grads.size, dtype=np.float32) * 0.01, 0)
    kernels, kernel_grads, biases, bias_grads, offset = [], [], [], [], 0
    for a, b in dims:
        kernels.append(flat[offset : offset + a * b].reshape(a, b))
        kernel_grads.append(flat_grads[offset : offset + a * b].reshape(a, b))
        biases.append(flat[offset + a * b : offset + a * b + b])
        bias_grads.append(flat_grads[offset + a * b : offset + a * b + b])
        offset += (a + 1) * b
    acts_fns = [nc.activations.get(w.activation) for _ in dims]  # one per layer, as in a model
    params = [flat]
    opt = nc.optim.Adam(lr=LR)
    x_buf = np.empty((batch, X.shape[1]), X.dtype)
    y_buf = np.empty((batch, *y.shape[1:]), y.dtype)
    last = len(dims) - 1
    # the loss's gradient (fixed: the bound has no loss) and the ones of the bias sums, by rows
    by_rows = {
        rows: (
            rng.standard_normal((rows, w.sizes[-1]), dtype=np.float32),
            np.ones(rows, np.float32),
        )
        for rows in {batch, n % batch or batch}
    }

    def epoch() -> None:
        for _ in range(w.epochs):
            perm = rng.permutation(n) if batch < n else None
            for start in range(0, n, batch):
                stop = min(start + batch, n)
                if perm is None:
                    xb = X[start:stop]
                else:
                    rows = perm[start:stop]
                    xb = X.take(rows, axis=0, out=x_buf[: stop - start], mode="clip")
                    y.take(rows, axis=0, out=y_buf[: stop - start], mode="clip")
                acts = [xb]
                for i, k in enumerate(kernels):
                    z = acts[i].dot(k)
                    acts.append(acts_fns[i].forward_biased(z, biases[i]) if i < last else z)
                    if i == last:
                        z += biases[i]
                grad, ones = by_rows[len(xb)]
                for i in range(last, -1, -1):
                    if i < last:
                        grad = acts_fns[i].backward(grad, acts[i + 1], acts[i + 1])
                    np.matmul(acts[i].T, grad, out=kernel_grads[i])
                    np.matmul(ones, grad, out=bias_grads[i])
                    if i:
                        grad = grad.dot(kernels[i].T)
                opt.step(params, [flat_grads])

    return epoch


def _param_count(w: Workload) -> int:
    return sum((a + 1) * b for a, b in zip(w.sizes[:-1], w.sizes[1:]))


def _steps(w: Workload, n: int) -> int:
    return w.epochs * -(-n // (w.batch or n))


def _placed(array: np.ndarray, lane: int) -> np.ndarray:
    """``array`` copied to where a model keeps that kind of array (``nn.memory``: the
    parameters in lane 0 of a page, the gradients in lane 1), so that a bound's update
    meets the memory layout ``fit``'s does; as it is where the checkout has no lanes."""
    try:
        from neurocloud.nn.memory import placed
    except ImportError:  # --against an older checkout
        return array
    return placed(array, lane)


def _unit_gradient(size: int) -> np.ndarray:
    # Entries of +-1: Adam squares its gradient in place, and 1 squared stays 1, so repeated
    # steps never reach infinities or subnormal numbers (whose arithmetic is slower).
    return np.where(np.random.default_rng(2).random(size) < 0.5, -1.0, 1.0).astype(np.float32)


def adam_alone_system(w: Workload, X: np.ndarray, y: np.ndarray) -> Callable[[], None]:
    """neurocloud's Adam update alone: an epoch's steps over the model's parameter count."""
    weights = np.random.default_rng(1).standard_normal(_param_count(w), dtype=np.float32)
    params, grads = [_placed(weights, 0)], [_placed(_unit_gradient(weights.size), 1)]
    opt, steps = nc.optim.Adam(lr=LR), _steps(w, len(X))

    def epoch() -> None:
        for _ in range(steps):
            opt.step(params, grads)

    return epoch


def torch_adam_alone_system(threads: int) -> Callable:
    """PyTorch's fused (compiled, vectorised) CPU Adam alone, as a bound for a fused update."""

    def make(w: Workload, X: np.ndarray, y: np.ndarray) -> Callable[[], None]:
        import torch

        param = torch.nn.Parameter(torch.randn(_param_count(w)))
        param.grad = torch.from_numpy(_unit_gradient(param.numel()))
        opt, steps = torch.optim.Adam([param], lr=LR, fused=True), _steps(w, len(X))

        def epoch() -> None:
            torch.set_num_threads(threads)
            for _ in range(steps):
                opt.step()

        return epoch

    return make


SYSTEMS: dict[str, Callable] = {
    "neurocloud": neurocloud_system,
    "torch-1t": torch_system(1),
    "torch-2t": torch_system(2),
    "sklearn": sklearn_system,
    "gemm-floor": gemm_floor_system,
    "floor-adam": lambda w, X, y: gemm_floor_system(w, X, y, adam=True),
    "floor-gather-adam": lambda w, X, y: gemm_floor_system(w, X, y, adam=True, gather=True),
    "floor-step": step_floor_system,
    "adam-alone": adam_alone_system,
    "torch-1t-adam": torch_adam_alone_system(1),
    "torch-2t-adam": torch_adam_alone_system(2),
}


# --- inference ----------------------------------------------------------------------------------
def _article_torch():
    import torch

    return torch.nn.Sequential(
        torch.nn.Linear(1, 2),
        torch.nn.Sigmoid(),
        torch.nn.Linear(2, 2),
        torch.nn.Sigmoid(),
        torch.nn.Linear(2, 1),
    )


def _mnist_model() -> nc.Sequential:
    w = WORKLOADS["mnist-shape"]
    hidden = [nc.layers.Dense(u, activation="relu") for u in w.sizes[1:-1]]
    return nc.Sequential(
        [*hidden, nc.layers.Dense(10, activation="softmax")], input_dim=w.sizes[0], seed=0
    )


def _inference_model(network: str) -> nc.Sequential:
    if network == "article":
        from neurocloud.demo import article_network

        return article_network(seed=0)
    return _mnist_model()


def _onnx_run(model: nc.Sequential, threads: int, X: np.ndarray) -> Callable[[], object]:
    """onnxruntime's CPU session on the model's own ONNX export, ``threads`` intra-op threads."""
    import onnxruntime as ort

    from neurocloud.export.onnx_export import to_onnx_model

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    session = ort.InferenceSession(
        to_onnx_model(model).SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    name = session.get_inputs()[0].name
    return lambda: session.run(None, {name: X})[0]


def _torch_mnist(threads: int, X: np.ndarray) -> Callable[[], object]:
    import torch

    w = WORKLOADS["mnist-shape"]
    mods: list = []
    for a, b in zip(w.sizes[:-2], w.sizes[1:-1]):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    tmodel = torch.nn.Sequential(*mods, torch.nn.Linear(w.sizes[-2], 10), torch.nn.Softmax(1))
    torch.set_num_threads(threads)

    def run() -> object:
        with torch.inference_mode():
            return tmodel(torch.from_numpy(X)).numpy()

    return run


def _row_runs(network: str, systems: tuple[str, ...]) -> dict[str, Callable[[], object]]:
    """One predict of one row (neurocloud: input checks included)."""
    if network == "article":
        x = np.array([[4.5]], dtype=np.float32)
    else:
        x = np.random.default_rng(3).standard_normal((1, 784), dtype=np.float32)
    runs: dict[str, Callable[[], object]] = {}
    for system in systems:
        kind, threads = system.rsplit("-", 1)
        if kind == "neurocloud":
            model = _inference_model(network)
            runs[system] = lambda model=model: model.predict(x)
        elif kind == "gemm-floor":
            runs[system] = _floor_run(_inference_model(network), x)
        elif kind == "calls-floor":
            runs[system] = _calls_floor_run(_inference_model(network), x)
        elif kind == "onnx":
            runs[system] = _onnx_run(_inference_model(network), int(threads[0]), x)
        elif network == "article":
            import torch

            tmodel = _article_torch()
            torch.set_num_threads(int(threads[0]))

            def run(tmodel=tmodel) -> object:
                with torch.inference_mode():
                    return tmodel(torch.from_numpy(x)).numpy()

            runs[system] = run
        else:
            runs[system] = _torch_mnist(int(threads[0]), x)
    return runs


def _floor_run(model: nc.Sequential, X: np.ndarray) -> Callable[[], None]:
    """The model's forward matrix products alone, into preallocated outputs."""
    kernels = [layer.params["kernel"] for layer in model.layers]
    outs = [np.empty((len(X), k.shape[1]), np.float32) for k in kernels]

    def floor() -> None:
        x = X
        for k, out in zip(kernels, outs):
            x = np.matmul(x, k, out=out)

    return floor


def _passes_floor_run(model: nc.Sequential, X: np.ndarray) -> Callable[[], None]:
    """A bound for a batch predict made of NumPy calls: predict's own calls on its blocks of
    rows, without the engine's Python. For each block, the input check; for each layer, the
    product into a reused buffer, the bias added in place, the activation in place (a ReLU
    one ``maximum`` against zeros of its shape, any other its own ``forward``); then the
    block's output copied into the result. A process that never trained never loads the
    compiled passes, so these are NumPy's."""
    from neurocloud.nn import activations as acts
    from neurocloud.nn.sequential import PREDICT_BLOCK_BYTES
    from neurocloud.nn.validation import all_finite

    widths = [model.input_dim] + [layer.units for layer in model.layers]
    rows = max(64, PREDICT_BLOCK_BYTES // (max(widths) * X.dtype.itemsize))
    layers = [
        (layer.params["kernel"], layer.params["bias"][None], layer.activation)
        for layer in model.layers
    ]
    bufs = [np.empty((rows, kernel.shape[1]), X.dtype) for kernel, _, _ in layers]
    out = np.empty((len(X), widths[-1]), X.dtype)
    matmul, add, maximum = np.matmul, np.add, np.maximum

    def run() -> None:
        for start in range(0, len(X), rows):
            x = X[start : start + rows]
            all_finite(x)
            for (kernel, bias, act), buf in zip(layers, bufs):
                z = matmul(x, kernel, out=buf[: len(x)])
                add(z, bias, out=z)
                if type(act) is acts.ReLU:
                    maximum(z, acts.zeros_like(z), out=z)
                elif type(act) is not acts.Identity:
                    act.forward(z, out=z)
                x = z
            out[start : start + len(x)] = x

    return run


def _calls_floor_run(model: nc.Sequential, X: np.ndarray) -> Callable[[], None]:
    """A bound for a one-row forward pass of NumPy calls: the GEMM floor plus one call for
    each element-wise pass, each into a preallocated array of its own (NumPy runs an
    in-place ufunc on one element through a slower path), and an input check of one BLAS
    call. A ReLU is one ``maximum`` against zeros of its shape, a sigmoid one
    ``scipy.special.expit``, a softmax an exp, a row sum and a divide (no shift by the row
    maximum, no check of the results). A one-unit bias is one out-of-place add, which costs
    what the plan's Python floats do. (For many rows it is no bound: the passes in place
    and predict's blocks of rows cost less memory traffic.)"""
    from scipy.special import expit

    from neurocloud.nn import activations as acts

    flat, ones = X.reshape(-1), np.ones(X.size, X.dtype)
    layers = []
    for layer in model.layers:
        kernel = layer.params["kernel"]
        shape = (len(X), kernel.shape[1])
        bufs = tuple(np.empty(shape, X.dtype) for _ in range(3))
        extra = (
            np.zeros(shape, X.dtype),
            np.empty((len(X), 1), X.dtype),
            np.ones((shape[1], 1), X.dtype),
        )
        act = type(layer.activation)
        if act not in (acts.ReLU, acts.Sigmoid, acts.Softmax, acts.Identity):
            raise ValueError(f"the calls floor has no form for {act.__name__}")
        bias = layer.params["bias"].reshape(1, -1) if layer.use_bias else None
        layers.append((kernel, bias, act, bufs, extra))
    maximum, add, exp, divide, matmul = np.maximum, np.add, np.exp, np.divide, np.matmul

    def run() -> None:
        math.isfinite(flat.dot(ones))
        x = X
        for kernel, bias, act, (p, q, r), (zeros, sums, column) in layers:
            x = matmul(x, kernel, out=p)
            if bias is not None:
                x = add(p, bias, out=q)
            if act is acts.ReLU:
                x = maximum(x, zeros, out=r)
            elif act is acts.Sigmoid:
                x = expit(x, out=r)
            elif act is acts.Softmax:
                exp(x, out=r)
                matmul(r, column, out=sums)
                x = divide(r, sums, out=p if x is q else q)

    return run


def batch_systems(systems: tuple[str, ...]) -> dict[str, Callable[[], object]]:
    """Predict mnist-shape's 60,000 rows; the floor is the same model's forward GEMMs alone."""
    w = WORKLOADS["mnist-shape"]
    X, _ = w.data()
    runs: dict[str, Callable[[], object]] = {}
    model = _mnist_model()
    for system in systems:
        if system.startswith("neurocloud"):
            runs[system] = lambda: model.predict(X)
        elif system.startswith("gemm-floor"):
            runs[system] = _floor_run(model, X)
        elif system == "input-check":
            # predict's input check (NaN and infinity are refused), timed alone on the same rows
            runs[system] = lambda: nc.nn.validation.all_finite(X)
        elif system == "passes-floor":
            runs[system] = _passes_floor_run(model, X)
        elif system.startswith("onnx"):
            runs[system] = _onnx_run(model, int(system[-2]), X)
        else:
            runs[system] = _torch_mnist(int(system[-2]), X)
    return runs


#: row counts of the batch-size sweep (mnist-shape network) against onnxruntime
SWEEP_ROWS = (64, 256, 1024, 4096)


def sweep_systems(systems: tuple[str, ...]) -> dict[str, Callable[[], object]]:
    """``SYSTEM@ROWS``: predict of ROWS mnist-shape rows."""
    X = np.random.default_rng(4).standard_normal((max(SWEEP_ROWS), 784), dtype=np.float32)
    model = _mnist_model()
    runs: dict[str, Callable[[], object]] = {}
    for name in systems:
        system, rows = name.split("@")
        xb = X[: int(rows)]
        if system.startswith("neurocloud"):
            runs[name] = lambda xb=xb: model.predict(xb)
        elif system.startswith("gemm-floor"):
            runs[name] = _floor_run(model, xb)
        else:
            runs[name] = _onnx_run(model, int(system[-2]), xb)
    return runs


#: the worker processes of each task, each with the systems it runs. neurocloud and its GEMM
#: floor share a process (the same NumPy and BLAS state); each peer has its own, so that no
#: library's idle threads spin while another library runs. A ``-1t`` neurocloud worker runs
#: with NumPy's BLAS limited to one thread (threadpoolctl), to compare with one-thread peers.
TASKS: dict[str, tuple[tuple[str, ...], ...]] = {
    **{
        name: (
            (
                "neurocloud",
                "gemm-floor",
                "adam-alone",
                "floor-adam",
                "floor-gather-adam",
                "floor-step",
            ),
            ("torch-1t", "torch-1t-adam"),
            ("torch-2t", "torch-2t-adam"),
            ("sklearn",),
        )
        for name in WORKLOADS
    },
    **{
        f"predict-row-{network}": (
            ("neurocloud-1t", "gemm-floor-1t", "calls-floor-1t"),
            ("neurocloud-2t", "gemm-floor-2t", "calls-floor-2t"),
            ("torch-1t",),
            ("torch-2t",),
            ("onnx-1t",),
            ("onnx-2t",),
        )
        for network in ("article", "mnist")
    },
    "predict-batch": (
        ("neurocloud-2t", "gemm-floor-2t", "input-check", "passes-floor"),
        ("neurocloud-1t", "gemm-floor-1t"),
        ("torch-1t",),
        ("torch-2t",),
        ("onnx-1t",),
        ("onnx-2t",),
    ),
    "predict-sweep": (
        tuple(
            f"{system}-1t@{rows}" for system in ("neurocloud", "gemm-floor") for rows in SWEEP_ROWS
        ),
        tuple(
            f"{system}-2t@{rows}" for system in ("neurocloud", "gemm-floor") for rows in SWEEP_ROWS
        ),
        tuple(f"onnx-1t@{rows}" for rows in SWEEP_ROWS),
        tuple(f"onnx-2t@{rows}" for rows in SWEEP_ROWS),
    ),
}


def make_runs(task: str, systems: tuple[str, ...]) -> dict[str, Callable[[], object]]:
    if task.startswith("predict-row-"):
        return _row_runs(task.removeprefix("predict-row-"), systems)
    if task == "predict-batch":
        return batch_systems(systems)
    if task == "predict-sweep":
        return sweep_systems(systems)
    w = WORKLOADS[task]
    X, y = w.data()
    return {system: SYSTEMS[system](w, X, y) for system in systems}


# --- workers ----------------------------------------------------------------------------------
def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/self/status")


def worker(task: str, systems: str) -> None:
    """Serve the parent: ``warmup SYSTEM`` (one cold run, timed, with its peak memory) and
    ``time SYSTEM K`` (seconds per run over K runs)."""
    names = systems.split(",")
    if names[0].startswith(("neurocloud-1t", "gemm-floor-1t")):
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)  # for the whole worker: NumPy's BLAS on one thread
    bases = [name.removesuffix(AGAINST) for name in names]
    made = make_runs(task, tuple(bases))
    runs = {name: made[base] for name, base in zip(names, bases)}
    print("ready", flush=True)
    for line in sys.stdin:
        command, system, *rest = line.split()
        run = runs[system]
        if command == "warmup":
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # the high-water mark VmHWM restarts from the current RSS
            before = _status_kib("VmRSS")
            start = time.perf_counter()
            run()
            seconds = time.perf_counter() - start
            reply = {"seconds": seconds, "peak_mib": (_status_kib("VmHWM") - before) / 1024}
        else:
            calls = int(rest[0])
            start = time.perf_counter()
            for _ in range(calls):
                run()
            reply = {"seconds": (time.perf_counter() - start) / calls}
        print(json.dumps(reply), flush=True)


class Worker:
    def __init__(self, task: str, systems: tuple[str, ...], src: str | None = None) -> None:
        cmd = [sys.executable, __file__, "--worker", task, ",".join(systems)]
        self.systems = systems
        env = None if src is None else {**os.environ, "PYTHONPATH": src}
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
        )

    def ask(self, command: str) -> dict:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {self.systems} died (exit code {self.proc.wait()})")
        return json.loads(line)

    def wait_ready(self) -> None:
        assert self.proc.stdout
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"worker {self.systems} failed to start")

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=60)


#: pause before each sample: idle OpenBLAS and OpenMP threads of the system that ran before
#: keep spinning on a core for up to ~0.1 s, which would slow whichever system runs next
SETTLE_S = 0.2


def measure(
    task: str,
    rounds: int,
    min_sample_s: float,
    layout: list[tuple[tuple[str, ...], str | None]] | None = None,
) -> tuple[dict[str, float], dict]:
    """Median seconds per run of each system, and each one's peak memory during its first run.

    Every system warms up once (that run gives its memory), then each round times every
    system in turn, in an order that rotates; one sample repeats the run until it lasts
    about ``min_sample_s``. ``layout``: the workers' systems and the source tree each
    imports neurocloud from (``None``: this process's), instead of ``TASKS[task]``.
    """
    layout = layout or [(systems, None) for systems in TASKS[task]]
    workers = [Worker(task, systems, src) for systems, src in layout]
    try:
        for w in workers:
            w.wait_ready()
        cells = [(w, system) for w in workers for system in w.systems]
        memory, calls = {}, {}
        for w, system in cells:
            time.sleep(SETTLE_S)
            memory[system] = w.ask(f"warmup {system}")["peak_mib"]
            # Sized from warm runs: the first one pays for imports and compilation (numba's
            # for the compiled Adam), which would leave the samples a single short run each;
            # a run of a few microseconds is timed over enough calls to last 10 ms.
            warm = w.ask(f"time {system} 1")["seconds"]
            if warm < 0.01:
                probe = round(0.01 / max(warm, 1e-7))
                warm = w.ask(f"time {system} {probe}")["seconds"]
            calls[system] = max(1, round(min_sample_s / max(warm, 1e-7)))
        samples: dict[str, list[float]] = {system: [] for _, system in cells}
        for r in range(rounds):
            for w, system in cells[r % len(cells) :] + cells[: r % len(cells)]:
                time.sleep(SETTLE_S)
                samples[system].append(w.ask(f"time {system} {calls[system]}")["seconds"])
    finally:
        for w in workers:
            w.close()
    return {name: statistics.median(t) for name, t in samples.items()}, memory


# --- report -----------------------------------------------------------------------------------
def _torch_blas(config: str) -> str:
    """PyTorch's BLAS from ``torch.__config__.show()`` (``BLAS_INFO=mkl``, ``=open``...)."""
    for item in config.replace("\n", ",").split(","):
        key, _, value = item.strip().partition("=")
        if key == "BLAS_INFO":
            return {"mkl": "MKL", "open": "OpenBLAS"}.get(value, value)
    return "MKL" if "Intel(R) oneAPI Math Kernel Library" in config else "unknown"


def describe_machine() -> list[str]:
    import onnxruntime
    import torch
    from threadpoolctl import threadpool_info

    lines = [
        f"python {platform.python_version()}, numpy {np.__version__}, "
        f"torch {torch.__version__}, sklearn {__import__('sklearn').__version__}, "
        f"onnxruntime {onnxruntime.__version__}"
    ]
    try:
        cpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        keep = ("Model name", "CPU(s)", "Thread(s) per core", "L2 cache", "L3 cache")
        lines += [" ".join(ln.split()) for ln in cpu.splitlines() if ln.startswith(keep)]
    except OSError:
        lines.append(platform.processor())
    for lib in threadpool_info():
        if lib["user_api"] == "blas":
            lines.append(
                f"NumPy BLAS: internal_api {lib['internal_api']} {lib['version']}, "
                f"architecture {lib.get('architecture')}, num_threads {lib['num_threads']} "
                f"({os.path.basename(lib['filepath'])})"
            )
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    lines.append(
        f"OPENBLAS_CORETYPE={coretype or '(unset)'}; PyTorch BLAS: "
        f"{_torch_blas(torch.__config__.show())}, torch threads {torch.get_num_threads()}"
    )
    lines.append(f"NEUROCLOUD_COMPILED={os.environ['NEUROCLOUD_COMPILED']}")
    lines.append(f"load average at start: {os.getloadavg()}")
    return lines


def _inference(args: argparse.Namespace, rounds: int, min_sample: float) -> list[str]:
    rows = [
        "| inference | neurocloud | PyTorch (best threads) | onnxruntime 1t / 2t | "
        "GEMM floor | ratio |",
        "|---|---|---|---|---|---|",
    ]
    for network, label in (("article", "article network"), ("mnist", "mnist-shape")):
        if f"predict-row-{network}" not in args.tasks:
            continue
        t, _ = measure(f"predict-row-{network}", max(rounds, 3), min_sample)
        one, two = t["neurocloud-1t"], t["neurocloud-2t"]
        torch_best = min(t["torch-1t"], t["torch-2t"])
        o1, o2 = t["onnx-1t"], t["onnx-2t"]
        f1, f2 = t["gemm-floor-1t"], t["gemm-floor-2t"]
        c1, c2 = t["calls-floor-1t"], t["calls-floor-2t"]
        rows.append(
            f"| single-row predict, {label}: 1t / 2t | {one * 1e6:.1f} / {two * 1e6:.1f} us | "
            f"{torch_best * 1e6:.1f} us | {o1 * 1e6:.1f} / {o2 * 1e6:.1f} us | "
            f"{f1 * 1e6:.1f} / {f2 * 1e6:.1f} us | {one / o1:.2f}x / {two / o2:.2f}x "
            f"onnxruntime (same threads), {min(one, two) / torch_best:.2f}x PyTorch; "
            f"calls floor {c1 * 1e6:.1f} / {c2 * 1e6:.1f} us = {c1 / o1:.2f}x / {c2 / o2:.2f}x "
            "onnxruntime |"
        )
        print(rows[-1], flush=True)
    if "predict-batch" in args.tasks:
        t, _ = measure("predict-batch", rounds, min_sample)
        torch_best = min(t["torch-1t"], t["torch-2t"])
        floor, nc_ = t["gemm-floor-2t"], t["neurocloud-2t"]
        rows.append(
            f"| mnist-shape predict, 60,000 rows (2t) | {nc_:.4f} s | {torch_best:.4f} s | "
            f"{t['onnx-1t']:.4f} / {t['onnx-2t']:.4f} s | {floor:.4f} s | "
            f"{nc_ / floor:.2f}x floor, {nc_ / torch_best:.2f}x PyTorch, "
            f"{nc_ / t['onnx-2t']:.2f}x onnxruntime 2t |"
        )
        rows.append(
            f"| same, NumPy's BLAS on 1 thread | {t['neurocloud-1t']:.4f} s | - | - | "
            f"{t['gemm-floor-1t']:.4f} s | {t['neurocloud-1t'] / t['gemm-floor-1t']:.2f}x floor, "
            f"{t['neurocloud-1t'] / t['onnx-1t']:.2f}x onnxruntime 1t |"
        )
        check = t["input-check"]
        rows.append(
            f"| lower bound: GEMM floor + input check alone ({check:.4f} s) | - | - | - | "
            f"{floor + check:.4f} s | {(floor + check) / floor:.2f}x floor |"
        )
        passes = t["passes-floor"]
        rows.append(
            "| lower bound: predict's NumPy calls on its blocks, without the engine | - | - | "
            f"- | {passes:.4f} s | {passes / floor:.2f}x floor; neurocloud {nc_ / passes:.2f}x it |"
        )
        print("\n".join(rows[-4:]), flush=True)
    if "predict-sweep" in args.tasks:
        t, _ = measure("predict-sweep", rounds, min_sample)
        for n in SWEEP_ROWS:
            one, two = t[f"neurocloud-1t@{n}"], t[f"neurocloud-2t@{n}"]
            o1, o2 = t[f"onnx-1t@{n}"], t[f"onnx-2t@{n}"]
            f1, f2 = t[f"gemm-floor-1t@{n}"], t[f"gemm-floor-2t@{n}"]
            rows.append(
                f"| mnist-shape predict, {n} rows: 1t / 2t | {one * 1e3:.3f} / {two * 1e3:.3f} ms "
                f"| - | {o1 * 1e3:.3f} / {o2 * 1e3:.3f} ms | {f1 * 1e3:.3f} / {f2 * 1e3:.3f} ms | "
                f"{one / o1:.2f}x / {two / o2:.2f}x onnxruntime (same threads); floor "
                f"{f1 / o1:.2f}x / {f2 / o2:.2f}x onnxruntime, neurocloud {one / f1:.2f}x / "
                f"{two / f2:.2f}x floor |"
            )
            print(rows[-1], flush=True)
    return rows if len(rows) > 2 else []


#: suffix of the systems that run from the ``--against`` source tree
AGAINST = "+against"

#: what ``--against`` compares in each task: neurocloud, and its GEMM floor as a control
#: (the same NumPy in both processes, so its ratio shows how fair the pairing was)
COMPARED = {
    **{name: ("neurocloud", "gemm-floor") for name in WORKLOADS},
    "predict-row-article": ("neurocloud-2t",),
    "predict-row-mnist": ("neurocloud-2t",),
    "predict-batch": ("neurocloud-2t", "gemm-floor-2t"),
    "predict-sweep": tuple(f"neurocloud-2t@{rows}" for rows in SWEEP_ROWS),
}


def compare(args: argparse.Namespace, rounds: int, min_sample: float) -> None:
    """This checkout's neurocloud against the one in ``args.against``, interleaved."""
    src = os.path.abspath(args.against)
    print(f"this checkout: {os.path.dirname(os.path.dirname(nc.__file__))}; against: {src}\n")
    print("| task | system | against (s) | this checkout (s) | this / against |")
    print("|---|---|---|---|---|")
    for task in args.tasks:
        systems = COMPARED[task]
        layout = [(systems, None), (tuple(name + AGAINST for name in systems), src)]
        t, _ = measure(task, rounds, min_sample, layout)
        for name in systems:
            before, now = t[name + AGAINST], t[name]
            print(
                f"| {task} | {name} | {before:.6f} | {now:.6f} | {now / before:.3f} |", flush=True
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round, short samples")
    parser.add_argument("--rounds", type=int, help="timed rounds per system (default 5; quick 1)")
    parser.add_argument("--tasks", nargs="+", choices=list(TASKS), default=list(TASKS))
    parser.add_argument(
        "--against",
        metavar="SRC",
        help="compare neurocloud alone with the one imported from SRC (a checkout's src/)",
    )
    parser.add_argument("--worker", nargs=2, metavar=("TASK", "SYSTEMS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    rounds = args.rounds or (1 if args.quick else 5)
    min_sample = 0.05 if args.quick else 0.25
    # Steady state: Adam's compiled kernel (where numba is installed) from the first update,
    # in the warm-up, instead of after about a second of NumPy updates.
    os.environ.setdefault("NEUROCLOUD_COMPILED", "always")
    started = time.perf_counter()
    print("\n".join(describe_machine()))
    print(f"rounds: {rounds}; command: {' '.join(sys.argv)}\n")
    if args.against:
        compare(args, rounds, min_sample)
    else:
        report(args, rounds, min_sample)
    print(f"\nload average at end: {os.getloadavg()}; took {time.perf_counter() - started:.0f} s")


def report(args: argparse.Namespace, rounds: int, min_sample: float) -> None:
    """The tables: training against the peers and the bounds, then inference."""
    rows = [
        "| workload | neurocloud | PyTorch (best threads) | scikit-learn | GEMM floor | "
        "vs fastest peer | vs PyTorch | x GEMM floor | peak MiB: neurocloud / PyTorch / sklearn |",
        "|" + "---|" * 9,
    ]
    bounds = [
        "| workload | GEMM floor | Adam alone: neurocloud | Adam alone: PyTorch fused | "
        "floor + neurocloud Adam | floor + fused Adam | floor and Adam in one loop | "
        "floor, batch gathering and Adam in one loop (x floor; x PyTorch) | "
        "a step on NumPy without the engine | neurocloud |",
        "|" + "---|" * 10,
    ]
    for task in [t for t in args.tasks if t in WORKLOADS]:
        t, mem = measure(task, rounds, min_sample)
        floor, fused = t["gemm-floor"], min(t["torch-1t-adam"], t["torch-2t-adam"])
        threads = "1t" if t["torch-1t"] <= t["torch-2t"] else "2t"
        torch_best = t["torch-" + threads]
        gathered = t["floor-gather-adam"]
        bounds.append(
            f"| {task} | {floor:.4f} | {t['adam-alone']:.4f} | {fused:.4f} | "
            f"{(floor + t['adam-alone']) / floor:.2f}x | {(floor + fused) / floor:.2f}x | "
            f"{t['floor-adam']:.4f} s = {t['floor-adam'] / floor:.2f}x | "
            f"{gathered:.4f} s = {gathered / floor:.2f}x; {gathered / torch_best:.2f}x | "
            f"{t['floor-step']:.4f} s = {t['floor-step'] / floor:.2f}x | "
            f"{t['neurocloud'] / floor:.2f}x |"
        )
        peer = min(torch_best, t["sklearn"])
        peaks = " / ".join(f"{mem[s]:.0f}" for s in ("neurocloud", "torch-" + threads, "sklearn"))
        rows.append(
            f"| {task} | {t['neurocloud']:.4f} | {torch_best:.4f} ({threads}) | "
            f"{t['sklearn']:.4f} | {t['gemm-floor']:.4f} | "
            f"{t['neurocloud'] / peer:.2f}x | {t['neurocloud'] / torch_best:.2f}x | "
            f"{t['neurocloud'] / t['gemm-floor']:.2f}x | {peaks} |"
        )
        print(rows[-1], flush=True)
    if len(rows) > 2:
        print("\nTraining, median seconds per epoch (tiny: per 1000 full-batch steps):")
        print("\n".join(rows))
    if len(bounds) > 2:
        print(
            "\nLower bounds, seconds per epoch: the GEMMs plus the optimizer's update, timed "
            "apart and added, and run in one loop (x GEMM floor; no activations, loss or "
            "batch gathering); the same loop gathering each shuffled batch as fit does (x "
            "floor; x PyTorch's best); then a whole step on NumPy without the engine: gathering, "
            "products, bias, activation and bias-gradient passes, Adam updating the "
            "weights the products read (no loss):"
        )
        print("\n".join(bounds))
    inference = _inference(args, rounds, min_sample)
    if inference:
        print("\nInference, median per call:")
        print("\n".join(inference))


if __name__ == "__main__":
    main()
