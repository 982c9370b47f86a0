"""SageMaker PyTorch serving hooks for a model exported by neurocloud.

This file is copied as ``code/inference.py`` into the ``model.tar.gz`` that
``neurocloud export --format sagemaker-pytorch`` writes. It needs only torch and NumPy
(both in every SageMaker PyTorch container), not neurocloud. The container calls
``model = model_fn(model_dir)`` once at start, then for each request
``input_fn(body, content_type)``, ``predict_fn(data, model)``, ``output_fn(prediction, accept)``.

Requests: JSON ``{"x": [4.5]}`` (the input's name), ``{"instances": ...}``, ``{"inputs": ...}`` or a
bare list; ``text/csv`` rows; ``application/x-npy``; ``application/jsonlines`` (a row, or
``{"x": row}``, per line). A JSON answer is ``{"y": ...}`` (the
output's name) whatever the request's content type; only a JSON request in another envelope
gets that envelope back: ``{"instances": ...}`` -> ``{"predictions": ...}``, ``{"inputs": ...}``
-> ``{"outputs": ...}``, a list -> a list. Responses: JSON (default), CSV, NPY or JSON Lines
by Accept, q-values honoured: the content types, their aliases and the negotiation are
those of ``neurocloud.serve.wire``, copied in below, so this handler and the server answer a
request alike.

A client's mistake raises :class:`RequestError`, a ``ValueError`` that carries an HTTP status
(400, 415, 406, or 422 for outputs JSON cannot carry). Inside the container it is also the
SageMaker inference toolkit's ``BaseInferenceToolkitError``, which the toolkit answers with
that status and the message; any other exception is the toolkit's 500.
"""

from __future__ import annotations

import io
import json
import os
import warnings
from typing import Any

import numpy as np

MODEL_FILE = "model.pt"
SIGNATURE_FILE = "signature.json"
# --- begin neurocloud.serve.wire (copied from there by neurocloud.export; do not edit) ---
JSON, CSV, NPY, JSONLINES = (
    "application/json",
    "text/csv",
    "application/x-npy",
    "application/jsonlines",
)
#: what both sides read and write, in the order a ``*/*`` or ``type/*`` Accept prefers
CONTENT_TYPES = (JSON, CSV, NPY, JSONLINES)
#: media type (lower case, parameters dropped) -> its canonical name in CONTENT_TYPES
MEDIA_TYPES = {
    "application/json": JSON,
    "text/json": JSON,
    "text/csv": CSV,
    "application/csv": CSV,
    "application/x-npy": NPY,
    "application/npy": NPY,
    "application/jsonlines": JSONLINES,
    "application/jsonl": JSONLINES,
    "application/x-jsonlines": JSONLINES,
    "application/json-lines": JSONLINES,
}
#: names the model on a server holding several (``name`` or ``name/version``)
TARGET_MODEL_HEADER = "X-Amzn-SageMaker-Target-Model"


def media_type(header: str | None) -> str | None:
    """The canonical media type of a Content-Type header (parameters dropped), or ``None``."""
    if not header:
        return None
    return MEDIA_TYPES.get(header.split(";", 1)[0].strip().lower())


def negotiate(accept: str | None, default: str) -> str:
    """The response type for an Accept header: the supported type with the highest q-value
    (earliest first on ties; ``q=0`` refuses a type); ``*/*`` and a missing header mean
    ``default``. ``""`` when no listed type is supported (the caller answers 406)."""
    if not accept:
        return default
    offers: list[tuple[float, int, str]] = []
    refused: set[str] = set()
    for index, part in enumerate(accept.split(",")):
        pieces = part.split(";")
        media = pieces[0].strip().lower()
        quality = 1.0
        for param in pieces[1:]:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            refused.add(MEDIA_TYPES.get(media, media))
            continue
        if media:
            offers.append((-quality, index, media))
    for _, _, media in sorted(offers):
        if media in MEDIA_TYPES and MEDIA_TYPES[media] not in refused:
            return MEDIA_TYPES[media]
        if media.endswith("/*"):
            prefix = media[:-1]
            candidates = (
                [default, *CONTENT_TYPES]
                if media == "*/*"
                else [default, *(t for t in CONTENT_TYPES if t.startswith(prefix))]
            )
            for candidate in candidates:
                if (candidate.startswith(prefix) or media == "*/*") and candidate not in refused:
                    return candidate
    return ""


