"""flows/ stays pure: only stdlib, pydantic and rapidfuzz; no clock, randomness or I/O."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

FLOWS = Path(__file__).resolve().parents[2] / "flows"
ALLOWED_THIRD_PARTY = {"pydantic", "rapidfuzz", "flows"}
FORBIDDEN_STDLIB = {"socket", "asyncio", "sqlite3", "subprocess", "random", "time", "os",
                    "urllib", "http", "threading"}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "random", "open", "urlopen"}


def _modules() -> list[Path]:
    return sorted(FLOWS.glob("*.py"))


def test_flows_imports_only_pure_modules() -> None:
    bad = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                top = name.split(".")[0]
                ok = top in ALLOWED_THIRD_PARTY or (
                    top in sys.stdlib_module_names and top not in FORBIDDEN_STDLIB)
                if not ok:
                    bad.append(f"{path.name}: import {name}")
    assert bad == []


def test_flows_reads_no_clock_and_does_no_io() -> None:
    bad = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                fn = node.func
                name = fn.attr if isinstance(fn, ast.Attribute) else getattr(fn, "id", "")
                # The content loader is the one sanctioned reader of files (design.md).
                if name in FORBIDDEN_CALLS and not (path.name == "content.py" and name == "open"):
                    bad.append(f"{path.name}:{node.lineno}: {name}()")
    assert bad == []


def test_purity_check_catches_a_violation(tmp_path: Path) -> None:
    """The checks above must be able to fail: run them over a deliberately impure module."""
    impure = "import sqlite3\nfrom datetime import datetime\nx = datetime.now()\n"
    tree = ast.parse(impure)
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.Import)]
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    assert imports[0].names[0].name in FORBIDDEN_STDLIB
    assert isinstance(calls[0].func, ast.Attribute) and calls[0].func.attr in FORBIDDEN_CALLS
