"""Applications in the dashboard: the list with its filters and searches (a NIK only as its
HMAC, never echoed, logged or stored), one application with its history, and a status
change with a note: one transaction with history, notifications and audit, or nothing."""

from __future__ import annotations

import dataclasses
import logging
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, insert, select

from bot.app import Lontar
from bot.dashboard.server import Dashboard
from bot.models import (
    app_update_t,
    application_t,
    audit_t,
    contact_t,
    outbox_t,
    subscription_t,
)
from bot.services.applications import apply, check_all
from tests.bot.dashboard_helpers import add_user, login

TODAY = date(2026, 11, 21)
NIK_M = "5371011203900001"  # Alak, born 12-03-1990, man
NIK_F = "5371025208850002"  # Maulafa, born 12-08-1985, woman
T1 = datetime(2026, 11, 20, 1, 30, tzinfo=UTC)  # 09:30 WITA


def _row(reg_no: str, service: str = "kk-baru", office: str = "dinas",
         status: str = "diterima", alasan: str = "", nik: str = "",
         born: str = "1990-03-12") -> dict[str, str]:
    return {"nomor_registrasi": reg_no, "layanan": service, "kantor": office,
            "status": status, "alasan": alasan, "nik": nik, "tanggal_lahir": born}


def _seed(lontar: Lontar, rows: list[dict[str, str]], now: datetime = T1) -> None:
    """Import as the CSV import does; each row's status changed one minute after the last."""
    items, errors = check_all(enumerate(rows, 2), lontar.content,
                              lontar.settings.secret_key, TODAY)
    assert errors == []
    with lontar.db.engine.begin() as conn:
        for n, item in enumerate(items):
            apply(conn, [item], lontar.content, source="import",
                  now=now + timedelta(minutes=n))


def _standard(lontar: Lontar) -> None:
    _seed(lontar, [
        _row("KK-2026-0001", nik=NIK_M),
        _row("KTP-2026-0002", "ktp-baru", "kec-alak", "diproses", nik=NIK_F, born=""),
        _row("AKTA-2026-0003", "akta-kelahiran", "kec-oebobo", "siap-diambil"),
    ])


def _subscribe(lontar: Lontar, reg_no: str, who: list[tuple[str, str]],
               stopped: int = 0) -> None:
    """Active subscriptions for (channel, external id); `stopped` more that were ended."""
    now = datetime.now(UTC)
    with lontar.db.engine.begin() as conn:
        app_id = conn.execute(select(application_t.c.id).where(
            application_t.c.reg_no == reg_no)).scalar_one()
        for n, (channel, ext) in enumerate(who + [("web", f"stopped-{i:012d}")
                                                 for i in range(stopped)]):
            contact = conn.execute(insert(contact_t), {
                "channel": channel, "external_id": ext, "language": "id",
                "opted_in": False, "created_at": now}).inserted_primary_key[0]  # type: ignore[index]
            conn.execute(insert(subscription_t), {
                "application_id": app_id, "contact_id": contact, "created_at": now,
                "stopped_at": now if n >= len(who) else None})


def _count(lontar: Lontar, table: Any) -> int:
    with lontar.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _audit(lontar: Lontar) -> list[tuple[str, str | None, dict[str, Any]]]:
    with lontar.db.engine.connect() as conn:
        return [(r.action, r.target, r.detail) for r in conn.execute(
            select(audit_t).order_by(audit_t.c.id))]


def _status(lontar: Lontar, reg_no: str) -> tuple[str, str | None]:
    with lontar.db.engine.connect() as conn:
        row = conn.execute(select(application_t.c.status, application_t.c.reason).where(
            application_t.c.reg_no == reg_no)).one()
    return row.status, row.reason


def _numbers(body: str) -> list[str]:
    """Registration numbers in the list, in page order."""
    return re.findall(r'<a href="/admin/applications/([^"?]+)">', body)


