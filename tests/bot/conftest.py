"""Shell fixtures: a real Lontar on a fresh SQLite file, and an aiohttp client for it."""

from __future__ import annotations

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
