"""Time ``nc.load`` of a digits model (a saved classifier, hidden (64,)) and of its network.

    python benchmarks/load_speed.py [--repeat 200]

Prints the median and the best of ``--repeat`` loads of the estimator and of the bare
``Sequential`` (``load_artifact``), and one ``predict`` of 64 rows after a load.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings

import numpy as np

import neurocloud as nc
from neurocloud.artifact import load_artifact


def _times(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    from neurocloud.sklearn import NeuralNetClassifier

    data = nc.datasets.load("digits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clf = NeuralNetClassifier((64,), max_epochs=20, random_state=0).fit(data.X, data.y)
    with tempfile.TemporaryDirectory() as folder:
        _report(nc.save(clf, f"{folder}/digits"), data.X, args.repeat)


def _report(path, X, repeat: int) -> None:
    rows = np.asarray(X[:64], dtype=np.float32)
    network = load_artifact(path).model
    for label, fn in (
        ("nc.load (estimator)", lambda: nc.load(path)),
        ("load_artifact (network)", lambda: load_artifact(path)),
        ("predict 64 rows", lambda: network.predict(rows)),
    ):
        fn()
        t = sorted(_times(fn, repeat))
        median, best = statistics.median(t) * 1e3, t[0] * 1e3
        print(f"{label:26s} median {median:8.3f} ms  best {best:8.3f} ms")


if __name__ == "__main__":
    main()
