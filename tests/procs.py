"""Helpers for tests that run the real `lontar` command in a subprocess."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"LONTAR_DATA_DIR": str(data_dir), "LONTAR_HOST": "127.0.0.1",
                "PYTHONUNBUFFERED": "1", "LONTAR_LOG_LEVEL": "WARNING"})
    env.update(extra)
    return env


def lontar_cmd(*args: str) -> list[str]:
    """The real command; `python -m bot` is what the console script `lontar` runs."""
    return [sys.executable, "-m", "bot", *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(data_dir: Path, port: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        lontar_cmd(), cwd=ROOT, env=env_for(data_dir, LONTAR_PORT=str(port)),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read() if proc.stderr else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become healthy in 30 s")


def start_with_telegram(data_dir: Path, port: int, base_url: str,
                        **extra: str) -> subprocess.Popen[str]:
    """The real server talking to a fake Bot API at `base_url`; returns at once (the test's
    own event loop serves the fake, so wait with `healthy`)."""
    env = env_for(data_dir, LONTAR_PORT=str(port), TELEGRAM_BOT_TOKEN="123456:TEST-token",
                  TELEGRAM_API_BASE_URL=base_url, TELEGRAM_POLL_TIMEOUT="1",
                  LONTAR_SECRET_KEY="k" * 40, **extra)
    return subprocess.Popen(lontar_cmd(), cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


async def healthy(port: int, proc: subprocess.Popen[str]) -> None:
    """Wait for the server while the caller's loop keeps serving the fake it talks to."""
    def ok() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False
    for _ in range(300):
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        if await asyncio.to_thread(ok):
            return
        await asyncio.sleep(0.1)
    raise AssertionError("server did not become healthy")
