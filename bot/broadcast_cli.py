"""`lontar broadcast …` and `lontar contacts …`: outreach run from the server's terminal.

The commands call the operations the dashboard uses (bot/services/broadcasts.py), so a
broadcast made here is approved, sent and reported like any other. They only change the
database: the server process (`lontar`) does the sending, which is why `--follow` reads
progress from the database instead of sending anything itself. Services are imported inside
the commands so that `lontar match` stays quick to start.

Exit codes: 1 when the broadcast cannot do what was asked (unknown id, wrong status, content
the service refuses); 2 when the command itself was wrong (an argument, a file, a
permission) — the same meaning argparse gives 2.
"""

from __future__ import annotations

import argparse
import csv
import re
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from bot.services import broadcast_images as images

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from bot.app import Lontar
    from bot.quiet import QuietHours
    from bot.services.audience import Audience
    from bot.services.broadcasts import Progress

AT_FORMAT = "%Y-%m-%d %H:%M"
ENDED = ("done", "cancelled", "paused")  # --follow stops: nothing more moves on its own
STALE_SECONDS = 30.0  # no change for this long while due: the server is probably not running
PLAIN_SECONDS = 5.0  # one progress line this often when stdout is not a terminal
REPORT_FIELDS = ("contact_id", "channel", "outcome", "sent_at", "whatsapp_template",
                 "opted_out_after")
CHANNELS = ("telegram", "whatsapp")
HEADER_WORDS = {"channel", "kanal", "external_id", "id", "chat_id", "number", "nomor"}
# `broadcast edit --clear NAME`: the option it empties -> the argument's dest
CLEARABLE = {"text-en": "text_en", "image": "image", "button": "buttons",
             "channel": "channels", "lang": "languages", "kecamatan": "kecamatan",
             "kelurahan": "kelurahan", "service": "services", "tag": "tags"}


class UsageError(Exception):
    """The command itself was wrong (an argument, a file, a permission): exit 2."""


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bc = sub.add_parser("broadcast", help="outreach broadcasts (draft, approve, send, report)")
    b = bc.add_subparsers(dest="action", required=True)
    _composing(b.add_parser("create", help="store a draft and print its audience size"))
    ed = b.add_parser("edit", help="change a draft (not yet approved): only the options given")
    ed.add_argument("id", type=int)
    _composing(ed, edit=True)
    ls = b.add_parser("list", help="recent broadcasts")
    ls.add_argument("--limit", type=int, default=30)
    for name, what in (("show", "every field, audience size now and progress"),
                       ("approve", "an admin's approval of a draft"),
                       ("send", "send now or at a time (the server sends it)"),
                       ("pause", "stop sending; queued messages are held"),
                       ("resume", "go on with a paused broadcast"),
                       ("cancel", "nothing more goes out"),
                       ("test", "queue the message to one staff chat"),
                       ("report", "counts per outcome, opt-outs after; CSV per recipient")):
        p = b.add_parser(name, help=what)
        p.add_argument("id", type=int)
        if name in ("show", "send"):
            p.add_argument("--follow", action="store_true",
                           help="redraw progress until done, paused or cancelled (Ctrl-C stops "
                                "following, not the broadcast)")
        if name == "approve":
            p.add_argument("--by", required=True, metavar="ADMIN_USERNAME",
                           help="the approving admin's dashboard username")
        if name == "send":
            p.add_argument("--at", metavar='"YYYY-MM-DD HH:MM"', help="office time (WITA)")
        if name == "test":
            to = p.add_mutually_exclusive_group(required=True)
            to.add_argument("--telegram", metavar="CHAT_ID")
            to.add_argument("--whatsapp", metavar="NUMBER")
            p.add_argument("--lang", choices=("id", "en"), default="id")
        if name == "report":
            p.add_argument("--csv", type=Path, metavar="FILE", help="one row per recipient")
    ct = sub.add_parser("contacts", help="contact tags for broadcast audiences")
    c = ct.add_subparsers(dest="action", required=True)
    for name, what in (("tag", "give contacts a tag"), ("untag", "take a tag away")):
        p = c.add_parser(name, help=what)
        p.add_argument("tag")
        p.add_argument("--channel", choices=CHANNELS)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--id", dest="ids", nargs="+", action="extend", metavar="EXTERNAL_ID",
                         help="Telegram chat ids or WhatsApp numbers")
        who.add_argument("--file", type=Path,
                         help="one id per line, or channel,id per line (CSV)")
        if name == "untag":
            who.add_argument("--all", action="store_true", help="from every contact")
    c.add_parser("tags", help="contacts per tag")


