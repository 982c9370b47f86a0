"""``neurocloud explain``: the table matches the library, plots are saved, errors are clear."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

import neurocloud as nc
from neurocloud.cli import main
from neurocloud.explain import integrated_gradients, shap_values

NAMES = ["age", "dose", "weight", "height"]


@pytest.fixture
def saved(tmp_path):
    model = nc.Sequential(
        [nc.layers.Dense(6, "tanh"), nc.layers.Dense(2, "softmax")],
        input_dim=4,
        seed=3,
        dtype="float64",
    )
    path = nc.save(model, tmp_path / "model", feature_names=NAMES)
    background = np.random.default_rng(0).normal(size=(12, 4))
    np.save(tmp_path / "background.npy", background)
    return model, path, tmp_path / "background.npy", background


def _table(output: str) -> dict[str, float]:
    """``feature -> attribution`` from the first row's table."""
    rows = {}
    for line in output.splitlines()[2:]:
        if line.startswith("row "):
            break
        name, _value, attribution = line.split()
        rows[name] = float(attribution)
    return rows


def test_ig_table_matches_the_library(saved):
    model, path, _, _ = saved
    result = CliRunner().invoke(main, ["explain", str(path), "--row", "1,-2,0.5,3", "--top", "3"])
    assert result.exit_code == 0, result.output
    reference = integrated_gradients(model, [[1, -2, 0.5, 3]], feature_names=NAMES)
    assert result.output.startswith(
        f"row 0: integrated_gradients of output {reference.target[0]} = "
    )
    printed = _table(result.output)
    expected = {name: attr for name, _, attr in reference.top_features(0, 3)}
    assert list(printed) == list(expected)
    assert np.allclose(list(printed.values()), list(expected.values()), rtol=1e-5)


def test_input_file_and_plot(saved, tmp_path):
    _, path, _, background = saved
    np.savetxt(tmp_path / "rows.csv", background[:2], delimiter=",")
    plot = tmp_path / "plots" / "ig.png"
    result = CliRunner().invoke(
        main,
        [
            "explain",
            str(path),
            "--input",
            str(tmp_path / "rows.csv"),
            "--method",
            "saliency",
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count("row ") == 2 and "row 1: saliency" in result.output
    assert plot.read_bytes()[:4] == b"\x89PNG"


def test_background_methods_require_and_use_a_background(saved):
    model, path, background_path, background = saved
    runner = CliRunner()
    missing = runner.invoke(main, ["explain", str(path), "--row", "1,2,3,4", "--method", "shap"])
    assert missing.exit_code == 2 and "--method shap needs --background FILE" in missing.output
    args = ["explain", str(path), "--row", "1,2,3,4", "--background", str(background_path)]
    shap = runner.invoke(main, [*args, "--method", "shap", "--target", "1"])
    assert shap.exit_code == 0, shap.output
    reference = shap_values(model, [[1, 2, 3, 4]], background, target=1, feature_names=NAMES)
    printed = _table(shap.output)
    assert all(
        np.isclose(printed[name], attr, rtol=1e-5) for name, _, attr in reference.top_features(0)
    )
    for method in ("expected", "lime"):
        found = runner.invoke(main, [*args, "--method", method, "--samples", "300"])
        assert found.exit_code == 0, found.output
        assert "base value" in found.output and all(name in found.output for name in NAMES)


def test_errors_name_what_is_wrong(saved):
    _, path, _, _ = saved
    runner = CliRunner()
    bad_target = runner.invoke(main, ["explain", str(path), "--row", "1,2,3,4", "--target", "5"])
    assert bad_target.exit_code == 1 and "target=5" in bad_target.output
    bad_row = runner.invoke(main, ["explain", str(path), "--row", "1,2"])
    assert bad_row.exit_code == 1 and "expects 4" in bad_row.output
    bad_baseline = runner.invoke(
        main, ["explain", str(path), "--row", "1,2,3,4", "--baseline", "x"]
    )
    assert bad_baseline.exit_code == 2 and "--baseline" in bad_baseline.output


def test_input_files_may_have_a_header_and_a_bad_background_is_named(saved, tmp_path):
    model, path, _, background = saved
    header = ",".join(NAMES)
    np.savetxt(tmp_path / "rows.csv", background[:2], delimiter=",", header=header, comments="")
    np.savetxt(tmp_path / "bg.csv", background, delimiter=",", header=header, comments="")
    runner = CliRunner()
    args = ["explain", str(path), "--input", str(tmp_path / "rows.csv"), "--method", "expected"]
    found = runner.invoke(main, [*args, "--background", str(tmp_path / "bg.csv")])
    assert found.exit_code == 0, found.output
    assert found.output.count("row ") == 2
    # predict reads the same files, header and all
    predicted = runner.invoke(main, ["predict", str(path), "--input", str(tmp_path / "rows.csv")])
    assert predicted.exit_code == 0, predicted.output
    rows = np.loadtxt(predicted.output.splitlines(), delimiter=",", ndmin=2)
    assert np.allclose(rows, model.predict(background[:2]))
    # a broken background file is reported against --background, not --input
    (tmp_path / "broken.csv").write_text("a,b,c,d\n1,2,x,4\n")
    broken = runner.invoke(main, [*args, "--background", str(tmp_path / "broken.csv")])
    assert broken.exit_code == 2 and "Invalid value for --background" in broken.output
    assert "broken.csv: not a numeric CSV file" in broken.output
    assert "first line was skipped as a header" in broken.output
    (tmp_path / "empty.csv").write_text("a,b,c,d\n")
    empty = runner.invoke(main, [*args, "--background", str(tmp_path / "empty.csv")])
    assert empty.exit_code == 2 and "no data rows after the header" in empty.output
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    npy = runner.invoke(main, [*args, "--background", str(tmp_path / "bad.npy")])
    assert npy.exit_code == 2 and "Invalid value for --background" in npy.output
    # --input keeps its name in predict's and explain's messages
    bad_input = runner.invoke(main, ["predict", str(path), "--input", str(tmp_path / "broken.csv")])
    assert bad_input.exit_code == 2 and "Invalid value for --input" in bad_input.output
