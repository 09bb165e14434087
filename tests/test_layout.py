"""The package's shape: layers without upward imports or cycles, small modules, a current map.

`make lint` runs lint-imports too; these tests keep the same promises inside `make test`, so a
change that breaks them fails wherever the suite runs.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 600
# A module may grow past MAX_LINES only by saying why in its docstring, with these words.
LONG_REASON = "Longer than 600 lines because"


def test_import_contracts_are_kept() -> None:
    """Layers (no arrow from a lower layer up) and no cycle between siblings (pyproject.toml)."""
    lint_imports = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run(
        [str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"Contracts: [1-9]\d* kept, 0 broken", done.stdout), done.stdout


def test_import_map_is_current() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/import_graph.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _lines(path: Path) -> int:
    return path.read_text().count("\n")


def test_no_long_module_without_a_reason() -> None:
    too_long = []
    for package in ("worker", "sandbox"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            lines = _lines(path)
            if lines <= MAX_LINES:
                continue
            doc = ast.get_docstring(ast.parse(path.read_text())) or ""
            if LONG_REASON not in doc:
                too_long.append(f"{rel} ({lines} lines)")
    assert not too_long, f"split these, or say '{LONG_REASON} ...' in the docstring: {too_long}"
