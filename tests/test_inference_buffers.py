"""The inference plan's reused per-thread buffers: the same bits, and never a result that a
later call overwrites."""

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn import activations, inference


def reference(model, X, logits=False):
    """The layers one by one (as tests/test_inference_plan.py's reference)."""
    out = np.asarray(X, dtype=model.dtype)
    fused = logits and model.layers[-1].activation.fuses_with_logits
    for i, layer in enumerate(model.layers):
        last = i == len(model.layers) - 1
        out = layer.forward(out, training=False, activate=not (fused and last))
    return out


#: rows whose 64-unit float32 products (76.8 KB) are past inference.SCRATCH_MIN_BYTES
ROWS = 300


def mlp(hidden, dtype="float32", seed=0, out="softmax", units=64, outputs=5):
    layers = [nc.layers.Dense(units, activation=act) for act in hidden]
    model = nc.Sequential(
        [*layers, nc.layers.Dense(outputs, activation=out)], input_dim=6, seed=seed, dtype=dtype
    )
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        layer.params["bias"][...] = rng.normal(size=layer.params["bias"].shape)
    return model


def buffers():
    return list((getattr(inference._scratch, "buffers", None) or {}).values())


def data(rows, dtype="float32", seed=1):
    return np.random.default_rng(seed).normal(scale=2, size=(rows, 6)).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("hidden", [("relu",), ("relu", "sigmoid"), ("sigmoid", "relu", "relu")])
def test_large_products_go_to_the_buffers_and_give_the_layers_bits(hidden, dtype):
    inference._scratch.__dict__.clear()
    model = mlp(hidden, dtype)
    X = data(ROWS, dtype)
    for logits in (False, True):
        got = model.forward(X, logits=logits)
        assert np.array_equal(got, reference(model, X, logits))
        assert not any(np.shares_memory(got, b) for b in buffers())
    assert np.array_equal(model.predict(X), reference(model, X))
    # the buffers did take the hidden products (the test would pass without them otherwise)
    used = [b for b in buffers() if b.size >= ROWS * 64]
    assert used and all(b.dtype == np.dtype(dtype) for b in used)


def test_a_result_is_not_overwritten_by_later_calls_of_any_model():
    # outputs as wide as the hidden layers: the last product is large enough for a buffer
    first = mlp(("relu", "relu"), seed=0, outputs=64)
    second = mlp(("sigmoid", "relu"), seed=1, outputs=64)
    X1, X2 = data(ROWS, seed=1), data(ROWS - 7, seed=2)  # fewer rows: the same buffers
    kept = first.predict(X1)
    want = reference(first, X1)
    for model in (first, second, first):
        for X in (X2, X1[::-1].copy()):
            model.predict(X)
            model.forward(X, logits=True)
    assert np.array_equal(kept, want)


def test_products_read_by_other_code_are_new_arrays():
    # elu has no planned form and dropout is not a Dense product: what they see is their own
    extra_model = nc.Sequential(
        [
            nc.layers.Dense(64, activation="relu"),
            nc.layers.Dropout(0.2),
            nc.layers.Dense(64, activation="elu"),
            nc.layers.Dense(64, activation="sigmoid"),
            nc.layers.Dense(5),
        ],
        input_dim=6,
        seed=3,
    )
    seen = []
    elu = extra_model.layers[2].activation
    original = elu.forward

    def spy(z, out=None):
        seen.append(z)
        return original(z, out=out)

    elu.forward = spy
    X = data(ROWS)
    assert np.array_equal(extra_model.predict(X), reference(extra_model, X))
    assert seen and not any(np.shares_memory(z, b) for z in seen for b in buffers())


def test_products_past_the_largest_buffer_are_allocated(monkeypatch):
    monkeypatch.setattr(inference, "SCRATCH_MAX_BYTES", 100_000)
    inference._scratch.__dict__.clear()
    model = mlp(("relu", "relu"))
    X = data(1000)  # 256 KB products
    assert np.array_equal(model.forward(X), reference(model, X))
    assert all(b.size * b.itemsize <= 100_000 for b in buffers())


def test_blocks_and_odd_sizes_use_the_buffers_with_the_same_bits():
    # (a block's rows are compared with the layers on that block: a float32 product's bits
    # may depend on how many rows it has, buffers or not)
    model = mlp(("relu", "sigmoid"))
    X = data(2000, seed=4)
    for rows in (256, 300, 999, 2000):
        want = np.concatenate([reference(model, X[i : i + rows]) for i in range(0, 2000, rows)])
        assert np.array_equal(model.predict(X, batch_size=rows), want)
    for rows in (255, 256, 257, 1000, 700):  # the buffers grow and are taken by fewer rows
        assert np.array_equal(model.predict(X[:rows]), reference(model, X[:rows]))


def test_every_product_of_a_predict_block_fits_a_buffer():
    from neurocloud.nn import sequential

    assert inference.SCRATCH_MAX_BYTES >= sequential.PREDICT_BLOCK_BYTES
    model = mlp(("relu", "relu"), units=2048)  # blocks of 512 rows: 4 MiB products
    inference._scratch.__dict__.clear()
    X = data(1500, seed=5)
    want = np.concatenate([reference(model, X[i : i + 512]) for i in range(0, 1500, 512)])
    assert np.array_equal(model.predict(X), want)
    assert max(b.size * b.itemsize for b in buffers()) == 512 * 2048 * 4


def test_models_of_both_dtypes_keep_their_own_buffers():
    inference._scratch.__dict__.clear()
    single, double = mlp(("relu", "relu"), "float32"), mlp(("relu", "relu"), "float64")
    X32, X64 = data(ROWS), data(ROWS, "float64")
    for _ in range(2):
        assert np.array_equal(single.predict(X32), reference(single, X32))
        assert np.array_equal(double.predict(X64), reference(double, X64))
    kept = inference._scratch.buffers
    assert {key[1] for key in kept} == {np.dtype("float32"), np.dtype("float64")}
    before = {key: id(b) for key, b in kept.items()}
    single.predict(X32), double.predict(X64)
    assert {key: id(b) for key, b in inference._scratch.buffers.items()} == before  # reused


def test_a_predict_inside_a_custom_activation_sees_and_leaves_the_right_bits():
    inner = mlp(("relu", "sigmoid"), seed=5)
    inner_X = data(ROWS, seed=6)
    inner_want = reference(inner, inner_X)
    calls = []

    class Nested(activations.Activation):
        name = "nested"

        def forward(self, z, out=None):
            calls.append(np.array_equal(inner.predict(inner_X), inner_want))
            return np.tanh(z, out=out)

    outer = mlp(("relu", "relu", "relu"), seed=7)
    outer.layers[1].activation = Nested()
    outer.build(6)  # plans again, with the new activation
    X = data(ROWS, seed=8)
    assert np.array_equal(outer.predict(X), reference(outer, X))
    assert calls and all(calls)  # the inner predicts ran inside the outer one, and were right
