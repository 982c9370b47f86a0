"""``neurocloud deploy``/``undeploy`` against moto's AWS emulator, run as a server on 127.0.0.1."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from click.testing import CliRunner
from conftest import article_network

import neurocloud as nc
from neurocloud.cli import main
from neurocloud.cloud.aws import AwsError
from neurocloud.cloud.deploy import wait_in_service
from neurocloud.serve.launcher import free_port

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
IMAGE = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/neurocloud:latest"
REGION = "eu-west-1"


@pytest.fixture(scope="module")
def moto_url():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def isolate(monkeypatch, tmp_path) -> None:
    """No AWS settings from this machine: no files, no profile, no instance metadata."""
    for var in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(scope="module")
def aws(moto_url, tmp_path_factory):
    """Credentials and region as a user would set them, every client pointed at moto."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate(monkeypatch, tmp_path_factory.mktemp("aws"))
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_REGION", REGION)
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
        import boto3

        session = boto3.Session(region_name=REGION)
        yield {name: session.client(name) for name in ("s3", "sagemaker")}


@pytest.fixture(scope="module")
def seed_dir(tmp_path_factory):
    return nc.save(article_network(seed=1), tmp_path_factory.mktemp("m") / "seed")


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def deploy_args(model, name, *extra):
    return [
        "deploy",
        str(model),
        "--name",
        name,
        "--role",
        ROLE,
        "--image",
        IMAGE,
        "--poll-seconds",
        "0",
        *extra,
    ]


