"""The models a server holds: one model directory, or a repository of models with numbered
versions, loaded once, warmed with one forward pass, and hot-reloaded.

Layouts of ``path`` (a model directory holds ``model.json``):

- ``path/model.json``: one model named after the folder, version ``1``;
- ``path/<n>/model.json``: one model named after the folder, versions ``n``;
- ``path/<model>/model.json`` or ``path/<model>/<n>/model.json``: a repository.

Every version found is served; a request that names no version gets the highest one.
:meth:`ModelRepository.watch` looks for new, changed and removed versions: a new one is
served only once loaded and warmed, requests in flight on a replaced or removed one finish
on it (its batcher drains), and a folder must be gone on two checks in a row before it is
unloaded, so an atomic replace (``nc.save`` over a served folder) never drops a request.

>>> import tempfile, neurocloud as nc
>>> root = tempfile.mkdtemp()
>>> _ = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0), root + "/seed/1")
>>> {name: sorted(versions) for name, versions in discover(root).items()}
{'seed': ['1']}
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from neurocloud.artifact import MODEL_FILE, WEIGHTS_FILE, Artifact, load_artifact
from neurocloud.serve.batcher import BatcherClosed, BatchTimeout, MicroBatcher
from neurocloud.serve.config import ServeConfig
from neurocloud.serve.errors import ServeError
from neurocloud.serve.metrics import ServeMetrics
from neurocloud.serve.signature import Signature

__all__ = ["ModelRepository", "ModelVersion", "discover"]

logger = logging.getLogger("neurocloud.serve")
Fingerprint = tuple[tuple[int, int, int], ...]


def _is_model_dir(path: Path) -> bool:
    return (path / MODEL_FILE).is_file()


def _versions(path: Path) -> dict[str, Path]:
    found = {}
    for entry in os.scandir(path):
        if entry.is_dir() and entry.name.isdigit() and _is_model_dir(Path(entry.path)):
            found[str(int(entry.name))] = Path(entry.path)
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
    if not models:
        raise ValueError(
            f"{path}: no model found; expected {MODEL_FILE} there, numbered version folders "
            f"(1/{MODEL_FILE}) or model folders (<name>/{MODEL_FILE}, <name>/1/{MODEL_FILE})."
        )
    return models


def fingerprint(path: Path) -> Fingerprint | None:
    """What changes when a version folder is rewritten (inode, size, mtime of its files)."""
    try:
        stats = [os.stat(path / name) for name in (MODEL_FILE, WEIGHTS_FILE)]
    except OSError:
        return None
    return tuple((s.st_ino, s.st_size, s.st_mtime_ns) for s in stats)


class ModelVersion:
    """One loaded, warmed model version with its own micro-batcher.

    Inference and explanations use separate copies of the network (layers keep state
    between forward and backward), so a slow explanation never holds up predictions.
    """

    def __init__(
        self,
        name: str,
        version: str,
        artifact: Artifact,
        fingerprint: Fingerprint | None,
        config: ServeConfig,
        metrics: ServeMetrics,
    ) -> None:
        self.name = name
        self.version = version
        self.artifact = artifact
        self.fingerprint = fingerprint
        self.signature = Signature.from_metadata(artifact.metadata, artifact.model.dtype)
        self.timeout_s = config.timeout_s
        self.batcher = MicroBatcher(
            self._forward,
            max_batch_rows=config.max_batch_rows,
            max_batch_delay_ms=config.max_batch_delay_ms,
            on_batch=lambda rows, requests: metrics.observe_batch(name, rows, requests),
            timeout_s=config.timeout_s,
            name=f"neurocloud-forward-{name}-{version}",
        )

    def _forward(self, rows: np.ndarray) -> np.ndarray:
        # Inference records nothing on the model: no lock, whatever else runs on it.
        return self.artifact.model.forward(rows)

    def warm_up(self) -> None:
        """One forward pass on a row of zeros; checks the output width against metadata."""
        sig = self.signature
        with np.errstate(all="ignore"):
            out = self._forward(np.zeros((1, sig.input_width), dtype=sig.dtype))
        if out.shape != (1, sig.output_width):
            raise ValueError(
                f"{self.artifact.path}: the model returns shape {out.shape} for one row; "
                f"{MODEL_FILE} declares outputs of width {sig.output_width}."
            )

    async def predict(self, rows: np.ndarray) -> np.ndarray:
        """The model's outputs for ``rows``, batched with concurrent requests."""
        try:
            return await self.batcher.submit(rows)
        except BatcherClosed as exc:  # unloaded between lookup and submit
            raise ServeError(503, f"model {self.name!r} version {self.version!r}: {exc}") from None
        except BatchTimeout:
            raise ServeError(
                504,
                f"model {self.name!r}: no result within {self.timeout_s:g} s "
                "(SAGEMAKER_MODEL_SERVER_TIMEOUT)",
            ) from None

    def explain(self, rows: np.ndarray, parameters: dict[str, Any]) -> dict[str, np.ndarray]:
        """Explanations from ``neurocloud.explain.serving.explain_batch`` (call in a thread).

        ``explain_batch`` works on its own copy of the network, so it never races the
        batcher's forward passes.
        """
        from neurocloud.explain.serving import explain_batch

        return explain_batch(self.artifact.model, rows, parameters)

    def metadata(self, versions: list[str]) -> dict[str, Any]:
        return {
            "name": self.name,
            "versions": versions,
            "platform": "neurocloud",
            **self.signature.tensor_metadata(),
        }


