"""Helpers for the browser tests: an ASGI app on 127.0.0.1 in a thread, and Debian's
Chromium driven by Playwright (which must not download a browser of its own)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlparse

import uvicorn

CHROMIUM = os.environ.get("NEUROCLOUD_CHROMIUM", "/usr/bin/chromium")


def chromium_path() -> str:
    path = shutil.which(CHROMIUM) or (CHROMIUM if os.path.exists(CHROMIUM) else None)
    if path is None:
        raise RuntimeError(
            f"the browser tests need Chromium at {CHROMIUM}; `make test` installs it "
            "(apt-get install -y chromium), or set NEUROCLOUD_CHROMIUM"
        )
    return path


@contextlib.contextmanager
def running(app, page=None) -> Iterator[str]:
    """Serve ``app`` on a free 127.0.0.1 port in a thread; yield its base URL. ``page`` is
    closed before the server stops, so that its open event streams end first."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        deadline = time.monotonic() + 60
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        try:
            yield f"http://127.0.0.1:{sock.getsockname()[1]}"
        finally:
            if page is not None and not page.is_closed():
                page.close()
            server.should_exit = True
            thread.join(30)


class PageWatch:
    """Records console errors, page errors and requests to anything but 127.0.0.1."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.problems.append(f"page error: {exc}"))
        page.route("**/*", self._route)

    def _console(self, message) -> None:
        if message.type == "error":
            self.problems.append(f"console error: {message.text}")

    def _route(self, route) -> None:
        url = route.request.url
        host = urlparse(url).hostname
        if url.startswith(("data:", "blob:")) or host == "127.0.0.1":
            route.continue_()
        else:
            self.problems.append(f"request to a non-127.0.0.1 address: {url}")
            route.abort()

    def check(self) -> None:
        assert not self.problems, self.problems


UNLABELLED_CONTROLS = """() => [...document.querySelectorAll("input, select, textarea, button")]
  .filter(c => !c.closest("[hidden]") && c.type !== "hidden")
  .filter(c => !(c.labels && c.labels.length) && !c.getAttribute("aria-label")
               && !(c.tagName === "BUTTON" && c.textContent.trim()))
  .map(c => c.id || c.outerHTML.slice(0, 80))"""


def unlabelled_controls(page) -> list[str]:
    """Form controls without a label, an aria-label or (buttons) text."""
    return page.evaluate(UNLABELLED_CONTROLS)


def tab_to(page, selector: str, limit: int = 80) -> None:
    """Press Tab until ``selector`` has the focus (the control is keyboard-reachable)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"document.activeElement === document.querySelector({selector!r})"):
            return
    raise AssertionError(f"{selector} was not reached with {limit} presses of Tab")
