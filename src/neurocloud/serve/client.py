"""``Predictor``: call a neurocloud (or any SageMaker-style) endpoint like the SageMaker
SDK's ``Predictor``, so the article's call works against a local server verbatim::

    from neurocloud.serve import Predictor
    predictor = Predictor("http://127.0.0.1:8080")
    predictor.predict({"x": [4.5]})          # -> {"y": [[...]]}

Only the standard library is used, so the client imports nothing heavy.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from typing import Any

from neurocloud.serve.wire import CSV, JSON, JSONLINES, NPY, TARGET_MODEL_HEADER

__all__ = ["Predictor", "PredictorError"]

_CONTENT_TYPES = {"json": JSON, "csv": CSV, "npy": NPY, "jsonlines": JSONLINES}
_SERIALIZERS = {v: k for k, v in _CONTENT_TYPES.items()}


class PredictorError(RuntimeError):
    """The endpoint answered with an error status; ``status`` and the server's ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


class Predictor:
    """A client for ``POST /invocations`` of the server at ``url``.

    Args:
        url: the server's base URL, e.g. ``"http://127.0.0.1:8080"``.
        model: which model to call on a server holding several (``name`` or
            ``name/version``; sent as ``X-Amzn-SageMaker-Target-Model``).
        serializer: request encoding: ``"json"``, ``"csv"``, ``"npy"``, ``"jsonlines"``,
            or an object with ``serialize(data)`` and ``CONTENT_TYPE`` (SageMaker SDK style).
        deserializer: ``None`` decodes by the response's Content-Type; or an object with
            ``deserialize(stream, content_type)`` and ``ACCEPT``.
        content_type: like the SDK v1 argument: picks the serializer by media type.
        accept: the response type to ask for (default: the server's default).
        timeout: seconds to wait for an answer.
    """

    def __init__(
        self,
        url: str,
        model: str | None = None,
        serializer: Any = "json",
        deserializer: Any = None,
        *,
        content_type: str | None = None,
        accept: str | None = None,
        timeout: float = 60.0,
    ) -> None:
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ValueError(f"Expected url like 'http://127.0.0.1:8080'. Received: url={url!r}")
        if content_type is not None:
            if content_type not in _SERIALIZERS:
                raise ValueError(
                    f"Expected content_type in {sorted(_SERIALIZERS)}. "
                    f"Received: content_type={content_type!r}"
                )
            serializer = _SERIALIZERS[content_type]
        if isinstance(serializer, str) and serializer not in _CONTENT_TYPES:
            raise ValueError(
                f"Expected serializer in {sorted(_CONTENT_TYPES)} or an object with "
                f"serialize(). Received: serializer={serializer!r}"
            )
        self.url = url.rstrip("/")
        self.model = model
        self.serializer = serializer
        self.deserializer = deserializer
        self.accept = accept or getattr(deserializer, "ACCEPT", None)
        if isinstance(self.accept, (tuple, list)):
            self.accept = ", ".join(self.accept)
        self.timeout = timeout

    @property
    def content_type(self) -> str:
        if isinstance(self.serializer, str):
            return _CONTENT_TYPES[self.serializer]
        return self.serializer.CONTENT_TYPE

    def predict(self, data: Any, target_model: str | None = None) -> Any:
        """Send ``data`` to ``/invocations`` and return the decoded answer."""
        headers = {"Content-Type": self.content_type}
        if self.accept:
            headers["Accept"] = self.accept
        model = target_model or self.model
        if model:
            headers[TARGET_MODEL_HEADER] = model
        request = urllib.request.Request(
            self.url + "/invocations",
            data=self._serialize(data),
            headers=headers,
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
                content_type = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                message = json.loads(raw)["error"]
            except (ValueError, KeyError, TypeError):
                message = raw.decode("utf-8", "replace")
            raise PredictorError(exc.code, message) from None
        return self._deserialize(body, content_type)

    def _serialize(self, data: Any) -> bytes:
        if not isinstance(self.serializer, str):
            return _bytes(self.serializer.serialize(data))
        if isinstance(data, (bytes, bytearray)):
            return bytes(data)
        kind = self.serializer
        if kind == "json":
            return json.dumps(_plain(data)).encode()
        if kind == "jsonlines":
            return "\n".join(json.dumps(_plain(row)) for row in data).encode() + b"\n"
        import numpy as np

        array = np.asarray(data)
        buffer = io.BytesIO()
        if kind == "npy":
            np.save(buffer, array, allow_pickle=False)
            return buffer.getvalue()
        # As the SageMaker SDK's CSVSerializer: a flat list is one CSV line (one row).
        rows = array.reshape(1, -1) if array.ndim <= 1 else array.reshape(len(array), -1)
        return "".join(",".join(repr(v) for v in row) + "\n" for row in rows.tolist()).encode()

    def _deserialize(self, body: bytes, content_type: str) -> Any:
        if self.deserializer is not None:
            return self.deserializer.deserialize(io.BytesIO(body), content_type)
        media = content_type.split(";")[0].strip().lower()
        if media == "application/json":
            return json.loads(body)
        if media in ("application/jsonlines", "application/jsonl"):
            return [json.loads(line) for line in body.splitlines() if line.strip()]
        if media == "text/csv":
            return [
                [float(v) for v in line.split(",")]
                for line in body.decode().splitlines()
                if line.strip()
            ]
        if media == "application/x-npy":
            import numpy as np

            return np.load(io.BytesIO(body), allow_pickle=False)
        return body


def _bytes(data: Any) -> bytes:
    return data.encode() if isinstance(data, str) else bytes(data)


def _plain(data: Any) -> Any:
    """NumPy arrays and scalars as lists and numbers, so ``json`` can write them."""
    if hasattr(data, "tolist"):
        return data.tolist()
    if isinstance(data, dict):
        return {k: _plain(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [_plain(v) for v in data]
    return data
