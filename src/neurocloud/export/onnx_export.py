"""Export a ``Sequential`` to ONNX, built node by node with ``onnx.helper``.

Each layer becomes the standard operators any runtime has: ``Dense`` is ``Gemm`` (``MatMul``
without a bias) followed by its activation, ``Normalization`` is ``Sub`` then ``Mul``,
``Dropout`` is ``Identity`` (inference). GELU is written in its exact form,
``0.5 * x * (1 + erf(x / sqrt(2)))``, as the engine computes it. The batch dimension is
symbolic, so one file serves any number of rows. ``LeakyRelu`` and ``Elu`` carry the
slope/alpha as ONNX's float32 attribute, so in a float64 model a non-default setting such as
0.2 becomes 0.2000000030 in the file: the negative branch differs from the engine's by about
1e-8 relative (``nc.import_onnx`` reads the shortest float32 decimal back, 0.2 exactly).

>>> import tempfile, numpy as np, onnxruntime as ort, neurocloud as nc
>>> model = nc.Sequential([nc.layers.Dense(3, activation="tanh"), nc.layers.Dense(1)],
...                       input_dim=2, seed=0)
>>> path = nc.export.onnx(model, tempfile.mkdtemp() + "/model.onnx")
>>> session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
>>> x = np.ones((4, 2), dtype=np.float32)
>>> bool(np.allclose(session.run(None, {"x": x})[0], model.predict(x), atol=1e-6))
True
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from neurocloud.export.optional import require
from neurocloud.export.source import resolve
from neurocloud.nn.layers import Activation, Dense, Dropout, Layer, Normalization
from neurocloud.nn.validation import check_number

__all__ = ["DEFAULT_OPSET", "MIN_OPSET", "export_onnx", "to_onnx_model"]

#: Softmax takes an axis (not a 2-D coercion) from opset 13 on; 17 is read by every runtime
#: released since 2022.
MIN_OPSET = 13
DEFAULT_OPSET = 17


class _GraphBuilder:
    """Collects nodes and initializers, handing out unique tensor names."""

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def constant(self, hint: str, value: Any) -> str:
        from onnx import numpy_helper

        name = self.name(hint)
        array = np.asarray(value, dtype=self.dtype)
        self.initializers.append(numpy_helper.from_array(array, name=name))
        return name

    def node(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs: Any) -> str:
        from onnx import helper

        output = self.name(hint or op_type.lower())
        self.nodes.append(
            helper.make_node(op_type, inputs, [output], name=f"{op_type}_{self._count}", **attrs)
        )
        return output


def _identity(g: _GraphBuilder, x: str, act: Any) -> str:
    return x


def _simple(op_type: str) -> Callable[[_GraphBuilder, str, Any], str]:
    def emit(g: _GraphBuilder, x: str, act: Any) -> str:
        return g.node(op_type, [x])

    return emit


def _leaky_relu(g: _GraphBuilder, x: str, act: Any) -> str:
    return g.node("LeakyRelu", [x], alpha=act.negative_slope)


def _elu(g: _GraphBuilder, x: str, act: Any) -> str:
    return g.node("Elu", [x], alpha=act.alpha)


def _gelu(g: _GraphBuilder, x: str, act: Any) -> str:
    # Exact GELU from Erf (opset 9), so runtimes without the opset-20 Gelu operator run it.
    scaled = g.node("Mul", [x, g.constant("inv_sqrt2", 1.0 / math.sqrt(2.0))])
    erf = g.node("Erf", [scaled])
    one_plus = g.node("Add", [erf, g.constant("one", 1.0)])
    half_x = g.node("Mul", [x, g.constant("half", 0.5)])
    return g.node("Mul", [half_x, one_plus])


def _softmax(g: _GraphBuilder, x: str, act: Any) -> str:
    return g.node("Softmax", [x], axis=-1)


#: activation name -> emitter; the export test walks this registry, so a new activation
#: without an entry here fails loudly instead of exporting wrongly.
ACTIVATIONS: dict[str, Callable[[_GraphBuilder, str, Any], str]] = {
    "identity": _identity,
    "sigmoid": _simple("Sigmoid"),
    "tanh": _simple("Tanh"),
    "relu": _simple("Relu"),
    "leaky_relu": _leaky_relu,
    "elu": _elu,
    "softplus": _simple("Softplus"),
    "gelu": _gelu,
    "softmax": _softmax,
}


def _activation(g: _GraphBuilder, x: str, act: Any) -> str:
    if act.name not in ACTIVATIONS:
        raise ValueError(
            f"Activation {act.name!r} has no ONNX export; exportable: {', '.join(ACTIVATIONS)}."
        )
    return ACTIVATIONS[act.name](g, x, act)


def _layer(g: _GraphBuilder, x: str, layer: Layer, index: int) -> str:
    if isinstance(layer, Dense):
        kernel = g.constant(f"layers.{index}.kernel", layer.params["kernel"])
        if layer.use_bias:
            bias = g.constant(f"layers.{index}.bias", layer.params["bias"])
            z = g.node("Gemm", [x, kernel, bias], hint=f"dense_{index}")
        else:
            z = g.node("MatMul", [x, kernel], hint=f"dense_{index}")
        return _activation(g, z, layer.activation)
    if isinstance(layer, Activation):
        return _activation(g, x, layer.activation)
    if isinstance(layer, Normalization):
        # The engine's arithmetic: (x - mean) * (1 / scale), each constant rounded to the dtype.
        inv_scale = (1.0 / layer.scale).astype(layer.dtype)
        centred = g.node("Sub", [x, g.constant(f"layers.{index}.mean", layer.mean)])
        return g.node("Mul", [centred, g.constant(f"layers.{index}.inv_scale", inv_scale)])
    if isinstance(layer, Dropout):
        return x
    raise TypeError(
        f"Layer {type(layer).__name__} (layers.{index}) has no ONNX export; exportable: "
        "Dense, Activation, Normalization, Dropout."
    )


def _check_opset(opset: Any) -> int:
    import onnx

    latest = onnx.defs.onnx_opset_version()
    try:
        return check_number(opset, "opset", low=MIN_OPSET, high=latest, integer=True)
    except ValueError as exc:
        raise ValueError(f"{exc} ({latest} is this onnx package's newest opset)") from None


def to_onnx_model(
    model: Any,
    opset: int = DEFAULT_OPSET,
    input_name: str | None = None,
    output_name: str | None = None,
) -> Any:
    """Build the ``onnx.ModelProto`` for ``model`` (a ``Sequential``, artifact or directory)."""
    onnx = require("onnx", "onnx")
    from onnx import helper

    from neurocloud import __version__

    opset = _check_opset(opset)
    network, signature = resolve(model, input_name, output_name)
    elem_type = helper.np_dtype_to_tensor_dtype(network.dtype)
    g = _GraphBuilder(network.dtype)
    x = signature.input
    for index, layer in enumerate(network.layers):
        x = _layer(g, x, layer, index)
    # The last node writes the declared output name (an Identity when no node did anything).
    if g.nodes and g.nodes[-1].output[0] == x:
        g.nodes[-1].output[0] = signature.output
    else:
        g.nodes.append(helper.make_node("Identity", [x], [signature.output], name="output"))
    graph = helper.make_graph(
        g.nodes,
        network.name,
        [helper.make_tensor_value_info(signature.input, elem_type, ["batch", network.input_dim])],
        [helper.make_tensor_value_info(signature.output, elem_type, ["batch", network.output_dim])],
        initializer=g.initializers,
    )
    opsets = [helper.make_opsetid("", opset)]
    onnx_model = helper.make_model(
        graph,
        opset_imports=opsets,
        producer_name="neurocloud",
        producer_version=__version__,
        ir_version=helper.find_min_ir_version_for(opsets),
        doc_string=f"neurocloud {network!r}",
    )
    helper.set_model_props(
        onnx_model,
        {
            "neurocloud.signature": json.dumps(signature.as_json()),
            "neurocloud.config": json.dumps(network.get_config()),
        },
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def export_onnx(
    model: Any,
    path: str | os.PathLike[str],
    opset: int = DEFAULT_OPSET,
    input_name: str | None = None,
    output_name: str | None = None,
) -> Path:
    """Write ``model`` as an ONNX file at ``path``; return the path.

    ``model`` is a ``Sequential``, an artifact or a model directory (whose input and output
    names the graph then uses). ``opset`` is recorded in the file.
    """
    onnx_model = to_onnx_model(model, opset, input_name, output_name)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(onnx_model.SerializeToString())
    tmp.replace(target)
    return target
