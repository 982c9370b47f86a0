"""``neurocloud export``: write a saved model as ONNX, TorchScript or a SageMaker package."""

from __future__ import annotations

from pathlib import Path

import click

FORMATS = ("onnx", "torch", "sagemaker-pytorch", "sagemaker")
_DEFAULT_NAMES = {
    "onnx": "model.onnx",
    "torch": "model.pt",
    "sagemaker-pytorch": "model.tar.gz",
    "sagemaker": "model.tar.gz",
}


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    required=True,
    help="onnx: an ONNX graph; torch: TorchScript + state dict; sagemaker-pytorch: "
    "model.tar.gz for SageMaker's PyTorch container; sagemaker: model.tar.gz for our container.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(),
    default=None,
    help="File to write (a directory gets the format's usual name inside). "
    "Default: that name in the working directory.",
)
@click.option("--opset", type=int, default=None, help="ONNX opset (onnx only; default 17).")
def export(model_dir: str, fmt: str, output: str | None, opset: int | None) -> None:
    """Export MODEL_DIR to another runtime or a SageMaker package.

    Example: neurocloud export models/seed --format onnx -o seed.onnx
    """
    from neurocloud.artifact import ArtifactError
    from neurocloud.export import onnx, sagemaker, sagemaker_pytorch, state_dict_path, torch

    if opset is not None and fmt != "onnx":
        raise click.BadParameter(f"applies to --format onnx only, not {fmt}", param_hint="--opset")
    target = Path(output or _DEFAULT_NAMES[fmt])
    if target.is_dir():
        target = target / _DEFAULT_NAMES[fmt]
    try:
        if fmt == "onnx":
            written = [onnx(model_dir, target, **({"opset": opset} if opset else {}))]
        elif fmt == "torch":
            written = [torch(model_dir, target), state_dict_path(target)]
        elif fmt == "sagemaker-pytorch":
            written = [sagemaker_pytorch(model_dir, target)]
        else:
            written = [sagemaker(model_dir, target)]
    except (ArtifactError, ValueError, TypeError, OSError, ImportError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path} ({path.stat().st_size:,} bytes)")
