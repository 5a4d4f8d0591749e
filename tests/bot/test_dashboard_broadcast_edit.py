"""Editing a broadcast draft in the dashboard: an "Ubah draf" form on the draft's page,
filled with what is stored (text per language, picture, buttons, audience), for staff and
admins, with the form token; refused once approved; a replaced or removed picture's file
goes unless another broadcast uses it; an admin's approval from a page drawn before an edit
is refused."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime
from typing import Any

from aiohttp import FormData
from aiohttp.test_utils import TestClient
from multidict import MultiDict
from sqlalchemy import insert, select

from bot.app import Lontar
from bot.models import audit_t, broadcast_t, contact_t
from bot.services import broadcast_images as images
from bot.services import broadcasts
from bot.services.audience import Audience
from tests.bot.dashboard_helpers import add_user, login

TEXT = "Perekaman KTP-el keliling di Kelurahan Namosain, Sabtu pukul 08.00."
NEW = "Perekaman KTP-el keliling di Kelurahan Namosain, Minggu pukul 09.00."
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 64
JPG = b"\xff\xd8\xff\xe0" + b"\0" * 64


def _draft(lontar: Lontar, **over: Any) -> int:
    fields: dict[str, Any] = {"title": "Jemput bola", "text_id": TEXT, "buttons": ["ktp-baru"],
                              "audience": Audience(kecamatan=("alak",), tags=("rt-05",)),
                              "now": datetime.now(UTC)}
    with lontar.db.engine.begin() as conn:
        return broadcasts.create(conn, lontar.content, **fields | over)


def _row(lontar: Lontar, broadcast_id: int = 1) -> Any:
    with lontar.db.engine.connect() as conn:
        return conn.execute(select(broadcast_t).where(broadcast_t.c.id == broadcast_id)).one()


def _audit(lontar: Lontar) -> list[tuple[str, str | None, dict[str, Any]]]:
    with lontar.db.engine.connect() as conn:
        return [(r.action, r.target, r.detail) for r in conn.execute(
            select(audit_t).where(audit_t.c.action.like("broadcast_%")).order_by(audit_t.c.id))]


def _form(csrf: str, *extra: tuple[str, str], **over: str) -> MultiDict[str]:
    fields = {"csrf": csrf, "title": "Jemput bola Namosain", "text_id": NEW,
              "text_en": "Mobile KTP-el recording on Sunday.", "button1": "kk-baru",
              "button2": "", "button3": "lokasi", "tags": "rt-05", "do": "save"} | over
    return MultiDict([*fields.items(), *extra])


def _multipart(fields: MultiDict[str], picture: bytes | None = None) -> FormData:
    data = FormData()
    for key, value in fields.items():
        data.add_field(key, value)
    if picture is not None:
        data.add_field("image", picture, filename="poster.png", content_type="image/png")
    return data


async def _edit(client: TestClient, data: Any, broadcast_id: int = 1) -> Any:
    return await client.post(f"/admin/broadcasts/{broadcast_id}/edit", data=data,
                             allow_redirects=False)


def _edit_form(body: str) -> str:
    found = re.search(r'<details class="actions compose" id="ubah".*?</details>', body, re.S)
    assert found is not None, "no edit form"
    return found.group(0)


async def test_the_draft_page_has_the_stored_draft_in_an_edit_form(
        lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "sari", "staff")
    _draft(lontar, text_en="Mobile recording on Saturday.", buttons=["ktp-baru", "lokasi"])
    await login(client, "sari")
    body = await (await client.get("/admin/broadcasts/1")).text()
    form = _edit_form(body)
    assert "<summary>Ubah draf</summary>" in form and " open>" not in form.split("\n")[0]
    assert 'action="/admin/broadcasts/1/edit#ubah"' in form
    assert 'enctype="multipart/form-data"' in form and 'name="csrf"' in form
    assert 'name="title" value="Jemput bola"' in form
    assert f">{TEXT}</textarea>" in form and ">Mobile recording on Saturday.</textarea>" in form
    selected = re.findall(r'<select name="button(\d)">.*?</select>', form, re.S)
    assert selected == ["1", "2", "3"]
    buttons = re.findall(r'<select name="button\d">(.*?)</select>', form, re.S)
    assert 'value="ktp-baru" selected' in buttons[0] and 'value="lokasi" selected' in buttons[1]
    assert " selected" not in buttons[2]
    assert '<option value="alak" selected>Alak</option>' in form
    assert 'name="tags" value="rt-05"' in form
    assert ">Simpan perubahan</button>" in form and ">Hitung penerima</button>" in form
    # composing a new broadcast is unchanged on the list page
    body = await (await client.get("/admin/broadcasts")).text()
    assert "Buat siaran" in body and 'action="/admin/broadcasts#buat"' in body
    assert "Ubah draf" not in body


async def test_staff_edits_a_draft_and_the_audit_names_the_fields(
        lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "sari", "staff")
    _draft(lontar)
    csrf = await login(client, "sari")
    r = await _edit(client, _form(csrf, ("channel", "telegram"), ("kecamatan", "maulafa")))
    assert r.status == 303 and r.headers["Location"] == "/admin/broadcasts/1?ok=edit&n=5"
    row = _row(lontar)
    assert (row.id, row.status, row.title, row.text_id) == (1, "draft",
                                                             "Jemput bola Namosain", NEW)
    assert row.text_en == "Mobile KTP-el recording on Sunday."
    assert row.buttons == ["kk-baru", "lokasi"]
    assert broadcasts.audience_of(row) == Audience(channels=("telegram",),
                                                   kecamatan=("maulafa",), tags=("rt-05",))
    assert _audit(lontar) == [("broadcast_edit", "1", {"changed": [
        "title", "text_id", "text_en", "buttons", "audience"]})]
    body = await (await client.get(r.headers["Location"])).text()
    assert "Draf siaran diubah" in body and NEW in body and "kec. Maulafa" in body
    # the same form again changes nothing and records nothing
    r = await _edit(client, _form(csrf, ("channel", "telegram"), ("kecamatan", "maulafa")))
    assert r.headers["Location"] == "/admin/broadcasts/1?ok=edit&n=0"
    assert "Tidak ada yang berubah" in await (await client.get(r.headers["Location"])).text()
    assert len(_audit(lontar)) == 1


async def test_a_refused_edit_keeps_what_was_typed_and_changes_nothing(
        lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "sari", "staff")
    _draft(lontar)
    csrf = await login(client, "sari")
    for bad, message in (({"text_id": "x" * 1001}, "paling banyak 1000 karakter"),
                         ({"text_id": ""}, "teks bahasa Indonesia wajib diisi"),
                         ({"tags": "rt 05, <b>"}, "Tag hanya huruf kecil")):
        r = await _edit(client, _form(csrf, **bad))
        body = await r.text()
        assert r.status == 422, bad
        form = _edit_form(body)
        assert message in html.unescape(form) and ' open>' in form.split("\n")[0]
        assert 'name="title" value="Jemput bola Namosain"' in form  # as typed, not as stored
    r = await _edit(client, _form(csrf, ("kecamatan", "atlantis")))
    assert r.status == 422 and "Filter penerima tidak dikenal" in await r.text()
    row = _row(lontar)
    assert (row.title, row.text_id, row.updated_at) == ("Jemput bola", TEXT, row.created_at)
    assert _audit(lontar) == []


async def test_counting_the_edited_audience_saves_nothing(lontar: Lontar,
                                                          client: TestClient) -> None:
    now = datetime.now(UTC)
    with lontar.db.engine.begin() as conn:
        conn.execute(insert(contact_t), [
            {"channel": "telegram", "external_id": ext, "language": "id", "kecamatan": kec,
             "opted_in": True, "created_at": now}
            for ext, kec in (("101", "alak"), ("102", "maulafa"), ("103", "maulafa"))])
    add_user(lontar, "sari", "staff")
    _draft(lontar)
    csrf = await login(client, "sari")
    r = await _edit(client, _form(csrf, ("kecamatan", "maulafa"), do="count", tags=""))
    body = await r.text()
    assert r.status == 200
    form = _edit_form(body)
    assert "Jumlah penerima saat ini: <strong>2</strong>" in form and " open>" in form
    assert '<option value="maulafa" selected>' in form
    assert _row(lontar).text_id == TEXT and _audit(lontar) == []


async def test_the_picture_is_kept_replaced_or_removed(lontar: Lontar,
                                                       client: TestClient) -> None:
    folder = images.folder(lontar.settings.data_dir)
    first = images.save(folder, PNG)
    shared = images.save(folder, JPG)
    _draft(lontar, image=first, text_id="Pendek.")
    _draft(lontar, image=shared, text_id="Pendek.")
    _draft(lontar, image=shared, text_id="Pendek.")
    add_user(lontar, "sari", "staff")
    csrf = await login(client, "sari")
    form = _edit_form(await (await client.get("/admin/broadcasts/1")).text())
    assert f'name="image_kept" value="{first}"' in form and 'name="image_drop"' in form
    # keep: the form carries the stored name back
    r = await _edit(client, _multipart(_form(csrf, image_kept=first)))
    assert r.status == 303 and _row(lontar).image == first
    assert (folder / first).read_bytes() == PNG
    # replace: a new upload; the old file goes, as no other broadcast uses it
    r = await _edit(client, _multipart(_form(csrf, image_kept=first, title="Baru"), JPG))
    assert r.status == 303
    second = _row(lontar).image
    assert second != first and second.endswith(".jpg") and (folder / second).is_file()
    assert not (folder / first).exists()
    # a text too long for a caption: refused, the draft keeps its picture, the upload stays
    # on the form (and is left to the daily sweep if never saved)
    r = await _edit(client, _multipart(_form(csrf, image_kept=second, text_id="x" * 950),
                                       PNG))
    body = await r.text()
    kept = re.search(r'name="image_kept" value="([0-9a-f]{32}\.png)"', body)
    assert r.status == 422 and "karena ada gambar" in body and kept is not None
    assert _row(lontar).image == second and (folder / kept.group(1)).is_file()
    # remove
    r = await _edit(client, _form(csrf, image_kept=second, image_drop="1"))
    assert r.status == 303 and _row(lontar).image is None and not (folder / second).exists()
    assert "image" in _audit(lontar)[-1][2]["changed"]
    # a picture another broadcast also uses stays when one of them drops it
    r = await _edit(client, _form(csrf, image_kept=shared, image_drop="1", title="Dua"), 2)
    assert r.status == 303 and _row(lontar, 2).image is None
    assert (folder / shared).is_file() and _row(lontar, 3).image == shared
    # a kept picture whose file is gone is an error, not a silent loss
    r = await _edit(client, _form(csrf, image_kept=kept.group(1)))
    assert r.status == 303
    (folder / kept.group(1)).unlink()
    r = await _edit(client, _form(csrf, image_kept=kept.group(1), title="Lagi"))
    assert r.status == 422 and "sudah tidak ada: pilih lagi" in await r.text()
    assert _row(lontar).title != "Lagi"


async def test_no_edit_once_approved(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "sari", "staff")
    _draft(lontar)
    csrf = await login(client, "sari")
    page = await (await client.get("/admin/broadcasts/1")).text()  # drawn while a draft
    assert "Ubah draf" in page
    with lontar.db.engine.begin() as conn:
        broadcasts.approve(conn, 1, None, datetime.now(UTC))
    r = await _edit(client, _form(csrf))
    body = await r.text()
    assert r.status == 422
    assert "berstatus approved: hanya draf yang belum disetujui yang bisa diubah" in body
    assert "Ubah draf" not in body  # no form on an approved broadcast's page
    assert _row(lontar).text_id == TEXT and _audit(lontar) == []
    assert "Ubah draf" not in await (await client.get("/admin/broadcasts/1")).text()
    r = await _edit(client, _form(csrf), 99)
    assert r.status == 404


async def test_roles_and_the_form_token(lontar: Lontar, client: TestClient) -> None:
    add_user(lontar, "vina", "viewer")
    add_user(lontar, "adi", "admin")
    _draft(lontar)
    csrf = await login(client, "vina")
    body = await (await client.get("/admin/broadcasts/1")).text()
    assert "Ubah draf" not in body and TEXT in body
    r = await _edit(client, _form(csrf))
    assert r.status == 403
    await client.post("/admin/logout", data={"csrf": csrf})
    csrf = await login(client, "adi")
    assert "Ubah draf" in await (await client.get("/admin/broadcasts/1")).text()
    for token in ("", "forged"):
        r = await _edit(client, _form(token))
        assert r.status == 403
    data = _form(csrf)
    data.popall("csrf")
    assert (await _edit(client, data)).status == 403
    assert _row(lontar).text_id == TEXT and _audit(lontar) == []
    r = await _edit(client, _form(csrf))  # an admin may edit, like compose
    assert r.status == 303 and _row(lontar).text_id == NEW


async def test_an_admin_approves_only_the_text_on_their_page(lontar: Lontar,
                                                             client: TestClient) -> None:
    add_user(lontar, "adi", "admin")
    add_user(lontar, "sari", "staff")
    _draft(lontar)
    csrf = await login(client, "adi")
    page = await (await client.get("/admin/broadcasts/1")).text()
    seen = re.search(r'name="seen" value="([^"]+)"', page)
    assert seen is not None
    with lontar.db.engine.begin() as conn:  # meanwhile, staff correct the draft
        broadcasts.update_draft(conn, lontar.content, 1, title="Jemput bola", text_id=NEW,
                                text_en=None, buttons=["ktp-baru"],
                                audience=Audience(kecamatan=("alak",), tags=("rt-05",)),
                                image=None, staff_id=None, now=datetime.now(UTC))
    r = await client.post("/admin/broadcasts/1/approve",
                          data={"csrf": csrf, "seen": seen.group(1)}, allow_redirects=False)
    body = await r.text()
    assert r.status == 422 and "baru saja diubah" in body and NEW in body
    assert _row(lontar).status == "draft"
    seen = re.search(r'name="seen" value="([^"]+)"', body)
    assert seen is not None
    r = await client.post("/admin/broadcasts/1/approve",
                          data={"csrf": csrf, "seen": seen.group(1)}, allow_redirects=False)
    assert r.status == 303 and _row(lontar).status == "approved"


async def test_a_large_picture_can_replace_the_draft_s(lontar: Lontar,
                                                      client: TestClient) -> None:
    """The edit route takes bodies as big as compose's (a picture up to 5 MB), far above the
    server's limit for other requests; a bigger one gets a readable refusal."""
    add_user(lontar, "sari", "staff")
    _draft(lontar, text_id="Pendek.")
    csrf = await login(client, "sari")
    big = PNG + b"\0" * (4 * 1024 * 1024)
    r = await _edit(client, _multipart(_form(csrf, text_id="Pendek."), big))
    assert r.status == 303, await r.text()
    folder = images.folder(lontar.settings.data_dir)
    assert (folder / _row(lontar).image).read_bytes() == big
    r = await _edit(client, _multipart(_form(csrf, title="x"), PNG + b"\0" * (7 << 20)))
    assert r.status == 413 and "paling besar 5 MB" in await r.text()
