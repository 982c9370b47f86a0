"""nn/validation.py: one vocabulary for checks, "Expected ... Received: name=value"."""

from __future__ import annotations

import numpy as np
import pytest

from neurocloud.nn.validation import (
    as_features,
    as_targets,
    check_bool,
    check_dtype,
    check_finite,
    check_number,
    positive_int,
)


@pytest.mark.parametrize(
    ("value", "kwargs", "expected"),
    [
        (0.5, dict(low=0, high=1), 0.5),
        (0, dict(low=0), 0.0),
        (np.float32(2.5), dict(), 2.5),
        (3, dict(low=1, integer=True), 3),
        (np.int64(7), dict(integer=True), 7),
    ],
)
def test_check_number_accepts_numbers_within_bounds(value, kwargs, expected):
    result = check_number(value, "x", **kwargs)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        (-1, dict(low=0), r"Expected x to be a number >= 0\. Received: x=-1"),
        (0, dict(low=0, low_open=True), r"Expected x to be a number > 0\. Received: x=0"),
        (1, dict(high=1, high_open=True), r"Expected x to be a number < 1\. Received: x=1"),
        (2, dict(low=0, high=1), r"a number >= 0 and <= 1\. Received: x=2"),
        (float("nan"), dict(), r"Expected x to be a finite number\. Received: x=nan"),
        (float("inf"), dict(low=0), r"Received: x=inf"),
        (True, dict(), r"Received: x=True"),
        ("3", dict(), r"Received: x='3'"),
        (2.5, dict(integer=True), r"Expected x to be an integer\. Received: x=2\.5"),
        (0, dict(low=1, integer=True), r"an integer >= 1\. Received: x=0"),
    ],
)
def test_check_number_names_expected_and_received(value, kwargs, message):
    with pytest.raises(ValueError, match=message):
        check_number(value, "x", **kwargs)


def test_positive_int_and_dtype():
    assert positive_int(np.int32(4), "units") == 4
    with pytest.raises(ValueError, match=r"Expected units to be a positive integer\. Received"):
        positive_int(0, "units")
    assert check_dtype("float64") == np.float64
    with pytest.raises(ValueError, match=r"Expected dtype 'float32' or 'float64'\. Received"):
        check_dtype("int8")


def test_check_bool_refuses_what_is_only_truthy():
    assert check_bool(np.bool_(False), "flag") is False
    for value in (1, 0, "true", None, 1.0):
        expected = rf"Expected flag to be true or false\. Received: flag={value!r}"
        with pytest.raises(ValueError, match=expected):
            check_bool(value, "flag")


def test_check_finite_names_the_first_bad_index():
    X = np.zeros((3, 2))
    X[1, 1], X[2, 0] = np.nan, np.inf
    with pytest.raises(ValueError, match=r"X must be finite; received nan at index \[1, 1\] \(2"):
        check_finite(X, "X")


def test_features_and_targets_shapes_are_checked():
    assert as_features([0.5, 1.5], 1, np.float32).shape == (2, 1)
    with pytest.raises(ValueError, match="2 features per row but the model expects 3"):
        as_features(np.zeros((4, 2)), 3, np.float32)
    with pytest.raises(ValueError, match="X is empty"):
        as_features(np.zeros((0, 2)), 2, np.float32)
    with pytest.raises(TypeError, match="must hold numbers"):
        as_features([["a"]], 1, np.float32)
    assert as_targets([1.0, 2.0], 2, 1, np.float64, sparse=False).shape == (2, 1)
    with pytest.raises(ValueError, match="y has 3 rows but X has 2"):
        as_targets([1, 2, 3], 2, 1, np.float64, sparse=False)


def test_an_integer_too_large_for_a_float_is_checked_not_crashed():
    huge = int("9" * 400)  # math.isfinite(huge) raises OverflowError
    assert check_number(huge, "steps", low=1, integer=True) == huge
    with pytest.raises(ValueError, match="Expected steps to be an integer >= 1 and <= 1024"):
        check_number(huge, "steps", low=1, high=1024, integer=True)
    with pytest.raises(ValueError, match="Expected seed to be an integer >= 0"):
        check_number(-huge, "seed", low=0, integer=True)
    with pytest.raises(ValueError, match="Expected lr to be a number > 0"):
        check_number(huge, "lr", low=0, low_open=True)
