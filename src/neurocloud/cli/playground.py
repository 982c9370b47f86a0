"""``neurocloud playground``: train the article's network (or your data) in the browser."""

from __future__ import annotations

import click


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8090, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--models",
    "models_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder for the models you save (default: a new temporary folder).",
)
@click.option("--max-sessions", default=8, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--session-ttl",
    default=900.0,
    show_default=True,
    type=click.FloatRange(1, None),
    help="Seconds after which an unused session is closed.",
)
def playground(
    host: str, port: int, models_dir: str | None, max_sessions: int, session_ttl: float
) -> None:
    """Serve the training playground at http://HOST:PORT/ (Ctrl-C stops it)."""
    import uvicorn

    from neurocloud.playground.app import create_playground_app

    app = create_playground_app(
        max_sessions=max_sessions, session_ttl_s=session_ttl, models_dir=models_dir
    )
    click.echo(f"neurocloud playground: open http://{host}:{port}/ in a browser")
    uvicorn.run(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=5)
