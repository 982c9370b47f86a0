"""Training says how it goes and why it stopped: ``History.stop_reason``, the progress of
``neurocloud train`` (bar on a terminal, lines otherwise, ``--quiet``), the validation curve
beside the training curve, and the SageMaker job's log."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest
from click.testing import CliRunner
from sklearn.exceptions import ConvergenceWarning

import neurocloud as nc
from neurocloud.cli import main
from neurocloud.cloud import container_training
from neurocloud.progress import TrainingProgress
from neurocloud.sklearn import NeuralNetClassifier, NeuralNetRegressor
from neurocloud.train_and_save import train_job

X = np.array([[0.5], [1.5], [2.5], [3.5]])
Y = np.array([0.75, 1.25, 2.25, 3.75])


def _seed_model(dtype="float64"):
    return nc.Sequential([nc.layers.Dense(2, activation="tanh"), nc.layers.Dense(1)],
                         input_dim=1, seed=0, dtype=dtype)  # fmt: skip


def test_stop_reason_reached_max_epochs():
    assert _seed_model().fit(X, Y, epochs=3).stop_reason == "reached max epochs (3)"


def test_stop_reason_loss_became_nan_or_inf():
    with warnings.catch_warnings():  # NumPy's overflow warnings on the way, and fit's own
        warnings.simplefilter("ignore", RuntimeWarning)
        history = _seed_model().fit(X, Y * 1e3, epochs=50, optimizer=nc.optim.SGD(lr=1e12))
    assert (
        history.stop_reason
        == f"loss became {history.history['loss'][-1]} at epoch {len(history.epoch)}"
    )
    assert history.stop_reason.startswith(("loss became nan", "loss became inf"))


def test_stop_reason_early_stopping_names_the_monitored_value():
    stop = nc.callbacks.EarlyStopping(monitor="loss", patience=2, min_delta=1e9)
    history = _seed_model().fit(X, Y, epochs=100, callbacks=[stop])
    assert len(history.epoch) == 4  # one improvement (from inf), then 3 > patience without
    assert history.stop_reason == (
        "early stopping: loss did not improve by more than min_delta=1000000000.0 for 2 epochs"
        "; restored best weights from epoch 1"
    )


def test_stop_reason_lbfgs_convergence_says_why():
    history = _seed_model().fit(X, Y, epochs=5000, optimizer="lbfgs")
    assert len(history.epoch) < 5000
    assert history.stop_reason.startswith("converged: lbfgs met its tolerance tol=")


def test_estimator_stop_reason_names_tol_and_n_iter_no_change():
    data = nc.datasets.load("iris")
    clf = NeuralNetClassifier((8,), max_epochs=500, tol=0.5, n_iter_no_change=3, random_state=0)
    clf.fit(data.X, data.y)
    assert clf.n_iter_ == 5  # one improvement, then 4 > n_iter_no_change without
    assert clf.stop_reason_ == (
        "converged: training loss improved by less than tol=0.5 for 3 epochs"
    )
    early = NeuralNetClassifier(
        (8,), max_epochs=500, tol=0.5, n_iter_no_change=2, early_stopping=True, random_state=0
    ).fit(data.X, data.y)
    assert early.stop_reason_.startswith(
        "early stopping: validation score improved by less than tol=0.5 for 2 epochs"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        short = NeuralNetClassifier((8,), max_epochs=2, random_state=0).fit(data.X, data.y)
    assert short.stop_reason_ == "reached max epochs (2)"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_is_a_bar_on_a_terminal_with_loss_validation_and_eta():
    data = nc.datasets.load("iris")
    out = _Terminal()
    result = train_job(
        data.X, data.y, data.task, hidden=(8,), epochs=7, progress="auto", stream=out
    )
    text = out.getvalue()
    assert "\r" in text and "7/7" in text  # redrawn in place, up to the last epoch
    assert "loss=" in text and "validation accuracy=" in text
    assert "<00:00" in text  # tqdm's elapsed<remaining: the ETA
    assert len(result.history["validation_accuracy"]) == 7


def test_progress_is_one_line_per_n_epochs_off_a_terminal():
    data = nc.datasets.load("diabetes")
    out = io.StringIO()
    train_job(data.X, data.y, data.task, hidden=(8,), epochs=20, progress="auto", stream=out)
    lines = out.getvalue().splitlines()
    assert [line.split(":")[0] for line in lines] == [
        f"epoch {n}/20" for n in (2, 4, 6, 8, 10, 12, 14, 16, 18, 20)
    ]
    assert "validation r2 " in lines[0] and "s left at most" in lines[0]
    assert "left" not in lines[-1]


def test_progress_scores_match_the_estimators_own_validation_score():
    data = nc.datasets.load("wine")
    reg = NeuralNetClassifier((8,), max_epochs=5, random_state=0)
    progress = TrainingProgress(reg, data.X[:40], data.y[:40], mode="quiet")
    reg.set_params(callbacks=[progress])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(data.X, data.y)
    assert len(progress.scores) == 5
    assert progress.scores[-1] == pytest.approx(reg.score(data.X[:40], data.y[:40]))


def test_regressor_progress_r2_is_in_the_users_units():
    data = nc.datasets.load("diabetes")
    reg = NeuralNetRegressor((8,), max_epochs=3, random_state=0)
    progress = TrainingProgress(reg, data.X[:50], data.y[:50], mode="quiet")
    reg.set_params(callbacks=[progress])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(data.X, data.y)
    assert progress.scores[-1] == pytest.approx(reg.score(data.X[:50], data.y[:50]), rel=1e-4)


def test_cli_train_prints_progress_the_stop_reason_and_plots_both_curves(tmp_path, monkeypatch):
    plotted = {}
    import neurocloud.train_and_save as job

    real = job.plot_loss_curve

    def spy(history, path, title=""):
        plotted.update(history)
        return real(history, path, title)

    monkeypatch.setattr(job, "plot_loss_curve", spy)
    out = tmp_path / "iris"
    args = ["train", "--data", "iris", "--hidden", "8", "--epochs", "500", "-o", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    epochs = json.loads((out / "card.json").read_text())["metrics"]["epochs"]
    assert "epoch 50/500: loss " in result.output and ", validation accuracy " in result.output
    assert f"trained {epochs} epochs" in result.output
    reason = json.loads((out / "card.json").read_text())["training"]["stop_reason"]
    assert f"stopped: {reason}" in result.output
    assert reason in ("reached max epochs (500)",) or reason.startswith("converged: training loss")
    assert set(plotted) == {"loss", "validation_accuracy"}
    assert len(plotted["loss"]) == len(plotted["validation_accuracy"]) == epochs
    assert (tmp_path / "iris-loss.png").stat().st_size > 0

    quiet = CliRunner().invoke(main, [*args[:-2], "-o", str(tmp_path / "q"), "--quiet"])
    assert quiet.exit_code == 0 and "epoch " not in quiet.output and "stopped: " in quiet.output


def test_sagemaker_job_logs_progress_and_why_it_stopped(tmp_path, capsys):
    (tmp_path / "input/data/train").mkdir(parents=True)
    (tmp_path / "input/data/train/seed.csv").write_text(
        "x,y\n0.5,0.75\n1.5,1.25\n2.5,2.25\n3.5,3.75\n"
    )
    (tmp_path / "input/config").mkdir(parents=True)
    (tmp_path / "input/config/hyperparameters.json").write_text(json.dumps(
        {"hidden": "2,2", "activation": "sigmoid", "optimizer": "lbfgs", "epochs": "500",
         "validation_fraction": "0"}))  # fmt: skip
    (tmp_path / "input/config/inputdataconfig.json").write_text(
        json.dumps({"train": {"ContentType": "text/csv", "TrainingInputMode": "File"}})
    )
    assert container_training.main({container_training.ROOT_VARIABLE: str(tmp_path)}) == 0
    log = capsys.readouterr().out
    epochs = json.loads((tmp_path / "output/data/metrics.json").read_text())["epochs"]
    assert epochs < 500
    assert f"trained {epochs} epochs; stopped: converged: " in log
    assert f"epoch {epochs}/500: loss " in log
