"""Checks of a model folder before anything in it is opened or allocated: each entry is a
regular file inside the folder (symbolic links out of it, FIFOs, devices and sockets are
refused, saying what they are), the JSON files are objects of the expected shape, and the
sizes that ``model.json`` declares match the weights file's header and a sane limit.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> entry(folder, "card.json", required=False) is None
True
"""

from __future__ import annotations

import json
import math
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError, deserialize

if TYPE_CHECKING:
    from neurocloud.nn.sequential import Sequential

__all__ = [
    "MAX_PARAMETERS",
    "ArtifactError",
    "check_metadata",
    "check_weights",
    "declared_shapes",
    "entry",
    "read_json",
    "read_weights",
]

FORMAT = "neurocloud.model"
FORMAT_VERSION = 1
MODEL_FILE, WEIGHTS_FILE, CARD_FILE = "model.json", "weights.safetensors", "card.json"
OPTIMIZER_FILE = "optimizer.safetensors"
#: The most weights (parameters and buffers) a model.json may declare: 4 GiB of float32.
MAX_PARAMETERS = 1 << 30
_SAFETENSORS_DTYPES = {"float32": "F32", "float64": "F64"}


class ArtifactError(ValueError):
    """A model directory or one of its files is missing, truncated or not ours."""


_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def entry(root: Path, name: str, required: bool = True) -> Path | None:
    """``root / name`` if it is a regular file inside ``root``; ``ArtifactError`` otherwise.

    A symbolic link must stay inside the model directory; FIFOs, devices and sockets are
    refused before anything opens them (opening a FIFO would block).
    """
    path = root / name
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        if not required:
            return None
        raise ArtifactError(
            f"{path}: file is missing; a model directory holds "
            f"{MODEL_FILE}, {WEIGHTS_FILE} and {CARD_FILE}."
        ) from None
    if stat.S_ISLNK(mode):
        real, inside = os.path.realpath(path), os.path.realpath(root)
        if os.path.commonpath([real, inside]) != inside:
            raise ArtifactError(
                f"{path}: a symbolic link to {real}, outside the model directory {inside}; "
                "refusing to follow it (copy the file into the directory instead)."
            )
        try:
            mode = os.stat(path).st_mode
        except OSError:
            raise ArtifactError(f"{path}: a symbolic link to {real}, which is missing.") from None
    if not stat.S_ISREG(mode):
        what = next((label for test, label in _KINDS if test(mode)), "not a regular file")
        raise ArtifactError(f"{path}: is {what}, expected a regular file.")
    return path


def read_json(root: Path, name: str) -> dict[str, Any]:
    """The JSON object in ``root / name``; ``ArtifactError`` naming the file when it is
    missing, not a regular file, not valid JSON or not an object.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "card.json").write_text('{"metrics": {}}')
    >>> read_json(folder, "card.json")
    {'metrics': {}}
    >>> _ = (folder / "model.json").write_text("[1, 2]")
    >>> read_json(folder, "model.json")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neurocloud.artifact_checks.ArtifactError: .../model.json: expected a JSON object; found list.
    """
    path = entry(root, name)
    try:
        data = json.loads(path.read_bytes())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{path}: not valid JSON, the file may be truncated ({exc}).") from None
    except RecursionError:
        raise ArtifactError(f"{path}: nested too deeply to be a neurocloud file.") from None
    if not isinstance(data, dict):
        raise ArtifactError(f"{path}: expected a JSON object; found {type(data).__name__}.")
    return data


def check_metadata(metadata: dict[str, Any], where: Path) -> None:
    """Check a ``model.json``'s format, version and the types of its keys (``where`` names
    it in the error); fills in a missing ``extra`` with ``{}``.

    >>> from pathlib import Path
    >>> check_metadata({"format": "keras"}, Path("m/model.json"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neurocloud...ArtifactError: m/model.json: not a neurocloud model (format is 'keras', ...).
    """
    if metadata.get("format") != FORMAT:
        raise ArtifactError(
            f"{where}: not a neurocloud model (format is "
            f"{metadata.get('format')!r}, expected {FORMAT!r})."
        )
    version = metadata.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{where}: format_version {version!r} is not supported "
            f"by this neurocloud (supports up to {FORMAT_VERSION})."
        )
    metadata.setdefault("extra", {})
    for key, kinds, label in (
        ("model", dict, "an object"),
        ("extra", dict, "an object"),
        ("inputs", list, "a list"),
        ("outputs", list, "a list"),
        ("feature_names", (list, type(None)), "a list or null"),
        ("output_names", (list, type(None)), "a list or null"),
        ("kind", (str, type(None)), "a string"),
    ):
        value = metadata.get(key)
        if not isinstance(value, kinds):
            raise ArtifactError(
                f"{where}: {key!r} must be {label}; received {type(value).__name__}."
            )
    for key in ("inputs", "outputs"):
        tensors = metadata[key]
        first = tensors[0] if tensors else None
        if not (
            isinstance(first, dict)
            and isinstance(first.get("name"), str)
            and isinstance(first.get("shape"), list)
            and first["shape"]
            and isinstance(first["shape"][-1], int)
        ):
            raise ArtifactError(
                f"{where}: {key!r} must start with an object with a string 'name' and a "
                f"'shape' list of integers; received {str(first)[:80]}."
            )