class ModelRepository:
    """Every model version under ``path``; see the module docstring for the layouts."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        config: ServeConfig,
        metrics: ServeMetrics,
    ) -> None:
        self.path = Path(path)
        self.config = config
        self.metrics = metrics
        self.ready = False
        self._models: dict[str, dict[str, ModelVersion]] = {}
        self._latest: dict[str, ModelVersion] = {}
        self._failed: dict[tuple[str, str], tuple[Fingerprint | None, str]] = {}
        self._missing: dict[tuple[str, str], int] = {}
        self._draining: set[asyncio.Task] = set()

    # --- lookups (on the event loop, no awaits) ----------------------------------------
    @property
    def names(self) -> list[str]:
        return sorted(self._models)

    def versions(self, name: str) -> list[str]:
        return sorted(self._models.get(name, {}), key=int)

    def resolve(self, name: str | None, version: str | None = None) -> ModelVersion:
        """The version to serve; 404 naming the known models or versions."""
        if not self.ready:
            raise ServeError(503, "the models are not loaded yet; retry once /ping returns 200")
        if name is None:
            if len(self._latest) == 1:
                return next(iter(self._latest.values()))
            raise ServeError(
                400,
                f"X-Amzn-SageMaker-Target-Model: expected one of {self.names} (this server "
                "holds several models); received no header",
            )
        versions = self._models.get(name)
        if versions is None:
            raise ServeError(404, f"model: expected one of {self.names}; received {name!r}")
        if version is None:
            return self._latest[name]
        found = versions.get(version)
        if found is None:
            if (name, version) in self._failed:
                raise ServeError(
                    503,
                    f"model {name!r} version {version!r} is not ready: "
                    f"{self._failed[name, version][1]}",
                )
            raise ServeError(
                404,
                f"version of model {name!r}: expected one of "
                f"{self.versions(name)}; received {version!r}",
            )
        return found

    def __iter__(self) -> Iterator[ModelVersion]:
        for versions in self._models.values():
            yield from versions.values()

    def describe(self) -> list[dict[str, Any]]:
        """Every model with its versions and state (for ``GET /v2/models``)."""
        rows = []
        for name in self.names:
            rows.append(
                {
                    "name": name,
                    "versions": self.versions(name),
                    "latest": self._latest[name].version,
                    "state": "READY",
                }
            )
        for (name, version), (_, reason) in sorted(self._failed.items()):
            rows.append(
                {"name": name, "versions": [version], "state": "UNAVAILABLE", "reason": reason}
            )
        return rows

    # --- loading ------------------------------------------------------------------------
    def _load(self, name: str, version: str, path: Path) -> ModelVersion:
        mark = fingerprint(path)
        loaded = ModelVersion(name, version, load_artifact(path), mark, self.config, self.metrics)
        loaded.warm_up()
        return loaded

    async def start(self) -> None:
        """Load and warm every model version; any failure is fatal at startup."""
        loop = asyncio.get_running_loop()
        found = await loop.run_in_executor(None, discover, self.path)
        for name, versions in found.items():
            for version, path in versions.items():
                loaded = await loop.run_in_executor(None, self._load, name, version, path)
                self._install(loaded)
                self.metrics.observe_load(name, True)
        self.ready = True
        logger.info(
            "serving %s",
            ", ".join(f"{name} (versions {', '.join(self.versions(name))})" for name in self.names),
        )

    def _install(self, loaded: ModelVersion) -> ModelVersion | None:
        versions = dict(self._models.get(loaded.name, {}))
        previous = versions.get(loaded.version)
        versions[loaded.version] = loaded
        self._models[loaded.name] = versions
        self._latest[loaded.name] = versions[max(versions, key=int)]
        self._failed.pop((loaded.name, loaded.version), None)
        return previous

    def _uninstall(self, name: str, version: str) -> ModelVersion:
        versions = dict(self._models[name])
        removed = versions.pop(version)
        if versions:
            self._models[name] = versions
            self._latest[name] = versions[max(versions, key=int)]
        else:
            del self._models[name]
            del self._latest[name]
        return removed

    def _retire(self, old: ModelVersion) -> None:
        task = asyncio.get_running_loop().create_task(old.batcher.close())
        self._draining.add(task)
        task.add_done_callback(self._draining.discard)

    async def refresh(self) -> None:
        """Pick up new or rewritten versions and unload removed ones (one pass)."""
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(None, _scan, self.path)
        except (OSError, ValueError) as exc:
            logger.warning("model folder check failed: %s", exc)
            found = {}
        seen = set()
        for name, versions in found.items():
            for version, (path, mark) in versions.items():
                seen.add((name, version))
                current = self._models.get(name, {}).get(version)
                if mark is None or (current is not None and current.fingerprint == mark):
                    continue
                failed = self._failed.get((name, version))
                if failed is not None and failed[0] == mark:
                    continue
                try:
                    loaded = await loop.run_in_executor(None, self._load, name, version, path)
                except Exception as exc:
                    self._failed[name, version] = (mark, str(exc))
                    self.metrics.observe_load(name, False)
                    logger.error("model %s version %s failed to load: %s", name, version, exc)
                    continue
                previous = self._install(loaded)
                self.metrics.observe_load(name, True)
                logger.info(
                    "%s model %s version %s", "reloaded" if previous else "loaded", name, version
                )
                if previous is not None:
                    self._retire(previous)
        for model in list(self):
            key = (model.name, model.version)
            if key in seen:
                self._missing.pop(key, None)
                continue
            self._missing[key] = self._missing.get(key, 0) + 1
            if self._missing[key] >= 2:
                del self._missing[key]
                self._retire(self._uninstall(*key))
                logger.info("unloaded model %s version %s (folder removed)", *key)
        for key in [k for k in self._failed if k not in seen]:
            del self._failed[key]

    async def watch(self) -> None:
        """Call :meth:`refresh` every ``reload_interval_s`` seconds, forever."""
        while True:
            await asyncio.sleep(self.config.reload_interval_s)
            try:
                await self.refresh()
            except Exception:
                logger.exception("model folder check failed")

    async def close(self) -> None:
        """Wait until every queued request is answered; the repository is then not ready."""
        self.ready = False
        for model in list(self):
            await model.batcher.close()
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)


def _scan(path: Path) -> dict[str, dict[str, tuple[Path, Fingerprint | None]]]:
    return {
        name: {version: (folder, fingerprint(folder)) for version, folder in versions.items()}
        for name, versions in discover(path).items()
    }
