"""nn/callbacks.py: History, EarlyStopping and the progress bar."""

from __future__ import annotations

import numpy as np
import pytest

import neurocloud as nc


def model() -> nc.Sequential:
    return nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0, dtype="float64")


def test_history_records_logs_and_summarises_them():
    history = nc.callbacks.History()
    for epoch, loss in enumerate([3.0, 1.0, 2.0]):
        history.on_epoch_end(None, epoch, {"loss": loss})
    assert history.epoch == [0, 1, 2]
    assert history.summary() == {"epochs": 3, "loss": {"first": 3.0, "last": 2.0, "best": 1.0}}
    assert not hasattr(history, "params")


def test_early_stopping_waits_patience_epochs_and_restores_the_best():
    m, stop = model(), nc.callbacks.EarlyStopping(monitor="loss", patience=1)
    stop.on_train_begin(m)
    for epoch, loss in enumerate([2.0, 1.0, 1.5, 1.2]):
        m.flat_parameters()[...] = epoch
        stop.on_epoch_end(m, epoch, {"loss": loss})
        if m.stop_training:
            break
    assert epoch == 3 and stop.stopped_epoch == 3
    stop.on_train_end(m)
    assert (m.flat_parameters() == 1).all()
    assert stop.stop_reason == (
        "early stopping: loss did not improve by more than min_delta=0.0 for 1 epochs; "
        "restored best weights from epoch 2"
    )


def test_early_stopping_settings_and_monitor_are_checked():
    with pytest.raises(ValueError, match=r"Expected patience to be an integer >= 0"):
        nc.callbacks.EarlyStopping(patience=-1)
    with pytest.raises(ValueError, match=r"Expected min_delta to be a number >= 0"):
        nc.callbacks.EarlyStopping(min_delta=-0.1)
    stop = nc.callbacks.EarlyStopping(monitor="accuracy")
    stop.on_train_begin(model())
    with pytest.raises(ValueError, match="monitors 'accuracy', which training does not log"):
        stop.on_epoch_end(model(), 0, {"loss": 1.0})


def test_callbacks_see_the_trainer_running_them():
    seen = {}

    class Spy(nc.callbacks.Callback):
        def on_train_begin(self, m):
            seen["optimizer"] = self.trainer.optimizer

    opt = nc.optim.SGD(lr=0.1)
    model().fit(np.zeros((2, 1)), np.zeros(2), optimizer=opt, callbacks=[Spy()])
    assert seen["optimizer"] is opt


def test_the_progress_bar_counts_epochs_from_the_initial_one(capsys):
    bar = nc.callbacks.ProgressBar(5, force=True, initial=2)
    bar.on_train_begin(None)
    bar.on_epoch_end(None, 2, {"loss": 0.5})
    assert bar.bar.n == 3
    bar.on_train_end(None)
