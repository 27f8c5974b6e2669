"""The packages import one way only (DESIGN §5): a lower part never reaches a higher one.

Read from the source with :mod:`ast`, so an import anywhere in a module counts — at the top, in a
function, under ``TYPE_CHECKING``. The order, top to bottom: ``cli`` → ``reports`` → ``engine`` →
``store`` and ``providers`` → ``manifest`` → the shared basics (``errors``, ``redact``, ``textcheck``,
``netloc``, ``clock``); the simulator imports nothing of ``runner`` (it is the far side of the wire).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent.parent / "runner"
BASICS = {"errors", "redact", "textcheck", "netloc", "clock", "__init__", "__main__"}
#: What each part may import, besides itself and the shared basics.
MAY = {
    "cli": {"reports", "engine", "store", "providers", "manifest", "simulator"},
    "reports": {"engine", "store", "providers", "manifest"},
    "engine": {"store", "providers", "manifest"},
    "store": set(),
    "providers": {"manifest"},
    "manifest": set(),
    "basics": set(),
}


def _part(module: str) -> str:
    """``runner.engine.core`` → ``engine``; a top-level basic → ``basics``."""
    name = module.split(".")[1] if module.count(".") else "basics"
    return "basics" if name in BASICS or name.startswith("__") else name


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in found if m == "runner" or m.startswith("runner.")}


def _modules() -> list[Path]:
    return sorted(p for p in RUNNER.rglob("*.py") if "simulator" not in p.parts)


def _own_part(path: Path) -> str:
    rel = path.relative_to(RUNNER)
    if rel.parts == ("__main__.py",):
        return "cli"  # ``python -m runner`` is the face too
    return "basics" if len(rel.parts) == 1 else rel.parts[0]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(RUNNER)))
def test_a_module_imports_only_its_own_part_lower_parts_and_the_basics(path: Path) -> None:
    part = _own_part(path)
    allowed = MAY[part] | {part, "basics"}
    wrong = sorted(m for m in _imports(path) if m != "runner" and _part(m) not in allowed)
    assert not wrong, f"{path.relative_to(RUNNER)} ({part}) imports {wrong}"


def test_the_simulator_imports_nothing_of_the_rest_of_runner() -> None:
    wrong = {
        str(p.relative_to(RUNNER)): sorted(m for m in _imports(p) if not m.startswith("runner.simulator"))
        for p in (RUNNER / "simulator").rglob("*.py")
    }
    assert not {k: v for k, v in wrong.items() if v}


def test_every_part_is_a_package_that_says_what_it_owns() -> None:
    for part in MAY.keys() - {"basics"}:
        init = RUNNER / part / "__init__.py"
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8")))
        assert doc and "never" in doc.lower(), f"{init} must say what it owns and must never import"
