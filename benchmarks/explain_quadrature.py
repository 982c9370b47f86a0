"""Integrated gradients: completeness error and cost of three quadrature rules.

Rules, all on the same random float64 networks (random biases, so ReLU paths meet kinks),
inputs ~ N(0, 2^2) and baselines ~ N(0, 0.5^2):

- midpoint: the Riemann midpoint sum over ``steps`` equal pieces (what many libraries do);
- gauss-legendre: ``steps`` Gauss-Legendre nodes over the whole path (Captum's default);
- neurocloud: Gauss-Legendre on the pieces between the network's kinks
  (``neurocloud.explain.integrated_gradients``).

The error is ``|sum(attributions) - (f(x) - f(b))| / |f(x) - f(b)|`` (rows where the output
barely moves, ``|f(x) - f(b)| < 1e-6``, are left out); evaluations are gradient
evaluations per row; time is the median per call of 5 rows (rules interleaved).

Run: .venv/bin/python benchmarks/explain_quadrature.py [--networks 200]
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import lru_cache
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from explain_networks import random_network

from neurocloud.explain.core import model_outputs, resolve_targets, target_gradients
from neurocloud.explain.integrated import integrated_gradients


@lru_cache
def nodes_and_weights(steps: int, rule: str) -> tuple[np.ndarray, np.ndarray]:
    if rule == "midpoint":
        return (np.arange(steps) + 0.5) / steps, np.full(steps, 1.0 / steps)
    nodes, weights = np.polynomial.legendre.leggauss(steps)
    return (nodes + 1) / 2, weights / 2


def fixed_rule(model, X, B, steps: int, rule: str):
    """Completeness errors of a rule that ignores kinks."""
    alphas, weights = nodes_and_weights(steps, rule)
    n, d = X.shape
    outputs = model_outputs(model, np.concatenate([X, B]))
    targets = resolve_targets(outputs[:n], None)
    points = (B[:, None] + alphas[None, :, None] * (X - B)[:, None]).reshape(-1, d)
    _, grads = target_gradients(model, points, np.repeat(targets, steps))
    integral = (grads.reshape(n, steps, d) * weights[None, :, None]).sum(axis=1)
    total = ((X - B) * integral).sum(axis=1)
    change = outputs[:n][np.arange(n), targets] - outputs[n:][np.arange(n), targets]
    return np.abs(total - change), change, steps


def ours(model, X, B, steps: int):
    e = integrated_gradients(model, X, baseline=B, steps=steps)
    change = e.prediction - e.base_value
    return np.abs(e.completeness_error), change, e.settings["gradient_evaluations"] / len(X)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=200)
    args = parser.parse_args()
    rules = {
        "midpoint": lambda m, X, B, s: fixed_rule(m, X, B, s, "midpoint"),
        "gauss-legendre": lambda m, X, B, s: fixed_rule(m, X, B, s, "gauss"),
        "neurocloud": ours,
    }
    print(f"{args.networks} random networks x 5 rows per activation")
    header = f"{'activation':<11}{'rule':<16}{'steps':>6}{'max error':>11}{'median':>10}"
    print(header + f"{'evals/row':>11}{'ms/call':>9}")
    for activation in ("relu", "elu", "tanh"):
        for steps in (64, 128, 256):
            errors = {name: [] for name in rules}
            evaluations = {name: [] for name in rules}
            seconds = {name: [] for name in rules}
            for seed in range(args.networks):
                model = random_network(seed, activation)
                rng = np.random.default_rng(1000 + seed)
                X = rng.normal(0.0, 2.0, size=(5, model.input_dim))
                B = rng.normal(0.0, 0.5, size=X.shape)
                for name, rule in rules.items():  # interleaved: load hits every rule alike
                    start = time.perf_counter()
                    error, change, used = rule(model, X, B, steps)
                    seconds[name].append(time.perf_counter() - start)
                    moved = np.abs(change) > 1e-6
                    errors[name] += list(error[moved] / np.abs(change[moved]))
                    evaluations[name].append(used)
            for name in rules:
                print(
                    f"{activation:<11}{name:<16}{steps:>6}{max(errors[name]):>11.1e}"
                    f"{np.median(errors[name]):>10.1e}{np.mean(evaluations[name]):>11.0f}"
                    f"{1000 * np.median(seconds[name]):>9.2f}"
                )


if __name__ == "__main__":
    main()
