"""The playground's API without a browser: show-the-code reproduces the training, sessions
are bounded and cleaned up, bad settings name their field."""

from __future__ import annotations

import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile

import numpy as np
import pytest
from starlette.testclient import TestClient

import neurocloud as nc
from neurocloud.playground.app import create_playground_app
from neurocloud.serve.pages import STATIC_DIR


@pytest.fixture
def client(tmp_path):
    with TestClient(create_playground_app(models_dir=tmp_path, max_sessions=2)) as client:
        yield client


def new_session(client, **settings) -> str:
    response = client.post("/api/sessions", json=settings)
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.mark.parametrize(
    "settings",
    [
        {"epochs": 40},
        {
            "data": "moons",
            "layers": "4,3",
            "activations": ["tanh", "relu"],
            "batch_size": 16,
            "validation": 0.25,
            "l2": 0.01,
            "optimizer": "adam",
            "lr": 0.02,
            "epochs": 3,
            "initializer": "glorot_uniform",
            "points": 60,
        },
        {
            "data": "iris",
            "standardize": True,
            "layers": [5],
            "activations": ["elu"],
            "dropout": 0.2,
            "batch_size": 32,
            "optimizer": "rmsprop",
            "lr": 0.01,
            "epochs": 2,
        },
    ],
)
def test_show_the_code_reproduces_the_sessions_weights(client, tmp_path, settings):
    sid = new_session(client, **settings)
    for _ in range(settings["epochs"]):
        assert client.post(f"/api/sessions/{sid}/step-epoch").status_code == 200
    source = client.get(f"/api/sessions/{sid}/code").text
    saved = client.post(f"/api/sessions/{sid}/save", json={"name": "mine"}).json()["path"]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(source, "shown-code", "exec"), {"print": lambda *a: None})
    finally:
        os.chdir(cwd)
    ours = nc.load(tmp_path / "playground-model").parameters()
    for mine, theirs in zip(ours, nc.load(saved).parameters()):
        np.testing.assert_array_equal(mine, theirs)


def test_reset_returns_to_the_same_initial_weights(client):
    sid = new_session(client)
    first = client.get(f"/api/sessions/{sid}").json()["view"]["kernels"]
    client.post(f"/api/sessions/{sid}/step-batch")
    assert client.get(f"/api/sessions/{sid}").json()["view"]["kernels"] != first
    view = client.post(f"/api/sessions/{sid}/reset").json()["view"]
    assert view["kernels"] == first and view["epoch"] == 0


def test_session_limit_is_a_clear_message_and_closing_frees_a_slot(client):
    first = new_session(client)
    second = new_session(client, seed=1)
    client.post(f"/api/sessions/{first}/step-epoch")  # sessions are independent
    assert client.get(f"/api/sessions/{second}").json()["view"]["epoch"] == 0
    assert client.get(f"/api/sessions/{second}").json()["settings"]["seed"] == 1
    refused = client.post("/api/sessions", json={})
    assert refused.status_code == 429
    assert "at most 2 at once" in refused.json()["error"]
    assert client.delete(f"/api/sessions/{first}").status_code == 204
    new_session(client)


def test_an_abandoned_session_is_closed(client):
    sid = new_session(client)
    sessions = client.app.state.sessions
    sessions.get(sid).touched = time.monotonic() - sessions.ttl_s - 1
    assert sessions.expire() == [sid]
    gone = client.get(f"/api/sessions/{sid}")
    assert gone.status_code == 404 and "reload the page" in gone.json()["error"]


@pytest.mark.parametrize(
    ("settings", "field", "text"),
    [
        ({"lr": "fast"}, "lr", "Expected lr to be a number > 0 and <= 10. Received: lr='fast'"),
        ({"lr": 50}, "lr", "Expected lr to be a number > 0 and <= 10. Received: lr=50"),
        ({"layers": [2] * 7}, "layers", "at most 6 hidden layers"),
        ({"layers": [65]}, "layers", "Expected layers to be an integer >= 1 and <= 64"),
        ({"data": "mnist"}, "data", "received 'mnist'"),
        ({"loss": "binary_crossentropy"}, "loss", "for seed"),
        ({"data": "upload", "csv": "a,b\n1,x\n"}, "csv", "csv:"),
        ({"activations": ["sigmoid", "nope"]}, "activations", "received 'nope'"),
    ],
)
def test_bad_settings_name_their_field(client, settings, field, text):
    sid = new_session(client)
    response = client.put(f"/api/sessions/{sid}/settings", json=settings)
    assert response.status_code == 400
    assert response.json()["field"] == field and text in response.json()["error"]


