"""Repository promises: the README's two commands, CI running the same, ruff clean."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    blocks, inside = [], False
    for line in lines:
        if line.startswith("```"):
            inside = not inside
            continue
        if inside and line.strip():
            blocks.append(line.strip())
        if len(blocks) == 2:
            break
    return blocks


def test_readme_starts_with_run_then_test_command() -> None:
    run, test = _readme_commands()
    assert run.endswith("lontar") and "pip install" in run
    assert "[test]" in test and test.endswith("pytest")


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert _readme_commands()[1] in ci


def test_env_example_documents_every_setting() -> None:
    from bot.config import Settings

    documented = (ROOT / ".env.example").read_text(encoding="utf-8")
    for field in Settings.model_fields.values():
        alias = field.validation_alias.choices[0]  # type: ignore[union-attr]
        assert f"\n{alias}=" in documented, alias


def test_ruff_clean() -> None:
    ruff = shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff not installed (it is in the test extras)")
    r = subprocess.run([ruff, "check", "bot", "flows", "tests", "bench"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_flows_is_mypy_clean() -> None:
    """design.md: flows/ type-checks strictly (settings in pyproject.toml)."""
    mypy = shutil.which("mypy")
    if mypy is None:
        pytest.skip("mypy not installed (it is in the test extras)")
    r = subprocess.run([mypy], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout


def test_every_code_folder_is_packaged() -> None:
    """`pip install .` ships only listed packages: a folder missing here breaks `lontar`."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"][
        "packages"])
    folders = {
        ".".join(p.parent.relative_to(ROOT).parts)
        for top in ("bot", "flows") for p in (ROOT / top).rglob("*.py")
    }
    assert folders <= listed, folders - listed
