"""The distributor's per-tenant limits: the ingestion rate (a token bucket of bytes per tenant,
refilled at ``rate_limit_bytes`` per second up to ``burst_size_bytes``) and the refusal that
names the limit and the tenant (HTTP 429 / gRPC RESOURCE_EXHAUSTED)."""

from __future__ import annotations

import time
from collections.abc import Callable


class LimitExceeded(Exception):
    """A push beyond one of the tenant's limits; ``reason`` labels the refusal counter."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason


class RateLimiter:
    """Token buckets of bytes, one per tenant."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # tenant -> (tokens, as of)

    def allow(self, tenant: str, nbytes: int, rate: float, burst: float) -> bool:
        """Take ``nbytes`` from the tenant's bucket if it holds them (``rate`` 0: no limit)."""
        if rate <= 0:
            return True
        now = self.clock()
        tokens, then = self._buckets.get(tenant, (burst, now))
        tokens = min(burst, tokens + (now - then) * rate)
        if nbytes > tokens:
            self._buckets[tenant] = (tokens, now)
            return False
        self._buckets[tenant] = (tokens - nbytes, now)
        return True
