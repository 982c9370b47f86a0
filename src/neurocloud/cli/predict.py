"""``neurocloud predict``: run a saved model on rows given inline or in a CSV/NPY file."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import click
import numpy as np


def _has_header(path: str) -> bool:
    """Whether the CSV's first line holds a field that is not a number (a header row)."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        first = handle.readline()
    try:
        [float(field) for field in first.split(",") if field.strip()]
    except ValueError:
        return True
    return False


def _read_input(path: str | None, rows: tuple[str, ...], option: str = "--input") -> np.ndarray:
    """The rows given with ``--row``, else those in ``path`` (CSV or .npy); errors name
    ``option``. A CSV whose first row is not numeric has a header, which is skipped."""
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
                f"{path}: not a readable numeric .npy array ({exc})", param_hint=option
            ) from None
    header = False
    try:
        header = _has_header(path)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "no data": reported below
            array = np.loadtxt(path, delimiter=",", ndmin=2, skiprows=int(header))
    except (ValueError, OSError) as exc:
        skipped = "; the first line was skipped as a header" if header else ""
        raise click.BadParameter(
            f"{path}: not a numeric CSV file ({exc}{skipped})", param_hint=option
        ) from None
    if array.size == 0:
        raise click.BadParameter(
            f"{path}: no data rows{' after the header' if header else ''}; expected "
            "comma-separated numbers, one row per line.",
            param_hint=option,
        )
    return array


@click.command()
@click.argument("model_dir")
@click.option("--row", "rows", multiple=True, help='One input row, e.g. --row "4.5". Repeatable.')
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True),
    help="A CSV (a header row is skipped) or .npy file of input rows; with --ray, Parquet "
    "or CSV files (a file or a folder).",
)
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help="Score --input on Ray Data (needs neurocloud[ray]) and write Parquet to --output.",
)
@click.option("--output", "output_path", default=None, help="With --ray: the Parquet folder.")
@click.option("--address", default=None, help="With --ray: the Ray cluster's address.")
def predict(
    model_dir: str,
    rows: tuple[str, ...],
    input_path: str | None,
    use_ray: bool,
    output_path: str | None,
    address: str | None,
) -> None:
    """Print MODEL_DIR's predictions, one CSV line per input row.

    Example: neurocloud predict models/seed --row 4.5

    A large data set, on Ray: neurocloud predict models/seed --ray --input rows.parquet
    --output scored/ (with --ray, MODEL_DIR may be a URI that every node reads, s3://...)
    """
    from neurocloud.artifact import ArtifactError, load_artifact

    if not (use_ray and "://" in model_dir):  # with --ray, a URI every node reads (s3://...)
        click.Path(exists=True, file_okay=False).convert(
            model_dir, click.get_current_context().command.params[0], click.get_current_context()
        )
    if use_ray:
        from neurocloud.cli.ray_predict import predict_on_ray

        predict_on_ray(model_dir, input_path, output_path, address)
        return
    if output_path or address:
        raise click.UsageError("--output and --address need --ray.")
    if input_path is not None and Path(input_path).is_dir():
        raise click.BadParameter(f"{input_path}: a folder; expected a file", param_hint="--input")

    try:
        artifact = load_artifact(model_dir)
        out = artifact.model.predict(_read_input(input_path, rows))
    except (ArtifactError, ValueError, TypeError) as exc:
        raise click.ClickException(str(exc)) from None
    # Enough digits to round-trip the model's dtype.
    np.savetxt(sys.stdout, out, delimiter=",", fmt="%.9g" if out.dtype == np.float32 else "%.17g")
