"""Every code block on every documentation page runs, and prints what the page shows.

The runner is the one the site's build uses to draw the pages' pictures
(``docs/hooks/runner.py``); here each page runs in a fresh directory, and the pictures it
shows must come out of its own code.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(DOCS / "hooks"))
from runner import PageError, blocks, run_page  # noqa: E402

PAGES = sorted(
    p for p in DOCS.rglob("*.md") if not {"hooks", "notebooks"} & set(p.relative_to(DOCS).parts)
)
LEARN = [
    "neuron",
    "weights",
    "activations",
    "losses",
    "forward",
    "backprop",
    "gradient-descent",
    "worked-example",
    "deployment",
    "interpretability",
]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(DOCS).as_posix())
def test_page_runs_and_prints_what_it_shows(page: Path, tmp_path: Path) -> None:
    run = run_page(page, tmp_path)
    assert len(run.outputs) == len([b for b in run.blocks if b.language in {"python", "bash"}])


@pytest.mark.parametrize("name", LEARN)
def test_learn_page_has_every_part(name: str) -> None:
    text = (DOCS / "learn" / f"{name}.md").read_text(encoding="utf-8")
    assert "**The idea.**" in text
    assert "## The maths" in text and "\\[" in text
    assert "## The article's pitfall" in text
    assert "## In the code" in text and "][neurocloud." in text
    assert any(b.language == "python" for b in blocks(text))
    assert "](" in text and ".png)" in text, "a picture drawn by the page's example"


def test_learn_pages_follow_the_article_in_order() -> None:
    nav = (DOCS.parent / "mkdocs.yml").read_text(encoding="utf-8")
    positions = [nav.index(f"learn/{name}.md") for name in LEARN]
    assert positions == sorted(positions)


def test_runner_rejects_output_that_differs(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nprint(1 + 1)\n```\n\n```text\n3\n```\n", encoding="utf-8")
    with pytest.raises(PageError, match="printed"):
        run_page(page, tmp_path)


@pytest.mark.parametrize(
    ("printed", "shown", "same"),
    [
        ("loss 0.0123456", "loss 0.0123457", True),  # last digit: another BLAS kernel
        ("y = [[4.2143736]]", "y = [[4.2143731]]", True),
        ("loss 0.0124", "loss 0.0123", True),  # one unit of the last printed digit
        ("loss 0.0130", "loss 0.0123", False),
        ("epochs 1000", "epochs 1001", False),  # integers are exact
        ("accuracy 0.97", "accuracy 0.97 (digits)", False),
        ("1.5e-03", "1.5005e-03", True),
        ("1.5e-03", "1.7e-03", False),
    ],
)
def test_runner_compares_figures_to_their_printed_precision(
    printed: str, shown: str, same: bool
) -> None:
    from runner import _same

    assert _same(printed, shown) is same


def test_runner_rejects_a_picture_the_code_did_not_draw(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```python\nx = 1\n```\n\n![missing](missing.png)\n", encoding="utf-8")
    with pytest.raises(PageError, match="did not write"):
        run_page(page, tmp_path)


def test_runner_rejects_a_block_it_cannot_run(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("```ruby\nputs 1\n```\n", encoding="utf-8")
    with pytest.raises(PageError, match="block language"):
        run_page(page, tmp_path)
