"""The real server process killed mid-conversation resumes it and re-sends nothing."""

from __future__ import annotations

import json
import signal
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from flows.content import Content
from tests.procs import free_port, start_server

SESSION = "crash" + "x" * 20


def _post(port: int, **body: Any) -> dict[str, Any]:
    body = {"session": SESSION, "message_id": uuid.uuid4().hex, **body}
    req = urllib.request.Request(f"http://127.0.0.1:{port}/api/chat",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def test_kill_and_restart(tmp_path: Path, content: Content) -> None:
    port = free_port()
    proc = start_server(tmp_path, port)
    try:
        d1 = _post(port, command="start")
        d2 = _post(port, choice=d1["messages"][-1]["options"][0]["id"], after=d1["cursor"])
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    proc = start_server(tmp_path, port)
    try:
        # the buttons sent before the crash are still the live ones
        d3 = _post(port, choice=d2["messages"][-1]["options"][0]["id"], after=d2["cursor"])
        assert content.msg("id", "stale_button") not in d3["messages"][0]["text"]
        assert content.msg("id", "welcome") not in d3["messages"][0]["text"]
        # nothing from before the crash comes again after the cursor
        assert all(m["id"] > d2["cursor"] for m in d3["messages"])
        with urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/chat?session={SESSION}&after=0") as r:
            ids = [m["id"] for m in json.loads(r.read())["messages"]]
        assert ids == sorted(set(ids))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
