"""Applications: the CSV import (checked whole, all or nothing), re-import updates, history,
notifications to subscribers, secrets never stored plain."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, insert, select

from bot.app import Lontar
from bot.cli import main
from bot.models import app_update_t, application_t, contact_t, outbox_t, subscription_t
from bot.services.application_import import run
from bot.services.applications import normalise_answer, verify_hash
from tests import dbdump

TODAY = date(2026, 11, 21)
NIK_M = "5371011203900001"  # Alak, born 12-03-1990, man
NIK_F = "5371025208850002"  # Maulafa, born 12-08-1985, woman (52 = 12 + 40)
HEADER = "nomor_registrasi,layanan,kantor,status,alasan,nik,tanggal_lahir\n"


def _csv(tmp_path: Path, body: str, name: str = "a.csv", header: str = HEADER,
         encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes((header + body).encode(encoding))
    return path


def _run(lontar: Lontar, path: Path, dry_run: bool = False):  # type: ignore[no-untyped-def]
    return run(lontar.db.engine, path, lontar.content, lontar.settings.secret_key, TODAY,
               dry_run=dry_run)


def _count(lontar: Lontar, table) -> int:  # type: ignore[no-untyped-def]
    with lontar.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


GOOD = (f"KK-2026-0001,kk-baru,dinas,diterima,,{NIK_M},1990-03-12\n"
        f"KTP-2026-0002,ktp-baru,dinas,diproses,,{NIK_F},\n")


def test_import_creates_then_updates_without_duplicates(lontar: Lontar, tmp_path: Path) -> None:
    report = _run(lontar, _csv(tmp_path, GOOD))
    assert report.errors == [] and report.applied is not None
    assert (report.applied.created, report.applied.updated) == (2, 0)
    again = GOOD.replace("diproses", "siap-diambil")
    report = _run(lontar, _csv(tmp_path, again, "b.csv"))
    assert report.applied is not None
    assert (report.applied.created, report.applied.updated, report.applied.unchanged) == (0, 1, 1)
    with lontar.db.engine.connect() as conn:
        rows = conn.execute(select(application_t.c.reg_no, application_t.c.status,
                                   application_t.c.verify_kind)
                            .order_by(application_t.c.reg_no)).all()
        history = conn.execute(select(app_update_t.c.status_before, app_update_t.c.status_after,
                                      app_update_t.c.source)
                               .order_by(app_update_t.c.id)).all()
    assert [tuple(r) for r in rows] == [("KK-2026-0001", "diterima", "birth_date"),
                                        ("KTP-2026-0002", "siap-diambil", "nik_last4")]
    assert [tuple(h) for h in history] == [(None, "diterima", "import"),
                                           (None, "diproses", "import"),
                                           ("diproses", "siap-diambil", "import")]


def test_semicolons_and_bom_from_a_spreadsheet(lontar: Lontar, tmp_path: Path) -> None:
    body = GOOD.replace(",", ";")
    path = tmp_path / "excel.csv"
    path.write_bytes("\ufeff".encode() + (HEADER.replace(",", ";") + body + ";;;;;;\n").encode())
    report = _run(lontar, path)
    assert report.errors == [] and report.applied and report.applied.created == 2


@pytest.mark.parametrize("body,expected", [
    ("KK-1,kk-baru,dinas,diterima,,,1990-02-30\n", (2, "tanggal_lahir", "not a date")),
    ("KK-1,kk-baru,dinas,diterima,,5471011203900001,\n", (2, "nik", "not a valid NIK")),
    ("KK-1,kk-baru,dinas,selesai,,,1990-01-01\n", (2, "status", "unknown status")),
    ("KK-1,kk-baru,dinas,perlu-perbaikan,,,1990-01-01\n", (2, "alasan", "required")),
    ("KK-1,kk-baru,kantor-x,diterima,,,1990-01-01\n", (2, "kantor", "unknown office")),
    ("KK-1,kk-baru,dinas,diterima,,,\n", (2, "tanggal_lahir", "needed for verification")),
    ("KK-1,kk-baru,dinas,diterima,,,1990-01-01\nkk-1,kk-baru,dinas,diterima,,,1990-01-01\n",
     (3, "nomor_registrasi", "duplicate of line 4")),
    ("KK-1,kk-baru,dinas,diterima,,,1990-01-01,extra\n", (2, "row", "more cells")),
])
def test_bad_rows_are_named_and_nothing_is_written(lontar: Lontar, tmp_path: Path, body: str,
                                                   expected: tuple[int, str, str]) -> None:
    report = _run(lontar, _csv(tmp_path, GOOD + body.replace("\n", "\n")))
    line, where, text = expected
    assert any(e[0] == line + 2 and e[1] == where and text in e[2] for e in report.errors), \
        report.errors
    assert _count(lontar, application_t) == 0  # the good rows were not written either
    assert not any("5471011203900001" in e[2] for e in report.errors)  # a NIK is never echoed


def test_bad_header_and_encoding(lontar: Lontar, tmp_path: Path) -> None:
    report = _run(lontar, _csv(tmp_path, GOOD, header="nomor,layanan,kantor,status,x\n"))
    assert (1, "header", "missing column nomor_registrasi") in report.errors
    assert (1, "header", "unknown column 'x'") in report.errors
    latin = _csv(tmp_path, GOOD + "KK-9,kk-baru,dinas,diterima,Perbaikan alamat Rotë,,"
                 "1990-01-01\n", "latin.csv", encoding="latin-1")
    report = _run(lontar, latin)
    assert report.errors == [(4, "file", "not UTF-8 text (save the file as CSV UTF-8)")]
    assert _count(lontar, application_t) == 0


def test_dry_run_counts_and_writes_nothing(lontar: Lontar, tmp_path: Path) -> None:
    report = _run(lontar, _csv(tmp_path, GOOD), dry_run=True)
    assert report.applied is not None and report.applied.created == 2
    assert _count(lontar, application_t) == 0 and _count(lontar, app_update_t) == 0


def test_secrets_are_never_stored_or_logged_plain(lontar: Lontar, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    _run(lontar, _csv(tmp_path, GOOD))
    dump = dbdump.dump(lontar.db.engine)
    for secret in (NIK_M, NIK_F, "1990-03-12", "0002"):
        assert secret not in dump.replace("KTP-2026-0002", "")
    assert NIK_M not in caplog.text and NIK_F not in caplog.text
    with lontar.db.engine.connect() as conn:
        row = conn.execute(select(application_t).where(
            application_t.c.reg_no == "KK-2026-0001")).one()
    key = lontar.settings.secret_key
    assert row.verify_hmac == verify_hash(key, "KK-2026-0001", "birth_date", "12/03/1990")
    assert row.verify_hmac != verify_hash(key, "KK-2026-0001", "birth_date", "13/03/1990")


def test_answers_people_type_are_normalised() -> None:
    assert {normalise_answer("birth_date", a) for a in (
        "1990-03-12", "12-03-1990", "12/3/1990", "12.03.1990", "12031990")} == {"1990-03-12"}
    assert normalise_answer("birth_date", "31-02-1990") is None
    assert normalise_answer("nik_last4", " 0 0 0 1 ") == "0001"
    assert normalise_answer("nik_last4", "12345") is None


def test_status_change_notifies_each_subscriber_once(lontar: Lontar, tmp_path: Path) -> None:
    _run(lontar, _csv(tmp_path, GOOD))
    now = datetime.now(UTC)
    with lontar.db.engine.begin() as conn:
        contact = conn.execute(insert(contact_t), {
            "channel": "web", "external_id": "subscriber-0000001", "language": "id",
            "opted_in": False, "created_at": now}).inserted_primary_key[0]
        app_id = conn.execute(select(application_t.c.id).where(
            application_t.c.reg_no == "KTP-2026-0002")).scalar_one()
        conn.execute(insert(subscription_t), {"application_id": app_id,
                                              "contact_id": contact, "created_at": now})
    _run(lontar, _csv(tmp_path, GOOD.replace("diproses", "siap-diambil"), "b.csv"))
    _run(lontar, _csv(tmp_path, GOOD.replace("diproses", "siap-diambil"), "c.csv"))  # same
    with lontar.db.engine.connect() as conn:
        sent = [r.payload["text"] for r in conn.execute(select(outbox_t))]
    assert len(sent) == 1
    assert sent[0].startswith("Permohonan KTP-2026-0002: Siap diambil.")
    assert "Dinas" in sent[0]


def test_cli_import(lontar: Lontar, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LONTAR_DATA_DIR", str(lontar.settings.data_dir))
    assert main(["applications", "import", str(_csv(tmp_path, GOOD)), "--dry-run"]) == 0
    assert "2 new" in capsys.readouterr().out
    bad = _csv(tmp_path, "KK-1,kk-baru,dinas,diterima,,,kemarin\n", "bad.csv")
    assert main(["applications", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert "bad.csv: line 2: tanggal_lahir: not a date" in err and "nothing was written" in err
    assert main(["applications", "import", str(_csv(tmp_path, GOOD, "ok.csv"))]) == 0
    assert "2 new, 0 updated" in capsys.readouterr().out
