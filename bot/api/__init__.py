"""The staff JSON API under /api/v1/ (see `bot.api.server`)."""

from bot.api.server import StaffApi

__all__ = ["StaffApi"]
