"""Shared fixtures: the real content catalogue and a pinned clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flows.content import Content, load_content

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
