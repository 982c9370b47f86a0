"""``NeuralNetClassifier``: binary, multiclass and multilabel classification."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit, log_expit, logsumexp
from sklearn.base import ClassifierMixin
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target, unique_labels
from sklearn.utils.validation import column_or_1d

from neurocloud.nn.sequential import Sequential
from neurocloud.sklearn._base import BaseNeuralNet, _stochastic
from neurocloud.sklearn._persist import model_copy

__all__ = ["NeuralNetClassifier"]


class NeuralNetClassifier(ClassifierMixin, BaseNeuralNet):
    """A neural-network classifier on the neurocloud engine, with scikit-learn's API.

    The network ends in a softmax over ``classes_`` (a sigmoid per label for multilabel
    ``y``) and is trained on cross-entropy; :meth:`to_sequential` and ``nc.save`` give a
    model whose output is the class probabilities.

    Parameters
    ----------
    hidden_layer_sizes : int or tuple of int, default=(100,)
        Units of each hidden ``Dense`` layer.
    activation : str, default="relu"
        Hidden activation: any ``nc.activations`` name ("relu", "tanh", "sigmoid", "gelu",
        ...; scikit-learn's "logistic" means "sigmoid").
    kernel_initializer : str, default="glorot_uniform"
        Initialiser of every ``Dense`` kernel (any ``nc.initializers`` name). The default is
        scikit-learn's MLP initialisation; it did better than "he_uniform" on the small
        benchmark data sets (see ``benchmarks/accuracy.py``).
    optimizer : {"adam", "adamw", "sgd", "rmsprop", "lbfgs"}, default="adam"
    learning_rate : float, default=1e-3
        Step size (not used by "lbfgs").
    batch_size : int or "auto", default="auto"
        Rows per gradient step; "auto" is ``min(200, n_samples)``; clipped to the data.
    max_epochs : int, default=200
        Passes over the data (iterations for "lbfgs").
    alpha : float, default=1e-4
        L2 penalty on the kernels, scaled as in scikit-learn's MLP (divided by the batch).
    dropout : float, default=0.0
        Dropout rate after each hidden layer while training.
    momentum : float, default=0.9
        Nesterov momentum of "sgd".
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows (stratified), stop when their
        accuracy stops improving, and keep the best epoch's weights.
    validation_fraction : float, default=0.1
    n_iter_no_change : int, default=10
        Stop once the training loss (or validation score) has not improved by ``tol`` for
        more than this many epochs.
    tol : float, default=1e-4
    standardize : bool, default=True
        Standardise the features with a ``Normalization`` first layer adapted to the
        (weighted) training data; it is saved with the model, so serving applies it too.
    shuffle : bool, default=True
    warm_start : bool, default=False
        Continue from the current weights on the next ``fit``.
    random_state : int, RandomState or None, default=None
    dtype : {"auto", "float32", "float64"}, default="auto"
        Precision of the network: "auto" trains in float32 when ``X`` is float32 and in
        float64 otherwise, as scikit-learn's MLP does.
    verbose : int, default=0
        Print the loss (and validation score) after each epoch.
    callbacks : list of nc.callbacks.Callback, default=None
        Passed to the engine's ``fit`` after the estimator's own; each sees the network
        after every epoch and can stop training (``model.stop_training = True``).
    class_weight : dict, "balanced" or None, default=None
        Weight of each class in the loss, multiplied into ``sample_weight``; "balanced"
        uses ``n_samples / (n_classes * count(class))``.

    Attributes
    ----------
    classes_, model_ (the fitted ``Sequential``), n_features_in_, feature_names_in_,
    n_outputs_ (output units), out_activation_, loss_curve_ (training loss per epoch,
    L2 term included), loss_, best_loss_ (None with early stopping), validation_scores_
    and best_validation_score_ (None without early stopping), n_iter_ (epochs run by the
    last ``fit``; counts up over ``partial_fit`` calls), t_ (rows seen).

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from neurocloud.sklearn import NeuralNetClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = NeuralNetClassifier((32,), learning_rate=0.01, max_epochs=100, random_state=0)
    >>> clf.fit(X, y).score(X, y) > 0.9
    True
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    """

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
        class_weight=None,
    ):
        super().__init__(
            hidden_layer_sizes,
            activation,
            optimizer=optimizer,
            learning_rate=learning_rate,
            batch_size=batch_size,
            max_epochs=max_epochs,
            alpha=alpha,
            dropout=dropout,
            momentum=momentum,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            tol=tol,
            standardize=standardize,
            shuffle=shuffle,
            warm_start=warm_start,
            random_state=random_state,
            dtype=dtype,
            verbose=verbose,
            callbacks=callbacks,
        )
        self.class_weight = class_weight

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags

    # --- fitting ------------------------------------------------------------------------
    def fit(self, X, y, sample_weight=None) -> NeuralNetClassifier:
        """Train on ``X`` of shape (n_samples, n_features) and labels ``y``.

        ``y`` holds class labels (any sortable type) or, for multilabel problems, a 0/1
        indicator matrix of shape (n_samples, n_labels).
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(_stochastic)
    def partial_fit(self, X, y, sample_weight=None, classes=None) -> NeuralNetClassifier:
        """One epoch over ``(X, y)``, keeping the weights and optimizer state.

        ``classes`` (every label ``y`` may hold across calls) is required on the first
        call. With ``standardize``, the first call's rows fix the feature statistics.
        """
        if (
            classes is not None
            and hasattr(self, "classes_")
            and not np.array_equal(unique_labels(classes), self.classes_)
        ):
            raise ValueError(
                f"classes={list(classes)!r} differs from the classes of the first call, "
                f"{self.classes_.tolist()!r}."
            )
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _multilabel(self) -> bool:
        return self.out_activation_ == "sigmoid" and self.n_outputs_ > 1

    def _single_sigmoid(self) -> bool:
        """A binary network with one sigmoid unit, P(classes_[1]) (from ``from_sequential``)."""
        return self.out_activation_ == "sigmoid" and self.n_outputs_ == 1

    def _loss_name(self) -> str:
        if self.out_activation_ == "softmax":
            return "categorical_crossentropy"
        return "binary_crossentropy"

    def _prepare_targets(self, y, sample_weight, *, first_pass, incremental, classes):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        target = type_of_target(y)
        if target not in ("binary", "multiclass", "multilabel-indicator"):
            raise ValueError(
                f"{type(self).__name__} handles binary, multiclass and multilabel targets; "
                f"received a {target} y."
            )
        multilabel = target == "multilabel-indicator"
        if first_pass:
            if incremental and classes is None:
                raise ValueError(
                    "classes must be given on the first call to partial_fit: every label y "
                    "may hold across calls, e.g. classes=np.unique(y_all)."
                )
            if multilabel:
                self.classes_ = np.arange(y.shape[1])
            else:
                self.classes_ = unique_labels(classes if incremental else y)
            self.n_outputs_ = len(self.classes_)
            self.out_activation_ = "sigmoid" if multilabel else "softmax"
        elif multilabel != self._multilabel():
            kinds = {True: "multilabel", False: "single-label"}
            raise ValueError(
                f"y is {kinds[multilabel]} but the estimator was fitted on "
                f"{kinds[self._multilabel()]} targets."
            )
        if multilabel:
            if y.shape[1] != self.n_outputs_:
                raise ValueError(
                    f"y has {y.shape[1]} labels per row; the estimator was fitted on "
                    f"{self.n_outputs_}."
                )
            if self.class_weight is not None:
                raise ValueError(
                    "class_weight is not supported for multilabel y; pass sample_weight."
                )
            return y.astype(np.float64), sample_weight, None

        present = unique_labels(y)
        unknown = np.setdiff1d(present, self.classes_)
        if len(unknown):
            raise ValueError(
                f"y has labels {unknown.tolist()!r} that are not in classes_ "
                f"{self.classes_.tolist()!r}."
            )
        warm = self.warm_start and not first_pass and not incremental
        if warm and len(present) != len(self.classes_):
            raise ValueError(
                "warm_start needs y to hold the same classes as the previous fit: "
                f"previously {self.classes_.tolist()!r}, now {present.tolist()!r}."
            )
        index = np.searchsorted(self.classes_, y)
        if self._single_sigmoid():
            targets = index.reshape(-1, 1).astype(np.float64)  # a single-unit binary model
        else:
            targets = np.eye(self.n_outputs_)[index]
        if self.class_weight is not None:
            weights = self._class_weights(index, incremental)[index]
            sample_weight = weights if sample_weight is None else sample_weight * weights
        return targets, sample_weight, index

    def _class_weights(self, index: np.ndarray, incremental: bool) -> np.ndarray:
        weight = self.class_weight
        if isinstance(weight, str) and weight == "balanced":
            if incremental:
                raise ValueError(
                    "class_weight='balanced' needs the whole data set, which partial_fit "
                    "does not see; pass a dict, e.g. from "
                    "sklearn.utils.class_weight.compute_class_weight."
                )
            present, counts = np.unique(index, return_counts=True)
            per_class = np.ones(len(self.classes_))
            per_class[present] = len(index) / (len(present) * counts)
            return per_class
        if isinstance(weight, dict):
            unknown = [k for k in weight if k not in set(self.classes_.tolist())]
            if unknown:
                raise ValueError(
                    f"class_weight has labels {unknown!r} that are not in classes_ "
                    f"{self.classes_.tolist()!r}."
                )
            return np.array([float(weight.get(c, 1.0)) for c in self.classes_.tolist()])
        raise ValueError(
            "Expected class_weight to be None, 'balanced' or a dict {label: weight}. "
            f"Received: class_weight={weight!r}"
        )

    def _validation_score(self, model, X, Y, sample_weight) -> float:
        logits = model.forward(X, logits=True)
        if self._multilabel():
            correct = ((logits > 0) == (Y > 0.5)).all(axis=1)
        elif self._single_sigmoid():
            correct = (logits[:, 0] > 0) == (Y[:, 0] > 0.5)
        else:
            correct = logits.argmax(axis=1) == Y.argmax(axis=1)
        return float(np.average(correct, weights=sample_weight))

    # --- prediction ---------------------------------------------------------------------
    def predict(self, X) -> np.ndarray:
        """Class labels (a 0/1 indicator matrix for multilabel ``y``)."""
        logits = self._outputs(X, logits=True)
        if self._multilabel():
            return (logits > 0).astype(np.int64)
        if self._single_sigmoid():
            return self.classes_[(logits[:, 0] > 0).astype(np.int64)]
        return self.classes_[logits.argmax(axis=1)]

    def predict_proba(self, X) -> np.ndarray:
        """Probability of each class in ``classes_`` (of each label, for multilabel)."""
        logits = self._outputs(X, logits=True)
        if self.out_activation_ == "softmax":
            return np.exp(logits - logsumexp(logits, axis=1, keepdims=True))
        p = expit(logits)
        return p if self._multilabel() else np.hstack([1.0 - p, p])

    def predict_log_proba(self, X) -> np.ndarray:
        """``log(predict_proba(X))``, computed from the logits without underflow."""
        logits = self._outputs(X, logits=True)
        if self.out_activation_ == "softmax":
            return logits - logsumexp(logits, axis=1, keepdims=True)
        if self._multilabel():
            return log_expit(logits)
        return np.hstack([log_expit(-logits), log_expit(logits)])

    # --- conversion and persistence -----------------------------------------------------
    @classmethod
    def from_sequential(cls, model: Sequential, *, classes=None, **params: Any):
        """Wrap a trained ``Sequential`` whose output is class probabilities.

        A softmax output is multiclass (``classes`` default to ``0..k-1``); a single
        sigmoid unit is binary (default ``[0, 1]``); several sigmoid units are multilabel.
        ``params`` set hyperparameters used if the estimator is trained further.

        >>> import neurocloud as nc
        >>> net = nc.Sequential([nc.layers.Dense(3, activation="softmax")], input_dim=2)
        >>> NeuralNetClassifier.from_sequential(net, classes=["a", "b", "c"]).predict(
        ...     [[0.0, 0.0]]).shape
        (1,)
        """
        estimator = cls(**cls._params_of(model, params))
        estimator._adopt(model_copy(model))
        k, activation = estimator.n_outputs_, estimator.out_activation_
        if activation not in ("softmax", "sigmoid"):
            raise ValueError(
                "A classifier needs a network ending in softmax (classes) or sigmoid (binary "
                f"or multilabel); this one ends in {activation!r}."
            )
        expected = 2 if (activation == "sigmoid" and k == 1) else k
        labels = np.arange(expected) if classes is None else unique_labels(classes)
        if activation == "sigmoid" and k > 1 and classes is not None:
            raise ValueError(
                "A multilabel network's classes_ are its label indices 0..k-1; do not pass classes."
            )
        if len(labels) != expected:
            raise ValueError(
                f"The network gives {expected} class probabilities but classes has "
                f"{len(labels)} labels: {list(labels)!r}."
            )
        if classes is not None and list(labels) != list(classes):
            # classes_ is sorted (scikit-learn's contract); output column i is classes[i].
            raise ValueError(
                f"classes must be sorted and unique, one per output column in order; received "
                f"{list(classes)!r}. Sort them and reorder the network's outputs to match."
            )
        estimator.classes_ = labels
        return estimator

    def _output_names(self) -> list[str]:
        if self._single_sigmoid():
            return [str(self.classes_[1])]
        return [str(c) for c in self.classes_.tolist()]

    _extra_state_keys = ("classes_",)

    def _extra_state(self) -> dict[str, Any]:
        return {"classes_": {"values": self.classes_.tolist(), "dtype": self.classes_.dtype.str}}

    def _decode_state(self, key: str, value: Any) -> Any:
        if key == "classes_":
            return np.array(value["values"], dtype=np.dtype(value["dtype"]))
        return value
