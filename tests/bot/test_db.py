"""Migrations build the schema the models describe, on the database under test (SQLite, or
PostgreSQL with LONTAR_TEST_DATABASE_URL); SQLite runs in WAL mode."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel

import bot.models  # noqa: F401
from bot.db import Database


def _url(database_url: str, tmp_path: Path, name: str) -> str:
    return database_url or f"sqlite:///{tmp_path / name}"


def test_migrations_from_empty_match_the_models(tmp_path: Path, database_url: str) -> None:
    db = Database(_url(database_url, tmp_path, "m.db"))
    db.upgrade()
    with db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
        tables = set(inspect(conn).get_table_names())
    assert diff == []
    assert {"contact", "conversation", "inbound_message", "outbox", "alembic_version"} <= tables
    db.upgrade()  # idempotent
    db.close()


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'w.db'}")
    with db.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    db.close()


def test_migration_downgrade_and_upgrade_again(tmp_path: Path, database_url: str) -> None:
    from bot.db import upgrade

    db = Database(_url(database_url, tmp_path, "d.db"))
    db.upgrade()
    from alembic import command

    from bot.db import alembic_config

    cfg = alembic_config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "base")
    with db.engine.connect() as conn:
        assert "contact" not in inspect(conn).get_table_names()
    upgrade(db.engine)
    with db.engine.connect() as conn:
        assert "contact" in inspect(conn).get_table_names()
    db.close()


def test_upgrade_from_0001_keeps_rows(tmp_path: Path, database_url: str) -> None:
    """An office that ran the first release upgrades without losing its outbox."""
    from bot.db import upgrade

    db = Database(_url(database_url, tmp_path, "u.db"))
    upgrade(db.engine, "0001")
    with db.engine.begin() as conn:
        conn.execute(text("insert into contact (channel, external_id, language, opted_in, "
                          "created_at) values ('web', 'x', 'id', false, '2026-01-01 00:00:00')"))
        conn.execute(text("insert into outbox (contact_id, channel, priority, status, payload, "
                          "attempts, next_attempt_at, created_at) values (1, 'web', 0, "
                          "'pending', '{\"text\": \"a\", \"options\": []}', 0, "
                          "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"))
    upgrade(db.engine)
    with db.engine.connect() as conn:
        row = conn.execute(text("select status, delivery, template from outbox")).one()
    assert tuple(row) == ("pending", None, None)
    db.close()


def test_upgrade_from_0004_keeps_tickets(tmp_path: Path, database_url: str) -> None:
    """Tickets filed before the dashboard existed get an updated time and no assignee."""
    from bot.db import upgrade

    db = Database(_url(database_url, tmp_path, "u.db"))
    upgrade(db.engine, "0004")
    with db.engine.begin() as conn:
        conn.execute(text(
            "insert into complaint (number, kind, service, office, category, dimension, urgent,"
            " text, text_hash, photos, happened, identity, state, due_on, created_at) values "
            "('ADU-2026-AAAAAA', 'pengaduan', 'umum', 'dinas', 'lainnya', 'empathy', false, 't',"
            " 'h', '[]', 'today', 'named', 'baru', '2026-01-05', '2026-01-01 00:00:00')"))
    upgrade(db.engine)
    with db.engine.connect() as conn:
        row = conn.execute(text("select number, updated_at, assignee_id from complaint")).one()
    assert (row[0], str(row[1])[:19], row[2]) == ("ADU-2026-AAAAAA", "2026-01-01 00:00:00", None)
    db.close()
