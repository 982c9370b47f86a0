"""The article's example and the demo/predict commands."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import neurocloud as nc
from neurocloud import demo
from neurocloud.cli import main

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def result():
    return demo.run(seed=0)


def test_article_settings_underfit_and_adam_fits(result):
    # Plain gradient descent at lr 0.01 for 1000 epochs barely moves from the mean...
    assert result.article.loss > 0.5
    # ...while Adam fits the four points.
    assert result.fitted.loss < 1e-4
    fitted = result.fitted.model.predict(demo.X)
    np.testing.assert_allclose(fitted, demo.Y, atol=0.01)


def test_network_is_the_articles(result):
    model = result.article.model
    assert [layer.units for layer in model.layers] == [2, 2, 1]
    assert [layer.activation.name for layer in model.layers] == ["sigmoid", "sigmoid", "identity"]


def test_report_names_every_figure(result):
    text = demo.report(result)
    assert "4.625" in text and "5.750" in text
    assert f"{result.article.prediction:.3f}" in text and f"{result.fitted.prediction:.3f}" in text
    assert "linear" in text and "could never predict 4.625" in text
    assert demo.EXTRAPOLATION_NOTE in text


def test_plot_is_a_png(result, tmp_path):
    path = demo.plot(result, tmp_path / "fit.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_command_saves_a_servable_model(tmp_path):
    runner = CliRunner()
    out = runner.invoke(main, ["demo", "--output", str(tmp_path / "seed")])
    assert out.exit_code == 0, out.output
    assert "f(4.5)" in out.output
    predicted = runner.invoke(
        main, ["predict", str(tmp_path / "seed"), "--row", "4.5", "--row", "0.5"]
    )
    assert predicted.exit_code == 0, predicted.output
    values = np.array([float(v) for v in predicted.output.split()])
    expected = nc.load(tmp_path / "seed").predict([[4.5], [0.5]])[:, 0]
    np.testing.assert_allclose(values, expected, rtol=1e-6)


def test_predict_reports_bad_input_without_traceback(tmp_path):
    runner = CliRunner()
    runner.invoke(main, ["demo", "--output", str(tmp_path / "seed")])
    bad = runner.invoke(main, ["predict", str(tmp_path / "seed"), "--row", "1,2"])
    assert bad.exit_code != 0 and "expects 1" in bad.output and "Traceback" not in bad.output
    missing = runner.invoke(main, ["predict", str(tmp_path), "--row", "1"])
    assert missing.exit_code != 0 and "model.json: file is missing" in missing.output


def test_every_command_has_help():
    runner = CliRunner()
    for name in main.list_commands(None):
        out = runner.invoke(main, [name, "--help"])
        assert out.exit_code == 0 and "Usage" in out.output, name


def test_example_script_runs(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "seed_regression.py"), str(tmp_path / "p.png")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "4.625" in proc.stdout and (tmp_path / "p.png").exists()


def test_bad_arguments_are_usage_errors_not_tracebacks(tmp_path):
    runner = CliRunner()
    seed = runner.invoke(main, ["demo", "--seed", "-1"])
    assert seed.exit_code == 2 and "-1 is not in the range x>=0" in seed.output
    runner.invoke(main, ["demo", "--output", str(tmp_path / "m")])
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "garbage.npy").write_bytes(b"not an npy file")
    for name in ("objects.npy", "garbage.npy"):
        for command in (["predict"], ["explain", "--method", "ig"]):
            out = runner.invoke(
                main, [*command, str(tmp_path / "m"), "--input", str(tmp_path / name)]
            )
            assert out.exit_code == 2, (command, name, out.output)
            assert "not a readable numeric .npy array" in out.output
            assert "Traceback" not in out.output


def test_predict_takes_a_uri_only_with_ray(tmp_path, monkeypatch):
    import neurocloud.cli.ray_predict as ray_predict

    calls = []
    monkeypatch.setattr(ray_predict, "predict_on_ray", lambda *args: calls.append(args))
    runner = CliRunner()
    local = runner.invoke(main, ["predict", "s3://models/seed", "--row", "1"])
    assert local.exit_code == 2 and "'s3://models/seed' does not exist" in local.output
    missing = runner.invoke(main, ["predict", str(tmp_path / "nowhere"), "--ray"])
    assert missing.exit_code == 2 and "does not exist" in missing.output and not calls
    args = ["predict", "s3://models/seed", "--ray", "--input", str(tmp_path), "--output", "o"]
    on_ray = runner.invoke(main, args)
    assert on_ray.exit_code == 0, on_ray.output
    assert calls == [("s3://models/seed", str(tmp_path), "o", None)]
