"""Fixtures for the real-browser tests of the web chat (tests/browser only).

Runs the real app (`python -m bot`) as a subprocess and drives it with the
Debian chromium through Playwright. Never downloads a browser.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 640}
APPLICATION = "KK-2026-0777"  # imported before the server starts; birth date 12-03-1990
LAPTOP = {"width": 1280, "height": 800}
STAFF_USER, STAFF_PASSWORD = "petugas", "kata-sandi-petugas"
STARTUP_TIMEOUT_S = 20.0


def pytest_configure(config):
    config.addinivalue_line("markers", "browser: drives a real chromium against the running app")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, limit: int = 6000) -> str:
    try:
        return path.read_text(errors="replace")[-limit:]
    except OSError:
        return ""


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """Start `python -m bot` on a free port with its own data dir; yield the base URL."""
    data_dir = tmp_path_factory.mktemp("lontar-data")
    logs = tmp_path_factory.mktemp("lontar-logs")
    out_path, err_path = logs / "stdout.log", logs / "stderr.log"
    port = _free_port()
    env = dict(os.environ)
    env.update(
        LONTAR_HOST="127.0.0.1",
        LONTAR_PORT=str(port),
        LONTAR_DATA_DIR=str(data_dir),
        PYTHONUNBUFFERED="1",
    )
    base = f"http://127.0.0.1:{port}"
    # a dashboard account, made the way an office makes one
    subprocess.run([sys.executable, "-m", "bot", "admin", "create-user", STAFF_USER,
                    "--role", "staff", "--name", "Petugas Loket"], cwd=str(REPO_ROOT), env=env,
                   input=STAFF_PASSWORD + "\n", text=True, check=True, capture_output=True)
    # applications, loaded the way an office loads them
    applications = data_dir / "permohonan.csv"
    applications.write_text(
        "nomor_registrasi,layanan,kantor,status,alasan,nik,tanggal_lahir\n"
        f"{APPLICATION},kk-baru,dinas,diproses,,,1990-03-12\n", encoding="utf-8")
    subprocess.run([sys.executable, "-m", "bot", "applications", "import", str(applications)],
                   cwd=str(REPO_ROOT), env=env, text=True, check=True, capture_output=True)
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot"],
            cwd=str(REPO_ROOT),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"`python -m bot` exited with code {proc.returncode} "
                    "before serving /healthz.\n"
                    f"--- stderr ---\n{_tail(err_path)}\n--- stdout ---\n{_tail(out_path)}",
                    pytrace=False,
                )
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"`python -m bot` did not answer {base}/healthz "
                    f"within {STARTUP_TIMEOUT_S:.0f} s.\n"
                    f"--- stderr ---\n{_tail(err_path)}\n--- stdout ---\n{_tail(out_path)}",
                    pytrace=False,
                )
            time.sleep(0.2)
        yield base
        if proc.poll() is not None:
            pytest.fail(
                f"`python -m bot` died during the tests (code {proc.returncode}).\n"
                f"--- stderr ---\n{_tail(err_path)}",
                pytrace=False,
            )
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)


@pytest.fixture(scope="module")
def chromium_browser():
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip("chromium not found at /usr/bin/chromium: "
                    "install Debian packages chromium and chromium-driver")
    sync_api = pytest.importorskip("playwright.sync_api")
    executable = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    with sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def phone_page(chromium_browser, server):
    """A fresh phone-sized page (own context, so own localStorage/session) on the chat."""
    context = chromium_browser.new_context(
        viewport=PHONE,
        is_mobile=True,
        has_touch=True,
        locale="id-ID",
        base_url=server,
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    # Checked by the tests: uncaught page exceptions, and any request that
    # leaves the app (the page must work without external resources).
    page.errors = []
    page.external_requests = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))

    def _only_local(route):
        url = route.request.url
        if url.startswith(server + "/") or url == server or url.startswith(("data:", "blob:")):
            route.fallback()
        else:
            page.external_requests.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", _only_local)
    try:
        yield page
    finally:
        context.close()
