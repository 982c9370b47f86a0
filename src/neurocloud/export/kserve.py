"""KServe manifests for our container: a ``ClusterServingRuntime`` that runs ``neurocloud
serve`` speaking the Open Inference Protocol (V2), and an ``InferenceService`` that serves
one saved model with it.

KServe downloads ``storage_uri`` (the model directory, e.g. the contents of
``neurocloud export --format sagemaker``'s archive in S3, GCS or a PVC) into
``/mnt/models``; the runtime's container serves that folder on port 8080, with liveness and
readiness probes on ``/v2/health/live`` and ``/v2/health/ready`` (ready only once the model
is loaded and warmed). ``kubectl apply -f`` the file, then call
``/v2/models/<name>/infer`` on the service.

>>> import tempfile, yaml, neurocloud as nc
>>> tmp = tempfile.mkdtemp()
>>> model_dir = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0), tmp + "/seed")
>>> path = nc.export.kserve(model_dir, tmp + "/seed.yaml", storage_uri="s3://bucket/seed")
>>> [doc["kind"] for doc in yaml.safe_load_all(path.read_text())]
['ClusterServingRuntime', 'InferenceService']
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from neurocloud.artifact import load_artifact
from neurocloud.export.optional import require

__all__ = ["MODEL_FORMAT", "kserve", "kserve_manifests"]

#: the model format the runtime declares and the InferenceService asks for
MODEL_FORMAT = "neurocloud"
PORT = 8080
MODEL_MOUNT = "/mnt/models"  # where KServe's storage initializer puts storageUri
# Kubernetes object names (RFC 1123 labels; KServe's InferenceService names start with a letter)
_NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")


def _probe(path: str, initial_delay: int, period: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT},
        "initialDelaySeconds": initial_delay,
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": 3,
    }


def _name(name: str | None, model_dir: Path, field: str = "name") -> str:
    if name is None:
        name = re.sub(r"[^a-z0-9-]+", "-", model_dir.name.lower()).strip("-")
        if not name or not name[0].isalpha():
            name = f"model-{name}".rstrip("-")
    if len(name) > 63 or not _NAME.fullmatch(name):
        raise ValueError(
            f"{field}: expected a Kubernetes name (lower-case letters, digits and '-', starting "
            f"with a letter, ending with a letter or digit, at most 63); received {name!r}"
        )
    return name


def kserve_manifests(
    model_dir: str | os.PathLike[str],
    *,
    storage_uri: str,
    image: str = "neurocloud:latest",
    name: str | None = None,
    runtime: str = "neurocloud",
    min_replicas: int = 1,
) -> list[dict[str, Any]]:
    """The ``ClusterServingRuntime`` and ``InferenceService`` objects for ``model_dir``.

    The model is loaded first, so a broken directory is refused before anything is written.
    """
    artifact = load_artifact(model_dir)
    name = _name(name, Path(artifact.path))
    runtime = _name(runtime, Path(runtime), "runtime")
    if "://" not in storage_uri:
        raise ValueError(
            "storage_uri: expected a URI KServe can download, such as s3://bucket/path, "
            f"gs://bucket/path or pvc://claim/path; received {storage_uri!r}"
        )
    if min_replicas < 0:
        raise ValueError(f"min_replicas: expected 0 or more; received {min_replicas}")
    serving_runtime = {
        "apiVersion": "serving.kserve.io/v1alpha1",
        "kind": "ClusterServingRuntime",
        "metadata": {"name": runtime},
        "spec": {
            "supportedModelFormats": [{"name": MODEL_FORMAT, "version": "1", "autoSelect": True}],
            "protocolVersions": ["v2"],
            "multiModel": False,
            "containers": [
                {
                    "name": "kserve-container",
                    "image": image,
                    "args": ["serve", MODEL_MOUNT, "--host", "0.0.0.0", "--port", str(PORT)],
                    "ports": [{"containerPort": PORT, "protocol": "TCP"}],
                    "livenessProbe": _probe("/v2/health/live", 5, 10),
                    "readinessProbe": _probe("/v2/health/ready", 1, 5),
                }
            ],
        },
    }
    service = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": name},
        "spec": {
            "predictor": {
                "minReplicas": min_replicas,
                "model": {
                    "modelFormat": {"name": MODEL_FORMAT, "version": "1"},
                    "protocolVersion": "v2",
                    "runtime": runtime,
                    "storageUri": storage_uri,
                },
            }
        },
    }
    return [serving_runtime, service]


def kserve(model_dir: str | os.PathLike[str], out: str | os.PathLike[str], **options: Any) -> Path:
    """Write :func:`kserve_manifests` to ``out`` as one YAML file of two documents;
    ``options`` as for :func:`kserve_manifests` (``storage_uri`` required)."""
    yaml = require("yaml", "kserve")
    documents = kserve_manifests(model_dir, **options)
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(yaml.safe_dump_all(documents, sort_keys=False))
    tmp.replace(target)
    return target
