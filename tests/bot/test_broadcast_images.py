"""Broadcast pictures no broadcast uses (bot/services/broadcast_images.py): the daily sweep
deletes those a day old, keeps every picture a broadcast row names whatever its status, and
runs from the retention job, which a failing sweep does not stop."""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.app import Lontar
from bot.jobs import purge_personal_data
from bot.services import broadcast_images as images
from bot.services import broadcasts

PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPG = b"\xff\xd8\xff\xe0" + b"\0" * 64
NOW = datetime.now(UTC)


def _picture(folder: Path, age: timedelta, data: bytes = PNG) -> str:
    name = images.save(folder, data)
    when = (NOW - age).timestamp()
    os.utime(folder / name, (when, when))
    return name


def _draft(app: Lontar, image: str | None) -> int:
    with app.db.engine.begin() as conn:
        return broadcasts.create(conn, app.content, title="KK", text_id="Setiap keluarga "
                                 "perlu KK.", image=image, now=NOW)


def _left(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()}


def test_the_sweep_deletes_only_old_pictures_nobody_uses(lontar: Lontar) -> None:
    folder = images.folder(lontar.settings.data_dir)
    day = timedelta(hours=24, minutes=1)
    orphan, orphan_jpg = _picture(folder, day), _picture(folder, timedelta(days=30), JPG)
    fresh = _picture(folder, timedelta(hours=23))  # perhaps on a form being composed
    draft, done, cancelled = (_picture(folder, timedelta(days=90)) for _ in range(3))
    for name in (draft, done, cancelled):
        _draft(lontar, name)
    with lontar.db.engine.begin() as conn:
        broadcasts.cancel(conn, 3, NOW)
        broadcasts.approve(conn, 2, None, NOW)
        broadcasts.schedule(conn, lontar.content, 2, NOW)
        broadcasts.tick(conn, lontar.content, NOW)
        broadcasts.tick(conn, lontar.content, NOW)  # nobody to send to: done
        assert broadcasts.get(conn, 2).status == "done"
    foreign = folder / "README.txt"  # not a name Lontar made: never touched
    foreign.write_text("jangan dihapus")
    old = (NOW - timedelta(days=9)).timestamp()
    os.utime(foreign, (old, old))
    (folder / ("c" * 32 + ".png")).mkdir()  # a folder with a picture's name: left alone
    with lontar.db.engine.begin() as conn:
        assert images.sweep(conn, folder, NOW) == 2
    assert _left(folder) == {fresh, draft, done, cancelled, "README.txt", "c" * 32 + ".png"}
    with lontar.db.engine.begin() as conn:
        assert images.sweep(conn, folder, NOW) == 0
        assert images.sweep(conn, folder, NOW + timedelta(hours=2)) == 1  # now a day old
        assert images.sweep(conn, folder / "none", NOW) == 0  # no folder yet
    assert orphan not in _left(folder) and orphan_jpg not in _left(folder)
    assert fresh not in _left(folder)


def test_a_picture_is_removed_at_once_only_when_no_broadcast_uses_it(lontar: Lontar) -> None:
    folder = images.folder(lontar.settings.data_dir)
    shared, own = _picture(folder, timedelta(0)), _picture(folder, timedelta(0))
    _draft(lontar, shared)
    _draft(lontar, shared)
    with lontar.db.engine.begin() as conn:
        assert not images.remove_unused(conn, folder, shared)
        assert images.remove_unused(conn, folder, own)
        assert not images.remove_unused(conn, folder, own)  # gone already
        assert not images.remove_unused(conn, folder, "../lontar.db")
        assert not images.remove_unused(conn, folder, None)
    assert _left(folder) == {shared}


async def test_the_retention_job_sweeps_and_logs(lontar: Lontar,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    folder = images.folder(lontar.settings.data_dir)
    kept = _picture(folder, timedelta(days=3))
    _draft(lontar, kept)
    orphan = _picture(folder, timedelta(days=2))
    with caplog.at_level(logging.INFO, logger="bot.jobs"):
        assert await purge_personal_data(lontar, NOW) == (0, 0)
    assert _left(folder) == {kept} and orphan not in _left(folder)
    assert "1 unused broadcast pictures deleted" in caplog.text


async def test_a_failing_sweep_does_not_stop_the_job(lontar: Lontar,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    """The broadcast table cannot be read (here: renamed away): the job logs it, keeps the
    pictures, and returns as usual, so the scheduler runs it again tomorrow."""
    folder = images.folder(lontar.settings.data_dir)
    orphan = _picture(folder, timedelta(days=2))
    with lontar.db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE broadcast RENAME TO broadcast_gone"))
    with caplog.at_level(logging.INFO, logger="bot.jobs"):
        assert await purge_personal_data(lontar, NOW) == (0, 0)
    assert "unused broadcast pictures not removed" in caplog.text
    assert _left(folder) == {orphan}
