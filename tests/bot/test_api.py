"""The staff API over HTTP: tokens and scopes, reads, all-or-nothing writes, fields named in
every refusal, subscribers told once, an OpenAPI description of every route, no NIK out."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from openapi_spec_validator import validate
from sqlalchemy import func, insert, select

from bot.app import Lontar, web_app
from bot.cli import main
from bot.models import (
    app_update_t,
    application_t,
    audit_t,
    contact_t,
    outbox_t,
    subscription_t,
    token_t,
)
from bot.services import api_tokens

NIK_M = "5371011203900001"  # Alak, born 12-03-1990 (valid)
NIK_BAD = "5471011203900001"  # no such province
JSON_HEADERS = {"Content-Type": "application/json"}


def _token(lontar: Lontar, name: str, scope: str = "write") -> str:
    with lontar.db.engine.begin() as conn:
        return api_tokens.create(conn, name, scope)


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _item(reg_no: str, **fields: Any) -> dict[str, Any]:
    return {"nomor_registrasi": reg_no, "layanan": "kk-baru", "kantor": "dinas",
            "status": "diterima", "tanggal_lahir": "1990-03-12"} | fields


def _count(lontar: Lontar, table: Any) -> int:
    with lontar.db.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


def _audit(lontar: Lontar) -> list[tuple[str, str | None, dict[str, Any]]]:
    with lontar.db.engine.connect() as conn:
        return [(r.action, r.target, r.detail) for r in conn.execute(
            select(audit_t).where(audit_t.c.action.like("api:%")).order_by(audit_t.c.id))]


@pytest.fixture
async def api(lontar: Lontar) -> AsyncIterator[tuple[TestClient, str, list[frozenset[str]]]]:
    """A client, a write token, and the channels the senders were woken for."""
    woken: list[frozenset[str]] = []
    lontar.wake_channels = woken.append  # type: ignore[method-assign]
    async with TestClient(TestServer(web_app(lontar))) as c:
        yield c, _token(lontar, "simduk"), woken


async def _post(c: TestClient, token: str, items: list[Any]) -> Any:
    r = await c.post("/api/v1/applications", json={"applications": items},
                     headers=_auth(token))
    return r.status, await r.json()


# -- tokens ------------------------------------------------------------------------------


def test_cli_creates_lists_and_revokes_tokens(lontar: Lontar, monkeypatch: pytest.MonkeyPatch,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("LONTAR_DATA_DIR", str(lontar.settings.data_dir))
    assert main(["api-token", "create", "SIMDUK-sync", "--scope", "write"]) == 0
    out = capsys.readouterr().out
    token = re.search(r"^(lontar_\S{40,})$", out, re.M)
    assert token is not None and "cannot be shown again" in out
    with lontar.db.engine.connect() as conn:
        row = conn.execute(select(token_t)).one()
    assert (row.name, row.scope) == ("simduk-sync", "write")
    assert row.token_hash == api_tokens.digest(token.group(1)) != token.group(1)
    assert main(["api-token", "create", "simduk-sync"]) == 2  # names are never reused
    assert "already exists" in capsys.readouterr().err
    assert main(["api-token", "create", "dashboard-tv", "--scope", "read"]) == 0
    capsys.readouterr()
    assert main(["api-token", "list"]) == 0
    listed = capsys.readouterr().out
    assert "simduk-sync" in listed and "dashboard-tv" in listed and "active" in listed
    assert token.group(1) not in listed and row.token_hash not in listed
    assert main(["api-token", "revoke", "simduk-sync"]) == 0
    assert main(["api-token", "revoke", "simduk-sync"]) == 1  # already revoked: not "done"
    assert main(["api-token", "revoke", "nobody"]) == 1
    capsys.readouterr()
    assert main(["api-token", "list"]) == 0
    assert re.search(r"simduk-sync .* revoked ", capsys.readouterr().out)
    with lontar.db.engine.connect() as conn:
        assert api_tokens.find(conn, token.group(1)) is None
    with lontar.db.engine.connect() as conn:
        logged = [(r.action, r.target) for r in conn.execute(
            select(audit_t).where(audit_t.c.action.like("api_token%")).order_by(audit_t.c.id))]
    assert logged == [("api_token_create", "simduk-sync"), ("api_token_create", "dashboard-tv"),
                      ("api_token_revoke", "simduk-sync")]


def test_service_finds_live_tokens_by_hash_and_revokes_by_id(lontar: Lontar) -> None:
    with lontar.db.engine.begin() as conn:
        token = api_tokens.create(conn, "reader", "read")
        with pytest.raises(api_tokens.TokenError, match="scope"):
            api_tokens.create(conn, "other", "admin")
        with pytest.raises(api_tokens.TokenError, match="name"):
            api_tokens.create(conn, "no spaces", "read")
        found = api_tokens.find(conn, token)
        assert found is not None and (found.name, found.scope) == ("reader", "read")
        assert not found.can_write
        assert api_tokens.find(conn, token + "x") is None
        assert api_tokens.find(conn, "lontar_" + "A" * 43) is None
        assert api_tokens.revoke(conn, str(found.id)) is True
        assert api_tokens.find(conn, token) is None
        assert [t.revoked_at is not None for t in api_tokens.list_tokens(conn)] == [True]


async def test_missing_unknown_and_revoked_tokens_get_401(lontar: Lontar,
                                                          client: TestClient) -> None:
    token = _token(lontar, "old")
    with lontar.db.engine.begin() as conn:
        api_tokens.revoke(conn, "old")
    for headers in ({}, {"Authorization": "Basic dXNlcjpwYXNz"},
                    {"Authorization": "Bearer lontar_not-a-real-token-at-all"},
                    {"Authorization": "Bearer"}, _auth(token)):
        r = await client.get("/api/v1/applications", headers=headers)
        assert r.status == 401, headers
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await r.json())["error"] == "unauthorized"
    r = await client.patch("/api/v1/applications/KK-1", json={"status": "diproses"})
    assert r.status == 401


async def test_a_read_token_reads_but_cannot_write(lontar: Lontar, client: TestClient) -> None:
    reader = _token(lontar, "reader", "read")
    r = await client.get("/api/v1/applications", headers=_auth(reader))
    assert r.status == 200 and await r.json() == {"applications": [], "next": None}
    r = await client.post("/api/v1/applications", json={"applications": [_item("KK-1")]},
                          headers=_auth(reader))
    assert r.status == 403 and (await r.json())["error"] == "forbidden"
    r = await client.patch("/api/v1/applications/KK-1", json={"status": "diproses"},
                           headers=_auth(reader))
    assert r.status == 403
    assert _count(lontar, application_t) == 0
    with lontar.db.engine.connect() as conn:
        used = conn.execute(select(token_t.c.last_used_at)).scalar_one()
    assert used is not None and (datetime.now(UTC) - used).total_seconds() < 60


# -- reading -----------------------------------------------------------------------------


async def test_get_one_application_with_its_history(api: Any) -> None:
    c, token, _ = api
    assert (await _post(c, token, [_item("kk-2026/0001", nik=NIK_M)]))[0] == 200
    r = await c.patch("/api/v1/applications/KK-2026%2F0001",
                      json={"status": "perlu-perbaikan", "alasan": "Foto KTP buram"},
                      headers=_auth(token))
    assert r.status == 200, await r.text()
    r = await c.get("/api/v1/applications/kk-2026%2F0001", headers=_auth(token))
    assert r.status == 200
    body = await r.json()
    assert set(body) == {"nomor_registrasi", "layanan", "kantor", "status", "alasan",
                         "status_changed_at", "history"}
    assert (body["nomor_registrasi"], body["layanan"], body["kantor"], body["status"],
            body["alasan"]) == ("KK-2026/0001", "kk-baru", "dinas", "perlu-perbaikan",
                                "Foto KTP buram")
    assert [(h["status_before"], h["status_after"], h["alasan"], h["source"])
            for h in body["history"]] == [
        (None, "diterima", None, "api"), ("diterima", "perlu-perbaikan", "Foto KTP buram", "api")]
    assert datetime.fromisoformat(body["status_changed_at"]).tzinfo is not None
    r = await c.get("/api/v1/applications/KK-9999", headers=_auth(token))
    assert r.status == 404 and (await r.json())["error"] == "not_found"


async def test_list_filters_and_pages_without_gaps(api: Any) -> None:
    c, token, _ = api
    items = [_item(f"KK-{n:04}", status="diproses" if n % 2 else "diterima",
                   kantor="kec-alak" if n < 3 else "dinas") for n in range(7)]
    assert (await _post(c, token, items))[0] == 200
    seen, after, pages = [], None, 0
    while True:
        query = {"limit": "3"} | ({"after": after} if after else {})
        r = await c.get("/api/v1/applications", params=query, headers=_auth(token))
        assert r.status == 200
        body = await r.json()
        seen += [a["nomor_registrasi"] for a in body["applications"]]
        pages += 1
        after = body["next"]
        if after is None:
            break
    assert pages == 3 and sorted(seen) == [f"KK-{n:04}" for n in range(7)]
    assert len(set(seen)) == 7
    r = await c.get("/api/v1/applications", params={"status": "diproses", "kantor": "kec-alak"},
                    headers=_auth(token))
    assert [a["nomor_registrasi"] for a in (await r.json())["applications"]] == ["KK-0001"]
    r = await c.get("/api/v1/applications", params={"changed_since": "2999-01-01"},
                    headers=_auth(token))
    assert (await r.json())["applications"] == []
    r = await c.get("/api/v1/applications", params={"changed_since": "2000-01-01T00:00:00Z"},
                    headers=_auth(token))
    assert len((await r.json())["applications"]) == 7
    r = await c.get("/api/v1/applications", headers=_auth(token), params={
        "limit": "0", "status": "selesai", "kantor": "x", "changed_since": "kemarin",
        "after": "bm90LWEtY3Vyc29y", "sort": "id"})
    assert r.status == 422
    named = {e["field"] for e in (await r.json())["errors"]}
    assert named == {"limit", "status", "kantor", "changed_since", "after", "sort"}


# -- writing -----------------------------------------------------------------------------


async def test_post_creates_then_updates_and_is_audited(lontar: Lontar, api: Any) -> None:
    c, token, _ = api
    status, body = await _post(c, token, [_item("KK-1"), _item("KK-2", nik=NIK_M)])
    assert status == 200
    assert body == {"received": 2, "created": 2, "updated": 0, "unchanged": 0, "notified": 0}
    status, body = await _post(c, token, [_item("KK-1", status="diproses"),
                                          _item("KK-2", nik=NIK_M)])
    assert (body["created"], body["updated"], body["unchanged"]) == (0, 1, 1)
    with lontar.db.engine.connect() as conn:
        history = conn.execute(select(app_update_t.c.status_after, app_update_t.c.source)
                               .order_by(app_update_t.c.id)).all()
    assert [tuple(h) for h in history] == [("diterima", "api"), ("diterima", "api"),
                                           ("diproses", "api")]
    assert [(a, t, d["token"], d["created"]) for a, t, d in _audit(lontar)] == [
        ("api:upsert", "2 applications", "simduk", 2),
        ("api:upsert", "2 applications", "simduk", 0)]


async def test_one_bad_item_writes_nothing_and_every_problem_is_named(lontar: Lontar,
                                                                      api: Any) -> None:
    c, token, woken = api
    items = [_item("KK-1"), _item("KK-2", kantor="kantor-x", statuss="diproses"),
             _item("KK-3", status=5), "KK-4", _item("kk-1")]
    status, body = await _post(c, token, items)
    assert status == 422 and body["error"] == "invalid"
    found = {(e.get("index"), e["field"], e["problem"]) for e in body["errors"]}
    assert (1, "statuss", "unknown field") in found
    assert any(i == 1 and f == "kantor" and "unknown office" in p for i, f, p in found)
    assert (2, "status", "must be text") in found
    assert (3, "applications", "must be an object") in found
    assert any(i == 4 and f == "nomor_registrasi" and "duplicate" in p for i, f, p in found)
    assert [e["index"] for e in body["errors"]] == sorted(e["index"] for e in body["errors"])
    assert _count(lontar, application_t) == 0 and _count(lontar, app_update_t) == 0
    assert _audit(lontar) == [] and woken == []


@pytest.mark.parametrize("payload,field,text", [
    ({"applications": "KK-1"}, "applications", "must be a list"),
    ({"applications": []}, "applications", "at least one"),
    ({}, "applications", "required"),
    ({"applications": [_item("KK-1")], "dry_run": True}, "dry_run", "unknown field"),
    ({"applications": [_item("KK-1", alasan=["a"])]}, "alasan", "must be text"),
    ({"applications": [_item("KK-1", tanggal_lahir=19900312)]}, "tanggal_lahir",
     "must be text"),
    ({"applications": [_item("KK-1") for _ in range(1001)]}, "applications", "at most 1000"),
])
async def test_bad_post_payloads_name_the_field(lontar: Lontar, api: Any, payload: Any,
                                                field: str, text: str) -> None:
    c, token, _ = api
    r = await c.post("/api/v1/applications", json=payload, headers=_auth(token))
    assert r.status == 422
    errors = (await r.json())["errors"]
    assert any(e["field"] == field and text in e["problem"] for e in errors), errors
    assert _count(lontar, application_t) == 0


async def test_patch_changes_status_and_tells_each_subscriber_once(lontar: Lontar,
                                                                  api: Any) -> None:
    c, token, woken = api
    await _post(c, token, [_item("KTP-7", layanan="ktp-baru")])
    now = datetime.now(UTC)
    with lontar.db.engine.begin() as conn:
        app_id = conn.execute(select(application_t.c.id)).scalar_one()
        for n, stopped in ((1, None), (2, None), (3, now)):  # the third stopped following
            contact = conn.execute(insert(contact_t), {
                "channel": "web", "external_id": f"subscriber-{n:07}", "language": "id",
                "opted_in": False, "created_at": now}).inserted_primary_key[0]
            conn.execute(insert(subscription_t), {"application_id": app_id,
                                                  "contact_id": contact, "created_at": now,
                                                  "stopped_at": stopped})
    woken.clear()
    r = await c.patch("/api/v1/applications/ktp-7", json={"status": "siap-diambil"},
                      headers=_auth(token))
    assert r.status == 200
    assert await r.json() == {"nomor_registrasi": "KTP-7", "status_before": "diterima",
                              "status": "siap-diambil", "changed": True, "notified": 2}
    with lontar.db.engine.connect() as conn:
        sent = conn.execute(select(outbox_t.c.contact_id, outbox_t.c.payload)).all()
        last = conn.execute(select(app_update_t.c.status_after, app_update_t.c.source)
                            .order_by(app_update_t.c.id.desc())).first()
    assert len(sent) == 2 and len({s.contact_id for s in sent}) == 2
    assert all(s.payload["text"].startswith("Permohonan KTP-7: Siap diambil.") for s in sent)
    assert tuple(last) == ("siap-diambil", "api")  # type: ignore[arg-type]
    assert woken == [frozenset({"web"})]
    r = await c.patch("/api/v1/applications/KTP-7", json={"status": "siap-diambil"},
                      headers=_auth(token))
    assert (await r.json())["changed"] is False and (await r.json())["notified"] == 0
    assert _count(lontar, outbox_t) == 2
    assert [(a, t) for a, t, _d in _audit(lontar)][-2:] == [("api:change_status", "KTP-7")] * 2
    r = await c.patch("/api/v1/applications/KTP-404", json={"status": "diproses"},
                      headers=_auth(token))
    assert r.status == 404 and (await r.json())["error"] == "not_found"


@pytest.mark.parametrize("payload,field,text", [
    ({"statuss": "diproses"}, "statuss", "unknown field"),
    ({"status": 3}, "status", "required, text"),
    ({"status": "diproses", "alasan": 7}, "alasan", "must be text"),
    ({"status": "ditolak"}, "alasan", "required for status ditolak"),
    ({"status": "selesai"}, "status", "unknown status"),
])
async def test_bad_patch_payloads_name_the_field(lontar: Lontar, api: Any, payload: Any,
                                                 field: str, text: str) -> None:
    c, token, _ = api
    await _post(c, token, [_item("KK-1")])
    r = await c.patch("/api/v1/applications/KK-1", json=payload, headers=_auth(token))
    assert r.status == 422
    assert any(e["field"] == field and text in e["problem"]
               for e in (await r.json())["errors"])
    with lontar.db.engine.connect() as conn:
        assert conn.execute(select(application_t.c.status)).scalar_one() == "diterima"


async def test_bodies_that_are_not_json_objects(lontar: Lontar, api: Any) -> None:
    c, token, _ = api
    url = "/api/v1/applications"
    cases = [({"data": b'{"applications": [', "headers": JSON_HEADERS}, 400, "bad_json"),
             ({"data": b"[1, 2]", "headers": JSON_HEADERS}, 400, "bad_json"),
             ({"data": b'{"applications": NaN}', "headers": JSON_HEADERS}, 400, "bad_json"),
             ({"data": b'{"a": "\xff"}', "headers": JSON_HEADERS}, 400, "bad_json"),
             ({"data": b"applications=1"}, 415, "unsupported_media_type"),
             ({"data": b"{}", "headers": {"Content-Type": "text/plain"}}, 415,
              "unsupported_media_type"),
             ({"data": b" " * 1_100_000, "headers": JSON_HEADERS}, 413, "too_large")]
    for kwargs, status, code in cases:
        headers = _auth(token) | kwargs.pop("headers", {})
        r = await c.post(url, headers=headers, **kwargs)
        assert (r.status, (await r.json())["error"]) == (status, code), kwargs
    r = await c.patch("/api/v1/applications/KK-1", data=b"nope", headers=_auth(token) |
                      JSON_HEADERS)
    assert r.status == 400
    assert _count(lontar, application_t) == 0


async def test_unknown_routes_and_methods_answer_json(client: TestClient) -> None:
    r = await client.get("/api/v1/tickets")
    assert r.status == 404 and (await r.json())["error"] == "not_found"
    r = await client.delete("/api/v1/applications/KK-1")
    assert r.status == 405 and r.headers["Allow"] == "GET, PATCH"
    assert (await r.json())["error"] == "method_not_allowed"


# -- description and privacy -------------------------------------------------------------


async def test_openapi_describes_every_route(client: TestClient) -> None:
    r = await client.get("/api/v1/openapi.json")
    assert r.status == 200
    doc = await r.json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    served = set()
    for route in client.app.router.routes():  # type: ignore[union-attr]
        path = route.resource.canonical if route.resource else ""
        if path.startswith("/api/v1/") and route.method not in ("*", "HEAD") \
                and "{tail" not in path:
            served.add((re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path), route.method.lower()))
    described = {(p, m) for p, ops in doc["paths"].items() for m in ops if m != "parameters"}
    assert served == described and len(served) == 5
    for path, method in described - {("/api/v1/openapi.json", "get")}:
        op = doc["paths"][path][method]
        assert "401" in op["responses"] and op["security"] == [{"bearer": []}], (path, method)
    statuses = doc["components"]["schemas"]["ApplicationInput"]["properties"]["status"]["enum"]
    assert "siap-diambil" in statuses
    validate(doc)  # the OpenAPI 3.1 schema itself


async def test_a_nik_never_leaves_in_a_response_or_a_log(
        lontar: Lontar, api: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    c, token, _ = api
    bodies = []
    for items in ([_item("KK-1", nik=NIK_BAD)],  # invalid: named, never echoed
                  [_item("KK-1", nik=NIK_M, kantor="nowhere")],  # valid NIK, other problem
                  [_item("KK-1", layanan=NIK_M)],  # a NIK in the wrong field
                  [_item("KK-1") | {NIK_M: "x"}],  # ... or as a key
                  [_item("KK-1", nik=NIK_M)]):  # accepted
        r = await c.post("/api/v1/applications", json={"applications": items},
                         headers=_auth(token))
        bodies.append(await r.text())
    assert [json.loads(b).get("error") for b in bodies] == ["invalid"] * 4 + [None]
    assert '"field": "nik"' in bodies[0]
    for path in ("/api/v1/applications/KK-1", "/api/v1/applications"):
        r = await c.get(path, headers=_auth(token))
        bodies.append(await r.text())
    assert "KK-1" in bodies[-1]
    for text in [*bodies, caplog.text]:
        assert NIK_M not in text and NIK_BAD not in text
    with lontar.db.engine.connect() as conn:
        assert conn.execute(select(application_t.c.nik_hmac)).scalar_one() not in (None, NIK_M)
