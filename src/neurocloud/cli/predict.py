"""``neurocloud predict``: run a saved model on rows given inline or in a CSV/NPY file."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np


def _read_input(path: str | None, rows: tuple[str, ...]) -> np.ndarray:
    if rows:
        try:
            return np.array([[float(v) for v in row.split(",")] for row in rows])
        except ValueError as exc:
            raise click.BadParameter(
                f"each --row must be comma-separated numbers ({exc})", param_hint="--row"
            ) from None
    if path is None:
        raise click.UsageError('Give the rows with --row "1,2,3" (repeatable) or --input FILE.')
    if Path(path).suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (ValueError, OSError) as exc:  # object arrays, truncated or foreign files
            raise click.BadParameter(
                f"{path}: not a readable numeric .npy array ({exc})", param_hint="--input"
            ) from None
    try:
        return np.loadtxt(path, delimiter=",", ndmin=2)
    except ValueError as exc:
        raise click.BadParameter(
            f"{path}: not a numeric CSV file ({exc})", param_hint="--input"
        ) from None


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--row", "rows", multiple=True, help='One input row, e.g. --row "4.5". Repeatable.')
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False),
    help="A CSV (no header) or .npy file of input rows.",
)
def predict(model_dir: str, rows: tuple[str, ...], input_path: str | None) -> None:
    """Print MODEL_DIR's predictions, one CSV line per input row.

    Example: neurocloud predict models/seed --row 4.5
    """
    from neurocloud.artifact import ArtifactError, load_artifact

    try:
        artifact = load_artifact(model_dir)
        out = artifact.model.predict(_read_input(input_path, rows))
    except (ArtifactError, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    # Enough digits to round-trip the model's dtype.
    np.savetxt(sys.stdout, out, delimiter=",", fmt="%.9g" if out.dtype == np.float32 else "%.17g")
