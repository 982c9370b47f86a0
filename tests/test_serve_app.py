"""The ASGI app itself (serve/app.py): middleware a user adds sees every route, the hot
inference paths included, and each app has its own shutdown signal."""

from __future__ import annotations

import numpy as np
import pytest
from starlette.testclient import TestClient

import neurocloud as nc
from neurocloud.serve import create_app


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return nc.save(
        nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0),
        tmp_path_factory.mktemp("app") / "m",
    )


class Recorder:
    """A pure ASGI middleware that records each HTTP request's method and path, and tags
    the response with a header."""

    def __init__(self, app, seen: list[str]) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        self.seen.append(f"{scope['method']} {scope['path']}")

        async def tagged(message):
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"x-recorded", b"1")]
            await send(message)

        await self.app(scope, receive, tagged)


def test_user_middleware_sees_the_hot_inference_paths(model_dir):
    app = create_app(model_dir)
    seen: list[str] = []
    app.add_middleware(Recorder, seen=seen)
    infer = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [4.5]}]}
    with TestClient(app) as client:
        answers = [
            client.post("/invocations", json={"x": [4.5]}),
            client.post("/v2/models/m/infer", json=infer),
            client.post("/v2/models/m/versions/1/infer", json=infer),
            client.get("/ping"),
            client.get("/v2/health/ready"),
        ]
    assert [r.status_code for r in answers] == [200] * 5
    assert all(r.headers["x-recorded"] == "1" for r in answers)
    assert seen == [
        "POST /invocations",
        "POST /v2/models/m/infer",
        "POST /v2/models/m/versions/1/infer",
        "GET /ping",
        "GET /v2/health/ready",
    ]
    expected = float(nc.load(model_dir).predict(np.array([[4.5]]))[0, 0])
    assert answers[0].json()["y"][0][0] == pytest.approx(expected, rel=1e-6)


def test_user_middleware_errors_are_json_500s_on_the_hot_paths(model_dir):
    class Exploding:
        def __init__(self, app) -> None:
            self.app = app

        async def __call__(self, scope, receive, send):
            if scope["type"] == "http" and scope["path"] == "/invocations":
                raise RuntimeError("middleware exploded")
            await self.app(scope, receive, send)

    app = create_app(model_dir)
    app.add_middleware(Exploding)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.post("/invocations", json={"x": [4.5]})
        assert response.status_code == 500
        assert "middleware exploded" in response.json()["error"]
        assert client.get("/ping").status_code == 200


def test_each_app_has_its_own_stopping_event(model_dir):
    """Two apps in one process: one shutting down (or signalled) never stops the other's
    explanations, and the second's start does not clear the first's signal."""
    first, second = create_app(model_dir), create_app(model_dir)
    body = {"x": [[1.0]], "parameters": {"method": "saliency"}}
    with TestClient(first) as a:
        a_state = first.state.neurocloud
        a_state.stopping.set()  # as SIGTERM does
        with TestClient(second) as b:
            assert a_state.stopping.is_set()  # the second app's start left it alone
            assert not second.state.neurocloud.stopping.is_set()
            assert b.post("/explain", json=body).status_code == 200
            assert a.post("/explain", json=body).status_code == 503
        assert second.state.neurocloud.stopping.is_set()  # its shutdown set its own
    fresh = create_app(model_dir)
    with TestClient(fresh) as c:
        assert c.post("/explain", json=body).status_code == 200
