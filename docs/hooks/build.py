"""MkDocs hooks: the pictures come from running the pages, MathJax from a Python package.

- Every page that shows a picture it does not have beside it is run (see ``runner.py``) in
  a scratch directory, and the pictures its code writes are added to the site.
- MathJax 3 (``tex-svg.js``, fonts included) is copied from the ``django-static-mathjax``
  wheel, so formulas render with no network.
"""

from __future__ import annotations

import sys
import tempfile
from importlib import resources
from pathlib import Path

from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).parent))
from runner import IMAGE, run_page

MATHJAX = "assets/mathjax/tex-svg.js"


def _needs_run(page: Path) -> bool:
    images = IMAGE.findall(page.read_text(encoding="utf-8"))
    return any("://" not in src and not (page.parent / src).exists() for src in images)


def on_files(files: Files, config) -> Files:
    docs = Path(config["docs_dir"])
    scratch = Path(tempfile.mkdtemp(prefix="neurocloud-docs-"))
    for page in sorted(docs.rglob("*.md")):
        if "hooks" in page.relative_to(docs).parts or not _needs_run(page):
            continue
        workdir = scratch / page.relative_to(docs).with_suffix("")
        workdir.mkdir(parents=True)
        for figure in run_page(page, workdir).figures:
            uri = (page.parent.relative_to(docs) / figure.relative_to(workdir)).as_posix()
            files.append(File.generated(config, uri, abs_src_path=str(figure)))
    mathjax = resources.files("mathjax") / "static" / "mathjax" / "es5" / "tex-svg.js"
    files.append(File.generated(config, MATHJAX, content=mathjax.read_bytes()))
    return files
