"""N citizens holding conversations at once on Telegram and WhatsApp, against one Lontar.

One real Lontar process (`bot.app.build` + `bot.app.serve`: `web_app`, the leader election,
recovery, the real Telegram and WhatsApp senders; SQLite in a temporary folder, or a schema of
its own on PostgreSQL with `--database-url`) runs in a child process, so what it uses is its
own: the citizens and the two fake platforms (tests/fakes: a Bot API and a Graph API on
loopback) run in this process and their CPU is not Lontar's. Half the citizens are Telegram
chats posting signed updates (`X-Telegram-Bot-Api-Secret-Token`, built by FakeTelegram) to
`/webhooks/telegram`; the other half are WhatsApp users posting signed envelopes
(`X-Hub-Signature-256`, built by FakeWhatsApp, which also opens their 24-hour window) to
`/webhooks/whatsapp`. Each citizen has a conversation of `--turns` turns (default 4): a
greeting, a button taken from the previous reply (a Telegram callback on that message, a
WhatsApp button or list reply), a question with typos ("sarat kk baru"), a button again.
Between turns a citizen reads and types for uniform(0.5, 1.5) x `--think` seconds (default
3.6: 2,000 citizens then offer at most about 555 turns/s, a little over the target); first
turns are spread over one think time. A reply not at the fake within `--reply-timeout`
(30 s) counts as missing, and that citizen gives up.

Platform rate limits are out of the way on purpose, so that the figure is the server's turn
throughput, not Telegram's 30 msg/s or WhatsApp's 80 msg/s: the fakes throttle nothing
(`rate_limit_per_second=None`), and the Lontar child builds its two OutboxWorkers directly (as
bot/app.py does, as bench/broadcast.py does; settings cap TELEGRAM_RATE_PER_SECOND at 30) with
a global rate of 100,000/s and no hard window. The per-chat limits stay as in production
(Telegram 1/s with a burst of 3, WhatsApp one per WHATSAPP_PAIR_SECONDS with a burst of 10):
they are per citizen, and the think times keep a conversation under them.

Latency runs from just before the webhook POST to the first message of the reply arriving at
the fake (a send or an edit; one process, one clock). turns_per_s counts replies arrived over
the middle 80% of them (the 10th to the 90th percentile arrival time), leaving out the
ramp-up and the tail, where fewer citizens are talking; overall_per_s is all replies over the
whole run. errors = webhook answers other than 200 + replies missing. peak_rss_mb is the
Lontar process's VmHWM. cpu_ms_per_turn is the CPU time the Lontar process used per reply
answered: what one core can do, however busy the rest of the machine is. Prints ONE line;
targets: >= 500 turns/s per process, p99 < 100 ms, 0 errors.
Run: python bench/load.py [--citizens 2000] [--turns 4] [--think 3.6]
     [--database-url postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.telegram_api import FakeTelegram  # noqa: E402
from tests.fakes.whatsapp_api import FakeWhatsApp, meta_json, sign  # noqa: E402

TG_SECRET = "bench-load-webhook-secret"
WA_SECRET = "bench-load-app-secret"
WA_TOKEN = "TEST-TOKEN"
WA_PHONE_ID = "1234567890"
SENDER_RATE = 100_000.0  # a global rate that never binds: the platforms' limits are not measured
FIRST_CHAT = 70_000_000
GREETINGS = ["halo", "hai min", "selamat pagi", "menu", "halo kak", "permisi", "p", "siang"]
QUESTIONS = ["sarat kk baru", "syarat bikin ktp", "ktp sy ilang", "akte lahir anak brp lama",
             "cara urus kia", "pindah domisili ke kupang", "jam buka kantor", "syrat kk",
             "mau bikin akta kematian", "ikd itu apa", "biaya bikin ktp", "kk rusak gmn",
             "e-ktp blm jadi", "dimana kantor dukcapil"]
TARGET_TPS = 500
TARGET_P99_MS = 100.0


# --- Lontar, in a child process ----------------------------------------------------------


def serve_lontar(config: dict[str, Any]) -> None:
    """The real server, with its senders' global limits raised (see the module docstring)."""
    from bot.app import build, serve
    from bot.config import load_settings
    from bot.logs import setup_logging
    from bot.outbox import OutboxWorker

    settings = load_settings(**config)
    setup_logging("WARNING", "text")
    lontar = build(settings)
    assert lontar.telegram is not None and lontar.whatsapp is not None
    lontar.workers["telegram"] = OutboxWorker(
        lontar.db, lontar.telegram.sender, rate=SENDER_RATE, burst=SENDER_RATE / 100,
        per_chat_rate=1.0, per_chat_burst=3, quiet=settings.quiet_hours, metrics=lontar.metrics)
    lontar.workers["whatsapp"] = OutboxWorker(
        lontar.db, lontar.whatsapp.sender, rate=SENDER_RATE, burst=SENDER_RATE / 100,
        per_chat_rate=1 / settings.whatsapp_pair_seconds, per_chat_burst=10,
        quiet=settings.quiet_hours, metrics=lontar.metrics)
    try:
        asyncio.run(serve(lontar))
    finally:
        lontar.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (/proc/PID/stat, clock ticks)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


