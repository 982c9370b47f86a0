"""The training settings are declared once: the CLI options, the SageMaker hyperparameters and
``train_job``'s keywords all come from ``TrainSettings`` (and ``DataSettings``)."""

from __future__ import annotations

import dataclasses

import pytest

import neurocloud as nc
from neurocloud.cli.train import train
from neurocloud.cloud.hyperparameters import HYPERPARAMETERS, parse
from neurocloud.sklearn import NeuralNetClassifier
from neurocloud.train_settings import DataSettings, TrainSettings, aliases


def test_every_setting_is_a_cli_option_and_a_hyperparameter_with_its_aliases():
    options = {opt: p.name for p in train.params for opt in p.opts}
    for cls in (TrainSettings, DataSettings):
        for spelling, name in aliases(cls).items():
            assert options[f"--{spelling.replace('_', '-')}"] == name
            assert HYPERPARAMETERS[spelling][0] == name


def test_settings_are_named_like_the_estimator_parameters():
    params = set(NeuralNetClassifier().get_params())
    fields = {f.name for f in dataclasses.fields(TrainSettings)}
    assert fields <= params
    # validation_fraction is the run's held-out share, not the early-stopping share
    assert set(TrainSettings().estimator_params()) == fields - {"validation_fraction"}


def test_aliases_and_strings_give_the_same_settings():
    short = TrainSettings.from_mapping({"hidden": "16,8", "lr": "0.01", "epochs": "5", "seed": 3})
    long = TrainSettings(hidden_layer_sizes=(16, 8), learning_rate=0.01, max_epochs=5)
    assert short == dataclasses.replace(long, random_state=3)
    assert parse({"lr": "0.01", "hidden": "16,8"}) == {
        "learning_rate": 0.01,
        "hidden_layer_sizes": (16, 8),
    }


def test_optimizers_and_activations_come_from_the_registries():
    option = next(p for p in train.params if p.name == "optimizer")
    assert list(option.type.choices) == nc.optim.available()
    option = next(p for p in train.params if p.name == "activation")
    assert list(option.type.choices) == nc.activations.available()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"learning_rate": 0},
            "Expected learning_rate to be a number > 0. Received: learning_rate=0",
        ),
        ({"max_epochs": 2.5}, "Expected max_epochs to be an integer >= 1"),
        ({"optimizer": "magic"}, "Expected optimizer to be one of adam, adamw, lbfgs, rmsprop"),
        ({"batch_size": 0}, "Expected batch_size to be a positive integer or 'auto'"),
        ({"early_stopping": "perhaps"}, "Expected early_stopping to be true or false"),
        ({"dropout": 1.0}, "Expected dropout to be a number >= 0 and < 1"),
        ({"hidden_layer_sizes": ()}, "Expected hidden_layer_sizes to be positive integers"),
    ],
)
def test_bad_settings_say_what_was_expected_and_received(changes, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        TrainSettings(**changes)


def test_unknown_or_repeated_settings_are_named():
    with pytest.raises(ValueError, match="Unknown setting 'hiden'"):
        TrainSettings.from_mapping({"hiden": "8"})
    with pytest.raises(ValueError, match="Setting 'lr' repeats 'learning_rate'"):
        TrainSettings.from_mapping({"learning_rate": 0.1, "lr": 0.2})
