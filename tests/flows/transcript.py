"""Golden transcripts: replay a conversation against the pure engine and print it.

Input lines in a transcript file start with `>`; everything else is engine output, produced
by `render_transcript` and compared with the file. Input forms:

    > text typed by the citizen
    > /command
    > #2            press button 2 of the newest reply with numbered buttons (a reply of
                    `go:` links only, such as the consent question, is pressed with `^`)
    > #stale 1      press button 1 of the reply *before* the newest one (an old menu)
    > !photo        send an attachment of that kind
    > !photo a/1.jpg    ... which the shell kept at that path
    > @+45m         let 45 minutes pass before the next input (m or h)
    > =filed ADU-2026-7K3QF9 5 Maret 2026     the shell's answer to FileComplaint
    > =refused too_many 3 | =refused duplicate ADU-2026-7K3QF9
    > =tickets ADU-2026-7K3QF9:pengaduan:baru:2 Maret 2026,...   the shell's ticket list
    > =ticket ADU-2026-7K3QF9     one ticket asked for by number: not among this chat's
    > =ticket ADU-2026-7K3QF9:pengaduan:diproses:2 Maret 2026 | staff answer   ... or found
    > ^go:rate:ADU-2026-7K3QF9:5  press a button with this payload (a notification's link)
    > =rated ADU-2026-7K3QF9 ok   the shell's answer to RateTicket (ok or no)
    > =added ADU-2026-7K3QF9 ok   the shell's answer to AddToTicket (ok, closed or no)
    > =apps KK-2026-0001:Diproses,...   the applications this chat follows
    > =checked KK-2026-0001 found following done | status text   CheckApplication's answer
    > =checked KK-2026-0001 no_match 4 | =checked X locked 60 | =checked X too_many
    > =followed KK-2026-0001 on ok    FollowApplication's answer (on/off, ok/no)
"""

from __future__ import annotations

from datetime import timedelta

from flows.content import Content
from flows.engine import step
from flows.types import (
    ApplicationChecked,
    ApplicationFollowed,
    ApplicationsListed,
    Attachment,
    Choice,
    Command,
    ComplaintFiled,
    Event,
    Reply,
    State,
    Text,
    TicketInfoAdded,
    TicketRated,
    TicketsFound,
)
from tests.conftest import T0


def render_transcript(inputs: list[str], content: Content) -> str:
    state = State()
    now = T0
    history: list[Reply] = []
    out: list[str] = []
    for line in inputs:
        out.append(f"> {line}")
        if line.startswith("@+"):
            amount, unit = int(line[2:-1]), line[-1]
            now += timedelta(minutes=amount) if unit == "m" else timedelta(hours=amount)
            continue
        now += timedelta(seconds=30)
        event = _event(line, history, now)
        result = step(state, event, content)
        state = result.state
        for reply in result.replies:
            out.append("< " + reply.text.replace("\n", "\n< "))
            out += [f"  [{o.id}] {o.label}" for o in reply.options]
            if any(not o.id.startswith("go:") for o in reply.options):
                history.append(reply)  # `#n` presses numbered buttons; links use `^go:...`
        for effect in result.effects:
            out.append(f"  effect: {effect!r}")
        out.append(f"  screen: {state.screen or '-'}  back: {'/'.join(state.back) or '-'}")
    return "\n".join(out) + "\n"


def _event(line: str, history: list[Reply], now) -> Event:  # type: ignore[no-untyped-def]
    if line.startswith("=filed "):
        _, number, due = line.split(" ", 2)
        return ComplaintFiled(now, number, due)
    if line.startswith("=tickets"):
        items = [t.split(":") for t in line[9:].split(",") if t]
        return TicketsFound(now, tuple((a, b, c, d) for a, b, c, d in items))
    if line.startswith("=ticket "):
        found, _, answer = line[8:].partition(" | ")
        parts = found.split(":")
        tickets = ((parts[0], parts[1], parts[2], parts[3]),) if len(parts) == 4 else ()
        return TicketsFound(now, tickets, parts[0], answer or None)
    if line.startswith("=rated "):
        _, number, outcome = line.split(" ")
        return TicketRated(now, number, outcome == "ok")
    if line.startswith("=added "):
        _, number, outcome = line.split(" ")
        return TicketInfoAdded(now, number, outcome == "ok", outcome == "closed")
    if line.startswith("^"):
        return Choice(line[1:], now)
    if line.startswith("=apps"):
        items = [a.split(":") for a in line[6:].split(",") if a]
        return ApplicationsListed(now, tuple((a, b) for a, b in items))
    if line.startswith("=checked "):
        head, _, text = line[9:].partition(" | ")
        number, outcome, *flags = head.split()
        count = int(flags[0]) if flags and flags[0].isdigit() else 0
        return ApplicationChecked(now, number, outcome, text,  # type: ignore[arg-type]
                                  following="following" in flags, done="done" in flags,
                                  attempts_left=count, minutes=count)
    if line.startswith("=followed "):
        _, number, way, outcome = line.split(" ")
        return ApplicationFollowed(now, number, way == "on", outcome == "ok")
    if line.startswith("=refused "):
        _, why, value = line.split(" ", 2)
        if why == "too_many":
            return ComplaintFiled(now, None, refused="too_many", limit=int(value))
        return ComplaintFiled(now, value, refused="duplicate")
    if line.startswith("#stale "):
        return Choice(history[-2].options[int(line[7:]) - 1].id, now)
    if line.startswith("#"):
        return Choice(history[-1].options[int(line[1:]) - 1].id, now)
    if line.startswith("!"):
        kind, _, ref = line[1:].partition(" ")
        return Attachment(kind, now, ref or None)  # type: ignore[arg-type]
    if line.startswith("/"):
        return Command(line[1:].split()[0], now, " ".join(line.split()[1:]))
    return Text(line, now)


def inputs_of(transcript: str) -> list[str]:
    return [line[2:] for line in transcript.splitlines() if line.startswith("> ")]
