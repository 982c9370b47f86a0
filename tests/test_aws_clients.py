"""The AWS clients the article calls its endpoint through, against a local ``neurocloud serve``:
boto3's ``sagemaker-runtime`` client with ``endpoint_url``, the SageMaker Python SDK v2's
``Predictor`` (JSON, CSV and NumPy serializers) and sagemaker-core's ``Endpoint.invoke`` (the
call SDK v3 makes), with dummy credentials and every connection outside 127.0.0.1 refused.
"""

from __future__ import annotations

import io
import json
import socket

import boto3
import numpy as np
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from serve_helpers import article_model, server, wide_model

import neurocloud as nc

SDK_ENVIRONMENT = {
    # The SDK's v2 -> v3 notice is a FutureWarning at import, an error under our filters.
    "SAGEMAKER_SUPPRESS_V2_WARNING": "1",
    # No instance metadata lookups, no shared config or credentials files.
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("aws")
    seed, wide = article_model(0), wide_model(1)
    nc.save(seed, root / "repo" / "seed" / "1")
    nc.save(wide, root / "repo" / "wide" / "1", input_name="features", output_name="scores")
    single = nc.save(seed, root / "single")
    return {"seed": seed, "wide": wide, "repo": root / "repo", "single": single}


@pytest.fixture(scope="module")
def environment():
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SDK_ENVIRONMENT.items():
            patch.setenv(name, value)
        yield patch


@pytest.fixture(scope="module")
def repo_server(models, environment):
    with server(models["repo"]) as live:
        yield live


@pytest.fixture(scope="module")
def single_server(models, environment):
    with server(models["single"]) as live:
        yield live


@pytest.fixture
def offline(monkeypatch):
    """Refuse (and record) every connection and name lookup that is not 127.0.0.1."""
    attempts: list[str] = []
    connect, getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def guarded_connect(sock, address):
        if isinstance(address, tuple) and address[0] not in ("127.0.0.1", "localhost"):
            attempts.append(f"connect {address}")
            raise OSError(f"test: no network ({address})")
        return connect(sock, address)

    def guarded_getaddrinfo(host, *args, **kwargs):
        if host not in ("127.0.0.1", "localhost", None):
            attempts.append(f"getaddrinfo {host}")
            raise socket.gaierror(f"test: no network ({host})")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield attempts
    assert attempts == [], f"the client reached for the network: {attempts}"


@pytest.fixture
def runtime(environment):
    """A factory of boto3 sagemaker-runtime clients pointed at a local server, without retries
    so an error is seen once; closed after the test."""
    made = []

    def make(url: str):
        client = boto3.Session().client(
            "sagemaker-runtime", endpoint_url=url, config=Config(retries={"max_attempts": 1})
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_boto3_invoke_endpoint_answers_as_invocations(runtime, repo_server, models, offline):
    client = runtime(repo_server.url)
    x = np.array([[4.5], [1.0]])
    expected = models["seed"].predict(x)
    bodies = {
        "application/json": json.dumps({"x": x.ravel().tolist()}).encode(),
        "text/csv": b"4.5\n1.0\n",
        "application/x-npy": npy(x),
    }
    for content_type, body in bodies.items():
        for accept in ("application/json", "text/csv", "application/x-npy"):
            answer = client.invoke_endpoint(
                EndpointName="seed", Body=body, ContentType=content_type, Accept=accept
            )
            assert answer["ContentType"].split(";")[0] == accept
            data = answer["Body"].read()
            if accept == "application/json":
                got = json.loads(data)["y"]  # one JSON shape whatever the request's type
            elif accept == "text/csv":
                got = np.loadtxt(io.StringIO(data.decode()), delimiter=",", ndmin=2)
            else:
                got = np.load(io.BytesIO(data))
            np.testing.assert_allclose(np.reshape(got, (2, 1)), expected, rtol=1e-5, atol=1e-6)


def test_endpoint_name_and_target_model_pick_the_model(runtime, repo_server, single_server, models):
    client = runtime(repo_server.url)

    def call(endpoint: str, **extra) -> dict:
        answer = client.invoke_endpoint(
            EndpointName=endpoint, Body=b"1,2,3\n", ContentType="text/csv", **extra
        )
        return json.loads(answer["Body"].read())

    assert np.allclose(call("wide")["scores"], models["wide"].predict([[1, 2, 3]]), atol=1e-6)
    for target in ("wide", "wide/1", "wide.tar.gz"):  # MME style: the artifact's name
        assert list(call("anything", TargetModel=target)) == ["scores"]
    with pytest.raises(ClientError) as unknown:
        call("nope")
    error = unknown.value.response
    assert error["Error"]["Code"] == "ValidationError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "['seed', 'wide']" in error["Error"]["Message"] and "'nope'" in error["Error"]["Message"]
    with pytest.raises(ClientError, match=r"TargetModel.*'other'") as bad_target:
        call("wide", TargetModel="other")
    assert bad_target.value.response["Error"]["Code"] == "ValidationError"
    # One model: the endpoint's name is whatever the caller deployed it as.
    answer = runtime(single_server.url).invoke_endpoint(
        EndpointName="my-endpoint", Body=b'{"x": [4.5]}', ContentType="application/json"
    )
    assert np.allclose(json.loads(answer["Body"].read())["y"], models["seed"].predict([[4.5]]))


def test_custom_attributes_are_echoed(runtime, single_server):
    client = runtime(single_server.url)
    answer = client.invoke_endpoint(
        EndpointName="seed", Body=b"4.5", ContentType="text/csv", CustomAttributes="trace-id=42"
    )
    assert answer["CustomAttributes"] == "trace-id=42"
    assert list(json.loads(answer["Body"].read())) == ["y"]
    with pytest.raises(ClientError, match="at most 1024 ASCII characters; received 1025") as info:
        client.invoke_endpoint(
            EndpointName="seed", Body=b"4.5", ContentType="text/csv", CustomAttributes="a" * 1025
        )
    assert info.value.response["Error"]["Code"] == "ValidationError"


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "text"),
    [
        (b'{"z": [4.5]}', "application/json", "application/json", 400, "received keys ['z']"),
        (b"1,2\n", "text/csv", "application/json", 400, "received shape (1, 2)"),
        (b"4.5", "text/csv", "image/png", 406, "Accept: expected one of"),
        (b"4.5", "application/pdf", "application/json", 415, "Content-Type: expected one of"),
    ],
)
def test_model_errors_reach_boto3_with_their_message(
    runtime, single_server, body, content_type, accept, status, text
):
    with pytest.raises(ClientError) as info:
        runtime(single_server.url).invoke_endpoint(
            EndpointName="seed", Body=body, ContentType=content_type, Accept=accept
        )
    error = info.value.response
    assert error["Error"]["Code"] == "ModelError"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert f"client error ({status})" in error["Error"]["Message"]
    assert text in error["Error"]["Message"] and text in str(info.value)
    assert error["OriginalStatusCode"] == status
    assert text in json.loads(error["OriginalMessage"])["error"]


