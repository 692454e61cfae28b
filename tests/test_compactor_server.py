"""Compaction in running servers: inside the monolith, and as ``--target compactor`` in a
separate process sharing the blocks directory with a server that only reads the tenant index."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import orjson
import urllib3
import yaml

from conftest import HOST, Server, free_port
from storage_helpers import request, start_server, trace_id

TRACES = list(range(1, 21))


def push(server: Server, body: bytes, tenant: str | None = None) -> None:
    headers = {"Content-Type": "application/x-protobuf"}
    if tenant:
        headers["X-Scope-OrgID"] = tenant
    r = server.request("POST", server.otlp_http + "/v1/traces", body=body, headers=headers)
    assert r.status == 200, r.data


def spans_of(server: Server, n: int) -> list[str]:
    r = server.get(f"/api/traces/{trace_id(n).hex()}")
    if r.status == 404:
        return []
    assert r.status == 200, r.data
    doc = orjson.loads(r.data)
    return [s["spanId"] for b in doc["batches"] for ss in b["scopeSpans"] for s in ss["spans"]]


def search_doc(server: Server) -> dict:
    r = server.get("/api/search?q=%7B%7D&limit=1000&spss=100")
    assert r.status == 200, r.data
    return orjson.loads(r.data)


def search_count(server: Server) -> int:
    """Spans matched by a TraceQL search over everything (a span in two blocks counts once)."""
    doc = search_doc(server)
    return sum(ss["matched"] for t in doc["traces"] for ss in t["spanSets"])


def stored_spans(server: Server) -> int:
    """Spans in the blocks a search over everything reads (duplicates and all)."""
    return int(search_doc(server)["metrics"]["inspectedSpans"])


def metas(data_dir: Path) -> list[Path]:
    found = (data_dir / "blocks" / "single-tenant").glob("*/meta.json")
    return [m for m in found if not m.parent.name.startswith(".")]


def write_split_blocks(server: Server) -> int:
    """Four blocks: every trace split over two of them, plus an exact re-push (duplicates)."""
    now = time.time_ns()
    push(server, request(TRACES, range(1, 5), now))
    server.flush()
    push(server, request(TRACES, range(5, 9), now))
    server.flush()
    push(server, request(TRACES[:5], range(1, 5), now))  # a retried push: exact duplicates
    server.flush()
    push(server, request(TRACES, range(9, 10), now))
    server.flush()
    return len(TRACES) * 9


def wait_for(check, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_monolith_compacts_in_the_background(tmp_path: Path) -> None:
    # a 1s window: once it is over, blocks of every level in it are merged (within the current
    # window only blocks of one level are), so whatever the timing of cycles and flushes, all
    # four blocks end up in one
    compaction = {"compaction_cycle": "300ms", "compaction_window": "1s"}
    cfg = {"compactor": {"compaction": compaction}}
    server = start_server(tmp_path / "data", cfg)
    try:
        expected = write_split_blocks(server)
        wait_for(lambda: len(metas(server.data_dir)) == 1)
        assert server.metric("threadline_compactor_duplicate_spans_dropped_total") == 5 * 4
        for n in TRACES:
            assert len(spans_of(server, n)) == 9
        assert search_count(server) == expected
        meta = orjson.loads(metas(server.data_dir)[0].read_bytes())
        assert meta["compactionLevel"] >= 1 and meta["totalSpans"] == expected
    finally:
        server.stop()
    # after a restart the compacted block is all there is
    server.start()
    try:
        assert search_count(server) == expected
        assert all(len(spans_of(server, n)) == 9 for n in TRACES)
    finally:
        server.stop()


class CompactorProcess:
    def __init__(self, data_dir: Path, config: dict[str, object]) -> None:
        self.port = free_port()
        path = data_dir.parent / "compactor.yaml"
        path.write_text(yaml.safe_dump(config))
        self.log = data_dir.parent / "compactor.log"
        cmd = [
            sys.executable,
            "-m",
            "threadline.cli",
            "serve",
            "--target",
            "compactor",
            "--config",
            str(path),
            "--data-dir",
            str(data_dir),
            "--host",
            HOST,
            "--http-port",
            str(self.port),
        ]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("ab"), stderr=subprocess.STDOUT)
        http = urllib3.PoolManager(retries=False, timeout=5)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                if http.request("GET", f"http://{HOST}:{self.port}/ready").status == 200:
                    return
            except urllib3.exceptions.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError("compactor not ready")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)


def test_separate_compactor_process_and_server_agree(tmp_path: Path) -> None:
    data = tmp_path / "data"
    shared = {"compactor": {"compaction": {"compaction_cycle": "300ms"}}}
    # the server runs no compactor: it learns about blocks from the tenant index
    server_cfg = {
        "compactor": {"enabled": False},
        "storage": {"trace": {"blocklist_poll": "200ms"}},
    }
    server = start_server(data, server_cfg)
    compactor = None
    try:
        expected = write_split_blocks(server)
        # the duplicates are still in blocks of their own, but listed once
        assert search_count(server) == expected
        assert stored_spans(server) == expected + 5 * 4
        # a process of its own has a data directory of its own; the blocks directory is shared
        blocks = {"storage": {"trace": {"local": {"path": str(data / "blocks")}}}}
        compactor = CompactorProcess(tmp_path / "compactor-data", shared | blocks)
        wait_for(lambda: len(metas(data)) == 1)
        index = data / "blocks" / "single-tenant" / "index.json.gz"
        wait_for(index.exists)
        # the server's poll picks the compacted block up from the index and hides the inputs
        wait_for(lambda: stored_spans(server) == expected)
        assert search_count(server) == expected
        for n in TRACES:
            assert len(spans_of(server, n)) == 9
    finally:
        if compactor is not None:
            compactor.stop()
        server.stop()
