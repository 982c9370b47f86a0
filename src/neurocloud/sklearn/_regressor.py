"""``NeuralNetRegressor``: single- and multi-output regression."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import column_or_1d

from neurocloud.nn.sequential import Sequential
from neurocloud.sklearn._base import BaseNeuralNet, _standardization, _stochastic
from neurocloud.sklearn._persist import model_copy

__all__ = ["NeuralNetRegressor"]


def _rescale_output(model: Sequential, scale: np.ndarray, shift: np.ndarray) -> None:
    """Make the last (linear) layer output ``scale * out + shift``, in place."""
    last = model.layers[-1]
    last.params["kernel"][...] *= scale.astype(model.dtype)
    last.params["bias"][...] *= scale.astype(model.dtype)
    last.params["bias"][...] += shift.astype(model.dtype)


class NeuralNetRegressor(RegressorMixin, BaseNeuralNet):
    """A neural-network regressor on the neurocloud engine, with scikit-learn's API.

    The network ends in a linear ``Dense`` layer with one unit per target and is trained
    on the mean squared error. With ``standardize`` (the default) the features go through
    a ``Normalization`` first layer and the targets are standardised for training; the
    target scaling is then folded into the output layer, so ``model_``,
    :meth:`to_sequential` and ``nc.save`` give a plain network that predicts in the
    target's own units.

    The hyperparameters are those of :class:`NeuralNetClassifier` (without
    ``class_weight``); early stopping monitors R^2 on the held-out rows. ``loss_curve_``
    is the training loss on the standardised targets when ``standardize`` is on.
    Fitted attributes add ``target_mean_`` and ``target_scale_`` (None without
    ``standardize``).

    Examples
    --------
    >>> import numpy as np
    >>> from neurocloud.sklearn import NeuralNetRegressor
    >>> X = np.linspace(-1, 1, 64).reshape(-1, 1)
    >>> reg = NeuralNetRegressor((16,), learning_rate=0.01, max_epochs=300, random_state=0)
    >>> reg.fit(X, 100 * X[:, 0] ** 2).score(X, 100 * X[:, 0] ** 2) > 0.9
    True
    """

    _y_numeric = True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def fit(self, X, y, sample_weight=None) -> NeuralNetRegressor:
        """Train on ``X`` of shape (n_samples, n_features) and ``y`` of shape (n_samples,)
        or (n_samples, n_targets)."""
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None) -> NeuralNetRegressor:
        """One epoch over ``(X, y)``, keeping the weights and optimizer state.

        With ``standardize``, the first call's rows fix the feature and target statistics.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _loss_name(self) -> str:
        return "mse"

    def _prepare_targets(self, y, sample_weight, *, first_pass, incremental, classes):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        Y = np.asarray(y, dtype=np.float64).reshape(len(y), -1)
        if first_pass:
            self.n_outputs_ = Y.shape[1]
            self.out_activation_ = "identity"
            self.target_mean_ = self.target_scale_ = None
            if self.standardize:
                self.target_mean_, self.target_scale_ = _standardization(Y, sample_weight)
        elif Y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y has {Y.shape[1]} targets per row; the estimator was fitted on "
                f"{self.n_outputs_}."
            )
        if self.target_scale_ is not None:
            Y = (Y - self.target_mean_) / self.target_scale_
        return Y, sample_weight, None

    def _to_training_space(self) -> None:
        if self.target_scale_ is not None:
            _rescale_output(
                self.model_, 1.0 / self.target_scale_, -self.target_mean_ / self.target_scale_
            )

    def _to_user_space(self) -> None:
        if self.target_scale_ is not None:
            _rescale_output(self.model_, self.target_scale_, self.target_mean_)

    def _validation_score(self, model, X, Y, sample_weight) -> float:
        # R^2 is unchanged by the per-target scaling, so the scaled targets do.
        return float(r2_score(Y, model.forward(X), sample_weight=sample_weight))

    def predict(self, X) -> np.ndarray:
        """Predicted targets: shape (n_samples,) for one target, else (n_samples, n_targets)."""
        out = self._outputs(X)
        return out[:, 0] if out.shape[1] == 1 else out

    @classmethod
    def from_sequential(cls, model: Sequential, **params: Any) -> NeuralNetRegressor:
        """Wrap a trained ``Sequential`` as a fitted regressor (its outputs are the targets).

        ``params`` set hyperparameters used if the estimator is trained further.

        >>> import neurocloud as nc
        >>> net = nc.Sequential([nc.layers.Dense(1)], input_dim=2, seed=0)
        >>> NeuralNetRegressor.from_sequential(net).predict([[1.0, 2.0]]).shape
        (1,)
        """
        estimator = cls(**cls._params_of(model, params))
        estimator._adopt(model_copy(model))
        estimator.target_mean_ = estimator.target_scale_ = None
        return estimator

    def _output_names(self) -> None:
        return None

    _extra_state_keys = ("target_mean_", "target_scale_")

    def _extra_state(self) -> dict[str, Any]:
        if self.target_scale_ is None:
            return {"target_mean_": None, "target_scale_": None}
        return {
            "target_mean_": self.target_mean_.tolist(),
            "target_scale_": self.target_scale_.tolist(),
        }

    def _decode_state(self, key: str, value: Any) -> Any:
        if key in ("target_mean_", "target_scale_") and value is not None:
            return np.asarray(value, dtype=np.float64)
        return value
