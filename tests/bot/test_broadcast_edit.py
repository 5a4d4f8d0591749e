"""Editing a broadcast draft (bot/services/broadcasts.py `update_draft`): checked exactly as a
new draft, refused once approved (what an admin approved is what goes out), recorded in the
audit log by field name, and an approval from a page drawn before an edit is refused."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select

from bot.app import Lontar
from bot.models import audit_t, broadcast_t, contact_t
from bot.services import broadcasts
from bot.services.audience import Audience
from bot.services.broadcasts import BroadcastError
from bot.services.staff import create_user

NOW = datetime.now(UTC).replace(microsecond=0)
TEXT = "Perekaman KTP-el keliling Sabtu pukul 08.00."
FIELDS: dict[str, Any] = {"title": "Jemput bola", "text_id": TEXT, "text_en": None,
                          "buttons": ["ktp-baru"], "audience": Audience(), "image": None}


def _run(app: Lontar, fn: Any) -> Any:
    with app.db.engine.begin() as conn:
        return fn(conn)


def _create(app: Lontar, **over: Any) -> int:
    return int(_run(app, lambda conn: broadcasts.create(conn, app.content, now=NOW,
                                                         **FIELDS | over)))


def _edit(app: Lontar, bid: int, staff_id: int | None = None, at: datetime = NOW,
          **over: Any) -> broadcasts.Edit:
    return _run(app, lambda conn: broadcasts.update_draft(  # type: ignore[no-any-return]
        conn, app.content, bid, staff_id=staff_id, now=at, ip="10.0.0.9", **FIELDS | over))


def _row(app: Lontar, bid: int) -> Any:
    return _run(app, lambda conn: broadcasts.get(conn, bid))


def _audits(app: Lontar) -> list[Any]:
    with app.db.engine.connect() as conn:
        return list(conn.execute(select(audit_t).where(audit_t.c.action == "broadcast_edit")
                                 .order_by(audit_t.c.id)))


def test_a_draft_is_corrected_in_place_and_the_edit_audited(lontar: Lontar) -> None:
    sari = _run(lontar, lambda conn: create_user(conn, "sari", "kata-sandi-panjang", "staff"))
    bid = _create(lontar, image="a" * 32 + ".png")
    before = _row(lontar, bid)
    later = NOW + timedelta(minutes=3)
    done = _edit(lontar, bid, sari, later, title=" Jemput bola Alak ",
                 text_id="Perekaman KTP-el keliling Minggu pukul 08.00. ",
                 text_en="Mobile KTP-el recording on Sunday.", buttons=["kk-baru", "lokasi"],
                 audience=Audience(channels=("telegram",), kecamatan=("alak",)), image=None)
    assert done.changed == ("title", "text_id", "text_en", "image", "buttons", "audience")
    assert done.dropped_image == "a" * 32 + ".png"
    row = _row(lontar, bid)
    assert (row.id, row.status, row.title) == (bid, "draft", "Jemput bola Alak")
    assert row.text_id == "Perekaman KTP-el keliling Minggu pukul 08.00."  # stripped as create
    assert row.text_en == "Mobile KTP-el recording on Sunday."
    assert (row.buttons, row.image) == (["kk-baru", "lokasi"], None)
    assert broadcasts.audience_of(row) == Audience(channels=("telegram",), kecamatan=("alak",))
    assert row.updated_at == later and row.created_at == before.created_at
    assert row.approved_at is None and _count(lontar) == 1
    [entry] = _audits(lontar)
    assert (entry.staff_id, entry.target, entry.ip) == (sari, str(bid), "10.0.0.9")
    assert entry.detail == {"changed": ["title", "text_id", "text_en", "image", "buttons",
                                        "audience"]}
    assert "Minggu" not in repr(entry.detail)  # field names, never the text
    # the same values again: nothing to record
    same = _edit(lontar, bid, sari, later + timedelta(minutes=1), title="Jemput bola Alak",
                 text_id=row.text_id, text_en=row.text_en, buttons=row.buttons,
                 audience=broadcasts.audience_of(row), image=None)
    assert same == broadcasts.Edit((), None)
    assert _row(lontar, bid).updated_at == later and len(_audits(lontar)) == 1


def _count(app: Lontar) -> int:
    with app.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(broadcast_t)).scalar_one())


@pytest.mark.parametrize("over", [
    {"title": ""}, {"title": "x" * 121}, {"text_id": "  "}, {"text_id": "x" * 1001},
    {"text_en": "x" * 1001}, {"text_id": "x" * 950, "image": "b" * 32 + ".jpg"},
    {"buttons": ["kk-baru", "ktp-baru", "kia", "akta-kelahiran"]}, {"buttons": ["tidak-ada"]},
    {"audience": Audience(kecamatan=("atlantis",))}, {"audience": Audience(services=("x",))},
])
def test_an_edit_is_checked_exactly_as_a_new_draft(lontar: Lontar, over: dict[str, Any]
                                                   ) -> None:
    with pytest.raises(BroadcastError) as refused_new:
        _create(lontar, **over)
    bid = _create(lontar)
    with pytest.raises(BroadcastError) as refused_edit:
        _edit(lontar, bid, **over)
    assert str(refused_edit.value) == str(refused_new.value)
    row = _row(lontar, bid)
    assert (row.title, row.text_id, row.buttons, row.updated_at) == (
        "Jemput bola", TEXT, ["ktp-baru"], NOW)
    assert _audits(lontar) == []


def test_only_a_draft_not_yet_approved_can_be_edited(lontar: Lontar) -> None:
    with lontar.db.engine.begin() as conn:
        conn.execute(insert(contact_t), {"channel": "telegram", "external_id": "1",
                                         "language": "id", "opted_in": True,
                                         "created_at": NOW})
    approved, scheduled, cancelled = _create(lontar), _create(lontar), _create(lontar)
    for bid in (approved, scheduled):
        _run(lontar, lambda conn, b=bid: broadcasts.approve(conn, b, None, NOW))
    _run(lontar, lambda conn: broadcasts.schedule(conn, lontar.content, scheduled, NOW))
    _run(lontar, lambda conn: broadcasts.cancel(conn, cancelled, NOW))
    for bid, status in ((approved, "approved"), (scheduled, "scheduled"),
                        (cancelled, "cancelled")):
        with pytest.raises(BroadcastError, match=f"berstatus {status}: hanya draf"):
            _edit(lontar, bid, text_id="Diubah setelah disetujui.")
        assert _row(lontar, bid).text_id == TEXT
    with pytest.raises(BroadcastError, match="tidak ada"):
        _edit(lontar, 99)
    assert _audits(lontar) == []


def test_an_approval_from_a_page_drawn_before_an_edit_is_refused(lontar: Lontar) -> None:
    bid = _create(lontar)
    seen = _row(lontar, bid).updated_at  # what the admin's page showed
    _edit(lontar, bid, at=NOW + timedelta(seconds=30), text_id="Teks yang belum dibaca admin.")
    with pytest.raises(BroadcastError, match="baru saja diubah"):
        _run(lontar, lambda conn: broadcasts.approve(conn, bid, None, NOW, seen))
    assert _row(lontar, bid).status == "draft"
    fresh = _row(lontar, bid).updated_at
    _run(lontar, lambda conn: broadcasts.approve(conn, bid, None, NOW, fresh))
    assert _row(lontar, bid).status == "approved"

