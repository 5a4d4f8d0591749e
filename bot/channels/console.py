"""`lontar chat`: the same conversation in a terminal, options numbered.

The terminal is a pull channel: rows are printed, then marked sent, so a restart after a
crash prints only what had not been printed.
"""

from __future__ import annotations

import asyncio
import getpass
import sys
import uuid
from typing import TextIO

from sqlalchemy import Connection, select

from bot.app import Lontar, recover
from bot.inbox import Inbound
from bot.models import contact_t
from bot.outbox import mark_sent, pending_for
from flows.types import Lang, Reply

CHANNEL = "console"


def render(reply: Reply) -> str:
    lines = [reply.text]
    if reply.options:
        lines.append("")
        lines += [f"  {i}. {o.label}" for i, o in enumerate(reply.options, 1)]
    return "\n".join(lines)


def _contact(conn: Connection, external_id: str) -> tuple[int, str] | None:
    row = conn.execute(
        select(contact_t.c.id, contact_t.c.language)
        .where(contact_t.c.channel == CHANNEL, contact_t.c.external_id == external_id)
    ).first()
    return (row[0], row[1]) if row else None


async def chat(lontar: Lontar, user: str | None = None, stdin: TextIO = sys.stdin,
               stdout: TextIO = sys.stdout) -> int:
    user = user or getpass.getuser()
    msg = lontar.content.msg
    await recover(lontar)

    async def flush() -> Lang:
        """Print what is queued for this conversation, then mark it sent."""
        contact = await lontar.db.transaction(_contact, user)
        if contact is None:
            return "id"
        rows = await lontar.db.transaction(pending_for, contact[0])
        for row in rows:
            stdout.write(f"\nLontar: {render(Reply.from_dict(row.payload))}\n")
            stdout.flush()
            await lontar.db.transaction(mark_sent, [row.id])
        return "en" if contact[1] == "en" else "id"

    async def send(kind: str, payload: dict[str, str]) -> Lang:
        await lontar.inbox.handle(Inbound(
            channel=CHANNEL, external_id=user, platform_id=uuid.uuid4().hex,
            kind=kind, payload=payload,  # type: ignore[arg-type]
        ))
        return await flush()

    contact = await lontar.db.transaction(_contact, user)
    lang: Lang = "en" if contact is not None and contact[1] == "en" else "id"
    stdout.write(msg(lang, "console_intro") + "\n")
    stdout.flush()
    # a new conversation starts with the menu; an old one prints what a crash left unprinted
    lang = await (send("command", {"name": "start"}) if contact is None else flush())
    loop = asyncio.get_running_loop()
    while True:
        stdout.write("\n" + msg(lang, "console_prompt") + " ")
        stdout.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            stdout.write("\n" + msg(lang, "console_bye") + "\n")
            stdout.flush()
            return 0
        lang = await send("text", {"text": line.rstrip("\n")})
