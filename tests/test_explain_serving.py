"""The served explanations (``POST /explain`` and the V2 ``explain`` routes) equal the
library's, and an over-limit request gets a 4xx that names the limit."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
from starlette.testclient import TestClient

import neurocloud as nc
from neurocloud import explain
from neurocloud.serve import create_app
from neurocloud.serve.errors import ServeError
from neurocloud.serve.explanation_requests import MAX_STEPS
from neurocloud.serve.explanations import explain as serve_explain


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    model = nc.Sequential(
        [nc.layers.Dense(8, "relu"), nc.layers.Dense(3, "softmax")],
        input_dim=4,
        seed=5,
        dtype="float64",  # JSON carries float64 exactly, so served == library bit for bit
    )
    path = nc.save(model, tmp_path_factory.mktemp("explain") / "clf")
    with TestClient(create_app(path, reload_interval_s=0)) as client:
        yield nc.load(path), client


X = np.random.default_rng(0).normal(size=(3, 4))
BACKGROUND = np.random.default_rng(1).normal(size=(6, 4))


def _assert_same(served: dict[str, np.ndarray], reference: explain.Explanation) -> None:
    assert np.array_equal(served["attributions"], reference.attributions)
    assert np.array_equal(served["prediction"], reference.prediction)
    assert np.array_equal(served["target"], reference.target)
    if reference.base_value is not None:
        assert np.array_equal(served["base_value"], reference.base_value)
        assert np.array_equal(served["completeness_error"], reference.completeness_error)


def _v2_outputs(response) -> dict[str, np.ndarray]:
    assert response.status_code == 200, response.text
    return {o["name"]: np.reshape(o["data"], o["shape"]) for o in response.json()["outputs"]}


def test_sagemaker_explain_equals_the_library(served):
    model, client = served
    body = {"x": X.tolist(), "parameters": {"method": "ig", "steps": 32}}
    response = client.post("/explain", json=body)
    assert response.status_code == 200, response.text
    result = {k: np.asarray(v) for k, v in response.json().items()}
    _assert_same(result, explain.integrated_gradients(model, X, steps=32))
    # settings in the query string arrive as text
    query = client.post("/explain?method=saliency&target=2", json={"x": X.tolist()})
    assert query.status_code == 200, query.text
    result = {k: np.asarray(v) for k, v in query.json().items()}
    _assert_same(result, explain.saliency(model, X, target=2))


def test_v2_explain_equals_the_library(served):
    model, client = served
    inputs = [{"name": "x", "shape": list(X.shape), "datatype": "FP64", "data": X.ravel().tolist()}]
    parameters = {"method": "expected", "background": BACKGROUND.tolist(), "samples": 60}
    response = client.post(
        "/v2/models/clf/explain", json={"inputs": inputs, "parameters": parameters}
    )
    reference = explain.expected_gradients(model, X, BACKGROUND, samples=60)
    outputs = _v2_outputs(response)
    _assert_same(outputs, reference)
    assert np.array_equal(outputs["standard_error"], reference.standard_error)
    smooth = {"method": "smoothgrad", "samples": 5, "seed": 2}
    response = client.post(
        "/v2/models/clf/versions/1/explain", json={"inputs": inputs, "parameters": smooth}
    )
    _assert_same(_v2_outputs(response), explain.smoothgrad(model, X, samples=5, seed=2))


def test_over_limit_and_bad_requests_get_a_4xx_naming_the_problem(served):
    _, client = served
    too_many = {"x": X.tolist(), "parameters": {"method": "ig", "steps": MAX_STEPS + 1}}
    response = client.post("/explain", json=too_many)
    assert 400 <= response.status_code < 500
    message = response.json()["error"]
    assert f"steps={MAX_STEPS + 1}" in message and f"MAX_STEPS={MAX_STEPS}" in message
    inputs = [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.0] * 4}]
    unknown = client.post(
        "/v2/models/clf/explain", json={"inputs": inputs, "parameters": {"method": "magic"}}
    )
    assert unknown.status_code == 400 and "integrated_gradients" in unknown.json()["error"]


class _BlockingModel:
    """A served version whose explanations block until released, counting the calls."""

    name = "blocking"

    def __init__(self) -> None:
        self.explain_slot = asyncio.Semaphore(1)
        self.started, self.release = threading.Event(), threading.Event()
        self.calls = 0

    def explain(self, rows, parameters):
        self.calls += 1
        self.started.set()
        self.release.wait(60)
        return {"attributions": rows}


def test_explanations_of_one_model_take_turns_and_a_queued_one_times_out_without_running():
    """Without the turn, heavy explanations ran side by side, each reached its deadline
    check later, and SIGTERM under load took past SageMaker's 30 s."""

    async def scenario() -> None:
        model = _BlockingModel()
        rows = np.zeros((1, 2))
        first = asyncio.ensure_future(serve_explain(model, rows, {}, timeout=60))
        assert await asyncio.to_thread(model.started.wait, 60)
        with pytest.raises(ServeError) as queued:
            await serve_explain(model, rows, {}, timeout=0.05)
        assert queued.value.status == 504
        assert model.calls == 1  # the queued explanation never started
        model.release.set()
        assert (await first)["attributions"].shape == (1, 2)
        model.release.clear()
        model.release.set()
        third = await serve_explain(model, rows, {}, timeout=60)  # the turn was given back
        assert model.calls == 2 and third["attributions"].shape == (1, 2)

    asyncio.run(scenario())
