"""Shared fixtures: small deterministic data and the article's network."""

from __future__ import annotations

import numpy as np
import pytest

import neurocloud as nc

SEED_X = np.array([[0.5], [1.5], [2.5], [3.5]])
SEED_Y = np.array([[0.75], [1.25], [2.25], [3.75]])


def article_network(seed: int = 0, dtype: str = "float32") -> nc.Sequential:
    """1 -> 2 -> 2 -> 1, sigmoid hidden layers, linear output."""
    return nc.Sequential(
        [
            nc.layers.Dense(2, activation="sigmoid"),
            nc.layers.Dense(2, activation="sigmoid"),
            nc.layers.Dense(1),
        ],
        input_dim=1,
        seed=seed,
        dtype=dtype,
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)
