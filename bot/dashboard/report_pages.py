"""The report page and the CSV downloads (routes of the dashboard)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web
from sqlalchemy import Connection

from bot.dashboard import reports
from bot.dashboard.queries import Filters
from bot.services import staff as accounts
from bot.services.staff import Session

if TYPE_CHECKING:
    from bot.dashboard.server import Dashboard

AGENCY = "Dinas Kependudukan dan Pencatatan Sipil Kota Kupang"


def add_routes(d: Dashboard, app: web.Application) -> None:
    r = app.router
    r.add_get("/admin/reports", d._guard(lambda req, s: report_page(d, req, s)))
    r.add_get("/admin/export/tickets.csv", d._guard(lambda req, s: export(d, req, s, "tickets")))
    r.add_get("/admin/export/lapor.csv", d._guard(lambda req, s: export(d, req, s, "lapor")))
    r.add_get("/admin/export/survey.csv", d._guard(lambda req, s: export(d, req, s, "survey")))


async def report_page(d: Dashboard, request: web.Request, session: Session) -> web.Response:
    today = d.today()
    period = reports.Period.parse(request.query, today, {o.id for o in d.content.offices})
    labels = d.env.globals["labels"]

    def read(conn: Connection) -> dict[str, Any]:
        return reports.report(conn, period, d.content, d.tz, today, labels)  # type: ignore[arg-type]

    data = await d.db.transaction(read)
    return d.render("reports.html", session=session, period=period, r=data,
                    offices=d.content.offices)


async def export(d: Dashboard, request: web.Request, session: Session,
                 what: str) -> web.StreamResponse:
    """A CSV download, audited. It is built in one read transaction (consistent, and off
    the loop on PostgreSQL) and then sent; 100,000 tickets make a ~40 MB string for the
    moment of the download, an accepted cost for an occasional admin export."""
    today = d.today()
    labels: Any = d.env.globals["labels"]
    f = Filters.parse(request.query, d.content)
    with_identity = session.staff.is_admin and request.query.get("identitas") == "1"
    if what == "survey":
        period = reports.Period.parse(request.query, today, set())
        profile = [p.id for p in d.content.survey.profile] if d.content.survey else []
        make = lambda conn: reports.survey_csv(conn, period.start, period.end, profile)  # noqa: E731
    elif what == "lapor":
        make = lambda conn: reports.lapor_csv(conn, f, d.content, d.tz, today, labels,  # noqa: E731
                                              AGENCY)
    else:
        make = lambda conn: reports.tickets_csv(conn, f, d.content, d.tz, today,  # noqa: E731
                                                labels, with_identity)

    def collect(conn: Connection) -> list[str]:
        accounts.audit(conn, session.staff.id, f"export_{what}", None, request.remote,
                       identity=with_identity, **f.query())
        return list(make(conn))

    chunks = await d.db.transaction(collect)
    response = web.StreamResponse(headers={
        "Content-Type": "text/csv; charset=utf-8",
        "Content-Disposition": f'attachment; filename="lontar-{what}-{today.isoformat()}.csv"'})
    await response.prepare(request)
    await response.write("\ufeff".encode())  # so spreadsheet programs read UTF-8
    for chunk in chunks:
        await response.write(chunk.encode())
    await response.write_eof()
    return response
