"""``neurocloud export``: write a saved model as ONNX, TorchScript, a SageMaker package or
KServe manifests."""

from __future__ import annotations

from pathlib import Path

import click

FORMATS = ("onnx", "torch", "sagemaker-pytorch", "sagemaker", "kserve")
_DEFAULT_NAMES = {
    "onnx": "model.onnx",
    "torch": "model.pt",
    "sagemaker-pytorch": "model.tar.gz",
    "sagemaker": "model.tar.gz",
    "kserve": "inferenceservice.yaml",
}
_KSERVE_ONLY = ("--storage-uri", "--image", "--name")


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    required=True,
    help="onnx: an ONNX graph; torch: TorchScript + state dict; sagemaker-pytorch: "
    "model.tar.gz for SageMaker's PyTorch container; sagemaker: model.tar.gz for our container; "
    "kserve: ClusterServingRuntime + InferenceService YAML for our container (V2 protocol).",
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
@click.option(
    "--storage-uri",
    default=None,
    help="kserve only (required): where KServe downloads the model directory from, "
    "e.g. s3://bucket/models/seed.",
)
@click.option(
    "--image", default=None, help="kserve only: our container's image (default neurocloud:latest)."
)
@click.option(
    "--name", default=None, help="kserve only: the InferenceService's name (default: the folder's)."
)
def export(
    model_dir: str,
    fmt: str,
    output: str | None,
    opset: int | None,
    storage_uri: str | None,
    image: str | None,
    name: str | None,
) -> None:
    """Export MODEL_DIR to another runtime or a SageMaker package.

    Example: neurocloud export models/seed --format onnx -o seed.onnx

    Example: neurocloud export models/seed --format kserve --storage-uri s3://b/seed -o seed.yaml
    """
    from neurocloud.artifact import ArtifactError
    from neurocloud.export import (
        kserve,
        onnx,
        sagemaker,
        sagemaker_pytorch,
        state_dict_path,
        torch,
    )

    if opset is not None and fmt != "onnx":
        raise click.BadParameter(f"applies to --format onnx only, not {fmt}", param_hint="--opset")
    given = dict(zip(_KSERVE_ONLY, (storage_uri, image, name)))
    if fmt != "kserve" and any(v is not None for v in given.values()):
        hint = next(k for k, v in given.items() if v is not None)
        raise click.BadParameter(f"applies to --format kserve only, not {fmt}", param_hint=hint)
    if fmt == "kserve" and storage_uri is None:
        raise click.UsageError(
            "--format kserve needs --storage-uri: where KServe downloads the model directory "
            "from (e.g. s3://bucket/models/seed)"
        )
    target = Path(output or _DEFAULT_NAMES[fmt])
    if target.is_dir():
        target = target / _DEFAULT_NAMES[fmt]
    try:
        if fmt == "onnx":
            written = [onnx(model_dir, target, **({"opset": opset} if opset else {}))]
        elif fmt == "torch":
            written = [torch(model_dir, target), state_dict_path(target)]
        elif fmt == "kserve":
            options = {"storage_uri": storage_uri, "image": image, "name": name}
            written = [kserve(model_dir, target, **{k: v for k, v in options.items() if v})]
        elif fmt == "sagemaker-pytorch":
            written = [sagemaker_pytorch(model_dir, target)]
        else:
            written = [sagemaker(model_dir, target)]
    except (ArtifactError, ValueError, TypeError, OSError, ImportError) as exc:
        raise click.ClickException(str(exc)) from None
    for path in written:
        click.echo(f"wrote {path} ({path.stat().st_size:,} bytes)")
