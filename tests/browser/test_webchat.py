"""Real-browser tests of the web chat page (phone viewport, Debian chromium).

Run: pytest tests/browser   (needs /usr/bin/chromium; never runs `playwright install`)
"""
from __future__ import annotations

import re

import pytest

sync_api = pytest.importorskip("playwright.sync_api")
expect = sync_api.expect

pytestmark = pytest.mark.browser

# The conversation engine may take a moment; locators auto-wait up to this long.
expect.set_options(timeout=15_000)

ID_RE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MESSAGE_ID_RE = re.compile(r"^[A-Za-z0-9_-]{8,64}$")

BOT = "#transcript [data-from=bot]"
USER = "#transcript [data-from=user]"
# Bot messages that arrived after the newest user bubble, i.e. the reply to it.
REPLY = (
    "xpath=//*[@id='transcript']/*[@data-from='user'][last()]"
    "/following-sibling::*[@data-from='bot']"
)


def open_chat(page):
    """Load the page and wait for the greeting with its menu buttons."""
    page.goto("/")
    expect(page.locator(f"{BOT} button.option").first).to_be_visible()
    return page


def say(page, text):
    box = page.get_by_role("textbox")
    box.fill(text)
    box.press("Enter")
    expect(page.locator(USER).last).to_have_text(text)
    expect(box).to_have_value("")


def assert_clean(page):
    assert page.errors == [], f"uncaught errors in the page: {page.errors}"
    assert page.external_requests == [], (
        f"page fetched external resources: {page.external_requests}")


def test_greeting_and_first_option(phone_page):
    page = open_chat(phone_page)
    greeting = page.locator(BOT).first
    expect(greeting.locator(".msg__text")).to_have_text(re.compile(r"\S"))

    first = page.locator(f"{BOT} button.option").first
    label = first.inner_text().strip()
    assert label
    first.click()

    # The label becomes the user's bubble, and the reply carries new buttons.
    expect(page.locator(USER).last).to_have_text(label)
    expect(page.locator(REPLY).locator("button.option").first).to_be_visible()
    assert_clean(page)


def test_free_text_question_with_typos(phone_page):
    page = open_chat(phone_page)
    say(page, "syarat bikin akte lahir apa sj")
    reply = page.locator(REPLY).filter(has_text=re.compile(r"akta\s+kelahiran", re.IGNORECASE))
    expect(reply.first).to_be_visible()
    assert_clean(page)


def test_menu_brings_back_options(phone_page):
    page = open_chat(phone_page)
    say(page, "menu")
    expect(page.locator(REPLY).locator("button.option").first).to_be_visible()
    assert_clean(page)


def test_malformed_post_is_rejected_with_message(phone_page):
    page = phone_page
    page.goto("/")
    resp = page.request.post(
        "/api/chat",
        data="{not json",
        headers={"Content-Type": "application/json"},
        fail_on_status_code=False,
    )
    assert resp.status == 400, resp.text()
    body = resp.json()
    assert isinstance(body, dict)
    assert isinstance(body.get("message"), str) and body["message"].strip()


def test_phone_screenshot(phone_page, tmp_path):
    page = open_chat(phone_page)
    # Fits a 360 px wide screen: no sideways scrolling, composer on screen.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    composer = page.locator("#composer").bounding_box()
    assert composer and composer["y"] + composer["height"] <= 640 + 0.5
    shot = tmp_path / "webchat-phone.png"
    page.screenshot(path=str(shot))
    assert shot.exists() and shot.stat().st_size > 0
    assert_clean(page)


def test_page_structure_and_empty_input(phone_page):
    page = open_chat(phone_page)
    expect(page.locator("#transcript")).to_have_attribute("aria-live", "polite")
    box = page.get_by_role("textbox")
    expect(box).to_have_attribute("maxlength", "2000")
    assert page.locator("label[for=message]").count() == 1
    # Whitespace-only input is not sent (the submit handler runs synchronously).
    box.fill("   ")
    box.press("Enter")
    expect(page.locator(USER)).to_have_count(0)
    assert_clean(page)


def test_failed_post_is_retried_with_same_message_id(phone_page):
    page = phone_page
    posts = []
    state = {"dropped": 0}

    def flaky(route):
        req = route.request
        if req.method != "POST":
            route.fallback()
            return
        body = req.post_data_json
        posts.append(body)
        if body.get("text") == "menu" and not state["dropped"]:
            state["dropped"] += 1
            route.abort("internetdisconnected")
        else:
            route.fallback()

    page.route("**/api/chat", flaky)
    open_chat(page)

    start = posts[0]
    assert start["command"] == "start"
    assert start["after"] == 0
    assert ID_RE.match(start["session"])
    assert MESSAGE_ID_RE.match(start["message_id"])

    box = page.get_by_role("textbox")
    box.fill("menu")
    box.press("Enter")
    expect(page.locator("#notice")).to_be_visible()  # offline notice while retrying
    expect(page.locator(REPLY).locator("button.option").first).to_be_visible()
    expect(page.locator("#notice")).to_be_hidden()

    menus = [p for p in posts if p.get("text") == "menu"]
    assert len(menus) >= 2, posts
    assert {p["message_id"] for p in menus} == {menus[0]["message_id"]}
    assert {p["session"] for p in posts} == {start["session"]}
    assert menus[0]["message_id"] != start["message_id"]
    assert_clean(page)


def test_reload_restores_bot_messages_once(phone_page):
    page = open_chat(phone_page)
    say(page, "menu")
    expect(page.locator(REPLY).locator("button.option").first).to_be_visible()
    count = page.locator(BOT).count()
    session = page.evaluate("localStorage.getItem('lontar.session')")

    page.reload()
    expect(page.locator(BOT)).to_have_count(count)
    ids = page.locator(BOT).evaluate_all("els => els.map(e => e.dataset.id)")
    assert len(set(ids)) == len(ids) == count
    assert page.evaluate("localStorage.getItem('lontar.session')") == session
    assert_clean(page)


def test_polling_never_shows_a_message_twice(phone_page):
    page = open_chat(phone_page)
    count = page.locator(BOT).count()

    # Make every poll ask for the whole history again (after=0): the page must
    # drop the messages it already shows.
    def replay_all(route):
        req = route.request
        if req.method == "GET" and "after=" in req.url:
            route.fallback(url=re.sub(r"after=\d+", "after=0", req.url))
        else:
            route.fallback()

    page.route("**/api/chat?*", replay_all)

    def is_poll(r):  # type: ignore[no-untyped-def]
        return "/api/chat?" in r.url and r.request.method == "GET"

    with page.expect_response(is_poll) as polled:
        page.evaluate("window.dispatchEvent(new Event('focus'))")  # the page polls on focus
    assert polled.value.status == 200
    assert len(polled.value.json()["messages"]) >= count
    page.evaluate("() => new Promise(r => requestAnimationFrame(() => setTimeout(r, 50)))")
    ids = page.locator(BOT).evaluate_all("els => els.map(e => e.dataset.id)")
    assert len(ids) == count and len(set(ids)) == count, ids
    assert_clean(page)
