"""Authentication: bearer tokens and HTTP basic auth mapped to tenants and to read/write access.

Credentials come from ``auth.users`` and from ``auth.users_file`` (re-read when it changes;
a file that cannot be read or parsed keeps the credentials in force and is logged). Secrets may
be given hashed (``threadline auth hash``): ``sha256:<hex>`` for tokens (high-entropy, so one
hash suffices) and ``pbkdf2_sha256:<iterations>:<salt>:<hash>`` for passwords; a verified
password is remembered by its SHA-256, so the slow hash is paid once, not per push.

With auth on, ``X-Scope-OrgID`` can only narrow: it must name a tenant the credential allows,
and may be left out when the credential allows exactly one. Everything here is protocol-free;
the HTTP middleware and the gRPC front door map ``AuthError`` to 401/403 and
UNAUTHENTICATED/PERMISSION_DENIED.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

import yaml
from pydantic import TypeAdapter

from threadline.config import AuthConfig, AuthUser
from threadline.reloaded import ReloadedFile
from threadline.tenancy import HEADER, SINGLE_TENANT, TenantError, resolve_tenant

log = logging.getLogger(__name__)

Access = Literal["read", "write"]
ANY_TENANT = "*"
_PBKDF2_ITERATIONS = 200_000


class AuthError(Exception):
    """``status`` 401 (no or wrong credentials) or 403 (not allowed), a clear ``message``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    tenants: frozenset[str]
    read: bool
    write: bool

    @property
    def operator(self) -> bool:
        """May see every tenant (self-metrics, flushing all tenants)."""
        return ANY_TENANT in self.tenants

    def allows(self, tenant: str) -> bool:
        return self.operator or tenant in self.tenants


