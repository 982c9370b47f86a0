"""Deploy a model to a SageMaker real-time endpoint, and remove it again, with boto3.

``deploy`` uploads ``model.tar.gz`` to S3, creates the SageMaker model (image + model data +
role), an endpoint configuration (instance type and count) and the endpoint, all named after
the endpoint, then waits for ``InService``. If a step fails, what this call created is deleted
again. ``undeploy`` deletes the three resources (and, on request, the model data).

>>> EndpointSettings("seed", "arn:aws:iam::123456789012:role/sm", "img:1").instance_type
'ml.m5.xlarge'
"""

from __future__ import annotations

import json
import os
import re
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurocloud.cloud.aws import AwsError, describe_error, session
from neurocloud.nn.validation import positive_int

__all__ = ["Deployment", "EndpointSettings", "deploy", "how_to_call", "undeploy"]

_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
_ROLE = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/\S+$")
_INSTANCE = re.compile(r"^ml\.[a-z0-9-]+\.[a-z0-9]+$")
PACKAGE_FORMATS = ("sagemaker", "sagemaker-pytorch")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class EndpointSettings:
    """What SageMaker needs to run the endpoint; checked before anything is created."""

    name: str
    role: str
    image: str
    instance_type: str = "ml.m5.xlarge"
    instance_count: int = 1
    environment: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(
                "Expected name to be 1-63 letters, digits or hyphens, starting and ending "
                f"with a letter or digit (SageMaker's rule). Received: name={self.name!r}"
            )
        if not isinstance(self.role, str) or not _ROLE.match(self.role):
            raise ValueError(
                "Expected role to be an IAM role ARN like "
                f"arn:aws:iam::123456789012:role/SageMakerRole. Received: role={self.role!r}"
            )
        if (
            not isinstance(self.image, str)
            or not self.image
            or any(c.isspace() for c in self.image)
        ):
            raise ValueError(
                "Expected image to be a container image URI like "
                "123456789012.dkr.ecr.eu-west-1.amazonaws.com/neurocloud:latest. "
                f"Received: image={self.image!r}"
            )
        if not isinstance(self.instance_type, str) or not _INSTANCE.match(self.instance_type):
            raise ValueError(
                "Expected instance_type to be a SageMaker instance type like ml.m5.xlarge. "
                f"Received: instance_type={self.instance_type!r}"
            )
        positive_int(self.instance_count, "instance_count")


@dataclass(frozen=True)
class Deployment:
    """Where the endpoint is and what it serves."""

    endpoint_name: str
    region: str
    model_data_url: str
    status: str
    input_name: str = "x"
    input_width: int = 1


def _package(
    model: Path, package_format: str, workdir: Path
) -> tuple[Path, dict[str, str], tuple[str, int]]:
    """The ``model.tar.gz`` to upload, the environment its container needs, and its input."""
    from neurocloud.export import sagemaker, sagemaker_pytorch

    if package_format not in PACKAGE_FORMATS:
        raise ValueError(
            f"Expected package_format to be one of {', '.join(PACKAGE_FORMATS)}. "
            f"Received: package_format={package_format!r}"
        )
    if model.is_dir():
        build = sagemaker if package_format == "sagemaker" else sagemaker_pytorch
        package = build(model, workdir / "model.tar.gz")
    elif model.is_file() and model.name.endswith(".tar.gz"):
        package = model
    else:
        raise ValueError(
            f"Expected model to be a model directory or a model.tar.gz file. Received: {model}"
        )
    with tarfile.open(package) as tar:
        names = set(tar.getnames())
        signature = _read_member(tar, "signature.json") or {}
        metadata = _read_member(tar, "model.json") or {}
    environment: dict[str, str] = {}
    if "code/inference.py" in names:  # SageMaker's PyTorch container runs our hooks
        environment = {
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
        }
        input_spec = (signature.get("input", "x"), int(signature.get("input_width", 1)))
    elif "model.json" in names:
        first = (metadata.get("inputs") or [{"name": "x", "shape": [-1, 1]}])[0]
        input_spec = (first["name"], int(first["shape"][-1]))
    else:
        raise ValueError(
            f"{package}: not a neurocloud package (no model.json, nor code/inference.py); "
            "make one with `neurocloud export MODEL --format sagemaker`."
        )
    return package, environment, input_spec


def _read_member(tar: tarfile.TarFile, name: str) -> dict[str, Any] | None:
    try:
        member = tar.extractfile(name)
    except KeyError:
        return None
    return json.loads(member.read()) if member is not None else None


