"""The notebook that walks the article runs top to bottom (jupytext reads it, cells run in
order in one namespace, as a kernel would run them)."""

from __future__ import annotations

import os
from pathlib import Path

import jupytext

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "article.md"


def test_article_notebook_runs_top_to_bottom(tmp_path: Path, monkeypatch) -> None:
    notebook = jupytext.read(NOTEBOOK)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert len(code) >= 8
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    namespace: dict = {"__name__": "__notebook__"}
    for number, cell in enumerate(code, 1):
        exec(compile(cell.source, f"<cell {number}>", "exec"), namespace)
    assert (tmp_path / "models" / "seed" / "model.json").is_file()
    import matplotlib.pyplot as plt

    plt.close("all")
    assert os.getcwd() == str(tmp_path)
