"""neurocloud.datasets: built-in data sets and CSV files with precise errors."""

import subprocess
import sys

import numpy as np
import pytest

from neurocloud import datasets


def test_seed_is_the_articles_four_points():
    seed = datasets.load("seed")
    assert seed.X.tolist() == [[0.5], [1.5], [2.5], [3.5]]
    assert seed.y.tolist() == [0.75, 1.25, 2.25, 3.75]
    assert (seed.task, seed.feature_names, seed.target_names) == ("regression", ["x"], ["y"])


@pytest.mark.parametrize(
    ("name", "shape", "task", "n_targets"),
    [
        ("digits", (1797, 64), "classification", 10),
        ("iris", (150, 4), "classification", 3),
        ("wine", (178, 13), "classification", 3),
        ("breast_cancer", (569, 30), "classification", 2),
        ("diabetes", (442, 10), "regression", 1),
    ],
)
def test_scikit_learn_data_sets(name, shape, task, n_targets):
    data = datasets.load(name)
    assert data.X.shape == shape and data.X.dtype == np.float64 and len(data.y) == shape[0]
    assert data.task == task and data.name == name and data.description
    assert len(data.feature_names) == shape[1] and len(data.target_names) == n_targets
    if task == "classification":
        assert sorted(np.unique(data.y).tolist()) == list(range(n_targets))


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown data set 'mnist'.*seed, digits, iris"):
        datasets.load("mnist")
    with pytest.raises(ValueError, match=r"load_csv\(path, target=\.\.\.\)"):
        datasets.load("data.csv")
    assert datasets.available() == ["seed", "digits", "iris", "wine", "breast_cancer", "diabetes"]


def test_importing_datasets_does_not_import_scikit_learn():
    code = (
        "import sys, neurocloud.datasets as d; d.load('seed'); "
        "assert not any(m.startswith('sklearn') for m in sys.modules), 'sklearn imported'; "
        "d.load('iris'); assert 'sklearn' in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_with_numeric_target_is_regression(tmp_path):
    path = _csv(tmp_path, "a,b,price\n1,2,10.5\n3,4.5,20.25\n\n-1e3,0,7\n")
    data = datasets.load_csv(path, target="price")
    assert data.X.tolist() == [[1, 2], [3, 4.5], [-1000, 0]]
    assert data.y.tolist() == [10.5, 20.25, 7.0]
    assert (data.task, data.feature_names, data.target_names) == (
        "regression",
        ["a", "b"],
        ["price"],
    )
    assert data.name == "data"


def test_csv_target_in_any_column_and_labels(tmp_path):
    path = _csv(tmp_path, "kind,x1,x2\ncat,1,2\ndog,3,4\ncat,5,6\n")
    data = datasets.load_csv(path, target="kind")
    assert data.X.tolist() == [[1, 2], [3, 4], [5, 6]] and data.y.tolist() == ["cat", "dog", "cat"]
    assert (data.task, data.target_names) == ("classification", ["cat", "dog"])


def test_csv_default_target_is_the_last_column_and_integer_labels(tmp_path):
    path = _csv(tmp_path, "\ufeffx,label\n0.5,1\n1.5,0\n2.5,1\n")
    data = datasets.load_csv(path)
    assert data.feature_names == ["x"] and data.y.dtype.kind == "i"
    assert (data.task, data.target_names) == ("classification", ["0", "1"])
    assert datasets.load_csv(path, task="regression").y.dtype == np.float64


def test_csv_missing_column_lists_the_columns(tmp_path):
    path = _csv(tmp_path, "a,b,c\n1,2,3\n")
    with pytest.raises(
        ValueError, match="no column named 'target' for target; the columns are: a, b, c"
    ):
        datasets.load_csv(path, target="target")


def test_csv_non_numeric_value_names_line_column_and_value(tmp_path):
    path = _csv(tmp_path, "a,b,y\n1,2,3\n4,oops,6\n")
    with pytest.raises(ValueError, match=r"data\.csv, line 3, column 'b': 'oops' is not a finite"):
        datasets.load_csv(path, target="y")
    empty = _csv(tmp_path, "a,y\n,1\n", "empty_cell.csv")
    with pytest.raises(ValueError, match="line 2, column 'a': '' is not"):
        datasets.load_csv(empty, target="y")
    text_target = _csv(tmp_path, "a,y\n1,2\n2,three\n", "text_target.csv")
    with pytest.raises(
        ValueError, match="must be numeric for regression; data row 2 holds 'three'"
    ):
        datasets.load_csv(text_target, target="y", task="regression")


def test_csv_ragged_row_names_line_and_counts(tmp_path):
    path = _csv(tmp_path, "a,b,y\n1,2,3\n4,5\n")
    with pytest.raises(ValueError, match=r"line 3: expected 3 values .*received 2"):
        datasets.load_csv(path, target="y")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the file is empty"),
        ("a,b\n", "a header but no data rows"),
        ("a,a,y\n1,2,3\n", r"repeats the column names \['a'\]"),
        ("y\n1\n", "at least one feature column"),
    ],
)
def test_csv_structural_errors(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        datasets.load_csv(_csv(tmp_path, text))


def test_csv_rejects_an_unknown_task(tmp_path):
    with pytest.raises(ValueError, match="task='clustering'"):
        datasets.load_csv(_csv(tmp_path, "a,y\n1,2\n"), task="clustering")


@pytest.mark.parametrize("missing", ["", "nan", "NA"])
def test_csv_missing_target_is_named_not_turned_into_a_class(tmp_path, missing):
    path = tmp_path / "prices.csv"
    path.write_text(f"size,price\n1,100.5\n2,{missing}\n3,300.25\n4,410.75\n")
    with pytest.raises(
        ValueError, match=r"target column 'price' has no usable value on data row 2"
    ):
        datasets.load_csv(path, target="price")
