"""The planned inference pass computes, bit for bit, what the layers' own forward does."""

import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import neurocloud as nc
from neurocloud.nn import activations
from neurocloud.nn.inference import InferencePlan

ACTIVATIONS = activations.available()


def reference(model, X, logits=False):
    """The layers one by one, as ``Sequential.forward`` ran them before the plan."""
    out = np.asarray(X, dtype=model.dtype)
    fused = logits and model.layers[-1].activation.fuses_with_logits
    last = len(model.layers) - 1
    for i, layer in enumerate(model.layers):
        out = layer.forward(out, training=False, activate=not (fused and i == last))
    return out


def model_of(hidden, out_activation, dtype, use_bias, seed=0, extra=()):
    layers = [
        *extra,
        nc.layers.Dense(7, activation=hidden, use_bias=use_bias),
        nc.layers.Dense(3, activation=out_activation, use_bias=use_bias),
    ]
    model = nc.Sequential(layers, input_dim=4, seed=seed, dtype=dtype)
    # biases away from zero, so a bias that is skipped or added twice shows
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if "bias" in layer.params:
            layer.params["bias"][...] = rng.normal(size=layer.params["bias"].shape)
    return model


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("rows", [1, 2, 65])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_every_activation_matches_the_layers_bitwise(activation, rows, dtype):
    for out_activation in ("identity", "sigmoid", "softmax", activation):
        for use_bias in (True, False):
            model = model_of(activation, out_activation, dtype, use_bias)
            X = np.random.default_rng(rows).normal(scale=3, size=(rows, 4)).astype(dtype)
            for logits in (False, True):
                got = model.forward(X, logits=logits)
                want = reference(model, X, logits)
                assert got.dtype == want.dtype and got.shape == want.shape
                assert np.array_equal(got, want), (activation, out_activation, use_bias, logits)
            assert np.array_equal(model.predict(X), reference(model, X))


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 5),
    scale=st.sampled_from([1e-30, 1e-3, 1.0, 30.0, 1e20]),
    seed=st.integers(0, 2**16),
    activation=st.sampled_from(["sigmoid", "relu", "tanh", "softmax"]),
)
def test_extreme_inputs_match_the_layers_bitwise(rows, scale, seed, activation):
    model = model_of(activation, "softmax", "float32", True, seed=seed % 7)
    X = (np.random.default_rng(seed).normal(size=(rows, 4)) * scale).astype(np.float32)
    with np.errstate(all="ignore"):
        got, want = model.forward(X), reference(model, X)
    assert np.array_equal(got, want, equal_nan=True)


def test_a_nan_weight_makes_the_whole_softmax_row_nan_as_in_the_reference():
    model = model_of("relu", "softmax", "float32", True)
    model.layers[-1].params["kernel"][0, 1] = np.nan
    X = np.ones((1, 4), np.float32)
    got, want = model.forward(X), reference(model, X)
    assert np.isnan(want).all() and np.isnan(got).all()


def test_layers_without_a_plan_of_their_own_run_in_place():
    norm = nc.layers.Normalization(mean=[1.0, 0.0, -1.0, 2.0], scale=[2.0, 1.0, 0.5, 4.0])
    extra = (norm, nc.layers.Dropout(0.3), nc.layers.Activation("tanh"))
    model = model_of("elu", "sigmoid", "float64", True, extra=extra)
    X = np.random.default_rng(5).normal(size=(9, 4))
    assert np.array_equal(model.forward(X), reference(model, X))
    assert np.array_equal(model.predict(X[:1]), reference(model, X[:1]))


def test_dropout_alone_does_not_hand_back_the_callers_array():
    model = nc.Sequential([nc.layers.Dropout(0.5)], input_dim=3, seed=0)
    X = np.ones((2, 3), np.float32)
    out = model.predict(X)
    assert not np.shares_memory(out, X) and np.array_equal(out, X)


def test_weights_changed_in_place_are_seen_by_the_next_call():
    model = model_of("sigmoid", "identity", "float32", True)
    X = np.ones((1, 4), np.float32)
    before = model.predict(X)
    model.layers[0].params["kernel"][...] = 0.5
    model.layers[1].params["bias"][...] = 2.0
    after = model.predict(X)
    assert not np.array_equal(before, after)
    assert np.array_equal(after, reference(model, X))
    model.fit(np.ones((8, 4)), np.zeros((8, 3)), epochs=3, batch_size=4)
    assert np.array_equal(model.predict(X), reference(model, X))


def test_predict_of_lists_and_of_arrays_agree():
    model = model_of("relu", "softmax", "float32", True)
    X = np.random.default_rng(1).normal(size=(3, 4))
    as_list = model.predict(X.tolist())
    as_array = model.predict(X.astype(np.float32))
    as_f64 = model.predict(X)
    assert np.array_equal(as_list, as_array) and np.array_equal(as_f64, as_array)


