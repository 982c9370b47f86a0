"""Estimators as safe artifacts: for ``nc.save``/``nc.load`` and for pickling.

A fitted estimator is its network (a ``Sequential``: JSON config plus safetensors weights)
and a JSON description: class name, hyperparameters and fitted attributes (classes, label
encoding, loss curve, ...), plus the optimizer with its state so that ``partial_fit`` after a
reload continues exactly. ``nc.save`` writes that description into ``model.json``'s
``extra``; pickling writes one safetensors blob whose metadata holds it. Neither path
pickles a NumPy array, and loading never runs code from the data.

>>> import pickle, numpy as np
>>> from neurocloud.sklearn import NeuralNetRegressor
>>> reg = NeuralNetRegressor((4,), max_epochs=5, random_state=0).fit(np.eye(3), [0.0, 1.0, 2.0])
>>> b"numpy" in pickle.dumps(reg)  # the weights travel as safetensors bytes
False
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.utils.validation import check_is_fitted

from neurocloud._version import __version__
from neurocloud.artifact import Artifact, ArtifactError, register_kind
from neurocloud.nn import layers, optim_state, serialization
from neurocloud.nn.sequential import Sequential

if TYPE_CHECKING:
    from neurocloud.sklearn._base import BaseNeuralNet

__all__ = [
    "PersistMixin",
    "artifact_contents",
    "from_artifact",
    "model_copy",
    "to_bytes",
    "unpickle",
]


def model_copy(model: Sequential) -> Sequential:
    """An independent copy of ``model`` (through the safe bytes format), history kept."""
    copy = Sequential.from_bytes(model.to_bytes())
    copy.history = model.history
    return copy


FORMAT = "neurocloud.estimator"
_OPTIMIZER_KEY = "optimizer"  # a tensor name no layer uses (theirs are "layers.<i>.<name>")
STATE_VERSION = 1
#: estimator classes by name, filled as they are defined (see PersistMixin.__init_subclass__)
_CLASSES: dict[str, type[BaseNeuralNet]] = {}


def _encode(value: Any) -> Any:
    """Hyperparameters to JSON, keeping tuples and non-string dict keys recoverable."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.random.RandomState):
        return None  # a generator's state is not a setting; reloaded estimators get None
    if isinstance(value, (tuple, np.ndarray)):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, dict):
        return {"dict": [[_encode(k), _encode(v)] for k, v in value.items()]}
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(
        f"Cannot store a hyperparameter of type {type(value).__name__} ({value!r}) in a "
        "model directory: use numbers, strings, tuples, lists or dicts of them."
    )


def _decode(value: Any) -> Any:
    if isinstance(value, list):
        return [_decode(v) for v in value]
    if isinstance(value, dict):
        if "tuple" in value:
            return tuple(_decode(v) for v in value["tuple"])
        if "dict" in value:
            return {_decode(k): _decode(v) for k, v in value["dict"]}
        raise ValueError(f"Unknown encoded hyperparameter {value!r}.")
    return value


def estimator_state(estimator: BaseNeuralNet) -> dict[str, Any]:
    """The JSON description stored as ``extra["estimator"]`` in ``model.json``."""
    import sklearn

    return {
        "class": type(estimator).__name__,
        "state_version": STATE_VERSION,
        # callbacks are training-time objects (often holding a logger or a client), not
        # settings of the model: they are not stored.
        "params": {
            k: _encode(None if k == "callbacks" else v)
            for k, v in estimator.get_params(deep=False).items()
        },
        "fitted": estimator._state(),
        "neurocloud_version": __version__,
        "sklearn_version": sklearn.__version__,
    }


def artifact_contents(estimator: BaseNeuralNet) -> dict[str, Any]:
    """What ``nc.save`` needs: the network, the description, feature and output names."""
    check_is_fitted(estimator)
    names = getattr(estimator, "feature_names_in_", None)
    return {
        "kind": "estimator",
        "model": estimator.model_,
        "extra": {"estimator": estimator_state(estimator)},
        "feature_names": None if names is None else [str(n) for n in names],
        "output_names": estimator._output_names(),
        "optimizer": getattr(estimator, "_optimizer", None),
    }


