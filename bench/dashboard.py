"""Admin dashboard latency with a busy office's history in SQLite.

A real Lontar (SQLite file, real migrations) is seeded with Core executemany in a few
transactions: 100,000 tickets over two years (kinds, categories with their dimension,
offices, services, states -- most closed, some open and overdue --, deadlines, answer and
closing times, assignees among 10 staff) and 1,000,000 history entries (public answers,
internal notes, citizens' additions, changes of state and assignee; ~10 per ticket, written
in time order as they would be), plus contacts, followers and survey answers.
The real app is then served on loopback and driven by an aiohttp client that logged in
through the login form, one request at a time, each timed to the full body:
1. inbox: a rotation of filters (none, state, category+office, overdue, assignee, one
   month, a word searched, a ticket number searched, page 50, sorted by deadline);
2. ticket page: random tickets (each with its ~10 history entries);
3. report page: the default period (12 weeks) and one year for one office.
Prints one line (target p99 < 200 ms for every page); seeding time and per-filter figures
go to stderr. `--explain` also prints the queries of one request per filter, each with the
time to its first row (a count's whole work) and SQLite's EXPLAIN QUERY PLAN.
Run: python bench/dashboard.py [--tickets 100000] [--updates 1000000] [--requests 200]
"""

from __future__ import annotations

import argparse
import asyncio
import heapq
import math
import random
import re
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import aiohttp
from aiohttp import web
from sqlalchemy import Connection, Engine, bindparam, event, func, insert, select, update

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import Lontar, build, web_app  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.models import (  # noqa: E402
    complaint_t,
    contact_t,
    follower_t,
    survey_t,
    update_t,
)
from bot.services.complaints import ALPHABET, add_working_days, text_hash  # noqa: E402
from bot.services.staff import create_user  # noqa: E402

LIMIT_MS = 200.0
DAYS = 730  # two years of tickets
STAFF = 10
PASSWORD = "bench-kata-sandi"
BATCH = 20_000
COMMIT_EVERY = 250_000
CSRF = re.compile(r'name="csrf" value="([^"]+)"')

KIND_WEIGHTS = {"pengaduan": 80, "saran": 15, "apresiasi": 5}
CATEGORY_WEIGHTS = {"antrean": 25, "prosedur": 18, "sistem": 15, "data-salah": 12,
                    "sikap-petugas": 9, "sarana": 8, "biaya-pungli": 4, "lainnya": 9}
SERVICE_WEIGHTS = {"ktp-baru": 14, "ktp-hilang-rusak": 10, "ktp-perubahan": 6, "kk-baru": 9,
                   "kk-perubahan": 10, "kk-hilang-rusak": 4, "akta-kelahiran": 14, "kia": 4,
                   "akta-kematian": 4, "akta-perkawinan": 3, "akta-perceraian": 1, "pindah": 6,
                   "ikd": 5, "umum": 10}
OFFICE_WEIGHTS = {"dinas": 40}  # each kecamatan office: 10
HOUR_WEIGHTS = [1, 1, 1, 1, 1, 2, 4, 8, 12, 14, 14, 12, 10, 10, 10, 9, 8, 7, 7, 7, 6, 5, 3, 2]
SEARCH_WORDS = ["calo", "blanko", "jaringan", "kasar", "loket"]

_STORY = (
    "saya sudah datang ke kantor dukcapil untuk mengurus dokumen tetapi petugas bilang harus "
    "kembali besok karena belum bisa diproses hari ini mohon bantuan bapak ibu anak kami istri "
    "suami orang tua keluarga nomor nik nama alamat kelurahan kecamatan pagi siang sore jam "
    "minggu bulan lalu kemarin sekarang masih belum ada kabar tolong segera diperbaiki kami "
    "kecewa sangat pelayanan loket berkas fotokopi tanda tangan rekam data cetak ambil online "
    "aplikasi pendaftaran nomor panggil jauh rumah ongkos kerja izin libur tutup buka "
    "informasi jelas tidak ada pengumuman whatsapp telepon dihubungi balasan surat keterangan "
    "rt rw lurah camat dan yang sudah sampai dari di dengan itu ini juga sudah lagi")
