"""The dashboard's reads: the filtered inbox, one ticket with its history, and exports.

Filters become WHERE clauses on indexed columns (see the indexes on `complaint`); text
search is a LIKE over the number and the story, bounded by the other filters. Pages are
LIMIT/OFFSET with an exact count; bench/dashboard.py measures both at 100,000 tickets.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Row, Select, and_, func, or_, select

from bot.models import complaint_t, contact_t, staff_t, update_t
from flows.content import Content

PAGE_SIZE = 50
SORTS = {
    "baru": (complaint_t.c.created_at.desc(), complaint_t.c.id.desc()),
    "lama": (complaint_t.c.created_at.asc(), complaint_t.c.id.asc()),
    "tenggat": (complaint_t.c.due_on.asc(), complaint_t.c.id.asc()),
    "diubah": (complaint_t.c.updated_at.desc(), complaint_t.c.id.desc()),
}


def page_number(query: Mapping[str, Any]) -> int:
    page = str(query.get("page", "1"))
    return min(max(int(page), 1), 100_000) if page.isdigit() else 1


def as_params(filters: Any, change: Mapping[str, Any],
              defaults: Mapping[str, str] | None = None) -> dict[str, str]:
    """A filter dataclass as query parameters, without empty values, page 1 or defaults."""
    out = {x.name: str(getattr(filters, x.name)) for x in fields(filters)
           if x.name != "errors" and getattr(filters, x.name) not in ("", None)}
    out.update({k: str(v) for k, v in change.items()})
    skip = {"page": "1", **(defaults or {})}
    return {k: v for k, v in out.items() if v != "" and skip.get(k) != v}


@dataclass
class Filters:
    """The inbox's query string, validated: unknown values are dropped, not trusted."""

    state: str = ""
    kind: str = ""
    category: str = ""
    dimension: str = ""
    office: str = ""
    service: str = ""
    assignee: str = ""  # a staff id, "none", or empty for anyone
    start: str = ""  # YYYY-MM-DD, office time
    end: str = ""
    overdue: str = ""  # "1"
    q: str = ""
    sort: str = "baru"
    page: int = 1
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, query: Any, content: Content) -> Filters:
        f = cls()
        cc = content.complaints
        assert cc is not None
        allowed = {
            "state": {s.id for s in cc.state}, "kind": {k.id for k in cc.kind},
            "category": {c.id for c in cc.category}, "dimension": {d.id for d in cc.dimension},
            "office": {o.id for o in content.offices},
            "service": set(content.services) | {"umum"}, "sort": set(SORTS),
        }
        for name, values in allowed.items():
            value = str(query.get(name, "")).strip()
            if value in values:
                setattr(f, name, value)
        assignee = str(query.get("assignee", "")).strip()
        if assignee == "none" or assignee.isdigit():
            f.assignee = assignee
        for name in ("start", "end"):
            value = str(query.get(name, "")).strip()
            if value:
                try:
                    date.fromisoformat(value)
                    setattr(f, name, value)
                except ValueError:
                    f.errors.append(f"tanggal tidak valid: {value[:20]}")
        f.overdue = "1" if query.get("overdue") == "1" else ""
        f.q = " ".join(str(query.get("q", "")).split())[:100]
        f.page = page_number(query)
        return f

    def query(self, **change: Any) -> dict[str, str]:
        """This filter as query parameters (for links to other pages and sorts)."""
        return as_params(self, change, {"sort": "baru"})


def _day_start(day: str, tz: ZoneInfo) -> datetime:
    return datetime.combine(date.fromisoformat(day), time(), tz).astimezone(UTC)


NUMBER = re.compile(r"^(ADU|SAR|APR)-\d{4}-[2-9A-HJ-NP-Z]{6}$")


