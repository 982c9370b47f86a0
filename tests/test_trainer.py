"""The training loop: initial_epoch, stop reasons, the gradient hook, Ctrl-C."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn.training import Trainer

RNG = np.random.default_rng(0)
X = RNG.normal(size=(96, 3))
Y = X @ np.array([1.0, -2.0, 0.5]) + 0.1


def network(seed: int = 1, dropout: bool = True) -> nc.Sequential:
    layers = [nc.layers.Dense(8, activation="tanh")]
    if dropout:
        layers.append(nc.layers.Dropout(0.25))
    return nc.Sequential([*layers, nc.layers.Dense(1)], input_dim=3, seed=seed, dtype="float64")


def test_initial_epoch_continues_numbering_budget_and_the_same_run():
    whole, split = network(), network()
    opt_whole, opt_split = nc.optim.Adam(lr=0.01), nc.optim.Adam(lr=0.01)
    h_whole = whole.fit(X, Y, optimizer=opt_whole, epochs=5, batch_size=16)
    split.fit(X, Y, optimizer=opt_split, epochs=2, batch_size=16)
    h_rest = split.fit(X, Y, optimizer=opt_split, epochs=5, batch_size=16, initial_epoch=2)
    assert h_rest.epoch == [2, 3, 4]
    assert h_rest.history["loss"] == h_whole.history["loss"][2:]
    assert np.array_equal(split.flat_parameters(), whole.flat_parameters())
    assert h_rest.stop_reason == "reached max epochs (5)"


def test_initial_epoch_at_the_budget_trains_nothing():
    model = network()
    before = model.flat_parameters().copy()
    history = model.fit(X, Y, epochs=3, initial_epoch=3)
    assert history.epoch == [] and np.array_equal(model.flat_parameters(), before)
    assert history.stop_reason == "reached max epochs (3)"
    with pytest.raises(ValueError, match=r"Expected initial_epoch to be an integer >= 0"):
        model.fit(X, Y, epochs=3, initial_epoch=-1)


def test_stop_reason_names_early_stopping_and_the_restored_epoch():
    model = network(dropout=False)
    stop = nc.callbacks.EarlyStopping(patience=2)
    # lr so large that the validation loss soon stops improving
    history = model.fit(
        X, Y, optimizer=nc.optim.SGD(lr=0.3), epochs=200, validation_split=0.25, callbacks=[stop]
    )
    best = int(np.argmin(history.history["val_loss"])) + 1
    assert history.stop_reason == (
        f"early stopping: val_loss did not improve by more than min_delta=0.0 for 2 epochs; "
        f"restored best weights from epoch {best}"
    )


def test_stop_reason_names_a_loss_that_became_nan():
    model = network(dropout=False)
    with pytest.warns(RuntimeWarning, match="the loss became"), np.errstate(all="ignore"):
        history = model.fit(X, Y * 1e30, optimizer=nc.optim.SGD(lr=1e10), epochs=50)
    epoch = len(history.epoch)
    assert history.stop_reason in (
        f"loss became nan at epoch {epoch}",
        f"loss became inf at epoch {epoch}",
    )


def test_stop_reason_of_the_estimators_tolerance_rule():
    from neurocloud.sklearn import NeuralNetRegressor

    est = NeuralNetRegressor((4,), max_epochs=500, tol=1e-1, n_iter_no_change=2, random_state=0)
    est.fit(X, Y)
    assert est.model_.history.stop_reason == (
        "converged: training loss improved by less than tol=0.1 for 2 epochs"
    )


def test_stop_reason_of_lbfgs_converging_before_its_budget():
    model = nc.Sequential([nc.layers.Dense(1)], input_dim=3, seed=0, dtype="float64")
    history = model.fit(X, Y, optimizer="lbfgs", epochs=500)
    assert len(history.epoch) < 500
    assert history.stop_reason.startswith("converged: lbfgs met its tolerance tol=1e-09 (")


def test_gradient_hook_sees_each_batch_before_the_update_and_may_change_it():
    model = network(dropout=False)
    calls = []

    def hook(grads: np.ndarray, weight: float) -> None:
        assert grads is model.flat_gradients()
        calls.append((weight, model.flat_parameters().copy()))
        grads[...] = 0.0  # e.g. an all-reduce; here: no update at all

    before = model.flat_parameters().copy()
    w = np.linspace(0.5, 1.5, len(X))
    Trainer(
        loss="mse",
        optimizer=nc.optim.SGD(lr=0.1),
        epochs=2,
        batch_size=40,
        shuffle=False,
        gradient_hook=hook,
    ).fit(model, X, Y, sample_weight=w)
    assert [c[0] for c in calls] == pytest.approx([w[:40].sum(), w[40:80].sum(), w[80:].sum()] * 2)
    assert all(np.array_equal(c[1], before) for c in calls)
    assert np.array_equal(model.flat_parameters(), before)


def test_gradient_hook_gets_row_counts_without_sample_weights():
    model, weights = network(dropout=False), []
    model_fit = Trainer(epochs=1, batch_size=50, gradient_hook=lambda g, w: weights.append(w))
    model_fit.fit(model, X, Y)
    assert weights == [50, 46]


def test_fit_keeps_its_public_signature():
    import inspect

    names = list(inspect.signature(nc.Sequential.fit).parameters)
    assert names == [
        "self", "X", "y", "loss", "optimizer", "epochs", "batch_size", "shuffle",
        "validation_split", "validation_data", "callbacks", "verbose", "l2",
        "sample_weight", "initial_epoch",
    ]  # fmt: skip


def test_the_model_no_longer_carries_the_loop():
    model = network()
    for name in ("train_step", "l2_penalty", "evaluate_loss", "fused_output"):
        assert not hasattr(model, name), name
    assert model.evaluate(X, Y) == pytest.approx(float(np.mean((model.predict(X)[:, 0] - Y) ** 2)))


#: a child that sends itself SIGINT at the end of epoch 3; ``{fit}`` trains and reports
CHILD = """
import os, signal
import numpy as np, neurocloud as nc

class CtrlC(nc.callbacks.Callback):
    def on_epoch_end(self, model, epoch, logs):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)

class Ended(nc.callbacks.Callback):
    def on_train_end(self, model):
        print("on_train_end ran")

def fit():
    X = np.random.default_rng(0).normal(size=(64, 3))
    model = nc.Sequential([nc.layers.Dense(4), nc.layers.Dense(1)], input_dim=3, seed=0)
    history = None
    try:
        history = model.fit(X, X.sum(1), epochs=100, batch_size=8, callbacks=[CtrlC(), Ended()])
    except KeyboardInterrupt:
        print("KeyboardInterrupt")
    return model, history
"""

CTRL_C = (
    CHILD
    + """
model, history = fit()
print(history.stop_reason, len(history.epoch), model.history is history)
"""
)

#: the program has a SIGINT handler of its own, which fit leaves alone
OWN_HANDLER = (
    CHILD
    + """
def own(signum, frame):
    raise KeyboardInterrupt

signal.signal(signal.SIGINT, own)
model, history = fit()
print(history, model.history.stop_reason)
"""
)


def child(script: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_ctrl_c_stops_fit_cleanly_after_the_epoch_it_is_in():
    assert child(CTRL_C) == ["on_train_end ran", "interrupted at epoch 3 3 True"]


def test_an_interrupt_that_gets_through_runs_on_train_end_and_is_reraised():
    assert child(OWN_HANDLER) == [
        "on_train_end ran",
        "KeyboardInterrupt",
        "None interrupted at epoch 3",
    ]