_REPLY = (
    "terima kasih atas laporan bapak ibu kami sudah menerima dan meneruskan ke bidang terkait "
    "mohon maaf atas ketidaknyamanan dokumen sudah selesai dicetak dan dapat diambil di loket "
    "dengan membawa tanda terima silakan datang kembali pada hari kerja jam layanan petugas "
    "sudah kami tegur data sudah diperbaiki sesuai akta kelahiran sistem sudah normal kembali "
    "pelayanan gratis tidak dipungut biaya apa pun laporan akan kami tindak lanjuti")
_NOTE = (
    "sudah cek berkas di loket sudah telepon pelapor tunggu konfirmasi bidang pias data "
    "operator siak kepala seksi minta dicek ulang koordinasi dengan kecamatan jaringan "
    "pusat gangguan printer rusak blanko habis sudah diteruskan ke kabid cek rekaman cctv "
    "pelapor tidak bisa dihubungi besok follow up")
_NAMES = ("Maria Kana Yohanes Benu Dominggus Tefa Yuliana Nope Agustinus Lake Fransiska Bria "
          "Yosef Manu Elisabeth Seran Kornelis Tallo Margaretha Sabu Petrus Neno Theresia "
          "Liu Simon Bessie Agnes Taneo")
STORY, REPLY, NOTE, NAMES = (t.split() for t in (_STORY, _REPLY, _NOTE, _NAMES))


