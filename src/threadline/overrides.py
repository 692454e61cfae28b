"""Per-tenant limits: ``overrides.defaults`` for everyone, overridden per tenant (or for ``*``,
every tenant without an entry of its own) by ``overrides.per_tenant_override_config``, a file
re-read every ``per_tenant_override_period`` while the server runs (Tempo's runtime overrides).

An entry names only what differs from the defaults; it is merged over them key by key. A file
that cannot be read or is not valid keeps the limits in force (logged and counted), so a typo
never lifts or tightens every tenant's limits by accident.
"""

from __future__ import annotations

import asyncio
import logging

import yaml
from pydantic import ValidationError

from threadline.config import OverridesConfig, TenantLimits, deep_merge
from threadline.reloaded import ReloadedFile

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
        self._file: ReloadedFile[dict[str, TenantLimits]] | None = None
        if cfg.per_tenant_override_config is not None:
            self._file = ReloadedFile(
                cfg.per_tenant_override_config,
                "overrides.per_tenant_override_config",
                lambda text: _parse(text, self.defaults),
                self._use,
                "limits",
            )
            self._file.reload(strict=True)

    def limits(self, tenant: str) -> TenantLimits:
        return self._tenants.get(tenant) or self._tenants.get(ANY_TENANT) or self.defaults

    def _use(self, tenants: dict[str, TenantLimits]) -> None:
        self._tenants = tenants
        path = self.cfg.per_tenant_override_config
        log.info("overrides: limits for %d tenants from %s", len(tenants), path)

    @property
    def reload_failures(self) -> int:
        return self._file.failures if self._file is not None else 0

    def reload(self) -> bool:
        """Re-read the overrides file if it changed; returns whether the limits changed."""
        return self._file.reload() if self._file is not None else False

    async def watch(self, stop: asyncio.Event) -> None:
        """Re-read the file every ``per_tenant_override_period`` until ``stop``."""
        if self._file is not None:
            await self._file.watch(self.cfg.per_tenant_override_period, stop)
