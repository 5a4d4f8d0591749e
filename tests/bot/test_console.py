"""`lontar chat` driven through the stdin/stdout of the real command."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

from flows.content import Content
from tests.procs import ROOT, env_for, lontar_cmd


def _chat(data_dir: Path, lines: list[str]) -> str:
    result = subprocess.run(
        lontar_cmd("chat", "--user", "tester"), cwd=ROOT, env=env_for(data_dir),
        input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_terminal_chat_numbers_options_and_understands(tmp_path: Path,
                                                       content: Content) -> None:
    out = _chat(tmp_path, ["1", "ktp sy ilang bagemana", "menu"])
    first = content.main_menu[0].label.id
    assert f"1. {first}" in out
    assert content.msg("id", "docs_intro") in out  # "1" chose the first option
    assert content.services["ktp-hilang-rusak"].bring.id.splitlines()[0] in out
    assert out.count(content.msg("id", "menu_intro")) >= 2
    assert content.msg("id", "console_bye") in out


def test_terminal_chat_resumes_after_kill_without_repeating(tmp_path: Path,
                                                            content: Content) -> None:
    """kill -9 in the middle, start again: the conversation goes on, nothing printed twice."""
    proc = subprocess.Popen(
        lontar_cmd("chat", "--user", "tester"), cwd=ROOT, env=env_for(tmp_path),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True,
    )
    assert proc.stdin and proc.stdout
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.extend(iter(lambda: proc.stdout.read(1), "")),
                              daemon=True)
    reader.start()
    proc.stdin.write("1\n")
    proc.stdin.flush()
    docs_intro = content.msg("id", "docs_intro")
    prompt = content.msg("id", "console_prompt").strip()
    deadline = time.monotonic() + 30
    # wait until the reply is printed and the next prompt shows: the turn is complete
    while time.monotonic() < deadline:
        seen = "".join(chunks)
        if docs_intro in seen and seen.rstrip().endswith(prompt) and seen.count(prompt) >= 2:
            break
        time.sleep(0.05)
    assert docs_intro in "".join(chunks)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    out = _chat(tmp_path, ["1"])  # "1" now means the first document group
    assert content.msg("id", "welcome") not in out  # no fresh start
    assert docs_intro not in out  # the old reply is not printed again
    group = next(iter(content.groups.values()))
    assert content.msg("id", "group_intro", group=group.label.id) in out or any(
        content.services[s].bring.id.splitlines()[0] in out for s in group.services)