def say(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


def words(rng: random.Random, vocab: list[str], lo: int, hi: int, first: str = "") -> str:
    """Text of lo..hi characters from `vocab` (`first` among its first words)."""
    target = int(min(hi, max(lo, rng.lognormvariate(math.log((lo + hi) / 2.5), 0.5))))
    chosen = rng.choices(vocab, k=target // 4 + 4)
    if first:
        chosen.insert(rng.randrange(4), first)
    out = " ".join(chosen)
    if len(out) > target:  # cut at a word, but not below `lo`
        out = out[:target]
        if " " in out[lo:]:
            out = out.rsplit(" ", 1)[0]
    return out[0].upper() + out[1:]


@dataclass(slots=True)
class Plan:
    """One ticket's life, decided before anything is written."""

    created: datetime
    state: str
    verified: datetime | None
    progressed: datetime | None
    answered: datetime | None
    closed: datetime | None
    assignee: int | None


def plan(rng: random.Random, created: datetime, now: datetime, staff: list[int],
         staff_w: list[float]) -> Plan:
    age_h = (now - created).total_seconds() / 3600
    verify_h = max(0.2, rng.lognormvariate(math.log(18), 0.9))
    close_d = max(verify_h / 24 + 0.05, rng.lognormvariate(math.log(5), 0.8))
    stuck = rng.random() < 0.02  # forgotten: open and overdue however old
    closed = None if stuck or close_d * 24 >= age_h else created + timedelta(days=close_d)
    if closed is not None:
        state = "selesai" if rng.random() < 0.9 else "ditolak"
    elif verify_h >= age_h:
        return Plan(created, "baru", None, None, None, None, None)
    else:
        state = "diproses" if rng.random() < 0.6 else "diverifikasi"
    verified = created + timedelta(hours=verify_h)
    end = closed or now
    answered = verified + (end - verified) * rng.uniform(0.05, 0.5)
    progressed = (verified + (end - verified) * rng.uniform(0.1, 0.6)
                  if state in ("diproses", "selesai") or rng.random() < 0.5 else None)
    return Plan(created, state, verified, progressed, answered, closed,
                rng.choices(staff, staff_w)[0])


def created_times(rng: random.Random, n: int, now: datetime, tz: ZoneInfo) -> list[datetime]:
    """Evenly over the two years, busier in office hours and on working days."""
    first = (now - timedelta(days=DAYS)).astimezone(tz).date()
    hours = rng.choices(range(24), HOUR_WEIGHTS, k=n)
    out = []
    for hour in hours:
        day = first + timedelta(days=rng.randrange(DAYS + 1))
        while day.weekday() >= 5 and rng.random() < 0.5:  # weekends: half as many
            day = first + timedelta(days=rng.randrange(DAYS + 1))
        at = datetime.combine(day, dtime(hour, rng.randrange(60), rng.randrange(60),
                                         rng.randrange(10**6)), tz).astimezone(UTC)
        out.append(at if at < now else now - timedelta(seconds=rng.uniform(1, 3 * 3600)))
    out.sort()
    return out


@dataclass
class Seeded:
    staff: list[int]
    numbers: list[str]
    months: list[date]
    seconds: float


def _flush(conn: Connection, table: Any, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(insert(table), rows)
        rows.clear()


def seed(lontar: Lontar, tickets: int, updates: int, surveys: int,
         rng: random.Random) -> Seeded:
    start = time.perf_counter()
    content = lontar.content
    cc = content.complaints
    assert cc is not None
    tz = ZoneInfo(lontar.settings.timezone)
    holidays = frozenset(cc.holidays)
    now = datetime.now(UTC)
    engine = lontar.db.engine

    with engine.begin() as conn:  # argon2: a few accounts only
        create_user(conn, "bench-admin", PASSWORD, "admin", "Admin Bench")
        staff = [create_user(conn, f"petugas{i:02d}", PASSWORD, "staff",
                             f"{NAMES[2 * i]} {NAMES[2 * i + 1]}") for i in range(STAFF)]
        create_user(conn, "pimpinan", PASSWORD, "viewer", "Kepala Dinas")
    staff_w = [rng.uniform(0.5, 2.0) for _ in staff]  # some carry more tickets

    kinds = {k.id: k.prefix for k in cc.kind}
    cats = {c.id: c for c in cc.category}
    offices = [o.id for o in content.offices]
    services = [*content.services, "umum"]
    kind_ids = list(kinds)
    kind_w = [KIND_WEIGHTS.get(k, 5) for k in kind_ids]
    cat_ids = list(cats)
    cat_w = [CATEGORY_WEIGHTS.get(c, 5) for c in cat_ids]
    office_w = [OFFICE_WEIGHTS.get(o, 10) for o in offices]
    service_w = [SERVICE_WEIGHTS.get(s, 3) for s in services]

    n_contacts = max(1, tickets * 7 // 10)
    channels = rng.choices(["whatsapp", "telegram", "web"], [60, 25, 15], k=n_contacts)
    contact_names = [f"{rng.choice(NAMES)} {rng.choice(NAMES)}" for _ in range(n_contacts)]
    with engine.begin() as conn:
        rows: list[dict[str, Any]] = []
        for i, channel in enumerate(channels):
            ext = {"whatsapp": f"62812{i:08d}", "telegram": str(500_000_000 + i)}.get(
                channel, f"web{i:021d}")
            rows.append({"channel": channel, "external_id": ext,
                         "display_name": contact_names[i], "language": "id",
                         "opted_in": True, "created_at": now - timedelta(days=DAYS + 1)})
            if len(rows) >= BATCH:
                _flush(conn, contact_t, rows)
        _flush(conn, contact_t, rows)

    times = created_times(rng, tickets, now, tz)
    plans = [plan(rng, t, now, staff, staff_w) for t in times]
    numbers: set[str] = set()
    sample_numbers: list[str] = []
    followers: list[dict[str, Any]] = []
    with engine.begin() as conn:
        # a fresh table: the tickets get ids 1..N in the order they are written
        assert conn.execute(select(func.count()).select_from(complaint_t)).scalar_one() == 0
        rows = []
        for i, p in enumerate(plans):
            kind = rng.choices(kind_ids, kind_w)[0]
            cat = cats[rng.choices(cat_ids, cat_w)[0]]
            local_day = p.created.astimezone(tz).date()
            while True:
                number = (f"{kinds[kind]}-{local_day.year}-"
                          f"{''.join(rng.choices(ALPHABET, k=6))}")
                if number not in numbers:
                    numbers.add(number)
                    break
            if i % max(1, tickets // 200) == 0:
                sample_numbers.append(number)
            text = words(rng, STORY, 50, 400, rng.choice(cat.keywords) if cat.keywords else "")
            identity = rng.choices(["named", "confidential", "anonymous"], [70, 20, 10])[0]
            contact = rng.randint(1, n_contacts)
            due = (add_working_days(p.verified.astimezone(tz).date(),
                                    cc.follow_up_working_days, holidays) if p.verified
                   else add_working_days(local_day, cc.verify_working_days, holidays))
            rows.append({
                "number": number, "kind": kind,
                "service": rng.choices(services, service_w)[0],
                "office": rng.choices(offices, office_w)[0], "category": cat.id,
                "dimension": cat.dimension, "urgent": cat.urgent, "text": text,
                "text_hash": text_hash(text),
                "photos": [f"attachments/{i}-1.jpg"] if rng.random() < 0.1 else [],
                "happened": rng.choices(["today", "week", "earlier"], [5, 3, 2])[0],
                "identity": identity,
                "contact_id": None if identity == "anonymous" else contact,
                "display_name": contact_names[contact - 1] if identity == "named" else None,
                "state": p.state, "due_on": due, "assignee_id": p.assignee,
                "rating": (rng.choices(range(1, 6), [5, 5, 10, 30, 50])[0]
                           if p.state == "selesai" and rng.random() < 0.5 else None),
                "first_answer_at": None, "closed_at": p.closed,  # first answer: see below
                "created_at": p.created, "updated_at": p.created})
            followers.append({"complaint_id": i + 1, "contact_id": contact,
                              "created_at": p.created})
            if len(rows) >= BATCH:
                _flush(conn, complaint_t, rows)
        _flush(conn, complaint_t, rows)
        for at in range(0, len(followers), BATCH):
            conn.execute(insert(follower_t), followers[at:at + BATCH])
        del followers

    # ~10 entries per ticket: fewer on tickets nobody has verified yet
    weight = [(0.3 if p.state == "baru" else 1.0) * rng.uniform(0.5, 1.5) for p in plans]
    scale = updates / sum(weight)
    counts = [int(w * scale) for w in weight]
    for _ in range(updates - sum(counts)):
        counts[rng.randrange(tickets)] += 1
    answers = [words(rng, REPLY, 60, 300) for _ in range(3000)]
    notes = [words(rng, NOTE, 20, 150) for _ in range(2000)]
    infos = [words(rng, STORY, 30, 200) for _ in range(2000)]
    touched: list[dict[str, Any]] = []
    heap: list[tuple[datetime, int, dict[str, Any]]] = []
    seq = 0
    written = 0
    batch: list[dict[str, Any]] = []
    with engine.connect() as conn:
        def emit(until: datetime | None) -> None:
            nonlocal written
            while heap and (until is None or heap[0][0] < until):
                batch.append(heapq.heappop(heap)[2])
                if len(batch) >= BATCH:
                    written += len(batch)
                    _flush(conn, update_t, batch)
                    if written % COMMIT_EVERY < BATCH:
                        conn.commit()

        for i, (p, k) in enumerate(zip(plans, counts, strict=True)):
            emit(p.created)  # every entry before this ticket was filed: in time order
            events = _history(rng, p, k, now, staff, answers, notes, infos)
            first_answer = None
            for at, row in events:
                row["complaint_id"] = i + 1
                row["created_at"] = at
                if row["author"] == "staff" and row["text"] and row["public"]:
                    first_answer = at if first_answer is None else min(first_answer, at)
                seq += 1
                heapq.heappush(heap, (at, seq, row))
            if events:
                touched.append({"cid": i + 1, "fa": first_answer,
                                "ua": max(at for at, _ in events)})
        emit(None)
        written += len(batch)
        _flush(conn, update_t, batch)
        if touched:
            conn.execute(update(complaint_t).where(complaint_t.c.id == bindparam("cid"))
                         .values(first_answer_at=bindparam("fa"), updated_at=bindparam("ua")),
                         touched)
        conn.commit()
    assert written == updates, (written, updates)

    with engine.begin() as conn:
        first = (now - timedelta(days=DAYS)).date()
        rows = []
        for _ in range(surveys):
            good = rng.random() < 0.8
            rows.append({"submitted_on": first + timedelta(days=rng.randrange(DAYS + 1)),
                         "office": rng.choice(offices) if rng.random() < 0.9 else None,
                         **{f"u{n}": rng.choices([1, 2, 3, 4], [1, 2, 6, 5] if good
                                                 else [3, 4, 3, 1])[0] for n in range(1, 10)},
                         "profile": {}, "suggestion": None})
            if len(rows) >= BATCH:
                _flush(conn, survey_t, rows)
        _flush(conn, survey_t, rows)

    today = now.astimezone(tz).date()
    months = sorted({t.astimezone(tz).date().replace(day=1) for t in times})
    del plans, times
    return Seeded(staff, sample_numbers or sorted(numbers)[:1], months or [today],
                  time.perf_counter() - start)


def _history(rng: random.Random, p: Plan, k: int, now: datetime, staff: list[int],
             answers: list[str], notes: list[str], infos: list[str]
             ) -> list[tuple[datetime, dict[str, Any]]]:
    """A ticket's `k` history entries, oldest first, as the dashboard would have written."""
    who = p.assignee
    required: list[tuple[datetime, str]] = []
    if p.closed:
        required.append((p.closed, p.state))
    if p.verified:
        required.append((p.verified, "diverifikasi"))
    if p.answered:
        required.append((p.answered, "answer"))
    if p.verified:
        required.append((min(now, p.verified + timedelta(minutes=rng.uniform(1, 30))),
                         "assign"))
    if p.progressed:
        required.append((p.progressed, "diproses"))
    events = required[:k]
    end = p.closed or now
    span = (end - p.created).total_seconds()
    for _ in range(k - len(events)):
        x = rng.random()
        if p.answered and x < 0.3:
            events.append((p.answered + (end - p.answered) * rng.random(), "answer"))
        else:
            at = p.created + timedelta(seconds=span * rng.random())
            events.append((at, "info" if x < 0.55 else "note"))
    events.sort(key=lambda e: e[0])
    out = []
    state = "baru"
    for at, what in events:
        staff_id = who if who and rng.random() < 0.8 else rng.choice(staff)
        row: dict[str, Any] = {"author": "staff", "staff_id": staff_id, "public": False,
                               "text": None, "state_after": None, "changes": {}}
        if what == "answer":
            row.update(public=True, text=rng.choice(answers))
        elif what == "note":
            row.update(text=rng.choice(notes))
        elif what == "info":
            row.update(author="citizen", staff_id=None, public=True, text=rng.choice(infos))
        elif what == "assign":
            row.update(staff_id=rng.choice(staff), changes={"assignee": [None, who]})
        else:  # a change of state
            row.update(public=True, state_after=what, changes={"state": [state, what]})
            state = what
        out.append((at, row))
    return out


# -- measuring --------------------------------------------------------------------------------

Scenario = tuple[str, Callable[[random.Random], str]]


def scenarios(lontar: Lontar, seeded: Seeded, tickets: int) -> dict[str, list[Scenario]]:
    cc = lontar.content.complaints
    assert cc is not None
    cats = [c.id for c in cc.category]
    offices = [o.id for o in lontar.content.offices]
    today = datetime.now(UTC).astimezone(ZoneInfo(lontar.settings.timezone)).date()

    def inbox(params: Callable[[random.Random], dict[str, str]]
              ) -> Callable[[random.Random], str]:
        def url(rng: random.Random) -> str:
            query = urlencode(params(rng))
            return f"/admin/tickets?{query}" if query else "/admin/tickets"

        return url

    def month(rng: random.Random) -> dict[str, str]:
        first = rng.choice(seeded.months)
        last = (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)
        return {"start": first.isoformat(), "end": last.isoformat()}

    return {
        "inbox": [
            ("all", inbox(lambda rng: {})),
            ("state", inbox(lambda rng: {"state": "baru"})),
            ("category_office", inbox(lambda rng: {"category": rng.choice(cats),
                                                   "office": rng.choice(offices)})),
            ("overdue", inbox(lambda rng: {"overdue": "1"})),
            ("assignee", inbox(lambda rng: {"assignee": str(rng.choice(seeded.staff))})),
            ("month", inbox(month)),
            ("q_word", inbox(lambda rng: {"q": rng.choice(SEARCH_WORDS)})),
            ("q_number", inbox(lambda rng: {"q": rng.choice(seeded.numbers)})),
            ("page50", inbox(lambda rng: {"page": "50"})),
            ("tenggat", inbox(lambda rng: {"sort": "tenggat"})),
        ],
        "ticket": [("ticket", lambda rng: f"/admin/tickets/{rng.randint(1, tickets)}")],
        "report": [
            ("12weeks", lambda rng: "/admin/reports"),
            ("year_office", lambda rng: "/admin/reports?" + urlencode({
                "start": (today - timedelta(days=364)).isoformat(), "end": today.isoformat(),
                "office": rng.choice(offices)})),
        ],
    }


async def timed(session: aiohttp.ClientSession, url: str) -> float:
    start = time.perf_counter()
    async with session.get(url, allow_redirects=False) as r:
        await r.read()
        if r.status != 200:
            raise SystemExit(f"{url}: HTTP {r.status}")
    return (time.perf_counter() - start) * 1000


async def login(session: aiohttp.ClientSession, base: str) -> None:
    async with session.get(base + "/admin/login") as r:
        found = CSRF.search(await r.text())
    assert found is not None, "no csrf on the login form"
    async with session.post(base + "/admin/login", allow_redirects=False, data={
            "csrf": found.group(1), "username": "bench-admin", "password": PASSWORD}) as r:
        if r.status != 303:
            raise SystemExit(f"login refused: HTTP {r.status}")


def p50_p99(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return values[0], values[0]
    qs = statistics.quantiles(values, n=100, method="inclusive")  # never above the max
    return qs[49], qs[98]


class Recorder:
    """The SQL of one request, with the time each statement took (for --explain)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.on = False
        self.seen: list[tuple[str, Any, float]] = []
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, conn: Any, _cur: Any, _stmt: str, _params: Any, _ctx: Any,
                _many: bool) -> None:
        conn.info["bench_t"] = time.perf_counter()

    def _after(self, conn: Any, _cur: Any, stmt: str, params: Any, _ctx: Any,
               _many: bool) -> None:
        if self.on:
            self.seen.append((stmt, params, (time.perf_counter() - conn.info["bench_t"]) * 1000))

    def explain(self, name: str, url: str) -> None:
        raw = self.engine.raw_connection()
        try:
            say(f"--- {name}: {url}")
            for stmt, params, ms in self.seen:
                if not stmt.lstrip().upper().startswith("SELECT") or "staff_session" in stmt:
                    continue
                say(f"  {ms:7.1f} ms to first row  {' '.join(stmt.split())}  {params}")
                for row in raw.cursor().execute("EXPLAIN QUERY PLAN " + stmt, params):
                    say(f"             plan: {row[3]}")
        finally:
            raw.close()
            self.seen.clear()


async def measure(lontar: Lontar, seeded: Seeded, tickets: int, requests: int,
                  explain: bool, rng: random.Random) -> dict[str, dict[str, list[float]]]:
    runner = web.AppRunner(web_app(lontar), access_log=None)  # as `lontar` serves
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    base = f"http://{host}:{port}"
    recorder = Recorder(lontar.db.engine) if explain else None
    results: dict[str, dict[str, list[float]]] = {}
    try:
        jar = aiohttp.CookieJar(unsafe=True)  # cookies from 127.0.0.1
        async with aiohttp.ClientSession(cookie_jar=jar) as session:
            await login(session, base)
            for group, items in scenarios(lontar, seeded, tickets).items():
                for name, make in items:  # warm-up: templates, statement caches
                    url = make(rng)
                    if recorder:
                        recorder.on = True
                    await timed(session, base + url)
                    if recorder:
                        recorder.on = False
                        recorder.explain(name, url)
                lat: dict[str, list[float]] = {name: [] for name, _ in items}
                # the inbox: `requests` per filter, interleaved; others `requests` in all
                rounds = requests if group == "inbox" else -(-requests // len(items))
                for _ in range(rounds):
                    for name, make in items:
                        lat[name].append(await timed(session, base + make(rng)))
                results[group] = lat
    finally:
        await runner.cleanup()
    return results


async def run(tickets: int, updates: int, requests: int, surveys: int, explain: bool) -> None:
    started = time.perf_counter()
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as tmp:
        lontar = build(load_settings(data_dir=Path(tmp)))
        try:
            seeded = seed(lontar, tickets, updates, surveys, rng)
            size = sum(f.stat().st_size for f in Path(tmp).glob("lontar.db*")) / 2**20
            rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            say(f"seeded: tickets={tickets} updates={updates} surveys={surveys} "
                f"in {seeded.seconds:.1f} s (database files {size:.0f} MB, "
                f"peak rss so far {rss_mb:.0f} MB)")
            measure_start = time.perf_counter()
            results = await measure(lontar, seeded, tickets, requests, explain, rng)
            say(f"measured in {time.perf_counter() - measure_start:.1f} s")
        finally:
            lontar.close()
    line = [f"tickets={tickets}", f"updates={updates}"]
    worst_p99 = 0.0
    for group, lat in results.items():
        for name, values in lat.items():
            p50, p99 = p50_p99(values)
            say(f"  {group:6} {name:16} n={len(values):4} p50_ms={p50:7.1f} p99_ms={p99:7.1f} "
                f"max_ms={max(values):7.1f}")
        p50, p99 = p50_p99([v for values in lat.values() for v in values])
        worst_p99 = max(worst_p99, p99)
        line += [f"{group}_p50_ms={p50:.1f}", f"{group}_p99_ms={p99:.1f}"]
        if len(lat) > 1:
            name, values = max(lat.items(), key=lambda kv: p50_p99(kv[1])[1])
            line.append(f"{group}_worst={name}:{p50_p99(values)[1]:.1f}")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    say(f"total runtime {time.perf_counter() - started:.1f} s")
    print("dashboard: " + " ".join(line) + f" p99/limit={worst_p99 / LIMIT_MS:.2f} "
          f"peak_rss_mb={rss_mb:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tickets", type=int, default=100_000)
    parser.add_argument("--updates", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200,
                        help="per inbox filter, per ticket page, per report page")
    parser.add_argument("--surveys", type=int, default=20_000)
    parser.add_argument("--explain", action="store_true",
                        help="print each query of one request per scenario with its plan")
    args = parser.parse_args()
    asyncio.run(run(args.tickets, args.updates, args.requests, args.surveys, args.explain))


if __name__ == "__main__":
    main()
