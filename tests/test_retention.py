"""Retention: blocks whose newest span is older than ``block_retention`` (per tenant
overridable) are marked compacted, vanish from queries at once, and are deleted after
``compacted_block_retention``; newer data stays."""

from __future__ import annotations

import time
from pathlib import Path

import orjson

from conftest import Server
from storage_helpers import request, start_server, table, trace_id
from threadline.compactor.compactor import Compactor
from threadline.config import Config, load_config
from threadline.storage.backend import LocalBackend
from threadline.storage.block_writer import write_block
from threadline.storage.blocklist import Blocklist

HOUR_NS = 3600 * 10**9


def test_retention_marks_then_deletes_old_blocks(tmp_path: Path) -> None:
    cfg = Config.model_validate(
        {
            "data_dir": str(tmp_path),
            "compactor": {
                "compaction": {"block_retention": "2h", "compacted_block_retention": "10m"},
                "overrides": {"long": {"block_retention": "10h"}},
            },
        }
    )
    blocklist = Blocklist(LocalBackend(tmp_path / "blocks"), index_builder=True)
    compactor = Compactor(cfg, blocklist)
    now = time.time_ns()
    ids = {}
    for tenant in ("short", "long"):
        for age in (0, 3, 12):
            meta = write_block(
                blocklist.backend,
                tenant,
                table([age], range(1, 3), now - age * HOUR_NS),
                cfg.storage.block,
            )
            ids[tenant, age] = meta.block_id
    blocklist.load()
    report = compactor.run_cycle(compact=False)
    assert report.expired == 3  # short: 3h and 12h; long: 12h
    assert {b.id for b in blocklist.blocks("short")} == {ids["short", 0]}
    assert {b.id for b in blocklist.blocks("long")} == {ids["long", 0], ids["long", 3]}
    assert compactor.retention_for("long") == 10 * 3600
    # marked, not yet deleted: a query that already holds the block can finish
    assert (tmp_path / "blocks" / "short" / ids["short", 3] / "meta.compacted.json").exists()
    report = compactor.run_cycle(now=time.time() + 11 * 60, compact=False)
    assert report.deleted == 3
    assert not (tmp_path / "blocks" / "short" / ids["short", 3]).exists()
    assert (tmp_path / "blocks" / "long" / ids["long", 3]).exists()


def test_retention_defaults_are_tempos() -> None:
    c = load_config(None).compactor.compaction
    assert c.block_retention == 336 * 3600
    assert c.compacted_block_retention == 3600
    assert c.compaction_window == 3600
    assert c.compaction_cycle == 30


def _found(server: Server, n: int, tenant: str) -> bool:
    r = server.get(f"/api/traces/{trace_id(n).hex()}", headers={"X-Scope-OrgID": tenant})
    assert r.status in (200, 404), r.data
    return r.status == 200


def test_short_retention_in_a_running_server(tmp_path: Path) -> None:
    cfg = {
        "multitenancy_enabled": True,
        "compactor": {
            "compaction": {"block_retention": "1h", "compaction_cycle": "200ms"},
            "overrides": {"keeper": {"block_retention": "24h"}},
        },
    }
    server = start_server(tmp_path / "data", cfg)
    try:
        old = time.time_ns() - 3 * HOUR_NS
        for tenant in ("acme", "keeper"):
            headers = {"Content-Type": "application/x-protobuf", "X-Scope-OrgID": tenant}
            for n, start in ((1, old), (2, None)):
                body = request([n], range(1, 5), start)
                url = server.otlp_http + "/v1/traces"
                assert server.request("POST", url, body=body, headers=headers).status == 200
                server.flush(tenant)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _found(server, 1, "acme"):
            time.sleep(0.1)
        assert not _found(server, 1, "acme"), "data past retention is still served"
        assert _found(server, 2, "acme"), "recent data disappeared"
        assert _found(server, 1, "keeper") and _found(server, 2, "keeper")
        r = server.get("/api/search?q=%7B%7D&limit=100", headers={"X-Scope-OrgID": "acme"})
        found = {t["traceID"].rjust(32, "0") for t in orjson.loads(r.data)["traces"]}
        assert found == {trace_id(2).hex()}
        assert server.metric("threadline_compactor_blocks_expired_total", tenant="acme") == 1
    finally:
        server.stop()
