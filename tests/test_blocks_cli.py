"""``threadline blocks list|inspect|verify|compact`` over a data directory."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from storage_helpers import table
from threadline.cli import main
from threadline.config import BlockConfig
from threadline.model.schema import ARRAY_COLUMNS, BLOCK_SCHEMA
from threadline.storage.block_writer import write_block
from threadline.storage.meta import BlockMeta


def make_blocks(data: Path) -> list[BlockMeta]:
    now = time.time_ns()
    metas = [
        write_block(
            data / "blocks", "acme", table([i, 50], range(1 + i, 2 + i), now), BlockConfig()
        )
        for i in range(3)
    ]
    metas.append(write_block(data / "blocks", "other", table([9], range(1, 4)), BlockConfig()))
    return metas


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["blocks", *args])
    return result.exit_code, result.output


def test_list_and_inspect(tmp_path: Path) -> None:
    metas = make_blocks(tmp_path)
    code, out = run("list", "--data-dir", str(tmp_path))
    assert code == 0, out
    assert out.splitlines()[0].split() == [
        "TENANT", "BLOCK", "ID", "STATE", "LVL", "START", "END", "SPANS", "TRACES", "SIZE",
    ]  # fmt: skip
    for m in metas:
        assert m.block_id in out
    assert "4 blocks, 9 spans" in out
    code, out = run("list", "--data-dir", str(tmp_path), "--tenant", "acme", "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["spans"] for r in rows] == [2, 2, 2] and {r["tenant"] for r in rows} == {"acme"}
    assert rows[0]["traces"] == 2 and rows[0]["compactionLevel"] == 0

    code, out = run("inspect", "--data-dir", str(tmp_path), metas[0].block_id[:8])
    assert code == 0, out
    doc = json.loads(out)
    assert doc["meta"]["blockID"] == metas[0].block_id
    assert doc["meta"]["checksums"].keys() == {"data.parquet", "bloom", "traces"}
    assert [f["name"] for f in doc["schema"]] == [
        n for n in BLOCK_SCHEMA.names if n not in ARRAY_COLUMNS.names
    ]
    assert doc["parquet"]["rows"] == 2
    code, out = run("inspect", "--data-dir", str(tmp_path), "nope")
    assert code == 1 and "no block 'nope'" in out


def test_verify_finds_corruption_and_bloom_gaps(tmp_path: Path) -> None:
    metas = make_blocks(tmp_path)
    code, out = run("verify", "--data-dir", str(tmp_path))
    assert code == 0, out
    assert "4 blocks verified, 0 with problems" in out
    assert "every trace id in the bloom filter" in out
    # flip one byte in the middle of a data file
    data = tmp_path / "blocks" / "acme" / metas[0].block_id / "data.parquet"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    # clear the bloom filter of another block (and fix its checksum, so only the bloom check
    # can notice)
    block_dir = tmp_path / "blocks" / "acme" / metas[1].block_id
    bloom = block_dir / "bloom"
    bloom.write_bytes(np.zeros(len(bloom.read_bytes()), dtype=np.uint8).tobytes())
    meta = json.loads((block_dir / "meta.json").read_text())
    meta["checksums"].pop("bloom")
    (block_dir / "meta.json").write_text(json.dumps(meta))
    code, out = run("verify", "--data-dir", str(tmp_path))
    assert code == 1, out
    assert f"FAIL acme/{metas[0].block_id}: data.parquet: sha256" in out
    assert f"FAIL acme/{metas[1].block_id}: 2 rows have a trace id the bloom filter" in out
    assert "4 blocks verified, 2 with problems" in out
    code, out = run("verify", "--data-dir", str(tmp_path), metas[2].block_id)
    assert code == 0, out


def test_compact_on_demand(tmp_path: Path) -> None:
    make_blocks(tmp_path)
    code, out = run("compact", "--data-dir", str(tmp_path), "--tenant", "acme")
    assert code == 0, out
    report = json.loads(out[out.index("{") :])
    assert report["compactions"] == 1 and report["blocksIn"] == 3
    code, out = run("list", "--data-dir", str(tmp_path), "--json")
    rows = [json.loads(line) for line in out.splitlines()]
    acme = [r for r in rows if r["tenant"] == "acme"]
    assert len(acme) == 1 and acme[0]["compactionLevel"] == 1 and acme[0]["spans"] == 6
    assert acme[0]["traces"] == 4  # trace 50 was in all three blocks
    code, out = run("list", "--data-dir", str(tmp_path), "--json", "--compacted")
    states = [json.loads(line)["state"] for line in out.splitlines()]
    assert states.count("compacted") == 3
    code, out = run("verify", "--data-dir", str(tmp_path))
    assert code == 0, out
