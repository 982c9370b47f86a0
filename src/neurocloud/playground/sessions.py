"""The open playground sessions: a limit on how many, the clean-up of abandoned ones, and
the model server each may have started.

>>> from pathlib import Path
>>> from neurocloud.playground.settings import Settings
>>> sessions = Sessions(max_sessions=1, ttl_s=60, models_dir=Path("."))
>>> s = sessions.create(Settings(epochs=1))
>>> try:
...     sessions.create(Settings())
... except SessionError as exc:
...     exc.status
429
>>> sessions.close(s.id); len(sessions)
0
"""

from __future__ import annotations

import secrets
import threading
import time
from pathlib import Path

from neurocloud.playground.session import Session, SessionError
from neurocloud.playground.settings import Settings
from neurocloud.serve.launcher import ServerProcess

__all__ = ["Sessions"]


class Sessions:
    """The open sessions, their limit and their clean-up."""

    def __init__(self, max_sessions: int, ttl_s: float, models_dir: Path) -> None:
        self.max_sessions, self.ttl_s, self.models_dir = max_sessions, ttl_s, models_dir
        self._open: dict[str, Session] = {}
        self._servers: dict[str, ServerProcess] = {}
        self._lock = threading.Lock()

    def create(self, settings: Settings) -> Session:
        self.expire()
        with self._lock:
            if len(self._open) >= self.max_sessions:
                raise SessionError(
                    429,
                    f"sessions: at most {self.max_sessions} at once; close another playground "
                    f"tab, or wait: a session unused for {self.ttl_s:g} s is closed",
                )
            session_id = secrets.token_hex(8)
            self._open[session_id] = None  # type: ignore[assignment]  # reserve the slot
        try:
            session = Session(session_id, settings)
        except Exception:
            with self._lock:
                del self._open[session_id]
            raise
        with self._lock:
            self._open[session_id] = session
        return session

    def get(self, session_id: str) -> Session:
        session = self._open.get(session_id)
        if session is None:
            raise SessionError(
                404,
                f"session: expected an open session; received {session_id!r} (it may have "
                f"ended after {self.ttl_s:g} s unused: reload the page)",
            )
        session.touched = time.monotonic()
        return session

    def is_open(self, session: Session) -> bool:
        return self._open.get(session.id) is session

    def close(self, session_id: str) -> None:
        with self._lock:
            session = self._open.pop(session_id, None)
            server = self._servers.pop(session_id, None)
        if session is not None:
            session.pause()
        if server is not None:
            server.stop()

    def expire(self) -> list[str]:
        now = time.monotonic()
        stale = [
            k for k, s in list(self._open.items()) if s is not None and now - s.touched > self.ttl_s
        ]
        for session_id in stale:
            self.close(session_id)
        return stale

    def close_all(self) -> None:
        for session_id in list(self._open):
            self.close(session_id)

    def serve(self, session: Session) -> ServerProcess:
        with self._lock:
            old = self._servers.pop(session.id, None)
        if old is not None:
            old.stop()
        server = ServerProcess(session.saved_path).wait_ready()
        with self._lock:
            self._servers[session.id] = server
        return server

    def __len__(self) -> int:
        return len(self._open)