def _default_bucket(aws: Any, region: str) -> str:
    """The SageMaker SDK's default bucket, ``sagemaker-<region>-<account>``, created if missing."""
    account = aws.client("sts").get_caller_identity()["Account"]
    bucket = f"sagemaker-{region}-{account}"
    s3 = aws.client("s3")
    if not _bucket_exists(s3, bucket):
        options = (
            {}
            if region == "us-east-1"
            else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        )
        s3.create_bucket(Bucket=bucket, **options)
    return bucket


def _bucket_exists(s3: Any, bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket"):
            return False
        raise
    return True


def _existing(sm: Any, name: str) -> list[str]:
    """Which of the model, endpoint configuration and endpoint called ``name`` exist."""
    from botocore.exceptions import ClientError

    found = []
    for kind, call in (
        ("model", lambda: sm.describe_model(ModelName=name)),
        ("endpoint configuration", lambda: sm.describe_endpoint_config(EndpointConfigName=name)),
        ("endpoint", lambda: sm.describe_endpoint(EndpointName=name)),
    ):
        try:
            call()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ValidationException":
                raise
            continue
        found.append(kind)
    return found


def wait_in_service(
    sm: Any, name: str, progress: Progress, poll_seconds: float, timeout_seconds: float
) -> str:
    """Poll the endpoint until ``InService``; report each status change with the time taken."""
    start = time.monotonic()
    last = None
    while True:
        described = sm.describe_endpoint(EndpointName=name)
        status = described["EndpointStatus"]
        elapsed = time.monotonic() - start
        if status != last:
            progress(f"  endpoint {name}: {status} ({elapsed:.0f} s)")
            last = status
        if status == "InService":
            return status
        if status in ("Failed", "OutOfService", "Deleting"):
            reason = described.get("FailureReason", "no reason given")
            raise AwsError(f"Endpoint {name} is {status}: {reason}")
        if elapsed >= timeout_seconds:
            raise AwsError(
                f"Endpoint {name} is still {status} after {timeout_seconds:.0f} s; it may yet "
                f"come up: check it with `aws sagemaker describe-endpoint --endpoint-name {name}`."
            )
        time.sleep(poll_seconds)


def deploy(
    model: str | os.PathLike[str],
    settings: EndpointSettings,
    *,
    bucket: str | None = None,
    region: str | None = None,
    package_format: str = "sagemaker",
    wait: bool = True,
    poll_seconds: float = 15.0,
    timeout_seconds: float = 3600.0,
    progress: Progress = print,
) -> Deployment:
    """Deploy ``model`` (a model directory or a ``model.tar.gz``) to the endpoint ``settings``
    describes; return where it runs. Raises :class:`AwsError` for anything AWS refuses."""
    from boto3.exceptions import Boto3Error
    from botocore.exceptions import BotoCoreError, ClientError

    aws = session(region)
    region = aws.region_name
    sm = aws.client("sagemaker")
    created: list[tuple[str, Callable[[], Any]]] = []
    try:
        taken = _existing(sm, settings.name)
        if taken:
            raise AwsError(
                f"A SageMaker {' and '.join(taken)} named {settings.name!r} already exist(s) in "
                f"{region}: remove them with `neurocloud undeploy {settings.name}` or choose "
                "another --name."
            )
        with tempfile.TemporaryDirectory() as tmp:
            package, environment, (input_name, width) = _package(
                Path(model), package_format, Path(tmp)
            )
            if bucket is None:
                bucket = _default_bucket(aws, region)
            elif not _bucket_exists(aws.client("s3"), bucket):
                raise AwsError(f"S3 bucket {bucket!r} does not exist: create it or omit --bucket.")
            key = f"neurocloud/{settings.name}/model.tar.gz"
            progress(f"Uploading {package.name} to s3://{bucket}/{key}")
            aws.client("s3").upload_file(str(package), bucket, key)
        model_data_url = f"s3://{bucket}/{key}"
        environment = {**environment, **settings.environment}
        progress(f"Creating SageMaker model {settings.name} (image {settings.image})")
        sm.create_model(
            ModelName=settings.name,
            PrimaryContainer={
                "Image": settings.image,
                "ModelDataUrl": model_data_url,
                "Environment": environment,
            },
            ExecutionRoleArn=settings.role,
        )
        created.append(("model", lambda: sm.delete_model(ModelName=settings.name)))
        progress(
            f"Creating endpoint configuration {settings.name} "
            f"({settings.instance_count} x {settings.instance_type})"
        )
        sm.create_endpoint_config(
            EndpointConfigName=settings.name,
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": settings.name,
                    "InitialInstanceCount": settings.instance_count,
                    "InstanceType": settings.instance_type,
                    "InitialVariantWeight": 1.0,
                }
            ],
        )
        created.append(
            (
                "endpoint configuration",
                lambda: sm.delete_endpoint_config(EndpointConfigName=settings.name),
            )
        )
        progress(f"Creating endpoint {settings.name}")
        sm.create_endpoint(EndpointName=settings.name, EndpointConfigName=settings.name)
        created.append(("endpoint", lambda: sm.delete_endpoint(EndpointName=settings.name)))
        status = "Creating"
        if wait:
            status = wait_in_service(sm, settings.name, progress, poll_seconds, timeout_seconds)
    except (ClientError, BotoCoreError, Boto3Error) as exc:
        _roll_back(created, progress)
        raise AwsError(describe_error(exc)) from None
    except AwsError:
        if created and created[-1][0] != "endpoint":  # a failed endpoint is left to inspect
            _roll_back(created, progress)
        raise
    return Deployment(settings.name, region, model_data_url, status, input_name, width)


