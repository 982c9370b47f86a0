"""``nn.kernels``: the compiled one-pass Adam gives the NumPy reference's bits, and nothing
imports numba before a large update needs it."""

import os
import subprocess
import sys

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn import kernels, optim

pytest.importorskip("numba")  # the test extra brings it, through shap


def _run(make, start, grads, compiled, monkeypatch):
    monkeypatch.setenv("NEUROCLOUD_COMPILED", "always" if compiled else "0")
    w, opt = start.copy(), make()
    for g in grads:
        opt.step([w], [g.copy()])
    return w, opt.state_dict()


@pytest.mark.parametrize("shape", [(500, 300), (13,), (96, 100)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "make",
    [
        lambda: nc.optim.Adam(lr=0.01),
        lambda: nc.optim.Adam(lr=0.01, weight_decay=0.1),
        lambda: nc.optim.AdamW(lr=0.01),
        lambda: nc.optim.Adam(lr=0.3, beta1=0.5, beta2=0.6, eps=1e-3),
    ],
)
def test_compiled_adam_equals_the_numpy_reference_bitwise(make, dtype, shape, monkeypatch):
    assert kernels.adam(work=kernels.COMPILE_AFTER) is not None
    rng = np.random.default_rng(6)
    start = rng.normal(size=shape).astype(dtype)  # 2-D: blocks of rows; 1-D: one block
    # gradients over many magnitudes, zeros and signed zeros included
    grads = [
        (rng.normal(size=start.shape) * 10.0 ** rng.uniform(-8, 4, start.shape)).astype(dtype)
        for _ in range(4)
    ]
    grads[1][:7] = 0.0
    grads[2][:7] = -0.0
    w_ref, state_ref = _run(make, start, grads, False, monkeypatch)
    w_fast, state_fast = _run(make, start, grads, True, monkeypatch)
    assert np.array_equal(w_ref, w_fast)
    assert state_ref.keys() == state_fast.keys()
    for key in state_ref:
        assert np.array_equal(state_ref[key], state_fast[key]), key


def test_once_loaded_the_kernel_runs_updates_of_every_size(monkeypatch):
    kernel, calls = kernels.adam(work=kernels.COMPILE_AFTER), []
    assert kernel is not None

    def counted(*args):
        calls.append(args[0].size)
        kernel(*args)

    monkeypatch.setenv("NEUROCLOUD_COMPILED", "always")
    monkeypatch.setattr(kernels, "_adam", counted)
    for size in (1, 13, 9610):
        nc.optim.Adam().step([np.zeros(size, np.float32)], [np.ones(size, np.float32)])
    assert calls == [1, 13, 9610]


def test_a_read_only_gradient_gets_numpys_error_not_the_kernels(monkeypatch):
    monkeypatch.setenv("NEUROCLOUD_COMPILED", "always")
    grad = np.ones(13, np.float32)
    grad.flags.writeable = False
    assert not kernels.accepts(grad)
    with pytest.raises(ValueError, match="read-only"):
        nc.optim.Adam().step([np.zeros(13, np.float32)], [grad])


def test_a_fit_with_the_kernel_equals_one_without(monkeypatch):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(256, 300)).astype(np.float32)
    y = rng.integers(0, 4, 256)
    weights = []
    for compiled in ("always", "0"):
        monkeypatch.setenv("NEUROCLOUD_COMPILED", compiled)
        model = nc.Sequential(
            [nc.layers.Dense(512, activation="relu"), nc.layers.Dense(4, activation="softmax")],
            input_dim=300,
            seed=0,
        )
        assert model.count_params() >= optim.PARALLEL_MIN
        model.fit(X, y, loss="sparse_categorical_crossentropy", epochs=2, batch_size=64)
        weights.append(model.flat_parameters().copy())
    assert np.array_equal(*weights)


