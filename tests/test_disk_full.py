"""Disk full and failing storage: pushes are refused with 503 / UNAVAILABLE (never 500), nothing
acknowledged is lost or corrupted, queries keep working, and pushes are acknowledged again once
space returns, without a restart.

The server tests run on a small tmpfs (they need root to mount it) filled up by a filler file, so
that the disk fills after a few pushes; freeing the filler makes room again.
"""

from __future__ import annotations

import asyncio
import base64
import errno
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from conftest import Server
from threadline.config import Config
from threadline.distributor.distributor import Distributor, Overloaded
from threadline.ingester.ingester import Ingester
from threadline.ingester.wal import WAL, WALUnavailable, list_segments, read_segment, segment_path
from threadline.model.otlp_decode import decode_export_request
from threadline.selfmetrics import SelfMetrics
from threadline.storage.blocklist import Blocklist

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
SPANS = 50  # per push (one trace)
TMPFS_BYTES = 32 * 2**20
ROOM_LEFT = 3 * 2**20  # what the filler leaves free


@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A fresh 32 MiB tmpfs at ``tmp_path / "data"``."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs (a disk that can fill up) needs root")
    mnt = tmp_path / "data"
    mnt.mkdir()
    r = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        # lazily: a server that outlived a failed test may still hold files open
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt: Path) -> Path:
    """A filler file taking all but ``ROOM_LEFT`` of the file system."""
    st = os.statvfs(mnt)
    filler = mnt / "filler"
    with open(filler, "wb") as f:
        os.posix_fallocate(f.fileno(), 0, st.f_bavail * st.f_frsize - ROOM_LEFT)
    return filler


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def trace_request(n: int) -> tuple[bytes, str]:
    """One trace of ``SPANS`` spans with incompressible attributes (blocks fill the disk too)."""
    trace_id = n.to_bytes(8, "big") + os.urandom(8)
    req = ExportTraceServiceRequest()
    rs = req.resource_spans.add()
    rs.resource.attributes.add(key="service.name").value.string_value = "disk-full"
    ss = rs.scope_spans.add()
    now = time.time_ns()
    for i in range(SPANS):
        span = ss.spans.add()
        span.trace_id = trace_id
        span.span_id = (i + 1).to_bytes(8, "big")
        if i:
            span.parent_span_id = (1).to_bytes(8, "big")
        span.name = f"op-{i}"
        span.start_time_unix_nano = now
        span.end_time_unix_nano = now + 1000
        span.attributes.add(key="payload").value.string_value = base64.b64encode(
            os.urandom(600)
        ).decode()
    return req.SerializeToString(), trace_id.hex()


