"""Bounded local caches for blocks in object storage.

Remote blocks are only ever read in ranges: a trace-by-ID lookup reads the Parquet footer and one
or two row groups, a search the footer and the column chunks its query needs (DuckDB reads
through ``block_fs``). Both go through one ``RangeCache`` of fixed-size chunks: an LRU in memory,
bounded in bytes, over an optional LRU of chunk files on local disk (``DiskChunks``), also
bounded in bytes. A block this process has just written is put on disk whole (``adopt``), so
reading it back needs no request to the store.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import threading
import uuid
from collections import OrderedDict
from pathlib import Path

from threadline.storage.backend import Backend

log = logging.getLogger(__name__)


class DiskChunks:
    """Chunk files on local disk, least recently used evicted beyond ``max_bytes``."""

    def __init__(self, directory: Path, max_bytes: int) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self._files: OrderedDict[str, int] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        # chunks from an earlier run are not trusted (a block may have been deleted since)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _local(self, name: str) -> Path:
        return self.directory / name.replace("/", "__")

    def get(self, name: str) -> bytes | None:
        with self._lock:
            if name not in self._files:
                return None
            self._files.move_to_end(name)
        try:
            return self._local(name).read_bytes()
        except FileNotFoundError:  # evicted meanwhile
            return None

    def put(self, name: str, data: bytes) -> None:
        target = self._local(name)
        tmp = target.with_name(f".{uuid.uuid4().hex}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except OSError as e:  # a full disk costs a re-read later, never the query
            log.warning("cannot cache %s on disk: %s", name, e)
            tmp.unlink(missing_ok=True)
            return
        with self._lock:
            old = self._files.pop(name, None)
            self._bytes += len(data) - (old or 0)
            self._files[name] = len(data)
            while self._bytes > self.max_bytes and self._files:
                victim, size = self._files.popitem(last=False)
                self._bytes -= size
                self._local(victim).unlink(missing_ok=True)

    @property
    def nbytes(self) -> int:
        return self._bytes


class RangeCache:
    """Ranges of remote files in ``chunk_bytes`` chunks: in memory, then on ``disk`` if given."""

    def __init__(
        self, max_bytes: int, chunk_bytes: int = 512 * 1024, disk: DiskChunks | None = None
    ) -> None:
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes
        self.disk = disk
        self._chunks: OrderedDict[tuple[int, str, int], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def _remember(self, backend: Backend, key: str, chunks: dict[int, bytes]) -> None:
        with self._lock:
            for i, data in chunks.items():
                k = (id(backend), key, i)
                if k not in self._chunks:
                    self._chunks[k] = data
                    self._bytes += len(data)
            while self._bytes > self.max_bytes and self._chunks:
                _, old = self._chunks.popitem(last=False)
                self._bytes -= len(old)

    def read(self, backend: Backend, key: str, size: int, start: int, length: int) -> bytes:
        """``length`` bytes of ``key`` (``size`` bytes long) from ``start``."""
        end = min(size, start + length)
        if end <= start:
            return b""
        cb = self.chunk_bytes
        first, last = start // cb, (end - 1) // cb
        wanted = range(first, last + 1)
        got: dict[int, bytes] = {}
        with self._lock:
            for i in wanted:
                chunk = self._chunks.get((id(backend), key, i))
                if chunk is not None:
                    self._chunks.move_to_end((id(backend), key, i))
                    got[i] = chunk
            self.hits += len(got)
        missing = [i for i in wanted if i not in got]
        if missing and self.disk is not None:
            from_disk = {}
            for i in missing:
                data = self.disk.get(f"{key}.{cb}.{i}")
                if data is not None:
                    from_disk[i] = data
            got.update(from_disk)
            self._remember(backend, key, from_disk)
            missing = [i for i in missing if i not in from_disk]
        if missing:
            self.misses += len(missing)
            ranges = [(i * cb, min(cb, size - i * cb)) for i in missing]
            fetched = dict(zip(missing, backend.read_ranges(key, ranges), strict=True))
            got.update(fetched)
            self._remember(backend, key, fetched)
            if self.disk is not None:
                for i, data in fetched.items():
                    self.disk.put(f"{key}.{cb}.{i}", data)
        joined = b"".join(got[i] for i in wanted)
        offset = start - first * cb
        return joined[offset : offset + (end - start)]

    def adopt(self, key: str, path: Path) -> None:
        """Put the local file ``path``, just uploaded as ``key``, on disk in chunks."""
        if self.disk is None:
            return
        cb = self.chunk_bytes
        with open(path, "rb") as f:
            i = 0
            while chunk := f.read(cb):
                self.disk.put(f"{key}.{cb}.{i}", chunk)
                i += 1

    @property
    def nbytes(self) -> int:
        return self._bytes


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over one remote object, read in cached chunks."""

    def __init__(self, backend: Backend, key: str, size: int, cache: RangeCache) -> None:
        super().__init__()
        self.backend = backend
        self.key = key
        self._size = size
        self.cache = cache
        self._pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def size(self) -> int:
        return self._size

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            self._pos = offset
        elif whence == io.SEEK_CUR:
            self._pos += offset
        else:
            self._pos = self._size + offset
        return self._pos

    def read(self, size: int = -1) -> bytes:
        if size is None or size < 0:
            size = self._size - self._pos
        data = self.cache.read(self.backend, self.key, self._size, self._pos, size)
        self._pos += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)
