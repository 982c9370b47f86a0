"""Saving and loading models as a directory: ``model.json``, ``weights.safetensors``, ``card.json``
and, to resume training, ``optimizer.safetensors``.

Loading never unpickles: the architecture comes from JSON, the weights from safetensors.
Writes are atomic: files go to a temporary directory beside the target, which is renamed
into place only when complete, so a crash never leaves a half-written model.

>>> import tempfile, numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0)
>>> path = nc.save(m, tempfile.mkdtemp() + "/model")
>>> np.array_equal(nc.load(path).predict([[1.0, 2.0]]), m.predict([[1.0, 2.0]]))
True
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from neurocloud.nn import optim
from neurocloud.nn.sequential import Sequential

__all__ = ["Artifact", "ArtifactError", "load", "load_artifact", "save"]

FORMAT = "neurocloud.model"
FORMAT_VERSION = 1
MODEL_FILE, WEIGHTS_FILE, CARD_FILE = "model.json", "weights.safetensors", "card.json"
OPTIMIZER_FILE = "optimizer.safetensors"
_DATATYPES = {"float32": "FP32", "float64": "FP64"}


class ArtifactError(ValueError):
    """A model directory or one of its files is missing, truncated or not ours."""


@dataclass
class Artifact:
    """A loaded model with its signature (input/output names and shapes) and card."""

    model: Sequential
    metadata: dict[str, Any]
    card: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def load_optimizer(self) -> optim.Optimizer | None:
        """The optimizer saved with the model, state included, or ``None`` if none was.

        Read on request, so serving never loads training state. ``model.fit(X, y,
        optimizer=artifact.load_optimizer())`` resumes training where it stopped.
        """
        if self.path is None or not (self.path / OPTIMIZER_FILE).is_file():
            return None
        where = self.path / OPTIMIZER_FILE
        opt = optimizer_from_bytes(where.read_bytes(), str(where))
        # fit steps one flat buffer; a hand-written loop steps model.parameters()
        layouts = ([(self.model.count_params(),)], [p.shape for p in self.model.parameters()])
        shapes = [next(iter(slots.values())).shape for slots in opt.state if slots]
        dtypes = {a.dtype for slots in opt.state for a in slots.values()}
        if shapes and (shapes not in layouts or dtypes != {self.model.dtype}):
            raise ArtifactError(
                f"{where}: the state is for {sorted(d.name for d in dtypes)} parameters of "
                f"shapes {shapes}; the model in this directory has "
                f"{self.model.count_params()} {self.model.dtype.name} parameters "
                f"(shapes {layouts[1]})."
            )
        return opt

    @property
    def input_name(self) -> str:
        return self.metadata["inputs"][0]["name"]

    @property
    def output_name(self) -> str:
        return self.metadata["outputs"][0]["name"]


def _signature(name: str, dtype: np.dtype, width: int) -> dict[str, Any]:
    return {"name": name, "datatype": _DATATYPES[dtype.name], "shape": [-1, int(width)]}


def save(
    model: Any,
    path: str | os.PathLike[str],
    *,
    input_name: str = "x",
    output_name: str = "y",
    feature_names: list[str] | None = None,
    output_names: list[str] | None = None,
    card: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    optimizer: optim.Optimizer | None = None,
) -> Path:
    """Save ``model`` to the directory ``path`` (replacing it atomically); return the path.

    ``card`` adds entries (data set, metrics, ...) to ``card.json``; ``extra`` stores
    JSON-able information for other components (e.g. an estimator's settings).
    ``optimizer`` (the one ``fit`` used) is saved with its state (Adam's moments, the step
    count), so that training can resume where it stopped: see :meth:`Artifact.load_optimizer`.
    Objects that are not a ``Sequential`` but define ``__neurocloud_artifact__`` (the
    scikit-learn estimators) are saved through it, their optimizer included.
    """
    from safetensors.numpy import save as save_tensors

    from neurocloud import __version__

    if not isinstance(model, Sequential) and hasattr(model, "__neurocloud_artifact__"):
        described = model.__neurocloud_artifact__()
        model = described.pop("model")
        extra = {**described.pop("extra", {}), **(extra or {})}
        feature_names = feature_names or described.pop("feature_names", None)
        output_names = output_names or described.pop("output_names", None)
        optimizer = optimizer or described.pop("optimizer", None)
    if not isinstance(model, Sequential):
        raise TypeError(
            f"Expected a neurocloud.Sequential (or estimator) to save; received "
            f"{type(model).__name__}."
        )
    feature_names = feature_names or getattr(model, "feature_names", None)
    output_names = output_names or getattr(model, "output_names", None)
    if not model.built:
        raise ValueError("Cannot save an unbuilt model: give input_dim or fit it first.")
    if optimizer is not None and not isinstance(optimizer, optim.Optimizer):
        raise TypeError(
            f"Expected optimizer to be a neurocloud optimizer (e.g. nc.optim.Adam). "
            f"Received: {type(optimizer).__name__}"
        )
    if feature_names is not None and len(feature_names) != model.input_dim:
        raise ValueError(
            f"feature_names has {len(feature_names)} names; the model has {model.input_dim} inputs."
        )
    if output_names is not None and len(output_names) != model.output_dim:
        raise ValueError(
            f"output_names has {len(output_names)} names; the model has {model.output_dim} outputs."
        )
    _check_replaceable(Path(path))
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model": model.get_config(),
        "inputs": [_signature(input_name, model.dtype, model.input_dim)],
        "outputs": [_signature(output_name, model.dtype, model.output_dim)],
        "feature_names": feature_names,
        "output_names": output_names,
        "extra": extra or {},
    }
    history = model.history.summary() if model.history is not None else None
    card_data = {
        "name": Path(path).name,
        "library": "neurocloud",
        "library_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parameters": model.count_params(),
        "history": history,
        **(card or {}),
    }
    tensors = {k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}
    files = {
        MODEL_FILE: json.dumps(metadata, indent=2).encode(),
        WEIGHTS_FILE: save_tensors(tensors, metadata={"format": FORMAT}),
        CARD_FILE: json.dumps(_finite_json(card_data), indent=2, allow_nan=False).encode(),
    }
    if optimizer is not None:
        files[OPTIMIZER_FILE] = optimizer_bytes(optimizer)
    return _write_directory(Path(path), files)


def optimizer_bytes(optimizer: optim.Optimizer) -> bytes:
    """``optimizer``'s settings and state as safetensors bytes (settings in the header)."""
    from safetensors.numpy import save as save_tensors

    return save_tensors(
        {k: np.ascontiguousarray(v) for k, v in optimizer.state_dict().items()},
        metadata={
            "format": FORMAT,
            "optimizer": optimizer.name,
            "config": json.dumps(optimizer.get_config()),
        },
    )


def optimizer_from_bytes(data: bytes, where: str) -> optim.Optimizer:
    """Rebuild what :func:`optimizer_bytes` wrote; errors name ``where``."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_tensors

    try:
        size = int.from_bytes(data[:8], "little")
        header = json.loads(data[8 : 8 + size]).get("__metadata__") or {}
        tensors = load_tensors(data)
        opt = optim.get(header["optimizer"], **json.loads(header["config"]))
        opt.load_state_dict(tensors)
    except (SafetensorError, ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ArtifactError(
            f"{where}: not a readable neurocloud optimizer state, it may be truncated or "
            f"foreign ({type(exc).__name__}: {exc})."
        ) from None
    return opt


def _finite_json(value: Any) -> Any:
    """JSON-safe copy: NumPy scalars to Python, NaN and infinities (a diverged loss) to null."""
    if isinstance(value, dict):
        return {str(k): _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    if isinstance(value, (np.integer, np.bool_)):
        return value.item()
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    return value


def _check_replaceable(target: Path) -> None:
    """Refuse to overwrite anything but an empty folder or a neurocloud model directory."""
    if not target.exists():
        return
    if not target.is_dir():
        raise ArtifactError(
            f"{target}: exists and is not a directory; refusing to replace it "
            "with a model. Choose another path."
        )
    if not any(target.iterdir()):
        return
    try:
        ours = json.loads((target / MODEL_FILE).read_bytes()).get("format") == FORMAT
    except (OSError, ValueError, AttributeError):
        ours = False
    if not ours:
        raise ArtifactError(
            f"{target}: exists and is not a neurocloud model directory (no "
            f"{MODEL_FILE} of format {FORMAT!r}); refusing to replace its "
            "contents. Choose another path or remove it first."
        )


def _write_directory(target: Path, files: dict[str, bytes]) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        for name, data in files.items():
            with open(tmp / name, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        if target.exists():
            old = target.parent / f".{target.name}.old-{uuid.uuid4().hex[:8]}"
            target.rename(old)
            tmp.rename(target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ArtifactError(
            f"{path}: file is missing; a model directory holds "
            f"{MODEL_FILE}, {WEIGHTS_FILE} and {CARD_FILE}."
        )
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON, the file may be truncated ({exc}).") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object; found {type(data).__name__}.")
    return data


def load_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Load a model directory with its metadata and card; errors name the faulty file."""
    from safetensors import SafetensorError
    from safetensors.numpy import load as load_tensors

    root = Path(path)
    if not root.is_dir():
        raise ArtifactError(
            f"{root}: not a model directory (expected a folder holding "
            f"{MODEL_FILE}, {WEIGHTS_FILE} and {CARD_FILE})."
        )
    metadata = _read_json(root / MODEL_FILE)
    if metadata.get("format") != FORMAT:
        raise ArtifactError(
            f"{root / MODEL_FILE}: not a neurocloud model (format is "
            f"{metadata.get('format')!r}, expected {FORMAT!r})."
        )
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{root / MODEL_FILE}: format_version {version!r} is not supported "
            f"by this neurocloud (supports up to {FORMAT_VERSION})."
        )
    try:
        model = Sequential.from_config(metadata["model"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{root / MODEL_FILE}: invalid model config: {exc}") from None
    card = _read_json(root / CARD_FILE)
    weights_path = root / WEIGHTS_FILE
    if not weights_path.is_file():
        raise ArtifactError(f"{weights_path}: file is missing.")
    try:
        tensors = load_tensors(weights_path.read_bytes())
    except (SafetensorError, ValueError, OSError) as exc:
        raise ArtifactError(
            f"{weights_path}: unreadable safetensors file, it may be truncated or foreign ({exc})."
        ) from None
    if not model.built:
        raise ArtifactError(f"{root / MODEL_FILE}: the model config has no input_dim.")
    wrong = [k for k, v in tensors.items() if v.dtype != model.dtype]
    if wrong:
        raise ArtifactError(
            f"{weights_path}: tensors {wrong} are not {model.dtype.name} as {MODEL_FILE} declares."
        )
    try:
        model.load_state_dict(tensors)
    except ValueError as exc:
        raise ArtifactError(f"{weights_path}: {exc}") from None
    # The names travel with the network: explanations name features and classes with them,
    # and saving the network again keeps them.
    model.feature_names = metadata.get("feature_names")
    model.output_names = metadata.get("output_names")
    return Artifact(model=model, metadata=metadata, card=card, path=root)


def load(path: str | os.PathLike[str]) -> Any:
    """Load what :func:`save` wrote: a ``Sequential``, or the estimator that was saved."""
    artifact = load_artifact(path)
    estimator = artifact.metadata.get("extra", {}).get("estimator")
    if estimator:
        from neurocloud.sklearn import from_artifact

        return from_artifact(artifact)
    return artifact.model
