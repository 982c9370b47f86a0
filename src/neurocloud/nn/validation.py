"""Input checks shared by fit, predict and the estimators: clear errors, no silent casts."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "all_finite",
    "as_features",
    "as_targets",
    "check_bool",
    "check_choice",
    "check_dtype",
    "check_finite",
    "check_number",
    "positive_int",
]


def check_number(
    value: Any,
    name: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    integer: bool = False,
) -> Any:
    """``value`` as a float (an int with ``integer=True``) if it is a finite real number
    within the bounds; a ValueError "Expected ... Received: name=value" otherwise.

    ``low``/``high`` are inclusive unless ``low_open``/``high_open``; booleans are refused.

    >>> check_number(0.5, "rate", low=0, high=1, high_open=True)
    0.5
    >>> check_number(-1, "alpha", low=0)
    Traceback (most recent call last):
    ...
    ValueError: Expected alpha to be a number >= 0. Received: alpha=-1
    """
    kind = type(value)
    if kind is int:  # the common cases, without the ABC check below
        ok = integer or _fits_a_float(value)
    elif kind is float:
        ok = math.isfinite(value) and not integer
    else:
        kinds = (int, np.integer) if integer else (numbers.Real,)
        ok = isinstance(value, kinds) and not isinstance(value, (bool, np.bool_))
        ok = ok and (integer or _fits_a_float(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        bounds = []
        if low is not None:
            bounds.append(f"{'>' if low_open else '>='} {low:g}")
        if high is not None:
            bounds.append(f"{'<' if high_open else '<='} {high:g}")
        kind = "an integer" if integer else ("a number" if bounds else "a finite number")
        expected = f"{kind} {' and '.join(bounds)}".rstrip()
        raise ValueError(f"Expected {name} to be {expected}. Received: {name}={value!r}")
    return int(value) if integer else float(value)


def _fits_a_float(value: Any) -> bool:
    """Finite as a float (an int too large for one overflows rather than being infinite)."""
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """``value`` (a name, case-insensitive) as it appears in ``choices``; a ValueError
    "Expected name to be one of ... Received: name=value" otherwise.

    >>> check_choice("Adam", "optimizer", ["adam", "sgd"])
    'adam'
    """
    if isinstance(value, str):
        for choice in choices:
            if value.strip().lower() == choice.lower():
                return choice
    raise ValueError(
        f"Expected {name} to be one of {', '.join(choices)}. Received: {name}={value!r}"
    )


def positive_int(value: Any, name: str) -> int:
    """``value`` as an int if it is a positive integer; a ValueError naming ``name`` otherwise.

    >>> positive_int(3, "units")
    3
    """
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"Expected {name} to be a positive integer. Received: {name}={value!r}")
    return int(value)


def check_bool(value: Any, name: str) -> bool:
    """``value`` if it is a boolean (Python's or NumPy's); a ValueError naming ``name``
    otherwise, so ``1`` or ``"false"`` never passes for a flag by truthiness.

    >>> check_bool(True, "absolute")
    True
    >>> check_bool("no", "logits")
    Traceback (most recent call last):
    ...
    ValueError: Expected logits to be true or false. Received: logits='no'
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"Expected {name} to be true or false. Received: {name}={value!r}")
    return bool(value)


_DTYPES = {"float32": np.float32, "float64": np.float64}


def check_dtype(dtype: Any) -> np.dtype:
    """Accept "float32"/"float64" (or the NumPy types); raise naming the valid ones."""
    try:
        resolved = np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in _DTYPES:
        raise ValueError(f"Expected dtype 'float32' or 'float64'. Received: dtype={dtype!r}")
    return resolved


