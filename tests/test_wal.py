"""WAL unit tests: records round-trip, group commit, torn and corrupt tails, segment cleanup,
and failed writes and fsyncs (injected): refused records, nothing acknowledged lost."""

from __future__ import annotations

import asyncio
import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from threadline.ingester.wal import WAL, WALUnavailable, list_segments, read_segment, segment_path


def test_records_round_trip_and_group_commit(tmp_path: Path) -> None:
    fsyncs: list[float] = []

    async def run() -> None:
        wal = WAL(tmp_path, 0, on_fsync=fsyncs.append)
        tickets = [wal.write(f"record-{i}".encode())[0] for i in range(200)]
        await asyncio.gather(*(wal.wait_durable(t) for t in tickets))
        wal.close()

    asyncio.run(run())
    assert [p.decode() for p in read_segment(segment_path(tmp_path, 0))] == [
        f"record-{i}" for i in range(200)
    ]
    # 200 writes made durable by far fewer fsyncs: they were grouped
    assert 1 <= len(fsyncs) < 200


def test_torn_tail_is_dropped_and_truncated(tmp_path: Path) -> None:
    async def run() -> None:
        wal = WAL(tmp_path, 3)
        for i in range(3):
            await wal.wait_durable(wal.write(b"x" * 100 + bytes([i]))[0])
        wal.close()

    asyncio.run(run())
    path = segment_path(tmp_path, 3)
    full = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(full - 5)
    assert len(list(read_segment(path, truncate_torn_tail=True))) == 2
    assert full == 3 * (8 + 101)
    assert path.stat().st_size == 2 * (8 + 101)  # cut back to the last whole record
    assert len(list(read_segment(path))) == 2


def test_corrupt_record_stops_the_segment(tmp_path: Path) -> None:
    async def run() -> None:
        wal = WAL(tmp_path, 0)
        for i in range(3):
            await wal.wait_durable(wal.write(bytes([i]) * 50)[0])
        wal.close()

    asyncio.run(run())
    path = segment_path(tmp_path, 0)
    data = bytearray(path.read_bytes())
    data[8 + 50 + 8 + 10] ^= 0xFF  # flip a byte inside the second record's payload
    path.write_bytes(bytes(data))
    assert list(read_segment(path)) == [bytes([0]) * 50]


def test_rotation_and_deletion(tmp_path: Path) -> None:
    async def run() -> None:
        wal = WAL(tmp_path, 0, segment_bytes=50)
        segs = []
        for _ in range(5):
            ticket, seg = wal.write(b"y" * 80)
            segs.append(seg)
            await wal.wait_durable(ticket)
        assert segs == [0, 1, 2, 3, 4]
        assert wal.delete_segments_before(3) == [0, 1, 2]
        assert list_segments(tmp_path) == [3, 4]
        # the current segment is never deleted
        wal.delete_segments_before(100)
        assert list_segments(tmp_path) == [4]
        wal.close()

    asyncio.run(run())


