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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurocloud.artifact import MODEL_FILE, Artifact, load_artifact
from neurocloud.serve.batcher import BatcherClosed, BatchTimeout, MicroBatcher
from neurocloud.serve.config import ServeConfig
from neurocloud.serve.errors import ServeError
from neurocloud.serve.metrics import ServeMetrics
from neurocloud.serve.model_folders import Fingerprint, discover, fingerprint, scan
from neurocloud.serve.signature import Signature
from neurocloud.serve.switching import share_the_gil
from neurocloud.serve.wire import TARGET_MODEL_HEADER

__all__ = ["ModelRepository", "ModelVersion", "discover"]

logger = logging.getLogger("neurocloud.serve")
#: A failed version is retried after this many seconds, then twice as long each time, up to
#: ``RETRY_MAX_S``; a change to any of its files retries it at once.
RETRY_FIRST_S, RETRY_MAX_S = 5.0, 300.0


@dataclass
class _Failure:
    """A version that failed to load: why, and when to try it again."""

    mark: Fingerprint | None
    reason: str
    retry_at: float
    delay: float


class ModelVersion:
    """One loaded, warmed model version with its own micro-batcher.

    Inference and explanations share the network, which records nothing on a call, so a
    slow explanation never holds up predictions; ``explain_slot`` lets one explanation of
    this version run at a time.
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
            inline_below_us=config.inline_forward_us,
        )
        self.explain_slot = asyncio.Semaphore(1)

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
        """Explanations from ``neurocloud.serve.explanation_requests.explain_batch`` (call
        in a thread; they record nothing on the network, so they never race the batcher)."""
        from neurocloud.serve.explanation_requests import explain_batch

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
        self._started = False
        self._on_disk: set[str] = set()  # model names found by the last successful scan
        self._served: set[str] = set()  # model names that had a loaded version once
        self._models: dict[str, dict[str, ModelVersion]] = {}
        self._latest: dict[str, ModelVersion] = {}
        self._failed: dict[tuple[str, str], _Failure] = {}
        self._missing: dict[tuple[str, str], int] = {}
        self._draining: set[asyncio.Task] = set()

    @property
    def ready(self) -> bool:
        """Started, serving a model, and no model that was served is gone while its folder
        is still there (all its versions failed to reload): readiness never says ready then."""
        lost = (self._served & self._on_disk) - set(self._models)
        return self._started and bool(self._models) and not lost

    # --- lookups (on the event loop, no awaits) ----------------------------------------
    @property
    def names(self) -> list[str]:
        return sorted(self._models)

    def versions(self, name: str) -> list[str]:
        return sorted(self._models.get(name, {}), key=int)

    def resolve(self, name: str | None, version: str | None = None) -> ModelVersion:
        """The version to serve; 404 naming the known models or versions."""
        if not self._started:
            raise ServeError(503, "the models are not loaded yet; retry once /ping returns 200")
        if name is None:
            if len(self._latest) == 1:
                return next(iter(self._latest.values()))
            raise ServeError(
                400,
                f"{TARGET_MODEL_HEADER}: expected one of {self.names} (this server "
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
                    f"{self._failed[name, version].reason}",
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

    def model_list(self) -> list[dict[str, Any]]:
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
        for (name, version), failure in sorted(self._failed.items()):
            rows.append(
                {
                    "name": name,
                    "versions": [version],
                    "state": "UNAVAILABLE",
                    "reason": failure.reason,
                }
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
        self._on_disk = set(found)
        self._started = True
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
        self._served.add(loaded.name)
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
        """Pick up new or rewritten versions and unload removed ones (one pass).

        A scan that fails (an unreadable folder) changes nothing: the models loaded stay
        served. A version that fails to load is retried when any of its files changes, and
        otherwise with backoff (a file written last, such as ``card.json``, is picked up).
        """
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(None, scan, self.path)
        except (OSError, ValueError) as exc:
            logger.warning("model folder check failed, keeping the models loaded: %s", exc)
            return
        seen = set()
        for name, versions in found.items():
            for version, (path, mark) in versions.items():
                seen.add((name, version))
                current = self._models.get(name, {}).get(version)
                if mark is None or (current is not None and current.fingerprint == mark):
                    continue
                failed = self._failed.get((name, version))
                if (
                    failed is not None
                    and failed.mark == mark
                    and time.monotonic() < failed.retry_at
                ):
                    continue
                try:
                    share_the_gil()  # a reload beside the requests being served
                    loaded = await loop.run_in_executor(None, self._load, name, version, path)
                except Exception as exc:
                    delay = RETRY_FIRST_S
                    if failed is not None and failed.mark == mark:
                        delay = min(failed.delay * 2, RETRY_MAX_S)
                    self._failed[name, version] = _Failure(
                        mark, str(exc), time.monotonic() + delay, delay
                    )
                    self.metrics.observe_load(name, False)
                    if failed is None or failed.reason != str(exc):
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
        self._on_disk = {name for name, versions in found.items() if versions}

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
        self._started = False
        for model in list(self):
            await model.batcher.close()
        if self._draining:
            await asyncio.gather(*self._draining, return_exceptions=True)
