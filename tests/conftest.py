"""Shared fixtures: the real content catalogue, a pinned clock, and the database under test.

The suite runs on SQLite by default. With `LONTAR_TEST_DATABASE_URL` set to a PostgreSQL URL
(CI: postgresql+psycopg://postgres@127.0.0.1:5432/test) every test gets an empty schema of its
own in that database, handed to Lontar through `DATABASE_URL` exactly as an operator would
configure it, so in-process apps and `lontar` subprocesses alike run on PostgreSQL.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from flows.content import Content, load_content

TEST_DATABASE_URL = os.environ.get("LONTAR_TEST_DATABASE_URL", "")
ON_POSTGRES = TEST_DATABASE_URL.startswith("postgresql")
SCHEMA_PREFIX = "lontar_test_"


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return pid > 0
    return pid > 0


@pytest.fixture(scope="session")
def _postgres() -> Iterator[Engine | None]:
    if not ON_POSTGRES:
        yield None
        return
    engine = create_engine(TEST_DATABASE_URL, poolclass=NullPool,
                           isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:  # leftovers of interrupted runs (not of running ones)
        for (name,) in conn.execute(text(
                "SELECT nspname FROM pg_namespace WHERE nspname LIKE :p"),
                {"p": SCHEMA_PREFIX + "%"}):
            if not _running(int(name.removeprefix(SCHEMA_PREFIX).split("_")[0] or 0)):
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    yield engine
    engine.dispose()


@pytest.fixture(autouse=True)
def database_url(_postgres: Engine | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The DATABASE_URL this test's Lontar uses ("" = SQLite in its data dir)."""
    monkeypatch.delenv("DATABASE_URL", raising=False)
    if _postgres is None:
        yield ""
        return
    schema = f"{SCHEMA_PREFIX}{os.getpid()}_{uuid.uuid4().hex[:10]}"
    with _postgres.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(TEST_DATABASE_URL).update_query_dict(
        {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    with _postgres.connect() as conn:
        conn.execute(text("SET lock_timeout = '10s'"))
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))

T0 = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)  # Monday 09:00 WITA


@pytest.fixture(scope="session")
def content() -> Content:
    return load_content()


class Clock:
    """A pinned clock: tests move it explicitly, flows never read a real one."""

    def __init__(self, start: datetime = T0):
        self.now = start

    def tick(self, **delta: float) -> datetime:
        self.now += timedelta(**delta) if delta else timedelta(seconds=20)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


Run = Callable[..., tuple[int, str, str]]


def cli_lontar(data_dir: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A Lontar built from the environment as `lontar` commands build it, in `data_dir`: no
    platform tokens, no quiet hours, the default content and database; for the `run`
    fixture's `app`."""
    from bot.app import build
    from bot.config import load_settings

    monkeypatch.setenv("LONTAR_DATA_DIR", str(data_dir))
    monkeypatch.setenv("LONTAR_LOG_LEVEL", "WARNING")
    for name in ("TELEGRAM_BOT_TOKEN", "WHATSAPP_ACCESS_TOKEN", "LONTAR_QUIET_START",
                 "LONTAR_QUIET_END", "DATABASE_URL", "LONTAR_CONTENT_DIR"):
        monkeypatch.delenv(name, raising=False)
    return build(load_settings())


@pytest.fixture
def run(app: Any, capsys: pytest.CaptureFixture[str]) -> Run:
    """`lontar ARGS...` in this process against the module's `app` fixture: (code, out, err)."""
    from bot.cli import main

    def call(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return code, out, err

    return call
