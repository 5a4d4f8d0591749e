"""The dashboard's reads of applications (permohonan): the filtered list, one application
with its history, and how many chats follow it.

A registration number typed by staff is matched exactly or as a prefix through the unique
index on `reg_no` (numbers are stored upper-case); a NIK is matched only as its HMAC
(`nik_hmac` is indexed), so the plain NIK never reaches a query, a URL or a log. The list is
LIMIT/OFFSET with an exact count, newest status change first, like the ticket inbox.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, Row, Select, and_, func, select

from bot.dashboard.queries import as_params, page_number
from bot.models import app_update_t, application_t, staff_t, subscription_t
from flows.content import Content

PAGE_SIZE = 50
NIK_LIMIT = 200  # one person's applications: a page is enough, and no page links are needed
# Above every character a registration number may hold: `>= q AND < q + TOP` is a prefix
# range the unique index answers on SQLite and PostgreSQL alike (LIKE uses no index on
# SQLite's case-sensitive column).
TOP = "\U0010ffff"


@dataclass
class AppFilters:
    """The list's query string, validated: unknown values are dropped, not trusted."""

    status: str = ""
    office: str = ""
    service: str = ""
    nomor: str = ""  # a registration number or its beginning, upper-case
    page: int = 1
    errors: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, query: Any, content: Content) -> AppFilters:
        f = cls()
        ac = content.applications
        assert ac is not None
        allowed = {
            "status": {s.id for s in ac.status},
            "office": {o.id for o in content.offices},
            "service": set(content.services),
        }
        for name, values in allowed.items():
            value = str(query.get(name, "")).strip()
            if value in values:
                setattr(f, name, value)
        nomor = "".join(str(query.get("nomor", "")).split()).upper()[:64]
        if nomor and all(ch.isascii() and (ch.isalnum() or ch in "/._-") for ch in nomor):
            f.nomor = nomor
        elif nomor:
            f.errors.append("Nomor registrasi hanya berisi huruf, angka, / . _ -")
        f.page = page_number(query)
        return f

    def query(self, **change: Any) -> dict[str, str]:
        """This filter as query parameters (for the page links)."""
        return as_params(self, change)


@dataclass(frozen=True)
class AppPage:
    rows: list[Row[Any]]
    total: int
    page: int
    pages: int


LIST_COLUMNS = (application_t.c.reg_no, application_t.c.service, application_t.c.office,
                application_t.c.status, application_t.c.status_changed_at,
                func.substr(application_t.c.reason, 1, 120).label("excerpt"))


def where(f: AppFilters, nik_hmac: str | None = None) -> list[Any]:
    a = application_t.c
    clauses: list[Any] = [getattr(a, name) == getattr(f, name)
                          for name in ("status", "office", "service") if getattr(f, name)]
    if f.nomor:
        clauses += [a.reg_no >= f.nomor, a.reg_no < f.nomor + TOP]
    if nik_hmac is not None:
        clauses.append(a.nik_hmac == nik_hmac)
    return clauses


def listing(conn: Connection, f: AppFilters, nik_hmac: str | None = None,
            page_size: int = PAGE_SIZE) -> AppPage:
    """One page of applications, last status change first. With `nik_hmac`, that person's
    applications (at most NIK_LIMIT, on one page)."""
    cond = and_(True, *where(f, nik_hmac))
    total = conn.execute(select(func.count()).select_from(application_t)
                         .where(cond)).scalar_one()
    if nik_hmac is not None:
        page_size, f.page = NIK_LIMIT, 1
    pages = max(1, -(-total // page_size))
    page = min(f.page, pages)
    stmt: Select[Any] = (
        select(*LIST_COLUMNS).where(cond)
        .order_by(application_t.c.status_changed_at.desc(), application_t.c.id.desc())
        .limit(page_size).offset((page - 1) * page_size))
    return AppPage(list(conn.execute(stmt)), total, page, pages)


def application(conn: Connection, reg_no: str) -> Row[Any] | None:
    """One application by its number (any case); the NIK only as whether one is recorded."""
    a = application_t.c
    stmt: Select[Any] = (
        select(a.id, a.reg_no, a.service, a.office, a.status, a.reason, a.verify_kind,
               a.status_changed_at, a.created_at, a.nik_hmac.is_not(None).label("has_nik"))
        .where(a.reg_no == reg_no.strip().upper()))
    return conn.execute(stmt).first()


def history(conn: Connection, application_id: int) -> list[Row[Any]]:
    """Every status change, oldest first (as in the ticket history), with the name of
    the staff member who made it."""
    u = app_update_t.c
    return list(conn.execute(
        select(u.status_before, u.status_after, u.reason, u.source, u.created_at,
               staff_t.c.display_name.label("staff_name"))
        .outerjoin(staff_t, staff_t.c.id == u.staff_id)
        .where(u.application_id == application_id).order_by(u.id)))


def subscribers(conn: Connection, application_id: int) -> int:
    """How many chats follow this application: a count only, never who."""
    s = subscription_t.c
    return int(conn.execute(select(func.count()).select_from(subscription_t).where(
        s.application_id == application_id, s.stopped_at.is_(None))).scalar_one())
