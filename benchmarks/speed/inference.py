"""The inference systems (neurocloud, PyTorch, onnxruntime) and their lower bounds: a single
row, mnist-shape's 60,000 rows and the batch-size sweep."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

import neurocloud as nc
from speed.training import WORKLOADS


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


def row_runs(network: str, systems: tuple[str, ...]) -> dict[str, Callable[[], object]]:
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
            runs[system] = floor_run(_inference_model(network), x)
        elif kind == "calls-floor":
            runs[system] = calls_floor_run(_inference_model(network), x)
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


def floor_run(model: nc.Sequential, X: np.ndarray) -> Callable[[], None]:
    """The model's forward matrix products alone, into preallocated outputs."""
    kernels = [layer.params["kernel"] for layer in model.layers]
    outs = [np.empty((len(X), k.shape[1]), np.float32) for k in kernels]

    def floor() -> None:
        x = X
        for k, out in zip(kernels, outs):
            x = np.matmul(x, k, out=out)

    return floor


def passes_floor_run(model: nc.Sequential, X: np.ndarray) -> Callable[[], None]:
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


def calls_floor_run(model: nc.Sequential, X: np.ndarray) -> Callable[[], None]:
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
            runs[system] = floor_run(model, X)
        elif system == "input-check":
            # predict's input check (NaN and infinity are refused), timed alone on the same rows
            runs[system] = lambda: nc.nn.validation.all_finite(X)
        elif system == "passes-floor":
            runs[system] = passes_floor_run(model, X)
        elif system.startswith("onnx"):
            runs[system] = _onnx_run(model, int(system[-2]), X)
        else:
            runs[system] = _torch_mnist(int(system[-2]), X)
    return runs


#: row counts of the batch-size sweep (mnist-shape network) against onnxruntime
SWEEP_ROWS = (64, 256, 1024, 4096)


def sweep_systems(systems: tuple[str, ...]) -> dict[str, Callable[[], object]]:
    """``SYSTEM@ROWS``: predict of ROWS mnist-shape rows; its bounds are the forward GEMMs
    alone (``gemm-floor``) and predict's own NumPy calls without the engine
    (``passes-floor``)."""
    X = np.random.default_rng(4).standard_normal((max(SWEEP_ROWS), 784), dtype=np.float32)
    model = _mnist_model()
    runs: dict[str, Callable[[], object]] = {}
    for name in systems:
        system, rows = name.split("@")
        xb = X[: int(rows)]
        if system.startswith("neurocloud"):
            runs[name] = lambda xb=xb: model.predict(xb)
        elif system.startswith("gemm-floor"):
            runs[name] = floor_run(model, xb)
        elif system.startswith("passes-floor"):
            runs[name] = passes_floor_run(model, xb)
        else:
            runs[name] = _onnx_run(model, int(system[-2]), xb)
    return runs
