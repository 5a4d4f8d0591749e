"""Every dashboard form under arbitrary bodies, posted by a logged-in admin with a valid CSRF
token: a clean answer (a page, a redirect or a 4xx), never a 500 or an ERROR log line, and
the stored data stays readable by every page afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import event, given
from hypothesis import strategies as st

from bot.app import Lontar, web_app
from bot.dashboard.broadcast_pages import ACTIONS as BROADCAST_ACTIONS
from bot.dashboard.server import ACTIONS as TICKET_ACTIONS
from tests.bot.conftest import Errors
from tests.bot.dashboard_helpers import login
from tests.bot.test_security import _seed_everything
from tests.fuzz import fuzz_settings

ROUTES = (
    ["/admin/notices", "/admin/broadcasts", "/admin/applications",
     "/admin/notices/1/end", "/admin/notices/1/broadcast", "/admin/notices/999/end",
     "/admin/broadcasts/1/edit", "/admin/broadcasts/999/edit",
     "/admin/applications/KK-2026-0001/status", "/admin/applications/XX-0/status"]
    + [f"/admin/tickets/1/{a}" for a in TICKET_ACTIONS] + ["/admin/tickets/999/answer"]
    + [f"/admin/broadcasts/1/{a}" for a in BROADCAST_ACTIONS] + ["/admin/broadcasts/1/zz"]
)
# every field name the dashboard's forms read, each with values that are sometimes right,
# so the checks after the first one run too
_text = st.text(max_size=60)
_odd = st.sampled_from(["", " ", "\x00", "0", "-1", "99999999999999999999", "1e309", "NaN",
                        "<script>alert(1)</script>", "' OR '1'='1", "../../etc/passwd",
                        "x" * 5000, "🙂", "\u202e", "null", "[]", "{}"])
_when = st.sampled_from(["2026-03-02 08:00", "2026-03-02T08:00", "2026-02-30 08:00",
                         "02-03-2026", "2026-03-02 25:61", "08:00"])
_value = _text | _odd
_fields: dict[str, st.SearchStrategy[str]] = {
    "alasan": _value, "assignee": st.sampled_from(["root", "nobody"]) | _value,
    "category": st.sampled_from(["antrean", "pungli", "x"]) | _value,
    "dimension": _value, "do": st.sampled_from(["save", "preview", "x"]) | _value,
    "image_drop": st.sampled_from(["1", "on"]) | _value, "image_kept": _value,
    "lang": st.sampled_from(["id", "en", "xx"]) | _value,
    "mulai": _when | _value, "selesai": _when | _value, "waktu": _when | _value,
    "starts": _when | _value, "ends": _when | _value, "reason": _value, "note": _value,
    "next": st.sampled_from(["/admin/tickets", "https://evil.example", "//evil"]) | _value,
    "nik": st.sampled_from(["5371011203900001", "537101120390000", ""]) | _value,
    "office": st.sampled_from(["dinas", "kantor-x"]) | _value,
    "open_app": _value, "seen": _value, "send": _value, "schedule": _when | _value,
    "service": st.sampled_from(["kk-baru", "ktp-baru", "x"]) | _value,
    "state": st.sampled_from(["baru", "diproses", "selesai", "x"]) | _value,
    "status": st.sampled_from(["diterima", "diproses", "siap-diambil", "x"]) | _value,
    "tags": _value, "test": _value, "text": _value, "text_en": _value, "text_id": _value,
    "title": _value, "approve": _value, "cancel": _value, "pause": _value, "resume": _value,
}
_body = st.fixed_dictionaries({}, optional=_fields)


@pytest.fixture
async def admin(lontar: Lontar) -> AsyncIterator[tuple[TestClient[Any, Any], str]]:
    lontar.wake_channels = lambda _channels: None  # type: ignore[method-assign]
    async with TestClient(TestServer(web_app(lontar))) as client:
        await _seed_everything(lontar, client)
        yield client, await login(client, "root")


@fuzz_settings(120)
@given(path=st.sampled_from(ROUTES), body=_body, multipart=st.booleans())
async def test_every_dashboard_form_answers_any_body_cleanly(
        admin: Any, errors: Errors, path: str, body: dict[str, str], multipart: bool) -> None:
    client, csrf = admin
    errors.take()
    if multipart:  # the broadcast forms take an upload; the others must not choke on one
        from aiohttp import FormData

        form = FormData()
        for name, value in (body | {"csrf": csrf}).items():
            form.add_field(name, value)
        r = await client.post(path, data=form, allow_redirects=False)
    else:
        r = await client.post(path, data=body | {"csrf": csrf}, allow_redirects=False)
    page = await r.text()
    event(f"{path.split('/')[2]} {r.status}")
    assert r.status in (200, 303) or 400 <= r.status < 500, (path, r.status, page[:300])
    assert errors.take() == [], path
    for listing in ("/admin/tickets", "/admin/broadcasts", "/admin/notices",
                    "/admin/applications"):
        r = await client.get(listing, allow_redirects=False)
        assert r.status == 200, (listing, r.status)
