"""Security: every hostile request is refused cleanly (a clean status, nothing stored, no 500).

One test per item of issue 8. Items already proven elsewhere are listed here with the test
that proves them, and this module adds only what those tests do not reach:

- forged Telegram webhook secret: `test_forged_telegram_secret_is_refused` (also
  tests/bot/test_telegram.py::test_webhook_forged_secret_is_403_and_stores_nothing);
- forged WhatsApp signature: `test_forged_whatsapp_signature_is_refused` (also
  tests/bot/test_whatsapp.py::test_signature_missing_or_wrong);
- replayed webhooks are handled once: tests/bot/test_telegram.py::
  test_webhook_delivery_twice_is_handled_once (same update_id), tests/bot/test_whatsapp.py::
  test_same_message_twice_is_handled_once (same wamid), tests/bot/test_web.py::
  test_retried_post_is_processed_once (same web message id) — not repeated here;
- dashboard pages without login: `test_every_admin_route_needs_a_login` (walks the router);
- CSRF: `test_every_dashboard_post_needs_its_csrf_token`;
- IDOR: `test_a_citizen_cannot_reach_another_chats_ticket`,
  `test_dashboard_roles_and_attachments_stay_in_their_lane`;
- API tokens beyond their scope: `test_api_tokens_beyond_their_scope` (also
  tests/bot/test_api.py::test_a_read_token_reads_but_cannot_write and
  ::test_missing_unknown_and_revoked_tokens_get_401);
- SQL injection and script payloads: `test_injection_payloads_are_data_and_escaped`,
  `test_nul_and_odd_characters_are_clean`;
- path traversal in attachment names: `test_path_traversal_in_attachment_names`;
- oversized bodies: `test_oversized_bodies_get_413` (with and without Content-Length);
- production refuses a default or short secret: `test_production_refuses_weak_secrets`.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update

from bot.app import Lontar, build, start_channels, stop_channels, web_app
from bot.attachments import attachment_path
from bot.config import ConfigError, load_settings
from bot.models import (
    alert_t,
    app_update_t,
    application_t,
    broadcast_t,
    complaint_t,
    contact_t,
    inbound_t,
    notice_t,
    outbox_t,
    session_t,
    update_t,
)
from bot.services import api_tokens
from tests.bot import test_telegram as tg
from tests.bot import test_whatsapp as wa
from tests.bot.dashboard_helpers import add_user, file_complaint, login
from tests.fakes.telegram_api import FakeTelegram
from tests.fakes.whatsapp_api import FakeWhatsApp, meta_json, sign
from tests.procs import ROOT, env_for, lontar_cmd

EVIL = [
    "'; DROP TABLE complaint; --",
    "\" OR 1=1 --",
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(2)">',
    "Robert'); DELETE FROM contact WHERE ('1'='1",
]
EVIL_TEXT = " | ".join(EVIL)
SESSION_A = "citizenA" + "a" * 24
SESSION_B = "citizenB" + "b" * 24
TABLES = (complaint_t, contact_t, inbound_t, outbox_t, update_t, application_t, app_update_t,
          broadcast_t, notice_t, alert_t)


def _count(lontar: Lontar, table: Any) -> int:
    with lontar.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _counts(lontar: Lontar) -> dict[str, int]:
    return {t.name: _count(lontar, t) for t in TABLES}


def _ticket(lontar: Lontar, n: int = 0) -> Any:
    with lontar.db.engine.connect() as conn:
        return conn.execute(select(complaint_t).order_by(complaint_t.c.id)).all()[n]


def _api_token(lontar: Lontar, name: str, scope: str) -> str:
    with lontar.db.engine.begin() as conn:
        return api_tokens.create(conn, name, scope)


async def _chat(client: TestClient, session: str, n: int, **body: Any) -> tuple[int, Any]:
    r = await client.post("/api/chat", json={"session": session, "message_id": f"msg-{n:04d}",
                                             **body})
    return r.status, await r.json()


def _no_raw_markup(body: str) -> None:
    assert "<script>" not in body and "<img src=x" not in body


# -- platform webhooks ---------------------------------------------------------------------


@pytest.fixture
async def telegram(tmp_path: Path) -> AsyncIterator[tuple[Lontar, TestClient]]:
    """Telegram in webhook mode (test_telegram's settings and secret) on a fake Bot API."""
    async with FakeTelegram() as fake:
        app = build(tg._settings(tmp_path, fake,
                                 telegram_webhook_url="https://lontar.example/webhooks/telegram",
                                 telegram_webhook_secret=tg.SECRET))
        await start_channels(app)
        async with TestClient(TestServer(web_app(app))) as client:
            yield app, client
        await stop_channels(app)
        app.close()


@pytest.fixture
async def whatsapp(tmp_path: Path) -> AsyncIterator[wa.WA]:
    """WhatsApp (test_whatsapp's settings, app secret and `WA` helper) on a fake Graph API."""
    async with FakeWhatsApp(token=wa.TOKEN, phone_number_id=wa.PHONE_ID,
                            app_secret=wa.SECRET) as fake:
        app = build(wa._settings(tmp_path, fake))
        await start_channels(app)
        async with TestClient(TestServer(web_app(app))) as client:
            yield wa.WA(app, client, fake)
        await stop_channels(app)
        app.close()


def _telegram_update(update_id: int = 1) -> dict[str, Any]:
    return {"update_id": update_id, "message": {
        "message_id": update_id, "date": 1_772_413_200, "text": "halo",
        "chat": {"id": tg.CHAT, "type": "private", "first_name": "Maria"},
        "from": {"id": tg.CHAT, "is_bot": False, "first_name": "Maria"}}}


async def test_forged_telegram_secret_is_refused(
        telegram: tuple[Lontar, TestClient]) -> None:
    app, client = telegram
    forged = ["", "wrong", tg.SECRET.upper(), tg.SECRET[:-1], tg.SECRET + "x", "x" * 4000,
              tg.SECRET.replace("s", "\u0455")]  # a Cyrillic look-alike: not ASCII
    for n, secret in enumerate(forged):
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        r = await client.post("/webhooks/telegram", json=_telegram_update(n + 1),
                              headers=headers)
        assert r.status == 403, secret
    r = await client.post("/webhooks/telegram", data=b"{nope",
                          headers={"Content-Type": "application/json"})
    assert r.status == 403  # not even parsed without the secret
    assert _count(app, inbound_t) == 0 and _count(app, contact_t) == 0


async def test_forged_whatsapp_signature_is_refused(whatsapp: wa.WA) -> None:
    payload = whatsapp.fake.text_message(wa.USER, "halo")
    raw = meta_json(payload)
    other = meta_json(whatsapp.fake.text_message(wa.USER, "lain"))
    good = sign(raw, wa.SECRET)
    forged = {
        "": 401,  # no header
        "sha256=" + "0" * 64: 403,
        sign(raw, "another-app-secret"): 403,
        sign(other, wa.SECRET): 403,  # a real signature, of another body
        good.upper(): 403,
        good.removeprefix("sha256="): 403,
        "sha1=" + good.removeprefix("sha256=")[:40]: 403,
        good + "00": 403,
        "sha256=\u00e9" + good[8:]: 403,  # not ASCII
    }
    for signature, status in forged.items():
        assert await whatsapp.post(raw, signature=signature) == status, signature
    assert whatsapp.count(wa.InboundMessage) == 0
    assert whatsapp.count(wa.Contact) == 0


# -- the dashboard ------------------------------------------------------------------------


def _admin_routes(app: Any) -> list[tuple[str, str]]:
    """(method, a concrete path) for every /admin route but the login page and static files."""
    samples = {"id": "1", "n": "0", "action": "answer", "reg_no": "KK-2026-0001"}
    found = []
    for route in app.router.routes():
        info = route.resource.get_info() if route.resource is not None else {}
        if "directory" in info or route.method == "HEAD":
            continue
        path = info.get("path") or info.get("formatter", "")
        if not path.startswith("/admin") or path == "/admin/login":
            continue
        found.append((route.method, re.sub(r"\{(\w+)\}", lambda m: samples[m.group(1)], path)))
    return found


async def _seed_everything(lontar: Lontar, client: TestClient) -> None:
    """A ticket, an application, a notice and a broadcast, so a leaking page has data."""
    add_user(lontar, "root", "admin")
    await file_complaint(lontar, "seed-citizen-0001", "Rahasia cerita warga", name="Yohana Nope")
    writer = _api_token(lontar, "seed", "write")
    r = await client.post("/api/v1/applications", headers={"Authorization": f"Bearer {writer}"},
                          json={"applications": [{
                              "nomor_registrasi": "KK-2026-0001", "layanan": "kk-baru",
                              "kantor": "dinas", "status": "diterima",
                              "tanggal_lahir": "1990-03-12"}]})
    assert r.status == 200, await r.text()
    csrf = await login(client, "root")
    r = await client.post("/admin/broadcasts", data={
        "csrf": csrf, "title": "Siaran rahasia", "text_id": "Isi siaran", "do": "save"},
        allow_redirects=False)
    assert r.status in (200, 303), await r.text()
    await client.post("/admin/notices", data={  # a notice too, if the form takes it
        "csrf": csrf, "office": "dinas", "service": "", "reason": "listrik",
        "starts": "2026-03-02 08:00", "ends": "2026-03-02 12:00", "note": "Listrik padam"},
        allow_redirects=False)
    await client.post("/admin/logout", data={"csrf": csrf})
    client.session.cookie_jar.clear()


async def test_every_admin_route_needs_a_login(lontar: Lontar, client: TestClient) -> None:
    await _seed_everything(lontar, client)
    before = _counts(lontar)
    routes = _admin_routes(client.server.app)
    assert len(routes) >= 25 and ("GET", "/admin/tickets/1/files/0") in routes
    for cookie in (None, "x" * 40):  # no session, and a made-up one
        client.session.cookie_jar.clear()
        if cookie:
            client.session.cookie_jar.update_cookies({"lontar_admin": cookie})
        for method, path in routes:
            r = await client.request(method, path, data={"text": "x", "title": "x"},
                                     allow_redirects=False)
            body = await r.text()
            assert r.status in (302, 303, 401, 403), (method, path, r.status)
            if r.status in (302, 303):
                assert r.headers["Location"].startswith(("/admin/login", "/admin/tickets"))
            for secret in ("Rahasia", "Yohana", "KK-2026-0001", "Siaran rahasia"):
                assert secret not in body, (method, path)
    assert _counts(lontar) == before


async def test_every_dashboard_post_needs_its_csrf_token(lontar: Lontar,
                                                         client: TestClient) -> None:
    await _seed_everything(lontar, client)
    other = TestClient(client.server)  # a second browser with its own valid session
    await other.start_server()
    try:
        add_user(lontar, "budi", "admin")
        foreign = await login(other, "budi")
        csrf = await login(client, "root")
        before = _counts(lontar)
        posts = [p for m, p in _admin_routes(client.server.app) if m == "POST"]
        assert "/admin/logout" in posts and "/admin/broadcasts/1/approve" not in posts
        posts += ["/admin/broadcasts/1/approve", "/admin/tickets/1/state",
                  "/admin/notices/1/end", "/admin/applications/KK-2026-0001/status"]
        for path in posts:
            for token in (None, "", "forged-" + csrf[7:], foreign, csrf + "x"):
                data = {"text": "palsu", "title": "palsu", "state": "selesai",
                        "status": "siap-diambil", "do": "save", "nik": "5371011203900001"}
                if token is not None:
                    data["csrf"] = token
                r = await client.post(path, data=data, allow_redirects=False)
                assert r.status == 403, (path, token, r.status)
        assert _counts(lontar) == before
        with lontar.db.engine.connect() as conn:
            assert conn.execute(select(func.count()).select_from(session_t)).scalar_one() == 2
        assert (await client.get("/admin/tickets", allow_redirects=False)).status == 200
        assert _ticket(lontar).state == "baru"
    finally:
        await other.close()


# -- who may see what (IDOR) --------------------------------------------------------------


async def test_a_citizen_cannot_reach_another_chats_ticket(lontar: Lontar,
                                                           client: TestClient) -> None:
    await file_complaint(lontar, SESSION_A, "Cerita pribadi warga A")
    mine = _ticket(lontar)
    number = mine.number
    replies = []
    for n, body in enumerate(({"text": f"cek pengaduan {number}"}, {"choice": f"c:add:{number}"},
                 {"text": "tambahan dari orang lain"}, {"choice": f"go:rate:{number}:1"},
                 {"command": "tiket"}), 1):
        status, data = await _chat(client, SESSION_B, n, **body)
        assert status == 200, data
        replies += [m["text"] for m in data["messages"]]
    with lontar.db.engine.begin() as conn:  # closed: a rating would now be accepted from A
        conn.execute(update(complaint_t).values(state="selesai"))
    status, data = await _chat(client, SESSION_B, 99, choice=f"go:rate:{number}:1")
    assert status == 200
    replies += [m["text"] for m in data["messages"]]
    assert not any("Cerita pribadi" in text for text in replies)
    with lontar.db.engine.connect() as conn:
        assert conn.execute(select(update_t).where(update_t.c.author == "citizen")).all() == []
        row = conn.execute(select(complaint_t)).one()
    assert row.rating is None and row.text == mine.text and row.photos == mine.photos
    r = await client.get("/api/chat", params={"session": SESSION_B, "after": 0})
    assert not any("Cerita pribadi" in m["text"] for m in (await r.json())["messages"])


async def test_dashboard_roles_and_attachments_stay_in_their_lane(lontar: Lontar,
                                                                  client: TestClient) -> None:
    add_user(lontar, "vina", "viewer")
    staff_a = add_user(lontar, "ana", "staff")
    add_user(lontar, "budi", "staff")
    await file_complaint(lontar, "lane-citizen-0001", "Loket satu", "1", name="Nama Terang")
    await file_complaint(lontar, "lane-citizen-0002", "Loket dua", "2", name="Nama Rahasia")
    first, second = _ticket(lontar, 0), _ticket(lontar, 1)
    folder = lontar.settings.data_dir / "attachments" / "web" / "lane"
    folder.mkdir(parents=True)
    (folder / "dua.png").write_bytes(b"\x89PNG\r\n\x1a\n bukti tiket dua")
    with lontar.db.engine.begin() as conn:
        conn.execute(complaint_t.update().where(complaint_t.c.id == second.id)
                     .values(photos=["attachments/web/lane/dua.png"]))
        conn.execute(alert_t.insert().values(
            key=f"due_soon:{first.id}:test", complaint_id=first.id, staff_id=staff_a,
            kind="due_soon",
            created_at=first.created_at))
    for who in ("vina", "budi"):
        client.session.cookie_jar.clear()
        await login(client, who)
        # ticket 1 has no photo: its file route never serves ticket 2's
        for n in range(0, 3):
            r = await client.get(f"/admin/tickets/{first.id}/files/{n}")
            assert r.status == 404 and "bukti" not in await r.text()
        # the confidential identity: admins only
        r = await client.get(f"/admin/tickets/{second.id}/identity")
        assert r.status == 403 and "Nama Rahasia" not in await r.text()
        assert "Nama Rahasia" not in await (await client.get(f"/admin/tickets/{second.id}")).text()
        export = await client.get("/admin/export/tickets.csv", params={"identitas": "1"})
        assert "Nama Rahasia" not in await export.text() and "Nama Terang" not in await (
            export.text())
        assert (await client.get("/admin/audit")).status == 403
        # another staff member's alert is not on this page
        assert first.number not in await (await client.get("/admin/alerts")).text()
    page = await (await client.get(f"/admin/tickets/{first.id}")).text()
    assert "Nama Terang" in page  # staff see a named citizen, viewers never (below)
    client.session.cookie_jar.clear()
    await login(client, "vina")
    assert "Nama Terang" not in await (await client.get(f"/admin/tickets/{first.id}")).text()


async def test_api_tokens_beyond_their_scope(lontar: Lontar, client: TestClient) -> None:
    reader = _api_token(lontar, "reader", "read")
    revoked = _api_token(lontar, "old-writer", "write")
    with lontar.db.engine.begin() as conn:
        api_tokens.revoke(conn, "old-writer")
    item = {"nomor_registrasi": "KK-2026-0009", "layanan": "kk-baru", "kantor": "dinas",
            "status": "diterima", "tanggal_lahir": "1990-03-12"}
    writes = [("POST", "/api/v1/applications", {"applications": [item]}),
              ("PATCH", "/api/v1/applications/KK-2026-0009", {"status": "diproses"})]
    for method, path, body in writes:
        r = await client.request(method, path, json=body,
                                 headers={"Authorization": f"Bearer {reader}"})
        assert r.status == 403 and (await r.json())["error"] == "forbidden"
        for auth in (f"Bearer {revoked}", f"bearer {revoked} ", f"Bearer {reader}x",
                     f"Token {reader}", reader):
            r = await client.request(method, path, json=body, headers={"Authorization": auth})
            assert r.status == 401, (method, auth)
        r = await client.request(method, path + f"?access_token={reader}", json=body)
        assert r.status == 401  # a token in the URL is not a token
    r = await client.get("/api/v1/applications", headers={"Authorization": f"Bearer {revoked}"})
    assert r.status == 401
    assert _count(lontar, application_t) == 0 and _count(lontar, app_update_t) == 0


# -- hostile text --------------------------------------------------------------------------


async def test_injection_payloads_are_data_and_escaped(lontar: Lontar,
                                                       client: TestClient) -> None:
    add_user(lontar, "root", "admin")
    for n, evil in enumerate(EVIL):  # web chat text: stored verbatim, answered normally
        status, data = await _chat(client, SESSION_B, n + 1, text=evil)
        assert status == 200 and data["messages"], evil
    with lontar.db.engine.connect() as conn:
        texts = [r.payload.get("text") for r in conn.execute(select(inbound_t))]
    assert all(evil in texts for evil in EVIL)
    await file_complaint(lontar, SESSION_A, f"Antrean {EVIL_TEXT}", name=EVIL[2])
    ticket = _ticket(lontar)
    assert EVIL_TEXT in ticket.text
    # the staff API: hostile reasons are stored verbatim; hostile numbers are just unknown
    writer = _api_token(lontar, "writer", "write")
    auth = {"Authorization": f"Bearer {writer}"}
    r = await client.post("/api/v1/applications", headers=auth, json={"applications": [{
        "nomor_registrasi": "KK-2026-0001", "layanan": "kk-baru", "kantor": "dinas",
        "status": "perlu-perbaikan", "alasan": EVIL[2], "tanggal_lahir": "1990-03-12"}]})
    assert r.status == 200, await r.text()
    r = await client.patch("/api/v1/applications/KK-2026-0001", headers=auth,
                           json={"status": "diproses", "alasan": EVIL[0]})
    assert r.status == 200, await r.text()
    for evil in EVIL:
        r = await client.get("/api/v1/applications/" + evil.replace("/", "%2F"), headers=auth)
        assert r.status in (404, 405), evil
        r = await client.get("/api/v1/applications", headers=auth,
                             params={"status": evil, "kantor": evil})
        assert r.status == 422, evil
        r = await client.post("/api/v1/applications", headers=auth, json={"applications": [{
            "nomor_registrasi": evil, "layanan": evil, "kantor": "dinas",
            "status": "diterima", "tanggal_lahir": "1990-03-12"}]})
        assert r.status == 422, evil
    with lontar.db.engine.connect() as conn:
        assert conn.execute(select(application_t.c.reason)).scalar_one() == EVIL[0]
    # the dashboard: a broadcast title, a note, search and filters
    csrf = await login(client, "root")
    r = await client.post("/admin/broadcasts", data={
        "csrf": csrf, "title": EVIL_TEXT[:120], "text_id": EVIL_TEXT, "do": "save"},
        allow_redirects=False)
    assert r.status in (200, 303), await r.text()
    r = await client.post(f"/admin/tickets/{ticket.id}/note",
                          data={"csrf": csrf, "text": EVIL_TEXT}, allow_redirects=False)
    assert r.status == 303
    with lontar.db.engine.connect() as conn:
        assert conn.execute(select(broadcast_t.c.title)).scalar_one() == EVIL_TEXT[:120]
        assert EVIL_TEXT in [u.text for u in conn.execute(select(update_t))]
    pages = ["/admin/tickets", f"/admin/tickets/{ticket.id}",
             f"/admin/tickets/{ticket.id}/identity", "/admin/broadcasts", "/admin/broadcasts/1",
             "/admin/audit",
             "/admin/applications", "/admin/applications/KK-2026-0001", "/admin/reports",
             "/admin/notices", "/admin/alerts"]
    for evil in EVIL:
        for name in ("q", "state", "kind", "category", "dimension", "office", "service",
                     "assignee", "start", "end", "sort", "page", "status"):
            pages.append("/admin/tickets?" + re.sub(r"\s", "+", f"{name}={evil}"))
        pages += [f"/admin/applications?q={evil}", f"/admin/applications?status={evil}",
                  f"/admin/reports?start={evil}", f"/admin/audit?page={evil}"]
    for path in pages:
        r = await client.get(path, allow_redirects=False)
        body = await r.text()
        assert r.status in (200, 400, 404), (path, r.status)
        _no_raw_markup(body)
        assert "script-src" not in r.headers.get("Content-Security-Policy", "script-src")
    r = await client.get("/admin/tickets", params={"q": "Antrean"})
    assert "Tiket (1)" in await r.text()
    r = await client.get("/admin/tickets", params={"q": "' OR '1'='1"})
    assert "Tiket (0)" in await r.text()
    body = await (await client.get(f"/admin/tickets/{ticket.id}")).text()
    assert "&lt;script&gt;" in body
    # every table is still there and whole
    counts = _counts(lontar)
    assert counts["complaint"] == 1 and counts["application"] == 1 and counts["broadcast"] == 1
    assert counts["contact"] == 2


async def test_nul_and_odd_characters_are_clean(lontar: Lontar, client: TestClient) -> None:
    """A NUL byte (PostgreSQL refuses it in text and JSON) and lone surrogates anywhere a
    citizen or a client can type are a clean answer, never a 500."""
    odd = ["a\x00b", "\x00", "\ud800", "\u202egnp.exe", "\ufeff"]
    for n, text in enumerate(odd):
        raw = json.dumps({"session": SESSION_B, "message_id": f"odd-{n:04d}", "text": text})
        r = await client.post("/api/chat", data=raw.encode(),
                              headers={"Content-Type": "application/json"})
        expected = 400 if text == "\ud800" else 200  # not Unicode: refused by the model
        assert r.status == expected, (text, r.status, await r.text())
    await file_complaint(lontar, SESSION_A, "Antrean\x00 lama \ud800 sekali", name="Nama\x00")
    ticket = _ticket(lontar)
    assert "\x00" not in ticket.text and "Antrean" in ticket.text and "sekali" in ticket.text
    writer = _api_token(lontar, "writer", "write")
    auth = {"Authorization": f"Bearer {writer}", "Content-Type": "application/json"}
    r = await client.post("/api/v1/applications", headers=auth, data=(
        b'{"applications": [{"nomor_registrasi": "KK-2026-0001", "layanan": "kk-baru", '
        b'"kantor": "dinas", "status": "diterima", "alasan": "a\\u0000b", '
        b'"tanggal_lahir": "1990-03-12"}]}'))
    assert r.status == 400 and (await r.json())["error"] == "bad_json"
    r = await client.patch("/api/v1/applications/KK-2026-0001", headers=auth,
                           data=b'{"status": "diproses", "alasan": "\\ud800"}')
    assert r.status == 400 and (await r.json())["error"] == "bad_json"
    r = await client.post("/api/v1/applications", headers=auth,
                          data=b'{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    assert r.status == 400
    add_user(lontar, "root", "admin")
    form = await (await client.get("/admin/login")).text()
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    r = await client.post("/admin/login", data={"csrf": token.group(1), "username": "ro\x00ot",
                                                "password": "x\x00"}, allow_redirects=False)
    assert r.status == 401
    csrf = await login(client, "root")
    for path in ("/admin/tickets?q=a%00b", "/admin/applications?q=%00",
                 "/admin/tickets?state=%00"):
        assert (await client.get(path)).status in (200, 400), path
    r = await client.post("/admin/broadcasts", data={
        "csrf": csrf, "title": "a\x00b", "text_id": "isi\x00", "do": "save"},
        allow_redirects=False)
    assert r.status in (200, 303, 400), await r.text()


# -- files ---------------------------------------------------------------------------------


async def test_path_traversal_in_attachment_names(lontar: Lontar, client: TestClient,
                                                  whatsapp: wa.WA, tmp_path: Path) -> None:
    data_dir = lontar.settings.data_dir
    (data_dir / "secret.txt").write_text("rahasia server")
    root = (data_dir / "attachments").resolve()
    for chat, file_id in (("../../etc", "../../etc/passwd"), ("..", ".."), ("/", "/etc/passwd"),
                          ("a/../../b", "..%2F..%2Fx")):
        path = attachment_path(data_dir, "telegram", chat, file_id, "application/pdf")
        assert path.resolve().is_relative_to(root), (chat, file_id)
    # a WhatsApp document named ../../etc/passwd is kept under a name Lontar made
    pdf = whatsapp.fake.add_media("application/pdf", 10_000, filename="../../etc/passwd")
    payload = whatsapp.fake.document_message(wa.USER, pdf, filename="../../etc/passwd")
    assert await whatsapp.post(payload) == 200
    wa_dir = whatsapp.app.settings.data_dir
    folder = wa_dir / "attachments" / "whatsapp" / wa.USER
    files = await wa.until(lambda: list(folder.glob("*.pdf")) if folder.exists() else [])
    assert [f.name for f in files] == [f"{pdf}.pdf"]
    assert not any("passwd" in str(p) for p in wa_dir.rglob("*"))
    # the dashboard's file route: stored names that climb out, and climbing URLs
    add_user(lontar, "root", "admin")
    await file_complaint(lontar, "path-citizen-0001", "Bukti terlampir")
    ticket = _ticket(lontar)
    with lontar.db.engine.begin() as conn:
        conn.execute(complaint_t.update().values(photos=[
            "../secret.txt", "attachments/../secret.txt", "/etc/passwd",
            "attachments/../../../../etc/passwd", "attachments/%2e%2e/secret.txt"]))
    csrf = await login(client, "root")
    assert csrf
    for n in range(5):
        r = await client.get(f"/admin/tickets/{ticket.id}/files/{n}")
        body = await r.text()
        assert r.status == 404 and "rahasia server" not in body and "root:" not in body
    for path in (f"/admin/tickets/{ticket.id}/files/..%2F..%2Fetc%2Fpasswd",
                 f"/admin/tickets/{ticket.id}/files/../../../secret.txt",
                 "/admin/static/..%2F..%2F..%2Fsecret.txt", "/admin/static/../../secret.txt",
                 "/static/..%2F..%2Fsecret.txt", "/admin/broadcasts/1/image"):
        r = await client.get(path)
        body = await r.text()
        assert r.status in (403, 404), (path, r.status)
        assert "rahasia server" not in body and "root:" not in body
    # an uploaded broadcast picture: the name it came with is ignored
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    form = FormData()
    for key, value in {"csrf": csrf, "title": "Gambar", "text_id": "Isi", "do": "save"}.items():
        form.add_field(key, value)
    form.add_field("image", png, filename="../../../secret.txt", content_type="image/png")
    r = await client.post("/admin/broadcasts", data=form, allow_redirects=False)
    assert r.status in (200, 303), await r.text()
    assert (data_dir / "secret.txt").read_text() == "rahasia server"
    stored = [p.name for p in (data_dir / "broadcasts").iterdir()]
    assert len(stored) == 1 and re.fullmatch(r"[0-9a-f]{32}\.png", stored[0])


# -- sizes ---------------------------------------------------------------------------------


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    for i in range(0, len(data), 65_536):
        yield data[i:i + 65_536]


async def test_oversized_bodies_get_413(lontar: Lontar, client: TestClient,
                                        telegram: tuple[Lontar, TestClient],
                                        whatsapp: wa.WA) -> None:
    """With a Content-Length and streamed without one (chunked), each route's own limit."""
    json_type = {"Content-Type": "application/json"}
    web_limit = lontar.settings.web_max_body
    pad = b" " * (web_limit + 10)
    chat = b'{"session": "%s", "message_id": "big-0001", "text": "halo"}' % SESSION_B.encode()
    for body in (chat + pad, pad + chat):
        r = await client.post("/api/chat", data=body, headers=json_type)
        assert r.status == 413, await r.text()
        r = await client.post("/api/chat", data=_chunks(body), headers=json_type)
        assert r.status == 413, await r.text()
        assert "message" in await r.json()
    writer = _api_token(lontar, "writer", "write")
    big_api = b'{"applications": []}' + b" " * 1_100_000
    for data in (big_api, _chunks(big_api)):
        r = await client.post("/api/v1/applications", data=data,
                              headers=json_type | {"Authorization": f"Bearer {writer}"})
        assert r.status == 413 and (await r.json())["error"] == "too_large"
    app, tg_client = telegram
    big_update = meta_json(_telegram_update()) + b" " * (
        max(app.settings.whatsapp_max_body, app.settings.web_max_body) + 10)
    for data in (big_update, _chunks(big_update)):
        r = await tg_client.post("/webhooks/telegram", data=data, headers=json_type | {
            "X-Telegram-Bot-Api-Secret-Token": tg.SECRET})
        assert r.status == 413
    big_wa = meta_json(whatsapp.fake.text_message(wa.USER, "halo")) + b" " * (
        whatsapp.app.settings.whatsapp_max_body + 10)
    for data in (big_wa, _chunks(big_wa)):
        r = await whatsapp.client.post("/webhooks/whatsapp", data=data, headers=json_type | {
            "X-Hub-Signature-256": sign(big_wa, wa.SECRET)})
        assert r.status == 413
    assert _count(lontar, inbound_t) == 0 and _count(app, inbound_t) == 0
    assert whatsapp.count(wa.InboundMessage) == 0


# -- start-up ------------------------------------------------------------------------------


@pytest.mark.parametrize("secret", ["", "short", "x" * 31])
def test_production_refuses_weak_secrets(secret: str, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LONTAR_ENV", "production")
    monkeypatch.setenv("LONTAR_SECRET_KEY", secret)
    with pytest.raises(ConfigError, match="LONTAR_SECRET_KEY"):
        load_settings(data_dir=tmp_path)
    proc = subprocess.run(lontar_cmd(), cwd=ROOT, capture_output=True, text=True, timeout=60,
                          env=env_for(tmp_path, LONTAR_ENV="production",
                                      LONTAR_SECRET_KEY=secret, LONTAR_PORT="1"))
    assert proc.returncode != 0
    assert "LONTAR_SECRET_KEY" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "secret.key").exists()  # no generated secret in production
