"""The article's worked example (section 4.1), run honestly.

The network is the article's: 1 -> 2 -> 2 -> 1 with sigmoid hidden layers and mean squared
error, trained on its four points. The article ends with ``sigmoid(...)``, whose output
cannot exceed 1, so it could never predict 4.625; here the output layer is linear.

>>> result = run(fit_epochs=50)
>>> round(result.article.prediction, 2) != round(result.fitted.prediction, 2)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurocloud.nn import layers, optim
from neurocloud.nn.callbacks import History
from neurocloud.nn.sequential import Sequential

__all__ = ["ARTICLE_PREDICTION", "DemoResult", "Run", "article_network", "report", "run"]

X = np.array([[0.5], [1.5], [2.5], [3.5]])
Y = np.array([[0.75], [1.25], [2.25], [3.75]])
X_TEST = 4.5
ARTICLE_PREDICTION = 4.625


def quadratic(x: float | np.ndarray) -> float | np.ndarray:
    """The curve through the four points: y = 0.25 x^2 + 0.6875."""
    return 0.25 * x**2 + 0.6875


#: the quadratic through the four points gives 5.75 at x = 4.5
QUADRATIC_PREDICTION = quadratic(X_TEST)

EXTRAPOLATION_NOTE = (
    "Four points pin the curve down only on [0.5, 3.5]: beyond them every function through "
    "the points fits the data equally well, so the value at x = 4.5 reflects the network's "
    "shape, initialisation and optimizer rather than the data."
)


def article_network(seed: int = 0, dtype: str = "float32") -> Sequential:
    """The article's network: two hidden layers of two sigmoid neurons, a linear output."""
    return Sequential(
        [
            layers.Dense(2, activation="sigmoid", kernel_initializer="standard_normal"),
            layers.Dense(2, activation="sigmoid", kernel_initializer="standard_normal"),
            layers.Dense(1, kernel_initializer="standard_normal"),
        ],
        input_dim=1,
        seed=seed,
        dtype=dtype,
        name="article-seed-regression",
    )


@dataclass
class Run:
    """One training setting and what it reached."""

    label: str
    model: Sequential
    history: History
    loss: float
    prediction: float


@dataclass
class DemoResult:
    article: Run
    fitted: Run


def _train(label: str, optimizer: optim.Optimizer, epochs: int, seed: int) -> Run:
    model = article_network(seed)
    history = model.fit(X, Y, loss="mse", optimizer=optimizer, epochs=epochs, batch_size=None)
    loss = model.evaluate(X, Y, loss="mse")
    prediction = float(model.predict([[X_TEST]])[0, 0])
    return Run(label, model, history, loss, prediction)


def run(seed: int = 0, fit_epochs: int = 2000) -> DemoResult:
    """Train with the article's settings, then with a setting that fits the four points."""
    article = _train(
        "article: gradient descent, lr 0.01, 1000 epochs", optim.SGD(lr=0.01), 1000, seed
    )
    fitted = _train(f"Adam, lr 0.05, {fit_epochs} epochs", optim.Adam(lr=0.05), fit_epochs, seed)
    return DemoResult(article, fitted)


def report(result: DemoResult) -> str:
    """The demo's findings as text."""
    lines = [
        "The article's network: 1 -> 2 -> 2 -> 1, sigmoid hidden layers, MSE, four points.",
        "Its output layer is linear here: the article's final sigmoid cannot exceed 1, so it",
        "could never predict 4.625.",
        "",
        f"{'setting':<48} {'final MSE':>10} {'f(4.5)':>8}",
    ]
    for r in (result.article, result.fitted):
        lines.append(f"{r.label:<48} {r.loss:>10.2e} {r.prediction:>8.3f}")
    lines += [
        f"{'the article states':<48} {'':>10} {ARTICLE_PREDICTION:>8.3f}",
        f"{'the quadratic through the four points':<48} {'':>10} {QUADRATIC_PREDICTION:>8.3f}",
        "",
        EXTRAPOLATION_NOTE,
    ]
    return "\n".join(lines)


def plot(result: DemoResult, path: str | Path) -> Path:
    """Save the fitted curves, the points and the loss curves to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid = np.linspace(0, 5, 200).reshape(-1, 1)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in (result.article, result.fitted):
        left.plot(grid[:, 0], r.model.predict(grid)[:, 0], label=r.label)
    left.plot(
        grid[:, 0],
        quadratic(grid[:, 0]),
        ":",
        color="grey",
        label="y = 0.25 x² + 0.6875 (through the points)",
    )
    left.scatter(X[:, 0], Y[:, 0], color="black", zorder=3, label="training points")
    left.scatter(
        [X_TEST],
        [ARTICLE_PREDICTION],
        marker="x",
        color="red",
        zorder=3,
        label="article's stated f(4.5) = 4.625",
    )
    left.axvspan(3.5, 5, color="grey", alpha=0.08)
    left.set(xlabel="x", ylabel="y", title="Fitted curves (shaded: extrapolation)")
    left.legend(fontsize=8)
    for r in (result.article, result.fitted):
        right.plot(r.history.history["loss"], label=r.label)
    right.set(xlabel="epoch", ylabel="MSE", yscale="log", title="Training loss")
    right.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
