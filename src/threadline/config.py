"""The one threadline configuration: a YAML file validated into typed sections.

Unknown keys and wrong types are refused with a message naming the key; durations accept
Go/Prometheus style strings (``5s``, ``1m30s``, ``250ms``) or plain seconds, sizes accept plain
bytes or ``100MiB``/``64MB`` style strings.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    model_validator,
)

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h|d|w)")
_DURATION_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 2**10,
    "MIB": 2**20,
    "GIB": 2**30,
    "TIB": 2**40,
}


def parse_duration(value: Any) -> float:
    """Seconds from ``5s``/``1m30s``/``250ms`` or a number of seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration like '5s' or a number of seconds")
    seconds: float | None = None
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            seconds = float(text)
        except ValueError:
            parts = _DURATION_PART.findall(text)
            if parts and "".join(n + u for n, u in parts) == text:
                seconds = sum(float(n) * _DURATION_UNITS[u] for n, u in parts)
    if seconds is not None and math.isfinite(seconds) and seconds >= 0:
        return seconds
    raise ValueError(f"invalid duration {value!r}: use a duration like '5s', '1m30s' or '250ms'")


def parse_size(value: Any) -> int:
    """Bytes from an int or ``100MiB``/``64MB``/``512KB``."""
    if isinstance(value, bool):
        raise ValueError("a size in bytes like 104857600 or '100MiB'")
    if isinstance(value, int) and value >= 0:
        return value
    if isinstance(value, str) and (m := _SIZE.match(value)):
        size = float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "B").upper()]
        if math.isfinite(size) and size < 2**63:
            return int(size)
    raise ValueError(f"invalid size {value!r}: use bytes or a size like '100MiB'")


