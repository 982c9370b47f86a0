"""A read-only view of an ONNX graph for the importer: constants, who produces and who
consumes each tensor (only what feeds the chosen output), and the exact-GELU pattern.

>>> from onnx import TensorProto, helper
>>> node = helper.make_node("Relu", ["x"], ["y"])
>>> graph = helper.make_graph([node], "g", [], [])
>>> [n.op_type for n in OnnxGraph(graph, "y").consumers["x"]]
['Relu']
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "ALPHA_SETTINGS",
    "FLOAT_TYPES",
    "PASS_THROUGH",
    "SUPPORTED",
    "OnnxGraph",
    "UnsupportedOnnxError",
    "attributes",
    "describe_node",
    "match_gelu",
    "unsupported",
]

#: ONNX element types the importer reads (TensorProto.FLOAT, TensorProto.DOUBLE)
FLOAT_TYPES = {1: "float32", 11: "float64"}
#: ONNX activation operators and the engine activation each becomes
ACTIVATIONS = {
    "Relu": "relu",
    "Sigmoid": "sigmoid",
    "Tanh": "tanh",
    "Softmax": "softmax",
    "LeakyRelu": "leaky_relu",
    "Elu": "elu",
    "Softplus": "softplus",
    "Gelu": "gelu",
}
#: parametrised activations: ONNX's ``alpha`` -> the engine setting and ONNX's default
ALPHA_SETTINGS = {"LeakyRelu": ("negative_slope", 0.01), "Elu": ("alpha", 1.0)}
PASS_THROUGH = {"Identity", "Dropout"}
SUPPORTED = sorted(
    {"Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Cast", "Flatten", "Reshape", "Erf"}
    | set(ACTIVATIONS)
    | PASS_THROUGH
)


class UnsupportedOnnxError(ValueError):
    """The ONNX graph holds an operator or a structure that a ``Sequential`` cannot express."""


def describe_node(node: Any) -> str:
    domain = f" (domain {node.domain})" if node.domain not in ("", "ai.onnx") else ""
    return f"operator {node.op_type!r}{domain} in node {node.name or node.output[0]!r}"


def unsupported(node: Any, why: str = "") -> UnsupportedOnnxError:
    detail = f": {why}" if why else ""
    return UnsupportedOnnxError(
        f"Cannot import {describe_node(node)}{detail}. neurocloud imports dense networks made of "
        f"{', '.join(SUPPORTED)}."
    )


class OnnxGraph:
    """Constants, producers and consumers of one ONNX graph, restricted to what feeds ``output``."""

    def __init__(self, proto: Any, output: str) -> None:
        from onnx import numpy_helper

        self.constants = {t.name: numpy_helper.to_array(t) for t in proto.initializer}
        for node in proto.node:
            if node.op_type == "Constant" and node.domain in ("", "ai.onnx"):
                attr = {a.name: a for a in node.attribute}
                if "value" in attr:
                    self.constants[node.output[0]] = numpy_helper.to_array(attr["value"].t)
        producers = {out: node for node in proto.node for out in node.output}
        needed: set[int] = set()
        stack = [output]
        while stack:
            name = stack.pop()
            node = producers.get(name)
            if node is None or id(node) in needed or name in self.constants:
                continue
            needed.add(id(node))
            stack.extend(node.input)
        self.nodes = [n for n in proto.node if id(n) in needed and n.op_type != "Constant"]
        self.consumers: dict[str, list[Any]] = {}
        for node in self.nodes:
            for name in dict.fromkeys(node.input):  # a node reading x twice is one consumer
                if name and name not in self.constants:
                    self.consumers.setdefault(name, []).append(node)

    def constant(self, node: Any, name: str) -> np.ndarray:
        if name not in self.constants:
            raise unsupported(node, f"its input {name!r} is computed, expected a constant weight")
        return self.constants[name]

    def other_input(self, node: Any, current: str) -> np.ndarray:
        others = [name for name in node.input if name != current]
        if len(others) != 1 or list(node.input).count(current) != 1:
            raise unsupported(node, "expected one computed input and one constant")
        return self.constant(node, others[0])

    def only_consumer(self, name: str) -> Any | None:
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 else None


def attributes(node: Any) -> dict[str, Any]:
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _is_scalar(value: np.ndarray, expected: float, rtol: float = 1e-6) -> bool:
    return value.size == 1 and math.isclose(float(value.reshape(())), expected, rel_tol=rtol)


def _match_erf_gelu(graph: OnnxGraph, x: str) -> str | None:
    """Match exact GELU written with Erf: ``0.5 * x * (1 + erf(x / sqrt 2))`` in either of the
    two orders that torch's exporter and ours use; return the output tensor."""
    users = graph.consumers.get(x, [])
    if len(users) != 2:
        return None
    for scale, other in (users, users[::-1]):
        if scale.op_type not in ("Div", "Mul") or scale.input[0] != x:
            continue
        factor = graph.constants.get(scale.input[1], np.array([]))
        want = math.sqrt(2.0) if scale.op_type == "Div" else 1.0 / math.sqrt(2.0)
        if not _is_scalar(factor, want):
            continue
        erf = graph.only_consumer(scale.output[0])
        add = erf and erf.op_type == "Erf" and graph.only_consumer(erf.output[0])
        if not add or add.op_type != "Add":
            continue
        if not _is_scalar(graph.other_input(add, erf.output[0]), 1.0):
            continue
        one_plus = add.output[0]
        if other.op_type != "Mul":
            continue
        if set(other.input) == {x, one_plus}:  # torch: (x * (1 + erf)) * 0.5
            last = graph.only_consumer(other.output[0])
            if (
                last
                and last.op_type == "Mul"
                and _is_scalar(graph.other_input(last, other.output[0]), 0.5)
            ):
                return last.output[0]
        elif _is_scalar(graph.other_input(other, x), 0.5):  # ours: (0.5 * x) * (1 + erf)
            last = graph.only_consumer(other.output[0])
            if last and last.op_type == "Mul" and set(last.input) == {other.output[0], one_plus}:
                return last.output[0]
    return None


def match_gelu(graph: OnnxGraph, x: str) -> str | None:
    """The output of an exact-GELU subgraph reading ``x``, or ``None`` when there is none."""
    try:
        return _match_erf_gelu(graph, x)
    except UnsupportedOnnxError:
        return None
