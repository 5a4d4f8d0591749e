"""`lontar`: serve everything configured, or one of the staff and developer commands."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

from bot import broadcast_cli, privacy_cli
from bot.config import ConfigError, Settings, load_settings
from bot.logs import setup_logging
from flows.content import ContentError, load_content, unverified_facts
from flows.understand import understander


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lontar", description="Lontar: Dukcapil assistant.")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve the web chat and every configured channel (default)")
    chat = sub.add_parser("chat", help="talk to Lontar in this terminal")
    chat.add_argument("--user", help="conversation name (default: your login name)")
    match = sub.add_parser("match", help="show which topic a text reaches, as JSON")
    match.add_argument("text", nargs="*")
    match.add_argument("--stdin", action="store_true", help="one JSON line per input line")
    content = sub.add_parser("content", help="content catalogue tools")
    content_sub = content.add_subparsers(dest="action", required=True)
    content_sub.add_parser("check", help="validate content/, naming file and field of errors")
    tg = sub.add_parser("telegram", help="Telegram tools")
    tg_sub = tg.add_subparsers(dest="action", required=True)
    tg_sub.add_parser("set-webhook", help="point Telegram at TELEGRAM_WEBHOOK_URL")
    tg_sub.add_parser("delete-webhook", help="remove the webhook (back to long polling)")
    sv = sub.add_parser("survey", help="the satisfaction survey (SKM)")
    sv_sub = sv.add_subparsers(dest="action", required=True)
    rep = sv_sub.add_parser("report", help="IKM per unsur and overall (PermenPANRB 14/2017)")
    rep.add_argument("--from", dest="start", type=date.fromisoformat, help="YYYY-MM-DD")
    rep.add_argument("--to", dest="end", type=date.fromisoformat, help="YYYY-MM-DD")
    rep.add_argument("--office", help="office id from content/offices.toml")
    adm = sub.add_parser("admin", help="dashboard accounts")
    adm_sub = adm.add_subparsers(dest="action", required=True)
    cu = adm_sub.add_parser(
        "create-user", help="add a dashboard account (password asked, or one line on stdin)")
    cu.add_argument("username")
    cu.add_argument("--role", choices=("admin", "staff", "viewer"), default="staff")
    cu.add_argument("--name", help="name shown to colleagues (default: the username)")
    cu.add_argument("--telegram-chat", help="Telegram chat id for alerts and reminders")
    tok = sub.add_parser("api-token", help="bearer tokens for the staff API (/api/v1/)")
    tok_sub = tok.add_subparsers(dest="action", required=True)
    tc = tok_sub.add_parser("create", help="create a token and print it (shown only once)")
    tc.add_argument("name", help="which system uses it, e.g. simduk-sync")
    tc.add_argument("--scope", choices=("read", "write"), default="read",
                    help="read: look up applications; write: also create and change them")
    tr = tok_sub.add_parser("revoke", help="stop a token from working (at once)")
    tr.add_argument("name", help="the token's name (or its id)")
    tok_sub.add_parser("list", help="tokens with scope and last use (never the tokens)")
    ap = sub.add_parser("applications", help="application status tracking")
    ap_sub = ap.add_subparsers(dest="action", required=True)
    imp = ap_sub.add_parser("import", help="load or update applications from a CSV file")
    imp.add_argument("file", type=Path)
    imp.add_argument("--dry-run", action="store_true", help="check and count, write nothing")
    broadcast_cli.add_parsers(sub)
    privacy_cli.add_parsers(sub)
    db = sub.add_parser("db", help="database tools")
    db_sub = db.add_subparsers(dest="action", required=True)
    db_sub.add_parser("upgrade", help="apply database migrations (alembic)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        print(f"lontar: configuration error:\n{exc}", file=sys.stderr)
        return 2
    # one handler with request ids and redaction; alembic and apscheduler quiet unless DEBUG
    setup_logging(settings.log_level, settings.log_format)
    try:
        if args.command == "match":
            return _match(args, settings.content_dir)
        if args.command == "content":
            return _content_check(settings.content_dir)
        from bot.app import build, serve  # imported late: `match` and `content` stay light

        if args.command == "telegram":
            return asyncio.run(_telegram(args.action, settings))
        if args.command == "survey":
            lontar = build(settings)
            try:
                return _survey_report(lontar, args.start, args.end, args.office)
            finally:
                lontar.close()
        if args.command == "admin":
            lontar = build(settings)
            try:
                return _create_user(lontar, args)
            finally:
                lontar.close()
        if args.command == "api-token":
            lontar = build(settings)
            try:
                return _api_token(lontar, args)
            finally:
                lontar.close()
        if args.command == "applications":
            lontar = build(settings)
            try:
                return _import(lontar, args.file, args.dry_run)
            finally:
                lontar.close()
        if args.command in ("broadcast", "contacts"):
            lontar = build(settings)
            try:
                return broadcast_cli.run(lontar, args)
            finally:
                lontar.close()
        if args.command == "privacy":
            lontar = build(settings)
            try:
                return privacy_cli.run(lontar, args)
            finally:
                lontar.close()
        if args.command == "db":
            lontar = build(settings, migrate=False)
            lontar.db.upgrade()
            print(f"database at head: {lontar.db.engine.url.render_as_string()}")
            return 0
        lontar = build(settings)
        try:
            if args.command == "chat":
                from bot.channels.console import chat

                return asyncio.run(chat(lontar, args.user))
            asyncio.run(serve(lontar))
            return 0
        finally:
            lontar.close()
    except ContentError as exc:
        print("lontar: content errors:", file=sys.stderr)
        for line in exc.errors:
            print(f"  {line}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _match(args: argparse.Namespace, content_dir: object) -> int:
    u = understander(load_content(content_dir))  # type: ignore[arg-type]
    if args.stdin:
        for line in sys.stdin:
            print(json.dumps(u.match(line.rstrip("\n")).to_json(), ensure_ascii=False),
                  flush=False)
        sys.stdout.flush()
        return 0
    print(json.dumps(u.match(" ".join(args.text)).to_json(), ensure_ascii=False))
    return 0


def _content_check(content_dir: object) -> int:
    content = load_content(content_dir)  # type: ignore[arg-type]
    from flows.render_check import check_rendering

    problems = check_rendering(content)
    for line in problems:
        print(f"error: {line}")
    for line in unverified_facts(content):
        print(f"warning: {line}: empty (citizens see 'tanyakan di kantor' until filled)")
    n = len(content.all_topics)
    if problems:
        print(f"{len(problems)} error(s)")
        return 1
    print(f"content OK: {len(content.services)} services, {n} topics in all, "
          f"{len(content.offices)} offices, {sum(len(k.kelurahan) for k in content.kecamatan)} "
          "kelurahan")
    return 0


async def _telegram(action: str, settings: Settings) -> int:
    from bot.channels.telegram import make_bot, set_webhook

    if not settings.telegram_bot_token:
        print("lontar: TELEGRAM_BOT_TOKEN is not set", file=sys.stderr)
        return 2
    async with make_bot(settings) as bot:
        if action == "set-webhook":
            if not settings.telegram_webhook_url:
                print("lontar: TELEGRAM_WEBHOOK_URL is not set", file=sys.stderr)
                return 2
            await set_webhook(bot, settings)
            print(f"webhook set: {settings.telegram_webhook_url}")
        else:
            await bot.delete_webhook()
            print("webhook deleted: Lontar will use long polling")
    return 0


def _import(lontar: Any, path: Path, dry_run: bool) -> int:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    from bot.services.application_import import print_progress, run

    today = datetime.now(UTC).astimezone(ZoneInfo(lontar.settings.timezone)).date()
    report = run(lontar.db.engine, path, lontar.content, lontar.settings.secret_key, today,
                 dry_run=dry_run, progress=None if dry_run else print_progress())
    if report.errors:
        for line, where, problem in report.errors[:200]:
            print(f"{path.name}: line {line}: {where}: {problem}", file=sys.stderr)
        if len(report.errors) > 200:
            print(f"... and {len(report.errors) - 200} more", file=sys.stderr)
        print(f"lontar: {len(report.errors)} problem(s) in {report.rows} rows; nothing was "
              "written", file=sys.stderr)
        return 1
    a = report.applied
    assert a is not None
    verb = "would be" if dry_run else "were"
    print(f"{report.rows} rows: {a.created} new, {a.updated} updated, {a.unchanged} "
          f"unchanged; {a.notified} notifications {verb} queued"
          + (" (dry run: nothing written)" if dry_run else ""))
    return 0


def _create_user(lontar: Any, args: argparse.Namespace) -> int:
    from bot.services.staff import AccountError, create_user

    if sys.stdin.isatty():
        import getpass

        password = getpass.getpass("Password (10+ characters): ")
        if getpass.getpass("Again: ") != password:
            print("lontar: the passwords differ", file=sys.stderr)
            return 2
    else:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        with lontar.db.engine.begin() as conn:
            user_id = create_user(conn, args.username, password, args.role, args.name,
                                  args.telegram_chat)
    except AccountError as exc:
        print(f"lontar: {exc}", file=sys.stderr)
        return 2
    print(f"user {args.username.strip().lower()} created (id {user_id}, role {args.role})")
    return 0


def _api_token(lontar: Any, args: argparse.Namespace) -> int:
    from bot.services import api_tokens

    if args.action == "create":
        try:
            with lontar.db.engine.begin() as conn:
                token = api_tokens.create(conn, args.name, args.scope)
        except api_tokens.TokenError as exc:
            print(f"lontar: {exc}", file=sys.stderr)
            return 2
        print(f"token {args.name.strip().lower()} created (scope {args.scope}):")
        print(token)
        print("Store it now: it cannot be shown again (only its hash is kept).")
        return 0
    if args.action == "revoke":
        with lontar.db.engine.begin() as conn:
            done = api_tokens.revoke(conn, args.name)
        if not done:
            print(f"lontar: no live token named {args.name!r}", file=sys.stderr)
            return 1
        print(f"token {args.name.strip().lower()} revoked")
        return 0
    with lontar.db.engine.connect() as conn:
        tokens = api_tokens.list_tokens(conn)
    if not tokens:
        print("no API tokens (create one with: lontar api-token create NAME --scope read)")
        return 0

    def when(value: Any) -> str:
        return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"

    print(f"{'id':>4}  {'name':<24} {'scope':<6} {'created':<20} {'last used':<20} state")
    for t in tokens:
        state = f"revoked {when(t.revoked_at)}" if t.revoked_at else "active"
        print(f"{t.id:>4}  {t.name:<24} {t.scope:<6} {when(t.created_at):<20} "
              f"{when(t.last_used_at):<20} {state}")
    return 0


def _survey_report(lontar: Any, start: date | None, end: date | None,
                   office: str | None) -> int:
    from bot.services.survey import report

    with lontar.db.engine.connect() as conn:
        result = report(conn, start, end, office)
    period = f"{start or '...'} to {end or '...'}" + (f", office {office}" if office else "")
    if result is None:
        print(f"SKM {period}: no respondents")
        return 0
    names = {u.id: u.name.id for u in lontar.content.survey.unsur}
    print(f"SKM {period}: {result.respondents} respondents")
    for unsur, nrr in result.nrr.items():
        print(f"  {unsur} {names.get(unsur, ''):<22} NRR {nrr:.4f}  IKM {nrr * 25:.2f}")
    print(f"IKM {result.ikm:.2f}  mutu {result.grade} ({result.performance})")
    return 0
