"""Tenant resolution from ``X-Scope-OrgID`` (HTTP header / gRPC metadata ``x-scope-orgid``).

A tenant id names a directory (``blocks/<tenant>/``) or a key prefix in a bucket, so the rules
are Cortex's and Tempo's (letters, digits and ``!-_.*'()``, at most 150 bytes, not ``.`` or
``..``) plus two of our own that keep an id from colliding with the storage layout: no leading
dot (dot-names are the server's own entries, such as its lock file and staging directories,
which the block list skips) and not a name of the data directory's own entries (``wal``,
``staging``, ``cache``, ``tmp``) or of the tenant index (``index.json.gz``), compared without
case for case-insensitive file systems, since the local backend may be pointed at the data
directory itself.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

SINGLE_TENANT = "single-tenant"
HEADER = "X-Scope-OrgID"
MAX_TENANT_LENGTH = 150
_VALID = re.compile(r"[A-Za-z0-9!\-_.*'()]+")
RESERVED_TENANTS = frozenset({"wal", "staging", "cache", "tmp", "index.json.gz"})
_SHOWN = 60  # characters of a refused id quoted back in the message


class TenantError(Exception):
    """A request whose tenant cannot be used; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _shown(text: str) -> str:
    """``text`` quoted for a message: ASCII only (escapes), cut to a readable length."""
    quoted = ascii(text[:_SHOWN])
    return quoted + ("..." if len(text) > _SHOWN else "")


def tenant_problem(tenant: str) -> str | None:
    """Why ``tenant`` is not a usable tenant id, or None if it is."""
    if not _VALID.fullmatch(tenant):
        return (
            f"invalid tenant id {_shown(tenant)}: only ASCII letters, digits and !-_.*'() "
            f"are allowed"
        )
    if len(tenant) > MAX_TENANT_LENGTH:
        return f"tenant id is longer than {MAX_TENANT_LENGTH} characters"
    if tenant.startswith("."):
        return f"invalid tenant id {_shown(tenant)}: must not start with '.'"
    if tenant.casefold() in RESERVED_TENANTS:
        return f"invalid tenant id {tenant!r}: the name is reserved by the storage layout"
    return None


def _text(value: str | bytes) -> str:
    if isinstance(value, bytes):
        try:
            return value.decode("ascii")
        except UnicodeDecodeError:
            raise TenantError(400, "invalid tenant id: not ASCII text") from None
    return value


def resolve_tenant(
    header: str | bytes | Sequence[str | bytes] | None, multitenancy_enabled: bool
) -> str:
    """The tenant a request belongs to; raises TenantError (401 missing, 400 invalid).

    ``header`` is the header's value, or every value the request carries (a list: more than
    one is refused rather than silently choosing one)."""
    if not multitenancy_enabled:
        return SINGLE_TENANT
    if isinstance(header, Sequence) and not isinstance(header, str | bytes):
        if len(header) > 1:
            raise TenantError(400, f"more than one {HEADER}")
        header = header[0] if header else None
    tenant = _text(header).strip() if header is not None else ""
    if not tenant:
        raise TenantError(401, "no org id")
    if problem := tenant_problem(tenant):
        raise TenantError(400, problem)
    return tenant
