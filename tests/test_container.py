"""Our container, without a Docker engine: the Dockerfile's promises, and its entry point run
for real, end to end: ``train`` into a temporary /opt/ml, then ``serve`` what it wrote (on
127.0.0.1, a free port), then the article's ``Predictor`` call."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.cloud.training import ROOT_VARIABLE
from neurocloud.serve.launcher import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def instruction(name: str) -> list[str]:
    """The arguments of every ``name`` instruction (continuation lines joined)."""
    text = re.sub(r"\\\n", " ", DOCKERFILE)
    return [m.group(1).strip() for m in re.finditer(rf"^{name}\s+(.*)$", text, re.MULTILINE)]


def entrypoint() -> list[str]:
    (value,) = instruction("ENTRYPOINT")
    return json.loads(value)  # exec form is a JSON array; shell form would not parse


def test_dockerfile_follows_the_sagemaker_container_contract():
    (base,) = instruction("FROM")
    assert re.fullmatch(r"python:3\.\d+-slim", base)
    labels = " ".join(instruction("LABEL"))
    assert "com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true" in labels
    assert entrypoint() == ["neurocloud"]
    assert json.loads(instruction("CMD")[0]) == ["serve"]
    assert "useradd" in " ".join(instruction("RUN"))
    assert "8080" in instruction("EXPOSE")
    # everything the image copies exists, and .dockerignore lets it through
    allowed = (ROOT / ".dockerignore").read_text().split()
    for copy in instruction("COPY"):
        *sources, _ = copy.split()
        for source in sources:
            assert (ROOT / source).exists(), source
            assert f"!{source}" in allowed or f"!{source}/" in allowed, source
    # the console script the entry point names is the one pyproject declares
    assert 'neurocloud = "neurocloud.cli:main"' in (ROOT / "pyproject.toml").read_text()


def entry(*args: str) -> list[str]:
    """The image's ENTRYPOINT followed by ``args``, as `docker run IMAGE args` runs it."""
    script = shutil.which(entrypoint()[0], path=str(Path(sys.executable).parent))
    assert script is not None, "the neurocloud console script is not installed"
    return [script, *args]


def opt_ml(root: Path) -> Path:
    """A temporary /opt/ml as SageMaker lays it out for a job on the article's kind of data."""
    config = root / "input" / "config"
    config.mkdir(parents=True)
    (config / "hyperparameters.json").write_text(
        json.dumps(
            {
                "hidden": "8,8",
                "activation": "tanh",
                "epochs": "400",
                "lr": "0.02",
                "target": "y",
                "seed": "1",
            }
        )
    )
    (config / "inputdataconfig.json").write_text(
        json.dumps({"train": {"ContentType": "text/csv", "TrainingInputMode": "File"}})
    )
    data = root / "input" / "data" / "train"
    data.mkdir(parents=True)
    x = np.linspace(0.0, 5.0, 120)
    rows = "\n".join(f"{v:.4f},{0.25 * v * v + 0.5:.4f}" for v in x)
    (data / "train.csv").write_text("x,y\n" + rows + "\n")
    return root


def run_entry(args, env, timeout=120):
    return subprocess.run(
        entry(*args), env={**os.environ, **env}, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """`docker run IMAGE train` with /opt/ml at a temporary root."""
    root = opt_ml(tmp_path_factory.mktemp("opt-ml"))
    result = run_entry(["train"], {ROOT_VARIABLE: str(root)})
    assert result.returncode == 0, result.stdout + result.stderr
    return root, result


def test_train_writes_the_model_and_metrics(trained):
    root, result = trained
    assert sorted(p.name for p in (root / "model").iterdir()) == [
        "card.json",
        "model.json",
        "optimizer.safetensors",
        "weights.safetensors",
    ]
    assert re.search(r"^r2=0\.9\d*$", result.stdout, re.MULTILINE), result.stdout
    assert json.loads((root / "output/data/metrics.json").read_text())["r2"] > 0.9
    assert not (root / "output" / "failure").exists()


def test_serve_what_train_wrote_and_query_it_like_the_article(trained):
    from neurocloud.serve import Predictor

    root, _ = trained
    port = free_port()
    env = {
        **os.environ,
        "SM_MODEL_DIR": str(root / "model"),  # where SageMaker unpacks model.tar.gz
        "SAGEMAKER_BIND_TO_PORT": str(port),
    }
    # `docker run IMAGE serve`, listening on loopback only for the test
    server = subprocess.Popen(
        entry("serve", "--host", "127.0.0.1"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, server.communicate()[0]
            try:
                with urllib.request.urlopen(url + "/ping", timeout=1) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                assert time.monotonic() < deadline, "server not ready in 60 s"
                time.sleep(0.1)
        predictor = Predictor(url, content_type="application/json")
        answer = predictor.predict({"x": [4.5]})
        expected = nc.load(root / "model").predict([[4.5]])
        assert np.allclose(answer["y"], expected, atol=1e-6)
        assert abs(answer["y"][0][0] - (0.25 * 4.5**2 + 0.5)) < 0.5  # it learned the curve
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0]
    assert server.returncode == 0, output


def test_a_failed_job_writes_the_reason_and_exits_non_zero(tmp_path):
    root = opt_ml(tmp_path)
    (root / "input/config/hyperparameters.json").write_text(json.dumps({"epochs": "many"}))
    result = run_entry(["train"], {ROOT_VARIABLE: str(root)})
    assert result.returncode == 1
    failure = (root / "output" / "failure").read_text()
    assert "'epochs': expected a positive integer; received 'many'" in failure
    assert failure.strip() in result.stderr
    assert "Traceback" not in result.stderr
    assert not (root / "model").exists()


def test_train_without_data_outside_a_sagemaker_job_is_a_usage_error(tmp_path):
    from click.testing import CliRunner

    from neurocloud.cli import main

    runner = CliRunner(env={ROOT_VARIABLE: str(tmp_path / "nothing-here")})
    result = runner.invoke(main, ["train"])
    assert result.exit_code == 2 and "Missing option '--data'" in result.output
    result = runner.invoke(main, ["train", "--data", "seed"])
    assert result.exit_code == 2 and "Missing option '-o' / '--output'" in result.output
