"""Latency and throughput of free-text understanding over 10,000 mixed queries.

Queries are the labelled citizen messages plus seeded variations (typos, casing, repeated
letters, extra words), so most are unseen strings. Prints one line; target p99 < 2 ms.
Run: python bench/understand.py [--n 10000]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from flows.content import load_content  # noqa: E402
from flows.understand import understander  # noqa: E402

TARGET_P99_MS = 2.0


def _table() -> list[str]:
    texts = []
    for name in ("understand_dev.tsv", "understand_holdout.tsv"):
        path = ROOT / "tests" / "flows" / "data" / name
        for line in path.read_text(encoding="utf-8").splitlines()[1:]:
            if line.strip() and not line.startswith("#"):
                texts.append(line.split("\t")[0])
    return texts


def _vary(text: str, rng: random.Random) -> str:
    chars = list(text)
    for _ in range(rng.randint(0, 3)):
        if len(chars) > 3:
            i = rng.randrange(len(chars))
            op = rng.random()
            if op < 0.33:
                chars[i] = rng.choice("abcdefghijklmnopqrstuvwxyz")
            elif op < 0.66:
                del chars[i]
            else:
                chars.insert(i, chars[i] * 2)
    out = "".join(chars)
    if rng.random() < 0.2:
        out = out.upper()
    if rng.random() < 0.2:
        out += " " + rng.choice(["kaka", "tolong", "pak", "ya", "dong", "sekarang", "hari ini"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(7)
    base = _table()
    queries = [_vary(rng.choice(base), rng) for _ in range(args.n)]
    t0 = time.perf_counter()
    u = understander(load_content())
    build_ms = (time.perf_counter() - t0) * 1000
    lat = []
    start = time.perf_counter()
    for q in queries:
        t = time.perf_counter_ns()
        u.match(q)
        lat.append((time.perf_counter_ns() - t) / 1e6)
    total = time.perf_counter() - start
    qs = statistics.quantiles(lat, n=100)
    p50, p99 = qs[49], qs[98]
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"understand: n={args.n} qps={args.n / total:.0f} p50_ms={p50:.3f} p99_ms={p99:.3f} "
          f"max_ms={max(lat):.2f} p99/target={p99 / TARGET_P99_MS:.2f} "
          f"index_build_ms={build_ms:.0f} peak_rss_mb={rss_mb:.0f}")


if __name__ == "__main__":
    main()
