"""Model paths as URIs (``s3://bucket/prefix``, ``gs://...``, ``file:///...``): a local copy
on each node, through ``pyarrow.fs`` (which Ray Data brings).

:class:`Mirror` copies the model directory or repository at a URI into a cache folder on
the machine it runs on (one per URI, shared by the processes of the node, which take turns
through a lock file) and keeps it up to date: each model folder (a folder holding
``model.json``) is copied whole into a staging folder, checked as a normal artifact, and
only then moved into place, so a server watching the copy sees complete versions only, and
a folder whose upload is still under way (or broken) is tried again at the next sync.
A folder counts as changed when any of its files' sizes or modification times changed.

Credentials and endpoints come from the URI or the environment, as ``pyarrow.fs`` reads
them: ``s3://KEY:SECRET@bucket/prefix?endpoint_override=host:port&scheme=http``, or
``AWS_ACCESS_KEY_ID`` and the rest on every node.

>>> is_uri("s3://bucket/models"), is_uri("/shared/models"), is_uri("C:\\\\models")
(True, False, False)
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

__all__ = ["CACHE_VARIABLE", "Mirror", "is_uri", "local_path"]

logger = logging.getLogger("neurocloud.serve")

#: where the local copies go (default: ``<temp dir>/neurocloud-models-<uid>``, private)
CACHE_VARIABLE = "NEUROCLOUD_MODEL_CACHE"
MODEL_FILE = "model.json"
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+://")


def is_uri(path: Any) -> bool:
    """Whether ``path`` is a URI with a scheme (two letters or more: not a drive)."""
    return isinstance(path, str) and bool(_SCHEME.match(path))


def _redacted(uri: str) -> str:
    """``uri`` without credentials or query (for messages)."""
    scheme, rest = uri.split("://", 1)
    rest = rest.split("?", 1)[0]
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}"


def local_path(path: str | os.PathLike[str]) -> Path:
    """``path`` itself, or for a URI its local copy, brought up to date now."""
    if is_uri(path):
        return Mirror(str(path)).sync()
    return Path(path)


class Mirror:
    """The local copy of the models at ``uri``; :meth:`sync` brings it up to date."""

    def __init__(self, uri: str, cache: str | os.PathLike[str] | None = None) -> None:
        self.uri = uri
        base = Path(cache or os.environ.get(CACHE_VARIABLE) or tempfile.gettempdir())
        if cache is None and not os.environ.get(CACHE_VARIABLE):
            base = _private(base / f"neurocloud-models-{os.getuid()}")
        self.home = base / hashlib.sha256(uri.encode()).hexdigest()[:16]
        # what a server or a predictor reads, named as at the URI (a single model's folder
        # name is the model's name)
        name = PurePosixPath(urlsplit(uri).path.rstrip("/")).name or urlsplit(uri).netloc
        self.tree = self.home / "tree" / (name or "models")

    def _remote(self) -> tuple[Any, str, dict[str, list[tuple[str, int, int]]]]:
        """(file system, root, {model folder: [(file, size, mtime ns)]}) at the URI."""
        from pyarrow import fs

        try:
            filesystem, root = fs.FileSystem.from_uri(self.uri)
            root = root.rstrip("/")
            infos = filesystem.get_file_info(fs.FileSelector(root, recursive=True))
        except (OSError, ValueError) as exc:
            raise ValueError(
                f"model path: expected a readable folder of models at {_redacted(self.uri)}; "
                f"reading it failed: {exc}"
            ) from exc
        files = {
            info.path[len(root) + 1 :]: info
            for info in infos
            if info.type == fs.FileType.File and info.path.startswith(root + "/")
        }
        units = sorted(
            os.path.dirname(name) or "."
            for name in files
            if os.path.basename(name) == MODEL_FILE
            and not any(p.startswith(".") for p in name.split("/"))
        )
        listing: dict[str, list[tuple[str, int, int]]] = {}
        for unit in units:
            prefix = "" if unit == "." else unit + "/"
            listing[unit] = sorted(
                (name[len(prefix) :], int(info.size or 0), int(info.mtime_ns or 0))
                for name, info in files.items()
                if name.startswith(prefix)
            )
        if not listing:
            raise ValueError(
                f"model path: expected a model folder ({MODEL_FILE}) or a repository of them "
                f"at {_redacted(self.uri)}; found {len(files)} file(s) and no {MODEL_FILE}."
            )
        return filesystem, root, listing

    def sync(self) -> Path:
        """Copy what changed at the URI since the last sync; returns the local folder."""
        from pyarrow import fs

        filesystem, root, listing = self._remote()
        self.home.mkdir(parents=True, exist_ok=True)
        with open(self.home / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # the node's other replicas and actors wait
            state_file = self.home / "synced.json"
            try:
                synced = json.loads(state_file.read_text()) if state_file.exists() else {}
            except (OSError, ValueError):  # unreadable: copy everything again
                synced = {}
            staging = self.home / "staging"
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir()
            for unit, signature in listing.items():
                target = self.tree if unit == "." else self.tree / unit
                if synced.get(unit) == [list(s) for s in signature] and target.is_dir():
                    continue  # unchanged, and the copy still there
                fresh = staging / uuid.uuid4().hex
                fresh.mkdir()
                source = root if unit == "." else f"{root}/{unit}"
                fs.copy_files(
                    source,
                    str(fresh),
                    source_filesystem=filesystem,
                    destination_filesystem=fs.LocalFileSystem(),
                )
                if not _valid(fresh, unit, self.uri):
                    synced.pop(unit, None)
                    continue
                _replace(target, fresh, staging)
                synced[unit] = signature
                logger.info("copied %s/%s to %s", _redacted(self.uri), unit, self.tree)
            for unit in [u for u in synced if u not in listing]:
                shutil.rmtree(self.tree if unit == "." else self.tree / unit, ignore_errors=True)
                del synced[unit]
            shutil.rmtree(staging, ignore_errors=True)
            partial = self.home / "synced.json.partial"
            partial.write_text(json.dumps(synced))
            os.replace(partial, state_file)  # a crash leaves the old state or the new one
        return self.tree


def _private(folder: Path) -> Path:
    """``folder``, made if missing, readable by its owner only; refused if another user owns
    it (a shared temporary folder must not let one user serve another's models)."""
    folder.mkdir(mode=0o700, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise ValueError(
            f"model cache: expected {folder} to be owned by this user and private (0700); "
            f"it is owned by uid {info.st_uid} with mode {oct(info.st_mode & 0o777)}. "
            f"Set {CACHE_VARIABLE} to a folder of your own."
        )
    return folder


def _valid(folder: Path, unit: str, uri: str) -> bool:
    from neurocloud.artifact import load_artifact

    try:
        load_artifact(folder)
    except Exception as exc:  # an upload under way, or a broken artifact: keep the old copy
        logger.warning("not installing %s/%s yet, it does not load: %s", _redacted(uri), unit, exc)
        return False
    return True


def _replace(target: Path, fresh: Path, staging: Path) -> None:
    """Move ``fresh`` to ``target``; an existing ``target`` is moved aside first (a server
    that checks in between sees it gone once, and unloads only after two checks)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        old = staging / f"old-{uuid.uuid4().hex}"
        os.replace(target, old)
    os.replace(fresh, target)
