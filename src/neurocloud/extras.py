"""The optional extras, and one line naming the one to install when a package is missing.

>>> missing_extra_message(ModuleNotFoundError("No module named 'sklearn'", name="sklearn"))
"this needs scikit-learn, which is not installed: pip install 'neurocloud[sklearn]'"
>>> require("json", "sklearn").__name__
'json'
"""

from __future__ import annotations

from importlib import import_module
from types import ModuleType

__all__ = ["EXTRAS", "MissingExtra", "missing_extra_message", "require"]

#: top-level module -> (package to install, the extra that installs it)
EXTRAS = {
    "sklearn": ("scikit-learn", "sklearn"),
    "matplotlib": ("matplotlib", "plot"),
    "onnx": ("onnx", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "torch": ("torch", "torch"),
    "boto3": ("boto3", "aws"),
    "botocore": ("boto3", "aws"),
    "shap": ("shap", "explain"),
    "lime": ("lime", "explain"),
}


class MissingExtra(ImportError):
    """An optional package is missing; the message names the extra to install."""


def _message(module: str) -> str:
    package, extra = EXTRAS[module]
    return f"this needs {package}, which is not installed: pip install 'neurocloud[{extra}]'"


def missing_extra_message(exc: BaseException) -> str | None:
    """The one-line message for ``exc`` if it is a missing optional package, else None."""
    if isinstance(exc, MissingExtra) or "pip install 'neurocloud[" in str(exc):
        return str(exc)
    name = getattr(exc, "name", None) or ""
    top = name.split(".")[0]
    if isinstance(exc, ImportError) and top in EXTRAS:
        return _message(top)
    return None


def require(module: str, extra: str | None = None) -> ModuleType:
    """``import module``, or raise :class:`MissingExtra` naming the extra to install."""
    try:
        return import_module(module)
    except ImportError as exc:
        top = module.split(".")[0]
        if top not in EXTRAS or (getattr(exc, "name", None) or top).split(".")[0] != top:
            raise  # a missing dependency of the package itself: not ours to name
        raise MissingExtra(_message(top), name=top) from None
