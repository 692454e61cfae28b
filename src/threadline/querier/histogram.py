"""Log2 histograms: the mergeable form latency distributions take between sources.

A value v (> 0) falls in bucket ``ceil(log2(v))``, i.e. ``(2^(b-1), 2^b]``. Quantiles are
estimated by exponential interpolation inside the bucket that holds the rank, as Tempo does.
"""

from __future__ import annotations

import math
from collections import Counter


def quantile(histogram: Counter[int], q: float, scale: float = 1.0) -> float:
    """The q-quantile of the histogram, divided by ``scale`` (1e9 turns ns into seconds)."""
    total = sum(histogram.values())
    if total == 0:
        return math.nan
    rank = q * total
    seen = 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if seen + count >= rank:
            fraction = (rank - seen) / count if count else 0.0
            return 2 ** (bucket - 1 + fraction) / scale
        seen += count
    return 2 ** max(histogram) / scale
