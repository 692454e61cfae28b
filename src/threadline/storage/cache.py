"""Bounded local caches for blocks in object storage.

- ``RangeCache``: fixed-size chunks of remote files in memory (LRU, bounded in bytes). A
  trace-by-ID lookup reads the Parquet footer and one or two row groups through it
  (``RangeFile``), never the whole block.
- ``FileCache``: whole ``data.parquet`` files on local disk (LRU, bounded in bytes), for DuckDB
  search and aggregation, which scan most of a block anyway. Files read in the last
  ``pin_seconds`` are never evicted, so a query that was just handed a path can still open it.
"""

from __future__ import annotations

import io
import logging
import os
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from pathlib import Path

from threadline.storage.backend import Backend

log = logging.getLogger(__name__)


class RangeCache:
    def __init__(self, max_bytes: int, chunk_bytes: int = 512 * 1024) -> None:
        self.max_bytes = max_bytes
        self.chunk_bytes = chunk_bytes
        self._chunks: OrderedDict[tuple[int, str, int], bytes] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

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
        if missing:
            self.misses += len(missing)
            ranges = [(i * cb, min(cb, size - i * cb)) for i in missing]
            for i, data in zip(missing, backend.read_ranges(key, ranges), strict=True):
                got[i] = data
            with self._lock:
                for i in missing:
                    k = (id(backend), key, i)
                    if k not in self._chunks:
                        self._chunks[k] = got[i]
                        self._bytes += len(got[i])
                while self._bytes > self.max_bytes and self._chunks:
                    _, old = self._chunks.popitem(last=False)
                    self._bytes -= len(old)
        joined = b"".join(got[i] for i in wanted)
        offset = start - first * cb
        return joined[offset : offset + (end - start)]

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


class FileCache:
    """Whole remote files on local disk, least recently used evicted beyond ``max_bytes``."""

    def __init__(self, directory: Path, max_bytes: int, pin_seconds: float = 120.0) -> None:
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.pin_seconds = pin_seconds
        self._files: OrderedDict[str, tuple[Path, int, float]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        # files from an earlier run are not trusted (a block may have been deleted since)
        shutil.rmtree(self.directory, ignore_errors=True)
        self.directory.mkdir(parents=True, exist_ok=True)

    def _local(self, key: str) -> Path:
        return self.directory / key.replace("/", "__")

    def path(self, backend: Backend, key: str) -> Path:
        """A local copy of ``key``, downloaded once and kept while there is room."""
        with self._lock:
            hit = self._files.get(key)
            if hit is not None:
                self._files[key] = (hit[0], hit[1], time.monotonic())
                self._files.move_to_end(key)
                return hit[0]
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                hit = self._files.get(key)
                if hit is not None:
                    return hit[0]
            data = backend.read(key)
            target = self._local(key)
            tmp = target.with_name(f".{uuid.uuid4().hex}.tmp")
            tmp.write_bytes(data)
            os.replace(tmp, target)
            self.add(key, target)
            return target

    def add(self, key: str, path: Path) -> None:
        """Adopt a local file (moved into the cache directory if it is elsewhere)."""
        target = self._local(key)
        if path != target:
            shutil.move(path, target)
        size = target.stat().st_size
        with self._lock:
            old = self._files.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            self._files[key] = (target, size, time.monotonic())
            self._bytes += size
            self._evict()

    def _evict(self) -> None:
        now = time.monotonic()
        for key in list(self._files):
            if self._bytes <= self.max_bytes:
                break
            path, size, used = self._files[key]
            if now - used < self.pin_seconds:
                continue
            del self._files[key]
            self._bytes -= size
            path.unlink(missing_ok=True)

    def forget(self, key: str) -> None:
        with self._lock:
            old = self._files.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
                old[0].unlink(missing_ok=True)

    @property
    def nbytes(self) -> int:
        return self._bytes
