"""A served model's signature (input/output names, widths, dtype) and the one check that
turns any decoded array into the model's input rows, with errors that say what was wrong.

>>> import numpy as np
>>> sig = Signature("x", 1, "y", 1, np.dtype("float32"))
>>> sig.rows(np.array([4.5]), "x").tolist()
[[4.5]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from neurocloud.nn.validation import all_finite
from neurocloud.serve.errors import ServeError, bad_request, describe_value
from neurocloud.serve.quiet import quietly

__all__ = ["DATATYPES", "Signature", "v2_datatype"]

# Open Inference Protocol datatypes that carry numbers, and their little-endian dtypes.
DATATYPES = {
    "BOOL": np.dtype("bool"),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
}
_CHUNK_ROWS = 8192
_BY_DTYPE = {dtype.str.lstrip("<|="): name for name, dtype in DATATYPES.items()}


def v2_datatype(dtype: np.dtype) -> str:
    """The Open Inference Protocol name of a NumPy dtype (``float32`` -> ``FP32``)."""
    name = _BY_DTYPE.get(np.dtype(dtype).str.lstrip("<|=>"))
    if name is None:
        raise TypeError(f"dtype {np.dtype(dtype)} has no Open Inference Protocol datatype.")
    return name


@dataclass(frozen=True)
class Signature:
    """What a model takes and returns: ``(n, input_width)`` -> ``(n, output_width)``."""

    input_name: str
    input_width: int
    output_name: str
    output_width: int
    dtype: np.dtype
    feature_names: tuple[str, ...] | None = None
    #: the output columns' names (a classifier's class labels), from ``model.json``
    output_names: tuple[str, ...] | None = None

    @classmethod
    def from_metadata(cls, metadata: dict[str, Any], dtype: np.dtype) -> Signature:
        inputs, outputs = metadata["inputs"][0], metadata["outputs"][0]
        names = metadata.get("feature_names")
        labels = metadata.get("output_names")
        return cls(
            inputs["name"],
            int(inputs["shape"][-1]),
            outputs["name"],
            int(outputs["shape"][-1]),
            np.dtype(dtype),
            tuple(names) if names else None,
            tuple(str(n) for n in labels) if labels else None,
        )

    @property
    def datatype(self) -> str:
        return _BY_DTYPE[self.dtype.str.lstrip("<|=>")]

    def tensor_metadata(self) -> dict[str, list[dict[str, Any]]]:
        return {
            "inputs": [
                {
                    "name": self.input_name,
                    "datatype": self.datatype,
                    "shape": [-1, self.input_width],
                }
            ],
            "outputs": [
                {
                    "name": self.output_name,
                    "datatype": self.datatype,
                    "shape": [-1, self.output_width],
                    **self.output_parameters(),
                }
            ],
        }

    def output_parameters(self) -> dict[str, Any]:
        """``{"parameters": {"labels": [...]}}`` naming the output columns, if they are named."""
        return {"parameters": {"labels": list(self.output_names)}} if self.output_names else {}

    def expected_shape(self) -> str:
        if self.input_width == 1:
            return "shape (n, 1) or (n,)"
        return f"shape (n, {self.input_width}) or ({self.input_width},) for one row"

    def rows(self, array: Any, field: str) -> np.ndarray:
        """``array`` as C-contiguous ``(n, input_width)`` rows of the model's dtype.

        A scalar or a 1-D array is a column for a one-input model, otherwise one row.
        Raises :class:`ServeError` (400) naming ``field`` for any other shape, for values
        that are not numbers, for no rows and for NaN or infinity.
        """
        if not isinstance(array, np.ndarray):
            array = _numeric_array(array, field, self)
        elif array.dtype.kind not in "biuf":
            raise bad_request(field, f"numbers ({self.datatype})", f"dtype {array.dtype}")
        width = self.input_width
        if array.ndim == 0 and width == 1:
            array = array.reshape(1, 1)
        elif array.ndim == 1:
            if width == 1:
                array = array.reshape(-1, 1)
            elif array.shape[0] == width:
                array = array.reshape(1, width)
        if array.ndim != 2 or array.shape[1] != width:
            raise bad_request(field, self.expected_shape(), f"shape {tuple(array.shape)}")
        if array.shape[0] == 0:
            raise bad_request(field, "at least one row", "shape (0, ...)")
        # A value too large for the dtype becomes inf here, refused just below.
        rows = quietly(np.ascontiguousarray, array, self.dtype)
        if not all_finite(rows):
            row, col = (int(i) for i in np.argwhere(~np.isfinite(rows))[0])
            raise bad_request(
                field,
                f"finite numbers representable as {self.dtype.name}",
                f"{float(array[row, col])!r} at row {row}, column {col}",
            )
        return rows


def _numeric_array(values: Any, field: str, signature: Signature) -> np.ndarray:
    try:
        if isinstance(values, list) and len(values) > _CHUNK_ROWS:
            # one NumPy call on a long list holds the GIL throughout: convert in pieces
            parts = [
                np.asarray(values[i : i + _CHUNK_ROWS]) for i in range(0, len(values), _CHUNK_ROWS)
            ]
            if len({part.shape[1:] for part in parts}) > 1:
                raise ValueError("ragged")
            array = np.concatenate(parts)
        else:
            array = np.asarray(values)
    except ValueError:
        raise bad_request(
            field, "a rectangular array of numbers", "nested lists of different lengths"
        ) from None
    if array.dtype.kind not in "biuf":
        raise ServeError(
            400,
            f"{field}: expected numbers ({signature.datatype}); "
            f"received {_first_non_number(values)}",
        )
    return array


def _first_non_number(values: Any) -> str:
    stack = [values]
    while stack:
        value = stack.pop()
        if isinstance(value, (list, tuple)):
            stack.extend(reversed(value))
        elif isinstance(value, bool) or not isinstance(value, (int, float)):
            return describe_value(value)
    return "values that are not numbers"
