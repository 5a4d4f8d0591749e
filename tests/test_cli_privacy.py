"""`lontar privacy export` as the operator runs it, on a database a real chat filled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import insert, select, update

from bot.app import Lontar, build
from bot.config import load_settings
from bot.models import (
    application_t,
    audit_t,
    broadcast_t,
    complaint_t,
    contact_t,
    delivery_t,
    follower_t,
    subscription_t,
    update_t,
)
from tests.bot.test_consent import Citizen
from tests.conftest import Run


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lontar]:
    monkeypatch.setenv("LONTAR_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LONTAR_LOG_LEVEL", "WARNING")
    for name in ("TELEGRAM_BOT_TOKEN", "WHATSAPP_ACCESS_TOKEN", "LONTAR_CONTENT_DIR"):
        monkeypatch.delenv(name, raising=False)
    lontar = build(load_settings())
    yield lontar
    lontar.close()


async def test_export_everything_about_one_contact(app: Lontar, run: Run) -> None:
    c = Citizen(app, who="5001")
    await c.command("start")
    await c.press("go:consent:yes")
    await c.say("syarat kk baru")
    await Citizen(app, who="5002").say("halo")  # someone else: not in the export
    cid = c.contact().id
    with app.db.engine.begin() as conn:
        conn.execute(update(contact_t).where(contact_t.c.id == cid).values(
            display_name="Maria Bere", kecamatan="alak"))
        tid = conn.execute(insert(complaint_t), {
            "number": "ADU-2026-AAAAAA", "kind": "pengaduan", "service": "kk-baru",
            "office": "dinas", "category": "lambat", "dimension": "waktu", "urgent": False,
            "text": "Antrian lama", "text_hash": "h", "photos": [], "happened": "today",
            "identity": "named", "contact_id": cid, "display_name": "Maria Bere",
            "state": "baru", "due_on": date(2026, 11, 25), "created_at": c.at,
            "updated_at": c.at}).inserted_primary_key[0]
        conn.execute(insert(follower_t), {"complaint_id": tid, "contact_id": cid,
                                          "created_at": c.at})
        conn.execute(insert(update_t), {"complaint_id": tid, "author": "staff", "public": True,
                                        "text": "Sedang kami cek", "changes": {},
                                        "created_at": c.at})
        app_id = conn.execute(insert(application_t), {
            "reg_no": "KK-1", "service": "kk-baru", "office": "dinas", "status": "diproses",
            "verify_kind": "nik_last4", "verify_hmac": "x", "status_changed_at": c.at,
            "created_at": c.at, "updated_at": c.at}).inserted_primary_key[0]
        conn.execute(insert(subscription_t), {"application_id": app_id, "contact_id": cid,
                                              "created_at": c.at})
        bid = conn.execute(insert(broadcast_t), {
            "title": "Jemput bola", "status": "done", "text_id": "Jadwal", "buttons": [],
            "audience": {}, "cursor": 0, "queued": 1, "skipped_blocked": 0,
            "skipped_opted_out": 0, "created_at": c.at, "updated_at": c.at,
        }).inserted_primary_key[0]
        conn.execute(insert(delivery_t), {"broadcast_id": bid, "contact_id": cid,
                                          "created_at": c.at})

    for spec in ("telegram:5001", str(cid)):
        code, out, err = run("privacy", "export", spec)
        assert code == 0, err
        data = json.loads(out)
        assert data["contact"]["id"] == cid and data["contact"]["display_name"] == "Maria Bere"
        assert data["consent"]["opted_in"] is True
        assert data["consent"]["consent_at"].startswith(c.at.date().isoformat())
        assert data["conversation"]["contact_id"] == cid
        assert [m["payload"].get("text") for m in data["inbound_messages"]] == [
            None, None, "syarat kk baru"]
        assert {m["contact_id"] for m in data["inbound_messages"]} == {cid}
        assert data["outbox_messages"] and {m["contact_id"] for m in data["outbox_messages"]} \
            == {cid}
        [ticket] = data["complaints"]
        assert ticket["number"] == "ADU-2026-AAAAAA" and ticket["following"] is True
        assert [u["text"] for u in ticket["updates"]] == ["Sedang kami cek"]
        [sub] = data["application_subscriptions"]
        assert (sub["reg_no"], sub["status"]) == ("KK-1", "diproses")
        [delivery] = data["deliveries"]
        assert delivery["title"] == "Jemput bola"
        assert [t["topic"] for t in data["topics"]] == ["kk-baru"]
        assert data["tags"] == [] and data["lookup_guard"] is None
    with app.db.engine.connect() as conn:  # both exports audited, without personal data
        audits = conn.execute(select(audit_t.c.action, audit_t.c.target, audit_t.c.detail)
                              .where(audit_t.c.action == "privacy_export")).all()
    assert [(a.action, a.target) for a in audits] == [("privacy_export", f"contact:{cid}")] * 2
    assert all(set(a.detail) == {"by"} and a.detail["by"] for a in audits)


def test_unknown_and_malformed_contacts(app: Lontar, run: Run) -> None:
    code, out, err = run("privacy", "export", "telegram:404")
    assert (code, out) == (1, "") and "no contact telegram:404" in err
    code, out, err = run("privacy", "export", "someone")
    assert (code, out) == (2, "") and "channel:external_id" in err
    code, out, err = run("privacy", "export", "999")
    assert code == 1
