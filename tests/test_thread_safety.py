"""One model shared by threads: predict, explain, recorded passes and fit, against serial runs.

Inference records nothing on the model and each training pass keeps its own tape, so any
interleaving of these calls gives exactly what the same calls give one after another.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import neurocloud as nc
from neurocloud.serve.explanation_requests import explain_batch

RNG = np.random.default_rng(0)
DATA = [RNG.normal(size=(n, 4)).astype(np.float32) for n in (1, 7, 33, 64)]
LABELS = RNG.integers(0, 3, 64)


def network(seed: int = 0) -> nc.Sequential:
    return nc.Sequential(
        [
            nc.layers.Normalization(mean=[0.1, 0.0, -0.1, 0.2], scale=[1.0, 2.0, 0.5, 1.0]),
            nc.layers.Dense(16, activation="relu"),
            nc.layers.Dense(8, activation="tanh"),
            nc.layers.Dense(3, activation="softmax"),
        ],
        input_dim=4,
        seed=seed,
    )


SHARED = network()


def op_predict(i: int) -> np.ndarray:
    return SHARED.predict(DATA[i])


def op_explain(i: int) -> np.ndarray:
    return explain_batch(SHARED, DATA[i], {"method": "ig", "steps": 8})["attributions"]


def op_input_gradient(i: int) -> np.ndarray:
    """The reentrant form: a tape of its own, input gradients only."""
    tape = SHARED.record(DATA[i], training=True, logits=True)
    grad = np.ones_like(tape.output)
    return SHARED.backward(grad, tape, parameter_grads=False)


def op_fit(i: int) -> np.ndarray:
    model = network(seed=i)
    model.fit(
        DATA[3],
        LABELS,
        loss="sparse_categorical_crossentropy",
        optimizer="adam",
        epochs=2,
        batch_size=16,
    )
    return model.flat_parameters().copy()


def op_by_hand_step(i: int) -> np.ndarray:
    """The article's three steps on the shared model (one thread only: not reentrant);
    gradients only, the weights stay as they are."""
    out = SHARED.forward(DATA[i], training=True)
    SHARED.backward(nc.losses.get("mse").gradient(np.zeros_like(out), out))
    return SHARED.flat_gradients().copy()


OPS = {
    "predict": op_predict,
    "explain": op_explain,
    "input_gradient": op_input_gradient,
    "fit": op_fit,
}
SERIAL = {(name, i): op(i) for name, op in OPS.items() for i in range(len(DATA))}
SERIAL.update({("by_hand", i): op_by_hand_step(i) for i in range(len(DATA))})

calls = st.tuples(st.sampled_from(sorted(OPS)), st.integers(0, len(DATA) - 1))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    others=st.lists(st.lists(calls, min_size=1, max_size=6), min_size=2, max_size=3),
    by_hand=st.lists(st.integers(0, len(DATA) - 1), min_size=1, max_size=6),
)
def test_concurrent_calls_equal_serial_results(others, by_hand):
    plans = [[("by_hand", i) for i in by_hand], *others]
    start = threading.Barrier(len(plans))
    results: list[list[tuple[tuple[str, int], np.ndarray]]] = [[] for _ in plans]
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            start.wait()
            for name, i in plans[k]:
                op = op_by_hand_step if name == "by_hand" else OPS[name]
                results[k].append(((name, i), op(i)))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(plans))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for done in results:
        for key, value in done:
            np.testing.assert_array_equal(value, SERIAL[key], err_msg=str(key))


def test_inference_records_nothing_on_the_model():
    model = network()
    model.forward(DATA[1], training=True)
    before = [dict(vars(layer)) for layer in model.layers], dict(vars(model))
    model.predict(DATA[2])
    model.forward(DATA[2], logits=True)
    after = [dict(vars(layer)) for layer in model.layers], dict(vars(model))
    for old, new in zip([*before[0], before[1]], [*after[0], after[1]]):
        assert old.keys() == new.keys()
        assert all(old[k] is new[k] for k in old if k not in ("_ones", "_zeros"))


def test_backward_after_a_logits_forward_gives_the_logits_input_gradient():
    model = network()
    linear = nc.Sequential.from_config(model.get_config())
    linear.layers[-1].activation = nc.activations.get("identity")  # same weights, no softmax
    linear.load_state_dict(model.state_dict())
    X = DATA[2]
    grad = RNG.normal(size=(len(X), 3)).astype(np.float32)
    logits = model.forward(X, training=True, logits=True)
    expected_out = linear.forward(X, training=True)
    np.testing.assert_allclose(logits, expected_out, rtol=1e-6)
    np.testing.assert_allclose(model.backward(grad), linear.backward(grad), rtol=1e-5, atol=1e-6)


def test_backward_without_a_recorded_pass_or_with_the_wrong_logits_is_refused():
    model = network()
    model.predict(DATA[0])
    with pytest.raises(RuntimeError, match="recorded forward pass"):
        model.backward(np.ones((1, 3)))
    tape = model.record(DATA[1], logits=True)
    with pytest.raises(ValueError, match="Expected logits=True"):
        model.backward(np.ones((7, 3)), tape, logits=False)
    with pytest.raises(ValueError, match=r"Expected grad of shape \(7, 3\)"):
        model.backward(np.ones((6, 3)), tape)
    with pytest.raises(TypeError, match="Expected tape"):
        model.backward(np.ones((7, 3)), True)