# --- end neurocloud.serve.wire ---


try:  # present in SageMaker's serving containers (sagemaker-inference toolkit)
    from sagemaker_inference.errors import BaseInferenceToolkitError as _StatusError
except ImportError:  # elsewhere: the same constructor and attributes

    class _StatusError(Exception):  # type: ignore[no-redef]
        def __init__(self, status_code: int, message: str, phrase: str) -> None:
            self.status_code, self.message, self.phrase = status_code, message, phrase
            super().__init__(status_code, message, phrase)


class RequestError(_StatusError, ValueError):
    """A bad request or an unencodable answer, with the HTTP status the client gets."""

    def __init__(self, message: str, status_code: int = 400) -> None:
        super().__init__(status_code, message, message)

    def __str__(self) -> str:
        return self.message


class ExportedModel:
    """The TorchScript module with the signature it was exported with."""

    def __init__(self, module: Any, signature: dict[str, Any]) -> None:
        self.module = module
        self.input_name = signature["input"]
        self.output_name = signature["output"]
        self.input_width = int(signature["input_width"])
        self.dtype = np.dtype(signature["dtype"])


class Request:
    """Decoded rows and the JSON form they came in (for the mirrored answer)."""

    def __init__(self, values: Any, form: str) -> None:
        self.values = values
        self.form = form


def _content_type(header: str | None) -> str:
    if not header:
        return JSON
    canonical = media_type(header)
    if canonical is None:
        raise RequestError(
            f"Unsupported Content-Type {header!r}: expected one of {', '.join(CONTENT_TYPES)}.",
            415,
        )
    return canonical


def _accept(header: str | None) -> str:
    chosen = negotiate(header, JSON)
    if not chosen:
        raise RequestError(
            f"Unsupported Accept {header!r}: expected one of {', '.join(CONTENT_TYPES)} (or */*).",
            406,
        )
    return chosen


def model_fn(model_dir: str) -> ExportedModel:
    """Load ``model.pt`` (TorchScript) and ``signature.json`` from ``model_dir``."""
    import torch

    with open(os.path.join(model_dir, SIGNATURE_FILE), encoding="utf-8") as fh:
        signature = json.load(fh)
    with warnings.catch_warnings():
        # TorchScript is deprecated in torch >= 2.9 but is what this container loads.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.jit")
        module = torch.jit.load(os.path.join(model_dir, MODEL_FILE), map_location="cpu")
    return ExportedModel(module.eval(), signature)


def input_fn(request_body: bytes | str, request_content_type: str | None) -> Request:
    """Decode the request body (JSON, CSV, NPY or JSON Lines) without touching the model."""
    content_type = _content_type(request_content_type)
    if isinstance(request_body, str):
        request_body = request_body.encode("utf-8")
    if content_type == NPY:
        try:
            array = np.lib.format.read_array(io.BytesIO(request_body), allow_pickle=False)
        except (ValueError, EOFError, OSError) as exc:
            raise RequestError(f"application/x-npy body: expected an NPY array ({exc}).") from None
        return Request(array, "npy")
    try:
        text = request_body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RequestError(f"{content_type} body: expected UTF-8 text ({exc}).") from None
    if content_type == CSV:
        rows = [line.split(",") for line in text.splitlines() if line.strip()]
        try:
            return Request(np.array(rows, dtype=np.float64), "csv")
        except ValueError as exc:
            raise RequestError(f"text/csv body: expected rows of numbers ({exc}).") from None
    if content_type == JSONLINES:
        try:
            lines = [json.loads(line) for line in text.splitlines() if line.strip()]
        except ValueError as exc:
            raise RequestError(f"{JSONLINES} body: malformed JSON ({exc}).") from None
        return Request(lines, "jsonlines")
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise RequestError(f"JSON body: malformed JSON ({exc}).") from None
    if isinstance(data, list):
        return Request(data, "list")
    if isinstance(data, dict):
        keys = [k for k in data if k != "parameters"]
        if len(keys) == 1:
            return Request(data[keys[0]], keys[0])
    raise RequestError(
        'JSON body: expected {"<input name>": [...]}, {"instances": [...]}, {"inputs": [...]} '
        f"or a list; received {type(data).__name__}"
        + (f" with keys {sorted(data)}" if isinstance(data, dict) else "")
        + "."
    )


