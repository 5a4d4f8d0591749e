"""The SKM survey: store answers anonymously, compute the IKM as PermenPANRB 14/2017 says.

NRR per unsur = sum of scores / respondents; weighted NRR = NRR x 1/9; IKM = sum of the
weighted NRR x 25 (the mean of all scores x 25, range 25-100). Decimals are kept until the
end (4 places in the report). Grades: A >= 88.31, B >= 76.61, C >= 65.00, D below.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from sqlalchemy import Connection, insert, select

from bot.models import survey_t
from flows.types import SubmitSurvey

UNSUR = tuple(f"U{i}" for i in range(1, 10))
GRADES = ((Fraction("88.31"), "A", "Sangat baik"), (Fraction("76.61"), "B", "Baik"),
          (Fraction("65.00"), "C", "Kurang baik"), (Fraction(0), "D", "Tidak baik"))


def store(conn: Connection, effect: SubmitSurvey, on: date) -> None:
    scores = dict(effect.answers)
    conn.execute(insert(survey_t), {
        "submitted_on": on, "office": effect.office,
        **{u.lower(): int(scores[u]) for u in UNSUR},
        "profile": dict(effect.profile), "suggestion": effect.suggestion,
    })


@dataclass(frozen=True)
class Ikm:
    respondents: int
    nrr: dict[str, float]  # per unsur, 1-4
    ikm: float  # 25-100
    grade: str
    performance: str


def compute(rows: Iterable[Sequence[int]]) -> Ikm | None:
    """IKM from rows of nine scores (U1..U9); None without respondents."""
    rows = list(rows)
    return from_sums(len(rows), [sum(r[i] for r in rows) for i in range(len(UNSUR))])


def from_sums(respondents: int, sums: Sequence[int]) -> Ikm | None:
    """IKM from the respondent count and the nine score totals (what SQL can sum)."""
    if not respondents:
        return None
    n = respondents
    # exact fractions until the end, so 36 answers of 4 give exactly 100
    nrr = {u: Fraction(int(sums[i]), n) for i, u in enumerate(UNSUR)}
    ikm = sum((v * Fraction(1, 9) for v in nrr.values()), Fraction(0)) * 25
    grade, performance = next((g, p) for floor, g, p in GRADES if round(ikm, 2) >= floor)
    return Ikm(n, {u: float(v) for u, v in nrr.items()}, float(ikm), grade, performance)


def report(conn: Connection, start: date | None = None, end: date | None = None,
           office: str | None = None) -> Ikm | None:
    cols = [survey_t.c[u.lower()] for u in UNSUR]
    query = select(*cols)
    if start is not None:
        query = query.where(survey_t.c.submitted_on >= start)
    if end is not None:
        query = query.where(survey_t.c.submitted_on <= end)
    if office is not None:
        query = query.where(survey_t.c.office == office)
    return compute(tuple(r) for r in conn.execute(query))
