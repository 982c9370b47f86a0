"""``neurocloud serve PATH --ray``: the server as a Ray Serve application."""

from __future__ import annotations

import threading
from dataclasses import asdict

import click

from neurocloud.serve.config import ServeConfig


def autoscaling(spec: str) -> dict[str, int]:
    """``"MIN:MAX"`` as Ray Serve's autoscaling settings.

    >>> autoscaling("1:4")
    {'min_replicas': 1, 'max_replicas': 4}
    """
    try:
        low, high = (int(part) for part in spec.split(":"))
    except ValueError:
        low = high = -1
    if not 0 <= low <= high or high < 1:
        raise click.BadParameter(
            f"expected MIN:MAX with 0 <= MIN <= MAX and MAX >= 1, e.g. 1:4; received {spec!r}",
            param_hint="--autoscale",
        )
    return {"min_replicas": low, "max_replicas": high}


def serve_on_ray(
    path: str,
    host: str,
    port: int,
    config: ServeConfig,
    *,
    address: str | None,
    replicas: int | None,
    autoscale: str | None,
) -> None:
    """Deploy ``path`` on Ray Serve, answer on ``host:port`` until Ctrl+C, then remove it."""
    if replicas is not None and autoscale is not None:
        raise click.UsageError("Give --replicas N or --autoscale MIN:MAX, not both.")
    scaling = autoscaling(autoscale) if autoscale is not None else None
    from ray import serve  # without it, the command line names the extra to install

    from neurocloud.ray import connect, deployment

    click.echo(connect(address))
    settings = {k: v for k, v in asdict(config).items() if k != "workers"}
    app = deployment(path, num_replicas=replicas or 1, autoscaling_config=scaling, **settings)
    serve.start(http_options={"host": host, "port": port})
    click.echo(f"Deploying {path} on Ray Serve (Ctrl+C to stop) ...")
    try:
        serve.run(app, name="neurocloud", route_prefix="/")
        click.echo(f"Serving {path} on Ray Serve at http://{host}:{port}")
        threading.Event().wait()
    finally:  # Ctrl+C: take the application off the cluster again
        serve.delete("neurocloud")
