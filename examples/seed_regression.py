"""The article's worked example (section 4.1), honestly.

Run: python examples/seed_regression.py [out.png]

Trains the article's 1 -> 2 -> 2 -> 1 sigmoid network on its four points, first with the
article's own settings (plain gradient descent, lr 0.01, 1000 epochs), then with Adam,
which fits the points; prints both predictions at x = 4.5 beside the article's 4.625, and
saves a plot of the fitted curves and the loss curves.
"""

import sys

from neurocloud import demo

if __name__ == "__main__":
    result = demo.run(seed=0)
    print(demo.report(result))
    path = demo.plot(result, sys.argv[1] if len(sys.argv) > 1 else "out/seed_regression.png")
    print(f"Saved the plot to {path}")
