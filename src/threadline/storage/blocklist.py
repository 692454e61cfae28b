"""The block list: every complete block per tenant, as the backend holds it.

Every querier, ingester and compactor sharing a backend (a directory or a bucket) sees the same
blocks by polling it. The *index builder* (a process that runs the compactor) lists each tenant's
objects, reads the metas it does not know yet and writes the tenant index ``index.json.gz``
(``{created_at, meta: [...], compacted: [...]}`` as Tempo's); every other process reads only that
index, one object per tenant, falling back to a listing when there is none (or it is older than
``stale_index`` seconds, if set).

What is visible, in order of the protocol that writes blocks:

1. a block is visible once its ``meta.json`` exists (written last); directories without it (a
   write or upload that never finished) are not blocks;
2. a compacted block's meta names its inputs (``compactedFrom``): once it is visible, those
   inputs are hidden from queries even before they are marked compacted, so a query sees either
   the inputs or the output, never both;
3. inputs are then marked compacted (``meta.compacted.json``, then ``meta.json`` removed), and
   deleted after ``compacted_block_retention``.

Blocks this process writes or compacts are applied at once; they survive polls until the polled
state (e.g. an index built by another process) catches up with them.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from threadline.storage.backend import (
    COMPACTED_META_FILE,
    META_FILE,
    TENANT_INDEX_FILE,
    Backend,
    LocalBackend,
    keys_by_block,
)
from threadline.storage.block_reader import Block, BlockCaches
from threadline.storage.meta import BlockMeta, CompactedBlockMeta, rfc3339

log = logging.getLogger(__name__)

TMP_PREFIX = ".tmp-"
# how long a block this process added (or marked compacted) overrides what polls say
PENDING_TTL = 3600.0


def _writer_alive(tmp_dir: Path, at_start: bool = False) -> bool:
    """Whether a live process may be writing this ``.tmp-<pid>-<block>`` directory.

    This process counts as alive, except ``at_start`` (before it wrote anything: a directory
    with its pid is then left by an earlier process that had the same pid)."""
    pid_text = tmp_dir.name[len(TMP_PREFIX) :].split("-", 1)[0]
    if not pid_text.isdigit():
        return False
    if int(pid_text) == os.getpid():
        return not at_start
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_staging(directory: Path, at_start: bool = False) -> int:
    """Remove ``.tmp-<pid>-<block>`` staging directories of writers that are gone."""
    removed = 0
    if not directory.is_dir():
        return removed
    for tmp in directory.iterdir():
        if tmp.name.startswith(TMP_PREFIX) and not _writer_alive(tmp, at_start):
            log.warning("removing unfinished block %s", tmp)
            shutil.rmtree(tmp, ignore_errors=True)
            removed += 1
    return removed


@dataclass(slots=True)
class TenantPoll:
    """One tenant's blocks as the backend holds them."""

    live: dict[str, BlockMeta] = field(default_factory=dict)
    compacted: dict[str, CompactedBlockMeta] = field(default_factory=dict)
    # block directories with neither meta file (unfinished uploads): newest modification time
    orphans: dict[str, float] = field(default_factory=dict)
    from_index: bool = False


def index_bytes(poll: TenantPoll, now: float) -> bytes:
    doc = {
        "created_at": rfc3339(int(now * 1e9)),
        "created_unix": now,
        "meta": [m.to_dict() for m in poll.live.values()],
        "compacted": [m.to_dict() for m in poll.compacted.values()],
    }
    return gzip.compress(orjson.dumps(doc), compresslevel=6)


def parse_index(raw: bytes) -> tuple[float, TenantPoll]:
    doc: dict[str, Any] = orjson.loads(gzip.decompress(raw))
    poll = TenantPoll(from_index=True)
    for m in doc.get("meta") or []:
        meta = BlockMeta.model_validate(m)
        poll.live[meta.block_id] = meta
    for m in doc.get("compacted") or []:
        cmeta = CompactedBlockMeta.model_validate(m)
        poll.compacted[cmeta.block_id] = cmeta
    return float(doc.get("created_unix") or 0.0), poll


