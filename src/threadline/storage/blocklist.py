"""The block list: every complete block per tenant, loaded from the blocks directory.

Directories without ``meta.json`` (a write that never finished) are not blocks: ``load`` removes
the temporary ones left by a crash.
"""

from __future__ import annotations

import logging
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

from threadline.storage.block_reader import Block
from threadline.storage.block_writer import META_FILE, TMP_PREFIX

log = logging.getLogger(__name__)


class Blocklist:
    def __init__(self, blocks_dir: Path) -> None:
        self.blocks_dir = blocks_dir
        self._blocks: dict[str, dict[str, Block]] = {}
        self._lock = threading.Lock()

    def load(self, remove_unfinished: bool = True) -> None:
        """Open every complete block; a reader that must not write passes ``False``."""
        if not self.blocks_dir.is_dir():
            return
        for tenant_dir in sorted(p for p in self.blocks_dir.iterdir() if p.is_dir()):
            for block_dir in sorted(tenant_dir.iterdir()):
                if block_dir.name.startswith(TMP_PREFIX):
                    if not remove_unfinished:
                        continue
                    log.warning("removing unfinished block %s", block_dir)
                    shutil.rmtree(block_dir, ignore_errors=True)
                elif (block_dir / META_FILE).exists():
                    self.add(Block.open(block_dir))

    def add(self, block: Block) -> None:
        with self._lock:
            self._blocks.setdefault(block.meta.tenant_id, {})[block.id] = block

    def tenants(self) -> list[str]:
        with self._lock:
            return list(self._blocks)

    def blocks(
        self, tenant: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> list[Block]:
        with self._lock:
            blocks = list(self._blocks.get(tenant, {}).values())
        return [b for b in blocks if b.overlaps(start_ns, end_ns)]

    def __iter__(self) -> Iterator[Block]:
        with self._lock:
            every = [b for per in self._blocks.values() for b in per.values()]
        return iter(every)
