"""Turns per second through the whole inbox -> step -> apply -> outbox path on SQLite.

Every turn is what a web chat POST does: lock the conversation, store the update, step the
engine, write state and outbox rows, and collect the replies for the response (marking them
sent), in one transaction.
Two phases with 200 simulated citizens, each waiting for its reply before the next message:
1. capacity: no pause between messages, so the figure is the most turns/s the path does;
2. latency at the target load: citizens pause (exponential think time) so that together
   they offer 500 turns/s, as people reading replies do; p50/p99 are measured there.
(With 200 citizens and no pauses, latency is just 200 / capacity by Little's law.)
Prints one line; targets >= 500 turns/s and p99 < 50 ms.
Run: python bench/turns.py [--citizens 200] [--turns 15]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import resource
import statistics
import sys
import tempfile
import time
import uuid
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import build  # noqa: E402
from bot.channels.web import _rows_after  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.inbox import Inbound  # noqa: E402

TARGET_TPS = 500
TARGET_P99_MS = 50.0
SCRIPT = ["halo", "1", "2", "syarat kk baru", "kembali", "ktp sy ilang", "menu", "3",
          "jam buka", "akte lahir", "bahasa", "2", "menu", "1", "makasih"]


async def citizen(app, n: int, turns: int, lat: list[float], rng: random.Random,  # type: ignore[no-untyped-def]
                  think: float, phase: str, until: float = float("inf")) -> None:
    session = f"bench{phase}{n:05d}" + "x" * 11
    cursor = 0
    if think:  # people don't all press send in the same millisecond
        await asyncio.sleep(rng.uniform(0, think))
    for i in range(turns):
        if time.perf_counter() > until:
            return
        text = SCRIPT[i % len(SCRIPT)] if rng.random() < 0.9 else rng.choice(SCRIPT)
        t = time.perf_counter()
        received = await app.inbox.handle(
            Inbound("web", session, uuid.uuid4().hex, "text", {"text": text}),
            then=partial(_rows_after, after=cursor))
        rows = received.extra
        lat.append((time.perf_counter() - t) * 1000)
        cursor = max([cursor, *(r["id"] for r in rows)])
        if think:
            await asyncio.sleep(rng.expovariate(1 / think))


async def run(citizens: int, turns: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        app = build(load_settings(data_dir=Path(tmp)))
        rng = random.Random(3)
        cap_lat: list[float] = []
        start = time.perf_counter()
        await asyncio.gather(*[citizen(app, n, turns, cap_lat, rng, 0.0, "c")
                               for n in range(citizens)])
        tps = len(cap_lat) / (time.perf_counter() - start)
        lat: list[float] = []
        think = citizens / TARGET_TPS
        start = time.perf_counter()
        until = start + turns * think  # a fixed window, so slow starters don't stretch it
        await asyncio.gather(*[citizen(app, n, 10**6, lat, rng, think, "l", until)
                               for n in range(citizens)])
        offered_tps = len(lat) / (until - start)  # turns started inside the window
        app.close()
    qs = statistics.quantiles(lat, n=100)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"turns: citizens={citizens} turns={len(cap_lat) + len(lat)} "
          f"capacity_turns_per_s={tps:.0f} tps/target={tps / TARGET_TPS:.2f} "
          f"at_load_turns_per_s={offered_tps:.0f} p50_ms={qs[49]:.1f} p99_ms={qs[98]:.1f} "
          f"p99/target={qs[98] / TARGET_P99_MS:.2f} peak_rss_mb={rss_mb:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--citizens", type=int, default=200)
    parser.add_argument("--turns", type=int, default=15)
    args = parser.parse_args()
    asyncio.run(run(args.citizens, args.turns))


if __name__ == "__main__":
    main()