def _composing(p: argparse.ArgumentParser, edit: bool = False) -> None:
    """The message and audience options, defined once for create and edit. On edit none is
    required and an option not given is None (kept as stored); a repeatable one given
    replaces the stored list, and --clear empties a field."""
    many: dict[str, Any] = {"action": "append", "default": None if edit else []}
    p.add_argument("--title", required=not edit)
    text = p.add_mutually_exclusive_group(required=not edit)
    text.add_argument("--text", help="the message in Indonesian")
    text.add_argument("--text-file", type=Path, help="read the Indonesian text (- for stdin)")
    en = p.add_mutually_exclusive_group()
    en.add_argument("--text-en", help="the message in English (English-speaking contacts)")
    en.add_argument("--text-en-file", type=Path)
    p.add_argument("--image", type=Path, help="a JPEG or PNG, at most 5 MB"
                   + ("; replaces the draft's picture" if edit else ""))
    p.add_argument("--button", dest="buttons", metavar="TOPIC", **many,
                   help="a topic button under the message (up to 3)")
    p.add_argument("--channel", dest="channels", choices=CHANNELS, **many)
    p.add_argument("--lang", dest="languages", choices=("id", "en"), **many)
    p.add_argument("--kecamatan", metavar="ID", **many)
    p.add_argument("--kelurahan", metavar="KEC:CODE", **many)
    p.add_argument("--service", dest="services", metavar="TOPIC", **many,
                   help="contacts who asked about this topic")
    p.add_argument("--open-application", default=None if edit else False,
                   action=argparse.BooleanOptionalAction if edit else "store_true",
                   help="contacts following an application still in progress")
    p.add_argument("--tag", dest="tags", metavar="TAG", **many)
    if edit:
        p.add_argument("--clear", action="append", default=[], choices=CLEARABLE,
                       help="empty a field: no English text, no picture, no buttons, or no "
                            "filter of that kind (repeatable)")


