"""Where blocks live: one small interface over a local directory and over object storage.

Keys are ``/``-separated paths relative to the backend's root (``<tenant>/<block>/<file>``).
Every write of one object is atomic (a reader sees the old object, no object, or the whole new
one): the local backend writes a temporary file, fsyncs and renames it; object stores give that
for free. A block is uploaded file by file with ``meta.json`` last (``put_block``), so its
presence is what makes a block complete.

``ObjectBackend`` covers S3 (and S3-compatible stores), GCS and Azure Blob through one library,
obstore (Python bindings of the Rust ``object_store`` crate): signing, retries, multipart
uploads and range reads are its job, not ours.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from threadline.storage.faults import crash_point
from threadline.storage.files import fsync_path

META_FILE = "meta.json"
COMPACTED_META_FILE = "meta.compacted.json"
TENANT_INDEX_FILE = "index.json.gz"


class BackendError(OSError):
    """The backend could not be reached or refused an operation (retryable)."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    modified: float  # unix seconds


class Backend(ABC):
    """Object storage as threadline uses it; ``FileNotFoundError`` for a missing object."""

    kind: str = "?"

    @abstractmethod
    def read(self, key: str) -> bytes: ...

    @abstractmethod
    def read_range(self, key: str, start: int, length: int) -> bytes: ...

    def read_ranges(self, key: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        """Several ``(start, length)`` ranges of one object (stores may fetch them at once)."""
        return [self.read_range(key, s, n) for s, n in ranges]

    @abstractmethod
    def size(self, key: str) -> int: ...

    @abstractmethod
    def write(self, key: str, data: bytes) -> None: ...

    @abstractmethod
    def write_file(self, key: str, path: Path) -> None: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove ``key``; a missing object is not an error."""

    @abstractmethod
    def list(self, prefix: str) -> list[ObjectInfo]:
        """Every object under ``prefix`` (a directory-like prefix ending in ``/``), recursively."""

    @abstractmethod
    def list_dirs(self, prefix: str) -> list[str]:
        """Names of the immediate "directories" under ``prefix`` ('' for the root)."""

    def local_path(self, key: str) -> Path | None:
        """A local file holding ``key`` if the backend is a local directory, else None."""
        return None

    def exists(self, key: str) -> bool:
        try:
            self.size(key)
        except FileNotFoundError:
            return False
        return True

    def put_block(
        self, tenant: str, block_id: str, staging: Path, crash: str = "upload:before_meta"
    ) -> None:
        """Upload a block assembled in ``staging``: every file, then ``meta.json`` last."""
        files = sorted(p for p in staging.iterdir() if p.name != META_FILE)
        prefix = f"{tenant}/{block_id}/"
        try:
            for path in files:
                self.write_file(prefix + path.name, path)
            crash_point(crash)
            self.write_file(prefix + META_FILE, staging / META_FILE)
        except BaseException:
            # the block is invisible without meta.json; leftovers are removed by the compactor
            for path in files:
                with contextlib.suppress(OSError):
                    self.delete(prefix + path.name)
            raise

    def delete_block(self, tenant: str, block_id: str) -> None:
        """Delete every file of a block, the meta files last (so a half-deleted block is never
        seen as a complete one)."""
        prefix = f"{tenant}/{block_id}/"
        keys = [o.key for o in self.list(prefix)]
        last = (META_FILE, COMPACTED_META_FILE)
        for key in sorted(keys, key=lambda k: k.rsplit("/", 1)[-1] in last):
            self.delete(key)

    def describe(self) -> str:
        return self.kind


class LocalBackend(Backend):
    """Blocks in a local directory, ``<root>/<tenant>/<block>/<file>``."""

    kind = "local"

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        if key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid object key {key!r}")
        return self.root / key

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def read(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def read_range(self, key: str, start: int, length: int) -> bytes:
        with open(self._path(key), "rb") as f:
            f.seek(start)
            return f.read(length)

    def size(self, key: str) -> int:
        return self._path(key).stat().st_size

    def _replace(self, path: Path, write: Any) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".tmp-{path.name}.{os.getpid()}")
        try:
            write(tmp)
            fsync_path(tmp)
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        fsync_path(path.parent)

    def write(self, key: str, data: bytes) -> None:
        self._replace(self._path(key), lambda tmp: tmp.write_bytes(data))

    def write_file(self, key: str, path: Path) -> None:
        self._replace(self._path(key), lambda tmp: shutil.copyfile(path, tmp))

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        # drop directories left empty (a deleted block's directory)
        parent = path.parent
        if parent != self.root and parent.is_dir():
            with contextlib.suppress(OSError):
                parent.rmdir()

    def list(self, prefix: str) -> list[ObjectInfo]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        out = []
        if not base.is_dir():
            return out
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                full = Path(dirpath) / name
                try:
                    st = full.stat()
                except FileNotFoundError:
                    continue
                key = full.relative_to(self.root).as_posix()
                out.append(ObjectInfo(key, st.st_size, st.st_mtime))
        return out

    def list_dirs(self, prefix: str) -> list[str]:
        base = self._path(prefix.rstrip("/")) if prefix else self.root
        if not base.is_dir():
            return []
        return sorted(p.name for p in base.iterdir() if p.is_dir())

    def put_block(
        self, tenant: str, block_id: str, staging: Path, crash: str = "upload:before_meta"
    ) -> None:
        """A staging directory on the same file system is renamed into place in one step."""
        target = self.root / tenant / block_id
        target.parent.mkdir(parents=True, exist_ok=True)
        if staging.parent == target.parent:
            crash_point(crash)
            os.rename(staging, target)
            fsync_path(target.parent)
            return
        super().put_block(tenant, block_id, staging, crash)

    def delete_block(self, tenant: str, block_id: str) -> None:
        super().delete_block(tenant, block_id)
        shutil.rmtree(self.root / tenant / block_id, ignore_errors=True)

    def describe(self) -> str:
        return f"local:{self.root}"


def _modified(meta: dict[str, Any]) -> float:
    when = meta.get("last_modified")
    return when.timestamp() if isinstance(when, dt.datetime) else 0.0


class ObjectBackend(Backend):
    """S3, GCS or Azure Blob through obstore; every call is synchronous (run it in a thread)."""

    def __init__(self, store: Any, kind: str, description: str) -> None:
        self.store = store
        self.kind = kind
        self._description = description

    def describe(self) -> str:
        return self._description

    @staticmethod
    def _wrap(err: Exception) -> Exception:
        if isinstance(err, FileNotFoundError):
            return err
        return BackendError(str(err).split("\n", 1)[0])

    def read(self, key: str) -> bytes:
        import obstore

        try:
            return bytes(obstore.get(self.store, key).bytes())
        except Exception as e:
            raise self._wrap(e) from e

    def read_range(self, key: str, start: int, length: int) -> bytes:
        import obstore

        if length <= 0:
            return b""
        try:
            return bytes(obstore.get_range(self.store, key, start=start, length=length))
        except Exception as e:
            raise self._wrap(e) from e

    def read_ranges(self, key: str, ranges: list[tuple[int, int]]) -> list[bytes]:
        import obstore

        if not ranges:
            return []
        try:
            got = obstore.get_ranges(
                self.store, key, starts=[s for s, _ in ranges], lengths=[n for _, n in ranges]
            )
        except Exception as e:
            raise self._wrap(e) from e
        return [bytes(b) for b in got]

    def size(self, key: str) -> int:
        import obstore

        try:
            return int(obstore.head(self.store, key)["size"])
        except Exception as e:
            raise self._wrap(e) from e

    def write(self, key: str, data: bytes) -> None:
        import obstore

        try:
            obstore.put(self.store, key, data)
        except Exception as e:
            raise self._wrap(e) from e

    def write_file(self, key: str, path: Path) -> None:
        import obstore

        try:
            obstore.put(self.store, key, Path(path))
        except Exception as e:
            raise self._wrap(e) from e

    def delete(self, key: str) -> None:
        import obstore

        try:
            obstore.delete(self.store, key)
        except FileNotFoundError:
            pass
        except Exception as e:
            raise self._wrap(e) from e

    def list(self, prefix: str) -> list[ObjectInfo]:
        import obstore

        try:
            out = []
            for chunk in obstore.list(self.store, prefix.rstrip("/") or None, chunk_size=1000):
                for m in chunk:
                    out.append(ObjectInfo(m["path"], int(m["size"]), _modified(m)))
            return out
        except Exception as e:
            raise self._wrap(e) from e

    def list_dirs(self, prefix: str) -> list[str]:
        import obstore

        try:
            got = obstore.list_with_delimiter(self.store, prefix.rstrip("/") or None)
        except Exception as e:
            raise self._wrap(e) from e
        return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in got["common_prefixes"])


def keys_by_block(objects: Iterable[ObjectInfo]) -> dict[str, dict[str, ObjectInfo]]:
    """``<tenant>/<block>/<file>`` keys grouped as ``{block: {file: info}}``."""
    out: dict[str, dict[str, ObjectInfo]] = {}
    for o in objects:
        parts = o.key.split("/")
        if len(parts) != 3:
            continue
        out.setdefault(parts[1], {})[parts[2]] = o
    return out
