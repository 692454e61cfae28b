"""Remote blocks as files DuckDB can open: an fsspec file system over cached range reads.

A query over a block in object storage names its data file ``tlblock://<tenant>/<block>/data.parquet``
on a database with a ``BlockFileSystem`` registered that the query's blocks were added to. DuckDB
then reads the footer and only the row groups and column chunks the query needs, each through
the blocks' ``RangeCache`` (memory, then local disk, then the store), never the whole file.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from fsspec.spec import AbstractBufferedFile, AbstractFileSystem

from threadline.storage.block_reader import DATA_FILE, Block

PROTOCOL = "tlblock"


def block_url(block: Block) -> str:
    """The name DuckDB opens ``block``'s data file by."""
    return f"{PROTOCOL}://{block.tenant}/{block.id}/{DATA_FILE}"


class _BlockFile(AbstractBufferedFile):
    """One block's data file; reads come from its range cache."""

    def __init__(self, fs: BlockFileSystem, path: str, block: Block) -> None:
        self.block = block
        # no read-ahead buffer of fsspec's own: the range cache already works in chunks
        super().__init__(fs, path, "rb", block_size=1, cache_type="none", size=block.meta.size)

    def _fetch_range(self, start: int, end: int) -> bytes:
        block = self.block
        return block.caches.ranges.read(
            block.backend, block.key(DATA_FILE), block.meta.size, start, end - start
        )


class BlockFileSystem(AbstractFileSystem):
    """The data files of ``blocks``, read-only."""

    protocol = PROTOCOL
    cachable = False  # one instance per database, holding the blocks queries were given

    def __init__(self, blocks: Iterable[Block], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._blocks = {f"{b.tenant}/{b.id}/{DATA_FILE}": b for b in blocks}

    def add(self, block: Block) -> None:
        """Make ``block`` openable (blocks never change, so a name always means one block)."""
        self._blocks[f"{block.tenant}/{block.id}/{DATA_FILE}"] = block

    def _block(self, path: str) -> Block:
        block = self._blocks.get(self._strip_protocol(path))
        if block is None:
            raise FileNotFoundError(path)
        return block

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        block = self._block(path)
        return {"name": self._strip_protocol(path), "size": block.meta.size, "type": "file"}

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        entry = self.info(path)
        return [entry] if detail else [entry["name"]]

    def modified(self, path: str) -> datetime:
        # blocks never change once written; their newest span dates them well enough
        return datetime.fromtimestamp(self._block(path).meta.end_unix_nano / 1e9, UTC)

    def _open(self, path: str, mode: str = "rb", **kwargs: Any) -> _BlockFile:
        if mode != "rb":
            raise PermissionError(f"{path}: blocks are read-only")
        return _BlockFile(self, self._strip_protocol(path), self._block(path))
