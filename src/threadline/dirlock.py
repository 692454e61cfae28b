"""One owner per directory: an exclusive ``flock`` on a lock file held for a process's lifetime.

A server owns its data directory (WAL, staging, caches); the process that compacts a local-backend
blocks directory owns that one too. A second process is refused before it touches anything, with
the directory and the PID of the owner. The kernel drops the lock when the owner dies, even by
``kill -9``, so a stale lock file never blocks a restart. Offline readers take no lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from threadline.config import Config
from threadline.storage.factory import local_blocks_dir

LOCK_NAME = ".threadline.lock"


class DirectoryInUse(Exception):
    """Another process holds the lock; the message names the directory and its PID."""


class DirectoryLock:
    """An exclusive lock on ``directory``, held until ``release`` (or the process's end)."""

    def __init__(self, directory: Path, what: str) -> None:
        self.directory = Path(directory)
        self.what = what
        self._fd: int | None = None

    @property
    def path(self) -> Path:
        return self.directory / LOCK_NAME

    def acquire(self) -> DirectoryLock:
        """Take the lock or raise ``DirectoryInUse``; a refused attempt changes nothing on disk
        (the owner's lock file already exists, and it is neither created nor written)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DirectoryInUse(
                f"the {self.what} {self.directory.resolve()} is in use by another threadline "
                f"process (PID {holder}); stop that one first, or give this one its own "
                f"directory"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> DirectoryLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def own_directories(cfg: Config, compacts: bool) -> list[DirectoryLock]:
    """Lock ``cfg``'s data directory, and its local blocks directory too when this process
    compacts it (writing blocks into a shared directory is fine, as into a bucket; two
    compactors are not). Raises ``DirectoryInUse`` holding none of them."""
    locks = [DirectoryLock(cfg.data_dir, "data directory").acquire()]
    blocks = local_blocks_dir(cfg)
    if compacts and blocks is not None:
        try:
            locks.append(DirectoryLock(blocks, "blocks directory (compactor)").acquire())
        except DirectoryInUse:
            locks[0].release()
            raise
    return locks