def run(lontar: Lontar, args: argparse.Namespace) -> int:
    """Dispatch, turning every expected failure into one line on stderr."""
    from bot.services.broadcasts import BroadcastError

    commands: dict[str, Callable[[Lontar, argparse.Namespace], int]] = {
        "create": _create, "edit": _edit, "list": _list, "show": _show, "approve": _approve,
        "send": _send, "pause": _life, "resume": _life, "cancel": _life, "test": _test,
        "report": _report,
    } if args.command == "broadcast" else {"tag": _tag, "untag": _tag, "tags": _tags}
    try:
        return commands[args.action](lontar, args)
    except BroadcastError as exc:
        print(f"lontar: {exc}", file=sys.stderr)
        return 1
    except UsageError as exc:
        print(f"lontar: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"lontar: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
        return 2


# --- broadcasts ---------------------------------------------------------------------------


def _create(lontar: Lontar, args: argparse.Namespace) -> int:
    from bot.services import broadcasts as bc
    from bot.services.staff import audit

    text_id = _text(args.text, args.text_file)
    text_en = _text(args.text_en, args.text_en_file)
    audience = _audience(args)
    folder, name = images.folder(lontar.settings.data_dir), None
    if args.image is not None:
        name = store_image(args.image, folder)
    try:
        with lontar.db.engine.begin() as conn:
            broadcast_id = bc.create(
                conn, lontar.content, title=args.title, text_id=text_id or "", text_en=text_en,
                buttons=args.buttons, audience=audience, image=name, now=datetime.now(UTC))
            reach = bc.reach(conn, lontar.content, audience)
            audit(conn, None, "broadcast_create", str(broadcast_id))
    except BaseException:
        if name is not None:  # the draft was refused: keep no orphan picture
            (folder / name).unlink(missing_ok=True)
        raise
    print(f"broadcast {broadcast_id} created; draft: needs approval by an admin "
          f"(lontar broadcast approve {broadcast_id} --by USERNAME)")
    print(f"audience now: {reach} contacts ({audience.describe(lontar.content)})")
    return 0


def _edit(lontar: Lontar, args: argparse.Namespace) -> int:
    """Change the options given and keep the rest, checked as on create; a draft only."""
    from bot.services import broadcasts as bc

    cleared = {CLEARABLE[c] for c in args.clear}
    given = {d for d in CLEARABLE.values() if getattr(args, d) is not None}
    given |= {"text_en"} if args.text_en_file is not None else set()
    both = sorted(c for c in set(args.clear) if CLEARABLE[c] in given)
    if both:
        raise UsageError(f"--clear {', '.join(both)}: a new value is given too")
    text_id = _text(args.text, args.text_file)
    text_en = _text(args.text_en, args.text_en_file)
    folder, name = images.folder(lontar.settings.data_dir), None
    if args.image is not None:
        name = store_image(args.image, folder)

    def new(field: str, value: Any, stored: Any, empty: Any = None) -> Any:
        return empty if field in cleared else stored if value is None else value

    try:
        with lontar.db.engine.begin() as conn:
            row = bc.get(conn, args.id)
            audience = _edited_audience(bc.audience_of(row), args, cleared)
            done = bc.update_draft(
                conn, lontar.content, args.id, title=new("title", args.title, row.title),
                text_id=new("text_id", text_id, row.text_id),
                text_en=new("text_en", text_en, row.text_en),
                buttons=new("buttons", args.buttons, row.buttons, []), audience=audience,
                image=new("image", name, row.image), staff_id=None, now=datetime.now(UTC))
            reach = bc.reach(conn, lontar.content, audience)
    except BaseException:
        if name is not None:  # refused: keep no orphan picture
            (folder / name).unlink(missing_ok=True)
        raise
    if done.dropped_image is not None:
        with lontar.db.engine.begin() as conn:
            images.remove_unused(conn, folder, done.dropped_image)
    if not done.changed:
        print(f"broadcast {args.id}: nothing changed")
        return 0
    print(f"broadcast {args.id} changed ({', '.join(done.changed)}); still a draft: needs "
          f"approval by an admin (lontar broadcast approve {args.id} --by USERNAME)")
    print(f"audience now: {reach} contacts ({audience.describe(lontar.content)})")
    return 0


def _edited_audience(was: Audience, args: argparse.Namespace, cleared: set[str]) -> Audience:
    """The stored filters with those given replaced and those cleared emptied."""
    from bot.services.audience import TAG_PATTERN, Audience

    fields = was.model_dump()
    for field in ("channels", "languages", "kecamatan", "kelurahan", "services", "tags"):
        value = getattr(args, field)
        if field in cleared:
            fields[field] = ()
        elif value is not None:
            fields[field] = tuple(_tag_name(t, TAG_PATTERN) for t in value) \
                if field == "tags" else tuple(value)
    if args.open_application is not None:
        fields["open_application"] = args.open_application
    return Audience.model_validate(fields)


def _text(value: str | None, path: Path | None) -> str | None:
    if path is None:
        return value
    return sys.stdin.read() if str(path) == "-" else _read_text(path)


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not UTF-8 text") from None


def _audience(args: argparse.Namespace) -> Audience:
    from bot.services.audience import TAG_PATTERN, Audience

    tags = [_tag_name(t, TAG_PATTERN) for t in args.tags]
    return Audience(channels=tuple(args.channels), languages=tuple(args.languages),
                    kecamatan=tuple(args.kecamatan), kelurahan=tuple(args.kelurahan),
                    services=tuple(args.services), open_application=args.open_application,
                    tags=tuple(tags))


def _tag_name(value: str, pattern: str) -> str:
    tag = value.strip().lower()  # "RT-05" and "rt-05 " are the same tag to staff
    if not re.fullmatch(pattern, tag):
        raise UsageError(f"tag {value!r}: 1-32 of a-z, 0-9 and '-', starting with a letter "
                         "or digit")
    return tag


def store_image(path: Path, folder: Path) -> str:
    """Check and keep the picture (judged by its bytes, not its name): a file the platforms
    would refuse is refused here, before anyone approves it."""
    size = path.stat().st_size
    if size > images.IMAGE_MAX:
        raise UsageError(f"{path}: {size / 1024 / 1024:.1f} MB; an image may be at most 5 MB")
    try:
        return images.save(folder, path.read_bytes())
    except images.ImageError as exc:
        raise UsageError(f"{path}: not a JPEG or PNG image") from exc


def _list(lontar: Lontar, args: argparse.Namespace) -> int:
    from sqlalchemy import func, select

    from bot.models import outbox_t
    from bot.outbox import SENT
    from bot.services import broadcasts as bc

    with lontar.db.engine.connect() as conn:
        rows = bc.listed(conn, args.limit)
        sent: dict[int, int] = {r[0]: r[1] for r in conn.execute(
            select(outbox_t.c.broadcast_id, func.count())
            .where(outbox_t.c.broadcast_id.in_([r.id for r in rows]), outbox_t.c.status == SENT)
            .group_by(outbox_t.c.broadcast_id))}
    if not rows:
        print("no broadcasts (create one with: lontar broadcast create --title ... --text ...)")
        return 0
    tz = lontar.settings.timezone
    print(f"{'id':>4}  {'status':<9} {'created':<16} {'send at':<16} {'planned':>7} "
          f"{'sent':>7}  title")
    for r in rows:
        print(f"{r.id:>4}  {r.status:<9} {_when(r.created_at, tz, zone=False):<16} "
              f"{_when(r.send_at, tz, zone=False):<16} {r.planned:>7} {sent.get(r.id, 0):>7}  "
              f"{r.title}")
    return 0


def _show(lontar: Lontar, args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from bot.models import staff_t
    from bot.services import broadcasts as bc

    tz, content = lontar.settings.timezone, lontar.content
    with lontar.db.engine.connect() as conn:
        row = bc.get(conn, args.id)
        audience = bc.audience_of(row)
        reach = bc.reach(conn, content, audience)
        p = bc.progress(conn, args.id, datetime.now(UTC))
        names: dict[int, str] = {r[0]: r[1] for r in conn.execute(
            select(staff_t.c.id, staff_t.c.username).where(
                staff_t.c.id.in_([i for i in (row.created_by, row.approved_by) if i])))}

    def by(staff_id: int | None) -> str:
        return f" by {names.get(staff_id, staff_id)}" if staff_id else ""

    image = lontar.settings.data_dir / "broadcasts" / row.image if row.image else None
    fields = [
        ("title", row.title), ("status", row.status),
        ("created", _when(row.created_at, tz) + (by(row.created_by) or " (command line)")),
        ("approved", _when(row.approved_at, tz) + by(row.approved_by)),
        ("send at", _when(row.send_at, tz)), ("started", _when(row.started_at, tz)),
        ("finished", _when(row.finished_at, tz)),
        ("audience", audience.describe(content)),
        ("size now", f"{reach} contacts" + (f" (planned {row.planned} when scheduled)"
                                            if row.send_at else "")),
        ("buttons", ", ".join(row.buttons) or "-"), ("image", str(image or "-")),
        ("progress", _counts(p)),
        ("text (id)", row.text_id), ("text (en)", row.text_en or "- (Indonesian for all)"),
    ]
    print(f"broadcast {row.id}")
    for label, value in fields:
        print(f"  {label + ':':<10} {str(value).replace(chr(10), chr(10) + ' ' * 13)}")
    return _follow_app(lontar, args.id) if args.follow else 0


def _counts(p: Progress) -> str:
    return (f"{p.sent} sent, {p.waiting} waiting, {p.failed} failed, {p.blocked} blocked, "
            f"{p.opted_out} opted out, {p.unsendable} unsendable, {p.unconfirmed} unconfirmed, "
            f"{p.cancelled} cancelled; {p.opt_outs_after} opted out or blocked after")


def _approve(lontar: Lontar, args: argparse.Namespace) -> int:
    """The operator runs this on the server with no login, so the approving admin is named
    and checked: the record shows which admin took responsibility for the message."""
    from sqlalchemy import select

    from bot.models import staff_t
    from bot.services import broadcasts as bc
    from bot.services.staff import audit

    username = args.by.strip().lower()
    with lontar.db.engine.begin() as conn:
        staff = conn.execute(select(staff_t.c.id, staff_t.c.role, staff_t.c.active)
                             .where(staff_t.c.username == username)).first()
        if staff is None:
            raise UsageError(f"no dashboard user {username!r}")
        if not staff.active:
            raise UsageError(f"user {username!r} is deactivated")
        if staff.role != "admin":
            raise UsageError(f"user {username!r} is {staff.role}: only an admin may approve")
        bc.approve(conn, args.id, staff.id, datetime.now(UTC))
        audit(conn, staff.id, "broadcast_approve", str(args.id))
    print(f"broadcast {args.id} approved by {username}; send it with: lontar broadcast send "
          f"{args.id} [--at \"YYYY-MM-DD HH:MM\"]")
    return 0


def _send(lontar: Lontar, args: argparse.Namespace) -> int:
    from bot.services import broadcasts as bc
    from bot.services.staff import audit

    tz, now = lontar.settings.timezone, datetime.now(UTC)
    at = parse_at(args.at, tz) if args.at else None
    with lontar.db.engine.begin() as conn:
        planned = bc.schedule(conn, lontar.content, args.id, now, at)
        audit(conn, None, "broadcast_schedule", str(args.id), send_at=at and at.isoformat())
    when = f"for {_when(at, tz)}" if at else "to start now"
    print(f"broadcast {args.id} scheduled {when}: {planned} recipients; the server (lontar) "
          "sends it")
    quiet_end = lontar.settings.quiet_hours.until(at or now)
    if quiet_end is not None:
        print(f"note: that is in quiet hours; sending starts at {_when(quiet_end, tz)}")
    if planned == 0:
        print("note: nobody in the audience can be reached now (opted in, not blocked)")
    return _follow_app(lontar, args.id) if args.follow else 0


def parse_at(value: str, timezone: str) -> datetime:
    try:
        local = datetime.strptime(value.strip(), AT_FORMAT)
    except ValueError:
        raise UsageError(f'--at {value!r}: use "YYYY-MM-DD HH:MM" (office time)') from None
    return local.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def _life(lontar: Lontar, args: argparse.Namespace) -> int:
    from bot.services import broadcasts as bc
    from bot.services.staff import audit

    move = {"pause": bc.pause, "resume": bc.resume, "cancel": bc.cancel}[args.action]
    with lontar.db.engine.begin() as conn:
        rows = move(conn, args.id, datetime.now(UTC))
        audit(conn, None, f"broadcast_{args.action}", str(args.id), rows=rows)
    what = {"pause": f"paused; {rows} queued messages held until resumed",
            "resume": f"resumed; {rows} held messages queued again",
            "cancel": f"cancelled; {rows} queued messages will not be sent"}[args.action]
    print(f"broadcast {args.id} {what}")
    return 0


def _test(lontar: Lontar, args: argparse.Namespace) -> int:
    from bot.services import broadcasts as bc

    if args.telegram is not None:
        channel, external_id = "telegram", args.telegram.strip()
        if not re.fullmatch(r"-?\d+", external_id):
            raise UsageError(f"--telegram {args.telegram!r}: a chat id is a number")
        configured = bool(lontar.settings.telegram_bot_token)
    else:
        channel, external_id = "whatsapp", wa_number(args.whatsapp)
        configured = lontar.settings.whatsapp_enabled
    with lontar.db.engine.begin() as conn:
        bc.test_send(conn, lontar.content, args.id, channel, external_id, datetime.now(UTC),
                     args.lang)
    print(f"test of broadcast {args.id} ({args.lang}) queued for {channel} {external_id}; "
          "the server (lontar) sends it")
    if not configured:
        print(f"note: {channel} is not configured here, so nothing is sent until it is",
              file=sys.stderr)
    return 0


def wa_number(value: str) -> str:
    """WhatsApp ids are the number with country code, digits only; a local 08... becomes
    628..., as staff usually write Indonesian numbers."""
    digits = re.sub(r"[\s().+-]", "", value)
    if not digits.isdigit() or not 8 <= len(digits) <= 15:
        raise UsageError(f"{value!r}: not a phone number")
    return "62" + digits[1:] if digits.startswith("0") else digits


def _report(lontar: Lontar, args: argparse.Namespace) -> int:
    from bot.services import broadcasts as bc

    with lontar.db.engine.connect() as conn:
        row = bc.get(conn, args.id)
        p = bc.progress(conn, args.id, datetime.now(UTC))
        print(f"broadcast {row.id} ({row.status}): {row.title}")
        print(f"  planned {row.planned}, queued {row.queued}")
        for reason, n in p.reasons().items():
            print(f"  {reason.replace('_', ' '):<12} {n:>8}")
        share = f" ({p.opt_outs_after * 100 / p.sent:.1f}% of sent)" if p.sent else ""
        print(f"  opted out or blocked within 72 h after: {p.opt_outs_after}{share}")
        if args.csv is not None:
            with open(args.csv, "w", newline="", encoding="utf-8") as f:
                out = csv.DictWriter(f, fieldnames=REPORT_FIELDS)
                out.writeheader()
                n = 0
                for r in bc.report_rows(conn, args.id):
                    out.writerow(r)
                    n += 1
            print(f"{n} recipients written to {args.csv}")
    return 0


# --- following progress -------------------------------------------------------------------


def _follow_app(lontar: Lontar, broadcast_id: int) -> int:
    return follow(lontar.db.engine, broadcast_id, timezone=lontar.settings.timezone,
                  quiet=lontar.settings.quiet_hours)


def follow(engine: Engine, broadcast_id: int, *, timezone: str,
           quiet: QuietHours | None = None, out: IO[str] | None = None,
           tty: bool | None = None, sleep: Callable[[float], None] = time.sleep,
           clock: Callable[[], float] = time.monotonic,
           now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> int:
    """Redraw progress every second until the broadcast stops moving on its own. Only reads:
    the server sends, so Ctrl-C here stops the watching, never the broadcast."""
    from bot.services import broadcasts as bc

    out = out or sys.stdout
    tty = out.isatty() if tty is None else tty
    last: tuple[Any, ...] | None = None
    changed = clock()
    printed = changed - PLAIN_SECONDS  # the first line at once
    hinted, width = False, 0
    try:
        while True:
            at = now()
            with engine.connect() as conn:
                row = bc.get(conn, broadcast_id)
                p = bc.progress(conn, broadcast_id, at)
            if row.status in ("draft", "approved"):
                out.write(f"broadcast {broadcast_id} is {row.status}: not scheduled, nothing "
                          "to follow\n")
                return 0
            t, key = clock(), (p.status, p.queued, p.done, p.waiting, p.cancelled)
            if key != last:
                last, changed, hinted = key, t, False
            line = progress_line(p, row.send_at, at, timezone, quiet)
            ended = p.status in ENDED
            if tty:  # a wrapped line cannot be redrawn with \r: cut it to the terminal
                line = line[:shutil.get_terminal_size().columns - 1]
                out.write("\r" + line.ljust(width) + ("\n" if ended else ""))
                width = len(line)
            elif ended or t - printed >= PLAIN_SECONDS:
                out.write(line + "\n")
                printed = t
            if ended:
                out.write(_ending(p, broadcast_id) + "\n")
                out.flush()
                return 0
            due = row.send_at is not None and row.send_at <= at
            resting = quiet is not None and quiet.until(at) is not None
            if due and not resting and not hinted and t - changed >= STALE_SECONDS:
                out.write(("\n" if tty else "") + f"no progress for {STALE_SECONDS:.0f} s: "
                          "is the server (lontar) running? It does the sending; Ctrl-C stops "
                          "following, not the broadcast\n")
                hinted, width = True, 0
            out.flush()
            sleep(1.0)
    except KeyboardInterrupt:
        out.write(("\n" if tty else "") + f"stopped following; broadcast {broadcast_id} goes "
                  f"on (lontar broadcast show {broadcast_id} --follow)\n")
        out.flush()
        return 0


def progress_line(p: Progress, send_at: datetime | None, now: datetime, timezone: str,
                  quiet: QuietHours | None = None) -> str:
    """`[#####-----]  50%  500/1000 sent  29.8/s  ETA 17s  failed 0  blocked 2  ...`"""
    # total: messages that go out (the audience size when scheduled, until every recipient is
    # queued); contacts skipped as blocked or opted out are counted beside it, not in it
    total = max(p.planned, p.queued)
    share = 1.0 if p.status == "done" else (p.queued - p.waiting) / total if total else 0.0
    bar = "#" * round(share * 20)
    eta = "-" if p.eta_seconds is None else _duration(p.eta_seconds)
    state = p.status
    if p.status == "scheduled" and send_at is not None and send_at > now:
        state = f"scheduled for {_when(send_at, timezone)}"
    elif quiet is not None and p.status in ("scheduled", "sending"):
        until = quiet.until(now)
        if until is not None:
            state = f"quiet hours until {_when(until, timezone)}"
    return (f"[{bar:-<20}] {share * 100:3.0f}%  {p.sent}/{total} sent  "
            f"{p.rate_per_minute / 60:.1f}/s  ETA {eta}  failed {p.failed}  blocked "
            f"{p.blocked}  opted out {p.opted_out}  ({state})")


def _ending(p: Progress, broadcast_id: int) -> str:
    return {"done": f"broadcast {broadcast_id} done (lontar broadcast report {broadcast_id})",
            "paused": f"broadcast {broadcast_id} paused (lontar broadcast resume "
                      f"{broadcast_id})",
            }.get(p.status, f"broadcast {broadcast_id} {p.status}")


def _duration(seconds: float) -> str:
    s = int(seconds + 0.5)
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _when(value: datetime | None, timezone: str, zone: bool = True) -> str:
    if value is None:
        return "-"
    local = value.astimezone(ZoneInfo(timezone))
    return local.strftime("%Y-%m-%d %H:%M" + (" %Z" if zone else ""))


# --- contact tags -------------------------------------------------------------------------


def _tag(lontar: Lontar, args: argparse.Namespace) -> int:
    """Tag or untag the contacts named; ids nobody messaged the bot from are reported, not
    created (they never agreed to hear from the office)."""
    from sqlalchemy import delete

    from bot.models import tag_t
    from bot.services.audience import TAG_PATTERN
    from bot.services.staff import audit

    tag, add = _tag_name(args.tag, TAG_PATTERN), args.action == "tag"
    if getattr(args, "all", False):
        with lontar.db.engine.begin() as conn:
            n = conn.execute(delete(tag_t).where(tag_t.c.tag == tag)).rowcount or 0
            audit(conn, None, "contacts_untag", tag, contacts=n, all=True)
        print(f"tag {tag} taken from {n} contacts")
        return 0
    wanted = read_ids(args.file, args.channel) if args.file else _typed_ids(args)
    with lontar.db.engine.begin() as conn:
        found, unknown = _resolve(conn, wanted)
        changed = _set_tag(conn, tag, sorted(set(found)), add)
        audit(conn, None, f"contacts_{args.action}", tag, contacts=changed)
    for where in unknown[:20]:
        print(f"not a known contact: {where}", file=sys.stderr)
    if len(unknown) > 20:
        print(f"... and {len(unknown) - 20} more", file=sys.stderr)
    same = len(set(found)) - changed
    print(f"tag {tag}: {changed} contacts {'tagged' if add else 'untagged'}"
          + (f", {same} {'had it already' if add else 'did not have it'}" if same else "")
          + (f", {len(unknown)} unknown" if unknown else ""))
    return 0 if found else 1


def _typed_ids(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    if args.channel is None:
        raise UsageError("--id needs --channel telegram or --channel whatsapp")
    return [(args.channel, _external(args.channel, i), i) for i in args.ids]


def _external(channel: str, value: str) -> str:
    return wa_number(value) if channel == "whatsapp" else value.strip()


def read_ids(path: Path, channel: str | None) -> list[tuple[str, str, str]]:
    """(channel, external id, where) per line: an id alone (with --channel) or a channel and
    an id in either order; `,`, `;` or a tab between; a header line and `#` lines skipped.
    Every line is checked before anything is written."""
    out, first = [], True
    for n, line in enumerate(_read_text(path).splitlines(), 1):
        fields = [f.strip() for f in re.split(r"[,;\t]", line) if f.strip()]
        if not fields or fields[0].startswith("#"):
            continue
        if first and any(f.lower() in HEADER_WORDS for f in fields):
            first = False
            continue
        first = False
        where = f"{path.name}: line {n}"
        named = [f.lower() for f in fields if f.lower() in CHANNELS]
        if len(fields) == 1 and channel is not None:
            out.append((channel, _external(channel, fields[0]), where))
        elif len(fields) == 2 and len(named) == 1:
            ext = fields[1] if fields[0].lower() == named[0] else fields[0]
            out.append((named[0], _external(named[0], ext), where))
        else:
            raise UsageError(f"{where}: expected an id (with --channel) or channel,id")
    return out


def _resolve(conn: Connection, wanted: list[tuple[str, str, str]]
             ) -> tuple[list[int], list[str]]:
    from sqlalchemy import select

    from bot.models import contact_t

    ids: dict[tuple[str, str], int] = {}
    for channel in CHANNELS:
        exts = sorted({e for c, e, _ in wanted if c == channel})
        for i in range(0, len(exts), 500):
            ids.update({(channel, r.external_id): r.id for r in conn.execute(
                select(contact_t.c.id, contact_t.c.external_id).where(
                    contact_t.c.channel == channel,
                    contact_t.c.external_id.in_(exts[i:i + 500])))})
    found = [ids[(c, e)] for c, e, _ in wanted if (c, e) in ids]
    return found, [where for c, e, where in wanted if (c, e) not in ids]


def _set_tag(conn: Connection, tag: str, contact_ids: list[int], add: bool) -> int:
    from sqlalchemy import delete, insert, select

    from bot.models import tag_t

    changed, now = 0, datetime.now(UTC)
    for i in range(0, len(contact_ids), 500):
        chunk = contact_ids[i:i + 500]
        if not add:
            changed += conn.execute(delete(tag_t).where(
                tag_t.c.tag == tag, tag_t.c.contact_id.in_(chunk))).rowcount or 0
            continue
        have = set(conn.execute(select(tag_t.c.contact_id).where(
            tag_t.c.tag == tag, tag_t.c.contact_id.in_(chunk))).scalars())
        new = [{"contact_id": c, "tag": tag, "created_at": now}
               for c in chunk if c not in have]
        if new:
            conn.execute(insert(tag_t), new)
        changed += len(new)
    return changed


def _tags(lontar: Lontar, args: argparse.Namespace) -> int:
    from sqlalchemy import and_, case, func, select

    from bot.models import contact_t, tag_t

    reachable = and_(contact_t.c.opted_in.is_(True), contact_t.c.blocked_at.is_(None))
    with lontar.db.engine.connect() as conn:
        rows = conn.execute(
            select(tag_t.c.tag, func.count(), func.sum(case((reachable, 1), else_=0)))
            .select_from(tag_t.join(contact_t, contact_t.c.id == tag_t.c.contact_id))
            .group_by(tag_t.c.tag).order_by(tag_t.c.tag)).all()
    if not rows:
        print("no tags (add one with: lontar contacts tag TAG --channel telegram --id CHAT_ID)")
        return 0
    print(f"{'tag':<32} {'contacts':>8} {'opted in':>8}")
    for tag, n, reach in rows:
        print(f"{tag:<32} {n:>8} {int(reach or 0):>8}")
    return 0
