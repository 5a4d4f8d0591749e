"""`lontar broadcast edit ID [options]`: the options of create, only those given change (a
repeatable one replaces the stored list, --clear empties a field); a draft only; a replaced
or removed picture's file goes unless another broadcast uses it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from bot.app import Lontar
from bot.models import audit_t, contact_t
from bot.services import broadcasts
from bot.services.audience import Audience
from bot.services.staff import create_user
from tests.conftest import Run, cli_lontar
from tests.test_cli_broadcast import _create

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPG = b"\xff\xd8\xff\xe0" + b"\0" * 64


@pytest.fixture
def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Lontar]:
    """The database the commands use, with an admin and three contacts in Alak."""
    lontar: Lontar = cli_lontar(tmp_path, monkeypatch)
    now = datetime.now(UTC)
    with lontar.db.engine.begin() as conn:
        create_user(conn, "boss", "a long password", "admin")
        conn.execute(insert(contact_t), [
            {"channel": ch, "external_id": ext, "language": "id", "kecamatan": kec,
             "opted_in": True, "created_at": now}
            for ch, ext, kec in (("telegram", "101", "alak"), ("telegram", "102", "alak"),
                                 ("whatsapp", "6281200000001", "maulafa"))])
    yield lontar
    lontar.close()


def _row(app: Lontar, bid: int) -> Any:
    with app.db.engine.connect() as conn:
        return broadcasts.get(conn, bid)


def _edits(app: Lontar) -> list[Any]:
    with app.db.engine.connect() as conn:
        return [r.detail for r in conn.execute(select(audit_t).where(
            audit_t.c.action == "broadcast_edit").order_by(audit_t.c.id))]


def test_only_the_options_given_change(run: Run, app: Lontar, tmp_path: Path) -> None:
    bid = _create(run, "--text-en", "Every family needs a KK.", "--button", "kk-baru",
                  "--kecamatan", "alak", "--channel", "telegram", "--tag", "rt-05")
    code, out, err = run("broadcast", "edit", str(bid), "--text", "Setiap keluarga wajib "
                         "punya KK.")
    assert code == 0, err
    assert out.startswith(f"broadcast {bid} changed (text_id); still a draft")
    row = _row(app, bid)
    assert (row.title, row.text_id, row.text_en) == (
        "KK untuk semua", "Setiap keluarga wajib punya KK.", "Every family needs a KK.")
    assert row.buttons == ["kk-baru"] and broadcasts.audience_of(row) == Audience(
        channels=("telegram",), kecamatan=("alak",), tags=("rt-05",))

    # a repeatable option replaces its list; the other filters stay
    text = tmp_path / "kk.txt"
    text.write_text("KK baru gratis.\n", encoding="utf-8")
    code, out, err = run("broadcast", "edit", str(bid), "--title", "KK gratis", "--text-file",
                         str(text), "--button", "kk-baru", "--button", "lokasi",
                         "--kecamatan", "maulafa", "--kecamatan", "alak", "--tag", "RT-07",
                         "--open-application")
    assert code == 0, err
    assert "changed (title, text_id, buttons, audience)" in out
    row = _row(app, bid)
    assert (row.title, row.text_id, row.buttons) == ("KK gratis", "KK baru gratis.",
                                                     ["kk-baru", "lokasi"])
    assert broadcasts.audience_of(row) == Audience(
        channels=("telegram",), kecamatan=("maulafa", "alak"), tags=("rt-07",),
        open_application=True)

    # --clear empties a field, --no-open-application turns that filter off
    code, out, err = run("broadcast", "edit", str(bid), "--clear", "text-en", "--clear",
                         "button", "--clear", "tag", "--clear", "channel",
                         "--no-open-application")
    assert code == 0, err
    assert "audience now: 3 contacts (kec. Maulafa, Alak)" in out
    row = _row(app, bid)
    assert (row.text_en, row.buttons) == (None, [])
    assert broadcasts.audience_of(row) == Audience(kecamatan=("maulafa", "alak"))

    code, out, _ = run("broadcast", "edit", str(bid), "--title", "KK gratis")
    assert code == 0 and out == f"broadcast {bid}: nothing changed\n"
    assert _edits(app) == [{"changed": ["text_id"]},
                           {"changed": ["title", "text_id", "buttons", "audience"]},
                           {"changed": ["text_en", "buttons", "audience"]}]


def test_checked_like_create_and_only_a_draft(run: Run, app: Lontar) -> None:
    bid = _create(run)
    code, out, err = run("broadcast", "edit", str(bid), "--kecamatan", "atlantis",
                         "--button", "nope")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert "'nope'" in err and "atlantis" in err
    assert run("broadcast", "edit", str(bid), "--tag", "RT 5")[0] == 2
    code, _, err = run("broadcast", "edit", str(bid), "--clear", "tag", "--tag", "rt-05")
    assert code == 2 and "--clear tag" in err
    with pytest.raises(SystemExit) as wrong:  # argparse: not a field one can clear
        run("broadcast", "edit", str(bid), "--clear", "title")
    assert wrong.value.code == 2
    assert _row(app, bid).text_id == "Setiap keluarga perlu KK." and _edits(app) == []

    assert run("broadcast", "approve", str(bid), "--by", "boss")[0] == 0
    code, out, err = run("broadcast", "edit", str(bid), "--text", "Terlambat.")
    assert code == 1 and out == ""
    assert err == (f"lontar: siaran {bid} berstatus approved: hanya draf yang belum "
                   "disetujui yang bisa diubah; batalkan lalu buat lagi\n")
    code, _, err = run("broadcast", "edit", "99", "--text", "x")
    assert code == 1 and err == "lontar: siaran 99 tidak ada\n"
    assert _row(app, bid).text_id == "Setiap keluarga perlu KK." and _edits(app) == []


def test_the_picture_is_replaced_or_removed(run: Run, app: Lontar, tmp_path: Path) -> None:
    folder = app.settings.data_dir / "broadcasts"
    png, jpg = tmp_path / "poster.png", tmp_path / "poster.jpg"
    png.write_bytes(PNG)
    jpg.write_bytes(JPG)
    bid = _create(run, "--image", str(png))
    first = _row(app, bid).image
    assert {p.name for p in folder.iterdir()} == {first}

    code, out, err = run("broadcast", "edit", str(bid), "--image", str(jpg))
    assert code == 0 and "changed (image)" in out, err
    second = _row(app, bid).image
    assert second.endswith(".jpg") and {p.name for p in folder.iterdir()} == {second}

    # refused (too long for a caption): the new picture is not kept, the old one stays
    code, _, err = run("broadcast", "edit", str(bid), "--image", str(png), "--text", "x" * 950)
    assert code == 1 and "karena ada gambar" in err
    assert _row(app, bid).image == second and {p.name for p in folder.iterdir()} == {second}
    code, _, err = run("broadcast", "edit", str(bid), "--image", str(tmp_path / "none.png"))
    assert code == 2 and "none.png" in err

    # another broadcast with the same picture keeps the file when this one drops it
    with app.db.engine.begin() as conn:
        other = broadcasts.create(conn, app.content, title="t", text_id="x", image=second,
                                  now=datetime.now(UTC))
    code, out, err = run("broadcast", "edit", str(bid), "--clear", "image")
    assert code == 0 and "changed (image)" in out, err
    assert _row(app, bid).image is None and (folder / second).is_file()
    code, out, err = run("broadcast", "edit", str(other), "--clear", "image")
    assert code == 0, err
    assert not (folder / second).exists() and list(folder.iterdir()) == []

