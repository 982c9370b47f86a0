""" "Show the code": the Python that reproduces a session's training with the public API,
the same loop the playground runs, so that it ends with the same weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from neurocloud.playground.network import loss_for

if TYPE_CHECKING:
    from neurocloud.playground.session import Session

__all__ = ["training_code"]

_OPTIMIZER_CLASS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}


def training_code(session: Session) -> str:
    """The script for ``session``'s settings and its epochs so far (all when none yet)."""
    s, data = session.settings, session.data
    _, output = loss_for(s, data)
    epochs = session.epoch or s.epochs
    init = f', kernel_initializer="{s.initializer}"'
    layers = []
    if s.standardize:
        layers.append("nc.layers.Normalization().adapt(X_train)")
    for units, act in zip(s.layers, s.activations):
        layers.append(f'nc.layers.Dense({units}, activation="{act}"{init})')
        if s.dropout:
            layers.append(f"nc.layers.Dropout({s.dropout!r})")
    outputs = 1 if data.task == "regression" or data.classes == 2 else data.classes
    layers.append(f'nc.layers.Dense({outputs}, activation="{output}"{init})')
    stack = ",\n     ".join(layers)
    fused = session.fused
    if data.task == "classification" and data.classes > 2:
        targets = "y = y.astype(np.int64)"
    else:
        targets = "y = np.asarray(y, dtype=np.float64).reshape(-1, 1)"
    n_val = len(session.X_val)
    if n_val:
        split = (
            f"order = np.random.default_rng({s.seed}).permutation(len(X))\n"
            f"X_train, y_train = X[order[{n_val}:]], y[order[{n_val}:]]\n"
            f"X_val, y_val = X[order[:{n_val}]], y[order[:{n_val}]]"
        )
    else:
        split = "X_train, y_train = X, y"
    value = "loss.value_from_logits" if fused else "loss.value"
    gradient = "loss.gradient_from_logits" if fused else "loss.gradient"
    logits = ", logits=True" if fused else ""
    batch = f"batch_size = {s.batch_size or 'len(X_train)'}"
    l2 = ""
    if s.l2:
        l2 = (
            "\n        for kernel, kernel_grad in zip(params[0::2], grads[0::2]):"
            f"\n            kernel_grad += {s.l2!r} * kernel  # L2: d/dw of 0.5 * l2 * w**2"
        )
    return f'''import numpy as np
import neurocloud as nc

{data.source}
{targets}
{split}

model = nc.Sequential(
    [{stack}],
    input_dim={data.X.shape[1]}, seed={s.seed})
loss = nc.losses.get("{session.loss_name}")
opt = nc.optim.{_OPTIMIZER_CLASS[s.optimizer]}(lr={s.lr!r})
rng = np.random.default_rng({s.seed})
{batch}
for epoch in range({epochs}):
    whole = batch_size >= len(X_train)
    order = np.arange(len(X_train)) if whole else rng.permutation(len(X_train))
    for start in range(0, len(X_train), batch_size):
        rows = order[start:start + batch_size]
        out = model.forward(X_train[rows], training=True{logits})   # forward propagation
        value = {value}(y_train[rows], out)
        model.backward({gradient}(y_train[rows], out){logits})      # backpropagation
        params, grads = model.parameters(), model.gradients(){l2}
        opt.step(params, grads)                                  # w -= lr * grad (SGD)
    print(epoch + 1, value)

nc.save(model, "playground-model")
'''
