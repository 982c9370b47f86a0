"""``neurocloud train --checkpoint`` / ``--resume``: a run killed (SIGKILL) or interrupted
(Ctrl-C, SIGINT) and resumed saves bit for bit the model of the run that was never stopped.

Each run is a child process. The child sends itself the signal right after epoch k has been
reported (a real signal, delivered at a point known in advance: no sleeps, no races)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from click.testing import CliRunner

from neurocloud.artifact import load_artifact
from neurocloud.cli import main

CHILD = textwrap.dedent(
    """
    import os, signal, sys
    how, at = sys.argv[1], int(sys.argv[2])
    if how != "none":
        from neurocloud.progress import TrainingProgress
        reported = TrainingProgress.on_epoch_end

        def on_epoch_end(self, model, epoch, logs):
            reported(self, model, epoch, logs)
            if epoch + 1 == at:
                for name in how.split(","):  # "SIGINT,SIGINT": Ctrl-C twice
                    os.kill(os.getpid(), getattr(signal, name))

        TrainingProgress.on_epoch_end = on_epoch_end
    from neurocloud.cli import run
    run(sys.argv[3:])
    """
)

CASES = {
    # shuffled batches, float64, dropout (both draw from the model's generator)
    "iris-float64-dropout": [
        "--data", "iris", "--hidden", "8", "--epochs", "12", "--batch-size", "16",
        "--dtype", "float64", "--dropout", "0.2", "--lr", "0.01",
    ],
    # early stopping: its held-out split, patience counter and best weights carry over
    "iris-early-stopping": [
        "--data", "iris", "--hidden", "8", "--epochs", "60", "--batch-size", "16",
        "--early-stopping", "--n-iter-no-change", "3", "--lr", "0.02",
    ],
    # a regressor trains on standardised targets: the checkpoint keeps that space
    "diabetes-float32": [
        "--data", "diabetes", "--hidden", "8", "--epochs", "10", "--batch-size", "32",
        "--lr", "0.01",
    ],
}  # fmt: skip
#: the epoch after which a run is stopped: early stopping's is past its best epoch (4 of the
#: 8 it runs), so that the patience counter and the best weights are under way
STOP_AT = {"iris-float64-dropout": 3, "iris-early-stopping": 7, "diabetes-float32": 3}


def child(how: str, at: int, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD, how, str(at), "train", "--quiet", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def trained(out) -> tuple[np.ndarray, dict]:
    card = json.loads((out / "card.json").read_text())
    return load_artifact(out).model.flat_parameters(), card


def epochs_line(stdout: str) -> str:
    return next(line for line in stdout.splitlines() if line.startswith("trained "))


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    runs = {}
    for name, args in CASES.items():
        out = tmp_path_factory.mktemp(name) / "model"
        done = child("none", 0, *args, "-o", str(out))
        assert done.returncode == 0, done.stderr
        runs[name] = (out, done.stdout)
    return runs


def check_same_as_uninterrupted(uninterrupted, name, out, resumed_stdout):
    whole_out, whole_stdout = uninterrupted[name]
    weights, card = trained(out)
    whole_weights, whole_card = trained(whole_out)
    assert weights.dtype == whole_weights.dtype
    assert np.array_equal(weights, whole_weights)  # bit for bit
    assert (
        epochs_line(resumed_stdout).split(" in ")[0] == epochs_line(whole_stdout).split(" in ")[0]
    )
    assert card["metrics"]["epochs"] == whole_card["metrics"]["epochs"]
    assert card["curves"] == whole_card["curves"]
    assert card["history"] == whole_card["history"]
    assert card["training"]["stop_reason"] == whole_card["training"]["stop_reason"]


@pytest.mark.parametrize("name", list(CASES))
def test_a_killed_run_resumed_saves_the_uninterrupted_model(tmp_path, uninterrupted, name):
    out, ck = tmp_path / "model", tmp_path / "run"
    at = STOP_AT[name]
    killed = child("SIGKILL", at, *CASES[name], "-o", str(out), "--checkpoint", str(ck))
    assert killed.returncode == -signal.SIGKILL
    assert not out.exists()
    # killed while reporting epoch `at`, before its checkpoint: the one before is the last
    state = json.loads((ck / "last" / "model.json").read_text())["extra"]["checkpoint"]
    assert state["epoch"] == at - 1
    resumed = child("none", 0, "--resume", str(ck))
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming {ck} after epoch {at - 1}" in resumed.stdout
    check_same_as_uninterrupted(uninterrupted, name, out, resumed.stdout)


@pytest.mark.parametrize("name", ["iris-early-stopping", "diabetes-float32"])
def test_ctrl_c_stops_after_the_epoch_keeps_the_checkpoint_and_resumes(
    tmp_path, uninterrupted, name
):
    out, ck = tmp_path / "model", tmp_path / "run"
    args = [*CASES[name], "-o", str(out), "--checkpoint", str(ck), "--checkpoint-every", "5"]
    at = STOP_AT[name]
    stopped = child("SIGINT", at, *args)
    assert stopped.returncode == 130, stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert f"interrupted at epoch {at}; the checkpoint is kept: neurocloud train --resume {ck}" in (
        stopped.stderr
    )
    assert not out.exists()  # an unfinished model is not saved as the result
    # written at the interrupt although --checkpoint-every 5 would not have written it
    state = json.loads((ck / "last" / "model.json").read_text())["extra"]["checkpoint"]
    assert state["epoch"] == at and at % 5
    resumed = child("none", 0, "--resume", str(ck), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    check_same_as_uninterrupted(uninterrupted, name, out, resumed.stdout)


def test_a_second_ctrl_c_stops_at_once_and_the_last_checkpoint_resumes(tmp_path, uninterrupted):
    out, ck = tmp_path / "model", tmp_path / "run"
    args = [*CASES["diabetes-float32"], "-o", str(out), "--checkpoint", str(ck)]
    stopped = child("SIGINT,SIGINT", 4, *args)
    assert stopped.returncode == 130 and "Traceback" not in stopped.stderr
    assert f"interrupted; the checkpoint is kept: neurocloud train --resume {ck}" in stopped.stderr
    # stopped inside epoch 4's reporting, before its checkpoint: epoch 3's is kept
    state = json.loads((ck / "last" / "model.json").read_text())["extra"]["checkpoint"]
    assert state["epoch"] == 3
    resumed = child("none", 0, "--resume", str(ck))
    assert resumed.returncode == 0, resumed.stderr
    check_same_as_uninterrupted(uninterrupted, "diabetes-float32", out, resumed.stdout)


def test_ctrl_c_without_a_checkpoint_exits_130_and_says_so(tmp_path):
    stopped = child("SIGINT", 2, *CASES["diabetes-float32"], "-o", str(tmp_path / "m"))
    assert stopped.returncode == 130 and "Traceback" not in stopped.stderr
    assert "interrupted at epoch 2 (nothing saved: with --checkpoint DIR" in stopped.stderr


def test_resume_refuses_options_that_differ_from_the_run(tmp_path):
    ck = tmp_path / "run"
    args = ["train", "--data", "seed", "--hidden", "2", "--epochs", "3", "--quiet",
            "--validation-fraction", "0"]  # fmt: skip
    first = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "m"), "--checkpoint", str(ck)])
    assert first.exit_code == 0, first.output
    result = CliRunner().invoke(
        main, ["train", "--resume", str(ck), "--lr", "0.5", "--epochs", "3"]
    )
    assert result.exit_code == 2
    assert "continues that run with its own settings" in result.output
    assert "--lr 0.5 (the run's: 0.001)" in result.output and "--epochs" not in result.output
    other = CliRunner().invoke(main, ["train", "--resume", str(ck), "--data", "iris"])
    assert other.exit_code == 2 and "--data iris (the run's: seed)" in other.output
    # a finished run resumes to the same model: nothing left to train; the data set's name
    # in another case is the same data set
    again = CliRunner().invoke(main, ["train", "--resume", str(ck), "--quiet", "--data", "Seed"])
    assert again.exit_code == 0, again.output
    assert "trained 3 epochs" in again.output


def test_checkpoint_mistakes_are_named(tmp_path):
    lbfgs = CliRunner().invoke(
        main,
        ["train", "--data", "seed", "--optimizer", "lbfgs", "--checkpoint", str(tmp_path / "c"),
         "-o", str(tmp_path / "m")],
    )  # fmt: skip
    assert lbfgs.exit_code == 1 and "lbfgs cannot resume exactly" in lbfgs.output
    (tmp_path / "empty").mkdir()
    missing = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "empty")])
    assert missing.exit_code == 1 and "No checkpoint in" in missing.output


def test_ctrl_c_from_outside_synchronised_on_the_progress_output(tmp_path):
    # A real Ctrl-C from another process, sent when the child reports epoch 20 of 200: it
    # stops at the end of the epoch it is in, and the resumed run ends where an
    # uninterrupted one does.
    args = [
        "--data", "digits", "--hidden", "32", "--epochs", "200", "--batch-size", "8",
        "--tol", "0", "--n-iter-no-change", "1000", "--validation-fraction", "0",
    ]  # fmt: skip
    out, ck = tmp_path / "model", tmp_path / "run"
    run = [sys.executable, "-c", "from neurocloud.cli import run; run()", "train", *args]
    with subprocess.Popen(
        [*run, "-o", str(out), "--checkpoint", str(ck)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        for line in proc.stdout:
            if line.startswith("epoch 20/200"):
                proc.send_signal(signal.SIGINT)
                break
        rest, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 130, (rest, stderr)
    assert "Traceback" not in stderr
    stopped_at = json.loads((ck / "last" / "model.json").read_text())["extra"]["checkpoint"]
    assert 20 <= stopped_at["epoch"] < 200
    assert f"interrupted at epoch {stopped_at['epoch']}; the checkpoint is kept" in stderr
    resumed = subprocess.run([*run[:3], "train", "--resume", str(ck), "--quiet"],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    whole = subprocess.run([*run, "--quiet", "-o", str(tmp_path / "whole")],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
    assert whole.returncode == 0, whole.stderr
    assert np.array_equal(trained(out)[0], trained(tmp_path / "whole")[0])
    assert "trained 200 epochs" in resumed.stdout and "trained 200 epochs" in whole.stdout