def declared_shapes(model: Any, input_dim: Any, where: Path) -> dict[str, tuple]:
    """Parameter names and shapes the config declares, computed without allocating them."""
    if isinstance(input_dim, bool) or not isinstance(input_dim, int) or input_dim < 1:
        raise ArtifactError(f"{where}: the model config needs a positive input_dim.")
    shapes, dim, total = {}, input_dim, 0
    for i, layer in enumerate(model.layers):
        for key, shape in layer.parameter_shapes(dim).items():
            shapes[f"layers.{i}.{key}"] = tuple(int(n) for n in shape)
            total += math.prod(int(n) for n in shape)
        dim = int(layer.output_dim(dim))
        total += dim
        if total > MAX_PARAMETERS:
            raise ArtifactError(
                f"{where}: the model declares more than {MAX_PARAMETERS:,} weights (layer {i}: "
                f"{type(layer).__name__} of output width {dim:,}); refusing to allocate them."
            )
    return shapes


def read_weights(path: Path) -> dict[str, tuple[str, tuple[int, ...], bytes]]:
    """Tensor name -> (safetensors dtype, shape, raw bytes), parsed by safetensors.

    A file larger than :data:`MAX_PARAMETERS` float64 weights is refused unread.
    """
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        if size > 8 * MAX_PARAMETERS + (1 << 20):
            raise ArtifactError(
                f"{path}: {size:,} bytes, more than {MAX_PARAMETERS:,} weights can take; "
                "refusing to read it."
            )
        data = fh.read()
    try:
        return {
            name: (info["dtype"], tuple(info["shape"]), info["data"])
            for name, info in deserialize(data)
        }
    except (SafetensorError, ValueError, OSError, KeyError, TypeError) as exc:
        raise ArtifactError(
            f"{path}: unreadable safetensors file, it may be truncated or foreign ({exc})."
        ) from None


def check_weights(
    header: dict[str, tuple[str, tuple[int, ...]]],
    declared: dict[str, tuple[int, ...]],
    model: Sequential,
    path: Path,
) -> None:
    """Check the weights file's ``header`` (name -> safetensors dtype and shape, from
    :func:`read_weights`) against the shapes ``model.json`` declares (from
    :func:`declared_shapes`) and the model's dtype; ``ArtifactError`` naming ``path``
    and the first mismatch otherwise.

    >>> import neurocloud as nc
    >>> from pathlib import Path
    >>> model = nc.Sequential([nc.layers.Dense(1)], input_dim=2)
    >>> declared = {"layers.0.kernel": (2, 1), "layers.0.bias": (1,)}
    >>> header = {"layers.0.kernel": ("F32", (2, 1))}
    >>> check_weights(header, declared, model, Path("w"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    neurocloud...ArtifactError: w: the weights do not match ...: missing ['layers.0.bias'].
    """
    missing = sorted(set(declared) - set(header))
    if missing:
        raise ArtifactError(
            f"{path}: the weights do not match the architecture in {MODEL_FILE}: missing {missing}."
        )
    for key, shape in declared.items():
        if header[key][1] != shape:
            raise ArtifactError(
                f"{path}: {MODEL_FILE} declares {key} of shape {shape}; the weights "
                f"file holds shape {header[key][1]}."
            )
    expected = _SAFETENSORS_DTYPES.get(model.dtype.name)
    wrong = sorted(k for k, (dtype, _) in header.items() if dtype != expected)
    if wrong:
        raise ArtifactError(
            f"{path}: tensors {wrong} are not {model.dtype.name} as {MODEL_FILE} declares."
        )
