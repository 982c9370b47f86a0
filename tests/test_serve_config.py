"""serve/config.py: every setting checked with nn.validation's vocabulary, the SageMaker
variables read as defaults."""

from __future__ import annotations

import pytest

from neurocloud.serve.config import ServeConfig


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
