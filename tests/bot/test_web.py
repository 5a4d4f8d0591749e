"""The web chat's JSON API and page, through a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from aiohttp.test_utils import TestClient
from sqlmodel import func, select

from bot.app import Lontar
from bot.models import InboundMessage, Outbox

SESSION = "s" + "a" * 31


def _mid() -> str:
    return uuid.uuid4().hex


async def _post(client: TestClient, **body: Any) -> tuple[int, dict[str, Any]]:
    body.setdefault("session", SESSION)
    body.setdefault("message_id", _mid())
    resp = await client.post("/api/chat", json=body)
    return resp.status, await resp.json()


async def test_start_then_choose(client: TestClient, lontar: Lontar) -> None:
    status, data = await _post(client, command="start")
    assert status == 200
    first = data["messages"][-1]
    assert lontar.content.msg("id", "welcome") in data["messages"][0]["text"]
    assert first["options"]
    status, data2 = await _post(client, choice=first["options"][0]["id"], after=data["cursor"])
    assert status == 200 and data2["cursor"] > data["cursor"]
    assert all(m["id"] > data["cursor"] for m in data2["messages"])


async def test_free_text_with_typos(client: TestClient, lontar: Lontar) -> None:
    _, data = await _post(client, text="syarat bikin akte kelahran anak sy")
    text = data["messages"][-1]["text"]
    assert lontar.content.services["akta-kelahiran"].bring.id in text


async def test_retried_post_is_processed_once(client: TestClient, lontar: Lontar) -> None:
    mid = _mid()
    _, first = await _post(client, text="halo", message_id=mid)
    _, again = await _post(client, text="halo", message_id=mid)
    assert again["messages"] == first["messages"]  # same cursor 0: the same replies again
    with lontar.db.session() as s:
        assert s.exec(select(func.count()).select_from(InboundMessage)).one() == 1


async def test_poll_returns_later_messages_once_per_cursor(client: TestClient) -> None:
    _, data = await _post(client, command="start")
    resp = await client.get("/api/chat", params={"session": SESSION, "after": data["cursor"]})
    assert (await resp.json())["messages"] == []
    resp = await client.get("/api/chat", params={"session": SESSION, "after": 0})
    assert [m["id"] for m in (await resp.json())["messages"]] == [
        m["id"] for m in data["messages"]]


async def test_replies_are_marked_sent_when_fetched(client: TestClient, lontar: Lontar) -> None:
    await _post(client, command="start")
    with lontar.db.session() as s:
        statuses = set(s.exec(select(Outbox.status)).all())
    assert statuses == {"sent"}


async def test_malformed_json_is_a_clean_400(client: TestClient, lontar: Lontar) -> None:
    resp = await client.post("/api/chat", data=b"{not json",
                             headers={"Content-Type": "application/json"})
    assert resp.status == 400
    body = await resp.json()
    assert body["message"] == lontar.content.msg("id", "web_bad_request")


async def test_bad_fields_are_400(client: TestClient) -> None:
    for body in (
        {"session": "short", "message_id": _mid(), "text": "x"},
        {"session": SESSION, "message_id": _mid()},
        {"session": SESSION, "message_id": _mid(), "text": "a", "choice": "b"},
        {"session": SESSION, "message_id": _mid(), "text": 5},
        {"session": SESSION, "message_id": _mid(), "text": "x", "extra": 1},
        {"session": SESSION, "message_id": "../../etc", "text": "x"},
        [1, 2, 3],
    ):
        resp = await client.post("/api/chat", json=body)
        assert resp.status == 400, body
    resp = await client.get("/api/chat", params={"session": "x", "after": "abc"})
    assert resp.status == 400


async def test_oversized_body_is_413(client: TestClient) -> None:
    resp = await client.post("/api/chat", data=b"x" * 200_000,
                             headers={"Content-Type": "application/json"})
    assert resp.status == 413
    assert "message" in await resp.json()


async def test_ten_thousand_characters_get_a_reply(client: TestClient, lontar: Lontar) -> None:
    status, data = await _post(client, text="ktp hilang " + "a" * 10_000)
    assert status == 200
    assert lontar.content.msg("id", "too_long") in data["messages"][0]["text"]


async def test_stale_button_over_http(client: TestClient, lontar: Lontar) -> None:
    _, d1 = await _post(client, command="start")
    old = d1["messages"][-1]["options"]
    _, d2 = await _post(client, choice=old[0]["id"], after=d1["cursor"])
    _, d3 = await _post(client, choice=old[1]["id"], after=d2["cursor"])
    assert lontar.content.msg("id", "stale_button") in d3["messages"][0]["text"]


async def test_rate_limit(lontar: Lontar) -> None:
    from aiohttp.test_utils import TestServer

    from bot.app import web_app

    lontar.settings.web_rate_per_minute = 3
    async with TestClient(TestServer(web_app(lontar))) as c:
        codes = [(await _post(c, text=f"halo {i}"))[0] for i in range(5)]
    assert codes == [200, 200, 200, 429, 429]


async def test_concurrent_messages_of_one_session_are_serialised(
        client: TestClient, lontar: Lontar) -> None:
    results = await asyncio.gather(*[_post(client, text="menu") for _ in range(20)])
    assert all(code == 200 for code, _ in results)
    from bot.models import Conversation

    with lontar.db.session() as s:
        conv = s.exec(select(Conversation)).one()
    assert conv.turns == 20 and conv.state["seq"] == 20


async def test_page_and_static_files(client: TestClient, lontar: Lontar) -> None:
    resp = await client.get("/")
    html = await resp.text()
    assert resp.status == 200
    assert lontar.content.msg("id", "web_placeholder") in html
    assert "http://" not in html and "https://" not in html  # no CDN
    for path in ("/static/chat.js", "/static/chat.css"):
        assert (await client.get(path)).status == 200
    assert (await client.get("/static/../bot/app.py")).status in (403, 404)
    assert (await client.get("/healthz")).status == 200


async def test_message_ids_are_per_session(client: TestClient) -> None:
    """Another session reusing a message id is not mistaken for a redelivery."""
    mid = _mid()
    _, mine = await _post(client, text="halo", message_id=mid)
    _, theirs = await _post(client, text="halo", message_id=mid, session="t" + "b" * 31)
    assert theirs["messages"] and theirs["messages"][0]["id"] not in [
        m["id"] for m in mine["messages"]]


async def test_unexpected_error_is_a_clean_500(client: TestClient, lontar: Lontar,
                                               monkeypatch) -> None:  # type: ignore[no-untyped-def]
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(lontar.inbox, "handle", broken)
    resp = await client.post("/api/chat", json={"session": SESSION, "message_id": _mid(),
                                                "text": "halo"})
    assert resp.status == 500
    assert (await resp.json())["message"] == lontar.content.msg("id", "web_error")
