"""Quiet hours: the office's night, when no outreach goes out (replies still do)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


@dataclass(frozen=True)
class QuietHours:
    """No outreach between `start` and `end` office time (overnight when start > end)."""

    start: time
    end: time
    tz: ZoneInfo

    def until(self, now: datetime) -> datetime | None:
        """When the quiet hours around `now` end, or None if `now` is not in them."""
        if self.start == self.end:
            return None
        local = now.astimezone(self.tz)
        t = local.time()
        inside = (self.start <= t < self.end) if self.start < self.end else (
            t >= self.start or t < self.end)
        if not inside:
            return None
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0,
                            microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(UTC)
