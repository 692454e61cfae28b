"""Building the configured backend (``storage.trace``) and its caches."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from threadline.config import Config, ConfigError, TraceStorageConfig
from threadline.storage.backend import Backend, LocalBackend, ObjectBackend
from threadline.storage.block_reader import BlockCaches
from threadline.storage.cache import DiskChunks, RangeCache


def _client_options(cfg: TraceStorageConfig, insecure: bool) -> dict[str, Any]:
    return {
        "allow_http": insecure,
        "timeout": dt.timedelta(seconds=cfg.request_timeout),
        "connect_timeout": dt.timedelta(seconds=min(cfg.request_timeout, 5.0)),
    }


def _retry(cfg: TraceStorageConfig) -> dict[str, Any]:
    return {
        "max_retries": cfg.max_retries,
        "retry_timeout": dt.timedelta(seconds=cfg.request_timeout),
        "backoff": {
            "init_backoff": dt.timedelta(milliseconds=100),
            "max_backoff": dt.timedelta(seconds=2),
            "base": 2,
        },
    }


def _endpoint_url(endpoint: str, insecure: bool) -> str:
    if "://" in endpoint:
        return endpoint.rstrip("/")
    return f"{'http' if insecure else 'https'}://{endpoint.rstrip('/')}"


def s3_store_args(cfg: TraceStorageConfig) -> dict[str, Any]:
    s3 = cfg.s3
    if not s3.bucket:
        raise ConfigError("storage.trace.s3.bucket is required with backend: s3")
    args: dict[str, Any] = {"region": s3.region}
    access = s3.access_key or os.environ.get("AWS_ACCESS_KEY_ID", "")
    secret = s3.secret_key or os.environ.get("AWS_SECRET_ACCESS_KEY", "")
    token = s3.session_token or os.environ.get("AWS_SESSION_TOKEN", "")
    if access and secret:
        args["access_key_id"] = access
        args["secret_access_key"] = secret
        if token:
            args["session_token"] = token
    if s3.endpoint:
        args["endpoint"] = _endpoint_url(s3.endpoint, s3.insecure)
        args["virtual_hosted_style_request"] = not s3.forcepathstyle
    return args


def gcs_store_args(cfg: TraceStorageConfig) -> dict[str, Any]:
    gcs = cfg.gcs
    if not gcs.bucket_name:
        raise ConfigError("storage.trace.gcs.bucket_name is required with backend: gcs")
    args: dict[str, Any] = {}
    if gcs.service_account_path:
        args["service_account_path"] = gcs.service_account_path
    if gcs.endpoint:
        args["base_url"] = _endpoint_url(gcs.endpoint, gcs.insecure)
    return args


def azure_store_args(cfg: TraceStorageConfig) -> dict[str, Any]:
    az = cfg.azure
    if not az.container_name:
        raise ConfigError("storage.trace.azure.container_name is required with backend: azure")
    account = az.storage_account_name or os.environ.get("AZURE_STORAGE_ACCOUNT_NAME", "")
    if not account:
        raise ConfigError(
            "storage.trace.azure.storage_account_name (or AZURE_STORAGE_ACCOUNT_NAME) is required"
        )
    key = (
        az.storage_account_key
        or os.environ.get("AZURE_STORAGE_ACCOUNT_KEY", "")
        or os.environ.get("AZURE_STORAGE_KEY", "")
    )
    args: dict[str, Any] = {"account_name": account}
    if key:
        args["account_key"] = key
    if az.endpoint:
        args["endpoint"] = _endpoint_url(az.endpoint, az.insecure)
    elif az.endpoint_suffix != "blob.core.windows.net":
        args["endpoint"] = _endpoint_url(f"{account}.{az.endpoint_suffix}", az.insecure)
    return args


def local_blocks_dir(cfg: Config) -> Path | None:
    """The blocks directory of the local backend (None for object storage)."""
    trace = cfg.storage.trace
    if trace.backend != "local":
        return None
    return trace.local.path or cfg.data_dir / "blocks"


def make_backend(cfg: Config) -> Backend:
    """The backend ``storage.trace`` describes; raises ``ConfigError`` naming a missing key."""
    trace = cfg.storage.trace
    blocks_dir = local_blocks_dir(cfg)
    if blocks_dir is not None:
        return LocalBackend(blocks_dir)
    try:
        return _object_backend(trace)
    except ConfigError:
        raise
    except Exception as e:  # the client refused its configuration (credentials file, URL, ...)
        first = str(e).split("\n", 1)[0]
        raise ConfigError(f"storage.trace.{trace.backend}: {first}") from None


def _object_backend(trace: TraceStorageConfig) -> Backend:
    from obstore.store import AzureStore, GCSStore, S3Store

    if trace.backend == "s3":
        s3 = trace.s3
        store = S3Store(
            s3.bucket,
            prefix=s3.prefix.strip("/") or None,
            client_options=_client_options(trace, s3.insecure),
            retry_config=_retry(trace),
            **s3_store_args(trace),
        )
        where = f"s3://{s3.bucket}/{s3.prefix.strip('/')}"
        return ObjectBackend(store, "s3", where + (f" at {s3.endpoint}" if s3.endpoint else ""))
    if trace.backend == "gcs":
        gcs = trace.gcs
        store = GCSStore(
            gcs.bucket_name,
            prefix=gcs.prefix.strip("/") or None,
            client_options=_client_options(trace, gcs.insecure),
            retry_config=_retry(trace),
            **gcs_store_args(trace),
        )
        return ObjectBackend(store, "gcs", f"gs://{gcs.bucket_name}/{gcs.prefix.strip('/')}")
    az = trace.azure
    store = AzureStore(
        az.container_name,
        prefix=az.prefix.strip("/") or None,
        client_options=_client_options(trace, az.insecure),
        retry_config=_retry(trace),
        **azure_store_args(trace),
    )
    return ObjectBackend(store, "azure", f"azure://{az.container_name}/{az.prefix.strip('/')}")


def make_caches(cfg: Config, backend: Backend, cache_dir: Path | None = None) -> BlockCaches:
    """Caches for remote blocks (the local backend reads its files directly)."""
    c = cfg.storage.trace.cache
    if backend.local_path("") is not None:
        return BlockCaches(RangeCache(c.memory_bytes, c.chunk_bytes))
    disk = DiskChunks(cache_dir or c.path or cfg.data_dir / "cache", c.max_bytes)
    return BlockCaches(RangeCache(c.memory_bytes, c.chunk_bytes, disk))
