"""``Sequential.summary``'s table: layers, output shapes and parameter counts."""

from __future__ import annotations

from typing import Any

from neurocloud.nn.layers import Dense

__all__ = ["summary_table"]


def summary_table(model: Any) -> str:
    """The text of ``model.summary()`` for a built model."""
    rows = [("Layer (type)", "Output shape", "Params")]
    for i, layer in enumerate(model.layers):
        count = sum(p.size for p in layer.parameters())
        label = type(layer).__name__
        act = getattr(layer, "activation", None)
        if isinstance(layer, Dense) and act is not None and act.name != "identity":
            label += f" ({act.name})"
        rows.append((f"{i}: {label}", f"(None, {model._dims[i + 1]})", f"{count:,}"))
    widths = [max(len(r[c]) for r in rows) for c in range(3)]
    line = "-" * (sum(widths) + 4)
    text = [f'Model "{model.name}" (input_dim={model.input_dim}, dtype={model.dtype.name})', line]
    for j, row in enumerate(rows):
        text.append(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}")
        if j == 0:
            text.append(line)
    text += [line, f"Total params: {model.count_params():,}"]
    return "\n".join(text)
