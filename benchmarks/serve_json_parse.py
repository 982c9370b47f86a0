"""How long one large JSON body holds the GIL while it is decoded: the CPU time of the
longest single ``orjson.loads`` call (collections inside it included), of the longest
garbage collection, and of the whole decode, for bodies the numbers-only text reader does not
take (``{"instances": [{"x": [1.5]}, ...]}``, a pretty-printed ``{"x": [[1.5], ...]}`` and an
Open Inference Protocol request with nested ``data``), each about 5.5 MB.

``time.thread_time`` counts only this thread's CPU, so the figures hold on a loaded machine,
where wall-clock gaps also count the time the process waits for a core. The longest call is
the longest the event loop can wait for the GIL because of one parse.

    .venv/bin/python benchmarks/serve_json_parse.py [--label after]
"""

from __future__ import annotations

import argparse
import gc
import time

import numpy as np
import orjson

from neurocloud.serve import codecs, v2_codec
from neurocloud.serve.signature import Signature

SIGNATURE = Signature("x", 1, "y", 1, np.dtype("float32"))
BODIES = {
    "instances": b'{"instances": [' + b", ".join([b'{"x": [1.5]}'] * 400_000) + b"]}",
    "pretty": b'{\n  "x": [\n    '
    + b",\n    ".join([b"[\n      1.5\n    ]"] * 250_000)
    + b"\n  ]\n}",
    "v2": b'{"inputs": [{"name": "x", "shape": [900000, 1], "datatype": "FP32", "data": ['
    + b",".join([b"[1.5]"] * 900_000)
    + b"]}]}",
}


def measure(name: str, body: bytes) -> tuple[float, float, float]:
    """CPU seconds: the whole decode, the longest parse call, the longest collection."""
    real = orjson.loads
    longest, collection, started = [0.0], [0.0], [0.0]

    def timed(data: bytes):
        start = time.thread_time()
        try:
            return real(data)
        finally:
            longest[0] = max(longest[0], time.thread_time() - start)

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        else:
            collection[0] = max(collection[0], time.thread_time() - started[0])

    orjson.loads = timed
    gc.callbacks.append(on_gc)
    try:
        start = time.thread_time()
        if name == "v2":
            v2_codec.decode_infer(body, None, SIGNATURE)
        else:
            codecs.decode_request(body, "application/json", SIGNATURE)
        total = time.thread_time() - start
    finally:
        orjson.loads = real
        gc.callbacks.remove(on_gc)
    return total, longest[0], collection[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="", help="a name for this run's rows")
    args = parser.parse_args()
    gc.freeze()  # as the server does at startup
    for name, body in BODIES.items():
        total, longest, collection = measure(name, body)
        print(
            f"{args.label:<8}{name:<10}{len(body):>9} bytes: decode {total * 1000:6.0f} ms CPU, "
            f"longest parse call {longest * 1000:6.1f} ms, longest collection "
            f"{collection * 1000:5.1f} ms"
        )


if __name__ == "__main__":
    main()