def test_import_small_models_and_short_runs_never_import_numba():
    code = (
        "import sys, numpy as np, neurocloud as nc\n"
        "m = nc.Sequential([nc.layers.Dense(4)], input_dim=3, seed=0)\n"
        "m.fit(np.ones((8, 3)), np.ones((8, 4)), epochs=2)\n"
        "m.predict(np.ones((2, 3)))\n"
        "big = nc.Sequential([nc.layers.Dense(512)], input_dim=300, seed=0)\n"
        "big.fit(np.ones((64, 300)), np.ones((64, 512)), epochs=2, batch_size=32)\n"
        "relu = nc.Sequential([nc.layers.Dense(512, activation='relu')], input_dim=300, seed=0)\n"
        "relu.fit(np.ones((64, 300)), np.ones((64, 512)), epochs=2, batch_size=32)\n"
        "relu.predict(np.ones((4096, 300)))\n"
        "print('numba' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("NEUROCLOUD_COMPILED", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_a_process_that_only_predicts_never_imports_numba_even_with_always():
    code = (
        "import sys, numpy as np, neurocloud as nc\n"
        "m = nc.Sequential([nc.layers.Dense(512, activation='relu'), nc.layers.Dense(3)],\n"
        "                  input_dim=300, seed=0)\n"
        "m.predict(np.ones((4096, 300)))\n"
        "print('numba' in sys.modules)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "NEUROCLOUD_COMPILED": "always"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_auto_mode_loads_the_kernel_once_the_work_pays_for_it(monkeypatch):
    monkeypatch.delenv("NEUROCLOUD_COMPILED", raising=False)
    assert kernels.mode() == "auto"
    assert kernels.adam(work=kernels.COMPILE_AFTER) is not None


def test_the_switch_turns_the_kernel_off(monkeypatch):
    monkeypatch.setenv("NEUROCLOUD_COMPILED", "0")
    assert kernels.adam(work=kernels.COMPILE_AFTER) is None
    monkeypatch.setenv("NEUROCLOUD_COMPILED", "always")
    assert kernels.adam(work=0) is not None


def test_a_kernel_that_fails_to_build_falls_back_to_numpy_once(monkeypatch):
    import builtins

    real_import, calls = builtins.__import__, []

    def failing(name, *args, **kwargs):
        if name == "neurocloud.nn.kernels_numba":
            calls.append(name)
            raise RuntimeError("cannot cache function 'adam_update': no locator available")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(kernels, "_tried", False)
    monkeypatch.setattr(kernels, "_adam", None)
    monkeypatch.setattr(kernels, "_passes", None)
    monkeypatch.setattr(builtins, "__import__", failing)
    monkeypatch.setenv("NEUROCLOUD_COMPILED", "always")
    with pytest.warns(RuntimeWarning, match="no locator available"):
        assert kernels.adam(work=0) is None
    assert kernels.adam(work=0) is None and calls == ["neurocloud.nn.kernels_numba"]
    assert kernels.passes() is None


def test_the_one_call_step_takes_lists_of_dtypes_and_follows_new_arrays(monkeypatch):
    kernel, calls = kernels.adam(work=kernels.COMPILE_AFTER), []
    assert kernel is not None

    def counted(*args):
        calls.append(args[0].size)
        kernel(*args)

    rng = np.random.default_rng(11)
    # (300, 400) is two blocks for the block path: one call each step says it was not taken
    starts = [rng.normal(size=(300, 400)).astype(np.float32), rng.normal(size=(50, 3))]
    grads = [[rng.normal(size=s.shape).astype(s.dtype) for s in starts] for _ in range(4)]
    results = []
    for compiled in ("always", "0"):
        monkeypatch.setenv("NEUROCLOUD_COMPILED", compiled)
        monkeypatch.setattr(kernels, "_adam", counted)
        opt = nc.optim.Adam(lr=0.01, weight_decay=0.1)
        params = [s.copy() for s in starts]
        buffers = [np.empty_like(s) for s in starts]  # the same arrays each step: cached
        for g in grads[:3]:
            for buffer, value in zip(buffers, g):
                np.copyto(buffer, value)
            opt.step(params, buffers)
        params = [p.copy() for p in params]  # new arrays, same state: the views follow
        opt.step(params, [a.copy() for a in grads[3]])
        results.append((params, opt.state_dict()))
    assert calls == [120_000, 150] * 4  # all from the compiled run, one call a parameter
    (fast, fast_state), (reference, reference_state) = results
    assert all(a.tobytes() == b.tobytes() for a, b in zip(fast, reference))
    assert all(fast_state[k].tobytes() == reference_state[k].tobytes() for k in fast_state)