def _numeric(array: Any, name: str, dtype: np.dtype) -> np.ndarray:
    try:
        out = np.asarray(array)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"{name} must be a rectangular numeric array; {exc}") from None
    if out.dtype.kind not in "biuf" and (
        out.dtype == object
        or not (np.issubdtype(out.dtype, np.number) or np.issubdtype(out.dtype, np.bool_))
    ):
        raise TypeError(f"{name} must hold numbers; received an array of dtype {out.dtype}.")
    return np.asarray(out, dtype=dtype)


def all_finite(array: np.ndarray) -> bool:
    """Whether every element is finite (no nan or inf)."""
    if array.size <= 32:  # a request's row: plain Python beats a NumPy call's overhead
        return all(map(math.isfinite, array.ravel().tolist()))
    if array.size < 4096:  # a wide request row: a byte search beats NumPy's reduction
        return b"\x00" not in np.isfinite(array).tobytes()
    # Large arrays: one pass and no temporary. A sum is finite only when every element is
    # (an inf or nan makes it inf or nan), and row sums by a matrix-vector product (BLAS)
    # read memory twice as fast as NumPy's reduction. A sum that overflows falls back to
    # the exact check.
    rows = array.reshape(-1, array.shape[-1])
    with np.errstate(over="ignore", invalid="ignore"):
        total = np.add.reduce(rows.dot(np.ones(rows.shape[1], rows.dtype)))
    return math.isfinite(total) or bool(np.isfinite(array).all())


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise a ValueError naming the first non-finite element of ``array``."""
    if not all_finite(array):
        bad = np.argwhere(~np.isfinite(array))[0]
        where = ", ".join(str(i) for i in bad)
        raise ValueError(
            f"{name} must be finite; received {array[tuple(bad)]} at index [{where}] "
            f"({int((~np.isfinite(array)).sum())} non-finite values in all)."
        )


def as_features(
    X: Any, n_features: int | None, dtype: np.dtype, name: str = "X", finite: bool = True
) -> np.ndarray:
    """``X`` as a C-contiguous 2-D array of ``dtype``; 1-D is one feature per row when the
    model has one input (the article's ``x = [0.5, 1.5, ...]``). ``finite=False`` leaves
    the finiteness check (:func:`check_finite`) to the caller."""
    if (  # already as asked (a request's array): only the finiteness check is left
        type(X) is np.ndarray
        and X.ndim == 2
        and X.dtype == dtype
        and X.flags.c_contiguous
        and len(X)
        and (n_features is None or X.shape[1] == n_features)
    ):
        if finite:
            check_finite(X, name)
        return X
    X = _numeric(X, name, dtype)
    if X.ndim == 1 and n_features in (None, 1):
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        expected = f"(n_samples, {n_features})" if n_features else "(n_samples, n_features)"
        raise ValueError(f"{name} must be 2-D with shape {expected}; received shape {X.shape}.")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty: expected at least one row; received shape {X.shape}.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(
            f"{name} has {X.shape[1]} features per row but the model expects {n_features}; "
            f"received shape {X.shape}."
        )
    if finite:
        check_finite(X, name)
    return np.ascontiguousarray(X)


def as_targets(
    y: Any, n_samples: int, n_outputs: int, dtype: np.dtype, sparse: bool, name: str = "y"
) -> np.ndarray:
    """``y`` as ``(n_samples, n_outputs)`` of ``dtype``, or integer labels when ``sparse``."""
    y = _numeric(y, name, np.float64 if sparse else dtype)
    if y.shape[:1] != (n_samples,):
        raise ValueError(
            f"{name} has {y.shape[0] if y.ndim else 0} rows but X has {n_samples}: "
            f"they must match; received y shape {y.shape}."
        )
    check_finite(y, name)
    if sparse:
        return y
    if y.ndim == 1:
        y = y.reshape(-1, 1)
    if y.ndim != 2 or y.shape[1] != n_outputs:
        raise ValueError(
            f"{name} must have shape ({n_samples}, {n_outputs}) to match the model's "
            f"{n_outputs} outputs; received shape {y.shape}."
        )
    return np.ascontiguousarray(y)
