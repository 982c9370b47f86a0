"""Names travel from training to serving and explanations: a classifier trained on string or
named labels serves and explains its class names, and the Python explain API names the
features stored in ``model.json``."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner
from serve_helpers import app_for
from starlette.testclient import TestClient

import neurocloud as nc
from neurocloud import explain
from neurocloud.cli import main
from neurocloud.sklearn import NeuralNetClassifier

LABELS = ["high", "low", "mid"]  # sorted, as classes_ are


@pytest.fixture(scope="module")
def labelled(tmp_path_factory):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(90, 3))
    y = np.array(LABELS)[np.digitize(X[:, 0], [-0.4, 0.4])]
    clf = NeuralNetClassifier((8,), max_epochs=60, learning_rate=0.05, tol=0.1, random_state=0).fit(
        X, y
    )
    path = nc.save(clf, tmp_path_factory.mktemp("m") / "labels", feature_names=["a", "b", "c"])
    return path, X


def test_string_labels_are_the_saved_output_names(labelled):
    path, _ = labelled
    metadata = json.loads((path / "model.json").read_text())
    assert metadata["output_names"] == LABELS
    assert metadata["feature_names"] == ["a", "b", "c"]


def test_v2_metadata_and_infer_responses_carry_the_labels(labelled):
    path, X = labelled
    with TestClient(app_for(path.parent)) as client:
        meta = client.get("/v2/models/labels").json()
        assert meta["outputs"][0]["parameters"] == {"labels": LABELS}
        body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [2, 3],
                            "data": X[:2].ravel().tolist()}]}  # fmt: skip
        answer = client.post("/v2/models/labels/infer", json=body).json()
        output = answer["outputs"][0]
        assert output["parameters"]["labels"] == LABELS and output["shape"] == [2, 3]
        binary = {**body, "parameters": {"binary_data_output": True}}
        raw = client.post("/v2/models/labels/infer", json=binary)
        size = int(raw.headers["inference-header-content-length"])
        head = json.loads(raw.content[:size])["outputs"][0]["parameters"]
        assert head["labels"] == LABELS and head["binary_data_size"] == 2 * 3 * 8  # float64


def test_sagemaker_json_answers_name_the_classes_whatever_the_request_type(labelled):
    path, X = labelled
    proba = nc.load(path).predict_proba(X[:2])
    csv = "\n".join(",".join(repr(v) for v in row) for row in X[:2].tolist())
    with TestClient(app_for(path.parent)) as client:
        for content_type, body in (
            ("application/json", json.dumps({"x": X[:2].tolist()})),
            ("application/json", json.dumps({"instances": X[:2].tolist()})),
            ("text/csv", csv),
        ):
            answer = client.post(
                "/invocations",
                content=body,
                headers={"Content-Type": content_type, "Accept": "application/json"},
            )
            assert answer.status_code == 200, answer.text
            payload = answer.json()
            assert payload["labels"] == LABELS
            (values,) = (v for k, v in payload.items() if k != "labels")
            np.testing.assert_allclose(values, proba, rtol=1e-6)
        # CSV carries numbers only: a header would break the clients that parse it
        answer = client.post(
            "/invocations", content=csv, headers={"Content-Type": "text/csv", "Accept": "text/csv"}
        )
        assert "high" not in answer.text


def test_unnamed_outputs_add_no_parameters(tmp_path):
    model = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
    with TestClient(app_for(nc.save(model, tmp_path / "plain").parent)) as client:
        assert "parameters" not in client.get("/v2/models/plain").json()["outputs"][0]


def test_python_explain_api_uses_the_stored_feature_and_class_names(labelled, tmp_path):
    path, X = labelled
    for loaded in (nc.load(path), nc.artifact.load_artifact(path).model):
        e = explain.integrated_gradients(loaded, X[:2])
        assert e.feature_names == ["a", "b", "c"] and e.output_names == LABELS
        assert e.target_name(0) == LABELS[int(e.target[0])]
        assert explain.saliency(loaded, X[:1]).feature_names == ["a", "b", "c"]
    # an explicit list still wins
    assert explain.saliency(nc.load(path), X[:1], feature_names=["p", "q", "r"]).feature_names == [
        "p", "q", "r"]  # fmt: skip
    figure = e.plot(tmp_path / "ig.png", rows=[0])
    titles = [ax.get_title() for ax in figure.axes]
    assert any(f"output {e.target_name(0)} = " in t for t in titles), titles


def test_saving_a_loaded_network_keeps_its_names(labelled, tmp_path):
    path, _ = labelled
    again = nc.save(nc.artifact.load_artifact(path).model, tmp_path / "again")
    metadata = json.loads((again / "model.json").read_text())
    assert metadata["feature_names"] == ["a", "b", "c"] and metadata["output_names"] == LABELS


def test_cli_train_on_a_built_in_data_set_serves_and_explains_class_names(tmp_path):
    out = tmp_path / "iris"
    args = ["train", "--data", "iris", "--hidden", "16", "--epochs", "80", "--lr", "0.02"]
    result = CliRunner().invoke(main, [*args, "-q", "-o", str(out)])
    assert result.exit_code == 0, result.output
    names = ["setosa", "versicolor", "virginica"]
    assert json.loads((out / "model.json").read_text())["output_names"] == names
    assert nc.load(out).predict([[5.1, 3.5, 1.4, 0.2]]).tolist() == ["setosa"]
    shown = CliRunner().invoke(main, ["explain", str(out), "--row", "5.1,3.5,1.4,0.2"])
    assert shown.exit_code == 0 and "integrated_gradients of output setosa = " in shown.output
    assert "petal length (cm)" in shown.output
