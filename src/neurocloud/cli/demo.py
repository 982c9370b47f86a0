"""``neurocloud demo``: the article's worked example, trained, reported and saved."""

from __future__ import annotations

import click


@click.command()
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False),
    default=None,
    help="Save the fitted model to this directory (e.g. models/seed).",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Save the fitted curves and loss curves to this PNG.",
)
@click.option(
    "--seed", type=click.IntRange(min=0), default=0, show_default=True, help="Model seed."
)
def demo(output: str | None, plot_path: str | None, seed: int) -> None:
    """Train the article's 1-2-2-1 network on its four points and report f(4.5).

    Example: neurocloud demo --output models/seed --plot models/seed-fit.png
    """
    from neurocloud import demo as worked_example
    from neurocloud.artifact import save

    result = worked_example.run(seed=seed)
    click.echo(worked_example.report(result))
    if output:
        path = save(
            result.fitted.model,
            output,
            card={
                "dataset": "seed (the article's four points)",
                "metrics": {
                    "mse": result.fitted.loss,
                    "prediction_at_4.5": result.fitted.prediction,
                },
            },
        )
        click.echo(f"\nSaved the fitted model to {path}/")
    if plot_path:
        try:
            written = worked_example.plot(result, plot_path)
        except ImportError:
            raise click.ClickException(
                "--plot needs matplotlib: pip install 'neurocloud[plot]'"
            ) from None
        click.echo(f"Saved the plot to {written}")
