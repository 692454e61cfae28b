"""The write-ahead log: segment files of length-prefixed, checksummed records.

Record layout: ``u32 payload length | u32 crc32(payload) | payload``. Writers append from the
event loop (a ``write`` into the page cache); one committer thread fsyncs whatever has been
written since its last fsync (group commit) and then wakes every writer whose record it covered.
Segments are named by a growing sequence number; past ``segment_bytes`` a new one is started,
so that older segments can be deleted once blocks holding their spans are durable. Replay stops
a segment at its first torn or corrupt record and truncates the torn tail away.

Failures (disk full, I/O error) refuse the records they hit, never the ones acknowledged before,
and the WAL keeps taking records once the disk lets it (no restart needed):

- A failed ``write`` may leave part of the record in the file (a short write at ENOSPC). Left
  there, every later record would sit behind a torn one, and replay, which stops a segment at
  its first bad record, would drop them all, acknowledged or not. So the segment is cut back to
  its last whole record (``ftruncate``; with ``O_APPEND`` the next write lands right there), and
  if even that fails the segment takes no more writes: the next one starts a fresh segment, and
  the torn bytes stay at the end of the old one, where replay drops them.
- A failed ``fdatasync`` fails every record not yet known durable: those it covered and those
  written while it ran. None of them may be acknowledged later: after a failed fsync Linux may
  already have marked the unwritten pages clean (the data is gone, the page cache no longer
  says so) and a second fsync would "succeed" without writing them; records appended after such
  a hole would be acknowledged yet unreadable behind it. So every segment with unsynced bytes
  is abandoned: cut back (best effort) to the offset of its last successful fsync, closed, and
  new records go to a fresh segment, acknowledged only by an fsync of their own.
- A refused record's writer gets ``WALUnavailable`` (receivers answer HTTP 503 / gRPC
  UNAVAILABLE). What a failed fsync refused may still be on disk if the cut-back failed too; it
  is then replayed after a restart, so a client that retried has those spans twice: at least
  once, never lost.
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
from dataclasses import dataclass
from pathlib import Path

from threadline.storage.files import fsync_path

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")
SEGMENT_SUFFIX = ".wal"
MAX_RECORD_BYTES = 1 << 30
# failed ticket ranges remembered for late ``wait_durable`` calls; older ones count as failed
_FAILED_RANGES_KEPT = 1024


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


class WALUnavailable(Exception):
    """A record could not be written or fsynced (disk full, I/O error): the push carrying it is
    refused, and can be retried once the disk lets the WAL write again."""

    def __init__(self, op: str, error: OSError) -> None:
        super().__init__(f"WAL {op} failed: {error.strerror or error}; retry later")
        self.op = op
        self.error = error


@dataclass(slots=True, eq=False)
class _Segment:
    seq: int
    fd: int
    size: int  # bytes of whole records written
    synced: int  # bytes made durable by the last successful fsync


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
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._fsync_enabled = fsync
        self._segment_bytes = segment_bytes
        self._on_fsync = on_fsync
        self._on_error = on_error
        self._lock = threading.Lock()
        self._wake = threading.Condition(self._lock)
        self._cur = self._open(first_seq)
        self._broken = False  # the current segment takes no more records: start a fresh one
        self._retired: list[_Segment] = []
        self._written = 0  # count of records written so far (the last ticket)
        self._resolved = 0  # tickets up to this are durable, except those in ``_failed``
        self._failed: deque[tuple[int, int, WALUnavailable]] = deque()
        self._forgotten: WALUnavailable | None = None  # tickets <= ``_forgotten_through`` fail
        self._forgotten_through = 0
        self._failing = False  # for logging the first failure and the recovery only
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False
        self._thread = threading.Thread(target=self._commit_loop, name="wal-commit", daemon=True)
        self._thread.start()

    @property
    def current_segment(self) -> int:
        return self._cur.seq

    def _open(self, seq: int) -> _Segment:
        path = segment_path(self.directory, seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            fsync_path(self.directory)
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return _Segment(seq, fd, size, size)

    def write(self, *parts: bytes | memoryview) -> tuple[int, int]:
        """Write one record whose payload is ``parts`` joined (not yet durable).

        Returns its ticket for ``wait_durable`` and the segment it went into; raises
        ``WALUnavailable`` when the record could not be written (nothing of it is kept).
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
            if self._broken or self._cur.size >= self._segment_bytes:
                try:
                    self._rotate_locked()
                except OSError as e:
                    raise self._error_locked("write", e) from e
            seg = self._cur
            try:
                written = os.writev(seg.fd, chunks)
                if written < size:  # a short write: finish it, so the record stays whole
                    rest = b"".join(chunks)[written:]
                    while rest:
                        rest = rest[os.write(seg.fd, rest) :]
            except OSError as e:
                self._cut_torn_locked(seg)
                raise self._error_locked("write", e) from e
            seg.size += size
            self._written += 1
            ticket = self._written
            self._wake.notify()
            return ticket, seg.seq

    def _cut_torn_locked(self, seg: _Segment) -> None:
        """Remove what a failed write left after the segment's last whole record."""
        try:
            os.ftruncate(seg.fd, seg.size)
        except OSError as e:
            log.error(
                "WAL segment %d: cannot cut a torn record (%s); starting a new one", seg.seq, e
            )
            self._broken = True

    def _error_locked(self, op: str, error: OSError) -> WALUnavailable:
        if not self._failing:
            self._failing = True
            log.error("WAL %s failed (%s): refusing pushes until the disk lets it write", op, error)
        if self._on_error is not None:
            self._on_error(op)
        return WALUnavailable(op, error)

    async def wait_durable(self, ticket: int) -> None:
        """Return once the record with ``ticket`` (and all before it) is fsynced; raises
        ``WALUnavailable`` if the fsync failed (the record will never count as durable)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        with self._lock:
            if ticket <= self._resolved:
                error = self._outcome_locked(ticket)
                if error is None:
                    return
                raise error
            fut: asyncio.Future[None] = loop.create_future()
            self._waiters.append((ticket, fut))
        await fut

    def _outcome_locked(self, ticket: int) -> WALUnavailable | None:
        """None if the resolved ``ticket`` is durable, else a fresh error for its writer."""
        if ticket <= self._forgotten_through and self._forgotten is not None:
            return WALUnavailable(self._forgotten.op, self._forgotten.error)
        for lo, hi, error in self._failed:
            if lo <= ticket <= hi:
                return WALUnavailable(error.op, error.error)
        return None

    def _rotate_locked(self, retire: bool = True) -> _Segment:
        """Start the next segment; returns the one it replaces (retired unless told not)."""
        new = self._open(self._cur.seq + 1)
        old, self._cur = self._cur, new
        self._broken = False
        if retire:
            self._retired.append(old)
        self._wake.notify()
        return old

    def delete_segments_before(self, seq: int) -> list[int]:
        """Delete closed segments numbered below ``seq`` (never the current one)."""
        with self._lock:
            limit = min(seq, self._cur.seq)
        gone = [s for s in list_segments(self.directory) if s < limit]
        for s in gone:
            segment_path(self.directory, s).unlink(missing_ok=True)
        if gone:
            fsync_path(self.directory)
        return gone

    def _commit_loop(self) -> None:
        while True:
            with self._lock:
                while self._written == self._resolved and not self._retired and not self._closed:
                    self._wake.wait()
                if self._closed and self._written == self._resolved and not self._retired:
                    return
                target = self._written
                batch = [*self._retired, self._cur]
                sizes = [seg.size for seg in batch]
                self._retired = []
            started = time.perf_counter()
            error: OSError | None = None
            if self._fsync_enabled:
                try:
                    for seg, size in zip(batch, sizes, strict=True):
                        if size > seg.synced:
                            os.fdatasync(seg.fd)
                except OSError as e:
                    error = e
            if self._on_fsync is not None:
                self._on_fsync(time.perf_counter() - started)
            with self._lock:
                if error is None:
                    for seg, size in zip(batch, sizes, strict=True):
                        seg.synced = max(seg.synced, size)
                    self._resolved = target
                    to_close = batch[:-1]  # retired segments; the last one may still be current
                    if self._failing:
                        self._failing = False
                        log.warning("WAL writes and fsyncs succeed again")
                else:
                    to_close = self._fail_unsynced_locked(batch, error)
                through = self._resolved
            for seg in to_close:
                with contextlib.suppress(OSError):
                    os.close(seg.fd)
            if self._loop is not None and not self._loop.is_closed():
                with contextlib.suppress(RuntimeError):
                    self._loop.call_soon_threadsafe(self._release, through)

    def _fail_unsynced_locked(self, batch: list[_Segment], error: OSError) -> list[_Segment]:
        """After a failed fsync: fail every unresolved ticket and abandon every segment holding
        unsynced bytes (see the module docstring); returns the segments to close."""
        failure = self._error_locked("fsync", error)
        lo, hi = self._resolved + 1, self._written
        if lo <= hi:
            self._failed.append((lo, hi, failure))
            if len(self._failed) > _FAILED_RANGES_KEPT:
                self._forgotten_through = self._failed[0][1]
                self._forgotten = self._failed.popleft()[2]
        self._resolved = hi
        poisoned = list({id(s): s for s in [*batch, *self._retired, self._cur]}.values())
        self._retired = []
        try:
            self._rotate_locked(retire=False)
        except OSError as e:
            log.error("WAL: cannot start a new segment (%s); the next write tries again", e)
            self._broken = True  # the current segment stays open but takes no more records
        for seg in poisoned:
            try:
                os.ftruncate(seg.fd, seg.synced)
            except OSError as e:
                log.error("WAL segment %d: cannot cut back its unsynced tail (%s)", seg.seq, e)
            seg.size = seg.synced
            if seg.synced == 0 and seg is not self._cur:
                # nothing acknowledged in it: no need to keep the file around
                with contextlib.suppress(OSError):
                    segment_path(self.directory, seg.seq).unlink()
        return [s for s in poisoned if s is not self._cur]

    def _release(self, through: int) -> None:
        with self._lock:
            ready = []
            while self._waiters and self._waiters[0][0] <= through:
                ticket, fut = self._waiters.popleft()
                ready.append((fut, self._outcome_locked(ticket)))
        for fut, error in ready:
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(None)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._wake.notify()
        self._thread.join()
        os.close(self._cur.fd)
