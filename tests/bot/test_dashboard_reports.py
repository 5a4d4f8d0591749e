"""Report page and CSV exports: figures from real tickets, identity only for admins."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

from aiohttp.test_utils import TestClient
from sqlalchemy import insert, select, update

from bot.app import Lontar
from bot.dashboard.reports import safe_cell
from bot.models import audit_t, complaint_t, survey_t
from tests.bot.dashboard_helpers import add_user, file_complaint, login


async def _csv(client: TestClient, path: str) -> list[dict[str, str]]:
    r = await client.get(path)
    assert r.status == 200 and r.headers["Content-Type"].startswith("text/csv")
    text = (await r.read()).decode("utf-8-sig")
    return list(csv.DictReader(io.StringIO(text)))


async def test_report_page_shows_counts_sla_and_ikm(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    await file_complaint(lontar, "report-citizen-01", "Antrean lama sekali")
    await file_complaint(lontar, "report-citizen-02", "Printer rusak")
    now = datetime.now(UTC)
    with lontar.db.engine.begin() as conn:
        first = conn.execute(select(complaint_t.c.id).order_by(complaint_t.c.id)).scalars().first()
        conn.execute(update(complaint_t).where(complaint_t.c.id == first).values(
            state="selesai", first_answer_at=now + timedelta(hours=2),
            closed_at=now + timedelta(hours=4)))
        conn.execute(insert(survey_t), [{"submitted_on": date.today(), "office": "dinas",
                                         **{f"u{i}": 4 if i % 2 else 3 for i in range(1, 10)},
                                         "profile": {}, "suggestion": None}])
    await login(client, "ana")
    body = await (await client.get("/admin/reports")).text()
    assert "Tiket masuk<strong>2</strong>" in body
    assert "Masih terbuka<strong>1</strong>" in body
    assert "2.0 jam" in body  # median to first answer: one ticket, two hours
    assert "100% (1/1)" in body  # closed before its due date; the other is not yet due
    # scores 4,3,4,3,4,3,4,3,4 -> mean 32/9 -> IKM 88.89, grade A
    assert "88.89 · A" in body
    assert body.count("<svg") == 5
    bad = await (await client.get("/admin/reports?start=kemarin")).text()
    assert "tanggal tidak valid" in bad


async def test_ticket_csv_identity_only_for_admins(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "ana", "staff")
    add_user(lontar, "root", "admin")
    await file_complaint(lontar, "csv-citizen-0001", "=HYPERLINK(\"http://x\") antre",
                         "1", name="Maria Kana")
    await file_complaint(lontar, "csv-citizen-0002", "Calo di loket", "3", name="Anon Orang")
    await login(client, "ana")
    rows = await _csv(client, "/admin/export/tickets.csv?identitas=1")
    assert len(rows) == 2 and "nama" not in rows[0]
    assert rows[0]["isi"].startswith("'=HYPERLINK")  # not run as a formula
    await login(client, "root")
    rows = await _csv(client, "/admin/export/tickets.csv?identitas=1")
    assert [r["nama"] for r in rows] == ["Maria Kana", ""]  # anonymous stays anonymous
    rows = await _csv(client, "/admin/export/tickets.csv?category=biaya-pungli")
    assert len(rows) == 1 and rows[0]["kategori"] == "biaya-pungli"
    with lontar.db.engine.connect() as conn:
        exports = [(r.action, r.detail.get("identity")) for r in conn.execute(
            select(audit_t).where(audit_t.c.action.like("export_%")))]
    assert exports == [("export_tickets", False), ("export_tickets", True),
                       ("export_tickets", False)]


async def test_lapor_export_has_lapor_terms_and_no_identity(lontar: Lontar,
                                                            client: TestClient) -> None:
    add_user(lontar, "root", "admin")
    await file_complaint(lontar, "lapor-citizen-001", "Petugas minta uang", "2",
                         name="Rahasia Sekali")
    await login(client, "root")
    r = await client.get("/admin/export/lapor.csv")
    text = (await r.read()).decode("utf-8-sig")
    assert "Rahasia Sekali" not in text
    (row,) = list(csv.DictReader(io.StringIO(text)))
    assert row["klasifikasi"] == "Pengaduan" and row["topik"] == "Administrasi Kependudukan"
    assert row["kerahasiaan"] == "Rahasia" and row["isi_laporan"] == "Petugas minta uang"


async def test_survey_export_is_anonymous(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "vina", "viewer")
    with lontar.db.engine.begin() as conn:
        conn.execute(insert(survey_t), [{"submitted_on": date.today(), "office": None,
                                         **{f"u{i}": 2 for i in range(1, 10)},
                                         "profile": {"usia": "25-40"}, "suggestion": "+1 bagus"}])
    await login(client, "vina")
    (row,) = await _csv(client, "/admin/export/survey.csv")
    assert row["U1"] == "2" and row["usia"] == "25-40" and row["saran"] == "'+1 bagus"
    assert set(row) == {"tanggal", "kantor", *(f"U{i}" for i in range(1, 10)), "usia",
                        "jenis-kelamin", "pendidikan", "pekerjaan", "saran"}


def test_safe_cell() -> None:
    assert [safe_cell(v) for v in ("=1+1", "-2", "@x", "ok", None, 3)] == [
        "'=1+1", "'-2", "'@x", "ok", "", "3"]
