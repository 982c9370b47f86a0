"""Data sets: the article's four points, scikit-learn's bundled sets, and CSV files.

``load(name)`` returns a :class:`Dataset` (arrays plus names); scikit-learn is imported
only when one of its data sets is asked for. ``load_csv(path, target=...)`` reads a CSV
file with a header row and says exactly which row, column and value is wrong.

>>> from neurocloud import datasets
>>> seed = datasets.load("seed")
>>> seed.X.ravel().tolist(), seed.y.tolist()
([0.5, 1.5, 2.5, 3.5], [0.75, 1.25, 2.25, 3.75])
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

__all__ = ["Dataset", "available", "load", "load_csv"]

Task = Literal["regression", "classification"]


@dataclass(frozen=True)
class Dataset:
    """Features ``X`` (n_samples, n_features), target ``y`` (n_samples,), and their names.

    ``target_names`` are the class labels (as strings) for classification, and the target
    column's name for regression.
    """

    name: str
    X: np.ndarray
    y: np.ndarray
    feature_names: list[str]
    target_names: list[str]
    task: Task
    description: str

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, {self.task}, {self.X.shape[0]} rows, "
            f"{self.X.shape[1]} features)"
        )


def _seed() -> Dataset:
    return Dataset(
        name="seed",
        X=np.array([[0.5], [1.5], [2.5], [3.5]]),
        y=np.array([0.75, 1.25, 2.25, 3.75]),
        feature_names=["x"],
        target_names=["y"],
        task="regression",
        description="The source article's worked example: four (x, y) points.",
    )


def _from_sklearn(name: str, task: Task, description: str) -> Callable[[], Dataset]:
    def loader() -> Dataset:
        from neurocloud.extras import require

        bunch = getattr(require("sklearn.datasets"), f"load_{name}")()
        classes = task == "classification"
        targets = [str(t) for t in bunch.target_names] if classes else ["target"]
        return Dataset(
            name=name,
            X=np.asarray(bunch.data, dtype=np.float64),
            y=np.asarray(bunch.target),
            feature_names=[str(f) for f in bunch.feature_names],
            target_names=targets,
            task=task,
            description=description,
        )

    return loader


_LOADERS: dict[str, Callable[[], Dataset]] = {
    "seed": _seed,
    "digits": _from_sklearn(
        "digits", "classification", "8x8 images of handwritten digits 0-9 (1797 rows)."
    ),
    "iris": _from_sklearn(
        "iris", "classification", "Fisher's iris flowers: 4 measurements, 3 species (150 rows)."
    ),
    "wine": _from_sklearn(
        "wine", "classification", "Chemical analysis of wines from 3 cultivars (178 rows)."
    ),
    "breast_cancer": _from_sklearn(
        "breast_cancer",
        "classification",
        "Wisconsin diagnostic breast cancer: 30 features, malignant/benign (569 rows).",
    ),
    "diabetes": _from_sklearn(
        "diabetes",
        "regression",
        "Diabetes progression one year after baseline from 10 measurements (442 rows).",
    ),
}


def available() -> list[str]:
    """The names :func:`load` accepts."""
    return list(_LOADERS)


def load(name: str) -> Dataset:
    """Load a built-in data set by name: seed, digits, iris, wine, breast_cancer, diabetes.

    >>> load("iris").X.shape
    (150, 4)
    """
    if not isinstance(name, str) or name.strip().lower() not in _LOADERS:
        hint = (
            " (for a CSV file use load_csv(path, target=...))" if str(name).endswith(".csv") else ""
        )
        raise ValueError(
            f"Unknown data set {name!r}{hint}. Expected one of: {', '.join(_LOADERS)}."
        )
    return _LOADERS[name.strip().lower()]()


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def load_csv(
    path: str | os.PathLike[str],
    target: str | None = None,
    *,
    task: Task | None = None,
    delimiter: str = ",",
) -> Dataset:
    """Read a CSV file with a header row; ``target`` names the label column (default: last).

    Every other column must be numeric. ``task`` defaults to classification when the target
    holds text, or integers with at most 20 distinct values; otherwise regression. For
    classification ``y`` holds the labels as found (numbers, or strings for text).

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = p.write_text("a,b,label\\n1,2,x\\n3,4,y\\n")
    >>> d = load_csv(p, target="label")
    >>> d.X.tolist(), d.y.tolist(), d.task
    ([[1.0, 2.0], [3.0, 4.0]], ['x', 'y'], 'classification')
    """
    path = Path(path)
    if task not in (None, "regression", "classification"):
        raise ValueError(
            f"Expected task to be 'regression', 'classification' or None. Received: task={task!r}"
        )
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        while header is not None and not any(cell.strip() for cell in header):
            header = next(reader, None)
        if header is None:
            raise ValueError(f"{path}: the file is empty; expected a header row of column names.")
        header = [cell.strip() for cell in header]
        duplicates = sorted({c for c in header if header.count(c) > 1})
        if duplicates:
            raise ValueError(f"{path}: the header repeats the column names {duplicates}.")
        if target is None:
            target = header[-1]
        if target not in header:
            raise ValueError(
                f"{path}: no column named {target!r} for target; the columns are: "
                f"{', '.join(header)}."
            )
        if len(header) < 2:
            raise ValueError(f"{path}: needs at least one feature column besides {target!r}.")
        t = header.index(target)
        features = [c for i, c in enumerate(header) if i != t]
        rows: list[list[float]] = []
        labels: list[str] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank line
            if len(cells) != len(header):
                raise ValueError(
                    f"{path}, line {reader.line_num}: expected {len(header)} values (one per "
                    f"header column), received {len(cells)}."
                )
            row = []
            for i, cell in enumerate(cells):
                if i == t:
                    continue
                value = _number(cell)
                if value is None:
                    raise ValueError(
                        f"{path}, line {reader.line_num}, column {header[i]!r}: {cell!r} is not "
                        "a finite number."
                    )
                row.append(value)
            rows.append(row)
            labels.append(cells[t].strip())
    if not rows:
        raise ValueError(f"{path}: the file has a header but no data rows.")
    return _dataset(path, np.array(rows), labels, features, target, task)


_MISSING = {"", "nan", "na", "n/a", "null", "none", "inf", "+inf", "-inf", "infinity", "-infinity"}


def _dataset(path: Path, X, labels: list[str], features, target: str, task) -> Dataset:
    for row, label in enumerate(labels, start=1):
        if label.lower() in _MISSING:
            raise ValueError(
                f"{path}: target column {target!r} has no usable value on data row {row} "
                f"(holds {label!r}); fill in or drop that row."
            )
    numbers = [_number(v) for v in labels]
    numeric = all(v is not None for v in numbers)
    if task is None:
        few_integers = (
            numeric and all(float(v).is_integer() for v in numbers) and len(set(numbers)) <= 20
        )
        task = "classification" if (not numeric or few_integers) else "regression"
    if task == "regression":
        if not numeric:
            line = next(i for i, v in enumerate(numbers) if v is None)
            raise ValueError(
                f"{path}: target column {target!r} must be numeric for regression; data row "
                f"{line + 1} holds {labels[line]!r}."
            )
        y = np.array(numbers, dtype=np.float64)
        names = [target]
    elif numeric:
        values = np.array(numbers, dtype=np.float64)
        y = values.astype(np.int64) if all(v.is_integer() for v in values) else values
        names = [str(c) for c in np.unique(y).tolist()]
    else:
        y = np.array(labels)
        names = [str(c) for c in np.unique(y).tolist()]
    return Dataset(
        name=path.stem,
        X=X,
        y=y,
        feature_names=features,
        target_names=names,
        task=task,
        description=f"{path.name}: {len(labels)} rows, target column {target!r}.",
    )
