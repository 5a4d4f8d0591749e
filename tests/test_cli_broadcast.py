"""`lontar broadcast …` and `lontar contacts …` as the operator runs them on the server.

The commands run in-process (`bot.cli.main`) on a fresh data directory; the sending the
server would do is played by `broadcasts.tick` and marking outbox rows sent, so progress,
reports and `--follow` are checked against what the database really holds.
"""

from __future__ import annotations

import csv
import io
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import Engine, insert, select, update

from bot import broadcast_cli
from bot.app import Lontar
from bot.models import broadcast_t, contact_t, outbox_t, tag_t
from bot.outbox import HELD, PENDING, SENT
from bot.services import broadcasts
from bot.services.staff import create_user
from tests.conftest import Run, cli_lontar
from tests.procs import ROOT, env_for, lontar_cmd

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lontar]:
    """The database the commands use, with an admin, a staff member and six contacts."""
    lontar: Lontar = cli_lontar(tmp_path, monkeypatch)
    now = datetime.now(UTC)
    with lontar.db.engine.begin() as conn:
        create_user(conn, "boss", "a long password", "admin")
        create_user(conn, "ana", "a long password", "staff")
        conn.execute(insert(contact_t), [
            {"channel": ch, "external_id": ext, "language": lang, "kecamatan": "alak",
             "opted_in": opted_in, "created_at": now}
            for ch, ext, lang, opted_in in (
                ("telegram", "101", "id", True), ("telegram", "102", "en", True),
                ("telegram", "103", "id", True), ("whatsapp", "6281200000001", "id", True),
                ("whatsapp", "6281200000002", "id", True), ("telegram", "104", "id", False))])
    yield lontar
    lontar.close()


def _create(run: Run, *extra: str) -> int:
    code, out, err = run("broadcast", "create", "--title", "KK untuk semua", "--text",
                         "Setiap keluarga perlu KK.", *extra)
    assert code == 0, err
    assert "draft: needs approval by an admin" in out
    return int(out.split()[1])


def _sending(run: Run, app: Lontar, *extra: str) -> int:
    """A broadcast approved, sent, and its recipients queued by the scheduler's tick."""
    bid = _create(run, *extra)
    assert run("broadcast", "approve", str(bid), "--by", "boss")[0] == 0
    assert run("broadcast", "send", str(bid))[0] == 0
    with app.db.engine.begin() as conn:
        broadcasts.tick(conn, app.content, datetime.now(UTC))
    return bid


def _deliver(engine: Engine, bid: int, limit: int | None = None) -> None:
    """What the server's sender does: pending rows become sent."""
    with engine.begin() as conn:
        ids = conn.execute(select(outbox_t.c.id).where(
            outbox_t.c.broadcast_id == bid, outbox_t.c.status == PENDING)
            .order_by(outbox_t.c.id).limit(limit)).scalars().all()
        conn.execute(update(outbox_t).where(outbox_t.c.id.in_(ids))
                     .values(status=SENT, sent_at=datetime.now(UTC)))


def test_create_approve_send_show(run: Run, app: Lontar) -> None:
    code, out, _ = run("broadcast", "create", "--title", "KK untuk semua", "--text",
                       "Setiap keluarga perlu KK.", "--kecamatan", "alak", "--button", "kk-baru")
    assert code == 0
    assert "audience now: 5 contacts (kec. Alak)" in out
    bid = int(out.split()[1])
    code, out, _ = run("broadcast", "list")
    assert code == 0 and "draft" in out and "KK untuk semua" in out

    code, _, err = run("broadcast", "send", str(bid))
    assert code == 1 and "belum disetujui" in err
    code, _, err = run("broadcast", "approve", str(bid), "--by", "ana")
    assert code == 2 and err == "lontar: user 'ana' is staff: only an admin may approve\n"
    assert run("broadcast", "approve", str(bid), "--by", "nobody")[0] == 2
    code, out, _ = run("broadcast", "approve", str(bid), "--by", "Boss")
    assert code == 0 and "approved by boss" in out
    with app.db.engine.connect() as conn:
        row = conn.execute(select(broadcast_t).where(broadcast_t.c.id == bid)).one()
    assert row.status == "approved" and row.approved_by is not None
    code, _, err = run("broadcast", "approve", str(bid), "--by", "boss")
    assert code == 1 and "berstatus approved" in err

    code, _, err = run("broadcast", "send", str(bid), "--at", "2020-01-01 08:00")
    assert code == 1 and "sudah lewat" in err
    code, _, err = run("broadcast", "send", str(bid), "--at", "besok pagi")
    assert code == 2 and "YYYY-MM-DD HH:MM" in err
    later = (datetime.now(UTC) + timedelta(days=1)).astimezone(
        ZoneInfo(app.settings.timezone)).strftime(broadcast_cli.AT_FORMAT)
    code, out, _ = run("broadcast", "send", str(bid), "--at", later)
    assert code == 0 and f"scheduled for {later} WITA: 5 recipients" in out

    code, out, _ = run("broadcast", "show", str(bid))
    assert code == 0
    assert "status:    scheduled" in out and "WITA by boss" in out
    assert "size now:  5 contacts (planned 5 when scheduled)" in out
    assert "buttons:   kk-baru" in out and "0 sent, 0 waiting" in out


