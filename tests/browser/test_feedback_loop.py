"""The whole feedback loop in real browsers: a citizen files in the web chat (phone), staff
log in to the dashboard (laptop), find the ticket by filter, answer and close it; the
answer and the rating question reach the citizen's chat, and the rating is stored."""

from __future__ import annotations

import re
import secrets

import pytest

from tests.browser.conftest import APPLICATION, LAPTOP, STAFF_PASSWORD, STAFF_USER

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect
pytestmark = pytest.mark.browser
expect.set_options(timeout=20_000)

BOT = "#transcript [data-from=bot]"
NUMBER = re.compile(r"ADU-\d{4}-[2-9A-Z]{6}")


def say(page, text: str) -> None:
    count = page.locator(BOT).count()
    box = page.get_by_role("textbox")
    box.fill(text)
    box.press("Enter")
    expect(page.locator(BOT)).not_to_have_count(count)


def nudge(page) -> None:
    """Ask the chat to fetch news now (it also polls every few seconds by itself)."""
    page.evaluate("window.dispatchEvent(new Event('focus'))")


def test_citizen_files_staff_answer_and_close_citizen_rates(phone_page, chromium_browser,
                                                            server) -> None:
    chat = phone_page
    chat.goto("/")
    expect(chat.locator(f"{BOT} button.option").first).to_be_visible()
    marker = f"loket{secrets.token_hex(3)}"
    for text in ("mau komplain", "1", "7", "1",
                 f"Antrean di {marker} lama sekali, tiga jam menunggu", "1", "1", "1"):
        say(chat, text)
    expect(chat.locator(BOT).last).to_contain_text("Nomor tiket")
    number = NUMBER.search(chat.locator(BOT).last.inner_text())
    assert number is not None
    number = number.group(0)

    staff_ctx = chromium_browser.new_context(viewport=LAPTOP, base_url=server, locale="id-ID")
    staff_ctx.set_default_timeout(20_000)
    try:
        admin = staff_ctx.new_page()
        admin.goto("/admin")
        expect(admin).to_have_url(re.compile(r"/admin/login"))
        admin.get_by_label("Nama pengguna").fill(STAFF_USER)
        admin.get_by_label("Kata sandi").fill(STAFF_PASSWORD)
        admin.get_by_role("button", name="Masuk").click()
        expect(admin.get_by_role("heading", name=re.compile("Tiket"))).to_be_visible()

        admin.locator("#f-category").select_option(label="Antrean/waktu")
        admin.locator("#f-state").select_option(label="Baru")
        admin.get_by_label("Cari").fill(marker)
        admin.get_by_role("button", name="Terapkan").click()
        expect(admin.get_by_role("heading", name="Tiket (1)")).to_be_visible()
        admin.get_by_role("link", name=number).click()
        expect(admin.get_by_role("heading", name=re.compile(number))).to_be_visible()

        answer = f"Mohon maaf. Loket tambahan dibuka mulai besok ({marker})."
        admin.get_by_label("Jawaban untuk warga").fill(answer)
        admin.get_by_role("button", name="Kirim jawaban").click()
        expect(admin.get_by_role("status")).to_have_text("Tersimpan.")
        expect(admin.locator(".history")).to_contain_text(answer)

        nudge(chat)
        expect(chat.locator(BOT).last).to_contain_text(answer)

        admin.locator("select[name=state]").select_option(label="Selesai")
        admin.get_by_role("button", name="Ubah status").click()
        expect(admin.get_by_role("status")).to_have_text("Tersimpan.")

        nudge(chat)
        rating = chat.locator(BOT).last
        expect(rating).to_contain_text("Seberapa puas")
        expect(rating.locator("button.option")).to_have_count(5)
        rating.get_by_role("button", name="5").click()
        expect(chat.locator(BOT).last).to_contain_text(re.compile("Terima kasih", re.I))

        admin.reload()
        expect(admin.locator(".facts")).to_contain_text(re.compile(r"Penilaian warga\s*5"))
    finally:
        staff_ctx.close()
    assert chat.errors == [] and chat.external_requests == []


def test_dashboard_is_usable_on_a_phone(chromium_browser, server) -> None:
    ctx = chromium_browser.new_context(viewport={"width": 360, "height": 640},
                                       is_mobile=True, has_touch=True, base_url=server)
    ctx.set_default_timeout(20_000)
    try:
        page = ctx.new_page()
        page.goto("/admin/login")
        page.get_by_label("Nama pengguna").fill(STAFF_USER)
        page.get_by_label("Kata sandi").fill(STAFF_PASSWORD)
        page.get_by_role("button", name="Masuk").click()
        for path in ("/admin/tickets", "/admin/reports", "/admin/alerts",
                     "/admin/applications", f"/admin/applications/{APPLICATION}"):
            page.goto(path)
            expect(page.get_by_role("heading").first).to_be_visible()
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth")
            assert overflow <= 1, f"{path} scrolls sideways by {overflow}px on a phone"
    finally:
        ctx.close()


def test_citizen_follows_an_application_staff_change_it_the_chat_hears(
        phone_page, chromium_browser, server) -> None:
    """Status check in the web chat (phone), status change on the dashboard (laptop), the
    notification in the chat."""
    chat = phone_page
    chat.goto("/")
    expect(chat.locator(f"{BOT} button.option").first).to_be_visible()
    say(chat, "cek status")
    expect(chat.locator(BOT).last).to_contain_text("nomor registrasi")
    say(chat, APPLICATION.lower())
    expect(chat.locator(BOT).last).to_contain_text("tanggal lahir")
    say(chat, "12-03-1990")
    expect(chat.locator(BOT).last).to_contain_text(f"{APPLICATION}: Diproses")
    count = chat.locator(BOT).count()
    chat.locator(BOT).last.get_by_role("button", name="Beri tahu saya").click()
    expect(chat.locator(BOT)).not_to_have_count(count)
    expect(chat.locator(BOT).last).to_contain_text("memberi tahu")

    staff_ctx = chromium_browser.new_context(viewport=LAPTOP, base_url=server, locale="id-ID")
    staff_ctx.set_default_timeout(20_000)
    try:
        admin = staff_ctx.new_page()
        admin.goto("/admin/login")
        admin.get_by_label("Nama pengguna").fill(STAFF_USER)
        admin.get_by_label("Kata sandi").fill(STAFF_PASSWORD)
        admin.get_by_role("button", name="Masuk").click()
        admin.goto("/admin/applications")
        admin.get_by_role("link", name=APPLICATION).first.click()
        expect(admin.locator(".facts")).to_contain_text(re.compile(r"Pengikut aktif\s*1 chat"))
        admin.get_by_label("Status").select_option("perlu-perbaikan")
        admin.get_by_label(re.compile("Alasan")).fill("Fotokopi KK kurang jelas, bawa yang asli")
        admin.get_by_role("button", name="Simpan dan beri tahu warga").click()
        expect(admin.get_by_role("status")).to_contain_text("1 chat pemohon diberi tahu")
    finally:
        staff_ctx.close()
    nudge(chat)
    expect(chat.locator(BOT).last).to_contain_text(
        f"{APPLICATION}: Perlu perbaikan", timeout=30_000)
    expect(chat.locator(BOT).last).to_contain_text("Fotokopi KK kurang jelas")
