"""The wire constants of the SageMaker contract, defined once: the content types that the
server and the exported SageMaker PyTorch handler read and write, their aliases, the
Accept negotiation (q-values honoured) and the target-model header. Standard library only:
``neurocloud.export`` copies this module's source into the handler it packages, which runs
where neurocloud is not installed.

>>> media_type("text/csv; charset=utf-8"), negotiate("text/csv;q=0.5, application/x-npy", JSON)
('text/csv', 'application/x-npy')
"""

from __future__ import annotations

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
