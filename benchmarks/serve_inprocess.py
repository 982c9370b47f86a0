"""Where a lone request's time goes inside the server, with no sockets: the ASGI apps are
called directly, one request at a time, on uvloop.

Prints microseconds per request for
- ``neurocloud app``: ``POST /invocations {"x": [4.5]}`` through the whole app (routing,
  negotiation, validation, metrics, the micro-batcher, encoding), with its default settings
  (a pass this cheap runs inline on the event loop, see ``ServeConfig.inline_forward_us``);
- ``app, thread pass``: the same with ``inline_forward_us=0`` (every pass in the thread);
- ``bare handler``: the reference handler of ``serve_load.py`` (orjson, the forward pass
  inline on the event loop, nothing else);
- ``batcher round trip``: ``MicroBatcher.submit`` of one row alone, i.e. handing the forward
  pass to the batcher's thread and getting the result back on the event loop;
- ``batcher inline``: the same submit with the default ``inline_forward_us``;
- ``forward inline``: the model's forward pass on one row, called directly.

The app with thread passes minus the batcher's round trip is what the protocol handling
costs on the event loop; compare it with the bare handler.

    .venv/bin/python benchmarks/serve_inprocess.py
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import numpy as np
import orjson
import uvloop
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

import neurocloud as nc
from neurocloud.demo import article_network
from neurocloud.serve.app import create_app
from neurocloud.serve.batcher import MicroBatcher
from neurocloud.serve.config import ServeConfig

BODY = b'{"x": [4.5]}'
SCOPE = {
    "type": "http",
    "asgi": {"version": "3.0"},
    "http_version": "1.1",
    "method": "POST",
    "scheme": "http",
    "path": "/invocations",
    "raw_path": b"/invocations",
    "query_string": b"",
    "root_path": "",
    "headers": [
        (b"host", b"127.0.0.1:8080"),
        (b"content-type", b"application/json"),
        (b"content-length", str(len(BODY)).encode()),
    ],
    "client": ("127.0.0.1", 50000),
    "server": ("127.0.0.1", 8080),
}


def bare_app(model: nc.Sequential) -> Starlette:
    async def invocations(request) -> Response:
        x = np.asarray(orjson.loads(await request.body())["x"], dtype=np.float32)
        y = model.forward(x.reshape(-1, 1))
        return Response(orjson.dumps({"y": y.tolist()}), media_type="application/json")

    return Starlette(routes=[Route("/invocations", invocations, methods=["POST"])])


async def per_call_us(call: Callable[[], Awaitable[object]], n: int, repeats: int) -> float:
    """Median over ``repeats`` of the mean time of ``n`` sequential calls, in microseconds.

    The loop turns once between calls, as a server's does between one request and the
    next (the batcher finishes an inline pass's turn there; without it, every second call
    would find the batcher busy and queue)."""
    for _ in range(n // 5):
        await call()
        await asyncio.sleep(0)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(n):
            await call()
            await asyncio.sleep(0)
        samples.append((time.perf_counter() - start) / n * 1e6)
    return statistics.median(samples)


def asgi_call(app) -> Callable[[], Awaitable[object]]:
    sent: list[dict] = []

    async def receive() -> dict:
        return {"type": "http.request", "body": BODY, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    async def call() -> object:
        sent.clear()
        await app(dict(SCOPE), receive, send)
        if sent[0]["status"] != 200:
            raise RuntimeError(f"the app answered {sent[0]['status']}: {sent[1]['body']!r}")
        return sent[1]["body"]

    return call


async def main(n: int, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        model = article_network(seed=0)
        path = nc.save(model, Path(tmp) / "seed")
        app = create_app(str(path), ServeConfig())
        threaded = create_app(str(path), ServeConfig(inline_forward_us=0))
        row = np.array([[4.5]], dtype=np.float32)
        batcher = MicroBatcher(model.forward)
        quick = MicroBatcher(model.forward, inline_below_us=ServeConfig().inline_forward_us)

        async def submit() -> object:
            return await batcher.submit(row)

        async def submit_inline() -> object:
            return await quick.submit(row)

        async def inline() -> object:
            return model.forward(row)

        async with app.router.lifespan_context(app), threaded.router.lifespan_context(threaded):
            results = {
                "neurocloud app": await per_call_us(asgi_call(app), n, repeats),
                "app, thread pass": await per_call_us(asgi_call(threaded), n, repeats),
                "bare handler": await per_call_us(asgi_call(bare_app(model)), n, repeats),
                "batcher round trip": await per_call_us(submit, n, repeats),
                "batcher inline": await per_call_us(submit_inline, n, repeats),
                "forward inline": await per_call_us(inline, n, repeats),
            }
        await batcher.close()
        await quick.close()
    for name, us in results.items():
        print(f"{name:<20}{us:>8.1f} us per request")
    rest = results["app, thread pass"] - results["batcher round trip"]
    print(f"{'app minus hand-off':<20}{rest:>8.1f} us per request (event-loop work)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=5000, help="sequential calls per sample")
    parser.add_argument("--repeats", type=int, default=5, help="samples per measurement")
    args = parser.parse_args()
    uvloop.run(main(args.requests, args.repeats))