def test_deploy_creates_model_config_and_endpoint(aws, seed_dir):
    aws["s3"].create_bucket(
        Bucket="neurocloud-models", CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    result = cli(
        *deploy_args(
            seed_dir,
            "seed-endpoint",
            "--bucket",
            "neurocloud-models",
            "--instance-type",
            "ml.c5.large",
            "--instance-count",
            "2",
            "--env",
            "LOG_LEVEL=debug",
        )
    )
    assert result.exit_code == 0, result.output
    sm = aws["sagemaker"]
    model = sm.describe_model(ModelName="seed-endpoint")
    url = "s3://neurocloud-models/neurocloud/seed-endpoint/model.tar.gz"
    assert model["PrimaryContainer"] == {
        "Image": IMAGE,
        "ModelDataUrl": url,
        "Environment": {"LOG_LEVEL": "debug"},
    }
    assert model["ExecutionRoleArn"] == ROLE
    (variant,) = sm.describe_endpoint_config(EndpointConfigName="seed-endpoint")[
        "ProductionVariants"
    ]
    assert (variant["ModelName"], variant["InstanceType"], variant["InitialInstanceCount"]) == (
        "seed-endpoint",
        "ml.c5.large",
        2,
    )
    endpoint = sm.describe_endpoint(EndpointName="seed-endpoint")
    assert endpoint["EndpointStatus"] == "InService"
    assert endpoint["EndpointConfigName"] == "seed-endpoint"
    # the uploaded package is the artifact at the archive's top level
    body = (
        aws["s3"]
        .get_object(Bucket="neurocloud-models", Key="neurocloud/seed-endpoint/model.tar.gz")["Body"]
        .read()
    )
    with tarfile.open(fileobj=io.BytesIO(body)) as tar:
        assert sorted(tar.getnames()) == ["card.json", "model.json", "weights.safetensors"]
        assert tar.extractfile("model.json").read() == (seed_dir / "model.json").read_bytes()
    # progress, then how to call it with the article's request
    assert "endpoint seed-endpoint: InService" in result.output
    assert "--body '{\"x\": [4.5]}'" in result.output
    assert 'predictor.predict({"x": [4.5]})' in result.output

    again = cli(*deploy_args(seed_dir, "seed-endpoint"))
    assert again.exit_code == 1
    assert "model and endpoint configuration and endpoint named 'seed-endpoint'" in again.output
    assert "neurocloud undeploy seed-endpoint" in again.output

    result = cli("undeploy", "seed-endpoint", "--delete-model-data")
    assert result.exit_code == 0, result.output
    for line in (
        "deleted endpoint",
        "deleted endpoint configuration",
        "deleted model",
        f"deleted {url}",
    ):
        assert line in result.output
    assert sm.list_endpoints()["Endpoints"] == []
    assert sm.list_models()["Models"] == []
    assert aws["s3"].list_objects_v2(Bucket="neurocloud-models")["KeyCount"] == 0
    gone = cli("undeploy", "seed-endpoint")
    assert gone.exit_code == 1 and "Nothing named 'seed-endpoint'" in gone.output


def test_pytorch_package_gets_the_hooks_environment_and_default_bucket(aws, seed_dir):
    result = cli(*deploy_args(seed_dir, "seed-pytorch", "--format", "sagemaker-pytorch"))
    assert result.exit_code == 0, result.output
    container = aws["sagemaker"].describe_model(ModelName="seed-pytorch")["PrimaryContainer"]
    assert container["Environment"] == {
        "SAGEMAKER_PROGRAM": "inference.py",
        "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    }
    # no --bucket: the SageMaker SDK's default bucket, created for the account and region
    bucket = f"sagemaker-{REGION}-123456789012"
    assert container["ModelDataUrl"] == f"s3://{bucket}/neurocloud/seed-pytorch/model.tar.gz"
    body = aws["s3"].get_object(Bucket=bucket, Key="neurocloud/seed-pytorch/model.tar.gz")
    with tarfile.open(fileobj=io.BytesIO(body["Body"].read())) as tar:
        assert "code/inference.py" in tar.getnames()
    assert cli("undeploy", "seed-pytorch").exit_code == 0


def test_a_tar_gz_is_uploaded_as_it_is(aws, seed_dir, tmp_path):
    package = nc.export.sagemaker_pytorch(seed_dir, tmp_path / "model.tar.gz")
    result = cli(*deploy_args(package, "from-archive", "--no-wait"))
    assert result.exit_code == 0, result.output
    assert "is Creating" in result.output  # not waited for
    bucket = f"sagemaker-{REGION}-123456789012"
    stored = aws["s3"].get_object(Bucket=bucket, Key="neurocloud/from-archive/model.tar.gz")
    assert stored["Body"].read() == package.read_bytes()
    assert cli("undeploy", "from-archive").exit_code == 0


def test_a_failed_upload_leaves_nothing_behind(aws, seed_dir):
    result = cli(*deploy_args(seed_dir, "no-bucket", "--bucket", "bucket-that-does-not-exist"))
    assert result.exit_code == 1
    assert "S3 bucket 'bucket-that-does-not-exist' does not exist" in result.output
    assert "Traceback" not in result.output
    assert aws["sagemaker"].list_models()["Models"] == []


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--role", "SageMakerRole", "Expected role to be an IAM role ARN"),
        ("--name", "seed_endpoint", "Expected name to be 1-63 letters"),
        ("--instance-type", "m5.xlarge", "Expected instance_type to be a SageMaker instance"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_created(aws, seed_dir, option, value, message):
    args = deploy_args(seed_dir, "checked")
    if option in args:
        args[args.index(option) + 1] = value
    else:
        args += [option, value]
    result = cli(*args)
    assert result.exit_code == 1
    assert message in result.output and f"{value!r}" in result.output
    assert aws["sagemaker"].list_models()["Models"] == []


def test_missing_credentials_and_region_are_clear_errors(aws, monkeypatch, tmp_path, seed_dir):
    isolate(monkeypatch, tmp_path)
    monkeypatch.setenv("AWS_REGION", REGION)
    result = cli(*deploy_args(seed_dir, "seed"))
    assert result.exit_code == 1
    assert "No AWS credentials found" in result.output and "aws configure" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)

    monkeypatch.delenv("AWS_REGION")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    for args in (deploy_args(seed_dir, "seed"), ["undeploy", "seed"]):
        result = cli(*args)
        assert result.exit_code == 1
        assert "No AWS region configured. Pass --region" in result.output
        assert "Traceback" not in result.output

    monkeypatch.setenv("AWS_PROFILE", "nobody")
    result = cli("undeploy", "seed", "--region", REGION)
    assert result.exit_code == 1
    assert "AWS configuration error" in result.output and "nobody" in result.output


class FakeSageMaker:
    """Endpoint statuses in sequence, as describe_endpoint reports them while it starts."""

    def __init__(self, *statuses: str, reason: str = "") -> None:
        self.statuses = list(statuses)
        self.reason = reason

    def describe_endpoint(self, EndpointName: str) -> dict:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return {"EndpointStatus": status, "FailureReason": self.reason}


def test_waiting_reports_each_status_change_once():
    lines: list[str] = []
    sm = FakeSageMaker("Creating", "Creating", "Creating", "InService")
    assert wait_in_service(sm, "seed", lines.append, 0, 60) == "InService"
    assert [line.split("(")[0].strip() for line in lines] == [
        "endpoint seed: Creating",
        "endpoint seed: InService",
    ]


def test_waiting_fails_with_the_reason_or_on_timeout():
    with pytest.raises(AwsError, match="Endpoint seed is Failed: image not found"):
        wait_in_service(
            FakeSageMaker("Creating", "Failed", reason="image not found"),
            "seed",
            lambda _: None,
            0,
            60,
        )
    with pytest.raises(AwsError, match="still Creating after 0 s"):
        wait_in_service(FakeSageMaker("Creating"), "seed", lambda _: None, 0, 0)


def test_how_to_call_uses_the_models_input_name(aws, tmp_path):
    model = nc.Sequential([nc.layers.Dense(1)], input_dim=3, seed=0)
    model_dir = nc.save(model, tmp_path / "wide", input_name="features")
    result = cli(*deploy_args(model_dir, "wide"))
    assert result.exit_code == 0, result.output
    assert json.dumps({"features": [0.0, 0.0, 0.0]}) in result.output
    assert cli("undeploy", "wide").exit_code == 0
