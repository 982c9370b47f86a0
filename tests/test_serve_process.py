"""A real ``neurocloud serve`` process on 127.0.0.1: the tritonclient HTTP client, the
article's Predictor call, the ready message with its curl command, and SIGTERM draining."""

from __future__ import annotations

import concurrent.futures
import os
import re
import signal
import time
import urllib.request

import numpy as np
import pytest
from serve_helpers import article_model, server, wide_model

import neurocloud as nc
from neurocloud.serve import Predictor, PredictorError
from neurocloud.serve.server import THREAD_VARIABLES


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    root = tmp_path_factory.mktemp("process")
    models = {"seed": article_model(0), "wide": wide_model(1)}
    nc.save(models["seed"], root / "repo" / "seed" / "1")
    nc.save(
        models["wide"], root / "repo" / "wide" / "1", input_name="features", output_name="scores"
    )
    return root / "repo", models


@pytest.fixture(scope="module")
def live(repo):
    with server(repo[0]) as process:
        yield process


@pytest.fixture(scope="module")
def triton():
    import tritonclient.http as httpclient

    return httpclient


def test_tritonclient(live, repo, triton):
    client = triton.InferenceServerClient(url=f"127.0.0.1:{live.port}")
    assert client.is_server_live() and client.is_server_ready()
    assert client.is_model_ready("wide") and client.is_model_ready("seed", "1")
    assert not client.is_model_ready("seed", "4")
    meta = client.get_model_metadata("wide")
    assert meta["inputs"][0] == {"name": "features", "datatype": "FP32", "shape": [-1, 3]}
    X = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    expected = repo[1]["wide"].predict(X)
    for binary_in in (True, False):
        for binary_out in (True, False):
            tensor = triton.InferInput("features", list(X.shape), "FP32")
            tensor.set_data_from_numpy(X, binary_data=binary_in)
            outputs = [triton.InferRequestedOutput("scores", binary_data=binary_out)]
            result = client.infer("wide", [tensor], outputs=outputs, request_id="r1")
            np.testing.assert_allclose(result.as_numpy("scores"), expected, rtol=1e-5, atol=1e-6)
            assert result.get_response()["id"] == "r1"
    tensor = triton.InferInput("features", list(X.shape), "FP32")
    tensor.set_data_from_numpy(X)  # default: binary both ways, no outputs named
    for compression in ("gzip", "deflate"):
        result = client.infer(
            "wide",
            [tensor],
            request_compression_algorithm=compression,
            response_compression_algorithm=compression,
        )
        np.testing.assert_allclose(result.as_numpy("scores"), expected, rtol=1e-5, atol=1e-6)
    wrong = triton.InferInput("features", [5, 2], "FP32")
    wrong.set_data_from_numpy(X[:, :2])
    with pytest.raises(triton.InferenceServerException, match=r"features|\(n, 3\)"):
        client.infer("wide", [wrong])
    with pytest.raises(triton.InferenceServerException, match="nope"):
        client.infer("nope", [tensor])
    client.close()


def test_article_predictor_call(live, repo):
    prediction = Predictor(live.url, model="seed").predict({"x": [4.5]})
    sdk_v1_style = Predictor(live.url, content_type="application/json").predict(
        {"x": [4.5]}, target_model="seed"
    )
    assert sdk_v1_style == prediction
    np.testing.assert_allclose(
        prediction["y"], repo[1]["seed"].predict([[4.5]]), rtol=1e-5, atol=1e-6
    )
    for serializer in ("csv", "npy", "jsonlines"):
        out = Predictor(live.url, model="wide", serializer=serializer).predict(np.eye(3))
        assert set(out) == {"scores"}  # the output's name, as for a JSON request
        out = out["scores"]
        np.testing.assert_allclose(
            np.asarray(out).reshape(3, 2), repo[1]["wide"].predict(np.eye(3)), rtol=1e-5, atol=1e-6
        )
    npy = Predictor(live.url, model="seed", accept="application/x-npy").predict({"x": [1.0, 2.0]})
    assert isinstance(npy, np.ndarray) and npy.shape == (2, 1)
    with pytest.raises(PredictorError) as info:
        Predictor(live.url, model="seed").predict({"z": [1.0]})
    assert info.value.status == 400 and "'x'" in info.value.message


