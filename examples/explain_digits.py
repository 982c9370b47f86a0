"""Why did the network read this digit as a 3? Integrated gradients on handwritten digits.

Run: python examples/explain_digits.py [out.png]

Trains a small network on scikit-learn's bundled 8x8 digits (no download), explains six
test digits with integrated gradients from a blank image (the baseline), prints how well
each explanation adds up (completeness), and saves heat maps: red pixels raised the
predicted class's probability, blue ones lowered it; the black line outlines the strokes.
"""

import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

import neurocloud as nc
from neurocloud.explain import integrated_gradients


def main(path: str) -> None:
    digits = load_digits()
    X, y = digits.data, digits.target
    order = np.random.default_rng(0).permutation(len(X))
    train, test = order[:1400], order[1400:]
    model = nc.Sequential(
        [
            nc.layers.Normalization().adapt(X[train]),
            nc.layers.Dense(64, activation="relu"),
            nc.layers.Dense(10, activation="softmax"),
        ],
        input_dim=64,
        seed=0,
    )
    model.fit(
        X[train],
        y[train],
        loss="sparse_categorical_crossentropy",
        optimizer=nc.optim.Adam(lr=1e-3),
        epochs=40,
        batch_size=64,
    )
    accuracy = float(np.mean(model.predict(X[test]).argmax(axis=1) == y[test]))
    print(f"test accuracy: {accuracy:.3f} on {len(test)} digits")

    # one test digit of each of six classes
    shown = [test[np.flatnonzero(y[test] == digit)[0]] for digit in (0, 2, 3, 5, 7, 9)]
    names = [f"pixel_{i // 8}_{i % 8}" for i in range(64)]
    explanation = integrated_gradients(model, X[shown], feature_names=names)
    for row, index in enumerate(shown):
        print(
            f"digit {y[index]}: predicted {explanation.target[row]} "
            f"(p={explanation.prediction[row]:.3f}), completeness error "
            f"{explanation.completeness_error[row]:.1e}"
        )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    explanation.plot(path)
    print(f"Saved the heat maps to {path}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "out/explain_digits.png")
