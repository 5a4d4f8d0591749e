"""Shell fixtures: a real Lontar on a fresh SQLite file, and an aiohttp client for it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from bot.app import Lontar, build, web_app
from bot.config import load_settings


@pytest.fixture
def lontar(tmp_path: Path) -> Iterator[Lontar]:
    app = build(load_settings(data_dir=tmp_path, web_rate_per_minute=1000))
    yield app
    app.close()


@pytest.fixture
async def client(lontar: Lontar) -> AsyncIterator[TestClient]:
    async with TestClient(TestServer(web_app(lontar))) as c:
        yield c


class Errors(logging.Handler):
    """Records with an exception (or at ERROR and above) from Lontar's own loggers."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in ("bot", "flows", "lontar"):
            self.records.append(record)

    def take(self) -> list[str]:
        out = [f"{r.name}: {r.getMessage()} {r.exc_info[1]!r}" if r.exc_info
               else f"{r.name}: {r.getMessage()}" for r in self.records]
        self.records.clear()
        return out


@pytest.fixture
def errors() -> Iterator[Errors]:
    """What Lontar logs at ERROR (or with a traceback) during the test, for `take()`."""
    handler = Errors()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)
