"""Tenant resolution from ``X-Scope-OrgID`` (HTTP header / gRPC metadata ``x-scope-orgid``)."""

from __future__ import annotations

import re

SINGLE_TENANT = "single-tenant"
HEADER = "X-Scope-OrgID"
_VALID = re.compile(r"^[A-Za-z0-9!\-_.*'()]+$")
_MAX_LEN = 150


class TenantError(Exception):
    """A request whose tenant cannot be used; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def resolve_tenant(header: str | None, multitenancy_enabled: bool) -> str:
    """The tenant a request belongs to; raises TenantError (401 missing, 400 invalid)."""
    if not multitenancy_enabled:
        return SINGLE_TENANT
    if not header:
        raise TenantError(401, "no org id")
    tenant = header.strip()
    if len(tenant.encode()) > _MAX_LEN:
        raise TenantError(400, f"tenant id is longer than {_MAX_LEN} bytes")
    if tenant in (".", "..") or not _VALID.match(tenant):
        raise TenantError(
            400,
            f"invalid tenant id {tenant!r}: only letters, digits and !-_.*'() are allowed",
        )
    return tenant
