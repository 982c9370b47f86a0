"""``model.tar.gz`` packages for SageMaker: for our own container, and for SageMaker's
PyTorch serving container.

SageMaker unpacks the archive into ``/opt/ml/model``, so files sit at the top level.

- :func:`sagemaker`: the artifact directory itself (``model.json``, ``weights.safetensors``,
  ``card.json``), served by ``neurocloud serve`` in our container.
- :func:`sagemaker_pytorch`: ``model.pt`` (TorchScript), ``signature.json``,
  ``code/inference.py`` (the four hooks) and ``code/requirements.txt``.

>>> import tarfile, tempfile, neurocloud as nc
>>> tmp = tempfile.mkdtemp()
>>> model_dir = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0), tmp + "/m")
>>> package = nc.export.sagemaker(model_dir, tmp + "/model.tar.gz")
>>> sorted(tarfile.open(package).getnames())
['card.json', 'model.json', 'weights.safetensors']
"""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
import tempfile
from pathlib import Path

from neurocloud.artifact import OPTIMIZER_FILE, load_artifact
from neurocloud.export.source import resolve

__all__ = ["INFERENCE_SCRIPT", "REQUIREMENTS", "inference_script", "sagemaker", "sagemaker_pytorch"]

#: the hooks module shipped as code/inference.py (it imports only torch and NumPy)
INFERENCE_SCRIPT = Path(__file__).with_name("sagemaker_inference.py")
_WIRE_BEGIN = "# --- begin neurocloud.serve.wire"
_WIRE_END = "# --- end neurocloud.serve.wire ---"


def inference_script() -> str:
    """``code/inference.py``: the hooks module with the wire constants and the Accept
    negotiation of :mod:`neurocloud.serve.wire` copied in from there, so the package and
    the server can never disagree on them (the handler runs without neurocloud)."""
    from neurocloud.serve import wire

    text = INFERENCE_SCRIPT.read_text()
    begin = text.index(_WIRE_BEGIN)
    begin = text.index("\n", begin) + 1
    end = text.index(_WIRE_END)
    source = Path(wire.__file__).read_text()
    body = source.split("from __future__ import annotations\n", 1)[1].strip("\n")
    return text[:begin] + body + "\n\n\n" + text[end:]


#: satisfied by every SageMaker PyTorch image, so the container installs nothing at start
REQUIREMENTS = "numpy>=1.19\n"


def _target(out: str | os.PathLike[str]) -> Path:
    out = Path(out)
    if out.is_dir():
        out = out / "model.tar.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _write_tar(target: Path, files: dict[str, bytes]) -> Path:
    """A gzipped tar of ``files`` (name -> bytes), written atomically, reproducible byte for
    byte (fixed times and owners)."""
    tmp = target.with_name(f".{target.name}.tmp")
    # gzip's header holds a file name and a time: leave both empty
    with (
        open(tmp, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(files[name]), 0o644, 0
            tar.addfile(info, io.BytesIO(files[name]))
    tmp.replace(target)
    return target


def sagemaker(model_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Package the model directory ``model_dir`` as ``model.tar.gz`` for our own container.

    ``out`` is the archive's path (or a directory to put ``model.tar.gz`` in). The model is
    loaded first, so a broken directory is refused before anything is uploaded.
    """
    artifact = load_artifact(model_dir)
    root = Path(artifact.path)
    files = {
        p.name: p.read_bytes()
        for p in sorted(root.iterdir())
        if p.is_file() and p.name != OPTIMIZER_FILE  # training state: serving never reads it
    }
    return _write_tar(_target(out), files)


def sagemaker_pytorch(model_dir: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """Package ``model_dir`` for SageMaker's PyTorch serving container.

    Deploy it with ``PyTorchModel(model_data="s3://.../model.tar.gz", entry_point="inference.py",
    ...)`` or, without the SDK, with the environment ``SAGEMAKER_PROGRAM=inference.py`` and
    ``SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code``.
    """
    from neurocloud.export.torch_export import export_torch

    network, signature = resolve(load_artifact(model_dir))
    with tempfile.TemporaryDirectory() as tmp:
        scripted = export_torch(network, Path(tmp) / "model.pt", state_dict=False)
        model_bytes = scripted.read_bytes()
    spec = {
        **signature.as_json(),
        "input_width": network.input_dim,
        "output_width": network.output_dim,
        "dtype": network.dtype.name,
    }
    files = {
        "model.pt": model_bytes,
        "signature.json": json.dumps(spec, indent=2).encode(),
        "code/inference.py": inference_script().encode(),
        "code/requirements.txt": REQUIREMENTS.encode(),
    }
    return _write_tar(_target(out), files)
