"""Export a neurocloud model to other runtimes and to SageMaker packages; import ONNX.

- ``onnx(model, path, opset=17)``: an ONNX graph, for onnxruntime or any ONNX runtime;
- ``torch(model, path)``: TorchScript (and ``*.state_dict.pt``), for PyTorch without neurocloud;
- ``sagemaker_pytorch(model_dir, out)``: ``model.tar.gz`` with ``code/inference.py``, for
  SageMaker's PyTorch serving container;
- ``sagemaker(model_dir, out)``: ``model.tar.gz`` of the artifact, for our own container;
- ``kserve(model_dir, out, storage_uri=...)``: KServe ``ClusterServingRuntime`` and
  ``InferenceService`` manifests (YAML) for our container speaking V2;
- ``import_onnx(path)``: a ``Sequential`` from a dense ONNX network.

onnx and torch are imported only when their functions run.

>>> import tempfile, neurocloud as nc
>>> model = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0)
>>> nc.export.onnx(model, tempfile.mkdtemp() + "/model.onnx").suffix
'.onnx'
"""

from neurocloud.export.kserve import kserve, kserve_manifests
from neurocloud.export.onnx_export import export_onnx as onnx
from neurocloud.export.onnx_import import UnsupportedOnnxError, import_onnx
from neurocloud.export.sagemaker_package import sagemaker, sagemaker_pytorch
from neurocloud.export.torch_export import export_torch as torch
from neurocloud.export.torch_export import load_torchscript, state_dict_path, torch_module

__all__ = [
    "UnsupportedOnnxError",
    "import_onnx",
    "kserve",
    "kserve_manifests",
    "load_torchscript",
    "onnx",
    "sagemaker",
    "sagemaker_pytorch",
    "state_dict_path",
    "torch",
    "torch_module",
]
