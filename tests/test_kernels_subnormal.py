"""``kernels_numba.adam_float32``: first moments decaying through the subnormal numbers take
a path without the processor's slow one, and every bit stays the NumPy reference's."""

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn import kernels

pytest.importorskip("numba")  # the test extra brings it, through shap

compiled = pytest.importorskip("neurocloud.nn.kernels_numba")

TINY = np.finfo(np.float32).tiny


def _reference(p, g, m, v, scalars):
    b1, b2, scale, shift = (float(s) for s in scalars)
    opt = nc.optim.Adam(beta1=b1, beta2=b2)
    with np.errstate(all="ignore"):
        opt._update(p, g, {"m": m, "v": v}, np.empty_like(p), (scale, shift, None))


def _numbers(rng, n):
    """float32 numbers of every kind: any bits (nan and inf too), subnormals of both signs,
    zeros of both signs, and normal numbers over float32's whole range."""
    bits = rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32)
    kind = rng.integers(0, 5, n)
    subnormal = rng.integers(0, 0x00800000, n, dtype=np.uint64).astype(np.uint32)
    bits = np.where(kind == 0, subnormal, bits)
    bits = np.where(kind == 1, subnormal | np.uint32(0x80000000), bits)
    bits = np.where(kind == 2, rng.choice(np.array([0, 0x80000000], np.uint32), n), bits)
    wide = (rng.normal(size=n) * 10.0 ** rng.uniform(-45, 38, n)).clip(-3e38, 3e38)
    wide = wide.astype(np.float32)
    return np.where(kind == 3, wide.view(np.uint32), bits).view(np.float32)


SCALARS = [(0.9, 0.999, 31.6, 1e-4), (0.5, 0.6, 1.0, 1e-3), (0.0, 0.999, 3.0, 0.0)]


@pytest.mark.parametrize("scalars", [*SCALARS, (0.99, 0.9, 1e30, 1e-38)])
@pytest.mark.parametrize("listed", ["found", "every element"])
def test_the_exact_path_gives_the_references_bits_for_every_kind_of_number(scalars, listed):
    rng = np.random.default_rng([int(listed == "found"), *(int(s * 1000) for s in scalars[:2])])
    n = 50_000
    p, g, m, v = (_numbers(rng, n) for _ in range(4))
    g[rng.random(n) < 0.3] = 0.0  # the case that makes subnormal moments: no gradient
    scalars = tuple(np.float32(s) for s in scalars)
    near = compiled.near_subnormal(m) if listed == "found" else np.arange(n)
    assert near.size > 1000
    expected = [a.copy() for a in (p, g, m, v)]
    _reference(*expected, scalars)
    compiled.adam_float32(p, g, m, v, *scalars, near)
    for name, want, got in zip("pgmv", expected, (p, g, m, v)):
        # every bit, but of two NaNs added, which one LLVM's code passes on is its choice
        nan = np.isnan(want)
        assert np.array_equal(nan, np.isnan(got)), name
        assert np.array_equal(want.view(np.uint32)[~nan], got.view(np.uint32)[~nan]), name


def test_near_subnormal_finds_the_nonzero_numbers_below_two_to_the_minus_120():
    m = np.array([0.0, -0.0, 1e-45, -1e-45, TINY, 2.0**-120, -(2.0**-121), 1.0, np.nan, -np.inf])
    assert compiled.near_subnormal(m.astype(np.float32)).tolist() == [2, 3, 4, 6]
    assert compiled.near_subnormal(np.ones(5, np.float32)).size == 0


def _decay(compiled_mode, monkeypatch, steps=1100):
    """Adam over 2,048 float32 weights whose gradient is zero after the first steps, so
    their first moments shrink by beta1 each step through the subnormals to zero."""
    monkeypatch.setenv("NEUROCLOUD_COMPILED", compiled_mode)
    rng = np.random.default_rng(5)
    w = rng.normal(size=2048).astype(np.float32)
    opt, grad, seen = nc.optim.Adam(lr=0.01), np.empty_like(w), 0
    for step in range(steps):
        grad[:] = rng.normal(size=w.size) if step < 3 else 0.0
        grad[:1024] = rng.normal(size=1024)  # half the weights keep learning
        opt.step([w], [grad])
        m = opt.state[0]["m"]
        seen = max(seen, int(((m != 0) & (np.abs(m) < TINY)).sum()))
    return w, opt.state_dict(), seen


