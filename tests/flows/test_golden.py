"""Every flow as a reviewed transcript, replayed with a pinned clock.

A transcript that differs fails with a diff. After a deliberate content or engine change,
regenerate with `LONTAR_UPDATE_GOLDEN=1 pytest tests/flows/test_golden.py`, then read the
diff in git before committing it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from flows.content import Content
from tests.flows.transcript import inputs_of, render_transcript

GOLDEN = Path(__file__).parent / "golden"
FILES = sorted(GOLDEN.glob("*.txt"))


def test_there_are_transcripts() -> None:
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_transcript(path: Path, content: Content) -> None:
    expected = path.read_text(encoding="utf-8")
    actual = render_transcript(inputs_of(expected), content)
    if os.environ.get("LONTAR_UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
        pytest.skip("transcript rewritten")
    assert actual == expected