class Faults:
    """Makes the WAL's system calls fail on demand: ``writev`` after writing part of the data
    (as a write at ENOSPC does), ``ftruncate`` at once, ``fdatasync`` once ``fsync_gate`` is
    set (so that records can be written while the failing fsync runs)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writev = self.ftruncate = self.fdatasync = 0  # how many calls to fail
        self.fsync_gate = threading.Event()
        self.fsync_gate.set()
        real_writev, real_ftruncate, real_fdatasync = os.writev, os.ftruncate, os.fdatasync

        def writev(fd: int, chunks: list[bytes]) -> int:
            if self.writev:
                self.writev -= 1
                os.write(fd, b"".join(chunks)[:20])  # part of the record reaches the file
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            return real_writev(fd, chunks)

        def ftruncate(fd: int, length: int) -> None:
            if self.ftruncate:
                self.ftruncate -= 1
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            real_ftruncate(fd, length)

        def fdatasync(fd: int) -> None:
            if self.fdatasync:
                self.fdatasync -= 1
                self.fsync_gate.wait()
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            real_fdatasync(fd)

        monkeypatch.setattr(os, "writev", writev)
        monkeypatch.setattr(os, "ftruncate", ftruncate)
        monkeypatch.setattr(os, "fdatasync", fdatasync)


async def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.001)


def replayed(directory: Path) -> list[bytes]:
    return [p for s in list_segments(directory) for p in read_segment(segment_path(directory, s))]


def test_failed_write_leaves_no_torn_record_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults(monkeypatch)
    failures: list[str] = []

    async def run() -> None:
        wal = WAL(tmp_path, 0, on_error=failures.append)
        await wal.wait_durable(wal.write(b"a" * 100)[0])
        faults.writev = 1
        with pytest.raises(WALUnavailable, match="WAL write failed: No space left on device"):
            wal.write(b"refused" * 10)
        # later records are acknowledged and stay readable: the partial one was cut away
        for p in (b"b" * 100, b"c" * 100):
            ticket, seg = wal.write(p)
            assert seg == 0
            await wal.wait_durable(ticket)
        wal.close()

    asyncio.run(run())
    assert failures == ["write"]
    assert replayed(tmp_path) == [b"a" * 100, b"b" * 100, b"c" * 100]
    assert segment_path(tmp_path, 0).stat().st_size == 3 * (8 + 100)


def test_failed_write_that_cannot_be_cut_back_moves_to_a_new_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults(monkeypatch)

    async def run() -> None:
        wal = WAL(tmp_path, 0)
        await wal.wait_durable(wal.write(b"a" * 100)[0])
        faults.writev = faults.ftruncate = 1
        with pytest.raises(WALUnavailable):
            wal.write(b"refused" * 10)
        ticket, seg = wal.write(b"b" * 100)
        assert seg == 1  # the torn bytes stay at the end of segment 0, behind no record
        await wal.wait_durable(ticket)
        wal.close()

    asyncio.run(run())
    assert replayed(tmp_path) == [b"a" * 100, b"b" * 100]


def test_failed_fsync_fails_every_waiter_it_covered_and_they_never_become_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults(monkeypatch)
    failures: list[str] = []

    async def run() -> None:
        wal = WAL(tmp_path, 0, on_error=failures.append)
        await wal.wait_durable(wal.write(b"a" * 100)[0])
        faults.fdatasync = 1
        faults.fsync_gate.clear()
        tickets = [wal.write(bytes([0]) * 50)[0]]
        # the rest are written while that (failing) fsync runs: they fail with it
        await wait_until(lambda: faults.fdatasync == 0)
        tickets += [wal.write(bytes([i]) * 50)[0] for i in range(1, 20)]
        faults.fsync_gate.set()
        outcomes = await asyncio.gather(
            *(wal.wait_durable(t) for t in tickets), return_exceptions=True
        )
        assert all(isinstance(o, WALUnavailable) for o in outcomes), outcomes
        assert "WAL fsync failed: Input/output error; retry later" in str(outcomes[0])
        # asked again later, a refused record is still refused (never durable after all)
        with pytest.raises(WALUnavailable):
            await wal.wait_durable(tickets[0])
        # the segment with the unsynced tail is abandoned: new records go to a fresh one
        ticket, seg = wal.write(b"b" * 100)
        assert seg == 1
        await wal.wait_durable(ticket)
        wal.close()

    asyncio.run(run())
    assert failures == ["fsync"]
    # the refused records were cut off segment 0 again
    assert replayed(tmp_path) == [b"a" * 100, b"b" * 100]
    assert segment_path(tmp_path, 0).stat().st_size == 8 + 100


def test_failed_fsync_of_an_empty_segment_removes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults(monkeypatch)

    async def run() -> None:
        wal = WAL(tmp_path, 0)
        faults.fdatasync = 2
        for expected_seg in (0, 1):
            ticket, seg = wal.write(b"refused")
            assert seg == expected_seg
            with pytest.raises(WALUnavailable):
                await wal.wait_durable(ticket)
        ticket, seg = wal.write(b"kept")
        await wal.wait_durable(ticket)
        wal.close()

    asyncio.run(run())
    # segments holding only refused records are gone; nothing refused is replayed
    assert list_segments(tmp_path) == [2]
    assert replayed(tmp_path) == [b"kept"]
