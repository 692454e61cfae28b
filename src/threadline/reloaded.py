"""A file re-read while the server runs (credentials, per-tenant limits): read again when its
modification time or size changes, parsed by its owner; a file that cannot be read or parsed
keeps what is in force (logged and counted), and at start it is a ``ConfigError``."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

import yaml

from threadline.config import ConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")


class ReloadedFile(Generic[T]):
    """``path`` (set by config key ``key``), parsed by ``parse`` and handed to ``apply``."""

    def __init__(
        self,
        path: Path,
        key: str,
        parse: Callable[[str], T],
        apply: Callable[[T], None],
        what: str,
    ) -> None:
        self.path = Path(path)
        self.key = key
        self.parse = parse
        self.apply = apply
        self.what = what  # what is kept in force when the file is bad, for the log
        self._stamp: tuple[float, int] | None = None
        self.reloads = 0
        self.failures = 0

    def reload(self, strict: bool = False) -> bool:
        """Read the file if it changed; returns whether it was applied."""
        try:
            st = self.path.stat()
            if (st.st_mtime, st.st_size) == self._stamp:
                return False
            value = self.parse(self.path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError) as e:
            self.failures += 1
            first = (str(e).splitlines() or [type(e).__name__])[0]
            message = f"{self.key} {self.path} cannot be used: {first}"
            if strict:
                raise ConfigError(message) from None
            log.error("%s; keeping the %s in force", message, self.what)
            return False
        self.apply(value)
        self._stamp = (st.st_mtime, st.st_size)
        self.reloads += 1
        return True

    async def watch(self, period: float, stop: asyncio.Event) -> None:
        """Re-read the file every ``period`` seconds until ``stop``."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)
            if not stop.is_set():
                await asyncio.to_thread(self.reload)
