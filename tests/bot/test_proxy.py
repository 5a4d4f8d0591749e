"""Behind a reverse proxy (bot/proxy.py): who the client is, through the real app.

Every test drives `web_app` on a loopback TestServer, so the direct peer is 127.0.0.1: listed
in LONTAR_TRUSTED_PROXIES it is "nginx on the same machine", not listed it is a client talking
to Lontar directly. A probe route added to the real application shows what handlers see
behind the whole middleware stack.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from multidict import CIMultiDict
from sqlalchemy import select

from bot.app import REQUEST_ID_HEADER, Lontar, build, web_app
from bot.config import load_settings
from bot.models import audit_t
from tests.bot.dashboard_helpers import CSRF, PASSWORD, add_user

CLIENT_A, CLIENT_B = "203.0.113.5", "198.51.100.7"
PROBE = "/_test/whoami"


async def _whoami(request: web.Request) -> web.Response:
    return web.json_response({"remote": request.remote, "scheme": request.scheme,
                              "secure": request.secure})


@asynccontextmanager
async def served(tmp_path: Path, trusted: str) -> AsyncIterator[tuple[Lontar, TestClient]]:
    """The real app with LONTAR_TRUSTED_PROXIES=`trusted`, plus the probe route."""
    lontar = build(load_settings(data_dir=tmp_path, trusted_proxies_setting=trusted))
    app = web_app(lontar)
    app.router.add_get(PROBE, _whoami)
    try:
        async with TestClient(TestServer(app)) as client:
            yield lontar, client
    finally:
        lontar.close()


async def _probe(client: TestClient, headers: Any) -> dict[str, Any]:
    r = await client.get(PROBE, headers=headers)
    assert r.status == 200, await r.text()
    return dict(await r.json())


async def _login(client: TestClient, forwarded_for: str, username: str,
                 password: str = PASSWORD) -> int:
    """One login attempt as a browser behind `forwarded_for` makes it; the status."""
    headers = {"X-Forwarded-For": forwarded_for}
    form = await client.get("/admin/login", headers=headers)
    token = CSRF.search(await form.text())
    assert token is not None
    r = await client.post("/admin/login", headers=headers, allow_redirects=False, data={
        "csrf": token.group(1), "username": username, "password": password})
    return r.status


def _audit_ips(lontar: Lontar, action: str) -> list[str | None]:
    with lontar.db.engine.connect() as conn:
        return list(conn.execute(select(audit_t.c.ip).where(audit_t.c.action == action)
                                 .order_by(audit_t.c.id)).scalars())


# -- a trusted proxy ------------------------------------------------------------------------


async def test_login_limit_counts_each_forwarded_client(tmp_path: Path) -> None:
    """Behind nginx the limiter must not lock every member of staff out together."""
    async with served(tmp_path, "127.0.0.1") as (lontar, client):
        add_user(lontar, "petugas", "staff")
        attempts = lontar.settings.login_attempts
        for i in range(attempts):  # a new name each time: only the address key fills up
            assert await _login(client, CLIENT_A, f"tebakan{i}", "salah-salah-salah") == 401
        assert await _login(client, CLIENT_A, "petugas") == 429  # A is locked out...
        assert await _login(client, CLIENT_B, "petugas") == 303  # ...B, behind the same proxy,
        assert _audit_ips(lontar, "login_blocked") == [CLIENT_A]  # is not
        assert _audit_ips(lontar, "login") == [CLIENT_B]


async def test_audit_log_records_the_forwarded_address(tmp_path: Path) -> None:
    async with served(tmp_path, "127.0.0.1, 10.0.0.0/8") as (lontar, client):
        add_user(lontar, "petugas", "staff")
        # what the client wrote itself (left) is skipped; so is a second trusted proxy (right)
        assert await _login(client, f"6.6.6.6, {CLIENT_A}, 10.1.2.3", "petugas", "x" * 12) == 401
        assert await _login(client, CLIENT_B, "petugas") == 303
        csrf = CSRF.search(await (await client.get(
            "/admin/tickets", headers={"X-Forwarded-For": CLIENT_B})).text())
        assert csrf is not None
        r = await client.post("/admin/logout", data={"csrf": csrf.group(1)},
                              headers={"X-Forwarded-For": CLIENT_A}, allow_redirects=False)
        assert r.status == 303
        assert _audit_ips(lontar, "login_failed") == [CLIENT_A]
        assert _audit_ips(lontar, "login") == [CLIENT_B]
        assert _audit_ips(lontar, "logout") == [CLIENT_A]


async def test_bodies_still_read_behind_the_proxy(tmp_path: Path) -> None:
    """Handlers get a clone of the request: a web chat turn still reads its streamed JSON
    body (forms: the login tests above)."""
    async with served(tmp_path, "127.0.0.1") as (lontar, client):
        r = await client.post("/api/chat", headers={"X-Forwarded-For": CLIENT_A}, json={
            "session": "s" + "p" * 31, "message_id": "m" * 8, "command": "start"})
        assert r.status == 200
        assert lontar.content.msg("id", "welcome") in (await r.json())["messages"][0]["text"]


@pytest.mark.parametrize(("headers", "remote", "scheme"), [
    ({}, "127.0.0.1", "http"),  # Prometheus or a health check on 127.0.0.1: no header
    ({"X-Forwarded-For": CLIENT_A}, CLIENT_A, "http"),
    ({"X-Forwarded-For": CLIENT_A, "X-Forwarded-Proto": "https"}, CLIENT_A, "https"),
    ({"X-Forwarded-For": CLIENT_A, "X-Forwarded-Proto": "HTTPS"}, CLIENT_A, "https"),
    # junk a client sent: nginx appends the real address after it, and the walk stops there
    ({"X-Forwarded-For": f"bogus, 1.2.3.4:99, {CLIENT_A}"}, CLIENT_A, "http"),
    ({"X-Forwarded-For": f"6.6.6.6, {CLIENT_A}"}, CLIENT_A, "http"),
    ([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", CLIENT_A)], CLIENT_A, "http"),
    ({"X-Forwarded-For": "2001:db8::7"}, "2001:db8::7", "http"),
    ({"X-Forwarded-For": f"::ffff:{CLIENT_A}"}, CLIENT_A, "http"),
    ({"X-Forwarded-For": "127.0.0.1"}, "127.0.0.1", "http"),  # all trusted: the leftmost
    ({"X-Forwarded-For": ""}, "127.0.0.1", "http"),
    ({"X-Forwarded-For": f"{CLIENT_A},,"}, CLIENT_A, "http"),
    # one proto per hop: the client's hop's
    ({"X-Forwarded-For": f"{CLIENT_A}, 127.0.0.1", "X-Forwarded-Proto": "https, http"},
     CLIENT_A, "https"),
])
async def test_trusted_proxy_headers(tmp_path: Path, headers: Any, remote: str,
                                     scheme: str) -> None:
    async with served(tmp_path, "127.0.0.1") as (_, client):
        seen = await _probe(client, CIMultiDict(headers))
        assert seen == {"remote": remote, "scheme": scheme, "secure": scheme == "https"}


@pytest.mark.parametrize("headers", [
    {"X-Forwarded-For": "bogus"},
    {"X-Forwarded-For": f"{CLIENT_A}, bogus"},
    {"X-Forwarded-For": f"{CLIENT_A}:443"},
    {"X-Forwarded-For": "unknown"},
    {"X-Forwarded-For": "999.1.1.1"},
    {"X-Forwarded-For": CLIENT_A, "X-Forwarded-Proto": "javascript"},
])
async def test_unreadable_header_from_trusted_proxy_is_a_clean_400(tmp_path: Path,
                                                                   headers: Any) -> None:
    """Where the client's address should be, junk is a misconfigured proxy: no guess, no
    500, on the probe and on a real page."""
    async with served(tmp_path, "127.0.0.1") as (lontar, client):
        for path in (PROBE, "/admin/login", "/healthz"):
            r = await client.get(path, headers=headers)
            assert r.status == 400, (path, await r.text())
            assert r.headers[REQUEST_ID_HEADER]
        add_user(lontar, "petugas", "staff")
        r = await client.post("/admin/login", headers=headers, data={"username": "petugas"})
        assert r.status == 400
        assert _audit_ips(lontar, "login_failed") == []


# -- an untrusted peer ----------------------------------------------------------------------


@pytest.mark.parametrize("trusted", ["", "10.0.0.0/8, ::1"])
async def test_untrusted_peer_cannot_choose_its_address(tmp_path: Path, trusted: str) -> None:
    """A client talking to Lontar directly: its forwarded headers are ignored, even junk,
    and sending a new X-Forwarded-For each time does not get it past the login limit."""
    async with served(tmp_path, trusted) as (lontar, client):
        for headers in ({"X-Forwarded-For": CLIENT_A, "X-Forwarded-Proto": "https"},
                        {"X-Forwarded-For": "bogus", "X-Forwarded-Proto": "javascript"}):
            assert await _probe(client, headers) == {
                "remote": "127.0.0.1", "scheme": "http", "secure": False}
        add_user(lontar, "petugas", "staff")
        attempts = lontar.settings.login_attempts
        for i in range(attempts):
            assert await _login(client, f"192.0.2.{i}", f"tebakan{i}", "salah-salah") == 401
        assert await _login(client, CLIENT_B, "petugas") == 429
        assert set(_audit_ips(lontar, "login_failed")) == {"127.0.0.1"}
        assert _audit_ips(lontar, "login_blocked") == ["127.0.0.1"]
