"""Server settings (serve/config.py): the SageMaker variables as defaults, overrides, and
errors (nn.validation's vocabulary) that name the setting, the expected and the received."""

from __future__ import annotations

import pytest

from neurocloud.serve.config import ServeConfig, default_model_dir, default_port


def test_neurocloud_variables_and_the_defaults():
    config = ServeConfig.from_env(
        {"NEUROCLOUD_MAX_REQUEST_ROWS": "10", "NEUROCLOUD_MAX_JSON_MB": "0.5"}
    )
    assert (config.max_request_rows, config.max_json_bytes) == (10, 1 << 19)
    assert ServeConfig.from_env({}) == ServeConfig()


def test_overrides_win_over_the_environment_and_none_is_no_override():
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "3"}
    assert ServeConfig.from_env(env, workers=2).workers == 2
    assert ServeConfig.from_env(env, workers=None).workers == 3
    assert ServeConfig().with_overrides(max_batch_rows=8, timeout_s=None).max_batch_rows == 8
    with pytest.raises(TypeError, match="max_batch"):
        ServeConfig.from_env({}, max_batches=3)


@pytest.mark.parametrize(
    "settings",
    [{"max_batch_rows": 0}, {"workers": 1.5}, {"max_batch_delay_ms": -1}, {"timeout_s": True}],
)
def test_bad_settings_are_refused_naming_them(settings):
    (name,) = settings
    with pytest.raises(ValueError, match=name):
        ServeConfig(**settings)


def test_settings_from_the_environment():
    env = {
        "SAGEMAKER_BIND_TO_PORT": "9001",
        "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
        "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2.5",
        "SAGEMAKER_MODEL_SERVER_TIMEOUT": "12",
        "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
        "SM_MODEL_DIR": "/models/here",
    }
    config = ServeConfig.from_env(env)
    assert (config.workers, config.max_payload_bytes, config.timeout_s) == (3, 2621440, 12.0)
    assert config.default_accept == "text/csv"
    assert default_port(env) == 9001 and default_model_dir(env) == "/models/here"
    assert default_port({}) == 8080 and default_model_dir({}) == "/opt/ml/model"
    assert ServeConfig.from_env(env, workers=1).workers == 1


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "two"}, ["SAGEMAKER_MODEL_SERVER_WORKERS", "'two'"]),
        ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "-1"}, ["max_payload_mb", "-1"]),
        ({"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/html"}, ["text/csv", "'text/html'"]),
        ({"NEUROCLOUD_MAX_JSON_MB": "0"}, ["max_json_mb", "0"]),
        ({"NEUROCLOUD_MAX_REQUEST_ROWS": "1.5"}, ["NEUROCLOUD_MAX_REQUEST_ROWS", "'1.5'"]),
    ],
)
def test_bad_settings_are_named(env, words):
    with pytest.raises(ValueError) as info:
        ServeConfig.from_env(env)
    for word in words:
        assert word in str(info.value)
    with pytest.raises(ValueError, match="SAGEMAKER_BIND_TO_PORT"):
        default_port({"SAGEMAKER_BIND_TO_PORT": "99999"})


@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("max_batch_rows", 0, "an integer >= 1"),
        ("max_batch_rows", 2.0, "an integer >= 1"),
        ("max_batch_rows", True, "an integer >= 1"),
        ("max_batch_delay_ms", -1, "a number >= 0"),
        ("max_payload_mb", 0, "a number > 0"),
        ("timeout_s", float("inf"), "a number > 0"),
        ("timeout_s", "60", "a number > 0"),
        ("reload_interval_s", float("nan"), "a number >= 0"),
        ("workers", 0, "an integer >= 1"),
        ("max_request_rows", -5, "an integer >= 1"),
        ("inline_forward_us", -1, "a number >= 0"),
        ("inline_forward_us", float("-inf"), "a number >= 0"),
        ("max_json_mb", 0, "a number > 0"),
    ],
)
def test_a_bad_setting_is_named_with_what_was_expected_and_received(setting, value, expected):
    with pytest.raises(ValueError) as err:
        ServeConfig(**{setting: value})
    assert str(err.value) == f"Expected {setting} to be {expected}. Received: {setting}={value!r}"


def test_environment_variables_are_defaults_and_overrides_win():
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "3", "SAGEMAKER_MODEL_SERVER_TIMEOUT": "5"}
    config = ServeConfig.from_env(env, timeout_s=9.0, max_batch_rows=None)
    assert (config.workers, config.timeout_s, config.max_batch_rows) == (3, 9.0, 1024)
    with pytest.raises(ValueError, match="Expected workers to be an integer >= 1"):
        ServeConfig.from_env({"SAGEMAKER_MODEL_SERVER_WORKERS": "0"})


def test_inline_forward_setting_from_the_environment_and_infinity_allowed():
    assert ServeConfig().inline_forward_us == 75.0
    assert ServeConfig.from_env({"NEUROCLOUD_INLINE_FORWARD_US": "0"}).inline_forward_us == 0
    assert ServeConfig(inline_forward_us=float("inf")).inline_forward_us == float("inf")
    with pytest.raises(ValueError, match="NEUROCLOUD_INLINE_FORWARD_US must be a number"):
        ServeConfig.from_env({"NEUROCLOUD_INLINE_FORWARD_US": "fast"})
