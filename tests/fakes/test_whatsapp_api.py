"""The fake WhatsApp Cloud API, driven with a plain aiohttp client over loopback."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.fakes.whatsapp_api import (
    MEDIA_TTL_SECONDS,
    PARAM_WHITESPACE,
    FakeWhatsApp,
    batch,
    malformed_message,
    meta_json,
    sign,
)

TOKEN = "TEST-TOKEN"
PNID = "1234567890"
SECRET = "app-secret"
USER = "6281234567890"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeWhatsApp]:
    async with FakeWhatsApp(token=TOKEN, phone_number_id=PNID, app_secret=SECRET) as f:
        yield f


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as s:
        yield s


@dataclass
class Receiver:
    """A loopback webhook endpoint that keeps the raw bodies and headers it got."""

    url: str = ""
    answer: int = 200
    hits: list[tuple[bytes, dict[str, str]]] = field(default_factory=list)

    def json(self, i: int = -1) -> dict[str, Any]:
        return json.loads(self.hits[i][0])


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    rec = Receiver()

    async def handle(request: web.Request) -> web.Response:
        rec.hits.append((await request.read(), dict(request.headers)))
        if request.method == "GET":
            ok = request.query.get("hub.verify_token") == "verify-me"
            text = request.query.get("hub.challenge", "") if ok else "no"
            return web.Response(text=text, status=200 if ok else 403)
        return web.Response(text="ok", status=rec.answer)

    app = web.Application()
    app.router.add_route("*", "/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    rec.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    yield rec
    await runner.cleanup()


async def post(
    http: aiohttp.ClientSession,
    fake: FakeWhatsApp,
    body: dict[str, Any],
    *,
    headers: dict[str, str] | None = None,
    pnid: str = PNID,
) -> tuple[int, dict[str, Any]]:
    url = f"{fake.base_url}/{pnid}/messages"
    async with http.post(url, json=body, headers=AUTH if headers is None else headers) as r:
        return r.status, await r.json()


def send(mtype: str, obj: dict[str, Any], to: str = USER, **extra: Any) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp", "recipient_type": "individual", "to": to,
        "type": mtype, mtype: obj, **extra,
    }


def text(body: str, to: str = USER) -> dict[str, Any]:
    return send("text", {"body": body}, to)


def buttons(*titles: str, body: str = "Pilih layanan") -> dict[str, Any]:
    return send(
        "interactive",
        {
            "type": "button",
            "body": {"text": body},
            "action": {
                "buttons": [
                    {"type": "reply", "reply": {"id": f"b{i}", "title": t}}
                    for i, t in enumerate(titles)
                ]
            },
        },
    )


def list_msg(*sections: list[str], button: str = "Lihat menu", titled: bool = True) -> dict:
    secs = []
    n = 0
    for si, rows in enumerate(sections):
        sec: dict[str, Any] = {"rows": []}
        if titled:
            sec["title"] = f"Bagian {si}"
        for title in rows:
            sec["rows"].append({"id": f"r{n}", "title": title})
            n += 1
        secs.append(sec)
    return send(
        "interactive",
        {
            "type": "list",
            "body": {"text": "Layanan Dukcapil"},
            "action": {"button": button, "sections": secs},
        },
    )


def template(name: str = "dokumen_siap", *params: str) -> dict[str, Any]:
    tpl: dict[str, Any] = {"name": name, "language": {"code": "id"}}
    if params:
        tpl["components"] = [
            {"type": "body", "parameters": [{"type": "text", "text": p} for p in params]}
        ]
    return send("template", tpl)


def assert_graph_error(body: dict[str, Any], code: int, detail_part: str = "") -> None:
    err = body["error"]
    assert set(err) >= {"message", "type", "code", "error_data", "fbtrace_id"}
    assert err["code"] == code
    assert err["type"] == "OAuthException"
    assert err["error_data"]["messaging_product"] == "whatsapp"
    assert isinstance(err["fbtrace_id"], str) and err["fbtrace_id"]
    assert detail_part in err["error_data"]["details"]


def failed_status(env: dict[str, Any]) -> dict[str, Any]:
    change = env["entry"][0]["changes"][0]
    assert change["field"] == "messages"
    (st,) = change["value"]["statuses"]
    return st


# -- lifecycle and auth ------------------------------------------------------------------------


async def test_start_gives_versioned_base_url_and_stop_closes() -> None:
    fake = FakeWhatsApp()
    base = await fake.start()
    assert base == fake.base_url
    assert base.startswith("http://127.0.0.1:") and base.endswith("/v23.0")
    await fake.stop()
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientConnectionError):
            await http.get(f"{base}/1")


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}]
)
async def test_missing_or_wrong_token_is_401_code_190(
    fake: FakeWhatsApp, http: aiohttp.ClientSession, headers: dict[str, str]
) -> None:
    fake.open_window(USER)
    status, body = await post(http, fake, text("halo"), headers=headers)
    assert status == 401
    assert_graph_error(body, 190)
    assert body["error"]["message"].startswith("Error validating access token")
    assert fake.sent == []
    mid = fake.add_media()
    async with http.get(f"{fake.base_url}/{mid}", headers=headers) as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == 190
    assert fake.count(status=401) == 2


async def test_unknown_phone_number_id_and_missing_product(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    status, body = await post(http, fake, text("halo"), pnid="999")
    assert status == 400
    assert_graph_error(body, 100)
    assert body["error"]["error_subcode"] == 33
    no_product = text("halo")
    del no_product["messaging_product"]
    status, body = await post(http, fake, no_product)
    assert status == 400
    assert "messaging_product" in body["error"]["message"]
    assert fake.sent == []


# -- sending -----------------------------------------------------------------------------------


async def test_text_send_returns_wamid_and_is_recorded(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.open_window(USER)
    req = text("Selamat datang di Dukcapil Kota Kupang")
    status, body = await post(http, fake, req)
    assert status == 200
    assert body["messaging_product"] == "whatsapp"
    assert body["contacts"] == [{"input": USER, "wa_id": USER}]
    wamid = body["messages"][0]["id"]
    assert wamid.startswith("wamid.HBg")
    (s,) = fake.sent
    assert (s.wamid, s.to, s.type, s.body) == (wamid, USER, "text", req)
    assert s.text == "Selamat datang di Dukcapil Kota Kupang"
    assert s.failed_code is None
    assert fake.sent_to(USER) == [s] and fake.sent_to("628000") == []
    assert fake.pending_statuses == []
    status, body2 = await post(http, fake, text("lagi"))
    assert body2["messages"][0]["id"] != wamid
    assert fake.count("send", 200) == 2
    assert [r.kind for r in fake.requests] == ["send", "send"]
    assert fake.requests[0].json == req and fake.requests[0].path == f"/v23.0/{PNID}/messages"


async def test_plus_prefixed_to_is_normalised_to_wa_id(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.open_window(USER)
    status, body = await post(http, fake, text("halo", to="+" + USER))
    assert status == 200
    assert body["contacts"] == [{"input": "+" + USER, "wa_id": USER}]
    assert fake.sent_to(USER)[0].failed_code is None


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        ("", 100, "text['body']"),
        ("x" * 4097, 100, "text['body']"),
    ],
)
async def test_text_length_limits(
    fake: FakeWhatsApp, http: aiohttp.ClientSession, body: str, code: int, detail: str
) -> None:
    fake.open_window(USER)
    status, resp = await post(http, fake, text(body))
    assert status == 400
    assert_graph_error(resp, code, detail)
    status, _ = await post(http, fake, text("x" * 4096))
    assert status == 200
    assert len(fake.sent) == 1


def _row_with(**row: str) -> dict[str, Any]:
    req = list_msg(["a"])
    req["interactive"]["action"]["sections"][0]["rows"][0].update(row)
    return req


INVALID_INTERACTIVE = {
    "4 buttons": (buttons("A", "B", "C", "D"), "['buttons']"),
    "button title 21": (buttons("x" * 21), "['reply']['title']"),
    "empty button title": (buttons(""), "['reply']['title']"),
    "duplicate titles": (buttons("Sama", "Sama"), "duplicate button title"),
    "body 1025": (buttons("A", body="x" * 1025), "['body']['text']"),
    "11 rows": (list_msg(["r"] * 6, ["s"] * 5), "total row count"),
    "11 rows in one section": (list_msg(["r"] * 11), "['rows']"),
    "row title 25": (list_msg(["x" * 25]), "['rows'][0]['title']"),
    "row description 73": (_row_with(description="d" * 73), "['description']"),
    "row id 201": (_row_with(id="i" * 201), "['rows'][0]['id']"),
    "list button 21": (list_msg(["a"], button="x" * 21), "['action']['button']"),
    "untitled sections": (list_msg(["a"], ["b"], titled=False), "['sections'][0]['title']"),
    "11 sections": (list_msg(*[["r"]] * 11), "['sections']"),
}


@pytest.mark.parametrize("case", list(INVALID_INTERACTIVE))
async def test_interactive_limits_are_400_with_graph_error(
    fake: FakeWhatsApp, http: aiohttp.ClientSession, case: str
) -> None:
    fake.open_window(USER)
    req, detail = INVALID_INTERACTIVE[case]
    status, body = await post(http, fake, req)
    assert status == 400
    assert body["error"]["code"] in (100, 131009)
    assert_graph_error(body, body["error"]["code"], detail)
    assert fake.sent == []


async def test_interactive_at_the_limits_is_accepted(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.open_window(USER)
    ok = [
        buttons("a" * 20, "B", "C", body="x" * 1024),
        list_msg(["x" * 24] * 6, ["y"] * 4, button="z" * 20),
        list_msg(["satu"], titled=False),
    ]
    for req in ok:
        status, body = await post(http, fake, req)
        assert status == 200, body
    assert [s.interactive_type for s in fake.sent] == ["button", "list", "list"]
    assert fake.sent[0].buttons == [("b0", "a" * 20), ("b1", "B"), ("b2", "C")]
    assert len(fake.sent[1].buttons) == 10


async def test_header_and_footer_limits(fake: FakeWhatsApp, http: aiohttp.ClientSession) -> None:
    fake.open_window(USER)
    req = buttons("A")
    req["interactive"]["header"] = {"type": "text", "text": "h" * 61}
    status, body = await post(http, fake, req)
    assert status == 400 and "['header']['text']" in body["error"]["error_data"]["details"]
    req["interactive"]["header"]["text"] = "h" * 60
    req["interactive"]["footer"] = {"text": "f" * 61}
    status, body = await post(http, fake, req)
    assert status == 400 and "['footer']['text']" in body["error"]["error_data"]["details"]
    req["interactive"]["footer"]["text"] = "f" * 60
    status, _ = await post(http, fake, req)
    assert status == 200


@pytest.mark.parametrize(
    ("req", "detail"),
    [
        (send("location", {"latitude": -10.17}), "location['longitude']"),
        (send("image", {"caption": "foto"}), "image['id']"),
        (send("sticker_pack", {"id": "1"}), "Param type"),
        (send("text", {"body": "x"}, context={"message_id": 5}), "context['message_id']"),
        (send("template", {"language": {"code": "id"}}), "template['name']"),
        (send("template", {"name": "dokumen_siap"}), "template['language']"),
    ],
)
async def test_other_invalid_sends(
    fake: FakeWhatsApp, http: aiohttp.ClientSession, req: dict[str, Any], detail: str
) -> None:
    fake.open_window(USER)
    status, body = await post(http, fake, req)
    assert status == 400
    assert_graph_error(body, 100, detail)


async def test_location_image_document_accepted(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.open_window(USER)
    for req in (
        send("location", {"latitude": -10.1772, "longitude": 123.607, "name": "Dukcapil"}),
        send("image", {"link": "https://example.org/a.jpg", "caption": "Denah"}),
        send("document", {"id": "123", "filename": "syarat.pdf"}),
    ):
        status, body = await post(http, fake, req)
        assert status == 200, body
    assert [s.type for s in fake.sent] == ["location", "image", "document"]
    assert fake.sent[1].text == "Denah"


# -- the 24-hour window ------------------------------------------------------------------------


async def test_template_is_accepted_outside_the_window(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    assert not fake.window_open(USER)
    status, body = await post(http, fake, template("dokumen_siap", "KTP-el"))
    assert status == 200
    assert body["messages"][0]["message_status"] == "accepted"
    assert fake.sent[0].failed_code is None
    assert fake.pending_statuses == []


async def test_free_form_outside_window_is_accepted_then_fails_131047(
    fake: FakeWhatsApp, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    req = text("Dokumen Anda sudah siap")
    req["biz_opaque_callback_data"] = "job-17"
    status, body = await post(http, fake, req)
    assert status == 200
    wamid = body["messages"][0]["id"]
    assert fake.sent[0].failed_code == 131047
    (env,) = fake.pending_statuses
    st = failed_status(env)
    assert st["id"] == wamid and st["status"] == "failed" and st["recipient_id"] == USER
    assert st["biz_opaque_callback_data"] == "job-17"
    (err,) = st["errors"]
    assert err["code"] == 131047 and err["title"] == "Re-engagement message"
    assert "24 hours" in err["error_data"]["details"]
    assert env["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] == PNID

    assert await fake.flush_statuses(receiver.url) == [200]
    assert fake.pending_statuses == []
    raw, headers = receiver.hits[0]
    assert headers["X-Hub-Signature-256"] == sign(raw, SECRET)
    assert failed_status(json.loads(raw))["id"] == wamid


async def test_window_opens_with_inbound_and_closes_after_24h(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.text_message(USER, "halo")
    assert fake.window_open(USER)
    await post(http, fake, text("1"))
    fake.advance(23 * 3600)
    await post(http, fake, text("2"))
    fake.advance(2 * 3600)
    assert not fake.window_open(USER)
    await post(http, fake, text("3"))
    fake.button_reply(USER, "akta", "Akta")
    await post(http, fake, text("4"))
    fake.close_window(USER)
    await post(http, fake, text("5"))
    assert [s.failed_code for s in fake.sent] == [None, None, 131047, None, 131047]
    assert len(fake.pending_statuses) == 2


async def test_failed_flush_keeps_status_queued(
    fake: FakeWhatsApp, http: aiohttp.ClientSession, receiver: Receiver
) -> None:
    await post(http, fake, text("x"))
    receiver.answer = 500
    assert await fake.flush_statuses(receiver.url) == [500]
    assert len(fake.pending_statuses) == 1
    receiver.answer = 200
    assert await fake.flush_statuses(receiver.url) == [200]
    assert fake.pending_statuses == []


async def test_auto_statuses_for_successful_sends(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.auto_statuses = ("sent", "delivered")
    fake.open_window(USER)
    _, body = await post(http, fake, text("x"))
    sts = [failed_status(e) for e in fake.pending_statuses]
    assert [s["status"] for s in sts] == ["sent", "delivered"]
    assert {s["id"] for s in sts} == {body["messages"][0]["id"]}
    assert "errors" not in sts[0] and sts[0]["pricing"]["category"] == "service"


# -- templates ---------------------------------------------------------------------------------


@pytest.mark.parametrize("param", ["baris\nbaru", "tab\there", "lima     spasi"])
async def test_template_param_whitespace_is_rejected(
    fake: FakeWhatsApp, http: aiohttp.ClientSession, param: str
) -> None:
    status, body = await post(http, fake, template("dokumen_siap", param))
    assert status == 400
    assert_graph_error(body, 100, PARAM_WHITESPACE)
    status, _ = await post(http, fake, template("dokumen_siap", "empat    spasi"))
    assert status == 200


async def test_registered_templates_check_name_and_param_count(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.register_template("dokumen_siap", "id", body_params=1)
    status, body = await post(http, fake, template("tidak_ada", "x"))
    assert status == 400 and body["error"]["code"] == 132001
    status, body = await post(http, fake, template("dokumen_siap", "x", "y"))
    assert status == 400 and body["error"]["code"] == 132000
    status, _ = await post(http, fake, template("dokumen_siap", "KK"))
    assert status == 200


async def test_marketing_template_after_stop_fails_131050(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.register_template("promo", "id", category="MARKETING")
    fake.register_template("dokumen_siap", "id")
    fake.user_preferences(USER, "stop")
    await post(http, fake, template("promo"))
    await post(http, fake, template("dokumen_siap"))
    fake.user_preferences(USER, "resume")
    await post(http, fake, template("promo"))
    assert [s.failed_code for s in fake.sent] == [131050, None, None]


# -- faults and limits -------------------------------------------------------------------------


async def test_fail_next(fake: FakeWhatsApp, http: aiohttp.ClientSession) -> None:
    fake.open_window(USER)
    fake.fail_next(400, 130429, count=2)
    fake.fail_next(500, 131000, details="boom")
    for _ in range(2):
        status, body = await post(http, fake, text("x"))
        assert status == 400
        assert_graph_error(body, 130429)
        assert body["error"]["message"] == "(#130429) Rate limit hit"
    status, body = await post(http, fake, text("x"))
    assert status == 500
    assert_graph_error(body, 131000, "boom")
    status, _ = await post(http, fake, text("x"))
    assert status == 200
    assert len(fake.sent) == 1
    assert fake.count("send", 400) == 2 and fake.count("send", 500) == 1


async def test_fail_next_default_is_undeliverable_and_can_target_reads(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.open_window(USER)
    fake.fail_next()
    fake.fail_next(401, 190, on="read")
    read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"}
    status, body = await post(http, fake, read)
    assert status == 401 and body["error"]["code"] == 190
    status, body = await post(http, fake, text("x"))
    assert status == 400
    assert body["error"]["message"] == "(#131026) Message undeliverable"
    assert fake.read_marks == [] and fake.sent == []


async def test_fail_later_accepts_then_queues_failed_status(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.open_window(USER)
    fake.fail_later(USER, 131026)
    _, first = await post(http, fake, text("x"))
    await post(http, fake, text("y"))
    assert [s.failed_code for s in fake.sent] == [131026, None]
    (env,) = fake.pending_statuses
    st = failed_status(env)
    assert st["id"] == first["messages"][0]["id"]
    assert st["errors"][0]["code"] == 131026


async def test_rate_limit_130429_sliding_window(http: aiohttp.ClientSession) -> None:
    async with FakeWhatsApp(rate_limit_per_second=20) as fake:
        fake.open_window(USER)
        results = [(await post(http, fake, text(str(i))))[0] for i in range(22)]
        assert results.count(200) == 20 and results[20:] == [400, 400]
        assert len(fake.rejected_rate) == 2
        read = {"messaging_product": "whatsapp", "status": "read", "message_id": "wamid.X"}
        status, _ = await post(http, fake, read)
        assert status == 200  # mark-read is not counted
        status, body = await post(http, fake, text("x"))
        assert status == 400
        assert_graph_error(body, 130429)
        await asyncio.sleep(1.01)  # let the one-second window slide past the burst
        status, _ = await post(http, fake, text("later"))
        assert status == 200
        assert len(fake.sent) == 21


async def test_delay(fake: FakeWhatsApp, http: aiohttp.ClientSession) -> None:
    fake.open_window(USER)
    fake.delay = 0.15
    t0 = time.monotonic()
    await post(http, fake, text("x"))
    assert time.monotonic() - t0 >= 0.15


# -- mark read ---------------------------------------------------------------------------------


async def test_mark_read(fake: FakeWhatsApp, http: aiohttp.ClientSession) -> None:
    env = fake.text_message(USER, "halo")
    wamid = env["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    body = {"messaging_product": "whatsapp", "status": "read", "message_id": wamid}
    status, resp = await post(http, fake, body)
    assert (status, resp) == (200, {"success": True})
    body["typing_indicator"] = {"type": "text"}
    await post(http, fake, body)
    assert fake.read_marks == [wamid, wamid]
    assert fake.typing_indicators == [wamid]
    assert fake.sent == [] and fake.count("read") == 2
    status, resp = await post(http, fake, {"messaging_product": "whatsapp", "status": "read"})
    assert status == 400 and resp["error"]["code"] == 100


# -- media -------------------------------------------------------------------------------------


async def test_media_metadata_and_download_with_bearer(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    size = 20 * 1024 * 1024
    mid = fake.add_media("image/jpeg", size)
    async with http.get(f"{fake.base_url}/{mid}", headers=AUTH) as r:
        assert r.status == 200
        meta = await r.json()
    assert meta["messaging_product"] == "whatsapp"
    assert (meta["id"], meta["mime_type"], meta["file_size"]) == (mid, "image/jpeg", size)
    assert meta["url"].startswith(f"{fake.root_url}/media-download/{mid}?token=")
    async with http.get(meta["url"]) as r:
        assert r.status == 401
        assert (await r.json())["error"]["code"] == 190
    async with http.get(meta["url"], headers=AUTH) as r:
        assert r.status == 200
        assert r.headers["Content-Type"] == "image/jpeg"
        data = await r.read()
    assert len(data) == size
    assert hashlib.sha256(data).hexdigest() == meta["sha256"]
    assert data[:3] == b"\xff\xd8\xff"
    assert len(set(data[:4096])) > 100  # not constant filler
    assert fake.media[mid].content == data
    assert fake.count("media") == 1 and fake.count("download") == 2


async def test_media_bytes_are_deterministic_and_content_can_be_given() -> None:
    a, b = FakeWhatsApp(), FakeWhatsApp()
    assert a.media[a.add_media("application/pdf", 1000)].content == (
        b.media[b.add_media("application/pdf", 1000)].content
    )
    mid = a.add_media("text/plain", content=b"isi")
    assert a.media[mid].content == b"isi" and a.media[mid].size == 3


async def test_unknown_media_and_bad_download_url(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    async with http.get(f"{fake.base_url}/424242", headers=AUTH) as r:
        assert r.status == 400
        assert_graph_error(await r.json(), 100)
    mid = fake.add_media("image/png", 100)
    async with http.get(f"{fake.root_url}/media-download/{mid}?token=nope", headers=AUTH) as r:
        assert r.status == 404
    async with http.get(f"{fake.base_url}/{mid}", headers=AUTH) as r:
        url = (await r.json())["url"]
    fake.media_url_ttl = 0.0
    async with http.get(url, headers=AUTH) as r:
        assert r.status == 404


# -- uploads -----------------------------------------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def upload_form(
    data: bytes | None = PNG,
    mime: str | None = "image/png",
    product: str | None = "whatsapp",
    *,
    part_type: str | None = None,
) -> aiohttp.FormData:
    """The multipart body Meta expects; None leaves a field out."""
    form = aiohttp.FormData()
    if product is not None:
        form.add_field("messaging_product", product)
    if mime is not None:
        form.add_field("type", mime)
    if data is not None:
        form.add_field(
            "file", data, filename="gambar.png", content_type=part_type or mime or "image/png"
        )
    return form


async def upload(
    http: aiohttp.ClientSession,
    fake: FakeWhatsApp,
    form: aiohttp.FormData,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, Any]]:
    url = f"{fake.base_url}/{PNID}/media"
    async with http.post(url, data=form, headers=AUTH if headers is None else headers) as r:
        return r.status, await r.json()


async def test_upload_stores_the_bytes_and_returns_an_id(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    status, body = await upload(http, fake, upload_form())
    assert status == 200 and set(body) == {"id"}
    media = fake.media[body["id"]]
    assert (media.content, media.mime_type, media.filename) == (PNG, "image/png", "gambar.png")
    assert media.expires_at is not None
    assert abs(media.expires_at - fake.now() - MEDIA_TTL_SECONDS) < 5
    async with http.get(f"{fake.base_url}/{body['id']}", headers=AUTH) as r:
        meta = await r.json()
    assert (meta["mime_type"], meta["file_size"]) == ("image/png", len(PNG))
    assert meta["sha256"] == hashlib.sha256(PNG).hexdigest()
    assert fake.count("upload", 200) == 1 and not fake.sent


async def test_upload_needs_the_token_and_the_phone_number_id(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}):
        status, body = await upload(http, fake, upload_form(), headers)
        assert status == 401 and body["error"]["code"] == 190
    async with http.post(f"{fake.base_url}/999/media", data=upload_form(), headers=AUTH) as r:
        assert r.status == 400 and (await r.json())["error"]["code"] == 100
    assert not fake.media


@pytest.mark.parametrize(
    ("form", "detail"),
    [
        (upload_form(product=None), "messaging_product"),
        (upload_form(product="messenger"), "messaging_product"),
        (upload_form(data=None), "file"),
        (upload_form(mime=None, part_type="image/png"), "type"),
    ],
)
async def test_upload_missing_field_is_400_code_100(
    fake: FakeWhatsApp, http: aiohttp.ClientSession, form: aiohttp.FormData, detail: str
) -> None:
    status, body = await upload(http, fake, form)
    assert status == 400
    assert_graph_error(body, 100, detail)
    assert not fake.media


async def test_upload_json_instead_of_multipart_is_refused(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    url = f"{fake.base_url}/{PNID}/media"
    async with http.post(url, json={"messaging_product": "whatsapp"}, headers=AUTH) as r:
        assert r.status == 400  # none of the form's fields is there
        assert_graph_error(await r.json(), 100, "messaging_product")


async def test_upload_type_size_and_content_checks(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    status, body = await upload(http, fake, upload_form(b"GIF89a" + PNG, "image/gif"))
    assert status == 400
    assert_graph_error(body, 100, "Received file of type 'image/gif'")
    big = PNG + b"\0" * (5 * 1024 * 1024)
    status, body = await upload(http, fake, upload_form(big))
    assert status == 400
    assert_graph_error(body, 131053, "exceeds the maximum of 5242880 bytes")
    status, body = await upload(http, fake, upload_form(b"not a picture at all", "image/jpeg"))
    assert status == 400
    assert_graph_error(body, 131053, "image/jpeg")
    status, body = await upload(http, fake, upload_form(b"", "image/png"))
    assert status == 400 and body["error"]["code"] == 131053
    # at the limit is fine; the part's own type wins over a generic one
    exact = PNG + b"\0" * (5 * 1024 * 1024 - len(PNG))
    status, body = await upload(http, fake, upload_form(exact))
    assert status == 200
    status, body = await upload(
        http, fake, upload_form(PNG, "image/png", part_type="application/octet-stream")
    )
    assert status == 200 and fake.media[body["id"]].mime_type == "image/png"
    assert len(fake.media) == 2


async def test_fail_next_on_upload(fake: FakeWhatsApp, http: aiohttp.ClientSession) -> None:
    fake.fail_next(500, 131000, on="upload")
    fake.open_window(USER)
    status, _ = await post(http, fake, text("x"))  # sends are not affected
    assert status == 200
    status, body = await upload(http, fake, upload_form())
    assert status == 500
    assert_graph_error(body, 131000)
    status, _ = await upload(http, fake, upload_form())
    assert status == 200
    assert fake.count("upload", 500) == 1 and len(fake.media) == 1
    with pytest.raises(ValueError):
        fake.fail_next(on="uploads")


async def test_sends_with_uploaded_expired_or_unknown_media(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.open_window(USER)
    _, body = await upload(http, fake, upload_form())
    mid = body["id"]
    header = buttons("Ya", "Tidak")
    header["interactive"]["header"] = {"type": "image", "image": {"id": mid}}
    for req in (send("image", {"id": mid, "caption": "Jemput bola"}), header):
        status, _ = await post(http, fake, req)
        assert status == 200
    assert [s.failed_code for s in fake.sent] == [None, None] and not fake.pending_statuses
    assert fake.sent[0].text == "Jemput bola"
    # expired (30 days, or ended early): accepted, then a failed status 131053
    fake.expire_media(mid)
    assert fake.live_media(mid) is None
    async with http.get(f"{fake.base_url}/{mid}", headers=AUTH) as r:
        assert r.status == 400
    for req in (send("image", {"id": mid}), header, send("image", {"id": "424242"})):
        status, _ = await post(http, fake, req)
        assert status == 200
    assert [s.failed_code for s in fake.sent[2:]] == [131053] * 3
    st = failed_status(fake.pending_statuses[-1])
    assert st["status"] == "failed" and st["errors"][0]["code"] == 131053
    # or refused at once
    fake.unknown_media = "reject"
    status, body = await post(http, fake, header)
    assert status == 400
    assert_graph_error(body, 131053, mid)
    assert len(fake.sent) == 5


async def test_uploaded_media_lasts_thirty_days(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    _, body = await upload(http, fake, upload_form())
    fake.advance(MEDIA_TTL_SECONDS - 60)
    assert fake.live_media(body["id"]) is not None
    fake.advance(120)
    assert fake.live_media(body["id"]) is None
    assert fake.live_media(fake.add_media()) is not None  # a user's media has no such clock


# -- builders ----------------------------------------------------------------------------------


def only_message(env: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    assert env["object"] == "whatsapp_business_account"
    (entry,) = env["entry"]
    assert entry["id"]
    (change,) = entry["changes"]
    assert change["field"] == "messages"
    value = change["value"]
    assert value["messaging_product"] == "whatsapp"
    assert value["metadata"]["phone_number_id"] == PNID
    assert value["metadata"]["display_phone_number"].isdigit()
    (msg,) = value["messages"]
    assert msg["id"].startswith("wamid.HBg")
    assert msg["timestamp"].isdigit() and abs(int(msg["timestamp"]) - time.time()) < 5
    return value, msg


async def test_text_message_envelope(fake: FakeWhatsApp) -> None:
    value, msg = only_message(fake.text_message(USER, "Bagaimana cara urus KTP?", name="Yosef"))
    assert value["contacts"] == [{"profile": {"name": "Yosef"}, "wa_id": USER}]
    assert msg["from"] == USER and msg["type"] == "text"
    assert msg["text"] == {"body": "Bagaimana cara urus KTP?"}
    assert "context" not in msg
    assert fake.window_open(USER)
    _, reply = only_message(fake.text_message(USER, "ya", reply_to="wamid.ABC"))
    assert reply["context"] == {"from": fake.display_phone_number, "id": "wamid.ABC"}
    assert reply["id"] != msg["id"]
    assert fake.inbound == [msg, reply]


async def test_interactive_reply_builders_point_at_the_last_sent_message(
    fake: FakeWhatsApp, http: aiohttp.ClientSession
) -> None:
    fake.open_window(USER)
    _, b = await post(http, fake, buttons("KTP", "KK"))
    _, lst = await post(http, fake, list_msg(["Akta lahir"]))
    _, msg = only_message(fake.button_reply(USER, "b0", "KTP"))
    assert msg["type"] == "interactive"
    assert msg["interactive"] == {
        "type": "button_reply", "button_reply": {"id": "b0", "title": "KTP"}
    }
    assert msg["context"]["id"] == b["messages"][0]["id"]
    _, msg = only_message(fake.list_reply(USER, "r0", "Akta lahir", "Baru lahir"))
    assert msg["interactive"] == {
        "type": "list_reply",
        "list_reply": {"id": "r0", "title": "Akta lahir", "description": "Baru lahir"},
    }
    assert msg["context"]["id"] == lst["messages"][0]["id"]
    _, msg = only_message(fake.button_reply(USER, "x", "X", context_wamid="wamid.OLD"))
    assert msg["context"]["id"] == "wamid.OLD"
    _, msg = only_message(fake.quick_reply(USER, "STOP", "Berhenti"))
    assert msg["type"] == "button" and msg["button"] == {"payload": "STOP", "text": "Berhenti"}
    assert msg["context"]["id"].startswith("wamid.")


async def test_media_location_sticker_unsupported_builders(fake: FakeWhatsApp) -> None:
    mid = fake.add_media("image/png", 500)
    _, msg = only_message(fake.image_message(USER, mid, caption="KK saya"))
    assert msg["type"] == "image"
    assert msg["image"] == {
        "mime_type": "image/png", "sha256": fake.media[mid].sha256_b64, "id": mid,
        "caption": "KK saya",
    }
    _, msg = only_message(fake.image_message(USER))
    assert msg["image"]["id"] in fake.media and msg["image"]["mime_type"] == "image/jpeg"
    _, msg = only_message(fake.document_message(USER, None, "application/pdf", "akta.pdf"))
    assert msg["document"]["filename"] == "akta.pdf"
    assert msg["document"]["id"] in fake.media
    _, msg = only_message(fake.location_message(USER, -10.1772, 123.607))
    assert msg["location"] == {"latitude": -10.1772, "longitude": 123.607}
    _, msg = only_message(fake.sticker_message(USER))
    assert msg["sticker"]["mime_type"] == "image/webp" and msg["sticker"]["animated"] is False
    _, msg = only_message(fake.unsupported_message(USER))
    assert msg["type"] == "unsupported" and "unsupported" not in msg
    assert msg["errors"][0]["code"] == 131051


async def test_status_preferences_unknown_and_malformed_builders(fake: FakeWhatsApp) -> None:
    st = failed_status(fake.status_update("wamid.A", "delivered", recipient_id=USER))
    assert st["id"] == "wamid.A" and st["status"] == "delivered" and st["recipient_id"] == USER
    assert st["timestamp"].isdigit() and "errors" not in st
    st = failed_status(fake.status_update("wamid.B", "failed", recipient_id=USER,
                                          error_code=131050))
    assert st["errors"][0]["code"] == 131050 and st["errors"][0]["href"]

    env = fake.user_preferences(USER, "stop")
    change = env["entry"][0]["changes"][0]
    assert change["field"] == "user_preferences"
    (pref,) = change["value"]["user_preferences"]
    assert (pref["wa_id"], pref["category"], pref["value"]) == (
        USER, "marketing_messages", "stop"
    )
    assert USER in fake.marketing_stopped

    env = fake.unknown_field()
    assert env["entry"][0]["changes"][0]["field"] == "account_update"
    assert "metadata" not in env["entry"][0]["changes"][0]["value"]

    for missing in ("type", "id"):
        m = malformed_message(USER, missing=missing)["entry"][0]["changes"][0]["value"]
        assert missing not in m["messages"][0] and m["messages"][0]["from"] == USER
    assert "type" not in fake.malformed_message(USER)["entry"][0]["changes"][0]["value"][
        "messages"][0]
    assert not fake.window_open(USER)


async def test_batch_modes(fake: FakeWhatsApp) -> None:
    a = fake.text_message(USER, "satu")
    b = fake.text_message("6285200000000", "dua", name="Maria")
    c = fake.status_update("wamid.S", "read", recipient_id=USER)
    entries = batch(a, b, c)
    assert len(entries["entry"]) == 3
    changes = batch(a, b, c, mode="changes")
    assert len(changes["entry"]) == 1 and len(changes["entry"][0]["changes"]) == 3
    merged = batch(a, b, c, mode="messages")
    value = merged["entry"][0]["changes"][0]["value"]
    assert [m["text"]["body"] for m in value["messages"]] == ["satu", "dua"]
    assert [s["id"] for s in value["statuses"]] == ["wamid.S"]
    assert [ct["wa_id"] for ct in value["contacts"]] == [USER, "6285200000000"]
    assert len(a["entry"][0]["changes"][0]["value"]["messages"]) == 1  # inputs untouched


# -- signing and delivery ----------------------------------------------------------------------


def test_sign_matches_known_hmac() -> None:
    msg = b"The quick brown fox jumps over the lazy dog"
    assert sign(msg, "key") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )
    assert sign(b"{}", SECRET) == "sha256=" + hmac.new(
        SECRET.encode(), b"{}", hashlib.sha256
    ).hexdigest()


def test_meta_json_escapes_like_meta() -> None:
    raw = meta_json({"a": "Kupang/NTT é", "n": [1, 2]})
    assert raw == b'{"a":"Kupang\\/NTT \\u00e9","n":[1,2]}'
    assert json.loads(raw) == {"a": "Kupang/NTT é", "n": [1, 2]}


async def test_deliver_signs_raw_body_and_can_forge(
    fake: FakeWhatsApp, receiver: Receiver
) -> None:
    env = fake.text_message(USER, "Apa syarat akta / KK? Terima kasih 🙏")
    status, txt = await fake.deliver(receiver.url, env)
    assert (status, txt) == (200, "ok")
    raw, headers = receiver.hits[0]
    assert headers["X-Hub-Signature-256"] == sign(raw, SECRET)
    assert headers["Content-Type"] == "application/json"
    assert b"\\/" in raw and b"\\ud83d" in raw  # re-serialising would change the bytes
    assert json.dumps(json.loads(raw), separators=(",", ":")).encode() != raw
    assert receiver.json(0) == env

    await fake.deliver(receiver.url, env, signature="sha256=" + "0" * 64)
    assert receiver.hits[1][1]["X-Hub-Signature-256"] == "sha256=" + "0" * 64
    await fake.deliver(receiver.url, env, signature="")
    assert "X-Hub-Signature-256" not in receiver.hits[2][1]
    await fake.deliver(receiver.url, env, secret="other")
    assert receiver.hits[3][1]["X-Hub-Signature-256"] == sign(receiver.hits[3][0], "other")
    await fake.deliver(receiver.url, b'{"raw":1}')
    assert receiver.hits[4][0] == b'{"raw":1}'
    assert [d.status for d in fake.deliveries] == [200] * 5


async def test_verify_challenge(fake: FakeWhatsApp, receiver: Receiver) -> None:
    assert await fake.verify_challenge(receiver.url, "verify-me", challenge="1158201444") == (
        200, "1158201444"
    )
    status, _ = await fake.verify_challenge(receiver.url, "wrong")
    assert status == 403