@pytest.mark.parametrize(
    ("rows", "calls"),
    [(1, 300), (2400, 20)],  # 2,400 rows of 7 units: past SCRATCH_MIN_BYTES, each thread's buffers
)
def test_one_plan_runs_in_many_threads_at_once(rows, calls):
    model = model_of("sigmoid", "softmax", "float32", True)
    plan = InferencePlan(model.layers)
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(rows + i % 3, 4)).astype(np.float32) for i in range(8)]
    want = [reference(model, X) for X in inputs]
    start, wrong = threading.Barrier(8), []

    def worker(i):
        start.wait()
        for _ in range(calls):
            if not np.array_equal(plan.run(inputs[i]), want[i]):
                wrong.append(i)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


def test_wide_softmax_rows_match_the_layers_bitwise():
    # past 32 units the one-row softmax takes NumPy's reduction instead of Python's max
    for units in (32, 33, 500):
        model = nc.Sequential([nc.layers.Dense(units, activation="softmax")], input_dim=4, seed=1)
        X = np.random.default_rng(units).normal(scale=5, size=(1, 4)).astype(np.float32)
        assert np.array_equal(model.forward(X), reference(model, X))


@pytest.mark.parametrize("shape", [(4,), (2, 3, 4)])
def test_inputs_that_are_not_2d_run_the_layers_themselves(shape):
    model = model_of("sigmoid", "softmax", "float32", True)
    X = np.random.default_rng(2).normal(size=shape).astype(np.float32)
    for logits in (False, True):
        assert np.array_equal(model.forward(X, logits=logits), reference(model, X, logits))


def test_a_model_built_on_first_use_plans_its_pass():
    model = nc.Sequential([nc.layers.Dense(5, activation="relu"), nc.layers.Dense(2)], seed=3)
    X = np.random.default_rng(3).normal(size=(6, 4)).astype(np.float32)
    out = model.predict(X)
    assert model.built and np.array_equal(out, reference(model, X))


def test_loaded_set_and_pickled_weights_are_what_the_plan_runs():
    import pickle

    source, target = (
        model_of("tanh", "softmax", "float32", True, seed=4),
        model_of("tanh", "softmax", "float32", True, seed=5),
    )
    X = np.random.default_rng(4).normal(size=(3, 4)).astype(np.float32)
    want = reference(source, X)
    target.load_state_dict(source.state_dict())
    assert np.array_equal(target.predict(X), want)
    other = model_of("tanh", "softmax", "float32", True, seed=6)
    other.set_weights(source.get_weights())
    assert np.array_equal(other.predict(X), want)
    assert np.array_equal(pickle.loads(pickle.dumps(source)).predict(X), want)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", ["sigmoid", "relu", "identity"])
def test_one_unit_layers_match_the_layers_bitwise(hidden, dtype):
    # a one-unit layer adds its bias to a single row in Python floats, not NumPy's ufunc
    model = nc.Sequential(
        [
            nc.layers.Dense(1, activation=hidden),
            nc.layers.Dense(2, activation="tanh"),
            nc.layers.Dense(1),
        ],
        input_dim=3,
        seed=0,
        dtype=dtype,
    )
    rng = np.random.default_rng(7)
    huge = np.finfo(dtype).max / 2
    for bias in (0.3, -0.0, 0.0, huge, np.inf):
        for layer in model.layers:
            layer.params["bias"][...] = bias * rng.choice([-1, 1], size=layer.params["bias"].shape)
        for rows in (1, 2, 5):
            for scale in (1e-30, 1.0, 1e19, float(huge)):
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # overflow, in casts and in sums
                    X = (rng.normal(size=(rows, 3)) * scale).astype(dtype)
                    X[0, 0] = -0.0
                    got, want = model.forward(X), reference(model, X)
                assert got.dtype == want.dtype
                bits = f"u{got.itemsize}"  # nans, their signs and signed zeros included
                assert np.array_equal(got.view(bits), want.view(bits)), (bias, rows, scale)
    X = np.array([[np.nan, 1, 2]], dtype)
    with np.errstate(all="ignore"):
        assert np.isnan(model.forward(X)).all() and np.isnan(reference(model, X)).all()
    # an overflow of the sum is NumPy's own: np.errstate raises it
    single = nc.Sequential([nc.layers.Dense(1)], input_dim=1, seed=0, dtype=dtype)
    single.layers[0].params["kernel"][...] = 1
    single.layers[0].params["bias"][...] = np.finfo(dtype).max
    with np.errstate(over="raise"), pytest.raises(FloatingPointError):
        single.forward(np.full((1, 1), np.finfo(dtype).max, dtype))
