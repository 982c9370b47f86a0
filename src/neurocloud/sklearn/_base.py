"""What the two estimators share: hyperparameters, the network, the training loop.

The network is an ordinary :class:`neurocloud.Sequential` kept in ``model_``: a
``Normalization`` layer when ``standardize`` is on, the hidden ``Dense`` layers (each followed
by ``Dropout`` when ``dropout > 0``) and an output ``Dense`` layer. Training is the engine's
``fit``; a callback records ``loss_curve_``/``validation_scores_`` and applies the stopping
rule of scikit-learn's MLP (stop once the monitored value has not improved by ``tol`` for
more than ``n_iter_no_change`` epochs).
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data

from neurocloud.nn import activations, initializers, layers, optim
from neurocloud.nn.callbacks import Callback
from neurocloud.nn.sequential import Sequential
from neurocloud.nn.validation import check_dtype, check_number
from neurocloud.sklearn._monitor import Monitor
from neurocloud.sklearn._persist import PersistMixin

__all__ = ["BaseNeuralNet"]

# scikit-learn's MLP calls the sigmoid "logistic"; accept its spelling.
_ACTIVATION_ALIASES = {"logistic": "sigmoid"}
_AUTO_BATCH = 200  # "auto" batch size, as in scikit-learn's MLP: min(200, n_samples)


def _standardization(X: np.ndarray, sample_weight: np.ndarray | None):
    """Weighted mean and standard deviation of each column (scale 1 for constant ones)."""
    mean = np.average(X, axis=0, weights=sample_weight)
    std = np.sqrt(np.average((X - mean) ** 2, axis=0, weights=sample_weight))
    tiny = 10 * np.finfo(np.float64).eps * np.maximum(np.abs(mean), 1.0)
    return mean, np.where(std > tiny, std, 1.0)


def _stochastic(estimator: BaseNeuralNet) -> bool:
    if str(estimator.optimizer).lower() == "lbfgs":
        raise AttributeError(
            "partial_fit needs a stochastic optimizer; lbfgs works on the whole data set."
        )
    return True


class BaseNeuralNet(PersistMixin, BaseEstimator):
    """Base class of :class:`NeuralNetClassifier` and :class:`NeuralNetRegressor`.

    Subclasses define the output layer and loss (``_prepare_targets``), the validation
    score (``_validation_score``) and the fitted state they add (``_extra_state``).
    """

    _y_numeric = False

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        kernel_initializer="glorot_uniform",
        optimizer="adam",
        learning_rate=1e-3,
        batch_size="auto",
        max_epochs=200,
        alpha=1e-4,
        dropout=0.0,
        momentum=0.9,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        tol=1e-4,
        standardize=True,
        shuffle=True,
        warm_start=False,
        random_state=None,
        dtype="auto",
        verbose=0,
        callbacks=None,
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.kernel_initializer = kernel_initializer
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.alpha = alpha
        self.dropout = dropout
        self.momentum = momentum
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.standardize = standardize
        self.shuffle = shuffle
        self.warm_start = warm_start
        self.random_state = random_state
        self.dtype = dtype
        self.verbose = verbose
        self.callbacks = callbacks

    # --- hyperparameters ----------------------------------------------------------------
    def _hidden_sizes(self) -> tuple[int, ...]:
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, numbers.Integral) else sizes
        try:
            sizes = tuple(sizes)
        except TypeError:
            sizes = None
        if sizes is None or not all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s > 0 for s in sizes
        ):
            raise ValueError(
                "Expected hidden_layer_sizes to be a positive integer or a sequence of them, "
                "e.g. (100,) or (128, 64). Received: "
                f"hidden_layer_sizes={self.hidden_layer_sizes!r}"
            )
        return tuple(int(s) for s in sizes)

    def _activation_name(self) -> str:
        name = _ACTIVATION_ALIASES.get(self.activation, self.activation)
        return activations.get(name).name

    def _optimizer_name(self) -> str:
        if not isinstance(self.optimizer, str) or self.optimizer.lower() not in optim.available():
            raise ValueError(
                f"Expected optimizer to be one of {', '.join(optim.available())}. "
                f"Received: optimizer={self.optimizer!r}"
            )
        return self.optimizer.lower()

    def _check_params(self) -> None:
        self._hidden_sizes()
        self._activation_name()
        self._optimizer_name()
        initializers.canonical(self.kernel_initializer)
        self._resolved_dtype(None)
        self._user_callbacks()
        check_number(self.learning_rate, "learning_rate", low=0, low_open=True)
        if not (isinstance(self.batch_size, str) and self.batch_size == "auto"):
            check_number(self.batch_size, "batch_size (or 'auto')", low=1, integer=True)
        check_number(self.max_epochs, "max_epochs", low=1, integer=True)
        check_number(self.alpha, "alpha", low=0)
        check_number(self.dropout, "dropout", low=0, high=1, high_open=True)
        check_number(self.momentum, "momentum", low=0, high=1, high_open=True)
        fraction = self.validation_fraction
        check_number(fraction, "validation_fraction", low=0, high=1, low_open=True, high_open=True)
        check_number(self.n_iter_no_change, "n_iter_no_change", low=1, integer=True)
        check_number(self.tol, "tol", low=0)

    def _resolved_dtype(self, X: np.ndarray | None) -> np.dtype:
        """``dtype``, with "auto" meaning X's precision: float32 for float32 X, else float64
        (as scikit-learn's MLP does)."""
        if isinstance(self.dtype, str) and self.dtype == "auto":
            float32 = X is not None and X.dtype == np.float32
            return np.dtype(np.float32 if float32 else np.float64)
        try:
            return check_dtype(self.dtype)
        except ValueError:
            raise ValueError(
                f"Expected dtype 'auto', 'float32' or 'float64'. Received: dtype={self.dtype!r}"
            ) from None

    def _user_callbacks(self) -> list[Callback]:
        """``callbacks`` as a list, checked: each must be an ``nc.callbacks.Callback``."""
        given = [] if self.callbacks is None else self.callbacks
        if isinstance(given, Callback):
            given = [given]
        if not isinstance(given, (list, tuple)) or not all(isinstance(c, Callback) for c in given):
            raise ValueError(
                "Expected callbacks to be None or a list of nc.callbacks.Callback objects. "
                f"Received: callbacks={self.callbacks!r}"
            )
        return list(given)

    def _new_optimizer(self) -> optim.Optimizer:
        name, lr = self._optimizer_name(), float(self.learning_rate)
        if name == "sgd":
            return optim.SGD(lr=lr, momentum=self.momentum, nesterov=self.momentum > 0)
        if name == "lbfgs":
            return optim.LBFGS()
        return optim.get(name, lr=lr)

    def _new_network(self, X, sample_weight, n_outputs: int, seed: int) -> Sequential:
        stack: list[layers.Layer] = []
        if self.standardize:
            # Statistics rounded to the model's dtype, as they will be saved, so that a
            # saved and reloaded model computes exactly what this one does.
            dtype = self._resolved_dtype(X)
            mean, scale = (
                s.astype(dtype).astype(np.float64) for s in _standardization(X, sample_weight)
            )
            stack.append(layers.Normalization(mean=mean, scale=scale))
        for units in self._hidden_sizes():
            stack.append(
                layers.Dense(
                    units,
                    activation=self._activation_name(),
                    kernel_initializer=self.kernel_initializer,
                )
            )
            if self.dropout:
                stack.append(layers.Dropout(self.dropout))
        stack.append(
            layers.Dense(
                n_outputs,
                activation=self.out_activation_,
                kernel_initializer=self.kernel_initializer,
            )
        )
        return Sequential(
            stack,
            input_dim=X.shape[1],
            seed=seed,
            dtype=self._resolved_dtype(X),
            name=type(self).__name__,
        )

    # --- training -----------------------------------------------------------------------
    def _fit(self, X, y, sample_weight=None, *, incremental: bool, classes=None):
        self._check_params()
        if incremental and self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True (there is no held-out "
                "data across calls); set early_stopping=False or use fit."
            )
        first_pass = not hasattr(self, "model_") or (not self.warm_start and not incremental)
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            y_numeric=self._y_numeric,
            dtype=(np.float64, np.float32),
            reset=first_pass,
        )
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
        Y, sample_weight, stratify = self._prepare_targets(
            y, sample_weight, first_pass=first_pass, incremental=incremental, classes=classes
        )
        rng = check_random_state(self.random_state)
        if first_pass:
            seed = int(rng.randint(np.iinfo(np.int32).max))
            self.model_ = self._new_network(X, sample_weight, Y.shape[1], seed)
            self._to_user_space()  # model_ predicts in the user's units between fits
            self.loss_curve_, self.t_, self.n_iter_ = [], 0, 0
            self.best_loss_ = math.inf
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._new_optimizer()
        if not incremental:
            self.n_iter_ = 0
        if self.early_stopping:
            if getattr(self, "validation_scores_", None) is None or first_pass:
                self.validation_scores_, self.best_validation_score_ = [], -math.inf
            self.best_loss_ = None
        else:
            self.validation_scores_ = self.best_validation_score_ = None
            if self.best_loss_ is None:
                self.best_loss_ = math.inf

        X = X.astype(self.model_.dtype, copy=False)
        Y = Y.astype(self.model_.dtype, copy=False)
        validation = None
        if self.early_stopping:
            train, held_out = self._split(len(X), stratify, rng)
            sw_val = None if sample_weight is None else sample_weight[held_out]
            validation = (X[held_out], Y[held_out], sw_val)
            X, Y = X[train], Y[train]
            sample_weight = None if sample_weight is None else sample_weight[train]
        monitor = self._train(
            X, Y, sample_weight, validation, epochs=1 if incremental else self.max_epochs
        )
        self.loss_ = self.loss_curve_[-1]
        self.stop_reason_ = self.model_.history.stop_reason
        if not np.isfinite(self.model_.flat_parameters()).all() or not math.isfinite(self.loss_):
            raise ValueError(
                f"Training diverged: the loss became {self.loss_} at epoch {self.n_iter_}. "
                "Lower learning_rate, or set standardize=True."
            )
        if not incremental and not monitor.stopped and monitor.epochs == self.max_epochs:
            watched = "validation score" if self.early_stopping else "training loss"
            warnings.warn(
                f"{type(self).__name__} reached max_epochs={self.max_epochs} while the "
                f"{watched} was still improving by more than tol={self.tol}; increase "
                "max_epochs (or tol) for a converged model.",
                ConvergenceWarning,
                stacklevel=3,
            )
        return self

    def _split(self, n: int, stratify, rng) -> tuple[np.ndarray, np.ndarray]:
        if stratify is not None and np.unique(stratify, return_counts=True)[1].min() < 2:
            stratify = None  # a class with one row cannot be split both ways
        train, held_out = train_test_split(
            np.arange(n),
            test_size=self.validation_fraction,
            stratify=stratify,
            random_state=rng.randint(np.iinfo(np.int32).max),
        )
        if len(held_out) < 2:
            raise ValueError(
                f"early_stopping needs at least 2 validation rows; validation_fraction="
                f"{self.validation_fraction} of {n} rows gives {len(held_out)}. Increase "
                "validation_fraction or give more data."
            )
        return train, held_out

    def _train(self, X, Y, sample_weight, validation, epochs: int) -> Monitor:
        full_batch = self._optimizer.full_batch
        n = len(X)
        if full_batch or self.batch_size == "auto":
            batch = n if full_batch else min(_AUTO_BATCH, n)
        else:
            batch = min(int(self.batch_size), n)
        # alpha is scaled as in scikit-learn's MLP: 0.5 * alpha * ||W||^2 / (batch weight).
        mean_weight = 1.0 if sample_weight is None else float(sample_weight.mean())
        l2 = float(self.alpha) / (batch * mean_weight) if mean_weight > 0 else 0.0
        monitor = Monitor(self, n, validation)
        self._to_training_space()
        try:
            self.model_.fit(
                X,
                Y,
                loss=self._loss_name(),
                optimizer=self._optimizer,
                epochs=epochs,
                batch_size=None if full_batch else batch,
                shuffle=bool(self.shuffle),
                callbacks=[monitor, *self._user_callbacks()],
                l2=l2,
                sample_weight=sample_weight,
            )
        finally:
            self._to_user_space()
        return monitor

    def _to_training_space(self) -> None:
        """Hook: bring ``model_`` to the space it trains in (the regressor's scaled targets)."""

    def _to_user_space(self) -> None:
        """Hook: undo :meth:`_to_training_space`, so ``model_`` predicts in user units."""

    # --- subclass contract --------------------------------------------------------------
    def _prepare_targets(self, y, sample_weight, *, first_pass, incremental, classes):
        raise NotImplementedError

    def _validation_score(self, model, X, Y, sample_weight) -> float:
        raise NotImplementedError

    def _loss_name(self) -> str:
        raise NotImplementedError

    # --- prediction -------------------------------------------------------------------
    def _outputs(self, X, logits: bool = False) -> np.ndarray:
        """The network's output (or logits) for validated ``X``, as float64."""
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, dtype=(np.float64, np.float32))
        out = self.model_.forward(X.astype(self.model_.dtype, copy=False), logits=logits)
        return out.astype(np.float64)
