"""A Griffe extension: docstrings written for doctest and Sphinx read well as Markdown.

Doctest blocks (``>>>`` lines and their output, up to a blank line) become ``pycon`` code
blocks, so their brackets are not taken for links; ``:func:`name``` roles become code.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|attr|mod|data|exc|obj):`~?([^`]+)`")


def markdown(text: str) -> str:
    out: list[str] = []
    in_doctest = False
    for line in ROLE.sub(r"`\1`", text).splitlines():
        stripped = line.strip()
        if not in_doctest and stripped.startswith(">>>"):
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}```pycon")
            in_doctest = True
        elif in_doctest and not stripped:
            out.append(f"{indent}```")
            in_doctest = False
        out.append(line)
    if in_doctest:
        out.append(f"{indent}```")
    return "\n".join(out)


class DoctestBlocks(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = markdown(obj.docstring.value)
