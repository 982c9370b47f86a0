"""Loss functions and their gradients, looked up by name.

``value(y_true, y_pred)`` is the mean loss over samples (and over output columns for the
element-wise losses); ``gradient(y_true, y_pred)`` is its derivative with respect to
``y_pred``. Cross-entropy losses also work from logits (``value_from_logits`` and
``gradient_from_logits``), fused with the sigmoid or softmax that produced them so that
large logits neither overflow nor lose precision. Optional ``sample_weight`` gives a
weighted mean, ``sum(w * loss) / sum(w)``.

>>> import numpy as np
>>> mse = get("mse")
>>> mse.value(np.array([[1.0], [2.0]]), np.array([[1.0], [4.0]]))
2.0
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from neurocloud.nn.activations import row_max, row_sum, sigmoid
from neurocloud.nn.registry import Registry
from neurocloud.nn.validation import check_number

__all__ = ["Loss", "available", "get"]


class Loss:
    """Base class. Subclasses define ``_per_element`` and ``_grad_per_element``."""

    name = ""
    #: the output activation this loss can be fused with when computed from logits
    logits_activation: str | None = None
    #: whether the target holds integer class labels instead of one value per output
    sparse_target = False
    #: whether the loss sums over output columns (cross-entropy) or averages them
    sums_columns = False

    # Public entry points: align the target with the prediction, then compute.
    def value(
        self, y_true: ArrayLike, y_pred: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> float:
        """The mean loss over the rows (weighted by ``sample_weight`` when given)."""
        return self._value(self.target(y_true, y_pred), y_pred, sample_weight)

    def gradient(
        self, y_true: ArrayLike, y_pred: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> np.ndarray:
        """d :meth:`value` / d ``y_pred``, an array shaped like ``y_pred``."""
        return self._gradient(self.target(y_true, y_pred), y_pred, sample_weight)

    def value_from_logits(
        self, y_true: ArrayLike, logits: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> float:
        """The loss of the fused activation's output, computed stably from its input."""
        return self._value_and_gradient_from_logits(
            self.target(y_true, logits), logits, sample_weight
        )[0]

    def gradient_from_logits(
        self, y_true: ArrayLike, logits: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> np.ndarray:
        """d :meth:`value_from_logits` / d ``logits``."""
        return self._value_and_gradient_from_logits(
            self.target(y_true, logits), logits, sample_weight
        )[1]

    def value_and_gradient(
        self, y_true: ArrayLike, y_pred: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """``(value, gradient)`` at once, sharing work; the gradient is a new array."""
        return self._value_and_gradient(self.target(y_true, y_pred), y_pred, sample_weight)

    def value_and_gradient_from_logits(
        self, y_true: ArrayLike, logits: np.ndarray, sample_weight: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """``(value, gradient)`` with respect to the logits of the fused activation."""
        return self._value_and_gradient_from_logits(
            self.target(y_true, logits), logits, sample_weight
        )

    def target(self, y_true: ArrayLike, y_pred: np.ndarray) -> np.ndarray:
        """``y_true`` as an array shaped and typed like ``y_pred`` (a 1-D target is a column
        when there is one output); a ValueError names both shapes otherwise."""
        y = np.asarray(y_true, dtype=y_pred.dtype)
        if y.shape == y_pred.shape:
            return y
        if y.ndim == 1 and y_pred.shape == (y.shape[0], 1):
            return y.reshape(-1, 1)
        raise ValueError(
            f"{self.name}: y_true has shape {y.shape} but y_pred has shape {y_pred.shape}; "
            "expected the same shape (or a 1-D y_true for a single output)."
        )

    # Implementations, on aligned arrays; subclasses override what they can share.
    def _value(self, y, p, sample_weight) -> float:
        return _weighted_mean(self._reduce_columns(self._per_element(y, p)), sample_weight)

    def _gradient(self, y, p, sample_weight) -> np.ndarray:
        return self._scale(self._grad_per_element(y, p), sample_weight)

    def _value_and_gradient(self, y, p, sample_weight) -> tuple[float, np.ndarray]:
        return self._value(y, p, sample_weight), self._gradient(y, p, sample_weight)

    def _value_and_gradient_from_logits(self, y, z, sample_weight) -> tuple[float, np.ndarray]:
        raise NotImplementedError(f"{self.name} has no logits form")

    def _reduce_columns(self, per_element: np.ndarray) -> np.ndarray:
        if self.sums_columns:
            return per_element.sum(axis=1)
        return per_element.mean(axis=1)

    def _scale(self, grad: np.ndarray, sample_weight) -> np.ndarray:
        n, k = grad.shape
        denom = 1 if self.sums_columns else k
        if sample_weight is None:
            grad *= grad.dtype.type(1.0 / (n * denom))
        else:
            w = np.asarray(sample_weight, dtype=grad.dtype)
            grad *= (w / (w.sum() * denom))[:, None]
        return grad

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _weighted_mean(per_sample: np.ndarray, sample_weight) -> float:
    if sample_weight is None:
        return float(np.add.reduce(per_sample)) / per_sample.shape[0]
    w = np.asarray(sample_weight, dtype=per_sample.dtype)
    return float(np.dot(w, per_sample) / w.sum())


class MeanSquaredError(Loss):
    """The article's loss: ``mean((y_true - y_pred) ** 2)``."""

    name = "mse"

    def _per_element(self, y, p):
        return (p - y) ** 2

    def _grad_per_element(self, y, p):
        grad = p - y
        grad *= 2
        return grad

    def _value_and_gradient(self, y_true, y_pred, sample_weight):
        grad = y_pred - y_true
        if sample_weight is None:
            value = float(np.vdot(grad, grad)) / grad.size
        else:
            value = _weighted_mean(np.einsum("ij,ij->i", grad, grad) / grad.shape[1], sample_weight)
        grad *= 2
        return value, self._scale(grad, sample_weight)


class MeanAbsoluteError(Loss):
    name = "mae"

    def _per_element(self, y, p):
        return np.abs(p - y)

    def _grad_per_element(self, y, p):
        return np.sign(p - y)


class Huber(Loss):
    """Quadratic within ``delta`` of the target, linear beyond it."""

    name = "huber"

    def __init__(self, delta: float = 1.0) -> None:
        self.delta = check_number(delta, "delta", low=0, low_open=True)

    def _per_element(self, y, p):
        r = np.abs(p - y)
        d = self.delta
        return np.where(r <= d, 0.5 * r * r, d * (r - 0.5 * d))

    def _grad_per_element(self, y, p):
        return np.clip(p - y, -self.delta, self.delta)


class BinaryCrossentropy(Loss):
    """Cross-entropy of independent Bernoulli outputs (binary and multilabel)."""

    name = "binary_crossentropy"
    logits_activation = "sigmoid"

    def _eps(self, p):
        return np.finfo(p.dtype).eps

    def _per_element(self, y, p):
        eps = self._eps(p)
        p = np.clip(p, eps, 1 - eps)
        return -(y * np.log(p) + (1 - y) * np.log1p(-p))

    def _grad_per_element(self, y, p):
        eps = self._eps(p)
        p = np.clip(p, eps, 1 - eps)
        return (p - y) / (p * (1 - p))

    def _value_and_gradient_from_logits(self, y_true, logits, sample_weight):
        # softplus(z) - y z, computed without overflow.
        per_element = np.logaddexp(0, logits) - y_true * logits
        value = _weighted_mean(per_element.mean(axis=1), sample_weight)
        return value, self._scale(sigmoid(logits) - y_true, sample_weight)


class CategoricalCrossentropy(Loss):
    """Cross-entropy of one categorical output per sample; targets are one-hot rows."""

    name = "categorical_crossentropy"
    logits_activation = "softmax"
    sums_columns = True

    def _per_element(self, y, p):
        eps = np.finfo(p.dtype).eps
        return -y * np.log(np.clip(p, eps, 1.0))

    def _grad_per_element(self, y, p):
        eps = np.finfo(p.dtype).eps
        return -y / np.clip(p, eps, 1.0)

    def _value_and_gradient_from_logits(self, y_true, logits, sample_weight):
        # Shifted by the row maximum, so exp never overflows:
        # loss = sum(y) * log(sum(exp(shifted))) - <y, shifted>; grad = sum(y) * softmax - y.
        shifted = logits - row_max(logits)
        y_sum = row_sum(y_true)
        exp = np.exp(shifted)
        sums = row_sum(exp)
        if sample_weight is None:  # two dot products instead of per-sample arrays
            total = float(np.vdot(y_sum, np.log(sums))) - float(np.vdot(y_true, shifted))
            value = total / len(logits)
        else:
            per_sample = (y_sum * np.log(sums))[:, 0] - np.einsum("ij,ij->i", y_true, shifted)
            value = _weighted_mean(per_sample, sample_weight)
        exp *= y_sum / sums
        exp -= y_true
        return value, self._scale(exp, sample_weight)


class SparseCategoricalCrossentropy(CategoricalCrossentropy):
    """Categorical cross-entropy whose targets are integer class labels."""

    name = "sparse_categorical_crossentropy"
    sparse_target = True

    def target(self, y_true: ArrayLike, y_pred: np.ndarray) -> np.ndarray:
        """Integer labels ``(n,)`` become one-hot rows; one-hot rows pass through."""
        y = np.asarray(y_true)
        if y.shape == y_pred.shape:
            return np.asarray(y, dtype=y_pred.dtype)
        return one_hot(y, y_pred.shape[1], y_pred.dtype)


def one_hot(labels: ArrayLike, n_classes: int, dtype: DTypeLike) -> np.ndarray:
    """Integer labels of shape ``(n,)`` to one-hot rows; a ValueError names bad labels."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            "y must be a 1-D array of integer class labels for "
            f"sparse_categorical_crossentropy; received shape {labels.shape}."
        )
    as_int = labels.astype(np.int64)
    if (
        not np.array_equal(as_int, labels)
        or (as_int.size and (as_int.min() < 0))
        or (as_int.size and as_int.max() >= n_classes)
    ):
        bad = labels[(as_int != labels) | (as_int < 0) | (as_int >= n_classes)][:5]
        raise ValueError(
            f"y must hold integer class labels in [0, {n_classes}) for "
            f"sparse_categorical_crossentropy; received {bad.tolist()}."
        )
    out = np.zeros((labels.shape[0], n_classes), dtype=dtype)
    out[np.arange(labels.shape[0]), as_int] = 1
    return out


_REGISTRY: Registry[type[Loss]] = Registry("loss")
for _cls in (
    MeanSquaredError,
    MeanAbsoluteError,
    Huber,
    BinaryCrossentropy,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
):
    _REGISTRY.register(_cls.name, _cls)
_REGISTRY.alias("mean_squared_error", "mse")
_REGISTRY.alias("mean_absolute_error", "mae")
_REGISTRY.alias("cross_entropy", "categorical_crossentropy")


def available() -> list[str]:
    """Names accepted by :func:`get`."""
    return _REGISTRY.names()


def get(name: str | Loss) -> Loss:
    """Return the loss called ``name`` (a :class:`Loss` instance passes through).

    >>> get("huber").name
    'huber'
    """
    if isinstance(name, Loss):
        return name
    return _REGISTRY.get(name, argument="loss")()
