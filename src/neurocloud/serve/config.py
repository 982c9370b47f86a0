"""Server settings, with the SageMaker container's environment variables as defaults.

| setting | environment variable | default |
|---|---|---|
| ``port`` | ``SAGEMAKER_BIND_TO_PORT`` | 8080 |
| ``workers`` | ``SAGEMAKER_MODEL_SERVER_WORKERS`` | 1 |
| ``max_payload_mb`` | ``SAGEMAKER_MAX_PAYLOAD_IN_MB`` | 6 |
| ``timeout_s`` | ``SAGEMAKER_MODEL_SERVER_TIMEOUT`` | 60 |
| ``default_accept`` | ``SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT`` | ``application/json`` |
| ``max_request_rows`` | ``NEUROCLOUD_MAX_REQUEST_ROWS`` | 1,000,000 |
| ``inline_forward_us`` | ``NEUROCLOUD_INLINE_FORWARD_US`` | 75 |
| ``max_json_mb`` | ``NEUROCLOUD_MAX_JSON_MB`` | 1 |
| model directory | ``SM_MODEL_DIR`` | ``/opt/ml/model`` |

>>> ServeConfig.from_env({"SAGEMAKER_MAX_PAYLOAD_IN_MB": "2"}).max_payload_bytes
2097152
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from neurocloud.nn.validation import check_number
from neurocloud.serve.wire import CONTENT_TYPES as RESPONSE_TYPES

__all__ = ["ServeConfig", "default_model_dir", "default_port"]

DEFAULT_MODEL_DIR = "/opt/ml/model"


@dataclass(frozen=True)
class ServeConfig:
    """How the server batches, limits and answers requests.

    Args:
        max_batch_rows: most rows merged into one forward pass (a larger request runs alone).
        max_batch_delay_ms: how long the oldest queued request may wait for others to join
            its batch; 0 merges only what is already queued while the model is busy.
        max_payload_mb: largest request body (after decompression) in megabytes.
        timeout_s: a request still waiting for its rows after this many seconds gets 504.
        default_accept: response type of ``/invocations`` when Accept is missing or ``*/*``.
        reload_interval_s: how often the model folder is checked for new versions (0: never).
        workers: server processes.
        max_request_rows: most rows in one request (more: 413 naming this setting).
        inline_forward_us: a forward pass measured to take less than this many microseconds
            for its rows runs on the event loop instead of the batcher's thread, whose
            hand-off costs more than a small model's pass (0: never; ``math.inf``: always).
        max_json_mb: largest JSON document parsed in one call, in megabytes (more: 413
            naming this setting). Rows of numbers, ``{"instances": [...]}`` and a V2
            tensor's ``data`` are read in pieces whatever their size; one call on anything
            else holds the event loop for its whole parse.
    """

    max_batch_rows: int = 1024
    max_batch_delay_ms: float = 0.0
    max_payload_mb: float = 6.0
    timeout_s: float = 60.0
    default_accept: str = "application/json"
    reload_interval_s: float = 2.0
    workers: int = 1
    max_request_rows: int = 1_000_000
    inline_forward_us: float = 75.0
    max_json_mb: float = 1.0

    def __post_init__(self) -> None:
        check_number(self.max_batch_rows, "max_batch_rows", low=1, integer=True)
        check_number(self.max_batch_delay_ms, "max_batch_delay_ms", low=0)
        check_number(self.max_payload_mb, "max_payload_mb", low=0, low_open=True)
        check_number(self.timeout_s, "timeout_s", low=0, low_open=True)
        check_number(self.reload_interval_s, "reload_interval_s", low=0)
        check_number(self.workers, "workers", low=1, integer=True)
        check_number(self.max_request_rows, "max_request_rows", low=1, integer=True)
        if self.inline_forward_us != math.inf:
            check_number(self.inline_forward_us, "inline_forward_us", low=0)
        check_number(self.max_json_mb, "max_json_mb", low=0, low_open=True)
        if self.default_accept not in RESPONSE_TYPES:
            raise ValueError(
                f"default_accept must be one of {', '.join(RESPONSE_TYPES)}. "
                f"Received: default_accept={self.default_accept!r}"
            )

    @property
    def max_payload_bytes(self) -> int:
        return int(self.max_payload_mb * 1024 * 1024)

    @property
    def max_json_bytes(self) -> int:
        return int(self.max_json_mb * 1024 * 1024)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> ServeConfig:
        """Settings from the SageMaker variables in ``environ`` (default ``os.environ``);
        ``overrides`` that are not ``None`` win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for variable, name, kind in (
            ("SAGEMAKER_MODEL_SERVER_WORKERS", "workers", int),
            ("SAGEMAKER_MAX_PAYLOAD_IN_MB", "max_payload_mb", float),
            ("SAGEMAKER_MODEL_SERVER_TIMEOUT", "timeout_s", float),
            ("NEUROCLOUD_MAX_REQUEST_ROWS", "max_request_rows", int),
            ("NEUROCLOUD_INLINE_FORWARD_US", "inline_forward_us", float),
            ("NEUROCLOUD_MAX_JSON_MB", "max_json_mb", float),
        ):
            if env.get(variable, "").strip():
                values[name] = _parse(env[variable], variable, kind)
        accept = env.get("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "").strip()
        if accept:
            if accept not in RESPONSE_TYPES:
                raise ValueError(
                    f"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT must be one of "
                    f"{', '.join(RESPONSE_TYPES)}; received {accept!r}."
                )
            values["default_accept"] = accept
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"Unknown ServeConfig settings {unknown}; valid: {sorted(known)}.")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_overrides(self, **overrides: Any) -> ServeConfig:
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def default_model_dir(environ: Mapping[str, str] | None = None) -> str:
    """``$SM_MODEL_DIR`` or ``/opt/ml/model``: where SageMaker unpacks the model."""
    env = os.environ if environ is None else environ
    return env.get("SM_MODEL_DIR", "").strip() or DEFAULT_MODEL_DIR


def default_port(environ: Mapping[str, str] | None = None) -> int:
    """``$SAGEMAKER_BIND_TO_PORT`` or 8080."""
    env = os.environ if environ is None else environ
    value = env.get("SAGEMAKER_BIND_TO_PORT", "").strip()
    if not value:
        return 8080
    port = _parse(value, "SAGEMAKER_BIND_TO_PORT", int)
    if not 0 < port < 65536:
        raise ValueError(f"SAGEMAKER_BIND_TO_PORT must be a port 1-65535; received {value!r}.")
    return port


def _parse(text: str, variable: str, kind: type) -> Any:
    try:
        return kind(text.strip())
    except ValueError:
        noun = "an integer" if kind is int else "a number"
        raise ValueError(f"{variable} must be {noun}; received {text!r}.") from None