def test_an_uploaded_csv_trains_and_an_oversized_one_is_refused(client):
    rows = "\n".join(f"{i / 10},{(i / 10) ** 2}" for i in range(30))
    sid = new_session(client, data="upload", csv="x,y\n" + rows, epochs=5, optimizer="adam")
    view = client.post(f"/api/sessions/{sid}/step-epoch").json()["view"]
    assert view["epoch"] == 1 and "curve" in view
    big = client.put(
        f"/api/sessions/{sid}/settings", json={"data": "upload", "csv": "x" * (3 << 20)}
    )
    assert big.status_code == 413 and "at most" in big.json()["error"]


def test_stepping_while_training_runs_is_refused(client):
    sid = new_session(client, epochs=20000)
    client.post(f"/api/sessions/{sid}/train", json={"pace": 1})  # one epoch a second
    refused = client.post(f"/api/sessions/{sid}/step-batch")
    paused = client.post(f"/api/sessions/{sid}/pause").json()["view"]
    assert refused.status_code == 409
    assert "pause it first" in refused.json()["error"]
    assert paused["state"] == "paused" and paused["epoch"] < 20000


def test_download_is_a_zip_of_the_saved_model(client, tmp_path):
    sid = new_session(client, epochs=3)
    client.post(f"/api/sessions/{sid}/step-epoch")
    response = client.get(f"/api/sessions/{sid}/download?name=article")
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = set(archive.namelist())
        assert {"article/model.json", "article/weights.safetensors", "article/card.json"} <= names
        archive.extractall(tmp_path / "unzipped")
    model = nc.load(tmp_path / "unzipped" / "article")
    assert model.predict([[4.5]]).shape == (1, 1)
    bad = client.get(f"/api/sessions/{sid}/download?name=../x")
    assert bad.status_code == 400 and bad.json()["field"] == "model-name"


def test_page_assets_load_nothing_from_elsewhere():
    svg_namespace = "http://www.w3.org/2000/svg"
    for asset in STATIC_DIR.iterdir():
        text = asset.read_text(encoding="utf-8").replace(svg_namespace, "")
        assert not re.search(r"https?://", text), asset.name
        assert "@import" not in text and "@font-face" not in text, asset.name


def test_the_playground_command_serves_the_page(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [
        sys.executable,
        "-c",
        "from neurocloud.cli import run; run()",
        "playground",
        "--port",
        str(port),
        "--models",
        str(tmp_path),
        "--max-sessions",
        "1",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        assert "open http://127.0.0.1:" in process.stdout.readline().decode()
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as page:
                    assert b"neurocloud playground" in page.read()
                    break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        process.stdout.close()


def test_train_refuses_a_bad_pace(client):
    sid = new_session(client)
    refused = client.post(f"/api/sessions/{sid}/train", json={"pace": "fast"})
    assert refused.status_code == 400 and refused.json()["field"] == "pace"


def test_a_diverging_training_stops_with_a_message_on_the_learning_rate(client):
    settings = {
        "layers": [8, 8],
        "activations": ["relu", "relu"],
        "lr": 10,
        "epochs": 200,
        "initializer": "he_uniform",
    }
    sid = new_session(client, **settings)
    for _ in range(200):
        response = client.post(f"/api/sessions/{sid}/step-epoch")
        if response.status_code != 200:
            break
    assert response.status_code == 409 and response.json()["field"] == "lr"
    assert "diverged" in response.json()["error"]
    view = client.get(f"/api/sessions/{sid}").json()["view"]
    assert view["state"] == "diverged" and "lower the learning rate" in view["error"]
    assert client.post(f"/api/sessions/{sid}/train").status_code == 409
    assert client.post(f"/api/sessions/{sid}/reset").json()["view"]["state"] == "ready"

    sid = new_session(client, **settings)  # the same in the training thread
    client.post(f"/api/sessions/{sid}/train")
    client.app.state.sessions.get(sid)._thread.join(60)
    view = client.get(f"/api/sessions/{sid}").json()["view"]
    assert view["state"] == "diverged" and "diverged" in view["error"]
