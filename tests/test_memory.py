"""Where the training step's arrays start (nn.memory): lanes of a page, the same bits."""

from __future__ import annotations

import numpy as np
import pytest

import neurocloud as nc
from neurocloud.nn import memory


def offset(a: np.ndarray) -> int:
    return a.ctypes.data % memory.PAGE


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lane", [0, 1, 1.5, 2, 2.5, 3])
def test_zeros_start_in_their_lane(dtype, lane):
    for shape in (10_000, (300, 70), (5, 40, 30)):
        a = memory.zeros(shape, dtype, lane)
        assert offset(a) == int(lane * memory.LANE)
        assert a.shape == (np.empty(shape).shape) and a.dtype == dtype
        assert a.flags.c_contiguous and a.flags.writeable and not a.any()
        a[...] = 1  # the whole array is usable, and nothing beyond it is shared
        assert a.sum() == a.size


def test_small_and_object_arrays_are_plain_zeros():
    small = memory.zeros(16, np.float32, lane=3)
    assert small.shape == (16,) and small.flags.owndata and not small.any()
    objects = memory.zeros(10_000, object, lane=1)
    assert objects.dtype == object and objects.flags.owndata
    like = memory.zeros_like(np.ones((200, 50), np.float32), lane=2)
    assert like.shape == (200, 50) and offset(like) == 2 * memory.LANE


@pytest.mark.parametrize("lane", [-1, 4, 0.001])
def test_a_lane_outside_the_page_or_misaligned_is_refused(lane):
    with pytest.raises(ValueError, match=r"lane must place the array in \[0, 4\) lanes"):
        memory.zeros(10_000, np.float64, lane)


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
    # A restored state is copied into the same lanes, with its values.
    restored = nc.optim.Adam()
    restored.load_state_dict(opt.state_dict())
    assert [offset(restored.state[0][s]) for s in ("m", "v")] == [2048, 3072]
    assert all(np.array_equal(restored.state[0][s], opt.state[0][s]) for s in ("m", "v"))


@pytest.mark.parametrize("compiled", ["0", "always"])
def test_placement_changes_no_bit(compiled, monkeypatch):
    monkeypatch.setenv("NEUROCLOUD_COMPILED", compiled)
    X, y = data()

    def trained() -> np.ndarray:
        m, opt = model(), nc.optim.Adam(lr=1e-2)
        m.fit(X, y, loss="sparse_categorical_crossentropy", optimizer=opt, epochs=3, batch_size=32)
        return m.flat_parameters().copy()

    lanes = trained()
    with monkeypatch.context() as plain:
        plain.setattr(memory, "zeros", lambda shape, dtype, lane=0: np.zeros(shape, dtype))
        where_numpy_puts_them = trained()
    assert np.array_equal(lanes, where_numpy_puts_them)