def _estimator_class(name: Any) -> type[BaseNeuralNet]:
    if name not in _CLASSES:
        raise ValueError(
            f"Unknown estimator class {name!r}; expected one of {', '.join(sorted(_CLASSES))}."
        )
    return _CLASSES[name]


def _rebuild(state: dict[str, Any], model: Sequential, cls=None, params=None) -> BaseNeuralNet:
    cls = cls or _estimator_class(state.get("class"))
    if params is None:
        params = {k: _decode(v) for k, v in state.get("params", {}).items()}
    known = set(cls._get_param_names())
    unknown = sorted(set(params) - known)
    if unknown:
        raise ValueError(
            f"The saved {cls.__name__} has hyperparameters {unknown} that this version does "
            f"not know (known: {', '.join(sorted(known))})."
        )
    estimator = cls(**params)
    estimator._restore(dict(state["fitted"]), model)
    return estimator


def from_artifact(artifact: Artifact) -> BaseNeuralNet:
    """The fitted estimator that ``nc.save`` stored in ``artifact`` (``nc.load`` calls this).

    >>> import tempfile, numpy as np, neurocloud as nc
    >>> from neurocloud.sklearn import NeuralNetClassifier
    >>> clf = NeuralNetClassifier((4,), max_epochs=3, tol=0, random_state=0)
    >>> clf = clf.fit([[0.0], [1.0], [2.0], [3.0]], ["a", "a", "b", "b"])
    >>> nc.load(nc.save(clf, tempfile.mkdtemp() + "/clf")).classes_
    array(['a', 'b'], dtype='<U1')
    """
    state = artifact.metadata.get("extra", {}).get("estimator")
    where = f"{artifact.path}/model.json" if artifact.path else "model.json"
    if not isinstance(state, dict) or "fitted" not in state:
        raise ArtifactError(f"{where}: extra.estimator is not an estimator description.")
    try:
        estimator = _rebuild(state, artifact.model)
    except (KeyError, TypeError, ValueError) as exc:
        raise ArtifactError(f"{where}: cannot rebuild the estimator: {exc}") from None
    optimizer = artifact.load_optimizer()
    if optimizer is not None:
        estimator._optimizer = optimizer
    return estimator


def to_bytes(estimator: BaseNeuralNet) -> bytes:
    """A fitted estimator as safe bytes: weights as tensors, the rest as JSON metadata."""
    model = estimator.model_
    tensors = dict(model.state_dict())
    optimizer = getattr(estimator, "_optimizer", None)
    if optimizer is not None:  # its own bytes (with the generator state), as one byte tensor
        blob = optim_state.to_bytes(optimizer, model.rng)
        tensors[_OPTIMIZER_KEY] = np.frombuffer(blob, np.uint8)
    meta = {"format": FORMAT, "model": model.get_config(), "estimator": estimator._state()}
    return serialization.pack(tensors, meta)


def unpickle(cls: type[BaseNeuralNet], params: dict[str, Any], blob: bytes | None):
    """Rebuild an estimator from :meth:`BaseNeuralNet.__reduce__`'s output."""
    if blob is None:
        return cls(**params)
    tensors, meta = serialization.unpack(blob)
    if meta.get("format") != FORMAT:
        raise ValueError(f"Not a pickled neurocloud estimator: format {meta.get('format')!r}.")
    config, fitted = meta["model"], meta["estimator"]
    if isinstance(config, str):  # pickled by neurocloud 0.1
        config, fitted = json.loads(config), json.loads(fitted)
    optimizer = tensors.pop(_OPTIMIZER_KEY, None)
    model = Sequential.from_config(config)
    model.load_state_dict(tensors)
    estimator = _rebuild({"fitted": fitted}, model, cls, params)
    if optimizer is not None:
        estimator._optimizer, rng = optim_state.from_bytes(optimizer.tobytes())
        if rng is not None:
            optim_state.restore_rng(model.rng, rng)
    return estimator


register_kind("estimator", from_artifact)


