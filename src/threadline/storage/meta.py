"""Block meta: what a block holds (``meta.json``), read with the block list and kept in memory."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field


def rfc3339(unix_nano: int) -> str:
    return (
        dt.datetime.fromtimestamp(unix_nano / 1e9, tz=dt.UTC)
        .replace(microsecond=0)
        .strftime("%Y-%m-%dT%H:%M:%SZ")
    )


class RowGroupRange(BaseModel):
    """Row count of one Parquet row group and, in blocks sorted by trace id (format tl1,
    before the trace index), its trace-id range (hex)."""

    model_config = ConfigDict(populate_by_name=True)
    min_trace_id: str | None = Field(None, alias="minTraceID")
    max_trace_id: str | None = Field(None, alias="maxTraceID")
    rows: int
    # bit i set: the block's nestedColumns[i] has no entries in this row group (point reads
    # skip it); None: not recorded, read everything
    empty_mask: int | None = Field(None, alias="emptyMask")


class BlockMeta(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    format: str
    block_id: str = Field(alias="blockID")
    tenant_id: str = Field(alias="tenantID")
    start_time: str = Field(alias="startTime")
    end_time: str = Field(alias="endTime")
    start_unix_nano: int = Field(alias="startUnixNano")
    end_unix_nano: int = Field(alias="endUnixNano")
    total_objects: int = Field(alias="totalObjects")  # traces, as Tempo counts them
    total_spans: int = Field(alias="totalSpans")
    size: int  # bytes of data.parquet
    compaction_level: int = Field(0, alias="compactionLevel")
    total_records: int = Field(alias="totalRecords")  # row groups
    footer_size: int = Field(alias="footerSize")
    bloom_bits: int = Field(alias="bloomBits")
    bloom_hashes: int = Field(alias="bloomHashes")
    row_groups: list[RowGroupRange] = Field(alias="rowGroups")
    # the map and list columns, in the order of the row groups' emptyMask bits
    nested_columns: list[str] = Field(default_factory=list, alias="nestedColumns")
    # newest WAL segment whose spans of this tenant are all in this block (or were carried over)
    wal_through: int = Field(-1, alias="walThrough")
    # sha256 (hex) of each file of the block, recorded at write time (``threadline blocks verify``)
    checksums: dict[str, str] = Field(default_factory=dict)
    # blocks this one was compacted from: once this block is visible they are hidden, even
    # before the compactor has marked them compacted (see ``Blocklist``)
    compacted_from: list[str] = Field(default_factory=list, alias="compactedFrom")
    # the keys of each attribute map column (None: not recorded, queries read the maps), and
    # the dedicated attribute columns the data file has (model.dedicated)
    attribute_keys: dict[str, list[str]] | None = Field(None, alias="attributeKeys")
    dedicated_columns: list[str] = Field(default_factory=list, alias="dedicatedColumns")

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(by_alias=True), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, raw: bytes) -> BlockMeta:
        data: dict[str, Any] = orjson.loads(raw)
        return cls.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(by_alias=True)


class CompactedBlockMeta(BlockMeta):
    """``meta.compacted.json``: the block's meta and when it was compacted away (or expired)."""

    compacted_time: str = Field(alias="compactedTime")
    compacted_unix: float = Field(alias="compactedUnix")

    @classmethod
    def from_meta(cls, meta: BlockMeta, when: float) -> CompactedBlockMeta:
        data = meta.to_dict()
        data["compactedTime"] = rfc3339(int(when * 1e9))
        data["compactedUnix"] = when
        return cls.model_validate(data)

    @classmethod
    def from_json(cls, raw: bytes) -> CompactedBlockMeta:
        data: dict[str, Any] = orjson.loads(raw)
        return cls.model_validate(data)
