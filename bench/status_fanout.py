"""A status change fanned out to every follower: 50,000 applications, each followed by one
Telegram chat, all moved to "siap diambil" by one CSV import.

A real Lontar (SQLite file, real migrations) is seeded through the real import (the
applications "diproses"), then 50,000 Telegram contacts and their subscriptions are bulk
inserted. A second CSV moves every application to "siap-diambil" through
`bot.services.application_import.run`, the code `lontar applications import` runs: the
history rows and one notification per subscriber are written in the import's transaction.
Then the real Telegram channel and its OutboxWorker send against a fake Bot API that allows
30 msg/s (429 beyond) for a bounded window.

Prints one line: import_s (the second import), queued (must equal the applications) and
queue_s (import start to every notification row counted in the outbox), rows/s, then the
send window's rate / 30 (target >= 0.95), 429s after the first second (target 0),
duplicates (must be 0), peak RSS. Seeding times go to stderr.
Run: python bench/status_fanout.py [--applications 50000] [--send-seconds 20]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, insert, select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import Lontar, build, start_channels, stop_channels  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.models import (  # noqa: E402
    PRIORITY_NOTIFICATION,
    application_t,
    contact_t,
    outbox_t,
    subscription_t,
)
from bot.services import application_import  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402

LIMIT = 30
HEADER = "nomor_registrasi,layanan,kantor,status,alasan,nik,tanggal_lahir\n"
SERVICES = ("ktp-baru", "kk-baru", "kk-perubahan", "akta-kelahiran", "kia", "pindah")
BATCH = 10_000


def write_csv(path: Path, n: int, status: str, offices: list[str]) -> Path:
    with path.open("w", encoding="utf-8") as f:
        f.write(HEADER)
        for i in range(n):
            f.write(f"BENCH-2026-{i:06d},{SERVICES[i % len(SERVICES)]},"
                    f"{offices[i % len(offices)]},{status},,,"
                    f"{1950 + i % 50}-{1 + i % 12:02d}-{1 + i % 28:02d}\n")
    return path


def import_csv(app: Lontar, path: Path) -> application_import.Report:
    report = application_import.run(app.db.engine, path, app.content, app.settings.secret_key,
                                    date.today())
    if report.errors or report.applied is None:
        sys.exit(f"import failed: {report.errors[:5]}")
    return report


def seed_followers(app: Lontar, n: int) -> None:
    """One Telegram chat per application (a tenth in English), following it."""
    now = datetime.now(UTC)
    with app.db.engine.begin() as conn:
        for start in range(0, n, BATCH):
            conn.execute(insert(contact_t), [
                {"channel": "telegram", "external_id": str(100_000 + i),
                 "language": "en" if i % 10 == 0 else "id", "opted_in": False,
                 "created_at": now}
                for i in range(start, min(start + BATCH, n))])
        contacts = {int(r.external_id) - 100_000: r.id for r in conn.execute(
            select(contact_t.c.id, contact_t.c.external_id)
            .where(contact_t.c.channel == "telegram"))}
        apps = {int(r.reg_no.rsplit("-", 1)[1]): r.id for r in conn.execute(
            select(application_t.c.id, application_t.c.reg_no))}
        for start in range(0, n, BATCH):
            conn.execute(insert(subscription_t), [
                {"application_id": apps[i], "contact_id": contacts[i], "created_at": now}
                for i in range(start, min(start + BATCH, n))])


async def run(n: int, send_seconds: float) -> None:
    async with FakeTelegram(rate_limit_per_second=LIMIT) as fake:
        with tempfile.TemporaryDirectory() as tmp:
            app = build(load_settings(
                data_dir=Path(tmp), telegram_bot_token="1:BENCH",
                telegram_api_base_url=fake.base_url, telegram_poll_timeout=1))
            offices = [o.id for o in app.content.offices]
            t = time.monotonic()
            import_csv(app, write_csv(Path(tmp) / "diproses.csv", n, "diproses", offices))
            seed_s = time.monotonic() - t
            t = time.monotonic()
            seed_followers(app, n)
            print(f"seeded: {n} applications by import in {seed_s:.1f} s, "
                  f"{n} followers in {time.monotonic() - t:.1f} s", file=sys.stderr)

            path = write_csv(Path(tmp) / "siap.csv", n, "siap-diambil", offices)
            t = time.monotonic()
            report = import_csv(app, path)
            import_s = time.monotonic() - t
            with app.db.engine.connect() as conn:
                queued = int(conn.execute(
                    select(func.count()).select_from(outbox_t)
                    .where(outbox_t.c.channel == "telegram", outbox_t.c.status == "pending",
                           outbox_t.c.priority == PRIORITY_NOTIFICATION)).scalar_one())
            queue_s = time.monotonic() - t
            assert report.applied is not None
            print(f"import: {report.applied.updated} updated, {report.applied.notified} "
                  "notified", file=sys.stderr)

            start = time.monotonic()
            await start_channels(app)
            await asyncio.sleep(send_seconds)
            await stop_channels(app)
            app.close()
        sends = [r for r in fake.sent if r.method == "sendMessage"]
        first = sends[0].at if sends else start
        late_429 = sum(1 for at in fake.rejected_429 if at - first > 1.0)
        dupes = sum(c - 1 for c in Counter(r.chat_id for r in sends).values() if c > 1)
        rate = (len(sends) - 1) / (sends[-1].at - first) if len(sends) > 1 else 0.0
        startup_s = first - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"status_fanout: applications={n} import_s={import_s:.1f} queued={queued}/{n} "
          f"queue_s={queue_s:.1f} rows_per_s={queued / queue_s:.0f} "
          f"sent={len(sends)} in send_s={send_seconds:.0f} (first after {startup_s:.1f} s) "
          f"rate_per_s={rate:.2f} rate/limit={rate / LIMIT:.3f} "
          f"429_after_first_second={late_429} duplicates={dupes} peak_rss_mb={rss_mb:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--applications", type=int, default=50_000)
    parser.add_argument("--send-seconds", type=float, default=20.0)
    args = parser.parse_args()
    asyncio.run(run(args.applications, args.send_seconds))


if __name__ == "__main__":
    main()
