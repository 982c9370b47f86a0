"""The documentation site: ``mkdocs build --strict`` succeeds, and three built pages open in
headless Chromium with no request off this machine and no console error.

The build runs the pages' code to draw their pictures and copies MathJax from a Python
package, so the site needs no network to build or to render: where the machine allows it,
the build runs in a network namespace of its own with nothing but loopback.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
# The build runs the Learn pages' code (SHAP and LIME included): minutes on a loaded machine.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _no_network_prefix() -> list[str]:
    """A command prefix that runs in a new network namespace with only loopback, if this
    machine allows one (root, or user namespaces), else an empty list."""
    if not (shutil.which("unshare") and shutil.which("ip")):
        return []
    unshare = ["unshare", "-n"] if os.geteuid() == 0 else ["unshare", "-rn"]
    prefix = [*unshare, "sh", "-c", 'ip link set lo up && exec "$@"', "sh"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, timeout=60)
    return prefix if probe.returncode == 0 else []


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "MPLBACKEND": "Agg"}
    prefix = _no_network_prefix()
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)]
    done = subprocess.run(
        [*prefix, *command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=800
    )
    assert done.returncode == 0, done.stderr[-4000:]
    (out / ".built-without-network").write_text("yes" if prefix else "no")
    return out


def test_site_builds_with_no_network_at_all(site: Path) -> None:
    if (site / ".built-without-network").read_text() != "yes":
        pytest.skip(
            "this machine allows no network namespace (unshare -n), so the build ran "
            "with the network present; the page tests below still block it"
        )
    assert (site / "index.html").is_file()


def test_strict_build_has_every_page_picture_and_mathjax(site: Path) -> None:
    for page in ["learn/backprop", "learn/interpretability", "guides/tabular", "reference"]:
        assert (site / page / "index.html").is_file(), page
    for picture in [
        "learn/backprop_gradients.png",
        "learn/activations.png",
        "learn/optimizer_paths.png",
        "learn/attributions.png",
    ]:
        assert (site / picture).stat().st_size > 5_000, picture
    assert (site / "assets/mathjax/tex-svg.js").stat().st_size > 1_000_000
    reference = (site / "reference/index.html").read_text(encoding="utf-8")
    assert 'id="neurocloud.nn.sequential.Sequential"' in reference
    assert 'id="neurocloud.explain.integrated_gradients"' in reference


def test_built_pages_load_nothing_from_outside(site: Path) -> None:
    # What a page loads (scripts, styles, images, frames); plain links may point anywhere.
    remote = re.compile(
        r"""<(?:script|link|img|iframe|source)\b[^>]*(?:src|href)=["'](?:https?:)?//"""
    )
    for html in site.rglob("*.html"):
        found = remote.findall(html.read_text(encoding="utf-8"))
        assert not found, f"{html.relative_to(site)} loads from outside: {found}"


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(base_url: str) -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Debian's chromium is missing at {CHROMIUM}: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def open_offline(browser, url: str):
    """A page that records every request off this machine and every console error."""
    context = browser.new_context(service_workers="block")
    page = context.new_page()
    page.outside: list[str] = []
    page.errors: list[str] = []

    def route(r) -> None:
        parts = urlsplit(r.request.url)
        if parts.scheme in {"data", "blob"} or parts.hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            page.outside.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.goto(url, wait_until="networkidle")
    return page


def check_clean(page) -> None:
    assert page.outside == [], f"requests off this machine: {page.outside}"
    assert page.errors == [], f"console errors: {page.errors}"
    page.context.close()


def test_backprop_page_renders_its_maths_and_picture_offline(browser, base_url: str) -> None:
    page = open_offline(browser, f"{base_url}/learn/backprop/")
    page.wait_for_selector("mjx-container svg", timeout=30_000)
    assert page.locator("mjx-container").count() >= 10
    assert page.evaluate("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert page.locator("img[src*='backprop_gradients.png']").count() == 1
    check_clean(page)


def test_api_reference_opens_offline(browser, base_url: str) -> None:
    page = open_offline(browser, f"{base_url}/reference/")
    assert page.locator("[id='neurocloud.nn.sequential.Sequential']").count() == 1
    assert "backward" in page.inner_text("article")
    check_clean(page)


def test_search_finds_backpropagation_offline(browser, base_url: str) -> None:
    page = open_offline(browser, f"{base_url}/?q=backpropagation")
    page.wait_for_selector(".md-search-result__item", timeout=30_000)
    links = page.eval_on_selector_all(
        ".md-search-result__item a", "links => links.map(a => a.href)"
    )
    assert any("/learn/backprop/" in link for link in links), links
    check_clean(page)
