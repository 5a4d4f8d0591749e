"""The dashboard over HTTP: login, roles, CSRF, the inbox, ticket actions, answers sent."""

from __future__ import annotations

import re

from aiohttp.test_utils import TestClient
from sqlalchemy import select

from bot.app import Lontar
from bot.models import audit_t, complaint_t, outbox_t, session_t, update_t
from tests.bot.dashboard_helpers import CSRF, add_user, file_complaint, login


def _ticket(lontar: Lontar, n: int = 0) -> dict:
    with lontar.db.engine.connect() as conn:
        rows = conn.execute(select(complaint_t).order_by(complaint_t.c.id)).all()
    return dict(rows[n]._mapping)


def _audit(lontar: Lontar) -> list[tuple[str, str | None]]:
    with lontar.db.engine.connect() as conn:
        return [(r.action, r.target) for r in conn.execute(
            select(audit_t).order_by(audit_t.c.id))]


async def test_pages_need_a_login(client: TestClient) -> None:
    r = await client.get("/admin/tickets?state=baru", allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"].startswith("/admin/login?next=")
    r = await client.post("/admin/tickets/1/answer", data={"text": "x"}, allow_redirects=False)
    assert r.status == 401


async def test_login_sets_a_safe_cookie_and_wrong_password_is_refused(
        lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    form = await client.get("/admin/login")
    token = CSRF.search(await form.text()).group(1)  # type: ignore[union-attr]
    bad = await client.post("/admin/login", data={"csrf": token, "username": "ana",
                                                  "password": "salah-sekali-ya"})
    assert bad.status == 401 and "salah" in await bad.text()
    await login(client, "ana")
    cookie = client.session.cookie_jar.filter_cookies(client.make_url("/admin/"))
    assert "lontar_admin" in cookie
    with lontar.db.engine.connect() as conn:
        stored = conn.execute(select(session_t.c.token_hash)).scalar_one()
    assert stored != cookie["lontar_admin"].value  # only a hash is kept
    actions = [a for a, _ in _audit(lontar)]
    assert actions == ["login_failed", "login"]


async def test_login_without_the_form_token_is_refused(lontar: Lontar,
                                                        client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    r = await client.post("/admin/login", data={"username": "ana",
                                                "password": "kata-sandi-panjang"})
    assert r.status == 403
    assert "lontar_admin" not in client.session.cookie_jar.filter_cookies(
        client.make_url("/admin/"))


async def test_login_is_rate_limited(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    for _ in range(5):
        form = await client.get("/admin/login")
        token = CSRF.search(await form.text()).group(1)  # type: ignore[union-attr]
        r = await client.post("/admin/login", data={"csrf": token, "username": "ana",
                                                    "password": "tebak-tebak-saja"})
        assert r.status == 401
    form = await client.get("/admin/login")
    token = CSRF.search(await form.text()).group(1)  # type: ignore[union-attr]
    r = await client.post("/admin/login", data={"csrf": token, "username": "ana",
                                                "password": "kata-sandi-panjang"})
    assert r.status == 429  # even the right password waits: the limit is per name and address


async def test_staff_answer_reaches_the_citizen_and_history(lontar: Lontar,
                                                             client: TestClient) -> None:
    add_user(lontar, "ana", "staff", "Ana Petugas")
    await file_complaint(lontar, "citizen-one-session", "Antrean lama sekali di loket")
    t = _ticket(lontar)
    csrf = await login(client, "ana")
    page = await client.get("/admin/tickets?q=loket")
    assert t["number"] in await page.text()
    r = await client.post(f"/admin/tickets/{t['id']}/answer",
                          data={"csrf": csrf, "text": "Mohon maaf, loket 3 kini dibuka."},
                          allow_redirects=False)
    assert r.status == 303 and r.headers["Location"].endswith("?ok=answer")
    r = await client.post(f"/admin/tickets/{t['id']}/note",
                          data={"csrf": csrf, "text": "cek CCTV"}, allow_redirects=False)
    with lontar.db.engine.connect() as conn:
        sent = [r.payload["text"] for r in conn.execute(
            select(outbox_t).where(outbox_t.c.priority == 1))]
        history = [(u.author, u.public, u.text) for u in conn.execute(select(update_t))]
    assert sent == [f"Tanggapan petugas untuk laporan {t['number']}:\n"
                    "Mohon maaf, loket 3 kini dibuka."]
    assert history == [("staff", True, "Mohon maaf, loket 3 kini dibuka."),
                       ("staff", False, "cek CCTV")]
    assert _ticket(lontar)["first_answer_at"] is not None
    # the citizen's web chat receives the answer on its next poll
    chat = await client.get("/api/chat", params={"session": "citizen-one-session"})
    texts = [m["text"] for m in (await chat.json())["messages"]]
    assert any("loket 3 kini dibuka" in x for x in texts)
    assert "cek CCTV" not in str(texts)


async def test_closing_asks_for_a_rating_and_starts_follow_up_clock(
        lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    await file_complaint(lontar, "c2", "Data salah ketik di KK saya")
    t = _ticket(lontar)
    csrf = await login(client, "ana")
    for state in ("diverifikasi", "selesai"):
        r = await client.post(f"/admin/tickets/{t['id']}/state",
                              data={"csrf": csrf, "state": state}, allow_redirects=False)
        assert r.status == 303
    after = _ticket(lontar)
    assert after["state"] == "selesai" and after["closed_at"] is not None
    assert after["due_on"] > t["due_on"]  # 5 working days from verification
    with lontar.db.engine.connect() as conn:
        last = conn.execute(select(outbox_t.c.payload).order_by(outbox_t.c.id.desc())).first()
    assert last is not None
    ids = [o["id"] for o in last.payload["options"]]
    assert ids == [f"go:rate:{t['number']}:{n}" for n in range(1, 6)]
    r = await client.post(f"/admin/tickets/{t['id']}/state",
                          data={"csrf": csrf, "state": "tidak-ada"}, allow_redirects=False)
    assert "error=" in r.headers["Location"]


async def test_forged_or_foreign_csrf_is_refused(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    add_user(lontar, "budi", "staff")
    await file_complaint(lontar, "c3", "Printer rusak terus")
    t = _ticket(lontar)
    other = client.__class__(client.server)  # a second browser: budi's session
    await other.start_server()
    try:
        budi_csrf = await login(other, "budi")
        await login(client, "ana")
        for token in ("", "forged", budi_csrf):
            r = await client.post(f"/admin/tickets/{t['id']}/answer",
                                  data={"csrf": token, "text": "palsu"})
            assert r.status == 403
    finally:
        await other.close()
    with lontar.db.engine.connect() as conn:
        assert conn.execute(select(update_t)).first() is None
        assert conn.execute(select(outbox_t).where(outbox_t.c.priority == 1)).first() is None
    assert [a for a, _ in _audit(lontar)].count("csrf_refused") == 3


async def test_viewer_sees_no_identity_and_changes_nothing(lontar: Lontar,
                                                           client: TestClient) -> None:
    add_user(lontar, "vina", "viewer")
    await file_complaint(lontar, "c4", "Petugas kasar sekali", "1", name="Yohana Nope")
    t = _ticket(lontar)
    csrf = await login(client, "vina")
    page = await (await client.get(f"/admin/tickets/{t['id']}")).text()
    assert "Petugas kasar sekali" in page and "Yohana" not in page
    assert "Kirim jawaban" not in page
    for action, data in (("answer", {"text": "x"}), ("state", {"state": "selesai"}),
                         ("assign", {"assignee": "1"}), ("note", {"text": "x"})):
        r = await client.post(f"/admin/tickets/{t['id']}/{action}", data={"csrf": csrf, **data})
        assert r.status == 403
    assert (await client.get(f"/admin/tickets/{t['id']}/identity")).status == 403
    assert (await client.get("/admin/audit")).status == 403
    assert _ticket(lontar)["state"] == "baru"


async def test_confidential_identity_only_for_admins_and_audited(lontar: Lontar,
                                                                 client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    add_user(lontar, "root", "admin")
    await file_complaint(lontar, "c5", "Calo di depan kantor", "2", name="Rahasia Orang")
    t = _ticket(lontar)
    await login(client, "ana")
    page = await (await client.get(f"/admin/tickets/{t['id']}")).text()
    assert "Rahasia Orang" not in page
    assert (await client.get(f"/admin/tickets/{t['id']}/identity")).status == 403
    await client.post("/admin/logout", data={"csrf": CSRF.search(page).group(1)})  # type: ignore[union-attr]
    await login(client, "root")
    page = await (await client.get(f"/admin/tickets/{t['id']}")).text()
    assert "Rahasia Orang" not in page and "Lihat identitas" in page
    page = await (await client.get(f"/admin/tickets/{t['id']}/identity")).text()
    assert "Rahasia Orang" in page
    assert ("view_identity", t["number"]) in _audit(lontar)
    audit_page = await (await client.get("/admin/audit")).text()
    assert "view_identity" in audit_page and "Rahasia Orang" not in audit_page


async def test_anonymous_ticket_shows_nobody_even_to_admins(lontar: Lontar,
                                                            client: TestClient) -> None:
    add_user(lontar, "root", "admin")
    await file_complaint(lontar, "c6", "Toilet kotor", "3", name="Tanpa Nama")
    t = _ticket(lontar)
    await login(client, "root")
    for path in (f"/admin/tickets/{t['id']}", f"/admin/tickets/{t['id']}/identity"):
        assert "Tanpa Nama" not in await (await client.get(path)).text()


async def test_logout_ends_the_session(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    csrf = await login(client, "ana")
    r = await client.post("/admin/logout", data={"csrf": csrf}, allow_redirects=False)
    assert r.status == 303
    with lontar.db.engine.connect() as conn:
        assert conn.execute(select(session_t)).first() is None
    assert (await client.get("/admin/tickets", allow_redirects=False)).status == 303


async def test_idle_session_expires(lontar: Lontar, client: TestClient) -> None:
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import update

    add_user(lontar, "ana", "staff")
    await login(client, "ana")
    with lontar.db.engine.begin() as conn:
        conn.execute(update(session_t).values(
            last_seen_at=datetime.now(UTC) - timedelta(minutes=31)))
    assert (await client.get("/admin/tickets", allow_redirects=False)).status == 303
    with lontar.db.engine.connect() as conn:
        assert conn.execute(select(session_t)).first() is None


async def test_unknown_ticket_file_and_traversal_give_404(lontar: Lontar,
                                                          client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    await file_complaint(lontar, "c7", "Kursi patah")
    t = _ticket(lontar)
    await login(client, "ana")
    assert (await client.get("/admin/tickets/999999")).status == 404
    assert (await client.get(f"/admin/tickets/{t['id']}/files/0")).status == 404
    with lontar.db.engine.begin() as conn:
        conn.execute(complaint_t.update().values(photos=["../secret.key"]))
    r = await client.get(f"/admin/tickets/{t['id']}/files/0")
    assert r.status == 404 and "secret" not in await r.text()


async def test_hostile_text_is_escaped_everywhere(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "root", "admin")
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    await file_complaint(lontar, "c8", f"Antrean {evil}", "1", name=evil)
    t = _ticket(lontar)
    csrf = await login(client, "root")
    await client.post(f"/admin/tickets/{t['id']}/note", data={"csrf": csrf, "text": evil})
    for path in (f"/admin/tickets/{t['id']}", "/admin/tickets", "/admin/tickets?q=%3Cscript",
                 "/admin/audit"):
        r = await client.get(path)
        body = await r.text()
        assert "<script>" not in body and "<img src=x" not in body, path
        assert "script-src" not in r.headers["Content-Security-Policy"]  # no inline scripts
    assert "&lt;script&gt;" in await (await client.get(f"/admin/tickets/{t['id']}")).text()


async def test_inbox_filters_and_pages(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    await file_complaint(lontar, "p1", "Antrean lama")
    await file_complaint(lontar, "p2", "Printer rusak")
    await file_complaint(lontar, "p3", "Petugas kasar")
    await login(client, "ana")
    body = await (await client.get("/admin/tickets?category=sarana")).text()
    assert "Printer rusak" in body and "Antrean lama" not in body
    assert "Tiket (1)" in body
    body = await (await client.get("/admin/tickets?category=bogus&state=%27or1")).text()
    assert "Tiket (3)" in body  # unknown values are ignored, not trusted
    body = await (await client.get("/admin/tickets?overdue=1")).text()
    assert "Tiket (0)" in body
    body = await (await client.get("/admin/tickets?start=2026-99-01")).text()
    assert "tanggal tidak valid" in body
    assert re.search(r"Halaman 1 dari 1", body)


async def test_search_by_number_word_and_wildcards(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    await file_complaint(lontar, "search-citizen-01", "Antrean LAMA di loket")
    await file_complaint(lontar, "search-citizen-02", "Printer rusak")
    number = _ticket(lontar, 1)["number"]
    await login(client, "ana")
    for q, expected in ((number.lower(), 1), ("lama", 1), ("%", 0), ("_", 0), ("rusak", 1),
                        ("", 2)):
        body = await (await client.get("/admin/tickets", params={"q": q})).text()
        assert f"Tiket ({expected})" in body, q


async def test_attachment_served_only_after_login(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    await file_complaint(lontar, "file-citizen-0001", "Loket rusak")
    t = _ticket(lontar)
    folder = lontar.settings.data_dir / "attachments" / "web" / "x"
    folder.mkdir(parents=True)
    (folder / "p1.png").write_bytes(b"\x89PNG\r\n\x1a\n fake image")
    with lontar.db.engine.begin() as conn:
        conn.execute(complaint_t.update().values(photos=["attachments/web/x/p1.png"]))
    r = await client.get(f"/admin/tickets/{t['id']}/files/0", allow_redirects=False)
    assert r.status == 303  # not logged in: to the login page, no bytes
    await login(client, "ana")
    r = await client.get(f"/admin/tickets/{t['id']}/files/0")
    assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    assert (await r.read()).startswith(b"\x89PNG")
    assert ("view_file", t["number"]) in _audit(lontar)