def test_progress_pause_resume_cancel(run: Run, app: Lontar) -> None:
    bid = _sending(run, app)
    _deliver(app.db.engine, bid, limit=2)
    code, out, _ = run("broadcast", "show", str(bid))
    assert code == 0 and "status:    sending" in out and "2 sent, 3 waiting" in out

    code, out, _ = run("broadcast", "pause", str(bid))
    assert code == 0 and "3 queued messages held" in out
    with app.db.engine.connect() as conn:
        held = conn.execute(select(outbox_t.c.id).where(outbox_t.c.status == HELD)).all()
    assert len(held) == 3
    assert run("broadcast", "pause", str(bid))[0] == 1
    code, out, _ = run("broadcast", "resume", str(bid))
    assert code == 0 and "3 held messages queued again" in out
    code, out, _ = run("broadcast", "cancel", str(bid))
    assert code == 0 and "3 queued messages will not be sent" in out
    code, _, err = run("broadcast", "resume", str(bid))
    assert code == 1 and "berstatus cancelled" in err and "Traceback" not in err


@pytest.mark.parametrize("action", ["show", "approve", "send", "pause", "resume", "cancel",
                                    "test", "report"])
def test_unknown_id_is_one_line(run: Run, action: str) -> None:
    extra = {"approve": ["--by", "boss"], "test": ["--telegram", "5"]}.get(action, [])
    code, out, err = run("broadcast", action, "99", *extra)
    assert code == 1 and out == "" and err == "lontar: siaran 99 tidak ada\n"


