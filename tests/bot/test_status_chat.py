"""A citizen checking and following applications through the real inbox and database:
verification, the lock-out, enumeration safety, per-chat rate limit, following and stopping,
and NIKs typed in a chat never stored or logged in plain text."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.app import Lontar
from bot.inbox import Inbound
from bot.models import contact_t, guard_t, inbound_t, outbox_t, subscription_t
from bot.services import applications
from bot.services.application_import import run
from tests import dbdump

TODAY = date(2026, 11, 21)
NIK_M = "5371011203900001"  # born 12-03-1990, man
HEADER = "nomor_registrasi,layanan,kantor,status,alasan,nik,tanggal_lahir\n"
ROWS = (f"KK-2026-0001,kk-baru,dinas,siap-diambil,,{NIK_M},1990-03-12\n"
        f"KTP-2026-0002,ktp-baru,dinas,diproses,,{NIK_M},\n")


@pytest.fixture
def loaded(lontar: Lontar, tmp_path: Path) -> Lontar:
    path = tmp_path / "a.csv"
    path.write_text(HEADER + ROWS, encoding="utf-8")
    report = run(lontar.db.engine, path, lontar.content, lontar.settings.secret_key, TODAY)
    assert report.errors == []
    return lontar


class Chat:
    """One web-chat citizen; `say`/`press` return the replies of that turn."""

    def __init__(self, lontar: Lontar, who: str):
        self.lontar, self.who, self.n = lontar, who, 0

    async def _send(self, kind: str, payload: dict[str, Any]) -> list[dict[str, Any]]:
        self.n += 1
        before = self._last_id()
        await self.lontar.inbox.handle(Inbound("web", self.who, f"{self.who}-{self.n}", kind,
                                               payload))
        with self.lontar.db.engine.connect() as conn:
            rows = conn.execute(select(outbox_t.c.payload).where(
                outbox_t.c.id > before, outbox_t.c.contact_id == self.contact_id())
                .order_by(outbox_t.c.id)).scalars().all()
        return list(rows)

    async def say(self, text: str) -> str:
        return "\n".join(r["text"] for r in await self._send("text", {"text": text}))

    async def press(self, target: str) -> str:
        """Press the live button with this target (or a `go:` link)."""
        if not target.startswith("go:"):
            last = self.last_options()
            target = next(o for o in last if o.partition("|")[2] == target)
        return "\n".join(r["text"] for r in await self._send("choice", {"payload": target}))

    def last_options(self) -> list[str]:
        with self.lontar.db.engine.connect() as conn:
            rows = conn.execute(select(outbox_t.c.payload).where(
                outbox_t.c.contact_id == self.contact_id()).order_by(outbox_t.c.id.desc())
            ).scalars().all()
        return next([o["id"] for o in r["options"]] for r in rows if r.get("options"))

    def contact_id(self) -> int:
        with self.lontar.db.engine.connect() as conn:
            found = conn.execute(select(contact_t.c.id).where(
                contact_t.c.external_id == self.who)).scalar()
        return int(found or 0)

    def _last_id(self) -> int:
        with self.lontar.db.engine.connect() as conn:
            return int(conn.execute(select(outbox_t.c.id).order_by(outbox_t.c.id.desc())
                                    .limit(1)).scalar() or 0)


async def _verify(chat: Chat, number: str, answer: str) -> str:
    await chat.say("cek status")
    await chat.say(number)
    return await chat.say(answer)


async def test_check_follow_list_and_stop(loaded: Lontar) -> None:
    chat = Chat(loaded, "warga-1")
    await chat.say("halo")
    asked = await chat.say("cek status")
    assert "nomor registrasi" in asked  # nothing followed yet: straight to the number
    assert "tanggal lahir" in await chat.say("kk-2026-0001")
    shown = await chat.say("12/03/1990")
    assert "KK-2026-0001: Siap diambil" in shown and "Ambil di" in shown
    assert "p:sub:KK-2026-0001" in " ".join(chat.last_options())
    assert "memberi tahu" in await chat.press("p:sub:KK-2026-0001")
    # the second application, verified by the NIK's last four digits, from one sentence
    await chat.say("cek status KTP-2026-0002 sudah jadi belum")
    assert "Diproses" in await chat.say("0001")
    await chat.press("p:sub:KTP-2026-0002")
    listed = await chat.say("/status")
    assert "KK-2026-0001: Siap diambil" in listed and "KTP-2026-0002: Diproses" in listed
    assert "dihentikan" in await chat.press("p:stop:KK-2026-0001")
    with loaded.db.engine.connect() as conn:
        subs = conn.execute(select(subscription_t.c.stopped_at)
                            .order_by(subscription_t.c.application_id)).scalars().all()
    assert [s is not None for s in subs] == [True, False]
    # a status change now reaches only the application still followed, once
    before = chat._last_id()
    with loaded.db.engine.begin() as conn:
        for number in ("KK-2026-0001", "KTP-2026-0002"):
            applications.change_status(conn, number, "siap-diambil" if "KTP" in number
                                       else "diambil", None, loaded.content, source="dashboard")
    pushed = _payloads(loaded, chat, after=before)
    assert len(pushed) == 1 and pushed[0]["text"].startswith("Permohonan KTP-2026-0002: Siap")
    assert "go:p:stop:KTP-2026-0002" in [o["id"] for o in pushed[0]["options"]]
    # the notification's stop link works from any screen
    assert "dihentikan" in await chat.press("go:p:stop:KTP-2026-0002")


def _payloads(lontar: Lontar, chat: Chat, after: int) -> list[dict[str, Any]]:
    with lontar.db.engine.connect() as conn:
        return list(conn.execute(select(outbox_t.c.payload).where(
            outbox_t.c.contact_id == chat.contact_id(), outbox_t.c.id > after)
            .order_by(outbox_t.c.id)).scalars())


async def test_unknown_and_wrong_answer_read_alike(loaded: Lontar) -> None:
    a, b = Chat(loaded, "penebak-a"), Chat(loaded, "penebak-b")
    wrong = await _verify(a, "KK-2026-0001", "01-01-1991")  # exists, wrong birth date
    unknown = await _verify(b, "KK-2026-9999", "01-01-1991")  # does not exist
    assert wrong == unknown and "tidak cocok" in wrong and "Sisa percobaan: 4" in wrong
    # the other kind of answer than staff set is wrong in the same words
    assert (await _verify(a, "KK-2026-0001", "0001")).replace("3", "4") == unknown


async def test_five_failures_lock_then_the_lock_ends(loaded: Lontar) -> None:
    chat = Chat(loaded, "penebak")
    for i in range(4):
        assert "tidak cocok" in await _verify(chat, f"KK-2026-000{i + 5}", "01-01-1991")
    locked = await _verify(chat, "KK-2026-0001", "02-02-1992")
    assert "dikunci selama 60 menit" in locked
    # even the right answer is refused while locked, and reveals nothing
    assert "dikunci" in await _verify(chat, "KK-2026-0001", "12-03-1990")
    with loaded.db.engine.begin() as conn:  # an hour later
        conn.execute(update(guard_t).values(locked_until=datetime.now(UTC) - timedelta(1)))
    assert "Siap diambil" in await _verify(chat, "KK-2026-0001", "12-03-1990")
    other = Chat(loaded, "orang-lain")  # the lock was per chat
    assert "Siap diambil" in await _verify(other, "KK-2026-0001", "12-03-1990")


async def test_lookups_per_hour_are_limited(loaded: Lontar) -> None:
    chat = Chat(loaded, "rajin")
    limit = loaded.content.applications.lookups_per_hour  # type: ignore[union-attr]
    for _ in range(limit):
        assert "Siap diambil" in await _verify(chat, "KK-2026-0001", "12-03-1990")
    assert "terlalu sering" in await _verify(chat, "KK-2026-0001", "12-03-1990")
    with loaded.db.engine.begin() as conn:
        conn.execute(update(guard_t).values(
            window_start=datetime.now(UTC) - timedelta(hours=1, seconds=1)))
    assert "Siap diambil" in await _verify(chat, "KK-2026-0001", "12-03-1990")


async def test_a_forged_follow_link_follows_nothing(loaded: Lontar) -> None:
    chat = Chat(loaded, "pemalsu")
    answer = await chat.press("go:p:sub:KK-2026-0001")  # never verified in this chat
    assert "tanggal lahir" in answer
    with loaded.db.engine.connect() as conn:
        assert conn.execute(select(subscription_t)).first() is None


async def test_typed_nik_and_answers_are_not_kept(loaded: Lontar,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    chat = Chat(loaded, "warga-nik")
    await chat.say(f"nik saya {NIK_M} mau tanya ktp")
    shown = await _verify(chat, "KK-2026-0001", NIK_M[:4] + " " + NIK_M[4:])  # whole NIK
    assert "tidak cocok" in shown  # staff set the birth date for this one
    shown = await _verify(chat, "KTP-2026-0002", NIK_M)
    assert "Diproses" in shown
    dump = dbdump.dump(loaded.db.engine)
    assert NIK_M not in dump and NIK_M[4:] not in dump
    assert NIK_M not in caplog.text
    with loaded.db.engine.connect() as conn:
        texts = [p.get("text") for p in conn.execute(select(inbound_t.c.payload)).scalars()]
    assert "nik saya 5371********0001 mau tanya ktp" in texts
    assert texts.count("[jawaban verifikasi]") == 2  # the answers themselves are not kept


async def test_english_and_bad_input(loaded: Lontar) -> None:
    chat = Chat(loaded, "en")
    await chat.say("english")
    await chat.press("lang:en")
    await chat.say("check status")
    assert "registration number" in await chat.say("!!")  # nothing readable
    assert "registration number" in await chat.say("my number is")
    await chat.say("KK-2026-0001")
    assert "could not read" in await chat.say("maret")
    assert "Ready to collect" in await chat.say("1990-03-12")
