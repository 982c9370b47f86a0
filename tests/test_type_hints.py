"""Public functions and methods in ``src/`` carry type hints on every argument and the
return (read with ast, so nothing is imported). Private names (a leading underscore, in
the function or any module on its path) are free."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "neurocloud"


def _unhinted(nodes: list[ast.stmt], prefix: str = "", in_class: bool = False):
    for node in nodes:
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            yield from _unhinted(node.body, f"{prefix}{node.name}.", in_class=True)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if node.name.startswith("_") and node.name != "__init__":
                continue
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            if in_class and args and args[0].arg in ("self", "cls"):
                args = args[1:]
            args += [a for a in (node.args.vararg, node.args.kwarg) if a is not None]
            if node.returns is None or any(a.annotation is None for a in args):
                yield f"{prefix}{node.name}"


def unhinted() -> set[str]:
    found = set()
    for path in sorted(SRC.rglob("*.py")):
        rel = path.relative_to(SRC)
        if any(part.startswith("_") and part != "__init__.py" for part in rel.parts):
            continue
        tree = ast.parse(path.read_text(), str(path))
        found |= {f"{rel.as_posix()}:{name}" for name in _unhinted(tree.body)}
    return found


def test_public_functions_have_type_hints():
    assert unhinted() == set()


def test_the_check_sees_a_missing_hint():
    tree = ast.parse("def f(x) -> int: ...\nclass C:\n    def g(self, y: int): ...\n")
    assert set(_unhinted(tree.body)) == {"f", "C.g"}
