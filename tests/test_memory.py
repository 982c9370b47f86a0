"""Where the training step's arrays start (nn.memory): lanes of a page, the same bits."""

from __future__ import annotations

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn import memory


def offset(a: np.ndarray) -> int:
    return a.ctypes.data % memory.PAGE


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lane", [0, 1, 1.5, 2, 2.5, 3, 3.5])
def test_zeros_start_in_their_lane(dtype, lane):
    for shape in (10_000, np.int64(10_000), (300, 70), (5, 40, 30)):
        a = memory.zeros(shape, dtype, lane)
        assert offset(a) == int(lane * memory.LANE)
        assert a.shape == (np.empty(shape).shape) and a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable and not a.any()
        b = memory.zeros(shape, dtype, lane)
        a[...] = 1  # the whole array is usable, and no two arrays share memory
        assert a.sum() == a.size and not b.any() and not np.shares_memory(a, b)


def test_the_smallest_placed_size():
    below = memory.zeros(memory.MIN_BYTES // 4 - 1, np.float32, lane=2)
    at = memory.zeros(memory.MIN_BYTES // 4, np.float32, lane=2)
    assert below.flags.owndata and not at.flags.owndata and offset(at) == 2 * memory.LANE
    assert memory.zeros((), np.float64, lane=1).shape == ()


def test_small_and_object_arrays_are_plain_zeros():
    small = memory.zeros(16, np.float32, lane=3)
    assert small.shape == (16,) and small.flags.owndata and not small.any()
    objects = memory.zeros(10_000, object, lane=1)
    assert objects.dtype == object and objects.flags.owndata
    like = memory.zeros_like(np.ones((200, 50), np.float32), lane=2)
    assert like.shape == (200, 50) and offset(like) == 2 * memory.LANE


@pytest.mark.parametrize("lane", [-1, -0.0009, 4, float("nan")])
def test_a_lane_outside_the_page_is_refused(lane):
    with pytest.raises(ValueError, match=r"lane must be in \[0, 4\); received"):
        memory.zeros(10_000, np.float64, lane)


def test_a_lane_that_misaligns_the_dtype_or_a_bad_shape_is_refused():
    with pytest.raises(ValueError, match=r"1 bytes into a page, not a multiple of float64's"):
        memory.zeros(10_000, np.float64, 0.001)
    with pytest.raises(ValueError, match=r"no negative dimension; received \(-2, 8192\)"):
        memory.zeros((-2, 8192), np.float32)
    with pytest.raises(TypeError):
        memory.zeros(10.5, np.float32)
    sub = memory.zeros(10_000, np.dtype(("f4", (3,))), lane=1)  # a subarray dtype: NumPy's
    assert sub.shape == (10_000, 3) and not sub.any()


def model() -> nc.Sequential:
    layers = [nc.layers.Dense(64, activation="relu"), nc.layers.Dense(3, activation="softmax")]
    return nc.Sequential(layers, input_dim=100, seed=0)


def data():
    rng = np.random.default_rng(0)
    return rng.standard_normal((256, 100), dtype=np.float32), rng.integers(0, 3, 256)


def test_a_model_and_its_optimizer_take_four_lanes():
    m, opt = model(), nc.optim.Adam()
    X, y = data()
    m.fit(X, y, loss="sparse_categorical_crossentropy", optimizer=opt, batch_size=64)
    flats = [m.flat_parameters(), m.flat_gradients(), opt.state[0]["m"], opt.state[0]["v"]]
    assert [offset(a) for a in flats] == [0, 1024, 2048, 3072]
    assert offset(opt._scratch[0]) == 1536
    # A restored state is copied into the same lanes, with its values, whatever its layout:
    # read-only (as Ray hands it over) or Fortran-ordered.
    saved = opt.state_dict()
    for key in ("0.m", "0.v"):
        saved[key].flags.writeable = False
    saved["0.m"] = np.asfortranarray(saved["0.m"])
    restored = nc.optim.Adam()
    restored.load_state_dict(saved)
    assert [offset(restored.state[0][s]) for s in ("m", "v")] == [2048, 3072]
    assert all(np.array_equal(restored.state[0][s], opt.state[0][s]) for s in ("m", "v"))
    assert all(restored.state[0][s].flags.writeable for s in ("m", "v"))
    assert not np.shares_memory(restored.state[0]["v"], saved["0.v"])


@pytest.mark.parametrize("compiled", ["0", "always"])
def test_placement_changes_no_bit(compiled, monkeypatch):
    monkeypatch.setenv("NEUROCLOUD_COMPILED", compiled)
    X, y = data()

    def trained() -> np.ndarray:
        m, opt = model(), nc.optim.Adam(lr=1e-2)
        m.fit(X, y, loss="sparse_categorical_crossentropy", optimizer=opt, epochs=3, batch_size=32)
        return m.flat_parameters().copy()

    lanes = trained()
    calls = []

    def plain_zeros(shape, dtype, lane=0):
        calls.append(lane)
        return np.zeros(shape, dtype)

    with monkeypatch.context() as plain:
        plain.setattr(memory, "zeros", plain_zeros)
        where_numpy_puts_them = trained()
    assert sorted(set(calls)) == [0, 1, 1.5, 2, 3]  # every placed array went through it
    assert np.array_equal(lanes, where_numpy_puts_them)
