"""Read a dense network from an ONNX file into a ``Sequential``.

Reads the graphs that ``torch.onnx.export`` (an ``nn.Sequential`` of ``Linear`` and
activations) and ``skl2onnx`` (``MLPRegressor``/``MLPClassifier``) write, and our own
exports: ``Gemm``, ``MatMul`` (+ ``Add``), ``Relu``, ``Sigmoid``, ``Tanh``, ``Softmax``,
``LeakyRelu``, ``Elu``, ``Softplus``, ``Gelu`` (and its exact ``Erf`` form), ``Sub``/``Mul``/``Div``
by constants (standardisation), ``Cast`` to float, ``Identity``, ``Dropout``, and ``Flatten``
or ``Reshape`` that keep the rows.
Anything else is refused with an error that names the operator.

>>> import tempfile, numpy as np, neurocloud as nc
>>> model = nc.Sequential([nc.layers.Dense(3, activation="relu"), nc.layers.Dense(1)],
...                       input_dim=2, seed=0)
>>> path = nc.export.onnx(model, tempfile.mkdtemp() + "/model.onnx")
>>> again = nc.import_onnx(path)
>>> bool(np.array_equal(again.predict([[1.0, 2.0]]), model.predict([[1.0, 2.0]])))
True
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from neurocloud.export.onnx_graph import (
    ACTIVATIONS,
    ALPHA_SETTINGS,
    FLOAT_TYPES,
    PASS_THROUGH,
    OnnxGraph,
    UnsupportedOnnxError,
    attributes,
    describe_node,
    match_gelu,
    unsupported,
)
from neurocloud.export.optional import require
from neurocloud.nn import layers as nc_layers
from neurocloud.nn.sequential import Sequential

__all__ = ["UnsupportedOnnxError", "import_onnx"]


@dataclass
class _Spec:
    """One layer being assembled from nodes, turned into a real layer at the end."""

    kind: str  # "dense", "activation" or "normalization"
    kernel: np.ndarray | None = None
    bias: np.ndarray | None = None
    activation: str | dict[str, Any] = "identity"  # a name, or {"name", "config"}
    mean: np.ndarray | None = None
    scale: np.ndarray | None = None
    closed: bool = False


def _vector(value: np.ndarray, node: Any, what: str) -> np.ndarray:
    """A per-feature constant (scalar, (d,) or (1, d)) as a 1-D array."""
    if value.ndim > 2 or (value.ndim == 2 and value.shape[0] != 1):
        raise unsupported(node, f"{what} has shape {value.shape}, expected one value per feature")
    return value.reshape(-1).astype(np.float64)


def _float32_attribute(value: float) -> float:
    """An ONNX float attribute (stored as float32) as the shortest decimal that float32
    reads back the same: ``0.2`` comes back as ``0.2``, not ``0.20000000298...``."""
    single = np.float32(value)
    if not np.isfinite(single):
        return float(single)
    return float(np.format_float_positional(single, unique=True, trim="-"))


class _Builder:
    """Turns the chain of nodes from the input to the output into layer specs."""

    def __init__(self, graph: OnnxGraph, dtype: str, input_width: int | None) -> None:
        self.graph = graph
        self.dtype = dtype
        self.input_width = input_width
        self.specs: list[_Spec] = []

    def width(self) -> int | None:
        """The number of features at this point of the chain, when a weight tells it."""
        dense = [s for s in self.specs if s.kind == "dense"]
        return int(dense[-1].kernel.shape[1]) if dense else self.input_width

    def _open(self, kind: str) -> _Spec:
        last = self.specs[-1] if self.specs else None
        if last is not None and last.kind == kind and not last.closed:
            return last
        spec = _Spec(kind)
        self.specs.append(spec)
        return spec

    def activation(self, node: Any, name: str | dict[str, Any]) -> None:
        last = self.specs[-1] if self.specs else None
        if last is not None and last.kind == "dense" and last.activation == "identity":
            last.activation, last.closed = name, True
        else:
            self.specs.append(_Spec("activation", activation=name, closed=True))

    def step(self, node: Any, x: str) -> str:
        op, attrs = node.op_type, attributes(node)
        if node.domain not in ("", "ai.onnx"):
            raise unsupported(node)
        if op in PASS_THROUGH:
            return node.output[0]
        if op == "Cast":
            target = FLOAT_TYPES.get(attrs.get("to"))
            if target is None:
                raise unsupported(node, f"casts to ONNX type {attrs.get('to')}, not a float")
            self.dtype = target
            return node.output[0]
        if op == "Flatten":
            if attrs.get("axis", 1) != 1:
                raise unsupported(node, f"axis={attrs['axis']}, only axis=1 keeps rows")
            return node.output[0]
        if op == "Reshape":  # skl2onnx ends regressors with a reshape to (-1, outputs)
            shape = self.graph.constant(node, node.input[1]).tolist()
            keeps_rows = len(shape) == 2 and shape[0] in (-1, 0)
            if not keeps_rows or shape[1] not in (-1, self.width()):
                raise unsupported(node, f"shape {shape}; only (-1, features) keeps rows")
            return node.output[0]
        if op == "Gemm":
            return self._gemm(node, x, attrs)
        if op == "MatMul":
            if node.input[0] != x:
                raise unsupported(node, "the weights come first; expected x @ W")
            kernel = self.graph.constant(node, node.input[1])
            if kernel.ndim != 2:
                raise unsupported(node, f"weight of shape {kernel.shape}, expected 2-D")
            self.specs.append(_Spec("dense", kernel=kernel))
            return node.output[0]
        if op in ("Add", "Sub", "Mul", "Div"):
            return self._affine(node, x, op)
        if op in ACTIVATIONS:
            return self._activation(node, op, attrs)
        if op == "Erf":
            raise unsupported(node, "Erf is only read as part of the exact GELU pattern")
        raise unsupported(node)

    def _gemm(self, node: Any, x: str, attrs: dict[str, Any]) -> str:
        if attrs.get("transA", 0) or node.input[0] != x:
            raise unsupported(node, "transA=1 or weights first; expected x @ B + C")
        kernel = self.graph.constant(node, node.input[1]).astype(np.float64)
        if attrs.get("transB", 0):
            kernel = kernel.T
        kernel = kernel * attrs.get("alpha", 1.0)
        spec = _Spec("dense", kernel=kernel)
        if len(node.input) > 2 and node.input[2]:
            bias = self.graph.constant(node, node.input[2]) * attrs.get("beta", 1.0)
            spec.bias = np.broadcast_to(_vector(bias, node, "C"), (kernel.shape[1],))
        self.specs.append(spec)
        return node.output[0]

    def _affine(self, node: Any, x: str, op: str) -> str:
        if node.input[0] != x and op in ("Sub", "Div"):
            raise unsupported(node, f"computes constant {op} x; expected x {op} constant")
        value = _vector(self.graph.other_input(node, x), node, "the constant")
        last = self.specs[-1] if self.specs else None
        absorbs_bias = last is not None and last.kind == "dense" and not last.closed
        if op == "Add" and absorbs_bias and last.bias is None:
            last.bias = np.broadcast_to(value, (last.kernel.shape[1],))
            return node.output[0]
        if op == "Add":
            value, op = -value, "Sub"
        if op == "Div":
            value, op = 1.0 / value, "Mul"
        spec = self._open("normalization")
        if op == "Sub":
            if spec.scale is not None:  # (x * s) - m: start a new standardisation
                spec.closed = True
                spec = self._open("normalization")
            spec.mean = value if spec.mean is None else spec.mean + value
        else:
            spec.scale = value if spec.scale is None else spec.scale * value
        return node.output[0]

    def _activation(self, node: Any, op: str, attrs: dict[str, Any]) -> str:
        activation: str | dict[str, Any] = ACTIVATIONS[op]
        if op in ALPHA_SETTINGS:
            setting, default = ALPHA_SETTINGS[op]
            alpha = _float32_attribute(attrs.get("alpha", default))
            if not math.isfinite(alpha):
                raise unsupported(node, f"alpha={alpha}; expected a finite number")
            if alpha != default:
                activation = {"name": ACTIVATIONS[op], "config": {setting: alpha}}
        if op == "Softmax" and attrs.get("axis", -1) not in (-1, 1):
            raise unsupported(node, f"axis={attrs['axis']}, expected the feature axis")
        if op == "Gelu" and attrs.get("approximate", "none") not in ("none", b"none"):
            raise unsupported(node, "the tanh approximation; neurocloud's gelu is exact")
        self.activation(node, activation)
        return node.output[0]

    def run(self, x: str, output: str) -> None:
        while x != output:
            users = self.graph.consumers.get(x, [])
            gelu = match_gelu(self.graph, x) if len(users) == 2 else None
            if gelu is not None:
                self.activation(users[0], "gelu")
                x = gelu
            elif len(users) == 1:
                x = self.step(users[0], x)
            else:
                names = ", ".join(describe_node(u) for u in users) or "nothing"
                raise UnsupportedOnnxError(
                    f"Cannot import the graph: tensor {x!r} feeds {names}; neurocloud imports "
                    "a single chain of layers from the input to the output."
                )


def _layers(specs: Iterable[_Spec], input_dim: int) -> tuple[list[Any], dict[str, np.ndarray]]:
    layers, state, dim = [], {}, input_dim
    for i, spec in enumerate(specs):
        if spec.kind == "dense":
            if spec.kernel.shape[0] != dim:
                raise UnsupportedOnnxError(
                    f"Layer {i} has weights of shape {spec.kernel.shape} but receives "
                    f"{dim} features."
                )
            dim = spec.kernel.shape[1]
            layers.append(nc_layers.Dense(dim, spec.activation, use_bias=spec.bias is not None))
            state[f"layers.{i}.kernel"] = spec.kernel
            if spec.bias is not None:
                state[f"layers.{i}.bias"] = spec.bias
        elif spec.kind == "activation":
            layers.append(nc_layers.Activation(spec.activation))
        else:
            mean = np.zeros(dim) if spec.mean is None else np.broadcast_to(spec.mean, (dim,))
            inv = np.ones(dim) if spec.scale is None else np.broadcast_to(spec.scale, (dim,))
            if np.any(inv <= 0):
                raise UnsupportedOnnxError(
                    f"Layer {i} scales features by non-positive factors; a standardisation "
                    "needs a positive scale."
                )
            # Within one spec the mean always comes first: (x - mean) * inv.
            layers.append(nc_layers.Normalization(mean=list(mean), scale=list(1.0 / inv)))
            state[f"layers.{i}.mean"] = mean
            state[f"layers.{i}.scale"] = 1.0 / inv
    return layers, state


def _pick_output(proto: Any, output: str | None) -> str:
    names = [o.name for o in proto.graph.output]
    if output is not None:
        if output not in names:
            raise ValueError(f"Expected output to be one of {names}. Received: output={output!r}")
        return output
    if len(names) == 1:
        return names[0]
    for preferred in ("output_probability", "probabilities"):  # skl2onnx classifiers
        if preferred in names:
            return preferred
    raise ValueError(f"The graph has several outputs {names}: choose one with output=...")


def import_onnx(
    path: str | os.PathLike[str] | bytes | Any, output: str | None = None, name: str | None = None
) -> Sequential:
    """Load the dense network in the ONNX file ``path`` as a ``Sequential``.

    ``output`` picks one of several graph outputs (default: the only one, or a classifier's
    probabilities). Raises :class:`UnsupportedOnnxError` naming the first operator that a
    ``Sequential`` cannot express.
    """
    onnx = require("onnx", "onnx")
    if isinstance(path, (str, os.PathLike)):
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such ONNX file.")
        proto = onnx.load(str(path))
    elif isinstance(path, bytes):
        proto = onnx.load_from_string(path)
    else:
        proto = path
    output_name = _pick_output(proto, output)
    graph = OnnxGraph(proto.graph, output_name)
    inputs = [i for i in proto.graph.input if i.name not in graph.constants]
    if len(inputs) != 1:
        raise UnsupportedOnnxError(
            f"Expected one graph input; found {len(inputs)}: {[i.name for i in inputs]}."
        )
    tensor_type = inputs[0].type.tensor_type
    dims = [d.dim_value for d in tensor_type.shape.dim]
    width = dims[1] if len(dims) == 2 and dims[1] > 0 else None
    builder = _Builder(graph, FLOAT_TYPES.get(tensor_type.elem_type, "float32"), width)
    builder.run(inputs[0].name, output_name)
    first = next((s for s in builder.specs if s.kind == "dense"), None)
    if first is not None:
        input_dim = int(first.kernel.shape[0])
    elif width is not None:
        input_dim = width
    else:
        raise UnsupportedOnnxError("Cannot tell the number of input features from the graph.")
    if not builder.specs:
        builder.specs.append(_Spec("activation"))
    layers, state = _layers(builder.specs, input_dim)
    model = Sequential(
        layers, input_dim=input_dim, seed=0, dtype=builder.dtype, name=name or proto.graph.name
    )
    model.load_state_dict({k: np.asarray(v, dtype=model.dtype) for k, v in state.items()})
    return model