def where(f: Filters, content: Content, tz: ZoneInfo, today: date,
          dialect: str = "sqlite") -> list[Any]:
    c = complaint_t.c
    clauses: list[Any] = []
    for name in ("state", "kind", "category", "dimension", "office", "service"):
        value = getattr(f, name)
        if value:
            clauses.append(getattr(c, name) == value)
    if f.assignee == "none":
        clauses.append(c.assignee_id.is_(None))
    elif f.assignee:
        clauses.append(c.assignee_id == int(f.assignee))
    if f.start:
        clauses.append(c.created_at >= _day_start(f.start, tz))
    if f.end:
        clauses.append(c.created_at < _day_start(f.end, tz) + timedelta(days=1))
    if f.overdue:
        assert content.complaints is not None
        open_states = [s.id for s in content.complaints.state if s.type == "open"]
        clauses.extend([c.state.in_(open_states), c.due_on < today])
    if f.q and NUMBER.match(f.q.upper()):  # a pasted ticket number: the unique index
        clauses.append(c.number == f.q.upper())
    elif f.q:
        like = "%" + f.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        # SQLite's LIKE already ignores ASCII case; ilike there adds lower() on every row
        if dialect == "sqlite":
            clauses.append(or_(c.number.like(like, escape="\\"),
                               c.text.like(like, escape="\\")))
        else:
            clauses.append(or_(c.number.ilike(like, escape="\\"),
                               c.text.ilike(like, escape="\\")))
    return clauses


@dataclass(frozen=True)
class Page:
    rows: list[Row[Any]]
    total: int
    page: int
    pages: int


INBOX_COLUMNS = (complaint_t.c.id, complaint_t.c.number, complaint_t.c.kind,
                 complaint_t.c.service, complaint_t.c.office, complaint_t.c.category,
                 complaint_t.c.dimension, complaint_t.c.urgent, complaint_t.c.state,
                 complaint_t.c.due_on, complaint_t.c.created_at, complaint_t.c.assignee_id,
                 func.substr(complaint_t.c.text, 1, 120).label("excerpt"))


def inbox(conn: Connection, f: Filters, content: Content, tz: ZoneInfo, today: date,
          page_size: int = PAGE_SIZE) -> Page:
    clauses = where(f, content, tz, today, conn.dialect.name)
    cond = and_(True, *clauses)
    total = conn.execute(select(func.count()).select_from(complaint_t).where(cond)).scalar_one()
    pages = max(1, -(-total // page_size))
    page = min(f.page, pages)
    stmt: Select[Any] = (select(*INBOX_COLUMNS).where(cond).order_by(*SORTS[f.sort])
                         .limit(page_size).offset((page - 1) * page_size))
    return Page(list(conn.execute(stmt)), total, page, pages)


def ticket(conn: Connection, ticket_id: int) -> Row[Any] | None:
    return conn.execute(select(complaint_t).where(complaint_t.c.id == ticket_id)).first()


def history(conn: Connection, ticket_id: int) -> list[Row[Any]]:
    return list(conn.execute(
        select(update_t, staff_t.c.display_name.label("staff_name"))
        .outerjoin(staff_t, staff_t.c.id == update_t.c.staff_id)
        .where(update_t.c.complaint_id == ticket_id).order_by(update_t.c.id)))


def identity(conn: Connection, ticket_row: Row[Any]) -> dict[str, str] | None:
    """Who filed: the chat's name, channel and number. None for an anonymous ticket."""
    if ticket_row.identity == "anonymous" or ticket_row.contact_id is None:
        return None
    contact = conn.execute(select(contact_t.c.channel, contact_t.c.external_id,
                                  contact_t.c.display_name)
                           .where(contact_t.c.id == ticket_row.contact_id)).first()
    if contact is None:
        return None
    phone = contact.external_id if contact.channel == "whatsapp" else ""
    return {"name": ticket_row.display_name or contact.display_name or "-",
            "channel": contact.channel, "phone": phone}


def assignable(conn: Connection) -> list[Row[Any]]:
    return list(conn.execute(
        select(staff_t.c.id, staff_t.c.display_name)
        .where(staff_t.c.active.is_(True), staff_t.c.role != "viewer")
        .order_by(staff_t.c.display_name)))
