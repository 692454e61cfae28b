"""WAL unit tests: records round-trip, group commit, torn and corrupt tails, segment cleanup."""

from __future__ import annotations

import asyncio
from pathlib import Path

from threadline.ingester.wal import WAL, list_segments, read_segment, segment_path


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
