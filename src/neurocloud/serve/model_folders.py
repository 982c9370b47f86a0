"""Finding the model versions under a serving path, and noticing when their files change.

Layouts of ``path`` (a model directory holds ``model.json``):

- ``path/model.json``: one model named after the folder, version ``1``;
- ``path/<n>/model.json``: one model named after the folder, versions ``n``;
- ``path/<model>/model.json`` or ``path/<model>/<n>/model.json``: a repository.

A version is a folder named by ASCII digits; any other folder is ignored (and logged once),
hidden ones (``.name``, e.g. what a save in progress writes) silently.

>>> import tempfile, neurocloud as nc
>>> root = tempfile.mkdtemp()
>>> _ = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0), root + "/seed/1")
>>> {name: sorted(versions) for name, versions in discover(root).items()}
{'seed': ['1']}
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from neurocloud.artifact import MODEL_FILE

__all__ = ["Fingerprint", "discover", "fingerprint", "scan"]

logger = logging.getLogger("neurocloud.serve")
Fingerprint = tuple[tuple[str, int, int, int], ...]
#: folder -> the names in it already reported as not versions (logged once each), as of
#: its last scan: only what is present now, so it cannot grow without bound
_ignored: dict[str, set[str]] = {}


def _is_model_dir(path: Path) -> bool:
    return (path / MODEL_FILE).is_file()


def _is_version(name: str) -> bool:
    # ASCII digits only: "²".isdigit() is true, but int("²") fails
    return name.isascii() and name.isdigit()


def _versions(path: Path) -> dict[str, Path]:
    found: dict[str, Path] = {}
    with os.scandir(path) as scanned:  # sorted: "1" wins over "01", whatever the listing order
        entries = sorted(scanned, key=lambda e: (len(e.name), e.name))
    reported = _ignored.get(str(path), set())
    ignored: set[str] = set()
    for entry in entries:
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        version = str(int(entry.name)) if _is_version(entry.name) else None
        if version is None or version in found:
            ignored.add(entry.name)
            if entry.name not in reported:
                logger.warning(
                    "ignoring %s: %s",
                    entry.path,
                    "not a version folder (expected a decimal number such as 1)"
                    if version is None
                    else f"version {version} is already {found[version].name}",
                )
            continue
        if _is_model_dir(Path(entry.path)):
            found[version] = Path(entry.path)
    if ignored:
        _ignored[str(path)] = ignored
    else:
        _ignored.pop(str(path), None)
    return found


def discover(path: str | os.PathLike[str]) -> dict[str, dict[str, Path]]:
    """Map model name -> version -> directory for every model under ``path``."""
    root = Path(path).resolve()
    if not root.is_dir():
        raise ValueError(f"{path}: not a directory; expected a model directory or repository.")
    if _is_model_dir(root):
        return {root.name: {"1": root}}
    versions = _versions(root)
    if versions:
        return {root.name: versions}
    models: dict[str, dict[str, Path]] = {}
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir() or entry.name.startswith("."):
            continue
        child = Path(entry.path)
        versions = {"1": child} if _is_model_dir(child) else _versions(child)
        if versions:
            models[entry.name] = versions
    present = {str(root), *(str(root / name) for name in os.listdir(root))}
    for folder in [f for f in _ignored if Path(f).parent == root and f not in present]:
        del _ignored[folder]  # a model folder that is gone
    if not models:
        raise ValueError(
            f"{path}: no model found; expected {MODEL_FILE} there, numbered version folders "
            f"(1/{MODEL_FILE}) or model folders (<name>/{MODEL_FILE}, <name>/1/{MODEL_FILE})."
        )
    return models


def fingerprint(path: Path) -> Fingerprint | None:
    """What changes when any file of a version folder is written, added or removed (name,
    inode, size and mtime of each); ``None`` if the folder cannot be read."""
    try:
        marks = []
        with os.scandir(path) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                if stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode):
                    marks.append((entry.name, info.st_ino, info.st_size, info.st_mtime_ns))
    except OSError:
        return None
    return tuple(sorted(marks))


def scan(path: str | os.PathLike[str]) -> dict[str, dict[str, tuple[Path, Fingerprint | None]]]:
    """Map model name -> version -> ``(directory, fingerprint)`` for every model under
    ``path`` (see :func:`discover` and :func:`fingerprint`).

    >>> import tempfile, neurocloud as nc
    >>> root = tempfile.mkdtemp()
    >>> _ = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0), root + "/m")
    >>> folder, mark = scan(root)["m"]["1"]
    >>> folder.name, sorted(name for name, *_ in mark)
    ('m', ['card.json', 'model.json', 'weights.safetensors'])
    """
    return {
        name: {version: (folder, fingerprint(folder)) for version, folder in versions.items()}
        for name, versions in discover(path).items()
    }
