"""Shared steps for dashboard tests: accounts, logging in, reading the CSRF token."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient

from bot.app import Lontar
from bot.inbox import Inbound
from bot.services.staff import create_user

PASSWORD = "kata-sandi-panjang"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def add_user(lontar: Lontar, username: str, role: str, name: str | None = None) -> int:
    with lontar.db.engine.begin() as conn:
        return create_user(conn, username, PASSWORD, role, name)


async def login(client: TestClient, username: str, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token (read from the page, as a browser would)."""
    form = await client.get("/admin/login")
    token = CSRF.search(await form.text())
    assert token is not None
    r = await client.post("/admin/login", data={"csrf": token.group(1), "username": username,
                                                "password": password}, allow_redirects=False)
    assert r.status == 303, await r.text()
    page = await client.get("/admin/tickets")
    found = CSRF.search(await page.text())
    assert page.status == 200 and found is not None
    return found.group(1)


async def file_complaint(lontar: Lontar, who: str, story: str, identity: str = "1",
                         name: str = "Maria Kana") -> None:
    """File through the real inbox as the web chat would: kind, service, office, story,
    when, identity (1 named, 2 confidential, 3 anonymous), confirm."""
    steps = ["mau komplain", "1", "7", "1", story, "1", identity, "1"]
    for i, text in enumerate(steps):
        await lontar.inbox.handle(Inbound("web", who, f"{who}-f{i}", "text", {"text": text},
                                          display_name=name))
