"""Whole networks: gradients equal central differences and PyTorch's autograd."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import neurocloud as nc
from neurocloud.nn import activations
from neurocloud.nn.training import Trainer, fused

ACTIVATIONS = activations.available()
TORCH_ACTIVATIONS = {
    "identity": torch.nn.Identity,
    "sigmoid": torch.nn.Sigmoid,
    "tanh": torch.nn.Tanh,
    "relu": torch.nn.ReLU,
    "leaky_relu": torch.nn.LeakyReLU,
    "elu": torch.nn.ELU,
    "softplus": torch.nn.Softplus,
    "gelu": torch.nn.GELU,
    "softmax": lambda: torch.nn.Softmax(dim=1),
}


def random_network(draw_acts, widths, input_dim, seed, dtype="float64", dropout=False):
    layers = []
    if dropout:
        layers.append(nc.layers.Normalization(mean=[0.5] * input_dim, scale=[2.0] * input_dim))
    # Random biases: with zero biases a dead ReLU feeds exact zeros to the next layer,
    # putting it on its own kink, where finite differences are not a reference.
    for width, act in zip(widths, draw_acts):
        layers.append(nc.layers.Dense(width, activation=act, bias_initializer="glorot_normal"))
    layers.append(nc.layers.Dense(2, bias_initializer="glorot_normal"))
    layers.append(nc.layers.Activation("tanh"))
    return nc.Sequential(layers, input_dim=input_dim, seed=seed, dtype=dtype)


@settings(max_examples=100, deadline=None)
@given(
    widths=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    acts=st.lists(st.sampled_from(ACTIVATIONS), min_size=3, max_size=3),
    input_dim=st.integers(1, 4),
    n=st.integers(1, 5),
    seed=st.integers(0, 10_000),
    loss=st.sampled_from(["mse", "huber", "binary_crossentropy"]),
    normalization=st.booleans(),
)
def test_network_gradients_match_finite_differences(
    widths, acts, input_dim, n, seed, loss, normalization
):
    model = random_network(acts, widths, input_dim, seed, dropout=normalization)
    rng = np.random.default_rng(seed)
    # Shift inputs so ReLU-family kinks are rarely hit exactly.
    X = rng.normal(size=(n, input_dim)) + 0.05
    y = (
        rng.uniform(0.1, 0.9, size=(n, 2))
        if loss == "binary_crossentropy"
        else rng.normal(size=(n, 2))
    )
    if loss == "binary_crossentropy":
        model = nc.Sequential(
            [*model.layers[:-1], nc.layers.Activation("sigmoid")],
            input_dim=input_dim,
            seed=seed,
            dtype="float64",
        )
    report = nc.gradcheck(model, X, y, loss=loss, max_checks=None)
    assert report.relative_error < 1e-6, report


def to_torch(model: nc.Sequential) -> torch.nn.Sequential:
    """The same network in PyTorch, with our weights (kernels transposed)."""
    modules = []
    for layer in model.layers:
        if isinstance(layer, nc.layers.Dense):
            linear = torch.nn.Linear(
                layer.input_dim, layer.units, bias=layer.use_bias, dtype=torch.float64
            )
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.params["kernel"].T.copy()))
                if layer.use_bias:
                    linear.bias.copy_(torch.from_numpy(layer.params["bias"].copy()))
            modules += [linear, TORCH_ACTIVATIONS[layer.activation.name]()]
        elif isinstance(layer, nc.layers.Activation):
            modules.append(TORCH_ACTIVATIONS[layer.activation.name]())
    return torch.nn.Sequential(*modules).double()


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize(
    ("loss", "torch_loss"),
    [
        ("mse", torch.nn.functional.mse_loss),
        ("mae", torch.nn.functional.l1_loss),
        ("huber", torch.nn.functional.huber_loss),
    ],
)
def test_outputs_and_gradients_equal_pytorch(activation, loss, torch_loss):
    rng = np.random.default_rng(7)
    model = nc.Sequential(
        [
            nc.layers.Dense(5, activation=activation),
            nc.layers.Dense(3, activation="tanh"),
            nc.layers.Dense(2, use_bias=False),
        ],
        input_dim=4,
        seed=3,
        dtype="float64",
    )
    X, y = rng.normal(size=(6, 4)), rng.normal(size=(6, 2))
    reference = to_torch(model)
    xt = torch.from_numpy(X).requires_grad_(True)
    out_t = reference(xt)
    torch_loss(out_t, torch.from_numpy(y)).backward()

    out = model.forward(X, training=True)
    grad_x = model.backward(nc.losses.get(loss).gradient(y, out))
    np.testing.assert_allclose(out, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(grad_x, xt.grad.numpy(), rtol=1e-8, atol=1e-12)
    torch_grads = []
    for module in reference:
        if isinstance(module, torch.nn.Linear):
            torch_grads.append(module.weight.grad.numpy().T)
            if module.bias is not None:
                torch_grads.append(module.bias.grad.numpy())
    for ours, theirs in zip(model.gradients(), torch_grads, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize(
    ("loss", "final", "make_target", "torch_loss"),
    [
        (
            "binary_crossentropy",
            "sigmoid",
            lambda r: (r.random((8, 3)) > 0.5) * 1.0,
            lambda z, y: torch.nn.functional.binary_cross_entropy_with_logits(z, y),
        ),
        (
            "categorical_crossentropy",
            "softmax",
            lambda r: np.eye(3)[r.integers(0, 3, 8)],
            lambda z, y: torch.nn.functional.cross_entropy(z, y),
        ),
        (
            "sparse_categorical_crossentropy",
            "softmax",
            lambda r: r.integers(0, 3, 8),
            lambda z, y: torch.nn.functional.cross_entropy(z, y.long()),
        ),
    ],
)
def test_fused_cross_entropy_training_step_equals_pytorch(loss, final, make_target, torch_loss):
    rng = np.random.default_rng(11)
    model = nc.Sequential(
        [nc.layers.Dense(6, activation="relu"), nc.layers.Dense(3, activation=final)],
        input_dim=4,
        seed=5,
        dtype="float64",
    )
    X, y = rng.normal(size=(8, 4)) * 30, make_target(rng)
    reference = to_torch(model)[:-1]  # logits
    logits = reference(torch.from_numpy(X))
    expected = torch_loss(logits, torch.from_numpy(np.asarray(y, dtype=float)))
    expected.backward()

    loss_fn = nc.losses.get(loss)
    assert fused(model, loss_fn)
    target = nc.losses.one_hot(y, 3, np.float64) if loss_fn.sparse_target else y
    value = Trainer(loss=loss_fn, optimizer="sgd").step(model, X, target, fused_loss=True)
    assert value == pytest.approx(expected.item(), rel=1e-10)
    np.testing.assert_allclose(
        model.gradients()[0], reference[0].weight.grad.numpy().T, rtol=1e-8, atol=1e-12
    )


def test_backward_does_not_modify_callers_gradient():
    model = nc.Sequential([nc.layers.Dense(3, activation="relu")], input_dim=2, seed=0)
    out = model.forward(np.ones((2, 2), dtype=np.float32), training=True)
    grad = np.ones_like(out)
    model.backward(grad)
    assert (grad == 1).all()


def test_gradcheck_catches_a_wrong_derivative(monkeypatch):
    """The article's bug: backpropagation that skips the activation's derivative."""
    model = nc.Sequential(
        [nc.layers.Dense(3, activation="sigmoid"), nc.layers.Dense(1)],
        input_dim=2,
        seed=0,
        dtype="float64",
    )
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(5, 2)), rng.normal(size=(5, 1))
    assert nc.gradcheck(model, X, y).relative_error < 1e-6
    monkeypatch.setattr(activations.Sigmoid, "backward", lambda self, grad, z, a: grad)
    assert nc.gradcheck(model, X, y).relative_error > 1e-2
