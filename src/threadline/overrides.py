"""Per-tenant limits: ``overrides.defaults`` for everyone, overridden per tenant (or for ``*``,
every tenant without an entry of its own) by ``overrides.per_tenant_override_config``, a file
re-read every ``per_tenant_override_period`` while the server runs (Tempo's runtime overrides).

An entry names only what differs from the defaults; it is merged over them key by key. A file
that cannot be read or is not valid keeps the limits in force (logged and counted), so a typo
never lifts or tightens every tenant's limits by accident.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import yaml
from pydantic import ValidationError

from threadline.config import ConfigError, OverridesConfig, TenantLimits, deep_merge

log = logging.getLogger(__name__)

ANY_TENANT = "*"


def _parse(text: str, defaults: TenantLimits) -> dict[str, TenantLimits]:
    doc = yaml.safe_load(text) or {}
    if not isinstance(doc, dict) or set(doc) - {"overrides"}:
        raise ValueError("the file must hold one mapping, 'overrides: {<tenant>: {...}}'")
    entries = doc.get("overrides") or {}
    if not isinstance(entries, dict):
        raise ValueError("'overrides' must map tenant ids to their limits")
    base = defaults.model_dump(by_alias=True)
    out = {}
    for tenant, entry in entries.items():
        if not isinstance(entry, dict):
            raise ValueError(f"overrides of tenant {tenant!r} must be a mapping")
        try:
            out[str(tenant)] = TenantLimits.model_validate(deep_merge(base, entry))
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"tenant {tenant!r}: {where}: {first['msg']}") from None
    return out


class Overrides:
    """The limits in force for each tenant."""

    def __init__(self, cfg: OverridesConfig) -> None:
        self.cfg = cfg
        self.defaults = cfg.defaults
        self._tenants: dict[str, TenantLimits] = {}
        self._stamp: tuple[float, int] | None = None
        self.reloads = 0
        self.reload_failures = 0
        if cfg.per_tenant_override_config is not None:
            self.reload(strict=True)

    def limits(self, tenant: str) -> TenantLimits:
        return self._tenants.get(tenant) or self._tenants.get(ANY_TENANT) or self.defaults

    def reload(self, strict: bool = False) -> bool:
        """Re-read the overrides file if it changed; returns whether the limits changed.
        At start (``strict``) a bad file is a ``ConfigError``; later it is logged and ignored."""
        path = self.cfg.per_tenant_override_config
        if path is None:
            return False
        try:
            st = Path(path).stat()
            if (st.st_mtime, st.st_size) == self._stamp:
                return False
            tenants = _parse(Path(path).read_text(encoding="utf-8"), self.defaults)
        except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError, RecursionError) as e:
            self.reload_failures += 1
            message = f"overrides.per_tenant_override_config {path} cannot be used: {e}"
            if strict:
                raise ConfigError(message) from None
            log.error("%s; keeping the limits in force", message)
            return False
        self._stamp = (st.st_mtime, st.st_size)
        self._tenants = tenants
        self.reloads += 1
        log.info("overrides: limits for %d tenants from %s", len(tenants), path)
        return True

    async def watch(self, stop: asyncio.Event) -> None:
        """Re-read the file every ``per_tenant_override_period`` until ``stop``."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.cfg.per_tenant_override_period)
            if not stop.is_set():
                await asyncio.to_thread(self.reload)