def _roll_back(created: list[tuple[str, Callable[[], Any]]], progress: Progress) -> None:
    from botocore.exceptions import BotoCoreError, ClientError

    for kind, delete in reversed(created):
        try:
            delete()
            progress(f"  removed the {kind} created before the failure")
        except (ClientError, BotoCoreError) as exc:
            progress(f"  could not remove the {kind}: {describe_error(exc)}")


def undeploy(
    name: str,
    *,
    region: str | None = None,
    delete_model_data: bool = False,
    progress: Progress = print,
) -> list[str]:
    """Delete the endpoint, endpoint configuration and model called ``name``; return what was
    deleted. With ``delete_model_data`` the model's ``model.tar.gz`` in S3 goes too."""
    from botocore.exceptions import BotoCoreError, ClientError

    aws = session(region)
    sm = aws.client("sagemaker")
    deleted = []
    try:
        model_data = None
        if "model" in _existing(sm, name):
            model_data = sm.describe_model(ModelName=name)["PrimaryContainer"].get("ModelDataUrl")
        for kind, call in (
            ("endpoint", lambda: sm.delete_endpoint(EndpointName=name)),
            ("endpoint configuration", lambda: sm.delete_endpoint_config(EndpointConfigName=name)),
            ("model", lambda: sm.delete_model(ModelName=name)),
        ):
            try:
                call()
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "ValidationException":
                    raise
                progress(f"no {kind} named {name} (skipped)")
                continue
            progress(f"deleted {kind} {name}")
            deleted.append(kind)
        if delete_model_data and model_data and model_data.startswith("s3://"):
            bucket, _, key = model_data[len("s3://") :].partition("/")
            aws.client("s3").delete_object(Bucket=bucket, Key=key)
            progress(f"deleted {model_data}")
            deleted.append("model data")
    except (ClientError, BotoCoreError) as exc:
        raise AwsError(describe_error(exc)) from None
    if not deleted:
        raise AwsError(f"Nothing named {name!r} to delete in {aws.region_name}.")
    return deleted


def how_to_call(deployment: Deployment) -> str:
    """The commands that query the endpoint: the AWS CLI and the SageMaker SDK's Predictor."""
    example = [4.5] if deployment.input_width == 1 else [0.0] * deployment.input_width
    body = json.dumps({deployment.input_name: example})
    name = deployment.endpoint_name
    return "\n".join(
        [
            f"Endpoint {name} is {deployment.status} in {deployment.region}.",
            "Call it with the AWS CLI:",
            f"  aws sagemaker-runtime invoke-endpoint --region {deployment.region} "
            f"--endpoint-name {name} --content-type application/json "
            f"--cli-binary-format raw-in-base64-out --body '{body}' /dev/stdout",
            "or from Python with the SageMaker SDK (pip install 'sagemaker>=2,<3'):",
            "  from sagemaker.predictor import Predictor",
            "  from sagemaker.serializers import JSONSerializer",
            "  from sagemaker.deserializers import JSONDeserializer",
            f"  predictor = Predictor('{name}', serializer=JSONSerializer(), "
            "deserializer=JSONDeserializer())",
            f"  predictor.predict({body})",
            f"Remove it with: neurocloud undeploy {name}",
        ]
    )
