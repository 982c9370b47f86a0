"""``neurocloud predict MODEL --ray``: score Parquet or CSV files on Ray Data, to Parquet."""

from __future__ import annotations

from pathlib import Path

import click

FORMATS = {".parquet": "parquet", ".csv": "csv"}


def input_format(path: str) -> str:
    """``"parquet"`` or ``"csv"``, from the file's suffix or the files in the folder."""
    given = Path(path)
    suffixes = (
        {p.suffix for p in given.iterdir() if p.is_file()} if given.is_dir() else {given.suffix}
    )
    formats = {FORMATS[s] for s in suffixes if s in FORMATS}
    if len(formats) != 1:
        raise click.BadParameter(
            f"{path}: expected Parquet (.parquet) or CSV (.csv) files, one kind; found "
            f"{sorted(suffixes) or 'no files'}",
            param_hint="--input",
        )
    return formats.pop()


def predict_on_ray(
    model_dir: str, input_path: str | None, output_path: str | None, address: str | None
) -> None:
    if input_path is None or output_path is None:
        raise click.UsageError("--ray needs --input DATA (Parquet or CSV) and --output FOLDER.")
    kind = input_format(input_path)
    import ray  # without it, the command line names the extra to install

    from neurocloud.artifact import ArtifactError
    from neurocloud.ray import connect, predict_batches

    click.echo(connect(address), err=True)
    reader = ray.data.read_parquet if kind == "parquet" else ray.data.read_csv
    try:
        scored = predict_batches(reader(str(Path(input_path).resolve())), model_dir)
        scored.write_parquet(str(Path(output_path).resolve()))
    except (ArtifactError, ValueError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"Wrote predictions for {input_path} to {output_path} (Parquet).", err=True)
