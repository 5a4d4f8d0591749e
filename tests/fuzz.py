"""Hypothesis settings shared by the fuzz tests (tests/flows/test_fuzz_engine.py,
tests/bot/test_fuzz_webhooks.py).

CI runs a small, derandomized number of examples so the suite stays fast and a failure is
reproducible; set `LONTAR_FUZZ_EXAMPLES=5000` locally to search longer (and at random).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_LOCAL = os.environ.get("LONTAR_FUZZ_EXAMPLES", "")


def fuzz_settings(default: int) -> settings:
    """`default` examples, derandomized (CI); or `LONTAR_FUZZ_EXAMPLES`, at random."""
    if _LOCAL.isdigit() and int(_LOCAL) > 0:
        return settings(max_examples=int(_LOCAL), deadline=None, derandomize=False,
                        suppress_health_check=list(HealthCheck), print_blob=True)
    return settings(max_examples=default, deadline=None, derandomize=True, database=None,
                    suppress_health_check=list(HealthCheck), print_blob=True)
