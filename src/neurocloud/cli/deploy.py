"""``neurocloud deploy`` and ``neurocloud undeploy``: a SageMaker real-time endpoint from a model.

boto3 is imported only when these commands run. Credentials and region come from the usual
AWS configuration (environment, ``~/.aws``, instance role); ``--region`` overrides the region.
"""

from __future__ import annotations

import click


def _environment(pairs: tuple[str, ...]) -> dict[str, str]:
    environment = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, received {pair!r}", param_hint="--env")
        environment[key] = value
    return environment


@click.command()
@click.argument("model", type=click.Path(exists=True))
@click.option("--name", required=True, help="Endpoint name (also the model and config names).")
@click.option("--role", required=True, help="IAM role ARN that SageMaker assumes.")
@click.option(
    "--image",
    required=True,
    help="Container image URI in ECR: our image (built from the Dockerfile) or, with "
    "--format sagemaker-pytorch, a SageMaker PyTorch inference image.",
)
@click.option("--instance-type", default="ml.m5.xlarge", show_default=True)
@click.option("--instance-count", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--bucket", default=None, help="S3 bucket (default: sagemaker-REGION-ACCOUNT).")
@click.option("--region", default=None, help="AWS region (default: from the AWS configuration).")
@click.option(
    "--format",
    "package_format",
    type=click.Choice(["sagemaker", "sagemaker-pytorch"]),
    default="sagemaker",
    show_default=True,
    help="How to package a model directory: for our container, or SageMaker's PyTorch one.",
)
@click.option("--env", "env", multiple=True, help="KEY=VALUE for the container. Repeatable.")
@click.option("--wait/--no-wait", default=True, show_default=True, help="Wait for InService.")
@click.option("--poll-seconds", type=click.FloatRange(min=0), default=15.0, hidden=True)
@click.option("--timeout-seconds", type=click.FloatRange(min=0), default=3600.0, hidden=True)
def deploy(
    model: str,
    name: str,
    role: str,
    image: str,
    instance_type: str,
    instance_count: int,
    bucket: str | None,
    region: str | None,
    package_format: str,
    env: tuple[str, ...],
    wait: bool,
    poll_seconds: float,
    timeout_seconds: float,
) -> None:
    """Deploy MODEL (a model directory or model.tar.gz) to a SageMaker endpoint.

    Example: neurocloud deploy models/seed --name seed --role arn:aws:iam::123456789012:role/sm
    --image 123456789012.dkr.ecr.eu-west-1.amazonaws.com/neurocloud:latest
    """
    from neurocloud.artifact import ArtifactError
    from neurocloud.cloud.aws import AwsError
    from neurocloud.cloud.deploy import EndpointSettings, how_to_call
    from neurocloud.cloud.deploy import deploy as run_deploy

    try:
        settings = EndpointSettings(
            name, role, image, instance_type, instance_count, _environment(env)
        )
        deployment = run_deploy(
            model,
            settings,
            bucket=bucket,
            region=region,
            package_format=package_format,
            wait=wait,
            poll_seconds=poll_seconds,
            timeout_seconds=timeout_seconds,
            progress=click.echo,
        )
    except (AwsError, ArtifactError, ValueError, ImportError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(how_to_call(deployment))


@click.command()
@click.argument("name")
@click.option("--region", default=None, help="AWS region (default: from the AWS configuration).")
@click.option(
    "--delete-model-data",
    is_flag=True,
    help="Also delete the model.tar.gz that deploy uploaded to S3.",
)
def undeploy(name: str, region: str | None, delete_model_data: bool) -> None:
    """Delete the SageMaker endpoint NAME, its configuration and its model.

    Example: neurocloud undeploy seed
    """
    from neurocloud.cloud.aws import AwsError
    from neurocloud.cloud.deploy import undeploy as run_undeploy

    try:
        run_undeploy(name, region=region, delete_model_data=delete_model_data, progress=click.echo)
    except AwsError as exc:
        raise click.ClickException(str(exc)) from None
