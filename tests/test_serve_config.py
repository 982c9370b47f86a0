"""Server settings (serve/config.py): the SageMaker variables as defaults, overrides, and
errors that name the setting, the expected and the received."""

from __future__ import annotations

import pytest

from neurocloud.serve.config import ServeConfig, default_model_dir, default_port


def test_sagemaker_variables_are_the_defaults():
    config = ServeConfig.from_env(
        {
            "SAGEMAKER_MODEL_SERVER_WORKERS": "3",
            "SAGEMAKER_MAX_PAYLOAD_IN_MB": "2",
            "SAGEMAKER_MODEL_SERVER_TIMEOUT": "30",
            "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv",
            "NEUROCLOUD_MAX_REQUEST_ROWS": "10",
            "NEUROCLOUD_MAX_JSON_MB": "0.5",
        }
    )
    assert (config.workers, config.max_payload_bytes, config.timeout_s) == (3, 2 << 20, 30.0)
    assert (config.default_accept, config.max_request_rows) == ("text/csv", 10)
    assert config.max_json_bytes == 1 << 19
    assert ServeConfig.from_env({}) == ServeConfig()


def test_overrides_win_over_the_environment_and_none_is_no_override():
    env = {"SAGEMAKER_MODEL_SERVER_WORKERS": "3"}
    assert ServeConfig.from_env(env, workers=2).workers == 2
    assert ServeConfig.from_env(env, workers=None).workers == 3
    assert ServeConfig().with_overrides(max_batch_rows=8, timeout_s=None).max_batch_rows == 8
    with pytest.raises(TypeError, match="max_batch"):
        ServeConfig.from_env({}, max_batches=3)


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"SAGEMAKER_MODEL_SERVER_WORKERS": "two"}, "SAGEMAKER_MODEL_SERVER_WORKERS must be"),
        ({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "0"}, "max_payload_mb"),
        ({"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/html"}, "text/html"),
        ({"NEUROCLOUD_MAX_JSON_MB": "-1"}, "max_json_mb"),
    ],
)
def test_bad_environment_values_name_the_variable_or_setting(env, words):
    with pytest.raises(ValueError, match=words):
        ServeConfig.from_env(env)


@pytest.mark.parametrize(
    "settings",
    [{"max_batch_rows": 0}, {"workers": 1.5}, {"max_batch_delay_ms": -1}, {"timeout_s": True}],
)
def test_bad_settings_are_refused_naming_them(settings):
    (name,) = settings
    with pytest.raises(ValueError, match=name):
        ServeConfig(**settings)


def test_model_dir_and_port_defaults():
    assert default_model_dir({}) == "/opt/ml/model"
    assert default_model_dir({"SM_MODEL_DIR": "/m"}) == "/m"
    assert default_port({}) == 8080 and default_port({"SAGEMAKER_BIND_TO_PORT": "9000"}) == 9000
    with pytest.raises(ValueError, match="SAGEMAKER_BIND_TO_PORT"):
        default_port({"SAGEMAKER_BIND_TO_PORT": "70000"})
