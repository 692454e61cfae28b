"""GCS and Azure backends: configuration (keys, environment credentials, errors) and, for
Azure, the backend contract against Azurite, Microsoft's emulator (from npm).

GCS has configuration tests only: obstore's GCS client speaks the XML API for objects (and
requires ETag / Last-Modified headers), while the PyPI emulator ``gcp-storage-emulator``
implements the JSON API for listing and leaves those headers out of XML responses, so the two
cannot talk; no other GCS emulator installs from PyPI, Debian or npm here.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from s3_server import Azurite
from test_storage_backend import backend_contract, blocks_roundtrip
from threadline.config import ConfigError, load_config
from threadline.storage.factory import (
    azure_store_args,
    gcs_store_args,
    make_backend,
    s3_store_args,
)


def storage(**trace: object) -> dict[str, object]:
    return {"storage": {"trace": trace}}


def test_local_is_the_default_and_keeps_the_blocks_directory(tmp_path: Path) -> None:
    cfg = load_config(None, {"data_dir": str(tmp_path)})
    assert cfg.storage.trace.backend == "local"
    backend = make_backend(cfg)
    assert backend.local_path("") == tmp_path / "blocks" / ""
    other = make_backend(load_config(None, storage(local={"path": str(tmp_path / "x")})))
    assert other.local_path("t") == tmp_path / "x" / "t"


def test_unknown_backend_and_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"storage\.trace\.backend"):
        load_config(None, storage(backend="ftp"))
    with pytest.raises(ConfigError, match=r"unknown config key 'storage\.trace\.s3\.bucket_name'"):
        load_config(None, storage(backend="s3", s3={"bucket_name": "x"}))


def test_s3_keys_from_config_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"storage\.trace\.s3\.bucket is required"):
        make_backend(load_config(None, storage(backend="s3")))
    cfg = load_config(
        None,
        storage(
            backend="s3",
            s3={
                "bucket": "b",
                "endpoint": "minio:9000",
                "insecure": True,
                "access_key": "AK",
                "secret_key": "SK",
            },
        ),
    )
    args = s3_store_args(cfg.storage.trace)
    assert args["endpoint"] == "http://minio:9000"
    assert args["access_key_id"] == "AK" and args["secret_access_key"] == "SK"
    assert args["virtual_hosted_style_request"] is False
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENV_AK")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ENV_SK")
    cfg = load_config(None, storage(backend="s3", s3={"bucket": "b", "endpoint": "s3.example"}))
    args = s3_store_args(cfg.storage.trace)
    assert args["endpoint"] == "https://s3.example"
    assert (args["access_key_id"], args["secret_access_key"]) == ("ENV_AK", "ENV_SK")
    assert make_backend(cfg).kind == "s3"


def test_gcs_configuration(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"storage\.trace\.gcs\.bucket_name is required"):
        make_backend(load_config(None, storage(backend="gcs")))
    key = tmp_path / "sa.json"
    cfg = load_config(
        None,
        storage(
            backend="gcs",
            gcs={
                "bucket_name": "traces",
                "prefix": "p",
                "endpoint": "127.0.0.1:4443",
                "insecure": True,
                "service_account_path": str(key),
            },
        ),
    )
    args = gcs_store_args(cfg.storage.trace)
    assert args == {"service_account_path": str(key), "base_url": "http://127.0.0.1:4443"}
    with pytest.raises(ConfigError, match=r"storage\.trace\.gcs: .*service account file"):
        make_backend(cfg)
    account = {"client_email": "t@example", "private_key": "", "private_key_id": ""}
    key.write_text(json.dumps({**account, "disable_oauth": True}))
    backend = make_backend(cfg)  # builds the client; nothing is contacted yet
    assert backend.kind == "gcs" and backend.describe() == "gs://traces/p"


def test_azure_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match=r"container_name is required"):
        make_backend(load_config(None, storage(backend="azure")))
    monkeypatch.delenv("AZURE_STORAGE_ACCOUNT_NAME", raising=False)
    with pytest.raises(ConfigError, match=r"storage_account_name"):
        make_backend(load_config(None, storage(backend="azure", azure={"container_name": "c"})))
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "acct")
    monkeypatch.setenv("AZURE_STORAGE_KEY", "a2V5")
    cfg = load_config(None, storage(backend="azure", azure={"container_name": "c"}))
    assert azure_store_args(cfg.storage.trace) == {"account_name": "acct", "account_key": "a2V5"}
    cfg = load_config(
        None,
        storage(
            backend="azure",
            azure={"container_name": "c", "endpoint_suffix": "blob.core.chinacloudapi.cn"},
        ),
    )
    args = azure_store_args(cfg.storage.trace)
    assert args["endpoint"] == "https://acct.blob.core.chinacloudapi.cn"
    assert make_backend(cfg).kind == "azure"


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = Azurite(tmp_path_factory.mktemp("azurite"))
    yield server
    server.stop()


def _azure_backend(azurite: Azurite, tmp_path: Path):  # type: ignore[no-untyped-def]
    container = f"c{uuid.uuid4().hex[:12]}"
    azurite.create_container(container)
    cfg = load_config(
        None, {"data_dir": str(tmp_path), "storage": azurite.storage_config(container)}
    )
    return make_backend(cfg)


def test_azure_backend_contract_on_azurite(azurite: Azurite, tmp_path: Path) -> None:
    backend_contract(_azure_backend(azurite, tmp_path))


def test_azure_blocks_roundtrip_on_azurite(azurite: Azurite, tmp_path: Path) -> None:
    blocks_roundtrip(_azure_backend(azurite, tmp_path), tmp_path)
