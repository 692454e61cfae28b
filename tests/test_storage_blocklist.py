"""The shared block list: polling with a tenant index (one read per tenant), falling back to a
listing, and readers in separate processes agreeing with the index builder."""

from __future__ import annotations

import gzip
import os
import time
import uuid
from pathlib import Path

import orjson

from storage_helpers import table
from threadline.config import BlockConfig
from threadline.storage.backend import LocalBackend, ObjectInfo
from threadline.storage.block_writer import write_block
from threadline.storage.blocklist import Blocklist, TenantPoll


class CountingBackend(LocalBackend):
    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.reads = 0
        self.lists = 0

    def read(self, key: str) -> bytes:
        self.reads += 1
        return super().read(key)

    def list(self, prefix: str) -> list[ObjectInfo]:
        self.lists += 1
        return super().list(prefix)


def test_tenant_index_makes_polling_thousands_of_blocks_one_read(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    meta = write_block(root, "t", table([1], range(1, 3)), BlockConfig())
    # a builder's view of 3000 blocks (metas only: readers of the index never list)
    many = TenantPoll()
    for _ in range(3000):
        m = meta.model_copy(update={"block_id": str(uuid.uuid4())})
        many.live[m.block_id] = m
    builder = Blocklist(LocalBackend(root), index_builder=True)
    builder.write_index("t", many)
    doc = orjson.loads(gzip.decompress((root / "t" / "index.json.gz").read_bytes()))
    assert set(doc) >= {"created_at", "meta", "compacted"} and len(doc["meta"]) == 3000
    backend = CountingBackend(root)
    reader = Blocklist(backend)
    started = time.perf_counter()
    reader.poll()
    assert time.perf_counter() - started < 5
    assert len(reader.blocks("t")) == 3000
    assert backend.reads == 1 and backend.lists == 0


def test_reader_falls_back_to_listing_without_or_with_stale_index(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    a = write_block(root, "t", table([1], range(1, 3)), BlockConfig())
    backend = CountingBackend(root)
    reader = Blocklist(backend, stale_index=60)
    reader.poll()  # no index yet: list
    assert backend.lists == 1 and [b.id for b in reader.blocks("t")] == [a.block_id]
    builder = Blocklist(LocalBackend(root), index_builder=True)
    builder.poll()  # lists and writes the index
    b = write_block(root, "t", table([2], range(1, 3)), BlockConfig())
    reader.poll()  # fresh index: used, so the new block is not seen until the next index
    assert backend.lists == 1 and [x.id for x in reader.blocks("t")] == [a.block_id]
    # an index older than stale_index is ignored
    raw = orjson.loads(gzip.decompress((root / "t" / "index.json.gz").read_bytes()))
    raw["created_unix"] -= 3600
    (root / "t" / "index.json.gz").write_bytes(gzip.compress(orjson.dumps(raw)))
    reader.poll()
    assert backend.lists == 2
    assert {x.id for x in reader.blocks("t")} == {a.block_id, b.block_id}
    # three index reads (the first one missing), a's meta once, b's meta: metas are immutable,
    # so a listing reads only the new ones
    assert backend.reads == 3 + 1 + 1


def test_blocks_added_here_survive_polls_until_the_index_has_them(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    builder = Blocklist(LocalBackend(root), index_builder=True)
    first = write_block(root, "t", table([1], range(1, 3)), BlockConfig())
    builder.poll()
    reader = Blocklist(LocalBackend(root))
    reader.poll()
    mine = write_block(reader.backend, "t", table([2], range(1, 3)), BlockConfig())
    reader.add(reader.new_block(mine))
    reader.poll()  # the index does not know it yet, the reader still shows it
    assert {b.id for b in reader.blocks("t")} == {first.block_id, mine.block_id}
    builder.poll()
    reader.poll()
    assert {b.id for b in reader.blocks("t")} == {first.block_id, mine.block_id}
    assert not reader._added  # caught up


def test_unknown_tenant_and_empty_backend(tmp_path: Path) -> None:
    blocklist = Blocklist(tmp_path / "nothing-here")
    blocklist.load()
    assert blocklist.tenants() == []
    assert blocklist.blocks("t") == []


def test_staging_directories_of_live_writers_are_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "blocks"
    tenant = root / "t"
    tenant.mkdir(parents=True)
    mine = tenant / f".tmp-{os.getpid()}-aaaa"  # this process, writing right now
    parent = tenant / f".tmp-{os.getppid()}-bbbb"  # another live process
    dead = tenant / ".tmp-999999999-cccc"  # no such process
    old_style = tenant / ".tmp-crashed"
    for d in (mine, parent, dead, old_style):
        d.mkdir()
    blocklist = Blocklist(root)
    assert blocklist.remove_unfinished() == 2  # what a running compactor's cleanup does
    assert mine.exists() and parent.exists()
    assert not dead.exists() and not old_style.exists()
    # at start nothing of this process can be in progress: its pid there is a stale one
    assert blocklist.remove_unfinished(at_start=True) == 1
    assert not mine.exists() and parent.exists()
