""""Hapus data saya" (flows/privacy.py): asked first, deleted only on an explicit yes."""

from __future__ import annotations

import pytest

from flows.content import Content
from flows.engine import step
from flows.types import Choice, Command, DeleteMyData, SetConsent, State, Step, Text
from tests.conftest import T0, Clock


def _settled() -> State:
    """A conversation past its first turn, subscribed, with an area and a half-done form."""
    return State(updated_at=T0, consent_asked=True, subscribed=True, screen="menu",
                 kecamatan="alak", data={"complaint": {"kind": "pengaduan"}})


def _press(result: Step, target: str, clock: Clock) -> Choice:
    option = next(o for r in result.replies for o in r.options
                  if o.id.partition("|")[2] == target)
    return Choice(option.id, clock.tick())


@pytest.mark.parametrize("event", [Command("hapus", T0), Text("hapus data saya", T0),
                                   Text("Hapus data saya!", T0), Text("/hapus", T0),
                                   Text("delete my data", T0)])
def test_asks_before_deleting(content: Content, event: Command | Text) -> None:
    r = step(_settled(), event, content)
    assert r.effects == ()
    assert r.state.screen == "privacy"
    assert [(r.replies[-1].text, [o.label for o in r.replies[-1].options])] == [
        (content.msg("id", "privacy_confirm"), ["Ya, hapus", "Batal"])]


def test_yes_deletes_and_forgets_the_conversation(content: Content, clock: Clock) -> None:
    asked = step(_settled(), Command("hapus", clock.tick()), content)
    r = step(asked.state, _press(asked, "privacy:yes", clock), content)
    assert r.effects == (DeleteMyData(),)
    assert [x.text for x in r.replies] == [content.msg("id", "privacy_done")]
    st = r.state
    assert (st.screen, st.back, st.data, st.subscribed, st.kecamatan) == ("", (), {}, False, None)
    assert st.consent_asked and st.seq == asked.state.seq  # old buttons stay stale


def test_the_reply_says_what_is_kept(content: Content) -> None:
    done = content.msg("id", "privacy_done")
    assert "dihapus" in done and "tanpa nama" in done and "catatan pelayanan" in done


def test_cancel_deletes_nothing(content: Content, clock: Clock) -> None:
    asked = step(_settled(), Command("hapus", clock.tick()), content)
    r = step(asked.state, _press(asked, "privacy:no", clock), content)
    assert r.effects == ()
    assert r.replies[0].text.startswith(content.msg("id", "privacy_cancelled"))
    assert r.state.screen == "menu" and r.state.subscribed and r.state.kecamatan == "alak"


@pytest.mark.parametrize("typed, deleted", [("ya", True), ("1", True), ("tidak", False),
                                            ("2", False), ("batal", False)])
def test_typed_answers(content: Content, clock: Clock, typed: str, deleted: bool) -> None:
    asked = step(_settled(), Text("hapus data saya", clock.tick()), content)
    r = step(asked.state, Text(typed, clock.tick()), content)
    assert (DeleteMyData() in r.effects) is deleted


def test_ya_elsewhere_deletes_nothing(content: Content, clock: Clock) -> None:
    r = step(_settled(), Text("ya", clock.tick()), content)
    assert not any(isinstance(e, DeleteMyData) for e in r.effects)


def test_a_stale_yes_deletes_nothing(content: Content, clock: Clock) -> None:
    asked = step(_settled(), Command("hapus", clock.tick()), content)
    press = _press(asked, "privacy:yes", clock)
    moved = step(asked.state, Text("menu", clock.tick()), content)
    r = step(moved.state, press, content)
    assert r.effects == ()
    assert r.replies[0].text.startswith(content.msg("id", "stale_button"))


def test_first_contact_is_not_asked_about_consent_on_top(content: Content,
                                                        clock: Clock) -> None:
    """The confirmation is a question of its own: the consent question waits, so a typed
    "ya" answers the deletion, and after it the question is settled (withdrawn)."""
    asked = step(State(), Command("hapus", clock.tick()), content)
    assert asked.replies[-1].text.endswith(content.msg("id", "privacy_confirm"))
    assert not any(r.text == content.msg("id", "consent_ask") for r in asked.replies)
    r = step(asked.state, Text("ya", clock.tick()), content)
    assert r.effects == (DeleteMyData(),)
    assert not any(isinstance(e, SetConsent) for e in r.effects)
    assert not any(x.text == content.msg("id", "consent_ask") for x in r.replies)


def test_english(content: Content, clock: Clock) -> None:
    st = _settled().model_copy(update={"lang": "en"})
    asked = step(st, Text("delete my data", clock.tick()), content)
    assert [o.label for o in asked.replies[-1].options] == ["Yes, delete", "Cancel"]
    r = step(asked.state, _press(asked, "privacy:yes", clock), content)
    assert r.state.lang == "en" and r.replies[0].text == content.msg("en", "privacy_done")
