"""The staff API under arbitrary bodies: a clean answer (200 or 4xx with the fields named),
never a 500 or an ERROR log line, and a refused batch writes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import event, given
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.app import Lontar, web_app
from bot.models import app_update_t, application_t
from bot.services import api_tokens
from tests.bot.conftest import Errors
from tests.fuzz import fuzz_settings

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=3),
    max_leaves=8)
_text = st.text(max_size=40)
# values that are sometimes right, so the checks past the first one run too
_fields: dict[str, st.SearchStrategy[Any]] = {
    "nomor_registrasi": st.sampled_from(["KK-1", "kk-1", "KTP-2", "", " ", "A" * 200]) | _text,
    "layanan": st.sampled_from(["kk-baru", "ktp-baru", "kia", "x"]) | _json,
    "kantor": st.sampled_from(["dinas", "kantor-x"]) | _json,
    "status": st.sampled_from(["diterima", "diproses", "siap-diambil", "ditolak", "selesai"])
    | _json,
    "tanggal_lahir": st.sampled_from(["1990-03-12", "1990-02-30", "12-03-1990"]) | _json,
    "nik": st.sampled_from(["5371011203900001", "5471011203900001", "537101120390000"])
    | _json,
    "alasan": _text | _json,
}
VALID = {"nomor_registrasi": "KK-1", "layanan": "kk-baru", "kantor": "dinas",
         "status": "diterima", "tanggal_lahir": "1990-03-12"}
_valid = st.builds(lambda reg, status: VALID | {"nomor_registrasi": reg, "status": status},
                   st.sampled_from(["KK-1", "KK-2", "KTP-3"]),
                   st.sampled_from(["diterima", "diproses", "siap-diambil"]))
_item = st.one_of(
    _valid, _valid,
    st.builds(lambda v, k, x: v | {k: x}, _valid, st.sampled_from(sorted(_fields)),
              st.deferred(lambda: st.one_of(*_fields.values()))),  # one field off
    st.builds(lambda v, k: {f: x for f, x in v.items() if f != k}, _valid,
              st.sampled_from(sorted(VALID))),  # one field missing
    st.fixed_dictionaries({}, optional=_fields), _json)
_post_body = st.one_of(
    st.builds(lambda items: {"applications": items}, st.lists(_valid, min_size=1, max_size=3)),
    st.builds(lambda items: {"applications": items}, st.lists(_item, min_size=1, max_size=4)),
    st.fixed_dictionaries({}, optional={"applications": _json, "extra": _json}), _json)
_patch_body = st.fixed_dictionaries({}, optional={k: _fields[k] for k in ("status", "alasan")}
                                    | {"x": _json}) | _json


@pytest.fixture
async def api(lontar: Lontar) -> AsyncIterator[tuple[TestClient[Any, Any], dict[str, str]]]:
    lontar.wake_channels = lambda _channels: None  # type: ignore[method-assign]
    with lontar.db.engine.begin() as conn:
        token = api_tokens.create(conn, "fuzz", "write")
    async with TestClient(TestServer(web_app(lontar))) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def _counts(lontar: Lontar) -> tuple[int, int]:
    with lontar.db.engine.connect() as conn:
        return (int(conn.execute(select(func.count()).select_from(application_t)).scalar_one()),
                int(conn.execute(select(func.count()).select_from(app_update_t)).scalar_one()))


@fuzz_settings(150)
@given(body=_post_body, patch=_patch_body)
async def test_the_api_answers_any_body_cleanly(lontar: Lontar, api: Any, errors: Errors,
                                                body: Any, patch: Any) -> None:
    client, auth = api
    errors.take()
    before = _counts(lontar)
    r = await client.post("/api/v1/applications", json=body, headers=auth)
    assert r.status == 200 or 400 <= r.status < 500, (r.status, await r.text())
    answer = await r.json()
    event(f"POST {r.status}")
    if r.status != 200:  # all or nothing, and the refusal says why
        assert _counts(lontar) == before
        assert answer.get("error")
    else:
        assert answer["received"] == len(body["applications"])
        assert answer["created"] + answer["updated"] + answer["unchanged"] == answer["received"]
    r = await client.patch("/api/v1/applications/KK-1", json=patch, headers=auth)
    assert r.status in (200, 404) or 400 <= r.status < 500, (r.status, await r.text())
    assert "error" in await r.json() or r.status == 200
    assert errors.take() == []
