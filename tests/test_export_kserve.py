"""``neurocloud export --format kserve``: the ClusterServingRuntime and InferenceService for
our container, validated offline against KServe's CRD schemas.

The schemas in ``kserve_crd_schema.json`` are the openAPIV3Schema parts of KServe's CRDs
that the manifests use, from kserve/kserve@aaac4e294dae2c7b1aa1886447793f3aa1c30912:
``config/crd/full/serving.kserve.io_inferenceservices.yaml`` (v1beta1) and
``config/crd/full/serving.kserve.io_clusterservingruntimes.yaml`` (v1alpha1); the file's
``source`` field says how they were pruned.
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from serve_helpers import app_for, article_model
from starlette.testclient import TestClient

import neurocloud as nc
from neurocloud.cli import main

SCHEMAS = json.loads((Path(__file__).with_name("kserve_crd_schema.json")).read_text())


@pytest.fixture
def model_dir(tmp_path):
    return nc.save(article_model(), tmp_path / "seed")


def export(model_dir, out, *extra):
    return CliRunner().invoke(
        main, ["export", str(model_dir), "--format", "kserve", "-o", str(out), *extra]
    )


def test_manifests_follow_the_crd_schemas(model_dir, tmp_path):
    out = tmp_path / "seed.yaml"
    result = export(model_dir, out, "--storage-uri", "s3://bucket/seed", "--image", "r/nc:1")
    assert result.exit_code == 0, result.output
    assert f"wrote {out}" in result.output
    runtime, service = yaml.safe_load_all(out.read_text())
    for document in (runtime, service):
        jsonschema.validate(document, SCHEMAS[document["kind"]])
    assert runtime["apiVersion"] == "serving.kserve.io/v1alpha1"
    assert service["apiVersion"] == "serving.kserve.io/v1beta1"
    model = service["spec"]["predictor"]["model"]
    assert model["protocolVersion"] == "v2" and "v2" in runtime["spec"]["protocolVersions"]
    assert model["runtime"] == runtime["metadata"]["name"]
    assert model["modelFormat"]["name"] in {
        f["name"] for f in runtime["spec"]["supportedModelFormats"]
    }
    assert model["storageUri"] == "s3://bucket/seed" and service["metadata"]["name"] == "seed"
    [container] = runtime["spec"]["containers"]
    assert container["image"] == "r/nc:1"
    assert container["args"][:2] == ["serve", "/mnt/models"]  # where KServe puts storageUri


def test_probes_and_port_reach_the_served_routes(model_dir, tmp_path):
    """The container's probe paths and port are what ``neurocloud serve`` answers on."""
    out = nc.export.kserve(model_dir, tmp_path / "m.yaml", storage_uri="pvc://claim/seed")
    runtime, _ = yaml.safe_load_all(out.read_text())
    [container] = runtime["spec"]["containers"]
    port = container["ports"][0]["containerPort"]
    assert container["args"][container["args"].index("--port") + 1] == str(port)
    live, ready = container["livenessProbe"]["httpGet"], container["readinessProbe"]["httpGet"]
    assert live["port"] == ready["port"] == port
    with TestClient(app_for(model_dir)) as client:
        assert client.get(live["path"]).json() == {"live": True}
        assert client.get(ready["path"]).json() == {"ready": True}
        answer = client.post(
            "/v2/models/seed/infer",
            json={"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [4.5]}]},
        )
    assert np.isclose(
        answer.json()["outputs"][0]["data"][0], article_model().predict([[4.5]])[0, 0]
    )


def test_schema_catches_a_misspelt_field():
    """The pruned schema is strict: a field KServe would drop silently fails validation."""
    bad = {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": {"name": "seed"},
        "spec": {"predictor": {"model": {"modelFormat": {"name": "x"}, "storageURI": "s3://b"}}},
    }
    with pytest.raises(jsonschema.ValidationError, match="storageURI"):
        jsonschema.validate(bad, SCHEMAS["InferenceService"])


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "needs --storage-uri"),
        (["--storage-uri", "bucket/seed"], "expected a URI KServe can download"),
        (["--storage-uri", "s3://b/s", "--name", "Seed_1"], "expected a Kubernetes name"),
    ],
)
def test_bad_options_are_one_line_errors(model_dir, tmp_path, extra, message):
    out = tmp_path / "bad.yaml"
    result = export(model_dir, out, *extra)
    assert result.exit_code != 0 and message in result.output
    assert "Traceback" not in result.output and not out.exists()


def test_kserve_options_are_refused_for_other_formats(model_dir, tmp_path):
    result = CliRunner().invoke(
        main,
        ["export", str(model_dir), "--format", "onnx", "--storage-uri", "s3://b/s"],
    )
    assert result.exit_code != 0 and "applies to --format kserve only" in result.output


def test_default_name_comes_from_the_folder(tmp_path):
    path = nc.save(article_model(), tmp_path / "My_Model")
    [_, service] = nc.export.kserve_manifests(path, storage_uri="gs://b/m")
    assert service["metadata"]["name"] == "my-model"
