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

from sqlmodel import Session, select

from bot.app import Lontar, recover
from bot.inbox import Inbound
from bot.models import Contact
from bot.outbox import mark_sent, pending_for
from flows.types import Reply

CHANNEL = "console"


def render(reply: Reply) -> str:
    lines = [reply.text]
    if reply.options:
        lines.append("")
        lines += [f"  {i}. {o.label}" for i, o in enumerate(reply.options, 1)]
    return "\n".join(lines)


def _contact_id(session: Session, external_id: str) -> int | None:
    contact = session.exec(
        select(Contact).where(Contact.channel == CHANNEL, Contact.external_id == external_id)
    ).first()
    return contact.id if contact else None


async def chat(lontar: Lontar, user: str | None = None, stdin: TextIO = sys.stdin,
               stdout: TextIO = sys.stdout) -> int:
    user = user or getpass.getuser()
    msg = lontar.content.msg
    await recover(lontar)

    async def flush() -> None:
        contact_id = await lontar.db.run(_contact_id, user)
        if contact_id is None:
            return
        rows = await lontar.db.run(pending_for, contact_id)
        for row in rows:
            stdout.write(f"\nLontar: {render(Reply.from_dict(row.payload))}\n")
            stdout.flush()
            await lontar.db.run(mark_sent, [row.id])

    async def send(kind: str, payload: dict[str, str]) -> None:
        await lontar.inbox.handle(Inbound(
            channel=CHANNEL, external_id=user, platform_id=uuid.uuid4().hex,
            kind=kind, payload=payload,  # type: ignore[arg-type]
        ))
        await flush()

    lang = "id"
    stdout.write(msg(lang, "console_intro") + "\n")
    stdout.flush()
    if await lontar.db.run(_contact_id, user) is None:
        await send("command", {"name": "start"})
    else:
        await flush()  # whatever a crash left unprinted
    loop = asyncio.get_running_loop()
    while True:
        stdout.write("\n" + msg(lang, "console_prompt"))
        stdout.flush()
        line = await loop.run_in_executor(None, stdin.readline)
        if not line:
            stdout.write("\n" + msg(lang, "console_bye") + "\n")
            stdout.flush()
            return 0
        await send("text", {"text": line.rstrip("\n")})
