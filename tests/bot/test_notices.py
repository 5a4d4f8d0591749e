"""Service notices: a disruption staff post reaches a citizen who asks about that service
(or any service, for a notice without one) before the answer, only while it lasts; staff add
and end notices in the dashboard, with role, CSRF and validation checks and an audit row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from aiohttp.test_utils import TestClient
from sqlalchemy import func, select

from bot.app import Lontar
from bot.inbox import Inbound
from bot.models import audit_t, notice_t, outbox_t
from bot.services import notices
from tests.bot.dashboard_helpers import add_user, login

TEXT = "Server pusat gangguan, perekaman belum bisa dilayani"
_authors = count(1)


def _notice(lontar: Lontar, *, service: str | None = "kk-baru", office: str | None = "dinas",
            start: timedelta = timedelta(hours=-1), end: timedelta = timedelta(hours=2),
            text: str = TEXT) -> int:
    staff_id = add_user(lontar, f"petugas{next(_authors)}", "staff")
    now = datetime.now(UTC)
    with lontar.db.engine.begin() as conn:
        return notices.add(conn, text_id=text, office=office, service=service,
                           starts_at=now + start, ends_at=now + end, created_by=staff_id,
                           now=now)


async def _ask(lontar: Lontar, who: str, text: str) -> list[str]:
    """One web-chat turn; the texts queued for it, in order."""
    with lontar.db.engine.connect() as conn:
        before = conn.execute(select(func.max(outbox_t.c.id))).scalar() or 0
    await lontar.inbox.handle(Inbound("web", who, f"{who}-{before}", "text", {"text": text}))
    with lontar.db.engine.connect() as conn:
        return [r["text"] for r in conn.execute(select(outbox_t.c.payload).where(
            outbox_t.c.id > before).order_by(outbox_t.c.id)).scalars()]


async def test_notice_is_shown_before_the_requirements(lontar: Lontar) -> None:
    _notice(lontar)
    texts = await _ask(lontar, "warga-1", "syarat kk baru")
    assert len(texts) >= 2
    assert "Pemberitahuan gangguan layanan" in texts[0]
    assert TEXT in texts[0] and "Dinas Dukcapil" in texts[0]
    assert TEXT not in "\n".join(texts[1:])
    # the expected end in office time (WITA, UTC+8)
    end = (datetime.now(UTC) + timedelta(hours=2)).astimezone(lontar.inbox.engine.tz)
    assert f"{end:%H.%M} WITA" in texts[0]
    without = await _ask(lontar, "warga-2", "menu")
    assert not any(TEXT in t for t in without)


async def test_the_reply_without_a_notice_is_unchanged(lontar: Lontar) -> None:
    plain = await _ask(lontar, "warga-a", "syarat kk baru")
    _notice(lontar)
    told = await _ask(lontar, "warga-b", "syarat kk baru")
    assert told[1:] == plain


async def test_not_shown_when_over_not_started_or_for_another_service(lontar: Lontar) -> None:
    _notice(lontar, start=timedelta(hours=-3), end=timedelta(hours=-1))  # over
    _notice(lontar, start=timedelta(hours=1), end=timedelta(hours=3))  # not yet
    _notice(lontar, service="ktp-baru")  # another service
    texts = await _ask(lontar, "warga-3", "syarat kk baru")
    assert not any("gangguan" in t.lower() for t in texts)


async def test_notice_without_service_applies_to_every_service(lontar: Lontar) -> None:
    _notice(lontar, service=None, office=None, text="Listrik padam di semua kantor")
    texts = await _ask(lontar, "warga-4", "syarat kk baru")
    assert "Listrik padam di semua kantor" in texts[0] and "Semua kantor" in texts[0]


async def test_office_hours_show_every_notice(lontar: Lontar) -> None:
    _notice(lontar, service="ktp-baru", office="kec-alak", text="Alat perekaman rusak")
    texts = await _ask(lontar, "warga-6", "jam layanan")
    assert "Alat perekaman rusak" in texts[0] and "Kec. Alak" in texts[0]


async def test_ended_early_is_not_shown(lontar: Lontar) -> None:
    notice_id = _notice(lontar)
    with lontar.db.engine.begin() as conn:
        assert notices.end(conn, notice_id, datetime.now(UTC))
        assert not notices.end(conn, notice_id, datetime.now(UTC))  # once
    texts = await _ask(lontar, "warga-5", "syarat kk baru")
    assert not any(TEXT in t for t in texts)


def test_active_lists_at_most_three_newest_first(lontar: Lontar) -> None:
    for n in range(5):
        _notice(lontar, start=timedelta(minutes=-60 + n), text=f"gangguan {n}")
    with lontar.db.engine.connect() as conn:
        rows = notices.active(conn, datetime.now(UTC), "kk-baru")
    assert [r.text_id for r in rows] == ["gangguan 4", "gangguan 3", "gangguan 2"]


# --- dashboard ---------------------------------------------------------------------------

def _local(delta: timedelta, lontar: Lontar) -> str:
    return (datetime.now(UTC) + delta).astimezone(lontar.inbox.engine.tz).strftime(
        "%Y-%m-%dT%H:%M")


def _count(lontar: Lontar) -> int:
    with lontar.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(notice_t)).scalar_one())


def _audit(lontar: Lontar) -> list[tuple[str, str | None]]:
    with lontar.db.engine.connect() as conn:
        return [(r.action, r.target) for r in conn.execute(
            select(audit_t).where(audit_t.c.action.like("notice_%")).order_by(audit_t.c.id))]


def _form(lontar: Lontar, csrf: str, **over: Any) -> dict[str, Any]:
    return {"csrf": csrf, "office": "dinas", "service": "kk-baru", "text": TEXT,
            "text_en": "", "mulai": "", "selesai": _local(timedelta(hours=3), lontar)} | over


async def test_staff_adds_and_ends_a_notice(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "sari", "staff", "Sari Petugas")
    csrf = await login(client, "sari")
    page = await client.get("/admin/notices")
    body = await page.text()
    assert page.status == 200 and 'href="/admin/notices">Gangguan</a>' in body
    assert "Semua kantor" in body and "Semua layanan" in body
    r = await client.post("/admin/notices", data=_form(lontar, csrf), allow_redirects=False)
    assert r.status == 303, await r.text()
    with lontar.db.engine.connect() as conn:
        row = conn.execute(select(notice_t)).one()
    assert (row.office, row.service, row.text_id, row.ended_at) == ("dinas", "kk-baru", TEXT,
                                                                    None)
    assert abs((row.starts_at - datetime.now(UTC)).total_seconds()) < 60  # default: now
    assert _audit(lontar) == [("notice_add", str(row.id))]
    body = await (await client.get("/admin/notices")).text()
    assert TEXT in body and "Sari Petugas" in body and "Berlaku" in body
    assert "gangguan layanan" in (await _ask(lontar, "warga-d", "syarat kk baru"))[0].lower()
    r = await client.post(f"/admin/notices/{row.id}/end", data={"csrf": csrf},
                          allow_redirects=False)
    assert r.status == 303
    assert _audit(lontar)[-1] == ("notice_end", str(row.id))
    assert TEXT not in await (await client.get("/admin/notices")).text()
    r = await client.post(f"/admin/notices/{row.id}/end", data={"csrf": csrf})
    assert r.status == 404


async def test_viewer_sees_but_cannot_add_or_end(lontar: Lontar, client: TestClient) -> None:
    notice_id = _notice(lontar)
    add_user(lontar, "vina", "viewer")
    csrf = await login(client, "vina")
    body = await (await client.get("/admin/notices")).text()
    assert TEXT in body and 'action="/admin/notices"' not in body
    r = await client.post("/admin/notices", data=_form(lontar, csrf))
    assert r.status == 403
    r = await client.post(f"/admin/notices/{notice_id}/end", data={"csrf": csrf})
    assert r.status == 403
    assert _count(lontar) == 1 and _audit(lontar) == []
    with lontar.db.engine.connect() as conn:
        assert conn.execute(select(notice_t.c.ended_at)).scalar() is None


async def test_forged_csrf_is_refused(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "sari", "staff")
    await login(client, "sari")
    for token in ("", "forged"):
        r = await client.post("/admin/notices", data=_form(lontar, token))
        assert r.status == 403
    assert _count(lontar) == 0 and _audit(lontar) == []


async def test_bad_dates_and_text_are_refused(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "sari", "staff")
    csrf = await login(client, "sari")
    bad = [
        {"selesai": ""},
        {"selesai": "besok"},
        {"mulai": _local(timedelta(hours=5), lontar)},  # ends before it starts
        {"selesai": _local(timedelta(days=31), lontar)},
        {"selesai": _local(timedelta(hours=-1), lontar), "mulai": _local(timedelta(hours=-2),
                                                                           lontar)},
        {"text": "  "},
        {"text": "x" * 501},
        {"office": "kec-entah"},
        {"service": "paspor"},
    ]
    for over in bad:
        r = await client.post("/admin/notices", data=_form(lontar, csrf, **over))
        assert r.status == 422, over
        assert 'class="error"' in await r.text()
    assert _count(lontar) == 0 and _audit(lontar) == []


async def test_text_is_escaped(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "sari", "staff")
    csrf = await login(client, "sari")
    evil = "<script>alert(1)</script> & gangguan"
    r = await client.post("/admin/notices", data=_form(lontar, csrf, text=evil))
    body = await r.text()
    assert r.status == 200
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; gangguan" in body
    r = await client.post("/admin/notices", data=_form(lontar, csrf, text=evil,
                                                       selesai=""))
    assert r.status == 422 and "<script>alert(1)</script>" not in await r.text()
