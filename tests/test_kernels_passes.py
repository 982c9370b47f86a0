"""The compiled element-wise passes (``nn.kernels.passes``): bias and ReLU in one pass, and
ReLU's backward mask in one, give NumPy's bits, special values included; layers, the
inference plan and ``fit`` take them only once loaded, with the same results."""

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn import activations, kernels
from neurocloud.nn.inference import InferencePlan

pytest.importorskip("numba")  # the test extra brings it, through shap


@pytest.fixture
def compiled(monkeypatch):
    monkeypatch.setenv("NEUROCLOUD_COMPILED", "always")
    assert kernels.adam(work=0) is not None  # an optimizer loads them; passes() never does
    passes = kernels.passes()
    assert passes is not None
    return passes


def _specials(dtype, shape, seed):
    """Values over many magnitudes with nans (both signs, another payload), infinities,
    signed zeros and subnormals scattered through them."""
    rng = np.random.default_rng(seed)
    a = (rng.normal(size=shape) * 10.0 ** rng.uniform(-3, 3, shape)).astype(dtype)
    flat = a.reshape(-1)
    bits = np.uint32 if dtype == np.float32 else np.uint64
    odd_nan = np.array([0x7FC00001 if dtype == np.float32 else 0x7FF8000000000001], bits)
    tiny = np.finfo(dtype).smallest_subnormal
    values = [np.nan, -np.nan, odd_nan.view(dtype)[0], np.inf, -np.inf, 0.0, -0.0, tiny, -tiny]
    for value in values:
        flat[rng.choice(flat.size, 5, replace=False)] = value
    return a


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 1024), (65, 300), (128, 17)])
def test_bias_relu_gives_numpys_bits(compiled, dtype, shape):
    z = _specials(dtype, shape, 1)
    bias = _specials(dtype, shape[1:], 2)
    z[0, :4], bias[:4] = -0.0, np.array([-0.0, 0.0, -0.0, np.nan], dtype)  # -0 + -0 = -0
    with np.errstate(all="ignore"):  # inf - inf
        expected = np.maximum(z + bias, np.zeros(shape[1], dtype))
    out = z.copy()
    compiled.bias_relu(out, bias)
    assert out.tobytes() == expected.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_gives_numpys_bits(compiled, dtype):
    grad, a = _specials(dtype, (97, 33), 3), _specials(dtype, (97, 33), 4)
    with np.errstate(all="ignore"):  # inf * 0
        expected = np.multiply(grad, a > 0)
    out = grad.copy()
    compiled.relu_backward(out, a, dtype(0), dtype(1))
    assert out.tobytes() == expected.tobytes()


def test_the_activation_takes_the_pass_only_where_it_fits(compiled, monkeypatch):
    calls = []
    monkeypatch.setattr(kernels, "_passes", _Counting(compiled, calls))
    relu = activations.get("relu")
    z = np.ones((64, 64), np.float32)
    relu.forward_biased(z, np.ones(64, np.float32))
    relu.forward_biased(np.ones((2, 8), np.float32), np.ones(8, np.float32))  # too small
    relu.forward_biased(np.ones((64, 64)), np.ones(64, np.float32))  # mixed dtypes
    relu.forward_biased(np.ones((64, 128), np.float32)[:, ::2], np.ones(64, np.float32))
    with pytest.raises(ValueError, match="broadcast"):  # NumPy's error, not a stray write
        relu.forward_biased(np.ones((64, 64), np.float32), np.ones(65, np.float32))
    relu.backward(np.ones((64, 64), np.float32), z, z)
    relu.backward(np.ones((64, 64), np.float32).T, z, z)  # not C-contiguous
    assert calls == ["bias_relu", "relu_backward"]
    assert not kernels.bias_relu(np.ones((64, 64), np.float32), np.ones(65, np.float32))
    assert calls == ["bias_relu", "relu_backward"]
    monkeypatch.setenv("NEUROCLOUD_COMPILED", "0")
    relu.forward_biased(z, np.ones(64, np.float32))
    assert calls == ["bias_relu", "relu_backward"]


class _Counting:
    def __init__(self, passes, calls):
        self._passes, self._calls = passes, calls

    def __getattr__(self, name):
        self._calls.append(name)
        return getattr(self._passes, name)


def _model(dtype=np.float32):
    return nc.Sequential(
        [
            nc.layers.Dense(96, activation="relu"),
            nc.layers.Dense(64, activation="relu", use_bias=False),
            nc.layers.Dense(3, activation="softmax"),
        ],
        input_dim=20,
        seed=0,
        dtype=dtype,
    )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_and_predict_with_the_passes_equal_numpys(dtype, monkeypatch):
    rng = np.random.default_rng(8)
    X = rng.normal(size=(300, 20)).astype(dtype)
    X[5, 3] = -0.0
    y = rng.integers(0, 3, 300)
    results = []
    for setting in ("always", "0"):
        monkeypatch.setenv("NEUROCLOUD_COMPILED", setting)
        kernels.adam(work=0)
        model = _model(dtype)
        model.fit(X, y, loss="sparse_categorical_crossentropy", epochs=3, batch_size=64)
        tape = model.record(X, training=True)
        results.append(
            (
                model.flat_parameters().copy(),
                model.predict(X),
                model.forward(X),
                tape.output,
                model.backward(np.ones_like(tape.output), tape),
                InferencePlan(model.layers).run_blocks(X, 128, 3),
            )
        )
    for fast, reference in zip(*results):
        assert fast.tobytes() == reference.tobytes()


def test_the_plan_sees_bias_updates_on_the_fused_path(compiled):
    model = _model()
    X = np.random.default_rng(9).normal(size=(64, 20)).astype(np.float32)
    plan = InferencePlan(model.layers)
    before = plan.run(X)
    model.layers[0].params["bias"] += 1.0
    after = plan.run(X)
    assert not np.array_equal(before, after)
    assert after.tobytes() == model.forward(X).tobytes()


def test_a_relu_subclass_keeps_its_own_forward(compiled):
    class Capped(activations.ReLU):
        def forward(self, z, out=None):
            return np.minimum(np.maximum(z, 0, out=out), 6.0, out=out)

    z = np.full((64, 64), 10.0, np.float32)
    out = Capped().forward_biased(z, np.ones(64, np.float32))
    assert np.all(out == 6.0)


def test_fresh_gradient_views_each_step_equal_numpys(monkeypatch):
    rng = np.random.default_rng(12)
    start = rng.normal(size=300).astype(np.float32)
    grads = [rng.normal(size=(30, 10)).astype(np.float32) for _ in range(6)]
    results = []
    for setting in ("always", "0"):
        monkeypatch.setenv("NEUROCLOUD_COMPILED", setting)
        w, opt = start.copy(), nc.optim.Adam(lr=0.01)
        for g in grads:
            opt.step([w], [g.copy().reshape(-1)])  # a new view, freed after the step
        results.append(w)
    assert results[0].tobytes() == results[1].tobytes()