def _everything(lontar: Lontar) -> str:
    """Every row of every table as text: where a stored NIK would show up."""
    out = []
    with lontar.db.engine.connect() as conn:
        for table in application_t.metadata.sorted_tables:
            out += [repr(tuple(r)) for r in conn.execute(select(table))]
    return "\n".join(out)


async def test_list_sorts_filters_and_drops_unknown_values(lontar: Lontar,
                                                          client: TestClient) -> None:
    add_user(lontar, "vina", "viewer")
    _standard(lontar)
    await login(client, "vina")
    body = await (await client.get("/admin/applications")).text()
    assert 'href="/admin/applications">Permohonan</a>' in body  # in the navigation
    assert "Permohonan (3)" in body
    assert _numbers(body) == ["AKTA-2026-0003", "KTP-2026-0002", "KK-2026-0001"]
    assert "Siap diambil" in body and "Akta kelahiran" in body
    for query, expected in (("status=diproses", ["KTP-2026-0002"]),
                            ("office=kec-oebobo", ["AKTA-2026-0003"]),
                            ("service=kk-baru", ["KK-2026-0001"]),
                            ("status=diproses&office=dinas", []),
                            ("status=bogus&office=%27or1&service=umum", None),
                            (f"nik={NIK_F}", None)):  # a NIK is searched only by POST
        body = await (await client.get(f"/admin/applications?{query}")).text()
        found = _numbers(body)
        if expected is None:  # unknown values are ignored, not trusted
            assert len(found) == 3, query
        else:
            assert found == expected, query
            assert f"Permohonan ({len(expected)})" in body