def _named(obj: dict, name: str, field: str) -> Any:
    if list(obj) != [name]:
        raise RequestError(
            f"JSON body: {field} must be an object with the one input {name!r}; "
            f"received keys {sorted(obj)}."
        )
    return obj[name]


def _rows(request: Request, model: ExportedModel) -> np.ndarray:
    forms = ("npy", "csv", "jsonlines", "list", "instances", "inputs", model.input_name)
    if request.form not in forms:
        raise RequestError(
            f"JSON body: unknown key {request.form!r}; expected the input name "
            f"{model.input_name!r}, 'instances' or 'inputs'."
        )
    values = request.values
    if request.form == "instances" and isinstance(values, list) and values:
        if all(isinstance(v, dict) for v in values):
            values = [_named(v, model.input_name, f"instances[{i}]") for i, v in enumerate(values)]
    elif request.form == "inputs" and isinstance(values, dict):
        values = _named(values, model.input_name, "inputs")
    elif request.form == "jsonlines":
        values = [
            _named(v, model.input_name, f"line {i + 1}") if isinstance(v, dict) else v
            for i, v in enumerate(values)
        ]
    try:
        array = np.asarray(values, dtype=np.float64)
    except (ValueError, TypeError):
        raise RequestError(
            f"Input {model.input_name!r}: expected a rectangular array of numbers."
        ) from None
    width = model.input_width
    if array.ndim == 0 and width == 1:
        array = array.reshape(1, 1)
    elif array.ndim == 1:
        array = array.reshape(-1, 1) if width == 1 else array.reshape(1, -1)
    if array.ndim != 2 or array.shape[1] != width or array.shape[0] == 0:
        raise RequestError(
            f"Input {model.input_name!r}: expected shape (n, {width}); received "
            f"shape {tuple(np.shape(values))}."
        )
    if not np.isfinite(array).all():
        raise RequestError(f"Input {model.input_name!r}: expected finite numbers.")
    return array.astype(model.dtype)


def predict_fn(input_data: Request, model: ExportedModel) -> dict[str, Any]:
    """Run the model on the decoded rows; keep the request's form for the answer."""
    import torch

    rows = _rows(input_data, model)
    with torch.inference_mode():
        outputs = model.module(torch.from_numpy(rows)).numpy()
    return {
        "outputs": outputs,
        "form": input_data.form,
        "output_name": model.output_name,
        "input_name": model.input_name,
    }


def output_fn(prediction: dict[str, Any], accept: str | None) -> tuple[bytes, str]:
    """Encode the outputs as JSON (mirroring the request), CSV, NPY or JSON Lines, by the
    Accept header's q-values."""
    content_type = _accept(accept)
    outputs = prediction["outputs"]
    if content_type == NPY:
        buffer = io.BytesIO()
        np.save(buffer, outputs, allow_pickle=False)
        return buffer.getvalue(), NPY
    if content_type == CSV:
        # str() of a NumPy scalar is its shortest round-trip text ("4.6", "nan").
        lines = (",".join(str(value) for value in row) for row in outputs)
        return ("\n".join(lines) + "\n").encode(), CSV
    form = prediction["form"]
    key = {
        prediction["input_name"]: prediction["output_name"],
        "instances": "predictions",
        "inputs": "outputs",
        "list": None,
    }.get(form, prediction["output_name"])
    values = outputs.tolist()
    try:
        if content_type == JSONLINES:
            lines = [json.dumps(row, allow_nan=False) for row in values]
            return ("\n".join(lines) + "\n").encode(), JSONLINES
        body = json.dumps(values if key is None else {key: values}, allow_nan=False)
    except ValueError:
        raise RequestError(
            "The model produced NaN or infinity, which JSON cannot carry; ask for "
            "text/csv or application/x-npy (Accept header) to receive them.",
            422,
        ) from None
    return body.encode(), JSON