class Pusher:
    """Pushes one trace per call, alternating OTLP/HTTP and OTLP/gRPC; remembers what was
    acknowledged and what was refused (anything but 200 / OK or 503 / UNAVAILABLE fails)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.channel = grpc.insecure_channel(server.grpc_target)
        self.export = self.channel.unary_unary(EXPORT)
        self.acked: list[str] = []
        self.refused: list[str] = []
        self.messages: list[str] = []
        self.n = 0

    def push(self) -> bool:
        self.n += 1
        body, trace = trace_request(self.n)
        if self.n % 2:
            r = self.server.request(
                "POST",
                self.server.otlp_http + "/v1/traces",
                body=body,
                headers={"Content-Type": "application/x-protobuf"},
            )
            assert r.status in (200, 503), (r.status, r.data)
            ok, message = r.status == 200, r.data.decode(errors="replace")
        else:
            try:
                self.export(body, timeout=30)
                ok, message = True, ""
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNAVAILABLE, (e.code(), e.details())
                ok, message = False, e.details()
        (self.acked if ok else self.refused).append(trace)
        if not ok:
            self.messages.append(message)
        return ok

    def close(self) -> None:
        self.channel.close()


def span_count(server: Server, trace: str) -> int:
    r = server.get(f"/api/traces/{trace}")
    if r.status == 404:
        return 0
    assert r.status == 200, r.data
    doc = orjson.loads(r.data)
    return sum(len(ss["spans"]) for b in doc["batches"] for ss in b["scopeSpans"])


@pytest.mark.parametrize("stop", ["sigkill", "sigterm"])
def test_disk_full_refuses_pushes_keeps_every_acknowledged_span_and_recovers(
    tmpfs: Path, stop: str
) -> None:
    cfg = {
        # blocks are written on /flush only (and retried after a failure), so that what is
        # pushed after the disk had filled is still only in the WAL at the SIGKILL
        "ingester": {
            "trace_idle_period": "1h",
            "max_block_duration": "1h",
            "flush_check_period": "50ms",
            "flush_retry_min_backoff": "100ms",
            "flush_retry_max_backoff": "500ms",
        },
        "wal": {"segment_bytes": "1MiB"},
    }
    server = Server(tmpfs, cfg).start()
    pusher = Pusher(server)
    try:
        for _ in range(5):
            assert pusher.push()
        filler = fill(tmpfs)
        deadline = time.monotonic() + 60
        while pusher.push():
            assert time.monotonic() < deadline, "the disk never filled up"
        for _ in range(10):
            pusher.push()
        assert all("No space left on device" in m and "retry later" in m for m in pusher.messages)
        assert server.metric("threadline_wal_failures_total", op="write") >= 1
        assert server.metric("threadline_receiver_refused_requests_total", reason="wal_unavailable")
        # a block write fails on the full disk: 503, the spans stay (memory and WAL), no staging
        r = server.request("POST", server.api + "/flush")
        assert r.status == 503, (r.status, r.data)
        assert server.metric("threadline_ingester_flush_failures_total") >= 1
        assert not list(tmpfs.glob("blocks/*/.tmp-*")), "a failed block write left its staging"
        # queries keep working while the disk is full
        assert server.get("/ready").status == 200
        for trace in pusher.acked:
            assert span_count(server, trace) == SPANS, trace
        assert server.get("/api/search?q=%7B%7D&limit=5").status == 200

        # space returns: the block write is retried by itself, pushes are acknowledged again
        filler.unlink()
        wait_for(lambda: server.metric("threadline_ingester_blocks_written_total") >= 1)
        refused_while_full = len(pusher.refused)
        for _ in range(10):
            assert pusher.push()
        acked, refused = list(pusher.acked), list(pusher.refused)
        assert refused_while_full and len(refused) == refused_while_full
        pusher.close()

        offset = server.log_path.stat().st_size
        if stop == "sigkill":
            server.kill()  # the last pushes are only in the WAL now
        else:
            assert server.proc is not None
            server.proc.send_signal(signal.SIGTERM)
            assert server.proc.wait(timeout=60) == 0, server.log()
        server.start()
        restart_log = server.log_path.read_bytes()[offset:].decode(errors="replace")
        assert "torn/corrupt tail" not in restart_log, restart_log
        missing = [t for t in acked if span_count(server, t) != SPANS]
        assert not missing, f"{len(missing)} of {len(acked)} acknowledged traces lost or partial"
        # nothing refused was kept (its record was cut off the WAL, or never written)
        stored = [t for t in refused if span_count(server, t)]
        assert not stored, f"{len(stored)} refused traces were stored"
        again = Pusher(server)
        assert again.push() and again.push()
        again.close()
        server.flush()
    finally:
        server.stop()


def test_wal_on_a_full_disk_keeps_every_acknowledged_record(tmpfs: Path) -> None:
    """The WAL alone: records acknowledged after the disk filled (and room returned) survive
    replay; before, a partial record left at ENOSPC hid every later one."""
    filler = fill(tmpfs)

    async def run() -> tuple[int, int]:
        wal = WAL(tmpfs / "wal", 0, segment_bytes=1 << 30)
        acked = refused = 0
        while refused < 3:
            try:
                await wal.wait_durable(wal.write(os.urandom(3000) + b"%d" % acked)[0])
                acked += 1
            except WALUnavailable as e:
                assert e.op == "write" and e.error.errno == errno.ENOSPC
                refused += 1
        filler.unlink()
        for _ in range(50):
            await wal.wait_durable(wal.write(os.urandom(3000) + b"%d" % acked)[0])
            acked += 1
        wal.close()
        return acked, refused

    acked, _ = asyncio.run(run())
    payloads = [
        p
        for s in list_segments(tmpfs / "wal")
        for p in read_segment(segment_path(tmpfs / "wal", s))
    ]
    assert [p[3000:] for p in payloads] == [b"%d" % i for i in range(acked)]


def test_failed_fsync_refuses_the_push_and_forgets_its_spans(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process: an fsync failing (EIO) refuses the pushes it covered as ``Overloaded``
    (503 / UNAVAILABLE), their spans leave memory, and the next pushes are acknowledged."""
    cfg = Config.model_validate({"data_dir": str(tmp_path)})
    metrics = SelfMetrics()
    real_fdatasync = os.fdatasync
    failing = [1]

    def fdatasync(fd: int) -> None:
        if failing[0]:
            failing[0] -= 1
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        real_fdatasync(fd)

    def ingester(metrics: SelfMetrics) -> Ingester:
        blocklist = Blocklist(tmp_path / "blocks")
        blocklist.load()
        ing = Ingester(cfg, blocklist, metrics, tmp_path / "wal")
        ing.start()
        return ing

    async def run() -> tuple[str, str]:
        ing = ingester(metrics)
        distributor = Distributor(ing, metrics)
        refused, _ = trace_request(1)
        kept, kept_id = trace_request(2)
        monkeypatch.setattr(os, "fdatasync", fdatasync)
        with pytest.raises(Overloaded, match="WAL fsync failed: Input/output error"):
            await distributor.push_otlp("t", refused, "test")
        assert ing.find_trace("t", bytes.fromhex(trace_request_id(refused))) == []
        result = await distributor.push_otlp("t", kept, "test")
        assert result.accepted == SPANS
        ing.close()
        return trace_request_id(refused), kept_id

    refused_id, kept_id = asyncio.run(run())
    assert metrics.wal_failures.labels("fsync")._value.get() == 1
    assert metrics.requests_refused.labels("test", "wal_unavailable")._value.get() == 1
    # after a restart only the acknowledged push is there
    ing = ingester(SelfMetrics())
    assert ing.find_trace("t", bytes.fromhex(refused_id)) == []
    assert sum(t.num_rows for t in ing.find_trace("t", bytes.fromhex(kept_id))) == SPANS
    ing.close()


def trace_request_id(body: bytes) -> str:
    return decode_export_request(body).batch.column("trace_id")[0].as_py().hex()
