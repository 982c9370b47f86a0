"""A missing optional package is one line naming the extra to install, never a traceback.

Each case runs in a fresh interpreter where the package is made unimportable
(``sys.modules[name] = None``, which is how Python itself marks a blocked import)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from serve_helpers import article_model

import neurocloud as nc

pytestmark = pytest.mark.slow


def _run(blocked: list[str], code: str, *args: str, cwd=None) -> subprocess.CompletedProcess:
    block = "".join(f"sys.modules[{name!r}] = None; " for name in blocked)
    return subprocess.run(
        [sys.executable, "-c", f"import sys; {block}{code}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


CLI = "from neurocloud.cli import run; run()"


def _one_line(done: subprocess.CompletedProcess, extra: str, package: str) -> None:
    assert done.returncode == 1, done
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"Error: this needs {package}, which is not installed: pip install 'neurocloud[{extra}]'"
    )


def test_train_without_scikit_learn(tmp_path):
    done = _run(["sklearn"], CLI, "train", "--data", "seed", "-o", str(tmp_path / "m"))
    _one_line(done, "sklearn", "scikit-learn")


def test_train_on_a_csv_without_scikit_learn(tmp_path):
    (tmp_path / "d.csv").write_text("x,y\n0.5,0.75\n1.5,1.25\n2.5,2.25\n3.5,3.75\n")
    done = _run(
        ["sklearn"], CLI, "train", "--data", str(tmp_path / "d.csv"), "-o", "m", cwd=tmp_path
    )
    _one_line(done, "sklearn", "scikit-learn")


def test_train_without_matplotlib_still_trains_and_names_the_plot_extra(tmp_path):
    done = _run(["matplotlib"], CLI, "train", "--data", "seed", "--epochs", "5", "-q",
                "-o", str(tmp_path / "m"))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "(for the curves' plot: pip install 'neurocloud[plot]')" in done.stdout
    assert (tmp_path / "m" / "model.json").is_file()


def test_python_api_without_scikit_learn_names_the_extra():
    code = (
        "from neurocloud.extras import MissingExtra\n"
        "for stmt in ('from neurocloud.sklearn import NeuralNetClassifier',"
        " 'import neurocloud as nc; nc.datasets.load(\"iris\")'):\n"
        "    try:\n"
        "        exec(stmt)\n"
        "    except MissingExtra as exc:\n"
        "        print(exc)\n"
    )
    done = _run(["sklearn"], code)
    message = "this needs scikit-learn, which is not installed: pip install 'neurocloud[sklearn]'"
    assert done.stdout.splitlines() == [message, message], done.stderr


def test_explanation_plot_without_matplotlib_names_the_plot_extra():
    code = (
        "import neurocloud as nc\n"
        "from neurocloud import explain\n"
        "from neurocloud.extras import MissingExtra\n"
        "m = nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0)\n"
        "e = explain.saliency(m, [[1.0, 2.0]])\n"
        "try:\n"
        "    e.plot('p.png')\n"
        "except MissingExtra as exc:\n"
        "    print(exc)\n"
    )
    done = _run(["matplotlib"], code)
    assert done.stdout.strip() == (
        "this needs matplotlib, which is not installed: pip install 'neurocloud[plot]'"
    ), done.stderr


def test_sagemaker_training_job_without_scikit_learn_writes_the_line_to_failure(tmp_path):
    (tmp_path / "input/data/train").mkdir(parents=True)
    (tmp_path / "input/data/train/d.csv").write_text("x,y\n0.5,0.75\n1.5,1.25\n")
    (tmp_path / "input/config").mkdir(parents=True)
    (tmp_path / "input/config/hyperparameters.json").write_text("{}")
    (tmp_path / "input/config/inputdataconfig.json").write_text(json.dumps({"train": {}}))
    code = f"import os; os.environ['NEUROCLOUD_SAGEMAKER_ROOT'] = {str(tmp_path)!r}; {CLI}"
    done = _run(["sklearn"], code, "train")
    line = (
        "Training failed: this needs scikit-learn, which is not installed: "
        "pip install 'neurocloud[sklearn]'"
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip() == line
    assert (tmp_path / "output/failure").read_text().strip() == line


@pytest.mark.parametrize(
    ("blocked", "args", "extra", "package"),
    [
        (
            ["shap"],
            ["explain", "{model}", "--row", "1.0", "--method", "shap", "--background", "b.csv"],
            "explain",
            "shap",
        ),
        (
            ["matplotlib"],
            ["explain", "{model}", "--row", "1.0", "--plot", "p.png"],
            "plot",
            "matplotlib",
        ),
        (["onnx"], ["export", "{model}", "--format", "onnx", "-o", "m.onnx"], "onnx", "onnx"),
        (["torch"], ["export", "{model}", "--format", "torch", "-o", "m.pt"], "torch", "torch"),
    ],
)
def test_explain_and_export_without_their_extra(tmp_path, blocked, args, extra, package):
    model = nc.save(article_model(), tmp_path / "seed")
    (tmp_path / "b.csv").write_text("0.5\n1.5\n2.5\n")
    args = [a.replace("{model}", str(model)) for a in args]
    done = _run(blocked, CLI, *args, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert f"pip install 'neurocloud[{extra}]'" in done.stderr and package in done.stderr
