"""Signed WhatsApp webhook posts accepted per second by one Lontar process.

A real `lontar` process (SQLite, WhatsApp configured against a fake Graph API in this process)
receives POSTs of signed, distinct messages from many users from a pool of concurrent
clients. Prints one line: accepted posts/s (target >= 1,000), p50/p99 time to the 200
(target p99 < 50 ms), and lost messages (posts answered 200 that are not stored; must be 0).
The turns run after the 200s from a queue in the same process; the line also says how long
that backlog took to drain after the burst and the overall turns/s, so the acceptance rate
isn't mistaken for the rate at which citizens get answers.
Run: python bench/whatsapp_webhook.py [--posts 5000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.whatsapp_api import FakeWhatsApp, meta_json, sign  # noqa: E402
from tests.procs import env_for, free_port, lontar_cmd  # noqa: E402

SECRET = "bench-secret"
TEXTS = ["halo", "syarat kk baru", "ktp sy ilang", "1", "akte lahir", "jam buka", "menu"]


async def run(posts: int, concurrency: int) -> None:
    async with FakeWhatsApp(app_secret=SECRET) as fake:
        with tempfile.TemporaryDirectory() as tmp:
            port = free_port()
            env = env_for(Path(tmp), LONTAR_PORT=str(port), WHATSAPP_ACCESS_TOKEN="TEST-TOKEN",
                          WHATSAPP_PHONE_NUMBER_ID="1234567890", WHATSAPP_APP_SECRET=SECRET,
                          WHATSAPP_VERIFY_TOKEN="v", WHATSAPP_API_BASE_URL=fake.base_url)
            proc = await asyncio.create_subprocess_exec(*lontar_cmd(), cwd=ROOT, env=env,
                                                        stdout=asyncio.subprocess.DEVNULL)
            url = f"http://127.0.0.1:{port}/webhooks/whatsapp"
            bodies = []
            for i in range(posts):
                user = f"62812{i % 2000:07d}"
                raw = meta_json(fake.text_message(user, TEXTS[i % len(TEXTS)]))
                bodies.append((raw, sign(raw, SECRET)))
            async with aiohttp.ClientSession() as session:
                for _ in range(200):
                    try:
                        async with session.get(f"http://127.0.0.1:{port}/healthz") as r:
                            if r.status == 200:
                                break
                    except aiohttp.ClientError:
                        await asyncio.sleep(0.1)
                lat: list[float] = []
                ok = 0
                queue = iter(bodies)

                async def client() -> None:
                    nonlocal ok
                    for raw, sig in queue:
                        t = time.perf_counter()
                        async with session.post(url, data=raw, headers={
                                "Content-Type": "application/json",
                                "X-Hub-Signature-256": sig}) as r:
                            await r.read()
                            ok += r.status == 200
                        lat.append((time.perf_counter() - t) * 1000)

                start = time.perf_counter()
                await asyncio.gather(*[client() for _ in range(concurrency)])
                elapsed = time.perf_counter() - start
            db = sqlite3.connect(Path(tmp) / "lontar.db", timeout=30)
            drain_start = time.perf_counter()
            processed = 0
            while time.perf_counter() - drain_start < 120:  # the turns queued behind the 200s
                processed = db.execute("select count(*) from inbound_message "
                                       "where processed_at is not null").fetchone()[0]
                if processed >= ok:
                    break
                await asyncio.sleep(0.2)
            drain = time.perf_counter() - drain_start
            stored = db.execute("select count(*) from inbound_message").fetchone()[0]
            db.close()
            proc.send_signal(signal.SIGTERM)
            await proc.wait()
    qs = statistics.quantiles(lat, n=100)
    rate = posts / elapsed
    print(f"whatsapp_webhook: posts={posts} ok={ok} accepted_per_s={rate:.0f} "
          f"rate/target={rate / 1000:.2f} p50_ms={qs[49]:.1f} p99_ms={qs[98]:.1f} "
          f"p99/target={qs[98] / 50:.2f} stored={stored} lost={ok - stored} "
          f"turns_done={processed} turns_drained_after_s={drain:.1f} "
          f"turns_per_s_overall={processed / (elapsed + drain):.0f} cpus={os.cpu_count()}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--posts", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    asyncio.run(run(args.posts, args.concurrency))


if __name__ == "__main__":
    main()
