"""Per-key token buckets: ``rate`` requests a second with bursts of twice that."""

from __future__ import annotations

import math
import time


class RateLimiter:
    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.burst = 2 * rate
        self._buckets: dict[str, tuple[float, float]] = {}

    def retry_after(self, key: str) -> int | None:
        """None if ``key`` may proceed (and charge it), else whole seconds to wait."""
        if self.rate <= 0:
            return None
        now = time.monotonic()
        tokens, stamp = self._buckets.get(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - stamp) * self.rate)
        if tokens < 1:
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1 - tokens) / self.rate))
        self._buckets[key] = (tokens - 1, now)
        return None
