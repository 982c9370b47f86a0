"""A served model's signature (serve/signature.py): the one check that turns any decoded
array into the model's rows, with errors naming the field, the expected and the received,
and the Open Inference Protocol datatypes."""

from __future__ import annotations

import numpy as np
import pytest

from neurocloud.serve.errors import ServeError
from neurocloud.serve.signature import DATATYPES, Signature, v2_datatype

ONE = Signature("x", 1, "y", 1, np.dtype("float32"))
THREE = Signature("features", 3, "scores", 2, np.dtype("float64"))


@pytest.mark.parametrize(
    ("signature", "values", "expected"),
    [
        (ONE, 4.5, [[4.5]]),  # a scalar for a one-input model
        (ONE, [1, 2], [[1.0], [2.0]]),  # a 1-D list is a column
        (THREE, [1, 2, 3], [[1.0, 2.0, 3.0]]),  # ... or one row of a wider model
        (THREE, [[1, 2, 3], [4, 5, 6]], [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]),
        (ONE, np.array([[True], [False]]), [[1.0], [0.0]]),
    ],
)
def test_rows_accepts_the_shapes_clients_send(signature, values, expected):
    rows = signature.rows(values, "x")
    assert rows.dtype == signature.dtype and rows.flags.c_contiguous
    assert rows.tolist() == expected


@pytest.mark.parametrize(
    ("values", "words"),
    [
        ([[1, 2]], "x: expected shape (n, 3) or (3,) for one row; received shape (1, 2)"),
        ([[1, 2, 3], [4, 5]], "nested lists of different lengths"),
        ([[1, "a", 3]], "received str 'a'"),
        (np.zeros((0, 3)), "at least one row"),
        ([[1, float("nan"), 3]], "nan at row 0, column 1"),
        (np.array([["a", "b", "c"]]), "dtype <U1"),
    ],
)
def test_rows_refuses_with_the_field_expected_and_received(values, words):
    with pytest.raises(ServeError) as error:
        THREE.rows(values, "x")
    assert error.value.status == 400 and words in error.value.message


def test_a_value_out_of_the_models_dtype_range_is_named():
    with pytest.raises(ServeError, match="finite numbers representable as float32"):
        ONE.rows([[1e39]], "x")


def test_long_lists_are_converted_in_pieces_with_the_same_result():
    values = np.random.default_rng(0).normal(size=(20_000, 3))
    np.testing.assert_array_equal(THREE.rows(values.tolist(), "x"), values)


def test_metadata_and_datatypes():
    sig = Signature.from_metadata(
        {
            "inputs": [{"name": "features", "shape": [-1, 3]}],
            "outputs": [{"name": "scores", "shape": [-1, 2]}],
            "output_names": ["cat", 7],
        },
        np.dtype("float32"),
    )
    assert (sig.input_width, sig.output_width, sig.output_names) == (3, 2, ("cat", "7"))
    assert sig.datatype == "FP32"
    meta = sig.tensor_metadata()
    assert meta["inputs"] == [{"name": "features", "datatype": "FP32", "shape": [-1, 3]}]
    assert meta["outputs"][0]["parameters"] == {"labels": ["cat", "7"]}
    assert all(v2_datatype(dtype) == name for name, dtype in DATATYPES.items())
    with pytest.raises(TypeError, match="complex128"):
        v2_datatype(np.dtype("complex128"))
