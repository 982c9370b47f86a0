"""Saving and loading models as a directory: ``model.json``, ``weights.safetensors``, ``card.json``
and, to resume training, ``optimizer.safetensors``.

Loading never unpickles: the architecture comes from JSON, the weights from safetensors, and
every declared size is checked against the weights file's header before anything is
allocated. Writes are crash-safe (see :mod:`neurocloud.atomic_dir`): a kill at any moment
leaves the old or the new model at the path. ``nc.load`` returns what was saved, by the
artifact's ``kind``: front ends (the scikit-learn estimators) add theirs with
:func:`register_kind`.

>>> import tempfile, numpy as np, neurocloud as nc
>>> m = nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0)
>>> path = nc.save(m, tempfile.mkdtemp() + "/model")
>>> np.array_equal(nc.load(path).predict([[1.0, 2.0]]), m.predict([[1.0, 2.0]]))
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import save as save_tensors

from neurocloud import atomic_dir
from neurocloud._version import __version__
from neurocloud.artifact_checks import (
    CARD_FILE,
    FORMAT,
    FORMAT_VERSION,
    MAX_PARAMETERS,
    MODEL_FILE,
    OPTIMIZER_FILE,
    WEIGHTS_FILE,
    ArtifactError,
    check_metadata,
    check_weights,
    declared_shapes,
    entry,
    read_json,
    read_weights,
)
from neurocloud.nn import optim, optim_state
from neurocloud.nn.sequential import Sequential

__all__ = [
    "CARD_FILE",
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_PARAMETERS",
    "MODEL_FILE",
    "OPTIMIZER_FILE",
    "WEIGHTS_FILE",
    "Artifact",
    "ArtifactError",
    "load",
    "load_artifact",
    "register_kind",
    "save",
]
_DATATYPES = {"float32": "FP32", "float64": "FP64"}
_LOADERS: dict[str, Callable[[Artifact], Any]] = {"sequential": lambda artifact: artifact.model}


@dataclass
class Artifact:
    """A loaded model with its signature (input/output names and shapes) and card."""

    model: Sequential
    metadata: dict[str, Any]
    card: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None

    @property
    def kind(self) -> str:
        """What was saved: ``"sequential"``, or a front end's kind such as ``"estimator"``."""
        kind = self.metadata.get("kind")
        if isinstance(kind, str):
            return kind
        extra = self.metadata.get("extra")
        return "estimator" if isinstance(extra, dict) and extra.get("estimator") else "sequential"

    def load_optimizer(self) -> optim.Optimizer | None:
        """The optimizer saved with the model, state included, or ``None`` if none was.

        Read on request, so serving never loads training state. It also puts the model's
        random generator back where it was when saved, so ``model.fit(X, y,
        optimizer=artifact.load_optimizer())`` resumes training bit for bit, shuffling and
        Dropout included.
        """
        if self.path is None:
            return None
        where = entry(self.path, OPTIMIZER_FILE, required=False)
        if where is None:
            return None
        try:
            opt, rng = optim_state.from_bytes(where.read_bytes())
            if rng is not None:
                optim_state.restore_rng(self.model.rng, rng)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise ArtifactError(
                f"{where}: not a readable neurocloud optimizer state, it may be truncated or "
                f"foreign ({type(exc).__name__}: {exc})."
            ) from None
        if not isinstance(opt, optim.Optimizer):
            return opt  # L-BFGS keeps no state between fits: nothing to check against the model
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


