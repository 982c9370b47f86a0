"""Helpers for the serving tests: saved models, an in-process async client with the app's
lifespan, and a real ``neurocloud serve`` subprocess on 127.0.0.1 with a free port
(:mod:`neurocloud.serve.launcher`, which the playground and the benchmarks use too)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np

import neurocloud as nc
from neurocloud.serve import create_app
from neurocloud.serve.launcher import ServerProcess


def article_model(seed: int = 0) -> nc.Sequential:
    """The article's 1-2-2-1 network, lightly trained so outputs differ between seeds."""
    model = nc.Sequential(
        [
            nc.layers.Dense(2, activation="sigmoid"),
            nc.layers.Dense(2, activation="sigmoid"),
            nc.layers.Dense(1),
        ],
        input_dim=1,
        seed=seed,
    )
    x = np.array([[0.5], [1.5], [2.5], [3.5]])
    y = np.array([[0.75], [1.25], [2.25], [3.75]])
    model.fit(x, y, loss="mse", optimizer=nc.optim.SGD(lr=0.05), epochs=20)
    return model


def wide_model(seed: int = 0) -> nc.Sequential:
    """Three inputs, two outputs, ReLU: exercises widths other than one."""
    return nc.Sequential(
        [nc.layers.Dense(4, activation="relu"), nc.layers.Dense(2)], input_dim=3, seed=seed
    )


@contextlib.asynccontextmanager
async def running(app) -> AsyncIterator[httpx.AsyncClient]:
    """An async client talking to ``app`` in this event loop, inside the app's lifespan."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


def app_for(path: Path, **settings):
    settings.setdefault("reload_interval_s", 0)
    return create_app(path, **settings)


@contextlib.contextmanager
def server(path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """``neurocloud serve PATH ARGS`` in a subprocess, ready on entry, stopped on exit."""
    with ServerProcess(path, *args, env=env) as process:
        yield process
