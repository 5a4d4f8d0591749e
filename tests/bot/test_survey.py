"""SKM: stored anonymously from the conversation, IKM computed as the regulation says."""

from __future__ import annotations

import subprocess
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import inspect

from bot.app import Lontar
from bot.inbox import Inbound
from bot.services.survey import compute, report, store
from flows.types import SubmitSurvey
from tests.procs import ROOT, env_for, lontar_cmd

# A hand-worked example: three respondents, scores for U1..U9.
ROWS = [(4, 4, 3, 4, 3, 3, 4, 3, 3), (3, 3, 3, 4, 3, 4, 4, 2, 3), (4, 3, 2, 4, 3, 3, 3, 3, 2)]


def test_ikm_matches_the_hand_worked_example() -> None:
    result = compute(ROWS)
    assert result is not None and result.respondents == 3
    # NRR U1 = (4+3+4)/3 = 3.6667, U3 = (3+3+2)/3 = 2.6667, U4 = 4
    assert round(result.nrr["U1"], 4) == 3.6667
    assert round(result.nrr["U3"], 4) == 2.6667
    assert result.nrr["U4"] == 4
    # sum of NRR = 87 / 3 = 29; IKM = 29 x 1/9 x 25 = 80.5556 -> B (Baik)
    assert round(result.ikm, 4) == 80.5556
    assert (result.grade, result.performance) == ("B", "Baik")


@pytest.mark.parametrize(("score_sum", "grade"), [
    (9 * 4, "A"), (9 * 1, "D"),
])
def test_extremes(score_sum: int, grade: str) -> None:
    per = score_sum // 9
    result = compute([(per,) * 9])
    assert result is not None and result.grade == grade
    assert result.ikm == per * 25


def test_grade_bands_at_their_edges() -> None:
    """Mean 3.5324 gives 88.31 (A); a mean just under gives B; 2.60 gives 65.00 (C)."""
    assert compute([(4,) * 9] * 5324 + [(3,) * 9] * 4676).grade == "A"  # type: ignore[union-attr]
    assert compute([(4,) * 9] * 5319 + [(3,) * 9] * 4681).grade == "B"  # type: ignore[union-attr]
    assert compute([(3,) * 9] * 6 + [(2,) * 9] * 4).grade == "C"  # type: ignore[union-attr]
    assert compute([]) is None


async def test_a_survey_in_the_chat_is_stored_without_identity(lontar: Lontar) -> None:
    async def send(i: int, kind: str, payload: dict[str, str]) -> None:
        await lontar.inbox.handle(Inbound("web", "surveyor-1", f"m{i}", kind,  # type: ignore[arg-type]
                                          payload))

    await send(0, "command", {"name": "start"})
    await send(1, "text", {"text": "7"})  # the survey from the main menu
    await send(2, "text", {"text": "1"})  # the Dinas
    for i in range(9):
        await send(10 + i, "text", {"text": "4"})
    await send(30, "text", {"text": "2"})  # no profile
    await send(31, "text", {"text": "Antrean <script>alert(1)</script> lama"})
    with lontar.db.engine.connect() as conn:
        columns = {c["name"] for c in inspect(conn).get_columns("survey_response")}
        rows = conn.exec_driver_sql("select office, u1, u9, suggestion "
                                    "from survey_response").all()
        result = report(conn)
    assert not columns & {"contact_id", "channel", "external_id", "created_at"}
    assert rows == [("dinas", 4, 4, "Antrean <script>alert(1)</script> lama")]
    assert result is not None and result.ikm == 100


def test_cli_report(tmp_path: Path, lontar: Lontar) -> None:
    del lontar
    from bot.app import build
    from bot.config import load_settings

    app = build(load_settings(data_dir=tmp_path))
    with app.db.engine.begin() as conn:
        for row in ROWS:
            store(conn, SubmitSurvey("dinas", tuple(zip((f"U{i}" for i in range(1, 10)), row,
                                                        strict=True))), date(2026, 3, 2))
    app.close()
    out = subprocess.run(lontar_cmd("survey", "report", "--from", "2026-03-01"), cwd=ROOT,
                         env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "3 respondents" in out.stdout and "IKM 80.56" in out.stdout and "mutu B" in out.stdout
    none = subprocess.run(lontar_cmd("survey", "report", "--from", "2027-01-01"), cwd=ROOT,
                          env=env_for(tmp_path), capture_output=True, text=True, timeout=60)
    assert "no respondents" in none.stdout