class Blocklist:
    def __init__(
        self,
        backend: Backend | Path,
        caches: BlockCaches | None = None,
        *,
        index_builder: bool = False,
        stale_index: float = 0.0,
        use_index: bool = True,
    ) -> None:
        self.backend = backend if isinstance(backend, Backend) else LocalBackend(Path(backend))
        # the blocks directory of a local backend (None for object storage)
        self.blocks_dir: Path | None = (
            self.backend.root if isinstance(self.backend, LocalBackend) else None
        )
        self.caches = caches
        self.index_builder = index_builder
        self.stale_index = stale_index
        # False: always list (tools that must see the backend as it is right now)
        self.use_index = use_index
        self._live: dict[str, dict[str, Block]] = {}
        self._hidden: dict[str, set[str]] = {}
        self._compacted: dict[str, dict[str, CompactedBlockMeta]] = {}
        self._orphans: dict[str, dict[str, float]] = {}
        self._added: dict[str, tuple[Block, float]] = {}
        self._removed: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self.last_poll = 0.0
        self.polls = 0
        self.index_reads = 0
        self.listings = 0

    # -- loading and polling ------------------------------------------------------------------

    def load(self, remove_unfinished: bool = True) -> None:
        """First poll; a process that owns a local directory removes unfinished block writes
        (a reader that must not write passes ``False``)."""
        if remove_unfinished:
            self.remove_unfinished(at_start=True)
        self.poll()

    def remove_unfinished(self, at_start: bool = False) -> int:
        """Remove staging directories of dead writers in a local blocks directory."""
        root = self.blocks_dir
        removed = 0
        if root is None or not root.is_dir():
            return removed
        for tenant_dir in (p for p in root.iterdir() if p.is_dir()):
            removed += remove_dead_staging(tenant_dir, at_start)
        return removed

    def tenants_in_backend(self) -> list[str]:
        return [t for t in self.backend.list_dirs("") if not t.startswith(".")]

    def list_tenant(self, tenant: str, known: TenantPoll | None = None) -> TenantPoll:
        """The tenant's blocks from a listing; metas already in ``known`` are not read again."""
        self.listings += 1
        poll = TenantPoll()
        grouped = keys_by_block(self.backend.list(f"{tenant}/"))
        to_read: list[tuple[str, str]] = []
        for block_id, files in grouped.items():
            if block_id.startswith("."):
                continue
            if COMPACTED_META_FILE in files:
                if known is not None and block_id in known.compacted:
                    poll.compacted[block_id] = known.compacted[block_id]
                else:
                    to_read.append((block_id, COMPACTED_META_FILE))
            elif META_FILE in files:
                if known is not None and block_id in known.live:
                    poll.live[block_id] = known.live[block_id]
                else:
                    to_read.append((block_id, META_FILE))
            else:
                poll.orphans[block_id] = max(o.modified for o in files.values())

        def read(item: tuple[str, str]) -> tuple[str, str, bytes | None]:
            block_id, name = item
            try:
                return block_id, name, self.backend.read(f"{tenant}/{block_id}/{name}")
            except FileNotFoundError:
                return block_id, name, None  # deleted (or marked) since the listing

        if len(to_read) > 4 and self.backend.kind != "local":
            with ThreadPoolExecutor(8) as pool:
                results = list(pool.map(read, to_read))
        else:
            results = [read(item) for item in to_read]
        for block_id, name, raw in results:
            if raw is None:
                continue
            try:
                if name == COMPACTED_META_FILE:
                    poll.compacted[block_id] = CompactedBlockMeta.from_json(raw)
                else:
                    poll.live[block_id] = BlockMeta.from_json(raw)
            except ValueError:
                log.exception("tenant %s: cannot read %s of block %s", tenant, name, block_id)
        return poll

    def read_index(self, tenant: str) -> tuple[float, TenantPoll] | None:
        try:
            raw = self.backend.read(f"{tenant}/{TENANT_INDEX_FILE}")
        except FileNotFoundError:
            return None
        self.index_reads += 1
        try:
            return parse_index(raw)
        except (ValueError, OSError):
            log.exception("tenant %s: unreadable tenant index, listing instead", tenant)
            return None

    def write_index(self, tenant: str, poll: TenantPoll) -> None:
        self.backend.write(f"{tenant}/{TENANT_INDEX_FILE}", index_bytes(poll, time.time()))

    def _known(self, tenant: str) -> TenantPoll:
        with self._lock:
            return TenantPoll(
                live={i: b.meta for i, b in self._live.get(tenant, {}).items()},
                compacted=dict(self._compacted.get(tenant, {})),
            )

    def poll_tenant(self, tenant: str) -> TenantPoll:
        now = time.time()
        if not self.index_builder and self.use_index:
            got = self.read_index(tenant)
            if got is not None:
                created, poll = got
                if not self.stale_index or now - created <= self.stale_index:
                    return poll
                log.warning("tenant %s: tenant index is stale, listing blocks", tenant)
        poll = self.list_tenant(tenant, self._known(tenant))
        if self.index_builder:
            try:
                self.write_index(tenant, poll)
            except OSError:
                log.exception("tenant %s: writing the tenant index failed", tenant)
        return poll

    def poll(self) -> None:
        """Refresh every tenant's blocks from the backend."""
        with self._poll_lock:
            results = {t: self.poll_tenant(t) for t in self.tenants_in_backend()}
            self._apply(results)
            self.last_poll = time.time()
            self.polls += 1

    def _apply(self, results: dict[str, TenantPoll]) -> None:
        now = time.monotonic()
        with self._lock:
            tenants = set(results) | {b.tenant for b, _ in self._added.values()}
            tenants |= {t for t, _ in self._removed.values()}
            for tenant in tenants:
                poll = results.get(tenant, TenantPoll())
                old = self._live.get(tenant, {})
                live = {
                    i: old.get(i) or Block(self.backend, meta, self.caches)
                    for i, meta in poll.live.items()
                }
                compacted = dict(poll.compacted)
                for block_id, (block, added) in list(self._added.items()):
                    if block.tenant != tenant:
                        continue
                    seen = block_id in poll.live or block_id in poll.compacted
                    if seen or now - added > PENDING_TTL:
                        del self._added[block_id]
                    else:
                        live[block_id] = block
                mine = self._compacted.get(tenant, {})
                for block_id, (owner, removed) in list(self._removed.items()):
                    if owner != tenant:
                        continue
                    if block_id in poll.live and now - removed <= PENDING_TTL:
                        del live[block_id]  # the polled state has not caught up yet
                        if block_id in mine:
                            compacted[block_id] = mine[block_id]
                    else:
                        del self._removed[block_id]
                self._live[tenant] = live
                self._compacted[tenant] = compacted
                self._orphans[tenant] = poll.orphans
                self._rehide(tenant)

    def _rehide(self, tenant: str) -> None:
        live = self._live.get(tenant, {})
        self._hidden[tenant] = {
            i for b in live.values() for i in b.meta.compacted_from if i in live
        }

    # -- changes made by this process ---------------------------------------------------------

    def new_block(self, meta: BlockMeta) -> Block:
        return Block(self.backend, meta, self.caches)

    def add(self, block: Block) -> None:
        """A block this process just wrote: visible at once; its bloom filter is read now, so
        lookups of other traces need no backend round trip (nor a reachable backend)."""
        with contextlib.suppress(OSError):
            _ = block.bloom
        with self._lock:
            self._live.setdefault(block.tenant, {})[block.id] = block
            self._added[block.id] = (block, time.monotonic())
            self._rehide(block.tenant)

    def mark_compacted(self, tenant: str, metas: list[CompactedBlockMeta]) -> None:
        """Blocks this process just marked compacted (their ``meta.compacted.json`` is written)."""
        with self._lock:
            live = self._live.setdefault(tenant, {})
            compacted = self._compacted.setdefault(tenant, {})
            for cmeta in metas:
                live.pop(cmeta.block_id, None)
                self._added.pop(cmeta.block_id, None)
                compacted[cmeta.block_id] = cmeta
                self._removed[cmeta.block_id] = (tenant, time.monotonic())
            self._rehide(tenant)

    def forget(self, tenant: str, block_id: str) -> None:
        """A block this process deleted."""
        with self._lock:
            self._live.get(tenant, {}).pop(block_id, None)
            self._compacted.get(tenant, {}).pop(block_id, None)
            self._orphans.get(tenant, {}).pop(block_id, None)
            self._added.pop(block_id, None)
            self._removed.pop(block_id, None)
            self._rehide(tenant)

    # -- reading ------------------------------------------------------------------------------

    def tenants(self) -> list[str]:
        with self._lock:
            return [t for t, blocks in self._live.items() if blocks]

    def blocks(
        self, tenant: str, start_ns: int | None = None, end_ns: int | None = None
    ) -> list[Block]:
        """The tenant's visible blocks overlapping ``[start_ns, end_ns]``."""
        with self._lock:
            hidden = self._hidden.get(tenant, set())
            blocks = [b for i, b in self._live.get(tenant, {}).items() if i not in hidden]
        return [b for b in blocks if b.overlaps(start_ns, end_ns)]

    def all_live(self, tenant: str) -> list[Block]:
        """Every block with a ``meta.json``, hidden ones (replaced by a compacted block) too."""
        with self._lock:
            return list(self._live.get(tenant, {}).values())

    def hidden(self, tenant: str) -> set[str]:
        with self._lock:
            return set(self._hidden.get(tenant, set()))

    def compacted(self, tenant: str) -> list[CompactedBlockMeta]:
        with self._lock:
            return list(self._compacted.get(tenant, {}).values())

    def orphans(self, tenant: str) -> dict[str, float]:
        with self._lock:
            return dict(self._orphans.get(tenant, {}))

    def find(self, block_id: str) -> Block | None:
        with self._lock:
            for per in self._live.values():
                if block_id in per:
                    return per[block_id]
        return None

    def __iter__(self) -> Iterator[Block]:
        every = []
        for tenant in self.tenants():
            every.extend(self.blocks(tenant))
        return iter(every)


async def poll_forever(blocklist: Blocklist, interval: float, stop: asyncio.Event) -> None:
    """Refresh ``blocklist`` every ``interval`` seconds until ``stop`` is set."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
        if stop.is_set():
            break
        try:
            await asyncio.to_thread(blocklist.poll)
        except Exception:
            log.exception("polling the block list failed")
