"""The hash bookkeeping that finds traces split across blocks, against a count from scratch."""

from __future__ import annotations

import numpy as np

from threadline.querier.whole_traces import _distinct, _TenantHashes


def test_counts_follow_blocks_coming_and_going() -> None:
    rng = np.random.default_rng(7)
    pool = rng.integers(0, 2**64, size=400, dtype=np.uint64)
    state = _TenantHashes()
    blocks: dict[int, np.ndarray] = {}
    for step in range(60):
        if blocks and rng.random() < 0.4:
            gone = int(rng.choice(list(blocks)))
            state.remove(blocks.pop(gone))
        else:
            hashes = _distinct(np.sort(rng.choice(pool, size=int(rng.integers(1, 80)))))
            blocks[step] = hashes
            state.add(hashes)
        held = np.concatenate(list(blocks.values())) if blocks else np.zeros(0, np.uint64)
        every, counts = np.unique(held, return_counts=True)
        assert np.array_equal(state.every, every)
        assert np.array_equal(state.counts, counts)