def test_serve_prints_how_to_query_it(tmp_path):
    path = nc.save(article_model(), tmp_path / "seed")
    with server(path) as process:
        deadline = time.monotonic() + 10
        while "Predictor(" not in process.output() and time.monotonic() < deadline:
            time.sleep(0.05)
        text = process.output()
        assert f"curl -s -X POST {process.url}/invocations" in text
        assert "-d '{\"x\": [4.5]}'" in text
        assert f"Predictor('{process.url}').predict({{'x': [4.5]}})" in text
        assert "INFO:     serving seed (versions 1)" in text
        # the printed call works verbatim
        assert "y" in Predictor(process.url).predict({"x": [4.5]})


def test_sigterm_drains_in_flight_requests(tmp_path):
    path = nc.save(article_model(), tmp_path / "seed")
    with server(path, "--max-batch-delay-ms", "2000") as process:

        def call(i):
            request = urllib.request.Request(
                process.url + "/invocations",
                data=b'{"x": [%d]}' % i,
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status

        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            pending = [pool.submit(call, i) for i in range(4)]
            time.sleep(1.0)  # all four are waiting in the batcher now
            started = time.monotonic()
            process.process.send_signal(signal.SIGTERM)
            statuses = [f.result() for f in pending]
        code = process.process.wait(timeout=30)
        assert statuses == [200] * 4
        assert code == 0 and time.monotonic() - started < 30


# The user's thread settings, as not set (an earlier test's library may have set some in this
# process's environment: Ray sets OMP_NUM_THREADS for its workers).
NO_THREAD_SETTINGS = {name: "" for name in THREAD_VARIABLES}


def test_several_workers_share_one_port_and_one_metrics_view(tmp_path):
    path = nc.save(article_model(), tmp_path / "seed")
    with server(path, "--workers", "2", env=NO_THREAD_SETTINGS) as process:
        predictor = Predictor(process.url)
        for _ in range(6):
            assert "y" in predictor.predict({"x": [1.0]})
        with urllib.request.urlopen(process.url + "/metrics", timeout=5) as response:
            text = response.read().decode()
    line = next(
        line
        for line in text.splitlines()
        if line.startswith("neurocloud_requests_total{") and 'endpoint="invocations"' in line
    )
    assert float(line.rsplit(" ", 1)[1]) == 6
    assert process.output().count("serving seed (versions 1)") == 2
    # Each worker's BLAS gets its share of the cores, not all of them.
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    pattern = r"thread pools limited to (\d+) per worker \(2 workers\): (.*)"
    limited = re.findall(pattern, process.output())
    assert [int(n) for n, _ in limited] == [share, share]
    for _, pools in limited:
        assert re.search(rf"blas {share}\b", pools), pools


def test_workers_keep_the_users_thread_setting(tmp_path):
    path = nc.save(article_model(), tmp_path / "seed")
    share = max(1, len(os.sched_getaffinity(0)) // 2)
    mine = 1 if share > 1 else 2  # not what the server would choose
    env = {**NO_THREAD_SETTINGS, "OPENBLAS_NUM_THREADS": str(mine)}
    with server(path, "--workers", "2", env=env) as process:
        assert "y" in Predictor(process.url).predict({"x": [1.0]})
    chosen = re.findall(
        rf"thread pools as set by OPENBLAS_NUM_THREADS={mine}: (.*)", process.output()
    )
    assert len(chosen) == 2, process.output()[-2000:]
    for pools in chosen:
        assert re.search(rf"blas {mine}\b", pools), pools
    assert "limited to" not in process.output()