def hash_token(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str, iterations: int = _PBKDF2_ITERATIONS) -> str:
    salt = os.urandom(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return f"pbkdf2_sha256:{iterations}:{salt.hex()}:{digest.hex()}"


def _password_matches(password: str, stored: str) -> bool:
    try:
        scheme, iterations, salt, digest = stored.split(":")
        if scheme != "pbkdf2_sha256":
            return False
        got = hashlib.pbkdf2_hmac("sha256", password.encode(), bytes.fromhex(salt), int(iterations))
    except ValueError:
        return False
    return hmac.compare_digest(got, bytes.fromhex(digest))


def _principal(user: AuthUser) -> Principal:
    return Principal(
        user.name,
        frozenset(user.tenants),
        read=user.access in ("read", "read-write"),
        write=user.access in ("write", "read-write"),
    )


def check_access(principal: Principal, access: Access) -> None:
    if access == "write" and not principal.write:
        raise AuthError(403, f"credential {principal.name!r} may not push data")
    if access == "read" and not principal.read:
        raise AuthError(403, f"credential {principal.name!r} may not read data")


class _Credentials:
    """One set of users, indexed for lookup."""

    def __init__(self, users: list[AuthUser]) -> None:
        self.by_token: dict[str, Principal] = {}
        self.by_username: dict[str, tuple[AuthUser, Principal]] = {}
        for user in users:
            principal = _principal(user)
            if user.username is not None:
                self.by_username[user.username] = (user, principal)
            else:
                key = user.token_hash or hash_token(user.token or "")
                self.by_token[key.lower()] = principal


_USERS = TypeAdapter(list[AuthUser])


class Authenticator:
    """Checks a request's ``Authorization`` and resolves the tenant it acts for."""

    def __init__(self, cfg: AuthConfig, multitenancy_enabled: bool) -> None:
        self.cfg = cfg
        self.multitenancy_enabled = multitenancy_enabled
        self._verified: dict[str, Principal] = {}  # sha256(user:password) -> principal
        self._credentials = _Credentials(cfg.users)
        self._file: ReloadedFile[list[AuthUser]] | None = None
        if cfg.users_file is not None:
            self._file = ReloadedFile(
                cfg.users_file,
                "auth.users_file",
                lambda text: _USERS.validate_python(yaml.safe_load(text) or []),
                self._use_file_users,
                "credentials",
            )
            self._file.reload(strict=True)

    @property
    def enabled(self) -> bool:
        return self.cfg.enabled

    # -- credentials ------------------------------------------------------------------------

    def _use_file_users(self, users: list[AuthUser]) -> None:
        self._credentials = _Credentials([*self.cfg.users, *users])
        self._verified = {}
        log.info("auth: %d users from %s", len(users), self.cfg.users_file)

    async def watch(self, stop: asyncio.Event) -> None:
        """Re-read ``users_file`` every ``reload_period`` until ``stop``."""
        if self._file is not None:
            await self._file.watch(self.cfg.reload_period, stop)

    def authenticate(self, authorization: str | None) -> Principal:
        """The principal of an ``Authorization`` header value; raises ``AuthError`` (401)."""
        if not authorization:
            raise AuthError(401, "authentication required: send a bearer token or basic auth")
        scheme, _, value = authorization.strip().partition(" ")
        value = value.strip()
        credentials = self._credentials
        if scheme.lower() == "bearer" and value:
            principal = credentials.by_token.get(hash_token(value))
            if principal is not None:
                return principal
            raise AuthError(401, "invalid bearer token")
        if scheme.lower() == "basic" and value:
            try:
                username, sep, password = (
                    base64.b64decode(value, validate=True).decode().partition(":")
                )
            except (binascii.Error, UnicodeDecodeError):
                raise AuthError(401, "malformed basic auth credentials") from None
            if sep:
                return self._basic(credentials, username, password)
            raise AuthError(401, "malformed basic auth credentials")
        raise AuthError(401, "unsupported Authorization: use 'Bearer <token>' or 'Basic ...'")

    def _basic(self, credentials: _Credentials, username: str, password: str) -> Principal:
        key = hashlib.sha256(f"{username}\0{password}".encode()).hexdigest()
        if (known := self._verified.get(key)) is not None:
            return known
        entry = credentials.by_username.get(username)
        if entry is not None:
            user, principal = entry
            ok = (
                hmac.compare_digest(password.encode(), user.password.encode())
                if user.password is not None
                else _password_matches(password, user.password_hash or "")
            )
            if ok:
                if len(self._verified) > 10_000:
                    self._verified.clear()
                self._verified[key] = principal
                return principal
        raise AuthError(401, "invalid username or password")

    # -- tenants ----------------------------------------------------------------------------

    def tenant_for(self, principal: Principal, org_ids: list[str], access: Access) -> str:
        """The tenant ``principal`` acts for, given the request's ``X-Scope-OrgID`` values;
        raises ``AuthError`` (403) or ``TenantError`` (400/401)."""
        check_access(principal, access)
        if len(org_ids) > 1:
            raise TenantError(400, "more than one X-Scope-OrgID")
        header = org_ids[0] if org_ids else None
        if not self.multitenancy_enabled:
            tenant = SINGLE_TENANT
        elif header is None or not header.strip():
            named = sorted(principal.tenants - {ANY_TENANT})
            if principal.operator or len(named) != 1:
                raise TenantError(
                    401,
                    f"no org id: credential {principal.name!r} may use several tenants, "
                    f"so X-Scope-OrgID must name one",
                )
            tenant = named[0]
        else:
            tenant = resolve_tenant(header, True)
        if not principal.allows(tenant):
            raise AuthError(403, f"credential {principal.name!r} may not use tenant {tenant!r}")
        return tenant


def call_tenant(
    metadata: Iterable[tuple[str, str | bytes]],
    auth: Authenticator | None,
    multitenancy_enabled: bool,
    access: Access,
) -> str:
    """The tenant a gRPC call acts for, from its ``x-scope-orgid`` and ``authorization``
    metadata (``auth`` None: no auth); raises ``AuthError`` or ``TenantError``."""
    org_ids, authorization = [], None
    for key, value in metadata:
        text = value if isinstance(value, str) else value.decode()
        if key == HEADER.lower():
            org_ids.append(text)
        elif key == "authorization":
            authorization = text
    if auth is None:
        return resolve_tenant(org_ids, multitenancy_enabled)
    return auth.tenant_for(auth.authenticate(authorization), org_ids, access)
