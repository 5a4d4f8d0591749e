"""The office's picture: charts and figures for a period, and the CSV exports.

Report figures are computed in Python from the period's rows (a quarter is a few thousand
tickets for one office); the exports read in keyset batches of 2,000 rather than one huge
result. Cells that a spreadsheet would run as a formula are prefixed with a quote.
"""

from __future__ import annotations

import csv
import io
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from statistics import median
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, func, or_, select

from bot.dashboard import charts
from bot.dashboard.queries import Filters, where
from bot.models import complaint_t, contact_t, staff_t, survey_t
from bot.services.survey import UNSUR, from_sums
from flows.content import Content

WEEKS = 12
LAPOR_TOPIC = "Administrasi Kependudukan"
LAPOR_CLASS = {"pengaduan": "Pengaduan", "saran": "Aspirasi", "apresiasi": "Aspirasi"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA) else text


@dataclass(frozen=True)
class Period:
    start: date
    end: date
    office: str
    errors: tuple[str, ...] = ()

    @classmethod
    def parse(cls, query: Any, today: date, offices: set[str]) -> Period:
        errors: list[str] = []
        end, start = today, today - timedelta(weeks=WEEKS) + timedelta(days=1)
        for name in ("start", "end"):
            raw = str(query.get(name, "")).strip()
            if raw:
                try:
                    value = date.fromisoformat(raw)
                except ValueError:
                    errors.append(f"tanggal tidak valid: {raw[:20]}")
                    continue
                if name == "start":
                    start = value
                else:
                    end = value
        if start > end:
            start, end = end, start
        if (end - start).days > 731:
            start = end - timedelta(days=731)
            errors.append("periode dibatasi dua tahun")
        office = str(query.get("office", ""))
        return cls(start, end, office if office in offices else "", tuple(errors))

    def bounds(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return (datetime.combine(self.start, time(), tz).astimezone(UTC),
                datetime.combine(self.end + timedelta(days=1), time(), tz).astimezone(UTC))


def _week(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def _weeks(start: date, end: date) -> list[str]:
    out: list[str] = []
    day = start
    while day <= end:
        if _week(day) not in out:
            out.append(_week(day))
        day += timedelta(days=1)
    return out


def _local_day(col: Any, dialect: str, tz: ZoneInfo) -> Any:
    """The office-time date of a UTC timestamp column, computed by the database."""
    if dialect == "sqlite":
        offset = datetime.now(tz).utcoffset() or timedelta()  # Indonesia keeps no DST
        return func.date(col, f"{int(offset.total_seconds() // 60):+d} minutes")
    return func.date(func.timezone(str(tz), col))


def _hours(later: Any, earlier: Any, dialect: str) -> Any:
    if dialect == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 24
    return func.extract("epoch", later - earlier) / 3600


def _month(col: Any, dialect: str) -> Any:
    if dialect == "sqlite":
        return func.strftime("%Y-%m", col)
    return func.to_char(col, "YYYY-MM")


def _as_date(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _series(counts: dict[str, Counter[str]], weeks: list[str],
            labels: dict[str, str]) -> list[tuple[str, list[float]]]:
    order = [k for k in labels if k in counts] + [k for k in counts if k not in labels]
    return [(labels.get(k, k), [float(counts[k][w]) for w in weeks]) for k in order]


def report(conn: Connection, period: Period, content: Content, tz: ZoneInfo, today: date,
           labels: dict[str, dict[str, str]]) -> dict[str, Any]:
    """Everything the report page shows, charts already rendered as SVG.

    The database counts (grouped by office day) and returns only the durations the medians
    need: a year of one busy office is ~20,000 tickets, too many to walk in Python on the
    event loop (bench/dashboard.py measured 370 ms that way, ~50 ms like this).
    """
    dialect = conn.dialect.name
    lo, hi = period.bounds(tz)
    c = complaint_t.c
    cond = and_(c.created_at >= lo, c.created_at < hi,
                *([c.office == period.office] if period.office else []))
    open_states = [k for k, v in labels["state_type"].items() if v == "open"]
    day = _local_day(c.created_at, dialect, tz).label("day")
    grouped = conn.execute(select(day, c.category, c.dimension, c.office,
                                  func.count().label("n"))
                           .where(cond).group_by(day, c.category, c.dimension, c.office)).all()
    weeks = _weeks(period.start, period.end)
    by: dict[str, dict[str, Counter[str]]] = {
        k: defaultdict(Counter) for k in ("category", "dimension", "office")}
    total = 0
    for g in grouped:
        week = _week(_as_date(g.day))
        total += g.n
        for key in by:
            by[key][getattr(g, key)][week] += g.n
    still_open = conn.execute(select(func.count()).select_from(complaint_t).where(
        cond, c.state.in_(open_states))).scalar_one()
    answer_hours = list(conn.execute(select(_hours(c.first_answer_at, c.created_at, dialect))
                                     .where(cond, c.first_answer_at.is_not(None))).scalars())
    resolve_days = [h / 24 for h in conn.execute(
        select(_hours(c.closed_at, c.created_at, dialect))
        .where(cond, c.closed_at.is_not(None))).scalars()]
    closed_day = _local_day(c.closed_at, dialect, tz)
    decided = or_(c.closed_at.is_not(None), and_(c.state.in_(open_states), c.due_on < today))
    met_expr = case((and_(c.closed_at.is_not(None), closed_day <= c.due_on), 1), else_=0)
    per_office = {r.office: (int(r.met or 0), int(r.decided)) for r in conn.execute(
        select(c.office, func.sum(met_expr).label("met"), func.count().label("decided"))
        .where(cond, decided).group_by(c.office))}
    met = sum(v[0] for v in per_office.values())
    decided_n = sum(v[1] for v in per_office.values())

    s = survey_t.c
    scond = and_(s.submitted_on >= period.start, s.submitted_on <= period.end,
                 *([s.office == period.office] if period.office else []))
    month = _month(s.submitted_on, dialect).label("month")
    monthly_rows = conn.execute(
        select(month, func.count().label("n"), *(func.sum(s[u.lower()]) for u in UNSUR))
        .where(scond).group_by(month).order_by(month)).all()
    monthly = {r.month: from_sums(r.n, tuple(r)[2:]) for r in monthly_rows}
    months = list(monthly)
    overall = from_sums(sum(r.n for r in monthly_rows),
                        [sum(int(tuple(r)[2 + i]) for r in monthly_rows)
                         for i in range(len(UNSUR))])
    ikm_lines = [(u, [m.nrr[u] * 25 if (m := monthly[k]) else None for k in months])
                 for u in UNSUR]
    unsur_names = {u.id: f"{u.id} {u.name.get('id')}" for u in content.survey.unsur} \
        if content.survey else {}
    return {
        "total": total, "open": still_open,
        "median_answer_hours": median(answer_hours) if answer_hours else None,
        "median_resolve_days": median(resolve_days) if resolve_days else None,
        "sla": (met / decided_n * 100) if decided_n else None, "sla_met": met,
        "sla_decided": decided_n, "ikm": overall, "unsur_names": unsur_names,
        "charts": [
            charts.bar_chart("Tiket per minggu menurut kategori", weeks,
                             _series(by["category"], weeks, labels["category"])),
            charts.bar_chart("Tiket per minggu menurut dimensi mutu", weeks,
                             _series(by["dimension"], weeks, labels["dimension"])),
            charts.bar_chart("Tiket per minggu menurut kantor", weeks,
                             _series(by["office"], weeks, labels["office"])),
            charts.kpi_bar("Selesai tepat waktu per kantor", [
                (labels["office"].get(k, k), float(v[0]), float(v[1]))
                for k, v in sorted(per_office.items())]),
            charts.line_chart("IKM per unsur per bulan", months,
                              [(unsur_names.get(u, u), v) for u, v in ikm_lines],
                              y_min=25, y_max=100),
        ],
    }


# -- exports ------------------------------------------------------------------------------

BATCH = 2000


def tickets_csv(conn: Connection, f: Filters, content: Content, tz: ZoneInfo, today: date,
                labels: dict[str, dict[str, str]], with_identity: bool) -> Any:
    """CSV text in chunks; identity columns only when `with_identity` (admins)."""
    c = complaint_t.c
    cols = [c.id, c.number, c.kind, c.service, c.office, c.category, c.dimension, c.urgent,
            c.state, c.happened, c.created_at, c.due_on, c.first_answer_at, c.closed_at,
            c.rating, c.text, c.identity, staff_t.c.display_name.label("assignee")]
    if with_identity:
        cols += [c.display_name, contact_t.c.channel, contact_t.c.external_id,
                 contact_t.c.display_name.label("chat_name")]
    head = ["nomor", "jenis", "layanan", "kantor", "kategori", "dimensi", "mendesak",
            "status", "kejadian", "masuk", "tenggat", "jawaban_pertama", "ditutup",
            "penilaian", "isi", "identitas", "petugas"]
    if with_identity:
        head += ["nama", "kanal", "nomor_wa"]
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(head)
    for i, r in enumerate(_joined(conn, f, content, tz, today, cols)):
        row = [r.number, labels["kind"].get(r.kind, r.kind), r.service, r.office, r.category,
               r.dimension, "ya" if r.urgent else "", r.state, r.happened,
               _local(r.created_at, tz), r.due_on.isoformat(), _local(r.first_answer_at, tz),
               _local(r.closed_at, tz), r.rating or "", r.text, r.identity, r.assignee or ""]
        if with_identity:
            shown = r.identity != "anonymous" and r.channel is not None
            row += [(r.display_name or r.chat_name or "") if shown else "",
                    r.channel or "" if shown else "",
                    r.external_id if shown and r.channel == "whatsapp" else ""]
        out.writerow([safe_cell(v) for v in row])
        if i % 500 == 499:
            yield _drain(buf)
    yield _drain(buf)


def _joined(conn: Connection, f: Filters, content: Content, tz: ZoneInfo, today: date,
            cols: list[Any]) -> Any:
    """The filtered tickets oldest first, in batches by id (keyset, not OFFSET), with the
    assignee and, when a column asks for it, the contact joined."""
    clauses = where(f, content, tz, today, conn.dialect.name)
    last = 0
    base = complaint_t.outerjoin(staff_t, staff_t.c.id == complaint_t.c.assignee_id)
    if any(getattr(col, "table", None) is contact_t for col in cols):
        base = base.outerjoin(contact_t, contact_t.c.id == complaint_t.c.contact_id)
    while True:
        batch = conn.execute(select(*cols).select_from(base)
                             .where(complaint_t.c.id > last, *clauses)
                             .order_by(complaint_t.c.id).limit(BATCH)).all()
        if not batch:
            return
        yield from batch
        last = batch[-1].id


def lapor_csv(conn: Connection, f: Filters, content: Content, tz: ZoneInfo, today: date,
              labels: dict[str, dict[str, str]], agency: str) -> Any:
    """Tickets in SP4N-LAPOR! terms, to forward them there: classification, topic,
    title, content, confidentiality; never the reporter's identity."""
    c = complaint_t.c
    cols = [c.id, c.number, c.kind, c.service, c.office, c.category, c.happened, c.text,
            c.identity, c.created_at, c.state]
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["nomor_pelacakan_lokal", "klasifikasi", "topik", "judul", "isi_laporan",
                  "waktu_kejadian", "instansi_tujuan", "lokasi", "kerahasiaan",
                  "tanggal_laporan", "status"])
    for i, r in enumerate(_joined(conn, f, content, tz, today, cols)):
        secrecy = {"confidential": "Rahasia", "anonymous": "Anonim"}.get(r.identity, "Biasa")
        out.writerow([safe_cell(v) for v in (
            r.number, LAPOR_CLASS.get(r.kind, "Pengaduan"), LAPOR_TOPIC,
            f"{labels['category'].get(r.category, r.category)} - "
            f"{labels['service'].get(r.service, r.service)}", r.text,
            labels["happened"].get(r.happened, r.happened), agency,
            labels["office"].get(r.office, r.office), secrecy, _local(r.created_at, tz),
            labels["state"].get(r.state, r.state))])
        if i % 500 == 499:
            yield _drain(buf)
    yield _drain(buf)


def survey_csv(conn: Connection, start: date, end: date, profile_keys: list[str]) -> Any:
    """Answers as stored: already anonymous (no chat, no time of day)."""
    s = survey_t.c
    buf = io.StringIO()
    out = csv.writer(buf)
    out.writerow(["tanggal", "kantor", *UNSUR, *profile_keys, "saran"])
    for i, r in enumerate(conn.execute(select(survey_t).where(
            s.submitted_on >= start, s.submitted_on <= end).order_by(s.id))):
        out.writerow([safe_cell(v) for v in (
            r.submitted_on.isoformat(), r.office or "", *(r._mapping[u.lower()] for u in UNSUR),
            *(r.profile.get(k, "") for k in profile_keys), r.suggestion or "")])
        if i % 500 == 499:
            yield _drain(buf)
    yield _drain(buf)


def _drain(buf: io.StringIO) -> str:
    text = buf.getvalue()
    buf.seek(0)
    buf.truncate()
    return text


def _local(value: datetime | None, tz: ZoneInfo) -> str:
    return value.astimezone(tz).strftime("%Y-%m-%d %H:%M") if value else ""
