"""The --ray command-line options, and the rule that only neurocloud.ray imports Ray."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

import neurocloud as nc
from neurocloud.cli import main

pq = pytest.importorskip("pyarrow.parquet")


def test_import_neurocloud_never_imports_ray():
    code = (
        "import sys, neurocloud, neurocloud.sklearn, neurocloud.serve.app, neurocloud.cli; "
        "from neurocloud.cli import main; "
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith('ray.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_predict_ray_scores_csv_to_parquet_equal_to_predict(ray_cluster, tmp_path):
    model = nc.Sequential([nc.layers.Dense(4, activation="tanh"), nc.layers.Dense(2)], 3, seed=2)
    path = nc.save(model, tmp_path / "model")
    X = np.random.default_rng(0).normal(size=(50, 3))
    np.savetxt(tmp_path / "rows.csv", X, delimiter=",", header="a,b,c", comments="")
    out = tmp_path / "scored"
    result = CliRunner().invoke(
        main,
        [
            "predict",
            str(path),
            "--ray",
            "--input",
            str(tmp_path / "rows.csv"),
            "--output",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pandas()
    np.testing.assert_allclose(table[["a", "b", "c"]].to_numpy(), X)
    np.testing.assert_allclose(np.stack(table["prediction"]), model.predict(X), rtol=1e-6)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--ray", "--replicas", "2", "--autoscale", "1:3"], "not both"),
        (["--ray", "--autoscale", "3:1"], "MIN:MAX with 0 <= MIN <= MAX"),
        (["--ray", "--workers", "2"], "--workers is for one machine"),
        (["--replicas", "2"], "need --ray"),
    ],
)
def test_serve_ray_options_name_the_mistake(tmp_path, args, message):
    path = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0), tmp_path / "m")
    result = CliRunner().invoke(main, ["serve", str(path), *args])
    assert result.exit_code == 2 and message in result.output, result.output


def test_predict_ray_needs_an_output_and_a_known_format(tmp_path):
    path = nc.save(nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0), tmp_path / "m")
    (tmp_path / "rows.json").write_text("[]")
    runner = CliRunner()
    no_output = runner.invoke(main, ["predict", str(path), "--ray", "--input", str(path)])
    assert no_output.exit_code == 2 and "--output FOLDER" in no_output.output
    wrong = runner.invoke(
        main,
        ["predict", str(path), "--ray", "--input", str(tmp_path / "rows.json"), "--output", "o"],
    )
    assert wrong.exit_code == 2 and "Parquet (.parquet) or CSV (.csv)" in wrong.output
