"""The Open Inference Protocol's own clients against ``neurocloud serve``: kserve's
``InferenceRESTClient`` (which reads the health bodies), tritonclient (which reads only the
status) and the JSON that MLServer's ``mlserver.types`` models read.

MLServer itself does not install beside our pins: mlserver 1.7.1 requires
``fastapi<0.116``, and those FastAPI releases require ``starlette<0.47`` (we run Starlette
1.x). So the MLServer test checks our answers against pydantic models holding the fields,
types and datatype names of ``mlserver/types/dataplane.py`` in mlserver 1.7.1.
"""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import Any

import numpy as np
import pytest
from pydantic import BaseModel, ConfigDict
from serve_helpers import app_for, article_model, server, wide_model
from starlette.testclient import TestClient

import neurocloud as nc


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("kserve") / "repo"
    models = {"seed": article_model(0), "wide": wide_model(1)}
    nc.save(models["seed"], root / "seed" / "1")
    nc.save(models["wide"], root / "wide" / "1", input_name="features", output_name="scores")
    return root, models


@pytest.fixture(scope="module")
def live(repo):
    with server(repo[0]) as process:
        yield process


def test_kserve_rest_client(live, repo):
    import kserve
    from kserve.protocol.infer_type import InferInput, InferRequest

    x = np.array([[1.0, 2.0, 3.0], [0.0, 0.5, 1.0]], dtype=np.float32)

    async def calls() -> tuple[Any, ...]:
        client = kserve.InferenceRESTClient(kserve.RESTConfig(protocol="v2", retries=0))
        try:
            tensor = InferInput("features", list(x.shape), "FP32")
            tensor.set_data_from_numpy(x, binary_data=False)
            answer = await client.infer(live.url, InferRequest("wide", [tensor]), model_name="wide")
            return (
                await client.is_server_live(live.url),
                await client.is_server_ready(live.url),
                await client.is_model_ready(live.url, "wide"),
                await client.is_model_ready(live.url, "nope"),
                answer,
            )
        finally:
            await client.close()

    is_live, is_ready, model_ready, unknown_ready, answer = asyncio.run(calls())
    assert is_live is True and is_ready is True
    assert model_ready is True and unknown_ready is False
    [output] = answer.outputs
    assert output.name == "scores" and output.shape == [2, 2]
    np.testing.assert_allclose(output.as_numpy(), repo[1]["wide"].predict(x), rtol=1e-5, atol=1e-6)


def test_tritonclient_still_reads_the_health_status(live):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(live.url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("seed") and not client.is_model_ready("nope")
    finally:
        client.close()


def test_health_bodies_before_and_after_loading(repo):
    app = app_for(repo[0])
    loading = TestClient(app)  # outside its lifespan: nothing is loaded yet
    assert loading.get("/v2/health/live").json() == {"live": True}
    not_ready = loading.get("/v2/health/ready")
    assert not_ready.status_code == 503 and not_ready.json()["ready"] is False
    with TestClient(app) as client:
        ready = client.get("/v2/health/ready")
        model = client.get("/v2/models/seed/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}
    assert model.status_code == 200 and model.json() == {"name": "seed", "ready": True}


class Datatype(str, Enum):
    """The datatype names MLServer's models accept."""

    BOOL = "BOOL"
    UINT8, UINT16, UINT32, UINT64 = "UINT8", "UINT16", "UINT32", "UINT64"
    INT8, INT16, INT32, INT64 = "INT8", "INT16", "INT32", "INT64"
    FP16, FP32, FP64 = "FP16", "FP32", "FP64"
    BYTES = "BYTES"


class Strict(BaseModel):
    model_config = ConfigDict(protected_namespaces=())


class Tensor(Strict):  # MetadataTensor
    name: str
    datatype: Datatype
    shape: list[int]
    parameters: dict[str, Any] | None = None


class ModelMetadata(Strict):  # MetadataModelResponse
    name: str
    versions: list[str] | None = None
    platform: str
    inputs: list[Tensor] | None = None
    outputs: list[Tensor] | None = None


class ServerMetadata(Strict):  # MetadataServerResponse
    name: str
    version: str
    extensions: list[str]


class Output(Tensor):  # ResponseOutput
    data: list[Any] | Any


class InferenceResponse(Strict):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: dict[str, Any] | None = None
    outputs: list[Output]


def test_mlserver_types_read_our_answers(repo):
    with TestClient(app_for(repo[0])) as client:
        server_meta = ServerMetadata.model_validate(client.get("/v2").json())
        meta = ModelMetadata.model_validate(client.get("/v2/models/wide").json())
        # What an MLServer client sends: InferenceRequest.model_dump() drops unset fields.
        request = {
            "id": "r1",
            "inputs": [
                {"name": "features", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}
            ],
        }
        answer = InferenceResponse.model_validate(
            client.post("/v2/models/wide/infer", json=request).json()
        )
    assert "binary_tensor_data" in server_meta.extensions
    assert meta.inputs[0].shape == [-1, 3] and meta.outputs[0].name == "scores"
    assert answer.id == "r1" and answer.model_name == "wide"
    [output] = answer.outputs
    assert output.datatype == Datatype.FP32 and output.shape == [1, 2]
    np.testing.assert_allclose(
        np.reshape(output.data, output.shape),
        repo[1]["wide"].predict([[1, 2, 3]]),
        rtol=1e-5,
        atol=1e-6,
    )
