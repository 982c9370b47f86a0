"""Optimizers: each update equals PyTorch's, keeps the dtype, validates its settings."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import neurocloud as nc

CASES = [
    (lambda: nc.optim.SGD(lr=0.1), lambda p: torch.optim.SGD(p, lr=0.1)),
    (
        lambda: nc.optim.SGD(lr=0.1, momentum=0.9),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
    ),
    (
        lambda: nc.optim.SGD(lr=0.1, momentum=0.9, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
    ),
    (
        lambda: nc.optim.SGD(lr=0.1, weight_decay=0.01),
        lambda p: torch.optim.SGD(p, lr=0.1, weight_decay=0.01),
    ),
    (lambda: nc.optim.Adam(lr=0.01), lambda p: torch.optim.Adam(p, lr=0.01)),
    (
        lambda: nc.optim.Adam(lr=0.01, weight_decay=0.1),
        lambda p: torch.optim.Adam(p, lr=0.01, weight_decay=0.1),
    ),
    (
        lambda: nc.optim.AdamW(lr=0.01, weight_decay=0.1),
        lambda p: torch.optim.AdamW(p, lr=0.01, weight_decay=0.1),
    ),
    (lambda: nc.optim.RMSprop(lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
]


def test_the_cases_cover_every_registered_optimizer():
    # L-BFGS is not a step rule: test_training checks it through fit.
    covered = {type(make()).__name__.lower() for make, _ in CASES} | {"lbfgs"}
    assert covered == set(nc.optim.available())


@pytest.mark.parametrize(("ours", "theirs"), CASES)
def test_updates_equal_pytorch(ours, theirs):
    rng = np.random.default_rng(0)
    w = rng.normal(size=(3, 4))
    w_t = torch.tensor(w.copy(), requires_grad=True)
    opt, opt_t = ours(), theirs([w_t])
    for _ in range(5):
        g = rng.normal(size=w.shape)
        opt.step([w], [g.copy()])
        w_t.grad = torch.tensor(g)
        opt_t.step()
    np.testing.assert_allclose(w, w_t.detach().numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("ours", "theirs"), CASES)
def test_a_0d_parameter_updates_as_pytorch_does(ours, theirs):
    w, w_t = np.array(1.5), torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    opt, opt_t = ours(), theirs([w_t])
    for g in (0.5, -0.25, 2.0):
        opt.step([w], [np.array(g)])
        w_t.grad = torch.tensor(g, dtype=torch.float64)
        opt_t.step()
    assert w.shape == () and abs(float(w) - w_t.item()) < 1e-12


@pytest.mark.parametrize(("ours", "_"), CASES)
def test_float32_stays_float32(ours, _):
    w = np.ones((2, 2), dtype=np.float32)
    opt = ours()
    for _ in range(3):
        opt.step([w], [np.full((2, 2), 0.5, dtype=np.float32)])
    assert w.dtype == np.float32
    assert all(s.dtype == np.float32 for state in opt.state for s in state.values())


@pytest.mark.parametrize("lr", [0.0, -0.1, float("nan"), "fast"])
def test_bad_learning_rate_is_refused(lr):
    with pytest.raises(ValueError, match=r"Expected lr to be a number > 0\. Received: lr="):
        nc.optim.Adam(lr=lr)


def test_unknown_optimizer_lists_valid_ones():
    with pytest.raises(ValueError, match=r"Unknown optimizer 'adagrad'.*adam.*lbfgs.*sgd"):
        nc.optim.get("adagrad")


def test_lbfgs_is_a_full_batch_minimizer_not_a_step_rule():
    lbfgs = nc.optim.get("lbfgs")
    assert isinstance(lbfgs, nc.optim.LBFGS) and not isinstance(lbfgs, nc.optim.Optimizer)
    assert lbfgs.full_batch and not hasattr(lbfgs, "step") and not hasattr(lbfgs, "lr")
    with pytest.raises(TypeError):
        nc.optim.LBFGS(lr=1.0)
