"""The model pages' server side: the card route, the page files, and the API's own errors
left as they were."""

from __future__ import annotations

from starlette.testclient import TestClient

import neurocloud as nc
from neurocloud.serve import create_app


def served(tmp_path):
    model = nc.Sequential([nc.layers.Dense(3, activation="softmax")], input_dim=2, seed=0)
    path = nc.save(
        model,
        tmp_path / "repo" / "toy" / "2",
        feature_names=["a", "b"],
        output_names=["x", "y", "z"],
        card={"dataset": "toy", "curves": {"loss": [1.0, 0.5]}},
    )
    return TestClient(create_app(path.parent.parent))


def test_card_route_has_what_the_page_draws(tmp_path):
    with served(tmp_path) as client:
        card = client.get("/models/toy/card").json()
        assert card["version"] == "2" and card["versions"] == ["2"]
        assert card["feature_names"] == ["a", "b"] and card["output_names"] == ["x", "y", "z"]
        assert card["architecture"]["layers"][0]["config"]["activation"] == "softmax"
        assert card["card"]["curves"]["loss"] == [1.0, 0.5] and card["card"]["parameters"] == 9
        assert card["inputs"][0]["shape"] == [-1, 2]
        assert client.get("/models/toy/versions/2/card").json() == card


def test_pages_and_assets_are_served(tmp_path):
    with served(tmp_path) as client:
        for path in ("/", "/models/toy", "/models/toy/versions/2"):
            page = client.get(path)
            assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        script = client.get("/static/model.js")
        assert script.headers["content-type"].startswith("text/javascript")


def test_unknown_model_asset_and_version_are_json_404s(tmp_path):
    with served(tmp_path) as client:
        missing = client.get("/models/nope/card")
        assert missing.status_code == 404 and "expected one of ['toy']" in missing.json()["error"]
        version = client.get("/models/toy/versions/9/card")
        assert version.status_code == 404 and "received '9'" in version.json()["error"]
        for path in ("/static/nope.js", "/static/..%2Fpages.py", "/static/.hidden"):
            assert client.get(path).status_code == 404


def test_page_routes_leave_the_api_405s_alone(tmp_path):
    with served(tmp_path) as client:
        wrong = client.get("/invocations")
        assert wrong.status_code == 405 and "POST" in wrong.json()["error"]
        assert client.get("/nope").status_code == 404
