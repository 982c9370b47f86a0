"""Export to PyTorch: a TorchScript file, and the state dict of an equal ``nn.Sequential``.

TorchScript runs without neurocloud (``torch.jit.load``), which is what SageMaker's PyTorch
serving container loads. torch is imported only when these functions run.

>>> import tempfile, numpy as np, torch, neurocloud as nc
>>> model = nc.Sequential([nc.layers.Dense(3, activation="relu"), nc.layers.Dense(1)],
...                       input_dim=2, seed=0)
>>> path = nc.export.torch(model, tempfile.mkdtemp() + "/model.pt")
>>> scripted = nc.export.load_torchscript(path)
>>> x = np.ones((4, 2), dtype=np.float32)
>>> out = scripted(torch.from_numpy(x)).detach().numpy()
>>> bool(np.allclose(out, model.predict(x), atol=1e-6))
True
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from neurocloud.export.optional import require
from neurocloud.export.source import resolve

__all__ = ["export_torch", "load_torchscript", "state_dict_path", "torch_module"]


@contextmanager
def _torchscript_is_what_we_want() -> Any:
    # torch 2.9+ deprecates TorchScript in favour of torch.export, but SageMaker's PyTorch
    # serving containers load TorchScript; the export is deliberate, so its notice is noise.
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning
        )
        yield


def torch_module(model: Any) -> Any:
    """An ``nn.Sequential`` (eval mode) equal to ``model`` (a ``Sequential`` or model directory).

    Its layers are ``Linear``, the activation modules, ``Dropout`` and, for
    ``Normalization``, a small ``Standardize`` module with ``mean``/``inv_scale`` buffers.
    """
    require("torch", "torch")
    from neurocloud.export.torch_modules import to_torch_module

    network, _ = resolve(model)
    return to_torch_module(network)


def state_dict_path(path: str | os.PathLike[str]) -> Path:
    """Where :func:`export_torch` puts the state dict beside ``path`` (``model.pt`` ->
    ``model.state_dict.pt``)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.state_dict.pt")


def export_torch(model: Any, path: str | os.PathLike[str], state_dict: bool = True) -> Path:
    """Write ``model`` as TorchScript at ``path`` (and its state dict beside it); return ``path``.

    Load the state dict into :func:`torch_module`'s ``nn.Sequential`` with
    ``module.load_state_dict(torch.load(state_dict_path(path)))``.
    """
    torch = require("torch", "torch")

    module = torch_module(model)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with _torchscript_is_what_we_want():
        scripted = torch.jit.script(module)
        tmp = target.with_name(f".{target.name}.tmp")
        scripted.save(str(tmp))
    tmp.replace(target)
    if state_dict:
        torch.save(module.state_dict(), state_dict_path(target))
    return target


def load_torchscript(path: str | os.PathLike[str]) -> Any:
    """Load a TorchScript file written by :func:`export_torch`, in eval mode on the CPU."""
    torch = require("torch", "torch")

    with _torchscript_is_what_we_want():
        return torch.jit.load(str(path), map_location="cpu").eval()
