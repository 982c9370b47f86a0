"""``neurocloud serve``: serve a model directory or repository over HTTP (SageMaker and
Open Inference Protocol). With no PATH (as in a SageMaker container, started as ``serve``),
serves ``$SM_MODEL_DIR`` or ``/opt/ml/model`` on ``0.0.0.0:$SAGEMAKER_BIND_TO_PORT`` (8080).
"""

from __future__ import annotations

import errno
import socket

import click


def check_port_free(host: str, port: int) -> None:
    """Bind ``host:port`` once, as the server will, and raise a one-line error if that fails.

    Run before the server starts: otherwise another process answering on the port (say, a
    server started earlier) looks like this one coming up.
    """
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise click.ClickException(f"cannot listen on {host!r}: {exc.strerror}.") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise click.ClickException(
                    f"port {port} on {host} is already in use (another server?); stop it, "
                    "or pick another port with --port (with make run: make run PORT=8081)."
                ) from None
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}.") from None


@click.command()
@click.argument("path", required=False, type=click.Path(file_okay=False))
@click.option(
    "--host",
    default=None,
    help="Interface to listen on [default: 127.0.0.1; 0.0.0.0 without PATH].",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=None,
    help="Port [default: $SAGEMAKER_BIND_TO_PORT or 8080].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Worker processes [default: $SAGEMAKER_MODEL_SERVER_WORKERS or 1].",
)
@click.option(
    "--max-batch-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Most rows merged into one forward pass [default: 1024].",
)
@click.option(
    "--max-batch-delay-ms",
    type=click.FloatRange(min=0),
    default=None,
    help="Longest wait for a batch to fill, in ms [default: 0: merge what queued "
    "while the model was busy].",
)
@click.option(
    "--max-request-rows",
    type=click.IntRange(min=1),
    default=None,
    help="Most rows in one request; more get 413 "
    "[default: $NEUROCLOUD_MAX_REQUEST_ROWS or 1000000].",
)
@click.option(
    "--reload-interval",
    "reload_interval_s",
    type=click.FloatRange(min=0),
    default=None,
    help="Seconds between checks for new model versions (0: off) [default: 2].",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option(
    "--access-log/--no-access-log", default=False, show_default=True, help="Log every request."
)
@click.option(
    "--ray",
    "use_ray",
    is_flag=True,
    help="Serve with Ray Serve replicas (needs neurocloud[ray]): on the cluster at --address "
    "or $RAY_ADDRESS, else on a local one started here.",
)
@click.option("--address", default=None, help="With --ray: the Ray cluster's address.")
@click.option(
    "--replicas", type=click.IntRange(min=1), default=None, help="With --ray: replicas [1]."
)
@click.option(
    "--autoscale",
    default=None,
    metavar="MIN:MAX",
    help="With --ray: scale between MIN and MAX replicas with the load (instead of --replicas).",
)
def serve(
    path: str | None,
    host: str | None,
    port: int | None,
    workers: int | None,
    max_batch_rows: int | None,
    max_batch_delay_ms: float | None,
    max_request_rows: int | None,
    reload_interval_s: float | None,
    log_level: str,
    access_log: bool,
    use_ray: bool,
    address: str | None,
    replicas: int | None,
    autoscale: str | None,
) -> None:
    """Serve the model(s) at PATH until Ctrl+C or SIGTERM (in-flight requests finish).

    PATH is a model directory (from `neurocloud train`/`demo` or nc.save), a folder of
    numbered versions of one model, or a repository of such models.

    Example: neurocloud serve models/seed --port 8080

    On a Ray cluster: neurocloud serve models/seed --ray --replicas 2
    """
    from neurocloud.serve.config import ServeConfig, default_model_dir, default_port
    from neurocloud.serve.protocol import header_timeout_s
    from neurocloud.serve.repository import discover
    from neurocloud.serve.server import serve as run_server

    try:
        if path is None:
            path = default_model_dir()
            host = host or "0.0.0.0"
        config = ServeConfig.from_env(
            workers=workers,
            max_batch_rows=max_batch_rows,
            max_batch_delay_ms=max_batch_delay_ms,
            max_request_rows=max_request_rows,
            reload_interval_s=reload_interval_s,
        )
        port = default_port() if port is None else port
        header_timeout_s()  # checked here: a bad value would fail every connection
        if not (use_ray and "://" in path):  # a URI on Ray: each replica copies it
            discover(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if use_ray:
        from neurocloud.cli.ray_serve import serve_on_ray

        if workers is not None:
            raise click.UsageError("--workers is for one machine; with --ray use --replicas.")
        serve_on_ray(
            path,
            host or "127.0.0.1",
            port,
            config,
            address=address,
            replicas=replicas,
            autoscale=autoscale,
        )
        return
    if address or replicas or autoscale:
        raise click.UsageError("--address, --replicas and --autoscale need --ray.")
    check_port_free(host or "127.0.0.1", port)
    run_server(
        path, host or "127.0.0.1", port, config=config, log_level=log_level, access_log=access_log
    )
