"""`lontar match` and `lontar content check` as an editor or developer runs them."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.procs import ROOT, env_for, lontar_cmd


def _run(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(lontar_cmd(*args), cwd=ROOT, env=env_for(ROOT / "data", **env),
                          input=stdin, capture_output=True, text=True, timeout=60)


def test_match_prints_one_json_line() -> None:
    r = _run("match", "syarat", "bikin", "kk", "baru")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1
    data = json.loads(lines[0])
    assert data["topic"] == "kk-baru" and 0 <= data["score"] <= 100
    assert isinstance(data["alternatives"], list)


def test_match_stdin_one_line_per_input() -> None:
    r = _run("match", "--stdin", stdin="ktp ilang\nharga cabe\nsyarat kk\n")
    rows = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert [row["topic"] for row in rows][:2] == ["ktp-hilang-rusak", None]
    assert len(rows) == 3
    assert rows[2]["topic"] is None and len(rows[2]["alternatives"]) >= 2  # a close call


def test_content_check_passes_on_shipped_content() -> None:
    r = _run("content", "check")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "content OK" in r.stdout
    assert "warning: offices.toml: office[dinas].address" in r.stdout


def test_content_check_names_file_and_field(tmp_path: Path) -> None:
    broken = tmp_path / "content"
    shutil.copytree(ROOT / "content", broken)
    svc = broken / "services" / "kia.toml"
    svc.write_text(svc.read_text(encoding="utf-8").replace('group = "kia"', 'group = "nope"'),
                   encoding="utf-8")
    msgs = broken / "messages.en.toml"
    msgs.write_text(msgs.read_text(encoding="utf-8") + '\nopt_back = "x"\n', encoding="utf-8")
    r = _run("content", "check", LONTAR_CONTENT_DIR=str(broken))
    assert r.returncode == 1
    assert "content/services/kia.toml: group: unknown group 'nope'" in r.stderr
    assert "content/messages.en.toml" in r.stderr