def register_kind(kind: str, loader: Callable[[Artifact], Any]) -> None:
    """Make ``nc.load`` return ``loader(artifact)`` for artifacts saved with this ``kind``."""
    _LOADERS[kind] = loader


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
    """Save ``model`` to the directory ``path`` (replacing it crash-safely); return the path.

    ``card`` adds entries (data set, metrics, ...) to ``card.json``; ``extra`` stores
    JSON-able information for other components (e.g. an estimator's settings).
    ``optimizer`` (the one ``fit`` used) is saved with its state (Adam's moments, the step
    count) and the model's random generator state, so that training can resume where it
    stopped: see :meth:`Artifact.load_optimizer`. Objects that are not a ``Sequential`` but
    define ``__neurocloud_artifact__`` (the scikit-learn estimators) are saved through it,
    their optimizer and kind included.
    """
    kind = "sequential"
    if not isinstance(model, Sequential) and hasattr(model, "__neurocloud_artifact__"):
        described = model.__neurocloud_artifact__()
        model = described.pop("model")
        kind = described.pop("kind", "estimator")
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
    if optimizer is not None and not isinstance(optimizer, optim.METHODS):
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
    target = Path(path)
    atomic_dir.recover(target)
    _check_replaceable(target)
    metadata = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "model": model.get_config(),
        "inputs": [_signature(input_name, model.dtype, model.input_dim)],
        "outputs": [_signature(output_name, model.dtype, model.output_dim)],
        "feature_names": feature_names,
        "output_names": output_names,
        "extra": extra or {},
    }
    history = model.history.summary() if model.history is not None else None
    card_data = {
        "name": target.name,
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
        files[OPTIMIZER_FILE] = optim_state.to_bytes(optimizer, model.rng)
    return atomic_dir.replace(target, files)


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
    except (OSError, ValueError, AttributeError, RecursionError):
        ours = False
    if not ours:
        raise ArtifactError(
            f"{target}: exists and is not a neurocloud model directory (no "
            f"{MODEL_FILE} of format {FORMAT!r}); refusing to replace its "
            "contents. Choose another path or remove it first."
        )


def load_artifact(path: str | os.PathLike[str]) -> Artifact:
    """Load a model directory with its metadata and card; errors name the faulty file."""
    root = Path(path)
    atomic_dir.recover(root)
    if not root.is_dir():
        raise ArtifactError(
            f"{root}: not a model directory (expected a folder holding "
            f"{MODEL_FILE}, {WEIGHTS_FILE} and {CARD_FILE})."
        )
    where = root / MODEL_FILE
    metadata = read_json(root, MODEL_FILE)
    check_metadata(metadata, where)
    config = metadata["model"]
    try:
        model = Sequential.from_config({**config, "input_dim": None})
    except (KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise ArtifactError(f"{where}: invalid model config: {exc}") from None
    declared = declared_shapes(model, config.get("input_dim"), where)
    card = read_json(root, CARD_FILE)
    weights_path = entry(root, WEIGHTS_FILE)
    weights = read_weights(weights_path)  # checked against the header before any build
    header = {k: (dtype, shape) for k, (dtype, shape, _) in weights.items()}
    check_weights(header, declared, model, weights_path)
    try:
        model.build(config["input_dim"])
        model.load_state_dict(
            {
                k: np.frombuffer(data, dtype=model.dtype).reshape(shape)
                for k, (_, shape, data) in weights.items()
            }
        )
    except (ValueError, TypeError, MemoryError) as exc:
        raise ArtifactError(f"{weights_path}: {type(exc).__name__}: {exc}") from None
    for key, width in (("inputs", model.input_dim), ("outputs", model.output_dim)):
        if metadata[key][0]["shape"][-1] != width:
            raise ArtifactError(
                f"{where}: {key} declares width {metadata[key][0]['shape'][-1]}; the model "
                f"has {width}."
            )
    # The names travel with the network: explanations name features and classes with them,
    # and saving the network again keeps them.
    model.feature_names = metadata.get("feature_names")
    model.output_names = metadata.get("output_names")
    return Artifact(model=model, metadata=metadata, card=card, path=root)


def load(path: str | os.PathLike[str]) -> Any:
    """Load what :func:`save` wrote: a ``Sequential``, or the estimator that was saved."""
    artifact = load_artifact(path)
    kind = artifact.kind
    if kind not in _LOADERS:
        raise ArtifactError(
            f"{artifact.path / MODEL_FILE}: kind {kind!r} has no loader; expected one of "
            f"{sorted(_LOADERS)} (import the front end that saved it first)."
        )
    return _LOADERS[kind](artifact)
