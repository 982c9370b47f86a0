"""ModelCheckpoint and load_checkpoint: a killed or interrupted run resumes bit for bit."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn.training import Trainer

EPOCHS = 8
SETTINGS = dict(loss="mse", epochs=EPOCHS, batch_size=16, shuffle=True)


def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    return X, np.tanh(X @ np.array([1.0, -2.0, 0.5]))


def network() -> nc.Sequential:
    # Dropout and shuffling both draw from the model's generator.
    return nc.Sequential(
        [nc.layers.Dense(8, activation="relu"), nc.layers.Dropout(0.3), nc.layers.Dense(1)],
        input_dim=3,
        seed=4,
        dtype="float64",
    )


CHILD = textwrap.dedent(
    """
    import os, signal, sys
    sys.path.insert(0, {tests!r})
    from test_checkpoint import SETTINGS, data, network
    import neurocloud as nc
    from neurocloud.nn.training import Trainer

    directory, how, at_epoch = sys.argv[1], sys.argv[2], int(sys.argv[3])
    seen = {{"batches": 0}}

    class Mark(nc.callbacks.Callback):
        def on_epoch_end(self, model, epoch, logs):
            seen["epoch"], seen["batches"] = epoch, 0

    def hook(grads, weight):  # runs mid-epoch, between a batch's backward and its update
        seen["batches"] += 1
        running = seen.get("epoch", -1) + 2  # 1-based number of the epoch in progress
        if running == at_epoch and seen["batches"] == 2:
            os.kill(os.getpid(), getattr(signal, how))

    X, y = data()
    model = network()
    trainer = Trainer(optimizer=nc.optim.Adam(lr=0.01), gradient_hook=hook,
                      callbacks=[Mark(), nc.callbacks.ModelCheckpoint(directory)], **SETTINGS)
    history = trainer.fit(model, X, y, validation_split=0.2)
    print(history.stop_reason)
    """
)


def uninterrupted() -> tuple[nc.Sequential, nc.callbacks.History]:
    X, y = data()
    model = network()
    history = Trainer(optimizer=nc.optim.Adam(lr=0.01), **SETTINGS).fit(
        model, X, y, validation_split=0.2
    )
    return model, history


def run_child(tmp_path, how: str, at_epoch: int) -> subprocess.CompletedProcess:
    from pathlib import Path

    script = CHILD.format(tests=str(Path(__file__).parent))
    return subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "run"), how, str(at_epoch)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def resume(tmp_path) -> tuple[nc.Sequential, nc.callbacks.History, int]:
    X, y = data()
    ck = nc.callbacks.load_checkpoint(tmp_path / "run")
    history = ck.model.fit(
        X,
        y,
        optimizer=ck.optimizer,
        validation_split=0.2,
        initial_epoch=ck.initial_epoch,
        callbacks=[nc.callbacks.ModelCheckpoint(tmp_path / "run")],
        **SETTINGS,
    )
    return ck.model, history, ck.initial_epoch


@pytest.mark.parametrize(("how", "at_epoch"), [("SIGKILL", 5), ("SIGINT", 3)])
def test_a_killed_or_interrupted_run_resumed_equals_an_uninterrupted_one(tmp_path, how, at_epoch):
    done = run_child(tmp_path, how, at_epoch)
    if how == "SIGKILL":
        assert done.returncode == -signal.SIGKILL, done.stderr
    else:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"interrupted at epoch {at_epoch}"
    model, history, initial = resume(tmp_path)
    assert initial == at_epoch - 1  # the last epoch that finished; none half-written
    whole, whole_history = uninterrupted()
    assert np.array_equal(model.flat_parameters(), whole.flat_parameters())
    assert history.history["loss"] == whole_history.history["loss"][initial:]
    assert history.history["val_loss"] == whole_history.history["val_loss"][initial:]
    assert nc.callbacks.load_checkpoint(tmp_path / "run").initial_epoch == EPOCHS


def test_save_best_keeps_the_epoch_with_the_lowest_validation_loss(tmp_path):
    X, y = data()
    weights = []

    class Keep(nc.callbacks.Callback):
        def on_epoch_end(self, model, epoch, logs):
            weights.append(model.flat_parameters().copy())

    model = network()
    checkpoint = nc.callbacks.ModelCheckpoint(tmp_path, every=None, save_best=True)
    history = model.fit(
        X,
        y,
        optimizer=nc.optim.Adam(lr=0.05),
        validation_split=0.2,
        callbacks=[checkpoint, Keep()],
        **SETTINGS,
    )
    best = int(np.argmin(history.history["val_loss"]))
    ck = nc.callbacks.load_checkpoint(tmp_path, which="best")
    assert ck.initial_epoch == best + 1
    assert ck.logs["val_loss"] == min(history.history["val_loss"])
    assert np.array_equal(ck.model.flat_parameters(), weights[best])
    assert not (tmp_path / "last").exists()


def test_checkpoint_mistakes_are_named(tmp_path):
    with pytest.raises(ValueError, match="would never save"):
        nc.callbacks.ModelCheckpoint(tmp_path, every=None)
    with pytest.raises(ValueError, match=r"Expected every to be an integer >= 1"):
        nc.callbacks.ModelCheckpoint(tmp_path, every=0)
    with pytest.raises(FileNotFoundError, match="No checkpoint in"):
        nc.callbacks.load_checkpoint(tmp_path)
    nc.save(network(), tmp_path / "plain")
    with pytest.raises(ValueError, match="not a training checkpoint"):
        nc.callbacks.load_checkpoint(tmp_path / "plain")
    with pytest.raises(ValueError, match="Expected which to be 'last' or 'best'"):
        nc.callbacks.load_checkpoint(tmp_path, which="first")
