"""Import an optional dependency, or say which extra to install.

>>> require("json", "onnx").__name__
'json'
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

__all__ = ["require"]


def require(module: str, extra: str) -> ModuleType:
    """``import module``; if it is missing, an ImportError naming ``neurocloud[extra]``."""
    try:
        return import_module(module)
    except ImportError:
        raise ImportError(
            f"This needs the {module.split('.')[0]!r} package: pip install 'neurocloud[{extra}]'"
        ) from None
