"""Render every screen in every language and check what a platform would refuse.

Field limits are checked when content loads; this catches what only appears once texts are
combined (a long title inside a template, an office list that grew).
"""

from __future__ import annotations

from flows.content import (
    BUTTON_LABEL_MAX,
    ROW_DESCRIPTION_MAX,
    TELEGRAM_TEXT_MAX,
    Content,
)
from flows.screens import every_screen, render
from flows.types import LANGS


def check_rendering(content: Content) -> list[str]:
    problems = []
    for lang in LANGS:
        for screen_id in every_screen(content):
            screen = render(screen_id, lang, content)
            if screen.redirect:
                continue
            where = f"screen {screen_id} ({lang})"
            # the engine sends a text longer than WhatsApp's interactive body on its own
            if len(screen.text) > TELEGRAM_TEXT_MAX:
                problems.append(f"{where}: text is {len(screen.text)} characters, "
                                f"at most {TELEGRAM_TEXT_MAX}")
            if len(screen.targets) > 10:
                problems.append(f"{where}: {len(screen.targets)} buttons, at most 10")
            for t in screen.targets:
                if len(t.label) > BUTTON_LABEL_MAX:
                    problems.append(f"{where}: button {t.label!r} longer than "
                                    f"{BUTTON_LABEL_MAX}")
                if len(t.description) > ROW_DESCRIPTION_MAX:
                    problems.append(f"{where}: description of {t.label!r} longer than "
                                    f"{ROW_DESCRIPTION_MAX}")
    return problems
