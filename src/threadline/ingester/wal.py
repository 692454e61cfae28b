"""The write-ahead log: segment files of length-prefixed, checksummed records.

Record layout: ``u32 payload length | u32 crc32(payload) | payload``. Writers append from the
event loop (a ``write`` into the page cache); one committer thread fsyncs whatever has been
written since its last fsync (group commit) and then wakes every writer whose record it covered.
Segments are named by a growing sequence number; past ``segment_bytes`` a new one is started,
so that older segments can be deleted once blocks holding their spans are durable. Replay stops
a segment at its first torn or corrupt record and truncates the torn tail away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from threadline.storage.files import fsync_path

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
SEGMENT_SUFFIX = ".wal"
MAX_RECORD_BYTES = 1 << 30


def segment_path(directory: Path, seq: int) -> Path:
    return directory / f"{seq:016d}{SEGMENT_SUFFIX}"


def list_segments(directory: Path) -> list[int]:
    return sorted(
        int(p.name[: -len(SEGMENT_SUFFIX)])
        for p in directory.glob(f"*{SEGMENT_SUFFIX}")
        if p.name[: -len(SEGMENT_SUFFIX)].isdigit()
    )


def read_segment(path: Path, truncate_torn_tail: bool = False) -> Iterator[bytes]:
    """Yield the payloads of ``path`` up to its first torn or corrupt record."""
    data = path.read_bytes()
    pos, end = 0, len(data)
    while pos < end:
        if end - pos < _HEADER.size:
            break
        length, crc = _HEADER.unpack_from(data, pos)
        body_start = pos + _HEADER.size
        if length > MAX_RECORD_BYTES or body_start + length > end:
            break
        payload = data[body_start : body_start + length]
        if zlib.crc32(payload) != crc:
            break
        yield payload
        pos = body_start + length
    if pos < end:
        log.warning("WAL segment %s: dropping %d bytes of torn/corrupt tail", path, end - pos)
        if truncate_torn_tail:
            with open(path, "r+b") as f:
                f.truncate(pos)
                os.fsync(f.fileno())


class WAL:
    """Appends records to the current segment; ``append`` resolves once the record is fsynced."""

    def __init__(
        self,
        directory: Path,
        first_seq: int,
        *,
        fsync: bool = True,
        segment_bytes: int = 64 * 2**20,
        on_fsync: Callable[[float], None] | None = None,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._fsync_enabled = fsync
        self._segment_bytes = segment_bytes
        self._segment_size = 0
        self._on_fsync = on_fsync
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._seq = first_seq
        self._fd = self._open(first_seq)
        self._retired: list[int] = []
        self._written = 0  # count of records written so far
        self._durable = 0  # count of records known to be fsynced
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._error: OSError | None = None
        self._thread = threading.Thread(target=self._commit_loop, name="wal-commit", daemon=True)
        self._thread.start()

    @property
    def current_segment(self) -> int:
        return self._seq

    def _open(self, seq: int) -> int:
        fd = os.open(
            segment_path(self.directory, seq), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644
        )
        fsync_path(self.directory)
        return fd

    def write(self, *parts: bytes | memoryview) -> tuple[int, int]:
        """Write one record whose payload is ``parts`` joined (not yet durable).

        Returns its ticket for ``wait_durable`` and the segment it went into.
        """
        length, crc = 0, 0
        for part in parts:
            length += len(part)
            crc = zlib.crc32(part, crc)
        chunks = [_HEADER.pack(length, crc), *parts]
        size = _HEADER.size + length
        with self._lock:
            if self._closed:
                raise RuntimeError("WAL is closed")
            if self._segment_size >= self._segment_bytes:
                self._rotate_locked()
            written = os.writev(self._fd, chunks)
            if written < size:  # a short write: finish it, so the record stays whole
                rest = b"".join(chunks)[written:]
                while rest:
                    rest = rest[os.write(self._fd, rest) :]
            self._segment_size += size
            self._written += 1
            ticket = self._written
            self._wake.notify()
            return ticket, self._seq

    async def wait_durable(self, ticket: int) -> None:
        """Return once the record with ``ticket`` (and all before it) is fsynced."""
        if self._error is not None:
            raise self._error
        if ticket <= self._durable:
            return
        loop = asyncio.get_running_loop()
        self._loop = loop
        fut: asyncio.Future[None] = loop.create_future()
        with self._lock:
            if ticket <= self._durable:
                return
            self._waiters.append((ticket, fut))
        await fut

    def _rotate_locked(self) -> None:
        self._retired.append(self._fd)
        self._seq += 1
        self._fd = self._open(self._seq)
        self._segment_size = 0
        self._wake.notify()

    def delete_segments_before(self, seq: int) -> list[int]:
        """Delete closed segments numbered below ``seq`` (never the current one)."""
        with self._lock:
            limit = min(seq, self._seq)
        gone = [s for s in list_segments(self.directory) if s < limit]
        for s in gone:
            segment_path(self.directory, s).unlink(missing_ok=True)
        if gone:
            fsync_path(self.directory)
        return gone

    def _commit_loop(self) -> None:
        while True:
            with self._lock:
                while self._written == self._durable and not self._retired and not self._closed:
                    self._wake.wait()
                if self._closed and self._written == self._durable and not self._retired:
                    return
                target = self._written
                fds = [*self._retired, self._fd]
                self._retired = []
            started = time.perf_counter()
            try:
                for i, fd in enumerate(fds):
                    if self._fsync_enabled:
                        os.fdatasync(fd)
                    if i < len(fds) - 1:
                        os.close(fd)
            except OSError as e:  # the disk failed us: fail every waiter, keep failing
                log.exception("WAL fsync failed")
                self._error = e
            if self._on_fsync is not None:
                self._on_fsync(time.perf_counter() - started)
            with self._lock:
                self._durable = max(self._durable, target)
            if self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._release, target)

    def _release(self, durable: int) -> None:
        with self._lock:
            ready = []
            while self._waiters and self._waiters[0][0] <= durable:
                ready.append(self._waiters.popleft()[1])
        for fut in ready:
            if fut.done():
                continue
            if self._error is not None:
                fut.set_exception(self._error)
            else:
                fut.set_result(None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join()
        os.close(self._fd)