def test_other_routes_keep_their_error_key(single_server):
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        single_server.url + "/invocations",
        data=b'{"z": [1]}',
        headers={"Content-Type": "application/json"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 400 and "received keys ['z']" in json.load(info.value)["error"]


def test_response_stream_parts_parse_with_botocore(runtime, repo_server, models):
    client = runtime(repo_server.url)
    csv = b"1,2,3\n0,0,1\n4,5,6\n"
    whole = client.invoke_endpoint(
        EndpointName="wide", Body=csv, ContentType="text/csv", Accept="text/csv"
    )["Body"].read()
    stream = client.invoke_endpoint_with_response_stream(
        EndpointName="wide", Body=csv, ContentType="text/csv", Accept="text/csv"
    )
    parts = [event["PayloadPart"]["Bytes"] for event in stream["Body"]]
    assert stream["ContentType"].startswith("text/csv")
    assert len(parts) == 3 and b"".join(parts) == whole  # one part per row
    json_stream = client.invoke_endpoint_with_response_stream(
        EndpointName="seed", Body=b'{"x": [4.5]}', ContentType="application/json"
    )
    [part] = [event["PayloadPart"]["Bytes"] for event in json_stream["Body"]]
    assert np.allclose(json.loads(part)["y"], models["seed"].predict([[4.5]]), atol=1e-6)
    with pytest.raises(ClientError) as info:
        client.invoke_endpoint_with_response_stream(
            EndpointName="seed", Body=b'{"z": [4.5]}', ContentType="application/json"
        )
    assert info.value.response["Error"]["Code"] == "ModelError"
    assert "received keys ['z']" in info.value.response["Error"]["Message"]


def test_async_invocation_names_what_is_supported(runtime, single_server):
    with pytest.raises(ClientError) as info:
        runtime(single_server.url).invoke_endpoint_async(
            EndpointName="seed", InputLocation="s3://bucket/input.json"
        )
    error = info.value.response
    assert error["Error"]["Code"] == "UnknownOperationException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    message = error["Error"]["Message"]
    assert "S3" in message and "InvokeEndpointWithResponseStream" in message
    assert "/endpoints/{EndpointName}/invocations" in message


@pytest.fixture(scope="module")
def sdk(environment):
    """The SageMaker Python SDK v2 (imported here, after the environment is set)."""
    import sagemaker

    if not sagemaker.__version__.startswith("2."):
        pytest.skip(f"this test is for SDK 2.x; installed {sagemaker.__version__}")
    return sagemaker


def test_article_predictor_call_with_the_sdk(
    runtime, sdk, single_server, repo_server, models, offline
):
    from sagemaker.deserializers import CSVDeserializer, JSONDeserializer, NumpyDeserializer
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import CSVSerializer, JSONSerializer, NumpySerializer

    def session(url: str):
        boto = boto3.Session()
        return sdk.Session(boto_session=boto, sagemaker_runtime_client=runtime(url))

    expected = models["seed"].predict([[4.5]])
    # The article, verbatim: Predictor(endpoint_name, ...).predict({'x': [4.5]})
    predictor = Predictor("seed", session(single_server.url), JSONSerializer(), JSONDeserializer())
    prediction = predictor.predict({"x": [4.5]})
    assert list(prediction) == ["y"]
    np.testing.assert_allclose(prediction["y"], expected, rtol=1e-5, atol=1e-6)

    repo = session(repo_server.url)
    csv = Predictor("seed", repo, CSVSerializer(), CSVDeserializer()).predict([[4.5], [1.0]])
    np.testing.assert_allclose(
        np.asarray(csv, float).reshape(2, 1), models["seed"].predict([[4.5], [1.0]]), rtol=1e-5
    )
    numpy = Predictor("wide", repo, NumpySerializer(), NumpyDeserializer())
    out = numpy.predict(np.eye(3, dtype=np.float32))
    assert out.dtype == np.float32 and out.shape == (3, 2)
    np.testing.assert_allclose(out, models["wide"].predict(np.eye(3)), rtol=1e-5, atol=1e-6)
    targeted = Predictor("endpoint", repo, JSONSerializer(), JSONDeserializer())
    assert list(targeted.predict({"features": [1, 2, 3]}, target_model="wide")) == ["scores"]
    streamed = b"".join(predictor.predict_stream({"x": [4.5]}))
    np.testing.assert_allclose(json.loads(streamed)["y"], expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ClientError, match=r"ModelError.*received keys \['z'\]"):
        predictor.predict({"z": [4.5]})


def test_sagemaker_core_endpoint_invoke(environment, single_server, models, offline, monkeypatch):
    """``Endpoint.invoke``, the call SDK v3 makes (``sagemaker.core.resources``); with SDK 2.x
    pinned, the same generated code is ``sagemaker_core.main.resources``."""
    from sagemaker_core.main import resources
    from sagemaker_core.main.utils import SageMakerClient, SingletonMeta

    # botocore reads a service's endpoint from AWS_ENDPOINT_URL_<SERVICE>; sagemaker-core keeps
    # its clients in a process-wide singleton, so make a fresh one for this server.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", single_server.url)
    monkeypatch.delitem(SingletonMeta._instances, SageMakerClient, raising=False)
    endpoint = resources.Endpoint(endpoint_name="seed")
    answer = endpoint.invoke(
        body=json.dumps({"x": [4.5]}), content_type="application/json", accept="application/json"
    )
    assert answer.content_type == "application/json"
    prediction = json.loads(answer.body.read())
    np.testing.assert_allclose(prediction["y"], models["seed"].predict([[4.5]]), rtol=1e-5)
    with pytest.raises(ClientError, match=r"received keys \['z'\]"):
        endpoint.invoke(body=json.dumps({"z": [4.5]}), content_type="application/json")
    monkeypatch.delitem(SingletonMeta._instances, SageMakerClient, raising=False)


SDK_V3_CALL = """
import json, socket, sys
connect = socket.socket.connect
def guarded(sock, address):  # no network: only the local server
    if isinstance(address, tuple) and address[0] != "127.0.0.1":
        raise SystemExit(f"reached for the network: {address}")
    return connect(sock, address)
socket.socket.connect = guarded
import botocore.exceptions, sagemaker
from sagemaker.core.resources import Endpoint
endpoint = Endpoint(endpoint_name="seed")
answer = endpoint.invoke(body=json.dumps({"x": [4.5]}), content_type="application/json")
try:
    endpoint.invoke(body=json.dumps({"z": [4.5]}), content_type="application/json")
    error = None
except botocore.exceptions.ClientError as exc:
    error = exc.response["Error"]
print(json.dumps({"sagemaker": sagemaker.__file__, "content_type": answer.content_type,
                  "body": json.loads(answer.body.read()), "error": error}))
"""


def test_sdk_v3_endpoint_invoke(environment, single_server, models):
    """SDK v3's ``sagemaker.core.resources.Endpoint.invoke``, from the folder ``make test``
    installs it into (SDK 2.x and 3.x are both the package ``sagemaker``, so they cannot
    share one environment), in a subprocess of this interpreter."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    v3 = Path(sys.prefix) / "sagemaker-v3"
    if not (v3 / "sagemaker" / "core").is_dir():
        pytest.skip(f"SDK v3's sagemaker-core is not in {v3}: `make test` installs it there")
    env = {
        **os.environ,
        "PYTHONPATH": str(v3),
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": single_server.url,
    }
    run = subprocess.run(
        [sys.executable, "-c", SDK_V3_CALL], env=env, capture_output=True, text=True, timeout=240
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["sagemaker"].startswith(str(v3))  # v3, not the SDK 2.x beside it
    assert result["content_type"] == "application/json"
    np.testing.assert_allclose(result["body"]["y"], models["seed"].predict([[4.5]]), rtol=1e-5)
    assert result["error"]["Code"] == "ModelError"
    assert "received keys ['z']" in result["error"]["Message"]