# --- the platforms and the citizens, in this process -----------------------------------------


class Arrivals:
    """Every message the fakes accept, per chat; a citizen waits for the first after its POST."""

    def __init__(self) -> None:
        self.seen: dict[Any, list[tuple[float, list[tuple[Any, ...]]]]] = {}
        self.waiting: dict[Any, tuple[float, asyncio.Future[float]]] = {}

    def arrived(self, chat: Any, options: list[tuple[Any, ...]]) -> None:
        at = time.monotonic()
        self.seen.setdefault(chat, []).append((at, options))
        wait = self.waiting.get(chat)
        if wait is not None and at >= wait[0] and not wait[1].done():
            wait[1].set_result(at)

    def expect(self, chat: Any, since: float) -> asyncio.Future[float]:
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiting[chat] = (since, future)
        return future

    def options_since(self, chat: Any, since: float) -> list[list[tuple[Any, ...]]]:
        return [opts for at, opts in self.seen.get(chat, []) if at >= since and opts]


class BenchTelegram(FakeTelegram):
    def __init__(self, arrivals: Arrivals) -> None:
        super().__init__(rate_limit_per_second=None)  # no throttling: see the docstring
        self.arrivals = arrivals

    def _record(self, method: str, msg: Any, params: dict[str, Any]) -> None:
        super()._record(method, msg, params)
        rows = (msg.reply_markup or {}).get("inline_keyboard", [])
        self.arrivals.arrived(msg.chat_id, [(msg.message_id, b["callback_data"])
                                            for row in rows for b in row
                                            if "callback_data" in b])


class BenchWhatsApp(FakeWhatsApp):
    def __init__(self, arrivals: Arrivals) -> None:
        super().__init__(token=WA_TOKEN, phone_number_id=WA_PHONE_ID, app_secret=WA_SECRET,
                         rate_limit_per_second=None)
        self.arrivals = arrivals

    def _send(self, body: dict[str, Any]) -> web.Response:
        response = super()._send(body)
        sent = self.sent[-1]
        self.arrivals.arrived(sent.to, [(sent.wamid, sent.interactive_type, bid, title)
                                        for bid, title in sent.buttons])
        return response


class Tally:
    def __init__(self) -> None:
        self.latencies: list[float] = []
        self.by_channel: dict[str, list[float]] = {"telegram": [], "whatsapp": []}
        self.buttons = 0  # turns that were a button taken from the previous reply
        self.arrived_at: list[float] = []
        self.posts = {"telegram": 0, "whatsapp": 0}
        self.non_200 = 0
        self.missing = 0


