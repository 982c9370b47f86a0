"""Networks for the explanation tests: random ones, and ones with known attributions."""

from __future__ import annotations

import numpy as np

import neurocloud as nc

ACTIVATIONS = ["relu", "leaky_relu", "elu", "tanh", "sigmoid", "softplus", "gelu"]


def random_network(seed: int, activation: str | None = None) -> nc.Sequential:
    """A float64 network of random depth, width, outputs and output activation.

    Biases are random too: without them a ReLU network is linear along every ray from the
    origin, and integrating from a zero baseline would never meet a kink.
    """
    rng = np.random.default_rng(seed)
    n_features, n_outputs = int(rng.integers(2, 10)), int(rng.integers(1, 4))
    depth = int(rng.integers(1, 4))
    hidden = [activation] * depth if activation else list(rng.choice(ACTIVATIONS, depth))
    last = ["identity", "softmax"] if n_outputs > 1 else ["identity", "sigmoid", "relu"]
    layers = [nc.layers.Dense(int(rng.integers(4, 24)), str(a)) for a in hidden]
    layers.append(nc.layers.Dense(n_outputs, str(rng.choice(last))))
    model = nc.Sequential(layers, input_dim=n_features, seed=seed, dtype="float64")
    for layer in model.layers:
        layer.params["bias"][...] = rng.normal(0.0, 0.5, size=layer.params["bias"].shape)
    return model


def additive_network(n_features: int, units: int, seed: int) -> nc.Sequential:
    """``f(x) = sum_i g_i(x_i)`` with nonlinear ``g_i``: a block-diagonal tanh layer, each
    feature feeding only its own ``units`` hidden units, then a linear output."""
    rng = np.random.default_rng(seed)
    model = nc.Sequential(
        [nc.layers.Dense(n_features * units, "tanh"), nc.layers.Dense(1)],
        input_dim=n_features,
        seed=seed,
        dtype="float64",
    )
    kernel = np.zeros((n_features, n_features * units))
    for i in range(n_features):
        kernel[i, i * units : (i + 1) * units] = rng.normal(0.0, 1.5, size=units)
    model.layers[0].params["kernel"][...] = kernel
    model.layers[0].params["bias"][...] = rng.normal(0.0, 0.5, size=n_features * units)
    return model


def linear_network(n_features: int, n_outputs: int, seed: int) -> nc.Sequential:
    model = nc.Sequential(
        [nc.layers.Dense(n_outputs)], input_dim=n_features, seed=seed, dtype="float64"
    )
    model.layers[0].params["bias"][...] = np.random.default_rng(seed).normal(size=n_outputs)
    return model


def kinked_network(seed: int = 0) -> nc.Sequential:
    """tanh, then two ReLU layers: every path is probed (a curved layer comes first) and
    crosses many kinks, so the search costs more than the gradients at few steps."""
    rng = np.random.default_rng(seed)
    model = nc.Sequential(
        [
            nc.layers.Dense(24, "tanh"),
            nc.layers.Dense(48, "relu"),
            nc.layers.Dense(48, "relu"),
            nc.layers.Dense(2, "softmax"),
        ],
        input_dim=6,
        seed=seed,
        dtype="float64",
    )
    for layer in model.layers:
        layer.params["bias"][...] = rng.normal(0.0, 0.5, size=layer.params["bias"].shape)
    return model
