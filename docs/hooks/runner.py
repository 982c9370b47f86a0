"""Run a documentation page's code blocks, as the build and the tests both do.

A page's ``python`` blocks run in order in one namespace and its ``bash`` blocks in a shell,
all in one working directory. A ``text`` block right after a code block is that block's
printed output, and must match what the block prints: the text exactly, and each decimal
number to 0.1% or one unit of its last printed digit (float32 sums differ in their last
digits between BLAS kernels, so a page's figures hold on every machine). Pictures a page
shows are written by its own code into the working directory: ``![...](name.png)`` that is
not a file beside the page must be produced by running the page. Any other fenced block is an
error, so every block on a page runs.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from markdown_it import MarkdownIt

IMAGE = re.compile(r"!\[[^\]]*\]\((?P<src>[^)\s]+)\)")
CODE = {"python", "bash"}
SHELL_TIMEOUT_S = 120


@dataclass
class Block:
    language: str
    source: str
    line: int  # 1-based line of the opening fence
    expected: str | None = None  # the text block shown as its output


@dataclass
class PageRun:
    blocks: list[Block]
    outputs: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)


class PageError(AssertionError):
    """A block failed, printed something else than the page shows, or a picture is missing."""


def blocks(markdown: str) -> list[Block]:
    """The page's code blocks, each with the output block that follows it, if any."""
    tokens = [t for t in MarkdownIt().parse(markdown) if t.type in {"fence", "code_block"}]
    lines = markdown.splitlines()
    found: list[Block] = []
    for token in tokens:
        if token.type == "code_block":
            raise PageError(f"line {token.map[0] + 1}: indented code; use a fenced block")
        language = token.info.split()[0] if token.info.strip() else ""
        start, end = token.map
        if language == "text":
            between = lines[found[-1].end : start] if found else ["no code before"]
            if not found or any(s.strip() for s in between) or found[-1].expected is not None:
                raise PageError(f"line {start + 1}: a text block must follow a code block")
            found[-1].expected = token.content
            continue
        if language not in CODE:
            raise PageError(f"line {start + 1}: block language {language!r}; expected {CODE}")
        block = Block(language, token.content, start + 1)
        block.end = end  # type: ignore[attr-defined]
        found.append(block)
    return found


NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
REL_TOL = 1e-3


def _close(a: str, b: str) -> bool:
    """Integers must be equal; decimals within REL_TOL or one unit of the last printed digit."""
    if not any(c in a + b for c in ".eE"):
        return a == b
    unit = max(_last_digit_unit(a), _last_digit_unit(b))
    x, y = float(a), float(b)
    return abs(x - y) <= max(REL_TOL * max(abs(x), abs(y)), unit * 1.000001)


def _last_digit_unit(number: str) -> float:
    mantissa, _, exponent = number.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def _same(printed: str, expected: str) -> bool:
    def norm(text: str) -> list[str]:
        return [line.rstrip() for line in text.strip("\n").splitlines()]

    got, want = norm(printed), norm(expected)
    if len(got) != len(want):
        return False
    for line, shown in zip(got, want, strict=True):
        if NUMBER.split(line) != NUMBER.split(shown):
            return False
        pairs = zip(NUMBER.findall(line), NUMBER.findall(shown), strict=True)
        if not all(_close(a, b) for a, b in pairs):
            return False
    return True


def run_page(page: Path, workdir: Path) -> PageRun:
    """Run every block of ``page`` in ``workdir``; raise :class:`PageError` on any failure."""
    markdown = page.read_text(encoding="utf-8")
    run = PageRun(blocks(markdown))
    namespace: dict = {"__name__": "__page__"}
    env = {**os.environ, "MPLBACKEND": "Agg"}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    before = os.getcwd()
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.chdir(workdir)
    try:
        for block in run.blocks:
            where = f"{page.name}, block at line {block.line}"
            if block.language == "python":
                stdout = io.StringIO()
                try:
                    with contextlib.redirect_stdout(stdout):
                        exec(compile(block.source, f"<{where}>", "exec"), namespace)
                except Exception as error:
                    raise PageError(f"{where} raised {error!r}") from error
                printed = stdout.getvalue()
            else:
                done = subprocess.run(
                    ["bash", "-euo", "pipefail", "-c", block.source],
                    cwd=workdir,
                    env=env,
                    capture_output=True,
                    text=True,
                    timeout=SHELL_TIMEOUT_S,
                )
                if done.returncode != 0:
                    raise PageError(f"{where} exited {done.returncode}: {done.stderr[-2000:]}")
                printed = done.stdout
            run.outputs.append(printed)
            if block.expected is not None and not _same(printed, block.expected):
                raise PageError(f"{where} printed\n{printed}\nbut the page shows\n{block.expected}")
    finally:
        os.chdir(before)
        with contextlib.suppress(ImportError):
            import matplotlib.pyplot as plt

            plt.close("all")
    for src in IMAGE.findall(markdown):
        if "://" in src or (page.parent / src).exists():
            continue
        produced = workdir / src
        if not produced.is_file():
            raise PageError(f"{page.name} shows {src}, which its code did not write")
        run.figures.append(produced)
    return run
