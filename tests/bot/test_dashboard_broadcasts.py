"""Broadcasts in the dashboard: staff compose a draft (audience counted before saving, an
optional picture checked by its bytes), only an admin approves it, and each action (send,
schedule in office time, pause, resume, cancel, a test to oneself) is one transaction with
its audit row, or nothing with a 422. Previews, live progress and the per-recipient CSV."""

from __future__ import annotations

import csv
import io
import re
import zlib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from aiohttp import FormData, web
from aiohttp.test_utils import TestClient, TestServer
from multidict import MultiDict
from sqlalchemy import func, insert, select, update

from bot.app import Lontar
from bot.dashboard.server import Dashboard
from bot.models import (
    PRIORITY_NOTIFICATION,
    audit_t,
    broadcast_t,
    contact_t,
    outbox_t,
)
from bot.outbox import FAILED, SENT
from bot.quiet import QuietHours
from bot.services import broadcasts, notices
from bot.services.audience import Audience
from bot.services.staff import create_user
from tests.bot.dashboard_helpers import PASSWORD, add_user, login

TEXT = "Perekaman KTP-el keliling di Kelurahan Namosain, Sabtu pukul 08.00."


def _png() -> bytes:
    """A real 1x1 PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", bytes.fromhex("0000000100000001080200000"
                                                              "0")) +
            chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def _contacts(lontar: Lontar, *specs: tuple[str, str, str | None, str]) -> list[int]:
    """(channel, external id, kecamatan, state) with state "in", "out" or "blocked"."""
    now = datetime.now(UTC)
    ids = []
    with lontar.db.engine.begin() as conn:
        for channel, ext, kecamatan, state in specs:
            ids.append(int(conn.execute(insert(contact_t), {
                "channel": channel, "external_id": ext, "language": "id",
                "kecamatan": kecamatan, "opted_in": state != "out", "consent_at": now,
                "opted_out_at": now if state == "out" else None,
                "blocked_at": now if state == "blocked" else None,
                "created_at": now}).inserted_primary_key[0]))  # type: ignore[index]
    return ids


def _draft(lontar: Lontar, audience: Audience | None = None, **over: Any) -> int:
    fields: dict[str, Any] = {"title": "Jemput bola", "text_id": TEXT, "buttons": ["ktp-baru"],
                              "audience": audience or Audience(), "now": datetime.now(UTC)}
    with lontar.db.engine.begin() as conn:
        return broadcasts.create(conn, lontar.content, **fields | over)


def _approve(lontar: Lontar, broadcast_id: int) -> None:
    with lontar.db.engine.begin() as conn:
        broadcasts.approve(conn, broadcast_id, None, datetime.now(UTC))


def _row(lontar: Lontar, broadcast_id: int = 1) -> Any:
    with lontar.db.engine.connect() as conn:
        return conn.execute(select(broadcast_t).where(broadcast_t.c.id == broadcast_id)).one()


def _count(lontar: Lontar, table: Any) -> int:
    with lontar.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _outbox(lontar: Lontar) -> list[Any]:
    with lontar.db.engine.connect() as conn:
        return list(conn.execute(select(outbox_t).order_by(outbox_t.c.id)))


def _audit(lontar: Lontar) -> list[tuple[str, str | None, dict[str, Any]]]:
    with lontar.db.engine.connect() as conn:
        return [(r.action, r.target, r.detail) for r in conn.execute(
            select(audit_t).where(audit_t.c.action.like("broadcast_%")).order_by(audit_t.c.id))]


def _tick(lontar: Lontar) -> None:
    with lontar.db.engine.begin() as conn:
        broadcasts.tick(conn, lontar.content, datetime.now(UTC) + timedelta(seconds=1))


def _form(csrf: str, *extra: tuple[str, str], **over: str) -> MultiDict[str]:
    fields = {"csrf": csrf, "title": "Jemput bola Namosain", "text_id": TEXT,
              "text_en": "", "button1": "ktp-baru", "button2": "", "button3": "lokasi",
              "tags": "", "do": "save"} | over
    return MultiDict([*fields.items(), *extra])


async def _act(client: TestClient, csrf: str, broadcast_id: int, action: str,
               **fields: str) -> Any:
    return await client.post(f"/admin/broadcasts/{broadcast_id}/{action}",
                             data={"csrf": csrf, **fields}, allow_redirects=False)


async def test_pages_need_a_login(lontar: Lontar, client: TestClient) -> None:
    _draft(lontar)
    for path in ("/admin/broadcasts", "/admin/broadcasts/1", "/admin/broadcasts/1/report.csv"):
        r = await client.get(path, allow_redirects=False)
        assert r.status == 303 and r.headers["Location"].startswith("/admin/login?next=")
    r = await client.post("/admin/broadcasts/1/approve", data={}, allow_redirects=False)
    assert r.status == 401 and _row(lontar).status == "draft"


async def test_viewer_reads_but_cannot_create_or_act(lontar: Lontar,
                                                     client: TestClient) -> None:
    vina = add_user(lontar, "vina", "viewer")
    _draft(lontar)
    now = datetime.now(UTC)
    with lontar.db.engine.begin() as conn:
        notice = notices.add(conn, text_id="Server gangguan", office="kec-alak", service=None,
                             starts_at=now, ends_at=now + timedelta(hours=2), created_by=vina,
                             now=now)
    csrf = await login(client, "vina")
    body = await (await client.get("/admin/broadcasts")).text()
    assert 'href="/admin/broadcasts">Siaran</a>' in body and "Jemput bola" in body
    assert "Buat siaran" not in body and "Hitung penerima" not in body
    body = await (await client.get("/admin/broadcasts/1")).text()
    assert TEXT in body and "Setujui" not in body and "Kirim uji" not in body
    r = await client.post("/admin/broadcasts", data=_form(csrf), allow_redirects=False)
    assert r.status == 403 and _count(lontar, broadcast_t) == 1
    for action in ("approve", "send", "cancel", "test"):
        r = await _act(client, csrf, 1, action)
        assert r.status == 403, action
    assert "Siarkan" not in await (await client.get("/admin/notices")).text()
    r = await client.post(f"/admin/notices/{notice}/broadcast", data={"csrf": csrf})
    assert r.status == 403 and _count(lontar, broadcast_t) == 1
    assert _row(lontar).status == "draft" and _audit(lontar) == []


async def test_staff_counts_the_audience_then_saves_a_draft(lontar: Lontar,
                                                            client: TestClient) -> None:
    _contacts(lontar, ("telegram", "101", "alak", "in"), ("whatsapp", "62811", "alak", "in"),
              ("telegram", "102", "maulafa", "in"), ("telegram", "103", "alak", "out"),
              ("telegram", "104", "alak", "blocked"), ("web", "w1", "alak", "in"))
    add_user(lontar, "sari", "staff", "Sari Petugas")
    csrf = await login(client, "sari")
    body = await (await client.get("/admin/broadcasts")).text()
    assert "Buat siaran" in body and 'enctype="multipart/form-data"' in body
    assert '<option value="alak:1001">Namosain</option>' in body
    form = _form(csrf, ("channel", "telegram"), ("channel", "whatsapp"),
                 ("kecamatan", "alak"), do="count", tags="rt-05, Sekolah-SD1")
    r = await client.post("/admin/broadcasts", data=form)
    body = await r.text()
    assert r.status == 200, body
    assert "Jumlah penerima saat ini: <strong>0</strong>" in body  # nobody has those tags
    form = _form(csrf, ("channel", "telegram"), ("channel", "whatsapp"),
                 ("kecamatan", "alak"), do="count")
    body = await (await client.post("/admin/broadcasts", data=form)).text()
    assert "Jumlah penerima saat ini: <strong>2</strong>" in body
    # what was typed is kept
    assert 'value="Jemput bola Namosain"' in body and TEXT in body
    assert '<option value="alak" selected>Alak</option>' in body
    assert 'name="channel" value="whatsapp" checked' in body
    assert _count(lontar, broadcast_t) == 0
    # bad tags are refused with the reason, nothing saved
    r = await client.post("/admin/broadcasts", data=_form(csrf, tags="rt 05, <b>"))
    assert r.status == 422 and "Tag hanya huruf kecil" in await r.text()
    r = await client.post("/admin/broadcasts", data=_form(csrf, ("kecamatan", "atlantis")))
    assert r.status == 422 and _count(lontar, broadcast_t) == 0
    r = await client.post("/admin/broadcasts", data=_form(
        csrf, ("channel", "telegram"), ("kecamatan", "alak"), ("kelurahan", "alak:1001"),
        ("service", "kk-baru"), tags="rt-05"), allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/admin/broadcasts/1?ok=create"
    row = _row(lontar)
    assert row.status == "draft" and row.buttons == ["ktp-baru", "lokasi"]
    assert broadcasts.audience_of(row) == Audience(
        channels=("telegram",), kecamatan=("alak",), kelurahan=("alak:1001",),
        services=("kk-baru",), tags=("rt-05",))
    assert _audit(lontar) == [("broadcast_create", "1", {"image": False, "buttons": 2})]
    body = await (await client.get("/admin/broadcasts/1?ok=create")).text()
    assert "Draf siaran tersimpan" in body and "Menunggu persetujuan admin" in body
    assert "kec. Alak" in body and "Sari Petugas" in body
    assert "Jumlah penerima saat ini</dt><dd><strong>0</strong>" in body
    assert "Setujui" not in body and "Kirim sekarang" not in body
    body = await (await client.get("/admin/broadcasts")).text()
    assert "Jemput bola Namosain" in body and "Draf" in body


async def test_only_an_admin_approves_and_nothing_goes_before_approval(
        lontar: Lontar, client: TestClient) -> None:
    _contacts(lontar, ("telegram", "101", "alak", "in"))
    add_user(lontar, "sari", "staff")
    admin_id = add_user(lontar, "adi", "admin")
    _draft(lontar)
    csrf = await login(client, "sari")
    r = await _act(client, csrf, 1, "approve")
    assert r.status == 403 and _row(lontar).status == "draft"
    r = await _act(client, csrf, 1, "send")
    body = await r.text()
    assert r.status == 422 and "belum disetujui admin" in body
    assert _row(lontar).status == "draft" and _audit(lontar) == []
    r = await _act(client, csrf, 99, "cancel")
    assert r.status == 404
    await client.post("/admin/logout", data={"csrf": csrf})
    csrf = await login(client, "adi")
    body = await (await client.get("/admin/broadcasts/1")).text()
    assert ">Setujui</button>" in body
    r = await _act(client, csrf, 1, "approve")
    assert r.status == 303 and r.headers["Location"] == "/admin/broadcasts/1?ok=approve&n=0"
    row = _row(lontar)
    assert (row.status, row.approved_by) == ("approved", admin_id)
    r = await _act(client, csrf, 1, "approve")  # once
    assert r.status == 422 and _audit(lontar) == [("broadcast_approve", "1", {})]
    body = await (await client.get("/admin/broadcasts/1")).text()
    assert "Kirim sekarang" in body and "Jadwalkan" in body and 'type="datetime-local"' in body


async def test_schedule_in_office_time_is_stored_in_utc(lontar: Lontar,
                                                        client: TestClient) -> None:
    _contacts(lontar, ("telegram", "101", "alak", "in"), ("telegram", "102", None, "in"))
    add_user(lontar, "sari", "staff")
    _approve(lontar, _draft(lontar))
    csrf = await login(client, "sari")
    for bad in ("", "besok pagi", "2020-01-01T09:30"):
        r = await _act(client, csrf, 1, "schedule", waktu=bad)
        assert r.status == 422, bad
    assert _row(lontar).status == "approved" and _audit(lontar) == []
    day = (datetime.now(UTC) + timedelta(days=2)).date()
    r = await _act(client, csrf, 1, "schedule", waktu=f"{day.isoformat()}T09:30")
    assert r.status == 303 and r.headers["Location"].endswith("ok=schedule&n=2")
    row = _row(lontar)
    assert row.status == "scheduled" and row.planned == 2
    assert row.send_at == datetime.combine(day, time(1, 30), UTC)  # 09.30 WITA = 01.30 UTC
    assert _audit(lontar)[-1][:2] == ("broadcast_schedule", "1")
    body = await (await client.get("/admin/broadcasts/1")).text()
    assert f"{day:%d-%m-%Y} 09:30 WITA" in body and "Terjadwal" in body
    assert '<meta http-equiv="refresh" content="5">' in body  # scheduled: live
    assert "tidak dikirim 21.00–07.00 WITA" in body


async def test_send_pause_resume_cancel(lontar: Lontar, client: TestClient) -> None:
    _contacts(lontar, ("telegram", "101", "alak", "in"), ("telegram", "102", "alak", "in"),
              ("whatsapp", "62811", "alak", "in"))
    add_user(lontar, "sari", "staff")
    _approve(lontar, _draft(lontar))
    csrf = await login(client, "sari")
    r = await _act(client, csrf, 1, "send")
    assert r.status == 303 and r.headers["Location"].endswith("ok=send&n=3")
    assert _row(lontar).status == "scheduled"
    _tick(lontar)
    assert _row(lontar).status == "sending"
    assert [o.status for o in _outbox(lontar)] == ["pending"] * 3
    body = await (await client.get("/admin/broadcasts/1")).text()
    assert '<meta http-equiv="refresh" content="5">' in body and "<progress" in body
    assert "Sedang dikirim" in body and "Menunggu<strong>3</strong>" in body
    r = await _act(client, csrf, 1, "pause")
    assert r.status == 303 and r.headers["Location"].endswith("ok=pause&n=3")
    assert _row(lontar).status == "paused"
    assert [o.status for o in _outbox(lontar)] == ["held"] * 3
    body = await (await client.get(r.headers["Location"])).text()
    assert "3 pesan ditahan" in body and 'http-equiv="refresh"' not in body
    assert ">Lanjutkan</button>" in body
    r = await _act(client, csrf, 1, "resume")
    assert r.status == 303 and _row(lontar).status == "sending"
    assert [o.status for o in _outbox(lontar)] == ["pending"] * 3
    r = await _act(client, csrf, 1, "cancel")
    assert r.status == 303 and r.headers["Location"].endswith("ok=cancel&n=3")
    assert _row(lontar).status == "cancelled"
    assert [o.status for o in _outbox(lontar)] == ["cancelled"] * 3
    r = await _act(client, csrf, 1, "resume")
    assert r.status == 422 and _row(lontar).status == "cancelled"
    assert [a for a, _, _ in _audit(lontar)] == [
        "broadcast_send", "broadcast_pause", "broadcast_resume", "broadcast_cancel"]
    assert all(TEXT not in repr(d) for _, _, d in _audit(lontar))


async def test_a_post_without_the_form_token_changes_nothing(lontar: Lontar,
                                                             client: TestClient) -> None:
    add_user(lontar, "adi", "admin")
    _draft(lontar)
    csrf = await login(client, "adi")
    for action in ("approve", "cancel"):
        r = await client.post(f"/admin/broadcasts/1/{action}", data={},
                              allow_redirects=False)
        assert r.status == 403
        r = await client.post(f"/admin/broadcasts/1/{action}", data={"csrf": "forged"},
                              allow_redirects=False)
        assert r.status == 403
    data = _form(csrf)
    data.popall("csrf")
    r = await client.post("/admin/broadcasts", data=data, allow_redirects=False)
    assert r.status == 403
    assert _row(lontar).status == "draft" and _count(lontar, broadcast_t) == 1
    assert _audit(lontar) == []


def _upload(csrf: str, content: bytes, name: str, kind: str, **over: str) -> FormData:
    data = FormData()
    for key, value in _form(csrf, **over).items():
        data.add_field(key, value)
    data.add_field("image", content, filename=name, content_type=kind)
    return data


async def test_picture_upload_is_checked_by_its_bytes(lontar: Lontar,
                                                      client: TestClient) -> None:
    add_user(lontar, "sari", "staff")
    csrf = await login(client, "sari")
    folder = Path(lontar.settings.data_dir) / "broadcasts"
    for content, name in ((b"<?php system($_GET['c']); ?>", "foto.png"),
                          (b"GIF89a\x01\x00\x01\x00", "foto.jpg"),
                          (b"\x89PNG\r\n\x1a\n" + b"\0" * (5 * 1024 * 1024), "besar.png")):
        r = await client.post("/admin/broadcasts",
                              data=_upload(csrf, content, name, "image/png"))
        body = await r.text()
        assert r.status == 422, name
        assert "JPEG atau PNG" in body or "paling besar 5 MB" in body
    # far too big for the form: refused before it is read whole
    r = await client.post("/admin/broadcasts", data=_upload(
        csrf, b"\x89PNG\r\n\x1a\n" + b"\0" * (7 * 1024 * 1024), "huge.png", "image/png"))
    assert r.status == 413 and "paling besar 5 MB" in await r.text()
    assert _count(lontar, broadcast_t) == 0
    assert not folder.exists() or not any(folder.iterdir())
    png = _png()
    # counting first keeps the picture: it need not be chosen again
    r = await client.post("/admin/broadcasts",
                          data=_upload(csrf, png, "../../etc/passwd", "text/plain",
                                       do="count"))
    body = await r.text()
    kept = re.search(r'name="image_kept" value="([0-9a-f]{32}\.png)"', body)
    assert r.status == 200 and kept is not None
    r = await client.post("/admin/broadcasts", data=_form(csrf, image_kept=kept.group(1)),
                          allow_redirects=False)
    assert r.status == 303
    row = _row(lontar)
    assert row.image == kept.group(1)
    assert (folder / row.image).read_bytes() == png
    body = await (await client.get("/admin/broadcasts/1")).text()
    assert '<img src="/admin/broadcasts/1/image"' in body
    assert "gambar tidak dikirim" in body
    image = await client.get("/admin/broadcasts/1/image")
    assert image.status == 200 and image.content_type == "image/png"
    assert await image.read() == png
    # a name that is not one we made is never used
    r = await client.post("/admin/broadcasts", data=_form(csrf, image_kept="../lontar.db"),
                          allow_redirects=False)
    assert r.status == 303 and _row(lontar, 2).image is None
    # a direct upload on save
    r = await client.post("/admin/broadcasts",
                          data=_upload(csrf, b"\xff\xd8\xff\xe0" + b"\0" * 64, "x.jpg",
                                       "image/jpeg"), allow_redirects=False)
    assert r.status == 303 and _row(lontar, 3).image.endswith(".jpg")


async def test_title_and_text_are_escaped(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "sari", "staff")
    _draft(lontar, title='<script>alert("t")</script>',
           text_id='<img src=x onerror=alert(1)> & "kutip"')
    await login(client, "sari")
    for path in ("/admin/broadcasts", "/admin/broadcasts/1"):
        body = await (await client.get(path)).text()
        assert "<script>alert" not in body and "<img src=x" not in body, path
        assert "&lt;script&gt;" in body, path
    body = await (await client.get("/admin/broadcasts/1")).text()
    assert "&lt;img src=x onerror=alert(1)&gt;" in body


async def test_progress_report_and_csv(lontar: Lontar, client: TestClient) -> None:
    ids = _contacts(lontar, ("telegram", "101", "alak", "in"), ("telegram", "102", "alak", "in"),
                    ("whatsapp", "=cmd|' /C calc'!A0", "alak", "in"),
                    ("telegram", "103", "alak", "in"), ("telegram", "104", "alak", "in"))
    add_user(lontar, "vina", "viewer")
    broadcast_id = _draft(lontar)
    _approve(lontar, broadcast_id)
    with lontar.db.engine.begin() as conn:
        broadcasts.schedule(conn, lontar.content, broadcast_id, datetime.now(UTC))
        # between composing and sending, one opts out and one blocks the bot
        later = datetime.now(UTC) + timedelta(milliseconds=1)
        conn.execute(update(contact_t).where(contact_t.c.id == ids[3]).values(
            opted_in=False, opted_out_at=later))
        conn.execute(update(contact_t).where(contact_t.c.id == ids[4]).values(
            blocked_at=later))
    _tick(lontar)
    rows = _outbox(lontar)
    assert len(rows) == 3
    with lontar.db.engine.begin() as conn:
        conn.execute(update(outbox_t).where(outbox_t.c.id == rows[0].id).values(
            status=SENT, sent_at=datetime.now(UTC)))
        conn.execute(update(outbox_t).where(outbox_t.c.id == rows[1].id).values(
            status=FAILED, last_error="x"))
    await login(client, "vina")
    body = await (await client.get("/admin/broadcasts/1")).text()
    assert "Terkirim<strong>1</strong>" in body and "Menunggu<strong>1</strong>" in body
    assert re.search(r"<td>Terkirim</td><td>1</td>", body)
    assert re.search(r"<td>Gagal</td><td>1</td>", body)
    assert re.search(r"<td>Berhenti berlangganan</td><td>1</td>", body)
    assert re.search(r"<td>Memblokir bot / chat tidak ada</td><td>1</td>", body)
    assert "setelah siaran (72 jam)</td><td>0</td>" in body
    assert 'href="/admin/broadcasts/1/report.csv"' in body
    r = await client.get("/admin/broadcasts/1/report.csv")
    assert r.status == 200 and r.content_type == "text/csv"
    raw = await r.read()
    assert raw.startswith("\ufeff".encode())
    table = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert table[0] == ["kontak", "kanal", "hasil", "terkirim", "templat_whatsapp",
                        "berhenti_setelah"]
    outcomes = {int(r[0]): r[2] for r in table[1:]}
    assert len(table) == 6 and outcomes == {
        ids[0]: "sent", ids[1]: "failed", ids[2]: "pending", ids[3]: "skipped_opted_out",
        ids[4]: "skipped_blocked"}
    assert "62811" not in raw.decode() and "calc" not in raw.decode()  # no chat ids leave
    assert ("broadcast_report", "1", {}) in _audit(lontar)
    r = await client.get("/admin/broadcasts/77/report.csv")
    assert r.status == 404


async def test_a_notice_becomes_a_draft_for_its_kecamatan(lontar: Lontar,
                                                          client: TestClient) -> None:
    sari = add_user(lontar, "sari", "staff")
    now = datetime.now(UTC)
    with lontar.db.engine.begin() as conn:
        alak = notices.add(conn, text_id="Alat perekaman rusak", text_en="Recorder broken",
                           office="kec-alak", service="ktp-baru", starts_at=now,
                           ends_at=now + timedelta(hours=3), created_by=sari, now=now)
        everywhere = notices.add(conn, text_id="Server pusat gangguan", office=None,
                                 service=None, starts_at=now, ends_at=now + timedelta(hours=3),
                                 created_by=sari, now=now)
    csrf = await login(client, "sari")
    body = await (await client.get("/admin/notices")).text()
    assert f'action="/admin/notices/{alak}/broadcast"' in body
    assert "Siarkan ke kecamatan terdampak" in body
    r = await client.post(f"/admin/notices/{alak}/broadcast", data={"csrf": csrf},
                          allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/admin/broadcasts/1?ok=notice"
    row = _row(lontar)
    assert (row.status, row.notice_id, row.buttons) == ("draft", alak, ["ktp-baru"])
    assert broadcasts.audience_of(row) == Audience(kecamatan=("alak",))
    assert "Alat perekaman rusak" in row.text_id and "Kec. Alak" in row.text_id
    assert "Recorder broken" in row.text_en
    r = await client.post(f"/admin/notices/{everywhere}/broadcast", data={"csrf": csrf},
                          allow_redirects=False)
    assert r.status == 303
    row = _row(lontar, 2)
    assert broadcasts.audience_of(row) == Audience() and row.text_en is None
    assert [a[:2] for a in _audit(lontar)] == [("broadcast_from_notice", "1"),
                                               ("broadcast_from_notice", "2")]
    with lontar.db.engine.begin() as conn:
        notices.end(conn, alak, datetime.now(UTC))
    r = await client.post(f"/admin/notices/{alak}/broadcast", data={"csrf": csrf})
    assert r.status == 404 and _count(lontar, broadcast_t) == 2
    body = await (await client.get("/admin/broadcasts/1?ok=notice")).text()
    assert "pemberitahuan gangguan" in body and "Menunggu persetujuan admin" in body


async def test_a_test_goes_to_the_staff_members_own_telegram(lontar: Lontar,
                                                             client: TestClient) -> None:
    with lontar.db.engine.begin() as conn:
        create_user(conn, "sari", PASSWORD, "staff", "Sari", telegram_chat_id="777001")
    add_user(lontar, "budi", "staff")
    _draft(lontar, text_en="Mobile KTP-el recording on Saturday.")
    csrf = await login(client, "sari")
    body = await (await client.get("/admin/broadcasts/1")).text()
    assert "Kirim uji ke saya" in body
    r = await _act(client, csrf, 1, "test", lang="en")
    assert r.status == 303 and r.headers["Location"].endswith("ok=test&n=1")
    [out] = _outbox(lontar)
    with lontar.db.engine.connect() as conn:
        contact = conn.execute(select(contact_t).where(contact_t.c.id == out.contact_id)).one()
    assert (contact.channel, contact.external_id, contact.opted_in) == ("telegram", "777001",
                                                                        False)
    assert out.priority == PRIORITY_NOTIFICATION and out.broadcast_id is None
    assert "Mobile KTP-el recording" in out.payload["text"]
    assert _audit(lontar) == [("broadcast_test", "1", {"lang": "en"})]
    assert _row(lontar).status == "draft"  # a test is no approval
    await client.post("/admin/logout", data={"csrf": csrf})
    csrf = await login(client, "budi")
    body = await (await client.get("/admin/broadcasts/1")).text()
    assert "belum terhubung ke chat Telegram" in body
    r = await _act(client, csrf, 1, "test")
    assert r.status == 422 and "belum terhubung ke chat Telegram" in await r.text()
    assert len(_outbox(lontar)) == 1


async def test_previews_show_what_each_platform_gets(lontar: Lontar,
                                                     client: TestClient) -> None:
    add_user(lontar, "sari", "staff")
    _draft(lontar, text_en="Mobile recording.", buttons=["ktp-baru", "lokasi", "biaya"])
    await login(client, "sari")
    body = await (await client.get("/admin/broadcasts/1")).text()
    footer = lontar.content.msg("id", "broadcast_footer")
    assert footer in body and lontar.content.msg("en", "broadcast_footer") in body
    assert body.count("Telegram · ") == 2 and "templat pemasaran" in body
    label = lontar.content.services["ktp-baru"].label.get("id")
    assert f"<span>{label}</span>" in body
    assert "Mobile recording." in body


async def test_quiet_hours_and_waking_the_senders(lontar: Lontar) -> None:
    tz = lontar.inbox.engine.tz
    local = datetime.now(UTC).astimezone(tz)
    quiet = QuietHours((local - timedelta(hours=1)).time(), (local + timedelta(hours=1)).time(),
                       tz)
    woken: list[frozenset[str]] = []
    dash = Dashboard(lontar.db, lontar.content, data_dir=lontar.settings.data_dir,
                     timezone=lontar.settings.timezone, quiet=quiet, wake=woken.append)
    app = web.Application()
    dash.routes(app)
    _contacts(lontar, ("telegram", "101", "alak", "in"))
    _approve(lontar, _draft(lontar))
    with lontar.db.engine.begin() as conn:
        broadcasts.schedule(conn, lontar.content, 1, datetime.now(UTC))
    _tick(lontar)
    with lontar.db.engine.begin() as conn:
        create_user(conn, "sari", PASSWORD, "staff", "Sari", telegram_chat_id="777001")
    async with TestClient(TestServer(app)) as c:
        csrf = await login(c, "sari")
        body = await (await c.get("/admin/broadcasts/1")).text()
        for action in ("pause", "resume", "test"):
            r = await _act(c, csrf, 1, action)
            assert r.status == 303, action
    assert woken == [frozenset({"telegram", "whatsapp"}), frozenset({"telegram"})]
    assert "menunggu pagi" in body
    assert f"tidak dikirim {quiet.start:%H.%M}–{quiet.end:%H.%M} WITA" in body