class PersistMixin:
    """Conversion to and from a ``Sequential``, ``nc.save`` support and safe pickling."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _CLASSES[cls.__name__] = cls

    # --- conversion -------------------------------------------------------------------
    def to_sequential(self) -> Sequential:
        """An independent copy of the fitted network, ready to save, serve or export.

        Its first layer is the ``Normalization`` (when ``standardize``) and its output is
        what the estimator predicts from: class probabilities for a classifier, values in
        the target's units for a regressor.
        """
        check_is_fitted(self)
        return model_copy(self.model_)

    def _adopt(self, model: Sequential) -> None:
        """Take ``model`` (a trained network) as this estimator's fitted state."""
        self.model_ = model
        self.n_features_in_ = model.input_dim
        self.n_outputs_ = model.output_dim
        self.out_activation_ = model.layers[-1].activation.name
        history = model.history.history.get("loss", []) if model.history is not None else []
        self.loss_curve_ = [float(v) for v in history]
        self.n_iter_ = len(self.loss_curve_)
        self.t_ = 0
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.best_loss_ = min(self.loss_curve_) if self.loss_curve_ else None
        self.validation_scores_ = self.best_validation_score_ = None

    @classmethod
    def _params_of(cls, model: Sequential, params: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(model, Sequential):
            raise TypeError(f"Expected a neurocloud.Sequential. Received: {type(model).__name__}")
        if not model.built:
            raise ValueError("The model is not built: give it input_dim or fit it first.")
        last = model.layers[-1]
        if getattr(last, "activation", None) is None:
            raise ValueError(
                f"The model's last layer must be Dense or Activation; received "
                f"{type(last).__name__}."
            )
        dense = [layer for layer in model.layers if isinstance(layer, layers.Dense)]
        dropout = [layer.rate for layer in model.layers if isinstance(layer, layers.Dropout)]
        inferred = {
            "hidden_layer_sizes": tuple(layer.units for layer in dense[:-1]),
            "standardize": isinstance(model.layers[0], layers.Normalization),
            "dropout": dropout[0] if dropout else 0.0,
            "dtype": model.dtype.name,
        }
        if len(dense) > 1:
            inferred["activation"] = dense[0].activation.name
            inferred["kernel_initializer"] = dense[0].kernel_initializer
        return {**inferred, **params}

    # --- persistence: pickle and nc.save go through the safe artifact format -------------
    def __reduce__(self):
        blob = to_bytes(self) if hasattr(self, "model_") else None
        return (unpickle, (type(self), self.get_params(deep=False), blob))

    def __neurocloud_artifact__(self) -> dict[str, Any]:
        return artifact_contents(self)

    def _state(self) -> dict[str, Any]:
        """The fitted attributes as JSON-able values (the network itself aside)."""
        names = getattr(self, "feature_names_in_", None)
        return {
            "n_features_in_": int(self.n_features_in_),
            "feature_names_in_": None if names is None else [str(n) for n in names],
            "n_outputs_": int(self.n_outputs_),
            "out_activation_": self.out_activation_,
            "loss_curve_": [float(v) for v in self.loss_curve_],
            "validation_scores_": None
            if self.validation_scores_ is None
            else [float(v) for v in self.validation_scores_],
            "best_loss_": self.best_loss_,
            "best_validation_score_": self.best_validation_score_,
            "loss_": self.loss_,
            "n_iter_": int(self.n_iter_),
            "t_": int(self.t_),
            **self._extra_state(),
        }

    def _extra_state(self) -> dict[str, Any]:
        return {}

    #: the keys of :meth:`_extra_state`
    _extra_state_keys: tuple[str, ...] = ()
    _state_keys = (
        "n_features_in_", "feature_names_in_", "n_outputs_", "out_activation_", "loss_curve_",
        "validation_scores_", "best_loss_", "best_validation_score_", "loss_", "n_iter_", "t_",
    )  # fmt: skip

    def _restore(self, state: dict[str, Any], model: Sequential) -> None:
        """Set the fitted attributes from :meth:`_state` and the saved network."""
        expected = {*self._state_keys, *self._extra_state_keys}
        if set(state) != expected:
            raise ValueError(
                f"the fitted state has keys {sorted(state)}; expected {sorted(expected)}."
            )
        self.model_ = model
        for key, value in state.items():
            if key == "feature_names_in_":
                if value is not None:
                    self.feature_names_in_ = np.asarray(value, dtype=object)
            else:
                setattr(self, key, self._decode_state(key, value))

    def _decode_state(self, key: str, value: Any) -> Any:
        return value