def test_real_command_prints_no_traceback(tmp_path: Path) -> None:
    r = subprocess.run(lontar_cmd("broadcast", "show", "7"), cwd=ROOT, env=env_for(tmp_path),
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and r.stderr == "lontar: siaran 7 tidak ada\n"


def test_validation_problems_from_the_service(run: Run) -> None:
    code, _, err = run("broadcast", "create", "--title", "x", "--text", "y", "--kecamatan",
                       "atlantis", "--button", "nope")
    assert code == 1
    assert err.count("\n") == 1 and "'nope'" in err and "atlantis" in err
    assert run("broadcast", "create", "--title", "x", "--text", "y", "--tag", "RT 5")[0] == 2


def test_image_is_checked_and_copied(run: Run, app: Lontar, tmp_path: Path) -> None:
    folder = app.settings.data_dir / "broadcasts"
    fake = tmp_path / "poster.png"
    fake.write_bytes(b"GIF89a" + b"\0" * 64)
    code, _, err = run("broadcast", "create", "--title", "t", "--text", "x", "--image",
                       str(fake))
    assert code == 2 and "not a JPEG or PNG" in err
    big = tmp_path / "big.png"
    big.write_bytes(PNG + b"\0" * (5 * 1024 * 1024))
    code, _, err = run("broadcast", "create", "--title", "t", "--text", "x", "--image",
                       str(big))
    assert code == 2 and "at most 5 MB" in err
    code, _, err = run("broadcast", "create", "--title", "t", "--text", "x", "--image",
                       str(tmp_path / "missing.jpg"))
    assert code == 2 and "missing.jpg" in err
    good = tmp_path / "poster.jpg.png"
    good.write_bytes(PNG)
    code, _, err = run("broadcast", "create", "--title", "t", "--text", "x" * 950, "--image",
                       str(good))
    assert code == 1 and "karena ada gambar" in err
    assert not folder.exists() or not list(folder.iterdir())  # a refused draft leaves none

    bid = _create(run, "--image", str(good))
    files = list(folder.iterdir())
    assert len(files) == 1 and files[0].suffix == ".png" and files[0].read_bytes() == PNG
    with app.db.engine.connect() as conn:
        assert broadcasts.get(conn, bid).image == files[0].name
    assert str(files[0]) in run("broadcast", "show", str(bid))[1]


def test_tags_narrow_the_audience(run: Run, app: Lontar, tmp_path: Path) -> None:
    bid = _create(run, "--tag", "rt-05")
    assert "size now:  0 contacts" in run("broadcast", "show", str(bid))[1]

    code, out, err = run("contacts", "tag", "RT-05", "--channel", "telegram", "--id", "101",
                         "102", "999")
    assert code == 0 and out == "tag rt-05: 2 contacts tagged, 1 unknown\n"
    assert "not a known contact: 999" in err
    ids = tmp_path / "ids.csv"
    ids.write_text("channel,external_id\nwhatsapp;0812-0000-0001\n101,telegram\n\n# done\n",
                   encoding="utf-8")
    code, out, _ = run("contacts", "tag", "rt-05", "--file", str(ids))
    assert code == 0 and out == "tag rt-05: 1 contacts tagged, 1 had it already\n"
    assert "size now:  3 contacts" in run("broadcast", "show", str(bid))[1]

    code, out, _ = run("contacts", "untag", "rt-05", "--channel", "telegram", "--id", "102")
    assert code == 0 and "1 contacts untagged" in out
    assert "size now:  2 contacts" in run("broadcast", "show", str(bid))[1]
    run("contacts", "tag", "sekolah-sd1", "--channel", "telegram", "--id", "104")
    code, out, _ = run("contacts", "tags")
    assert code == 0
    assert [line.split() for line in out.splitlines()[1:]] == [
        ["rt-05", "2", "2"], ["sekolah-sd1", "1", "0"]]

    code, out, _ = run("contacts", "untag", "rt-05", "--all")
    assert code == 0 and "taken from 2 contacts" in out
    with app.db.engine.connect() as conn:
        assert conn.execute(select(tag_t.c.tag)).scalars().all() == ["sekolah-sd1"]


def test_tag_refuses_bad_input_and_writes_nothing(run: Run, app: Lontar,
                                                  tmp_path: Path) -> None:
    assert run("contacts", "tag", "rt 05", "--channel", "telegram", "--id", "101")[0] == 2
    code, _, err = run("contacts", "tag", "rt-05", "--id", "101")
    assert code == 2 and "--channel" in err
    bad = tmp_path / "ids.csv"
    (tmp_path / "latin1.txt").write_bytes("Teks untuk warga\xa0".encode("latin-1"))
    code, _, err = run("broadcast", "create", "--title", "t", "--text-file",
                       str(tmp_path / "latin1.txt"))
    assert code == 2 and "not UTF-8 text" in err
    bad.write_text("101\nsms,555\n", encoding="utf-8")
    code, _, err = run("contacts", "tag", "rt-05", "--file", str(bad), "--channel", "telegram")
    assert code == 2 and err == "lontar: ids.csv: line 2: expected an id (with --channel) or " \
                                "channel,id\n"
    code, _, _ = run("contacts", "tag", "rt-05", "--channel", "whatsapp", "--id", "628999999999")
    assert code == 1  # nobody known
    with app.db.engine.connect() as conn:
        assert conn.execute(select(tag_t)).all() == []


def test_report_counts_and_csv(run: Run, app: Lontar, tmp_path: Path) -> None:
    bid = _sending(run, app)
    _deliver(app.db.engine, bid, limit=4)
    out_file = tmp_path / "report.csv"
    code, out, _ = run("broadcast", "report", str(bid), "--csv", str(out_file))
    assert code == 0
    lines = [line.split() for line in out.splitlines()]
    assert ["sent", "4"] in lines and ["waiting", "1"] in lines
    assert "opted out or blocked within 72 h after: 0 (0.0% of sent)" in out
    assert "5 recipients written" in out
    with open(out_file, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 5 and list(rows[0]) == list(broadcast_cli.REPORT_FIELDS)
    assert sorted(r["outcome"] for r in rows) == ["pending"] + ["sent"] * 4
    assert all(r["sent_at"] for r in rows if r["outcome"] == "sent")
    code, _, err = run("broadcast", "report", str(bid), "--csv", str(tmp_path / "no" / "x"))
    assert code == 2 and "No such file" in err


def test_test_send_queues_one_message(run: Run, app: Lontar) -> None:
    bid = _create(run)
    code, out, err = run("broadcast", "test", str(bid), "--whatsapp", "+62 812-0000-0009")
    assert code == 0 and "queued for whatsapp 6281200000009" in out
    assert "not configured" in err
    assert run("broadcast", "test", str(bid), "--telegram", "@ana")[0] == 2
    with app.db.engine.connect() as conn:
        rows = conn.execute(select(outbox_t)).all()
    assert len(rows) == 1 and rows[0].broadcast_id is None
    assert rows[0].payload["text"].startswith("Setiap keluarga perlu KK.")


class FakeTime:
    """A clock that moves one second per sleep; `each` plays the server in between."""

    def __init__(self, each: Callable[[], None] = lambda: None, stop_after: int = 1000):
        self.t, self.calls, self.each, self.stop_after = 0.0, 0, each, stop_after

    def sleep(self, seconds: float) -> None:
        self.calls += 1
        if self.calls > self.stop_after:
            raise KeyboardInterrupt
        self.t += seconds
        self.each()

    def clock(self) -> float:
        return self.t


def _follow(app: Lontar, bid: int, fake: FakeTime, tty: bool) -> tuple[int, str]:
    out = io.StringIO()
    code = broadcast_cli.follow(app.db.engine, bid, timezone=app.settings.timezone, out=out,
                                tty=tty, sleep=fake.sleep, clock=fake.clock)
    return code, out.getvalue()


@pytest.mark.parametrize("tty", [False, True])
def test_follow_until_done(run: Run, app: Lontar, tty: bool,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    bid = _sending(run, app)

    def server() -> None:  # one message a second, then the tick that finishes it
        _deliver(app.db.engine, bid, limit=1)
        with app.db.engine.begin() as conn:
            broadcasts.tick(conn, app.content, datetime.now(UTC))

    fake = FakeTime(server)
    code, out = _follow(app, bid, fake, tty)
    assert code == 0 and fake.calls == 5
    assert "0/5 sent" in out and "5/5 sent" in out and "100%" in out
    assert tty or "failed 0  blocked 0  opted out 0  (done)" in out  # a terminal cuts it
    assert out.endswith(f"broadcast {bid} done (lontar broadcast report {bid})\n")
    if tty:
        assert out.count("\r") == 6 and "\n" not in out.split("\r")[3]
        assert all(len(line) < 80 for line in out.replace("\r", "\n").splitlines())
    else:
        assert "\r" not in out and len(out.splitlines()) == 3  # first, last, and the end


def test_follow_hints_at_a_stopped_server_and_ctrl_c(run: Run, app: Lontar) -> None:
    bid = _sending(run, app)
    fake = FakeTime(stop_after=40)
    code, out = _follow(app, bid, fake, tty=False)
    assert code == 0
    assert out.count("is the server (lontar) running?") == 1
    assert len([line for line in out.splitlines() if "sent" in line]) == 8 + 1  # every 5 s
    assert out.endswith(f"stopped following; broadcast {bid} goes on "
                        f"(lontar broadcast show {bid} --follow)\n")
    with app.db.engine.connect() as conn:
        assert broadcasts.get(conn, bid).status == "sending"  # following stopped, not it


def test_show_follow_returns_when_nothing_moves(run: Run, app: Lontar) -> None:
    bid = _create(run)
    code, out, _ = run("broadcast", "show", str(bid), "--follow")
    assert code == 0 and "draft: not scheduled, nothing to follow" in out
    run("broadcast", "approve", str(bid), "--by", "boss")
    run("broadcast", "cancel", str(bid))
    code, out, _ = run("broadcast", "show", str(bid), "--follow")
    assert code == 0 and out.endswith(f"broadcast {bid} cancelled\n")


def test_helpers() -> None:
    assert broadcast_cli.wa_number("0812-3456-7890") == "6281234567890"
    assert broadcast_cli.wa_number("+62 812 3456 7890") == "6281234567890"
    with pytest.raises(broadcast_cli.UsageError):
        broadcast_cli.wa_number("call me")
    at = broadcast_cli.parse_at("2026-03-02 09:00", "Asia/Makassar")
    assert at == datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
    p = broadcasts.Progress(status="sending", planned=1000, queued=600, sent=400, failed=1,
                            blocked=2, opted_out=3, unsendable=0, unconfirmed=0, waiting=200,
                            cancelled=0, opt_outs_after=0, rate_per_minute=1500.0,
                            eta_seconds=125.0)
    line = broadcast_cli.progress_line(p, None, datetime.now(UTC), "Asia/Makassar")
    assert line.startswith("[########------------]  40%  400/1000 sent  25.0/s  ETA 2m05s")
    assert line.endswith("failed 1  blocked 2  opted out 3  (sending)")