async def citizen(n: int, ctx: dict[str, Any], tally: Tally, rng: random.Random) -> None:
    """One conversation: greeting, button, question, button, ... as one person has it."""
    session: aiohttp.ClientSession = ctx["session"]
    arrivals: Arrivals = ctx["arrivals"]
    telegram = n % 2 == 0
    chat: Any = FIRST_CHAT + n if telegram else f"62813{n:07d}"
    think: float = ctx["think"]
    await asyncio.sleep(rng.uniform(0, think))
    previous = 0.0
    for turn in range(ctx["turns"]):
        choices = arrivals.options_since(chat, previous) if turn % 2 == 1 else []
        options = rng.choice(rng.choice(choices)) if choices else None
        text = rng.choice(GREETINGS if turn == 0 else QUESTIONS)
        if telegram:
            fake: BenchTelegram = ctx["telegram"]
            update = (fake.press(chat, options[1], message_id=options[0]) if options
                      else fake.text(chat, text))
            fake._queue.clear()  # posted here, not fetched by getUpdates
            url, raw = ctx["telegram_url"], json.dumps(update).encode()
            headers = {"Content-Type": "application/json",
                       "X-Telegram-Bot-Api-Secret-Token": TG_SECRET}
        else:
            wa: BenchWhatsApp = ctx["whatsapp"]
            if options and options[1] == "list":
                envelope = wa.list_reply(chat, options[2], options[3], context_wamid=options[0])
            elif options:
                envelope = wa.button_reply(chat, options[2], options[3],
                                           context_wamid=options[0])
            else:
                envelope = wa.text_message(chat, text)
            url, raw = ctx["whatsapp_url"], meta_json(envelope)
            headers = {"Content-Type": "application/json",
                       "X-Hub-Signature-256": sign(raw, WA_SECRET)}
        tally.buttons += options is not None
        start = time.monotonic()
        reply = arrivals.expect(chat, start)
        async with session.post(url, data=raw, headers=headers) as r:
            await r.read()
            status = r.status
        tally.posts["telegram" if telegram else "whatsapp"] += 1
        if status != 200:
            tally.non_200 += 1
            reply.cancel()
        else:
            try:
                at = await asyncio.wait_for(reply, ctx["reply_timeout"])
            except TimeoutError:
                tally.missing += 1
                return  # the citizen gives up; a late reply must not answer a later turn
            tally.latencies.append((at - start) * 1000)
            tally.by_channel["telegram" if telegram else "whatsapp"].append((at - start) * 1000)
            tally.arrived_at.append(at)
        previous = start
        await asyncio.sleep(think * rng.uniform(0.5, 1.5))


