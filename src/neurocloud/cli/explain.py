"""``neurocloud explain``: which inputs drove a saved model's output, as a table or a plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np

from neurocloud.cli.predict import _read_input
from neurocloud.explain import methods
from neurocloud.explain.integrated import DEFAULT_STEPS

#: every method name and alias of the registry, for --method
METHOD_NAMES = [
    name for m in map(methods.get, methods.available()) for name in (m.name, *m.aliases)
]
#: the setting that --samples sets, where a method does not call it "samples"
SAMPLES_SETTING = {"shap": "max_evals", "lime": "num_samples"}


def _parse_row(text: str | None, option: str) -> np.ndarray | None:
    if text is None:
        return None
    try:
        return np.array([float(v) for v in text.split(",")])
    except ValueError as exc:
        raise click.BadParameter(
            f"expected comma-separated numbers ({exc})", param_hint=option
        ) from None


def _settings(method: methods.Method, options: dict[str, Any]) -> dict[str, Any]:
    """The options given that ``method`` takes, under its settings' names."""
    options = dict(options)
    options[SAMPLES_SETTING.get(method.name, "samples")] = options.pop("samples")
    return {
        name: value
        for name, value in options.items()
        if name in method.settings and value is not None
    }


def _print_table(explanation: Any, top: int) -> None:
    width = max(len("feature"), *(len(name) for name in explanation.feature_names))
    errors = explanation.completeness_error
    for row in range(len(explanation)):
        line = (
            f"row {row}: {explanation.method} of output {explanation.target_name(row)} "
            f"= {explanation.prediction[row]:.6g}"
        )
        if explanation.base_value is not None:
            line += f" (base value {explanation.base_value[row]:.6g}, "
            line += f"completeness error {errors[row]:.2g})"
        click.echo(line)
        click.echo(f"  {'feature':<{width}}  {'value':>12}  {'attribution':>12}")
        for name, value, attribution in explanation.top_features(row, top):
            click.echo(f"  {name:<{width}}  {value:>12.6g}  {attribution:>12.6g}")


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, file_okay=False))
@click.option("--row", "rows", multiple=True, help='One input row, e.g. --row "1,2,3". Repeatable.')
@click.option(
    "--input",
    "input_path",
    type=click.Path(exists=True, dir_okay=False),
    help="A CSV (a header row is skipped) or .npy file of input rows.",
)
@click.option(
    "--method",
    type=click.Choice(METHOD_NAMES),
    default="ig",
    show_default=True,
    help="ig, saliency and smoothgrad use the network's gradients; expected (GradientSHAP), "
    "shap and lime also need --background.",
)
@click.option("--target", type=int, help="Output index to explain (default: predicted class).")
@click.option(
    "--background",
    "background_path",
    type=click.Path(exists=True, dir_okay=False),
    help="CSV or .npy rows like the training data: the reference for expected, shap, lime.",
)
@click.option("--baseline", help='ig: the reference row, e.g. "0,0,0" (default: zeros).')
@click.option(
    "--steps",
    type=click.IntRange(1),
    default=DEFAULT_STEPS,
    show_default=True,
    help="ig: quadrature steps.",
)
@click.option(
    "--samples",
    type=click.IntRange(1),
    help="Samples (smoothgrad, expected, lime) or max evals (shap).",
)
@click.option(
    "--seed", type=click.IntRange(0), default=0, show_default=True, help="Seed of sampled methods."
)
@click.option(
    "--top", type=click.IntRange(1), default=10, show_default=True, help="Features shown per row."
)
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False), help="Save a plot (PNG).")
def explain(
    model_dir: str,
    rows: tuple[str, ...],
    input_path: str | None,
    method: str,
    target: int | None,
    background_path: str | None,
    baseline: str | None,
    steps: int,
    samples: int | None,
    seed: int,
    top: int,
    plot_path: str | None,
) -> None:
    """Explain MODEL_DIR's output for each input row: the largest attributions per row.

    Example: neurocloud explain models/digits --input rows.csv --method ig --plot ig.png
    """
    from neurocloud.artifact import ArtifactError, load_artifact

    chosen = methods.get(method)
    if "background" in chosen.required and background_path is None:
        raise click.UsageError(
            f"--method {chosen.name} needs --background FILE: rows like the training data "
            "(CSV or .npy); the attributions are measured against them."
        )
    X = _read_input(input_path, rows)
    options = {
        "target": target,
        "baseline": _parse_row(baseline, "--baseline"),
        "steps": steps,
        "samples": samples,
        "seed": seed,
        "background": (
            None if background_path is None else _read_input(background_path, (), "--background")
        ),
    }
    try:
        artifact = load_artifact(model_dir)
        options["feature_names"] = artifact.metadata.get("feature_names")
        explanation = chosen(artifact.model, X, **_settings(chosen, options))
    except (ArtifactError, ValueError, TypeError, ImportError) as exc:
        raise click.ClickException(str(exc)) from None
    _print_table(explanation, top)
    if plot_path:
        Path(plot_path).parent.mkdir(parents=True, exist_ok=True)
        explanation.plot(plot_path)
        click.echo(f"plot saved to {plot_path}")
