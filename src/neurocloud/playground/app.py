"""The playground's ASGI app: the page, a JSON API per session, and a Server-Sent Events
stream of the views while a session trains.

Sessions are independent (one per browser tab) and bounded: at most ``max_sessions`` at
once, and one that nobody has touched for ``session_ttl_s`` is closed (its training
stopped, its served model shut down). Every blocking call (training steps, gradient
checks, saving) runs in a worker thread, never on the event loop.

>>> from starlette.testclient import TestClient
>>> with TestClient(create_playground_app()) as client:
...     created = client.post("/api/sessions", json={}).json()
...     client.post(f"/api/sessions/{created['id']}/step-epoch").json()["view"]["epoch"]
1
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response, StreamingResponse
from starlette.routing import Route

import neurocloud as nc
from neurocloud.playground import backward, code, views
from neurocloud.playground.session import Session, SessionError, view_interval_s
from neurocloud.playground.sessions import Sessions
from neurocloud.playground.settings import ARTICLE, FITS, SettingError, Settings
from neurocloud.serve.pages import static_file

__all__ = ["MAX_BODY_BYTES", "create_playground_app"]

MAX_BODY_BYTES = 2 << 20
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")


def _json(data: Any, status: int = 200) -> Response:
    return Response(
        orjson.dumps(data, option=orjson.OPT_SERIALIZE_NUMPY),
        status_code=status,
        media_type="application/json",
    )


def _error(status: int, message: str, field: str = "") -> Response:
    return _json({"error": message, "field": field}, status)


def create_playground_app(
    *,
    max_sessions: int = 8,
    session_ttl_s: float = 900.0,
    models_dir: str | os.PathLike[str] | None = None,
) -> Starlette:
    """The playground app; saved models go under ``models_dir`` (a temporary folder by
    default)."""
    folder = Path(models_dir or tempfile.mkdtemp(prefix="neurocloud-playground-"))
    sessions = Sessions(max_sessions, session_ttl_s, folder)

    def handler(
        fn: Callable[[Request, Session], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        async def route(request: Request) -> Response:
            try:
                return await fn(request, sessions.get(request.path_params["sid"]))
            except SettingError as exc:
                return _error(400, str(exc), exc.field)
            except SessionError as exc:
                return _error(exc.status, str(exc), exc.field)
            except ValueError as exc:
                return _error(400, str(exc))
            except RuntimeError as exc:  # the model server did not start
                return _error(503, str(exc))

        return route

    async def body_of(request: Request) -> dict[str, Any]:
        length = request.headers.get("content-length")
        if length and int(length) > MAX_BODY_BYTES:
            raise SessionError(
                413, f"body: expected at most {MAX_BODY_BYTES} bytes; received {length}", "csv"
            )
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise SessionError(
                413, f"body: expected at most {MAX_BODY_BYTES} bytes; received {len(raw)}", "csv"
            )
        if not raw:
            return {}
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise SessionError(400, f"body: expected JSON; {exc}") from None
        if not isinstance(body, dict):
            raise SessionError(400, f"body: expected a JSON object; received {type(body).__name__}")
        return body

    def state_of(session: Session) -> dict[str, Any]:
        with session.lock:
            return {
                "id": session.id,
                "settings": session.settings.to_json(),
                "data": views.data_points(session),
                "view": session.view(),
                "loss": session.loss_name,
            }

    async def page(request: Request) -> Response:
        return static_file("playground.html")

    async def asset(request: Request) -> Response:
        return static_file(request.path_params["name"])

    async def presets(request: Request) -> Response:
        return _json({"article": ARTICLE.to_json(), "fits": FITS.to_json()})

    async def create(request: Request) -> Response:
        try:
            settings = Settings.from_json(await body_of(request))
            session = await asyncio.to_thread(sessions.create, settings)
        except SettingError as exc:
            return _error(400, str(exc), exc.field)
        except SessionError as exc:
            return _error(exc.status, str(exc), exc.field)
        except ValueError as exc:
            return _error(400, str(exc), "data")
        return _json(state_of(session), 201)

    async def configure(request: Request, session: Session) -> Response:
        settings = Settings.from_json(await body_of(request))
        try:
            await asyncio.to_thread(session.configure, settings)
        except SettingError:
            raise
        except ValueError as exc:
            raise SettingError("csv" if settings.data == "upload" else "data", str(exc)) from None
        return _json(state_of(session))

    actions: dict[str, Callable[[Session], None]] = {
        "train": Session.start,
        "pause": Session.pause,
        "step-epoch": Session.step_epoch,
        "step-batch": Session.step_batch,
        "reset": Session.reset,
    }

    async def action(request: Request, session: Session) -> Response:
        name = request.path_params["action"]
        if name not in actions:
            raise SessionError(
                404, f"action: expected one of {', '.join(actions)}; received {name!r}"
            )
        if name == "train":
            pace = (await body_of(request)).get("pace", 0)
            await asyncio.to_thread(session.start, pace)
        else:
            await asyncio.to_thread(actions[name], session)
        return _json({"view": session.view()})

    async def events(request: Request, session: Session) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            sent = -1
            while sessions.is_open(session):
                session.touched = time.monotonic()
                if session.version != sent:
                    sent = session.version
                    yield (
                        b"data: "
                        + orjson.dumps(session.view(), option=orjson.OPT_SERIALIZE_NUMPY)
                        + b"\n\n"
                    )
                await asyncio.sleep(view_interval_s)

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)

    async def backward_route(request: Request, session: Session) -> Response:
        text = request.query_params.get("row", "0")
        if not text.isdigit():
            raise SettingError("row", f"expected a row number >= 0; received {text!r}")

        def run() -> dict[str, Any]:
            with session.lock:
                if session.running:
                    raise SessionError(409, "training is running; pause it to step backward")
                return backward.backward_view(session, int(text))

        return _json(await asyncio.to_thread(run))

    async def gradcheck(request: Request, session: Session) -> Response:
        def run() -> dict[str, Any]:
            with session.lock:
                return backward.gradient_check(session)

        return _json(await asyncio.to_thread(run))

    async def show_code(request: Request, session: Session) -> Response:
        with session.lock:
            return PlainTextResponse(code.training_code(session))

    async def explain(request: Request, session: Session) -> Response:
        body = await body_of(request)
        features = session.data.X.shape[1]
        x = body.get("x")
        try:
            rows = np.asarray(x, dtype=np.float64).reshape(1, -1)
        except (TypeError, ValueError):
            raise SettingError(
                "explain-x", f"expected {features} numbers; received {x!r}"
            ) from None
        if rows.shape[1] != features or not np.isfinite(rows).all():
            raise SettingError("explain-x", f"expected {features} finite numbers; received {x!r}")
        from neurocloud.serve.explanation_requests import explain_batch

        def run() -> dict[str, Any]:
            with session.lock:
                out = explain_batch(session.model, rows, {"method": body.get("method", "ig")})
                return {k: np.asarray(v).tolist() for k, v in out.items()}

        return _json({**await asyncio.to_thread(run), "feature_names": session.data.feature_names})

    def save_now(session: Session, name: str) -> Path:
        if not _NAME.match(name):
            raise SettingError(
                "model-name",
                f"expected lower-case letters, digits, - or _ (up to 40); received {name!r}",
            )
        with session.lock:
            data = session.data
            card = {
                "dataset": data.name,
                "task": data.task,
                "curves": {"loss": session.losses, "val_loss": session.val_losses},
                "metrics": {"final_loss": session.losses[-1]} if session.losses else {},
                "epochs": session.epoch,
                "settings": session.settings.to_json(),
            }
            path = nc.save(
                session.model,
                sessions.models_dir / session.id / name,
                feature_names=data.feature_names,
                output_names=data.class_names if data.classes > 2 else None,
                card=card,
            )
        session.saved_path = path
        return path

    async def save(request: Request, session: Session) -> Response:
        name = str((await body_of(request)).get("name", "playground"))
        path = await asyncio.to_thread(save_now, session, name)
        return _json({"path": str(path), "name": name})

    async def serve_route(request: Request, session: Session) -> Response:
        name = str((await body_of(request)).get("name", "playground"))
        path = await asyncio.to_thread(save_now, session, name)
        server = await asyncio.to_thread(sessions.serve, session)
        return _json({"path": str(path), "url": f"{server.url}/models/{path.name}", "name": name})

    async def download(request: Request, session: Session) -> Response:
        name = request.query_params.get("name", "playground")
        path = await asyncio.to_thread(save_now, session, name)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for file in sorted(path.iterdir()):
                archive.write(file, f"{name}/{file.name}")
        headers = {"Content-Disposition": f'attachment; filename="{name}.zip"'}
        return Response(buffer.getvalue(), media_type="application/zip", headers=headers)

    async def close(request: Request, session: Session) -> Response:
        await asyncio.to_thread(sessions.close, session.id)
        return Response(status_code=204)

    async def state(request: Request, session: Session) -> Response:
        return _json(state_of(session))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async def sweep() -> None:
            while True:
                await asyncio.sleep(min(30.0, max(0.05, session_ttl_s / 4)))
                await asyncio.to_thread(sessions.expire)

        task = asyncio.get_running_loop().create_task(sweep())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(sessions.close_all)

    s = "/api/sessions/{sid}"
    routes = [
        Route("/", page, methods=["GET"]),
        Route("/static/{name}", asset, methods=["GET"]),
        Route("/api/presets", presets, methods=["GET"]),
        Route("/api/sessions", create, methods=["POST"]),
        Route(s, handler(state), methods=["GET"]),
        Route(s, handler(close), methods=["DELETE"]),
        Route(s + "/settings", handler(configure), methods=["PUT"]),
        Route(s + "/events", handler(events), methods=["GET"]),
        Route(s + "/backward", handler(backward_route), methods=["GET"]),
        Route(s + "/gradcheck", handler(gradcheck), methods=["POST"]),
        Route(s + "/code", handler(show_code), methods=["GET"]),
        Route(s + "/explain", handler(explain), methods=["POST"]),
        Route(s + "/save", handler(save), methods=["POST"]),
        Route(s + "/serve", handler(serve_route), methods=["POST"]),
        Route(s + "/download", handler(download), methods=["GET"]),
        Route(s + "/{action}", handler(action), methods=["POST"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sessions = sessions
    return app