async def wait_ready(session: aiohttp.ClientSession, port: int, proc: subprocess.Popen[bytes],
                     timeout: float = 120) -> None:
    """/readyz: database, content, and the senders running (the leader was elected)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the Lontar process exited"
        try:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as r:
                if r.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("Lontar did not become ready")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(args: argparse.Namespace, database_url: str, data_dir: Path) -> str:
    arrivals = Arrivals()
    tally = Tally()
    async with BenchTelegram(arrivals) as tg, BenchWhatsApp(arrivals) as wa:
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        config = {
            "data_dir": str(data_dir), "database_url_setting": database_url,
            "host": "127.0.0.1", "port": port, "quiet_start": "00:00", "quiet_end": "00:00",
            "telegram_bot_token": "123456:BENCH-load", "telegram_api_base_url": tg.base_url,
            "telegram_webhook_url": f"{base}/webhooks/telegram",
            "telegram_webhook_secret": TG_SECRET,
            "whatsapp_access_token": WA_TOKEN, "whatsapp_phone_number_id": WA_PHONE_ID,
            "whatsapp_app_secret": WA_SECRET, "whatsapp_verify_token": "bench-verify",
            "whatsapp_api_base_url": wa.base_url,
        }
        proc = subprocess.Popen([sys.executable, __file__, "--serve-lontar", json.dumps(config)],
                                cwd=ROOT, stdout=subprocess.DEVNULL)
        try:
            # a webhook sender opens a few dozen connections, not one per citizen
            connector = aiohttp.TCPConnector(limit=100)
            async with aiohttp.ClientSession(connector=connector) as session:
                await wait_ready(session, port, proc)
                # The fakes stamp arrivals in this process: a collector pause here would
                # stamp late and be blamed on Lontar (bench/broadcast.py measured 70-136 ms
                # pauses), so the collector is off while citizens talk (a few MB grow).
                gc.collect()
                gc.freeze()
                gc.disable()
                ctx = {"session": session, "arrivals": arrivals, "telegram": tg,
                       "whatsapp": wa, "turns": args.turns, "think": args.think,
                       "reply_timeout": args.reply_timeout,
                       "telegram_url": f"{base}/webhooks/telegram",
                       "whatsapp_url": f"{base}/webhooks/whatsapp"}
                rng = random.Random(8)
                cpu_before = cpu_seconds(proc.pid)
                began = time.monotonic()
                await asyncio.gather(*[citizen(n, ctx, tally, random.Random(rng.random()))
                                       for n in range(args.citizens)])
                ended = max(tally.arrived_at, default=began)
                cpu = cpu_seconds(proc.pid) - cpu_before
                gc.enable()
                rss = peak_rss_mb(proc.pid)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        fake_errors = len(tg.errors) + len(wa.errors)
    lat = sorted(tally.latencies)
    times = sorted(tally.arrived_at)
    lo, hi = len(times) // 10, (len(times) * 9) // 10
    middle = (hi - lo) / (times[hi] - times[lo]) if hi > lo and times[hi] > times[lo] else 0.0
    qs = statistics.quantiles(lat, n=100) if len(lat) >= 2 else [float("nan")] * 99
    p99 = {ch: (statistics.quantiles(v, n=100)[98] if len(v) >= 2 else float("nan"))
           for ch, v in tally.by_channel.items()}
    errors = tally.non_200 + tally.missing
    # CPU the Lontar process used per turn answered: what one core can do, whatever else
    # the machine is running (turns_per_s and latency depend on that; this does not)
    cpu_per_turn = cpu * 1000 / max(len(lat), 1)
    per_core = 1000 / cpu_per_turn if cpu_per_turn else float("nan")
    posts = sum(tally.posts.values())
    database = "postgresql" if database_url else "sqlite"
    return (f"load: database={database} citizens={args.citizens} turns={posts} "
            f"(telegram {tally.posts['telegram']} + whatsapp {tally.posts['whatsapp']}; "
            f"{tally.buttons} buttons) "
            f"offered_max_per_s={args.citizens / args.think:.0f} "
            f"turns_per_s={middle:.0f} (target >= {TARGET_TPS}) "
            f"overall_per_s={len(times) / max(ended - began, 1e-9):.0f} "
            f"p50_ms={qs[49]:.1f} p99_ms={qs[98]:.1f} (target < {TARGET_P99_MS:.0f}; "
            f"telegram {p99['telegram']:.0f}, whatsapp {p99['whatsapp']:.0f}) "
            f"errors={errors} (non_200={tally.non_200} missing={tally.missing}; target 0) "
            f"fake_errors={fake_errors} peak_rss_mb={rss:.0f} "
            f"cpu_ms_per_turn={cpu_per_turn:.2f} (one core: {per_core:.0f} turns/s) "
            f"cpus={os.cpu_count()}")


def postgres_schema(url: str) -> tuple[Any, str, str]:
    """A schema of this run's own, handed to Lontar through search_path (as tests do)."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    schema = f"bench_load_{uuid.uuid4().hex[:10]}"
    with engine.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    scoped = make_url(url).update_query_dict(
        {"options": f"-csearch_path={schema}"}).render_as_string(hide_password=False)
    return engine, schema, scoped


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--citizens", type=int, default=2000)
    parser.add_argument("--turns", type=int, default=4, help="turns per citizen")
    parser.add_argument("--think", type=float, default=3.6,
                        help="mean seconds a citizen reads and types between turns")
    parser.add_argument("--reply-timeout", type=float, default=30.0)
    parser.add_argument("--database-url", default="",
                        help="PostgreSQL to use (a schema of its own); default SQLite")
    parser.add_argument("--serve-lontar", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_lontar is not None:
        serve_lontar(json.loads(args.serve_lontar))
        return
    with tempfile.TemporaryDirectory() as tmp:
        if not args.database_url:
            print(asyncio.run(run(args, "", Path(tmp))))
            return
        from sqlalchemy import text

        engine, schema, scoped = postgres_schema(args.database_url)
        try:
            print(asyncio.run(run(args, scoped, Path(tmp))))
        finally:
            with engine.connect() as conn:
                conn.execute(text("SET lock_timeout = '10s'"))
                conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            engine.dispose()


if __name__ == "__main__":
    main()
