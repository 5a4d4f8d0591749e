"""The Telegram sender against a fake Bot API that enforces 30 msg/s (429 beyond).

3,000 messages to 3,000 chats go through the real outbox worker and python-telegram-bot over
loopback HTTP. Prints one line: achieved rate / 30 (target >= 0.95), 429s received after the
first second (target 0), duplicates (must be 0), peak RSS.
Run: python bench/telegram_send.py [--messages 3000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.app import build, start_channels, stop_channels  # noqa: E402
from bot.config import load_settings  # noqa: E402
from bot.models import PRIORITY_BROADCAST, Contact, Outbox  # noqa: E402
from tests.fakes.telegram_api import FakeTelegram  # noqa: E402

LIMIT = 30


async def run(n: int) -> None:
    async with FakeTelegram(rate_limit_per_second=LIMIT) as fake:
        with tempfile.TemporaryDirectory() as tmp:
            app = build(load_settings(
                data_dir=Path(tmp), telegram_bot_token="1:BENCH",
                telegram_api_base_url=fake.base_url, telegram_poll_timeout=1))
            with app.db.session() as s:
                contacts = [Contact(channel="telegram", external_id=str(100_000 + i))
                            for i in range(n)]
                s.add_all(contacts)
                s.flush()
                s.add_all(Outbox(contact_id=c.id, channel="telegram",  # type: ignore[arg-type]
                                 priority=PRIORITY_BROADCAST,
                                 payload={"text": f"Sosialisasi KK #{i}", "options": []})
                          for i, c in enumerate(contacts))
                s.commit()
            start = time.monotonic()
            await start_channels(app)
            while sum(1 for r in fake.sent if r.method == "sendMessage") < n:
                await asyncio.sleep(0.1)
                if time.monotonic() - start > n / LIMIT * 3 + 30:
                    break
            elapsed = time.monotonic() - start
            await stop_channels(app)
            app.close()
        sends = [r for r in fake.sent if r.method == "sendMessage"]
        first = sends[0].at if sends else start
        late_429 = sum(1 for t in fake.rejected_429 if t - first > 1.0)
        dupes = sum(c - 1 for c in Counter(r.chat_id for r in sends).values() if c > 1)
        rate = len(sends) / (sends[-1].at - first) if len(sends) > 1 else 0.0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"telegram_send: messages={len(sends)}/{n} elapsed_s={elapsed:.1f} "
          f"rate_per_s={rate:.2f} rate/limit={rate / LIMIT:.3f} "
          f"429_after_first_second={late_429} duplicates={dupes} peak_rss_mb={rss_mb:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=3000)
    asyncio.run(run(parser.parse_args().messages))


if __name__ == "__main__":
    main()