async def test_list_pages(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    _seed(lontar, [_row(f"KK-2026-{n:04d}") for n in range(1, 53)])
    await login(client, "ana")
    body = await (await client.get("/admin/applications")).text()
    assert "Halaman 1 dari 2" in body and len(_numbers(body)) == 50
    assert _numbers(body)[0] == "KK-2026-0052"
    assert 'href="/admin/applications?page=2"' in body
    body = await (await client.get("/admin/applications?page=2")).text()
    assert _numbers(body) == ["KK-2026-0002", "KK-2026-0001"]
    body = await (await client.get("/admin/applications?page=999")).text()
    assert "Halaman 2 dari 2" in body


async def test_search_by_registration_number(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    _standard(lontar)
    _seed(lontar, [_row("KK-2026-00011")], T1 + timedelta(hours=1))
    await login(client, "ana")
    for nomor, expected in (("kk-2026-0001", ["KK-2026-00011", "KK-2026-0001"]),
                            (" KK-2026-00011 ", ["KK-2026-00011"]),
                            ("ktp", ["KTP-2026-0002"]), ("ZZZ", []),
                            ("K", ["KK-2026-00011", "KTP-2026-0002", "KK-2026-0001"])):
        body = await (await client.get("/admin/applications", params={"nomor": nomor})).text()
        assert _numbers(body) == expected, nomor
    # not a registration number: said so, and the filter is dropped rather than trusted
    body = await (await client.get("/admin/applications", params={"nomor": "%' or 1"})).text()
    assert "hanya berisi huruf" in body and len(_numbers(body)) == 4


async def test_nik_search_finds_by_hmac_and_never_shows_logs_or_keeps_the_nik(
        lontar: Lontar, client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    add_user(lontar, "vina", "viewer")  # looking up is reading: viewers may
    _standard(lontar)
    csrf = await login(client, "vina")
    for typed in (NIK_M, "5371 0112 0390 0001", "53.71.01.120390.0001"):
        r = await client.post("/admin/applications", data={"csrf": csrf, "nik": typed},
                              allow_redirects=False)
        body = await r.text()
        assert r.status == 200, typed  # answered in place: no redirect carrying the NIK
        assert _numbers(body) == ["KK-2026-0001"], typed
        assert "NIK 5371********0001" in body
        assert "Halaman" not in body  # no page links that could carry the search
        digits = re.sub(r"\D", "", body)
        assert NIK_M not in digits and "011203900001" not in digits and "120390" not in body
    r = await client.post("/admin/applications", data={"csrf": csrf, "nik": NIK_F})
    assert _numbers(await r.text()) == ["KTP-2026-0002"]
    # a valid NIK nobody registered, and text that is not a NIK
    r = await client.post("/admin/applications", data={"csrf": csrf,
                                                       "nik": "5371011203900009"})
    assert r.status == 200 and _numbers(await r.text()) == []
    r = await client.post("/admin/applications", data={"csrf": csrf,
                                                       "nik": "5371019903900001"})
    body = await r.text()
    assert r.status == 422 and "NIK tidak valid" in body and "99039" not in body
    # without the form token nothing is searched
    r = await client.post("/admin/applications", data={"csrf": "forged", "nik": NIK_M})
    assert r.status == 403 and "KK-2026-0001" not in await r.text()
    nik_hmacs = {row.nik_hmac for row in _rows(lontar)} - {None}
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert caplog.records  # the capture was on: requests were logged
    for secret in (NIK_M, NIK_F, "5371 0112", "53.71.01", *nik_hmacs):
        assert secret not in logged
    audit = _audit(lontar)
    assert [a for a, _, _ in audit].count("application_nik_search") == 5  # valid NIKs only
    assert ("application_nik_search", None, {"found": 1}) in audit
    stored = _everything(lontar)
    assert NIK_M not in stored and NIK_F not in stored
    assert not any(h in repr(audit) for h in nik_hmacs)


def _rows(lontar: Lontar) -> list[Any]:
    with lontar.db.engine.connect() as conn:
        return list(conn.execute(select(application_t)))


async def test_detail_shows_facts_and_the_whole_history(lontar: Lontar,
                                                        client: TestClient) -> None:
    add_user(lontar, "ana", "staff", "Ana Petugas")
    _standard(lontar)
    _subscribe(lontar, "KTP-2026-0002", [("web", "sub-0000000001"), ("telegram", "4242")],
               stopped=1)
    csrf = await login(client, "ana")
    r = await client.post("/admin/applications/KTP-2026-0002/status",
                          data={"csrf": csrf, "status": "perlu-perbaikan",
                                "alasan": "Fotokopi KK buram"}, allow_redirects=False)
    assert r.status == 303
    r = await client.get("/admin/applications/ktp-2026-0002")  # any case
    body = await r.text()
    assert r.status == 200
    for text in ("KTP-2026-0002", "Perlu perbaikan", "Fotokopi KK buram",
                 "tercatat (disamarkan)", "4 digit terakhir NIK", "2 chat",
                 "20-11-2026 09:31",  # the import, in office time (WITA)
                 "Impor berkas", "Dasbor · Ana Petugas", "Diproses → Perlu perbaikan"):
        assert text in body, text
    assert "sub-0000000001" not in body and "4242" not in body  # a count, never who
    assert body.index("Impor berkas") < body.index("Dasbor · Ana Petugas")  # oldest first
    assert "Ubah status" in body and 'name="alasan"' in body
    body = await (await client.get("/admin/applications/AKTA-2026-0003")).text()
    for text in ("NIK</dt><dd>tidak ada", "Tanggal lahir", "0 chat", "Siap diambil"):
        assert text in body, text
    assert "1990-03-12" not in body and "12-03-1990" not in body


async def test_staff_change_writes_history_notifies_audits_and_wakes(
        lontar: Lontar, client: TestClient) -> None:
    staff_id = add_user(lontar, "ana", "staff", "Ana Petugas")
    _standard(lontar)
    _subscribe(lontar, "KTP-2026-0002", [("web", "sub-0000000001"), ("telegram", "4242")],
               stopped=1)
    woken: list[str] = []

    class Worker:
        def __init__(self, channel: str) -> None:
            self.channel = channel

        def wake(self) -> None:
            woken.append(self.channel)

    lontar.workers.update(web=Worker("web"), telegram=Worker("telegram"))  # type: ignore[call-overload]
    csrf = await login(client, "ana")
    before = _count(lontar, app_update_t)
    r = await client.post("/admin/applications/KTP-2026-0002/status",
                          data={"csrf": csrf, "status": "siap-diambil", "alasan": ""},
                          allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"] == "/admin/applications/KTP-2026-0002?ok=status&n=2"
    assert sorted(woken) == ["telegram", "web"]
    assert _status(lontar, "KTP-2026-0002") == ("siap-diambil", None)
    with lontar.db.engine.connect() as conn:
        last = conn.execute(select(app_update_t).order_by(app_update_t.c.id.desc())).first()
        sent = list(conn.execute(select(outbox_t.c.channel, outbox_t.c.payload)))
    assert _count(lontar, app_update_t) == before + 1 and last is not None
    assert (last.status_before, last.status_after, last.source, last.staff_id) == (
        "diproses", "siap-diambil", "dashboard", staff_id)
    assert sorted(s.channel for s in sent) == ["telegram", "web"]  # not the stopped one
    assert all(s.payload["text"].startswith("Permohonan KTP-2026-0002: Siap diambil.")
               for s in sent)
    assert ("application_status", "KTP-2026-0002",
            {"status": "siap-diambil", "before": "diproses", "notified": 2}) in _audit(lontar)
    page = await (await client.get(r.headers["Location"])).text()
    assert "Status tersimpan. 2 chat pemohon diberi tahu." in page
    # the same again changes nothing and tells no one
    r = await client.post("/admin/applications/KTP-2026-0002/status",
                          data={"csrf": csrf, "status": "siap-diambil"}, allow_redirects=False)
    assert r.headers["Location"].endswith("?ok=same")
    assert _count(lontar, app_update_t) == before + 1 and _count(lontar, outbox_t) == 2
    assert [a for a, _, _ in _audit(lontar)].count("application_status") == 1


@pytest.mark.parametrize("data,message", [
    ({"status": "perlu-perbaikan", "alasan": ""}, "Alasan wajib diisi untuk status Perlu"),
    ({"status": "ditolak", "alasan": "   \n "}, "Alasan wajib diisi untuk status Ditolak"),
    ({"status": "selesai", "alasan": "x"}, "Pilih salah satu status"),
    ({"alasan": "x"}, "Pilih salah satu status"),
    ({"status": "diambil", "alasan": "x" * 501}, "paling banyak 500"),
])
async def test_invalid_change_is_refused_and_writes_nothing(
        lontar: Lontar, client: TestClient, data: dict[str, str], message: str) -> None:
    add_user(lontar, "ana", "staff")
    _standard(lontar)
    _subscribe(lontar, "KK-2026-0001", [("web", "sub-0000000001")])
    csrf = await login(client, "ana")
    counts = (_count(lontar, app_update_t), _count(lontar, outbox_t))
    r = await client.post("/admin/applications/KK-2026-0001/status",
                          data={"csrf": csrf, **data}, allow_redirects=False)
    body = await r.text()
    assert r.status == 422 and message in body
    assert "KK-2026-0001" in body and "Riwayat status" in body  # the page, re-rendered
    assert (_count(lontar, app_update_t), _count(lontar, outbox_t)) == counts
    assert _status(lontar, "KK-2026-0001") == ("diterima", None)
    assert "application_status" not in [a for a, _, _ in _audit(lontar)]


async def test_forged_csrf_is_refused_and_writes_nothing(lontar: Lontar,
                                                         client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    _standard(lontar)
    await login(client, "ana")
    for token in ("", "forged"):
        r = await client.post("/admin/applications/KK-2026-0001/status",
                              data={"csrf": token, "status": "diproses"})
        assert r.status == 403
    assert _status(lontar, "KK-2026-0001") == ("diterima", None)
    assert _count(lontar, app_update_t) == 3
    assert [a for a, _, _ in _audit(lontar)] == ["login", "csrf_refused", "csrf_refused"]


async def test_viewer_sees_pages_but_cannot_change(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "vina", "viewer")
    _standard(lontar)
    csrf = await login(client, "vina")
    r = await client.get("/admin/applications/KK-2026-0001")
    body = await r.text()
    assert r.status == 200 and "Diterima" in body
    assert "Ubah status" not in body and 'name="alasan"' not in body
    r = await client.post("/admin/applications/KK-2026-0001/status",
                          data={"csrf": csrf, "status": "diproses"})
    assert r.status == 403
    assert _status(lontar, "KK-2026-0001") == ("diterima", None)
    assert _count(lontar, app_update_t) == 3


async def test_unknown_number_gives_404(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    _standard(lontar)
    csrf = await login(client, "ana")
    r = await client.get("/admin/applications/KK-9999-9999")
    assert r.status == 404 and "Permohonan tidak ditemukan" in await r.text()
    for data in ({"status": "diproses"}, {"status": "bogus"}):
        r = await client.post("/admin/applications/KK-9999-9999/status",
                              data={"csrf": csrf, **data})
        assert r.status == 404
    assert (await client.get("/admin/applications/a")).status == 404  # not a number at all
    assert _count(lontar, app_update_t) == 3


async def test_numbers_with_slashes(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    _seed(lontar, [_row("474.1/123/DKPS/2026")])
    csrf = await login(client, "ana")
    body = await (await client.get("/admin/applications")).text()
    assert _numbers(body) == ["474.1/123/DKPS/2026"]
    assert (await client.get("/admin/applications/474.1/123/DKPS/2026")).status == 200
    r = await client.post("/admin/applications/474.1/123/dkps/2026/status",
                          data={"csrf": csrf, "status": "diproses"}, allow_redirects=False)
    assert r.status == 303
    assert r.headers["Location"] == "/admin/applications/474.1/123/DKPS/2026?ok=status&n=0"
    assert _status(lontar, "474.1/123/DKPS/2026") == ("diproses", None)


async def test_hostile_reason_is_escaped(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    _standard(lontar)
    evil = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    csrf = await login(client, "ana")
    r = await client.post("/admin/applications/KK-2026-0001/status",
                          data={"csrf": csrf, "status": "ditolak", "alasan": evil})
    assert r.status == 200
    assert _status(lontar, "KK-2026-0001") == ("ditolak", evil)  # stored as typed
    r422 = await client.post("/admin/applications/KK-2026-0001/status",
                             data={"csrf": csrf, "status": "bogus", "alasan": evil})
    assert r422.status == 422
    pages = [await r422.text()]
    for path in ("/admin/applications/KK-2026-0001", "/admin/applications"):
        pages.append(await (await client.get(path)).text())
    for body in pages:
        assert "<script>" not in body and "<img src=x" not in body
        assert "&lt;script&gt;" in body


async def test_routes_only_with_applications_content(lontar: Lontar) -> None:
    content = dataclasses.replace(lontar.content, applications=None)
    dash = Dashboard(lontar.db, content, data_dir=lontar.settings.data_dir,
                     timezone="Asia/Makassar")
    app = web.Application()
    dash.routes(app)
    paths = {getattr(r, "canonical", "") for r in app.router.resources()}
    assert "/admin/tickets" in paths
    assert not any(p.startswith("/admin/applications") for p in paths)
    html = dash.env.get_template("error.html").render(session=None, message="x")
    assert "Permohonan" not in html


async def test_nik_search_needs_the_secret(lontar: Lontar) -> None:
    dash = Dashboard(lontar.db, lontar.content, data_dir=lontar.settings.data_dir,
                     timezone="Asia/Makassar")
    app = web.Application()
    dash.routes(app)
    async with TestClient(TestServer(app)) as c:
        add_user(lontar, "ana", "staff")
        csrf = await login(c, "ana")
        body = await (await c.get("/admin/applications")).text()
        assert 'name="nik"' not in body
        r = await c.post("/admin/applications", data={"csrf": csrf, "nik": NIK_M})
        assert r.status == 422 and "tidak tersedia" in await r.text()
