"""What the exporters accept as a model: a ``Sequential``, an ``Artifact`` or a model directory.

Exporting a directory keeps its signature (input and output names, feature names), so an
exported model answers to the same names as the served one.

>>> import neurocloud as nc
>>> from neurocloud.export.source import resolve
>>> model, names = resolve(nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0))
>>> names.input, names.output
('x', 'y')
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from neurocloud.nn.sequential import Sequential

__all__ = ["ModelNames", "resolve"]


@dataclass(frozen=True)
class ModelNames:
    """The names a model answers to, as recorded in an artifact's ``model.json``."""

    input: str = "x"
    output: str = "y"
    feature_names: list[str] | None = field(default=None, compare=False)
    output_names: list[str] | None = field(default=None, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "output": self.output,
            "feature_names": self.feature_names,
            "output_names": self.output_names,
        }


def resolve(
    model: Any, input_name: str | None = None, output_name: str | None = None
) -> tuple[Sequential, ModelNames]:
    """Return the ``Sequential`` behind ``model`` and the names it answers to.

    ``model`` is a built ``Sequential``, an :class:`~neurocloud.artifact.Artifact` or the
    path of a model directory. Names given here override the artifact's.
    """
    from neurocloud.artifact import Artifact, load_artifact

    metadata: dict[str, Any] = {}
    if isinstance(model, (str, os.PathLike)):
        model = load_artifact(Path(model))
    if isinstance(model, Artifact):
        metadata = model.metadata
        model = model.model
    if not isinstance(model, Sequential):
        raise TypeError(
            "Expected model to be a neurocloud.Sequential, an Artifact or a model directory; "
            f"received {type(model).__name__}."
        )
    if not model.built:
        raise ValueError("Cannot export an unbuilt model: give input_dim or fit it first.")
    inputs, outputs = metadata.get("inputs") or [{}], metadata.get("outputs") or [{}]
    names = ModelNames(
        input=input_name or inputs[0].get("name", "x"),
        output=output_name or outputs[0].get("name", "y"),
        feature_names=metadata.get("feature_names"),
        output_names=metadata.get("output_names"),
    )
    if names.input == names.output:
        raise ValueError(f"The input and output names must differ; both are {names.input!r}.")
    return model, names