Duration = Annotated[float, BeforeValidator(parse_duration)]
Size = Annotated[int, BeforeValidator(parse_size)]
Port = Annotated[int, Field(ge=0, le=65535)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class TLSConfig(_Section):
    """TLS on every TCP listener (HTTP and gRPC) once ``cert_file`` and ``key_file`` are set."""

    cert_file: Path | None = None  # PEM: the server's certificate (chain)
    key_file: Path | None = None  # PEM: its private key
    # PEM: when set, clients must present a certificate signed by one of these CAs (mutual TLS)
    client_ca_file: Path | None = None

    @model_validator(mode="after")
    def _both_or_neither(self) -> TLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("server.tls needs both cert_file and key_file")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("server.tls.client_ca_file needs cert_file and key_file")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    http_port: Port = 3200
    http_api_prefix: str = ""
    # on SIGTERM/SIGINT, requests under way get this long to finish before live traces are
    # written to blocks and the process exits
    graceful_shutdown_timeout: Duration = 30.0
    # a request body that takes longer to arrive is answered 408 (slow or stalled clients)
    http_server_read_timeout: Duration = 30.0
    # Tempo's StreamingQuerier gRPC service on the HTTP port beside HTTP/1.1 (Grafana's
    # streaming search dials the data source URL); Tempo's key, on by default here
    stream_over_http_enabled: bool = True
    tls: TLSConfig = TLSConfig()


class OTLPReceiverConfig(_Section):
    grpc_port: Port = 4317
    http_port: Port = 4318


class ZipkinReceiverConfig(_Section):
    port: Port = 9411


class JaegerReceiverConfig(_Section):
    thrift_http_port: Port = 14268
    grpc_port: Port = 14250
    thrift_compact_port: Port = 6831  # agent UDP, compact thrift
    thrift_binary_port: Port = 6832  # agent UDP, binary thrift


class OpenCensusReceiverConfig(_Section):
    # the OpenCensus agent's TraceService/Export (gRPC); off unless set (the agent's port: 55678)
    port: Port = 0


class ReceiversConfig(_Section):
    """Every receiver's port; 0 turns that receiver off."""

    otlp: OTLPReceiverConfig = OTLPReceiverConfig()
    zipkin: ZipkinReceiverConfig = ZipkinReceiverConfig()
    jaeger: JaegerReceiverConfig = JaegerReceiverConfig()
    opencensus: OpenCensusReceiverConfig = OpenCensusReceiverConfig()


class DistributorConfig(_Section):
    receivers: ReceiversConfig = ReceiversConfig()
    # largest accepted request body (after decompression); bigger ones get 413 / RESOURCE_EXHAUSTED
    max_request_bytes: Size = 16 * 2**20
    # request bytes being decoded and pushed at once; past it a push waits briefly, then gets
    # 503 / UNAVAILABLE
    max_inflight_bytes: Size = 256 * 2**20
    # calls each gRPC receiver (OTLP, Jaeger) handles at once; past it a call is refused at once
    # with RESOURCE_EXHAUSTED
    max_concurrent_rpcs: Annotated[int, Field(ge=1)] = 64


class IngesterConfig(_Section):
    trace_idle_period: Duration = 5.0
    trace_live_period: Duration = 30.0
    max_block_duration: Duration = 300.0
    max_block_bytes: Size = 64 * 2**20
    flush_check_period: Duration = 1.0
    # span rows held in memory (not yet in blocks) above which pushes wait for block writes
    max_unflushed_bytes: Size = 512 * 2**20
    # how long a push waits for room before it is refused (HTTP 503 / gRPC UNAVAILABLE)
    backlog_wait: Duration = 5.0
    # a failed block write (backend unreachable) is retried after this backoff, doubling
    flush_retry_min_backoff: Duration = 0.5
    flush_retry_max_backoff: Duration = 30.0


class WALConfig(_Section):
    # fsync on every write group; turning it off trades durability for speed (benchmarks only)
    fsync: bool = True
    # a new segment is started past this size; whole segments are deleted once in blocks
    segment_bytes: Size = 64 * 2**20


class LogsConfig(_Section):
    """Log records (OTLP logs, Loki push): kept through their own WAL and blocks."""

    enabled: bool = True
    # live lines of a tenant are written to a block once this many are held, or the oldest is
    # this old, or at every flush and graceful stop
    max_block_lines: Annotated[int, Field(ge=1)] = 250_000
    max_block_duration: Duration = 60.0
    # blocks whose newest line is older are deleted; per tenant: {"team-a": "720h"}
    block_retention: Duration = 336 * 3600.0
    block_retention_by_tenant: dict[str, Duration] = {}
    # a tenant's small blocks (under max_block_lines) are merged once it has this many, up to
    # compacted_block_lines lines a block
    compact_after_blocks: Annotated[int, Field(ge=2)] = 8
    compacted_block_lines: Annotated[int, Field(ge=1)] = 2_000_000
    # how often retention and compaction run
    maintenance_period: Duration = 60.0
    # live lines held in memory (in the WAL, not yet in blocks) above which pushes wait for
    # block writes (up to ingester.backlog_wait), then are refused (HTTP 503 / UNAVAILABLE)
    max_unflushed_bytes: Size = 256 * 2**20


class BlockConfig(_Section):
    row_group_spans: Annotated[int, Field(ge=256)] = 4096
    bloom_false_positive: Annotated[float, Field(gt=0, lt=1)] = 0.01
    zstd_level: Annotated[int, Field(ge=1, le=22)] = 5


class QuerierConfig(_Section):
    default_result_limit: Annotated[int, Field(ge=1)] = 20
    max_result_limit: Annotated[int, Field(ge=1)] = 262144
    default_spans_per_span_set: Annotated[int, Field(ge=1)] = 3
    max_spans_per_span_set: Annotated[int, Field(ge=1)] = 100
    max_search_duration: Duration = 168 * 3600.0
    max_metrics_duration: Duration = 24 * 3600.0
    # series one metrics query may answer with; a query that would make more is refused
    max_metrics_series: Annotated[int, Field(ge=1)] = 1000
    # memory the queries running at once may use together: each query has its own limit
    # (overrides.read.query_memory_limit) and waits until its limit fits in what is left
    memory_limit: Size = 2 * 2**30
    # queries that run at once (each in a DuckDB database of its own); more wait, tenants
    # taken in turn
    max_concurrent_queries: Annotated[int, Field(ge=1)] = 8
    # TraceQL longer than this is refused (Tempo's key and default)
    max_query_expression_size_bytes: Size = 128 * 2**10
    # with(sample=true) reads about this many spans of each source (all of a smaller one)
    adaptive_sample_spans: Annotated[int, Field(ge=1)] = 250_000


class LocalStorageConfig(_Section):
    # blocks directory; default <data_dir>/blocks
    path: Path | None = None


class S3StorageConfig(_Section):
    """S3 and S3-compatible stores (MinIO, Ceph, moto, ...)."""

    bucket: str = ""
    # host[:port] or a URL; empty = AWS's endpoint for the region
    endpoint: str = ""
    region: str = "us-east-1"
    # empty: taken from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN)
    access_key: str = ""
    secret_key: str = ""
    session_token: str = ""
    insecure: bool = False  # plain HTTP to the endpoint
    forcepathstyle: bool = True  # http://endpoint/bucket/key rather than bucket.endpoint
    prefix: str = ""


class GCSStorageConfig(_Section):
    bucket_name: str = ""
    prefix: str = ""
    # base URL of the JSON/XML API (an emulator); empty = Google's
    endpoint: str = ""
    insecure: bool = False
    # path of a service-account JSON file; empty = GOOGLE_APPLICATION_CREDENTIALS / ambient
    service_account_path: str = ""


class AzureStorageConfig(_Section):
    container_name: str = ""
    storage_account_name: str = ""  # or AZURE_STORAGE_ACCOUNT_NAME
    storage_account_key: str = ""  # or AZURE_STORAGE_ACCOUNT_KEY / AZURE_STORAGE_KEY
    endpoint_suffix: str = "blob.core.windows.net"
    # full blob endpoint (e.g. an emulator: http://127.0.0.1:10000/devstoreaccount1)
    endpoint: str = ""
    insecure: bool = False
    prefix: str = ""


class StorageCacheConfig(_Section):
    """Bounded local caches for blocks in object storage."""

    # every remote read (footers, row groups, column chunks) is cached in chunk_bytes chunks:
    # up to memory_bytes in memory, then up to max_bytes on disk under path
    # (default <data_dir>/cache)
    path: Path | None = None
    max_bytes: Size = 2 * 2**30
    memory_bytes: Size = 64 * 2**20
    chunk_bytes: Size = 512 * 2**10


class TraceStorageConfig(_Section):
    backend: Literal["local", "s3", "gcs", "azure"] = "local"
    local: LocalStorageConfig = LocalStorageConfig()
    s3: S3StorageConfig = S3StorageConfig()
    gcs: GCSStorageConfig = GCSStorageConfig()
    azure: AzureStorageConfig = AzureStorageConfig()
    # how often the block list is refreshed from the backend (tenant index or listing)
    blocklist_poll: Duration = 300.0
    # a tenant index older than this is ignored and the blocks listed instead (0 = never)
    blocklist_poll_stale_tenant_index: Duration = 0.0
    cache: StorageCacheConfig = StorageCacheConfig()
    # retries of one backend request (backoff inside the object-store client) and its timeout
    max_retries: Annotated[int, Field(ge=0)] = 3
    request_timeout: Duration = 30.0


class StorageConfig(_Section):
    block: BlockConfig = BlockConfig()
    trace: TraceStorageConfig = TraceStorageConfig()


class CompactionConfig(_Section):
    """Tempo's ``compactor.compaction`` keys (plus the input-count bounds of a job)."""

    # blocks whose end falls in the same window (of this length) are compacted together
    compaction_window: Duration = 3600.0
    # a compacted block stays below this many bytes / traces. Inputs are merged in memory,
    # where a Parquet byte takes 15-20 bytes, so this bounds the compactor's memory too
    # (Tempo streams its merges and defaults to 100 GiB)
    max_block_bytes: Size = 32 * 2**20
    max_compaction_objects: Annotated[int, Field(ge=1)] = 6_000_000
    # blocks whose newest span is older are deleted (per-tenant override: compactor.overrides)
    block_retention: Duration = 336 * 3600.0
    # compacted (replaced) blocks are deleted this long after being marked
    compacted_block_retention: Duration = 3600.0
    # how often the compactor runs (poll, retention, compaction, cleanup)
    compaction_cycle: Duration = 30.0
    min_input_blocks: Annotated[int, Field(ge=2)] = 2
    max_input_blocks: Annotated[int, Field(ge=2)] = 8
    # stop a tenant's compaction jobs in one cycle after this long
    max_time_per_tenant: Duration = 300.0
    # Parquet row-group size of compacted blocks. Measured on a 650 k-span block against 2048:
    # 32.9 bytes per span instead of 39.7 (fewer dictionaries and footer entries), limit-20
    # searches 25-45% faster (fewer row groups to prune), trace by ID 4.3 ms instead of 3.0
    row_group_spans: Annotated[int, Field(ge=256)] = 8192


class TenantCompactorOverrides(_Section):
    block_retention: Duration | None = None


class CompactorConfig(_Section):
    # run the compactor inside ``threadline serve`` (the monolith); --target compactor runs it alone
    enabled: bool = True
    compaction: CompactionConfig = CompactionConfig()
    # per-tenant settings, e.g. {"team-a": {"block_retention": "720h"}}
    overrides: dict[str, TenantCompactorOverrides] = {}


class OperationStrategy(_Section):
    operation: str
    type: Literal["probabilistic"] = "probabilistic"
    param: Annotated[float, Field(ge=0, le=1)]


class ServiceStrategy(_Section):
    """Jaeger's strategy-file entry: probabilistic (param = rate) or ratelimiting (param =
    traces per second), optionally per operation."""

    service: str
    type: Literal["probabilistic", "ratelimiting"] = "probabilistic"
    param: Annotated[float, Field(ge=0)]
    operation_strategies: list[OperationStrategy] = []


class DefaultStrategy(_Section):
    type: Literal["probabilistic", "ratelimiting"] = "probabilistic"
    param: Annotated[float, Field(ge=0)] = 1.0
    operation_strategies: list[OperationStrategy] = []


class SamplingConfig(_Section):
    """Remote sampling strategies as Jaeger serves them (the strategy file's shape)."""

    port: Port = 5778
    service_strategies: list[ServiceStrategy] = []
    default_strategy: DefaultStrategy = DefaultStrategy()
    default_lower_bound_traces_per_second: Annotated[float, Field(ge=0)] = 0.0
    default_upper_bound_traces_per_second: Annotated[float, Field(ge=0)] = 0.0


def exponential_buckets(start: float, factor: float, count: int) -> list[float]:
    """Prometheus' ExponentialBuckets: ``start * factor**k`` for k = 0 .. count-1."""
    out, value = [], start
    for _ in range(count):
        out.append(value)
        value *= factor
    return out


GeneratorProcessor = Literal["service-graphs", "span-metrics"]


def _check_buckets(value: Any) -> list[float]:
    if not isinstance(value, list | tuple) or not value:
        raise ValueError("histogram_buckets must be a non-empty list of numbers")
    try:
        buckets = [float(parse_duration(b)) for b in value]
    except ValueError:
        raise ValueError("histogram_buckets must be numbers of seconds") from None
    if any(b != b or b in (float("inf"), float("-inf")) for b in buckets):
        raise ValueError("histogram_buckets must be finite (+Inf is always added)")
    if any(buckets[i] >= buckets[i + 1] for i in range(len(buckets) - 1)):
        raise ValueError("histogram_buckets must be strictly increasing")
    return buckets


Buckets = Annotated[list[float], BeforeValidator(_check_buckets)]


class ServiceGraphsProcessorConfig(_Section):
    dimensions: list[str] = []
    # how long an unpaired client/server half waits for its counterpart
    wait: Duration = 10.0
    # pending halves kept per tenant; spans beyond are dropped (counted)
    max_items: Annotated[int, Field(ge=1)] = 10_000
    histogram_buckets: Buckets = exponential_buckets(0.1, 2, 8)
    # first one found on a client span names the server of an unpaired (virtual node) edge
    peer_attributes: list[str] = ["peer.service", "db.name", "db.system", "db.system.name"]
    # any one of these on a client span makes a database edge at once
    database_name_attributes: list[str] = ["db.namespace", "db.name", "db.system", "db.system.name"]


class SpanMetricsProcessorConfig(_Section):
    dimensions: list[str] = []
    histogram_buckets: Buckets = exponential_buckets(0.002, 2, 14)


class GeneratorProcessorsConfig(_Section):
    service_graphs: ServiceGraphsProcessorConfig = ServiceGraphsProcessorConfig()
    span_metrics: SpanMetricsProcessorConfig = SpanMetricsProcessorConfig()


class RemoteWriteQueueConfig(_Section):
    """Prometheus' ``queue_config`` subset: a bounded in-memory queue and retry backoff."""

    capacity: Annotated[int, Field(ge=1)] = 100_000  # samples held; the oldest are dropped past it
    max_samples_per_send: Annotated[int, Field(ge=1)] = 2_000
    min_backoff: Duration = 0.03
    max_backoff: Duration = 5.0
    # attempts for one request before its samples are dropped (counted)
    max_retries: Annotated[int, Field(ge=0)] = 10


class RemoteWriteConfig(_Section):
    url: str
    name: str = ""  # label of this endpoint in self-metrics; the url when empty
    headers: dict[str, str] = {}
    remote_timeout: Duration = 30.0
    send_exemplars: bool = True
    queue_config: RemoteWriteQueueConfig = RemoteWriteQueueConfig()


class GeneratorStorageConfig(_Section):
    remote_write: list[RemoteWriteConfig] = []
    remote_write_add_org_id_header: bool = True
    # at shutdown, queued samples get this long to be sent
    remote_write_flush_deadline: Duration = 5.0


class GeneratorRegistryConfig(_Section):
    # how often every series is sampled and queued for remote write
    collection_interval: Duration = 15.0
    # series without updates for this long are dropped
    stale_duration: Duration = 900.0
    external_labels: dict[str, str] = {}
    # 0: unlimited; beyond it new series are refused (counted)
    max_active_series: Annotated[int, Field(ge=0)] = 0


class GeneratorTenantOverrides(_Section):
    # None: the tenant gets the top-level processors; [] turns the generator off for it
    processors: list[GeneratorProcessor] | None = None


class MetricsGeneratorConfig(_Section):
    """Tempo's ``metrics_generator``: processors on for every tenant unless overridden."""

    processors: list[GeneratorProcessor] = []
    processor: GeneratorProcessorsConfig = GeneratorProcessorsConfig()
    registry: GeneratorRegistryConfig = GeneratorRegistryConfig()
    storage: GeneratorStorageConfig = GeneratorStorageConfig()
    overrides: dict[str, GeneratorTenantOverrides] = {}


class AuthUser(_Section):
    """One credential (a bearer token, or a user and password for HTTP basic auth), the tenants
    it may use (``*``: any) and what it may do."""

    name: str
    token: str | None = None  # plain text; prefer token_hash
    token_hash: str | None = None  # "sha256:<hex>", from `threadline auth hash`
    username: str | None = None
    password: str | None = None  # plain text; prefer password_hash
    password_hash: str | None = None  # "pbkdf2_sha256:<iterations>:<salt hex>:<hash hex>"
    tenants: list[str] = ["*"]
    access: Literal["read", "write", "read-write"] = "read-write"

    @model_validator(mode="after")
    def _one_credential(self) -> AuthUser:
        bearer = self.token is not None or self.token_hash is not None
        basic = self.username is not None
        if bearer == basic:
            raise ValueError(f"auth user {self.name!r} needs either a token or a username")
        if self.token is not None and self.token_hash is not None:
            raise ValueError(f"auth user {self.name!r}: give token or token_hash, not both")
        if basic and (self.password is None) == (self.password_hash is None):
            raise ValueError(f"auth user {self.name!r} needs one of password, password_hash")
        if not self.tenants:
            raise ValueError(f"auth user {self.name!r} has no tenants")
        return self


class AuthConfig(_Section):
    """Authentication of every request that pushes or reads data (off by default)."""

    enabled: bool = False
    users: list[AuthUser] = []
    # a YAML list of users in the same shape, re-read when it changes (added to ``users``)
    users_file: Path | None = None
    reload_period: Duration = 10.0


class IngestionLimits(_Section):
    """Per-tenant ingest limits (Tempo's ``overrides.defaults.ingestion`` keys, plus ours)."""

    # bytes per second of OTLP a tenant may push (0: no limit) and the burst above it
    rate_limit_bytes: Size = 128 * 2**20
    burst_size_bytes: Size = 256 * 2**20
    # traces held live per tenant; spans of new traces past it are refused (0: no limit)
    max_traces_per_user: Annotated[int, Field(ge=0)] = 1_000_000
    # spans in one request; a bigger request is refused whole (0: no limit)
    max_spans_per_request: Annotated[int, Field(ge=0)] = 100_000
    # attribute keys and values longer than this are truncated, and counted (0: no limit)
    max_attribute_bytes: Size = 16 * 2**10


class GlobalLimits(_Section):
    # a live trace's bytes (of OTLP); its spans past it are refused, the rest of it kept
    max_bytes_per_trace: Size = 5 * 10**6


class ReadLimits(_Section):
    """Per-tenant query limits (Tempo's ``overrides.defaults.read`` keys, plus ours)."""

    # a query (search, metrics, tags, trace by ID) still running after this is stopped and
    # answered 400 naming this key
    query_timeout: Annotated[float, BeforeValidator(parse_duration), Field(gt=0)] = 120.0
    # memory one query may use (at most querier.memory_limit); DuckDB spills to data_dir/tmp
    # beyond it, and a query that still does not fit is answered 400 naming this key
    query_memory_limit: Annotated[int, BeforeValidator(parse_size), Field(ge=2**20)] = 512 * 2**20


class TenantLimits(_Section):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, populate_by_name=True)

    ingestion: IngestionLimits = IngestionLimits()
    read: ReadLimits = ReadLimits()
    global_: GlobalLimits = Field(GlobalLimits(), alias="global")


