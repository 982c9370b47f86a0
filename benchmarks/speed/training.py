"""The training workloads, the systems that train them (neurocloud, PyTorch, scikit-learn)
and the lower bounds measured beside them (GEMM floor, Adam alone, the engine-free step).

Each system is a function of ``(workload, X, y)`` that returns a callable running one timed
unit: an epoch (tiny: 1000 full-batch steps).
"""

from __future__ import annotations

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