def test_a_decay_through_the_subnormals_keeps_the_references_bits(monkeypatch):
    looks, listed = [], []
    monkeypatch.setenv("NEUROCLOUD_COMPILED", "always")
    assert kernels.adam(work=0) is not None
    update, near = kernels.adam_float32()

    def counted_near(m):
        found = near(m)
        looks.append(found.size)
        return found

    def counted_update(*args):
        listed.append(args[-1].size)
        update(*args)

    monkeypatch.setattr(kernels, "adam_float32", lambda: (counted_update, counted_near))
    w_fast, state_fast, seen = _decay("always", monkeypatch)
    w_ref, state_ref, _ = _decay("0", monkeypatch)
    assert seen > 500  # the run had subnormal first moments
    assert max(looks) >= seen and len(looks) == -(-1100 // kernels.NEAR_EVERY)
    assert len(listed) > 150 and max(listed) >= seen  # and they took the exact path
    assert np.array_equal(w_fast.view(np.uint32), w_ref.view(np.uint32))
    for key in state_ref:
        assert state_ref[key].tobytes() == state_fast[key].tobytes(), key


def test_small_or_float64_parameters_are_never_looked_at(monkeypatch):
    monkeypatch.setenv("NEUROCLOUD_COMPILED", "always")
    assert kernels.adam(work=0) is not None
    looks = []
    update, near = kernels.adam_float32()
    monkeypatch.setattr(
        kernels, "adam_float32", lambda: (update, lambda m: looks.append(m.size) or near(m))
    )
    opt = nc.optim.Adam()
    small = np.ones(kernels.NEAR_MIN - 1, np.float32)
    double = np.ones(4096)
    large = np.ones(kernels.NEAR_MIN, np.float32)
    for _ in range(3):  # fresh gradients each step: the looks' schedule carries on
        opt.step([small, double, large], [np.ones_like(a) for a in (small, double, large)])
    assert looks == [kernels.NEAR_MIN]  # the large float32 one, at its first step


def test_bad_indices_or_sizes_are_refused_before_anything_is_written():
    p, g, m, v = (np.full(8, 1e-40, np.float32) for _ in range(4))
    before = [a.copy() for a in (p, g, m, v)]
    scalars = tuple(np.float32(s) for s in SCALARS[0])
    for near in ([1, 8], [2, 2], [3, 1], [-1, 2]):  # outside, repeated, not increasing
        with pytest.raises(IndexError, match="increasing indices"):
            compiled.adam_float32(p, g, m, v, *scalars, np.array(near, np.int64))
    with pytest.raises(ValueError, match="one size"):
        compiled.adam_float32(p, g[:4], m, v, *scalars, np.array([1], np.int64))
    assert all(a.tobytes() == b.tobytes() for a, b in zip((p, g, m, v), before))


def test_a_gradient_of_another_shape_gets_numpys_error_not_the_kernels(monkeypatch):
    monkeypatch.setenv("NEUROCLOUD_COMPILED", "always")
    opt, w = nc.optim.Adam(), np.ones(2048, np.float32)
    opt.step([w], [np.ones_like(w)])  # the compiled path, state for 2,048 weights
    with pytest.raises(ValueError):
        opt.step([w], [np.ones(4, np.float32)])


def test_the_look_runs_every_sixteen_steps_as_the_notes_say():
    assert kernels.NEAR_EVERY == 16 and kernels.NEAR_MIN == 1024


def test_a_child_forked_while_the_lock_is_held_gets_a_free_lock():
    import os

    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    with kernels._lock:
        pid = os.fork()
        if pid == 0:  # the child: exit 0 only if its lock is free
            os._exit(0 if not kernels._lock.locked() else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
