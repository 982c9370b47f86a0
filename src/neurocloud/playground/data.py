"""The playground's data: the article's four points, scikit-learn's bundled data sets, 2-D
toy sets generated here (moons, circles, spirals, XOR) and a CSV the user uploads.

>>> X, y = toy("xor", n=8, noise=0.0, seed=0)
>>> X.shape, sorted(set(y.tolist()))
((8, 2), [0, 1])
"""

from __future__ import annotations

import csv
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from neurocloud import datasets

__all__ = ["BUILT_IN", "MAX_ROWS", "MAX_UPLOAD_BYTES", "TOYS", "PlayData", "load", "toy"]

TOYS = ("moons", "circles", "spirals", "xor")
BUILT_IN = tuple(datasets.available())
MAX_UPLOAD_BYTES = 1 << 20
MAX_ROWS = 5000
MAX_FEATURES = 100
MAX_CLASSES = 20


@dataclass
class PlayData:
    """Features, target and what the views need to know about them."""

    name: str
    X: np.ndarray  # (n, d) float64
    y: np.ndarray  # (n,) float64 for regression, int64 class indices otherwise
    task: str  # "regression" or "classification"
    feature_names: list[str]
    class_names: list[str]
    source: str  # how "show the code" loads the same data

    @property
    def classes(self) -> int:
        return len(self.class_names) if self.task == "classification" else 0


def toy(
    name: str, n: int = 200, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D toy set with two classes, generated from ``seed`` (``name`` in :data:`TOYS`)."""
    rng = np.random.default_rng(seed)
    half = n // 2
    labels = np.r_[np.zeros(half, np.int64), np.ones(n - half, np.int64)]
    if name == "moons":
        t = rng.uniform(0, np.pi, n)
        X = np.where(
            labels[:, None] == 0,
            np.c_[np.cos(t), np.sin(t)],
            np.c_[1 - np.cos(t), 0.5 - np.sin(t)],
        )
    elif name == "circles":
        t = rng.uniform(0, 2 * np.pi, n)
        radius = np.where(labels == 0, 1.0, 0.5)
        X = np.c_[radius * np.cos(t), radius * np.sin(t)]
    elif name == "spirals":
        t = np.sqrt(rng.uniform(0, 1, n)) * 3 * np.pi
        sign = np.where(labels == 0, 1.0, -1.0)
        X = np.c_[sign * t * np.cos(t), sign * t * np.sin(t)] / (3 * np.pi)
    elif name == "xor":
        X = rng.uniform(-1, 1, (n, 2))
        labels = (X[:, 0] * X[:, 1] > 0).astype(np.int64)
    else:
        raise ValueError(f"data: expected one of {', '.join(TOYS)}; received {name!r}")
    return X + noise * rng.standard_normal(X.shape), labels


def _classes(y: np.ndarray) -> tuple[np.ndarray, list[str]]:
    labels, index = np.unique(y, return_inverse=True)
    if len(labels) > MAX_CLASSES:
        raise ValueError(
            f"target: expected at most {MAX_CLASSES} classes; received {len(labels)} "
            "(choose task 'regression' for a numeric target)"
        )
    return index.astype(np.int64), [str(v) for v in labels]


def load(
    name: str,
    *,
    csv_text: str | None = None,
    target: str | None = None,
    noise: float = 0.1,
    points: int = 200,
    seed: int = 0,
) -> PlayData:
    """The data set ``name``: ``"upload"`` (with ``csv_text``), a toy, or a built-in one."""
    if name == "upload":
        return _from_csv(csv_text, target)
    if name in TOYS:
        X, y = toy(name, n=points, noise=noise, seed=seed)
        source = (
            "from neurocloud.playground.data import toy\n"
            f"X, y = toy({name!r}, n={points}, noise={noise!r}, seed={seed})"
        )
        return PlayData(name, X, y, "classification", ["x1", "x2"], ["0", "1"], source)
    if name not in BUILT_IN:
        raise ValueError(
            f"data: expected one of {', '.join((*BUILT_IN, *TOYS, 'upload'))}; received {name!r}"
        )
    data = datasets.load(name)
    X = np.asarray(data.X, np.float64)
    source = f'data = nc.datasets.load("{name}")\nX, y = data.X, data.y'
    if data.task == "classification":
        y, class_names = _classes(np.asarray(data.y))
        source += "\ny = np.unique(y, return_inverse=True)[1]  # class indices 0..k-1"
        return PlayData(name, X, y, "classification", list(data.feature_names), class_names, source)
    return PlayData(
        name, X, np.asarray(data.y, np.float64), "regression", list(data.feature_names), [], source
    )


def _from_csv(text: str | None, target: str | None) -> PlayData:
    if not text or not text.strip():
        raise ValueError("csv: expected a CSV file with a header row; received an empty file")
    size = len(text.encode())
    if size > MAX_UPLOAD_BYTES:
        raise ValueError(f"csv: expected at most {MAX_UPLOAD_BYTES} bytes; received {size} bytes")
    header = next(csv.reader(io.StringIO(text)), [])
    if target and target not in [h.strip() for h in header]:
        raise ValueError(f"target: expected one of the CSV's columns {header}; received {target!r}")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "upload.csv"
        path.write_text(text, encoding="utf-8")
        try:
            data = datasets.load_csv(path, target=target or None)
        except ValueError as exc:
            raise ValueError(f"csv: {str(exc).replace(str(path), 'the file')}") from None
    X = np.asarray(data.X, np.float64)
    if len(X) > MAX_ROWS:
        raise ValueError(f"csv: expected at most {MAX_ROWS} rows; received {len(X)}")
    if X.shape[1] > MAX_FEATURES:
        raise ValueError(f"csv: expected at most {MAX_FEATURES} features; received {X.shape[1]}")
    if len(X) < 2:
        raise ValueError(f"csv: expected at least 2 data rows; received {len(X)}")
    column = target or header[-1].strip()
    source = f'data = nc.datasets.load_csv("your.csv", target="{column}")\nX, y = data.X, data.y'
    if data.task == "classification":
        y, class_names = _classes(np.asarray(data.y))
        source += "\ny = np.unique(y, return_inverse=True)[1]  # class indices 0..k-1"
        return PlayData(
            "upload", X, y, "classification", list(data.feature_names), class_names, source
        )
    y = np.asarray(data.y, np.float64)
    return PlayData("upload", X, y, "regression", list(data.feature_names), [], source)