class OverridesConfig(_Section):
    """Limits: ``defaults`` for every tenant; per tenant (or ``*``) in a file re-read while
    running, in Tempo's shape ``overrides: {<tenant>: {ingestion: {...}, global: {...}}}``."""

    defaults: TenantLimits = TenantLimits()
    per_tenant_override_config: Path | None = None
    per_tenant_override_period: Duration = 10.0


class Config(_Section):
    # what this process runs: everything (the monolith) or only the compactor
    target: Literal["all", "compactor"] = "all"
    data_dir: Path = Path("./data")
    multitenancy_enabled: bool = False
    server: ServerConfig = ServerConfig()
    distributor: DistributorConfig = DistributorConfig()
    ingester: IngesterConfig = IngesterConfig()
    wal: WALConfig = WALConfig()
    logs: LogsConfig = LogsConfig()
    storage: StorageConfig = StorageConfig()
    compactor: CompactorConfig = CompactorConfig()
    querier: QuerierConfig = QuerierConfig()
    sampling: SamplingConfig = SamplingConfig()
    metrics_generator: MetricsGeneratorConfig = MetricsGeneratorConfig()
    auth: AuthConfig = AuthConfig()
    overrides: OverridesConfig = OverridesConfig()


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the offending key."""


def _describe(err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"unknown config key '{key}'")
        else:
            lines.append(f"config key '{key}': {e['msg']} (got {e.get('input')!r})")
    return "; ".join(lines)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``override`` merged in, mapping by mapping."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None) -> Config:
    """Read the YAML at ``path`` (if any), apply nested ``overrides`` (from flags), validate."""
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except OSError as e:
            raise ConfigError(f"cannot read config file {path}: {e.strerror}") from e
        except UnicodeDecodeError as e:
            raise ConfigError(f"config file {path} is not UTF-8 text: {e.reason}") from None
        except yaml.YAMLError as e:
            raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
        except RecursionError:
            raise ConfigError(f"config file {path} is nested too deeply") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping at the top level")
        raw = loaded or {}
    raw = deep_merge(raw, overrides or {})
    try:
        return Config.model_validate(raw)
    except ValidationError as e:
        raise ConfigError(_describe(e)) from None
