"""Authentication of a node's clients: logins against the replicated users, lockout, session
tokens, and the security audit records of both.

A login (user and password, gRPC ``authorization: Basic ...`` or Bolt LOGON) is checked
against the replicated :class:`SecurityState` with Argon2id in a worker thread (never on the
event loop), under a :class:`FailureTracker` (per user and per client host: after
``max_failures`` failures ``lock_seconds`` of ``Neo.ClientError.Security.AuthenticationRateLimit``).
A wrong password, an unknown user and a suspended user get the same
``Neo.ClientError.Security.Unauthorized``.

A good login yields a session token::

    <base64url of {"u": user, "c": credential_index, "e": expiry (unix s), "n": nonce}>.<mac>

MACed (HMAC-SHA-256) with a key derived from the cluster's key-encryption key, which every
node holds: any node checks any node's token without a round trip, so a follower can forward
a request to the leader with it. A token is good while it has not expired, its user exists
and is active, and the user's ``credential_index`` is the one it names: a password change, a
suspension or a drop (through Raft, on every node) revokes it everywhere.

Must never: verify a password on the event loop, log a password, or tell an unknown user
from a wrong password.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Final

from cluster.errors import QuiverError
from cluster.security.audit import AuditLog
from cluster.security.passwords import AccountLocked, FailureTracker, hash_password, verify_password
from cluster.security.system import SecurityState

log = logging.getLogger("quiver.auth")

UNAUTHORIZED: Final = "Neo.ClientError.Security.Unauthorized"
RATE_LIMIT: Final = "Neo.ClientError.Security.AuthenticationRateLimit"
CREDENTIALS_EXPIRED: Final = "Neo.ClientError.Security.CredentialsExpired"
FORBIDDEN: Final = "Neo.ClientError.Security.Forbidden"
DEFAULT_SESSION_TTL_S: Final = 3600.0
MAX_TOKEN_CHARS: Final = 2048
_FAILED: Final = "The client is unauthorized due to authentication failure."
# Verified against when the user does not exist, so that the answer takes as long.
_DUMMY_HASH: Final = hash_password("quiver-no-such-user-password")


def client_host(address: str) -> str:
    """The host of ``host:port`` / ``[v6]:port`` (lockout counts per host, not connection)."""
    if address.startswith("["):
        return address[1:].partition("]")[0]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def token_key(kek: bytes) -> bytes:
    """The session-token MAC key, derived from the cluster's key-encryption key."""
    return hmac.new(kek, b"quiver session token key v1", hashlib.sha256).digest()


@dataclass(slots=True, frozen=True)
class Session:
    user: str
    token: str
    expires_at: float
    change_required: bool
    impersonator: str = ""
    """Who logged in, when this session runs as ``user`` by impersonation (the token is
    theirs)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Authenticator:
    """Logins and tokens for one node. Call from the event loop (the tracker is not
    thread-safe); hashing goes to ``executor``, audit appends to ``audit_executor``."""

    def __init__(
        self,
        state: Callable[[], SecurityState],
        key: bytes,
        executor: Executor,
        *,
        tracker: FailureTracker | None = None,
        session_ttl_s: float = DEFAULT_SESSION_TTL_S,
        audit: AuditLog | None = None,
        audit_executor: Executor | None = None,
        bootstrap: Callable[[], tuple[str, str] | None] = lambda: None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._state = state
        self._key = key
        self._executor = executor
        self.tracker = tracker if tracker is not None else FailureTracker()
        self.session_ttl_s = session_ttl_s
        self.audit = audit
        self._audit_executor = audit_executor or executor
        self._bootstrap = bootstrap
        """(user, hash) of the initial admin, accepted while the replicated state has no
        users yet (a fresh cluster before its bootstrap entry is applied here)."""
        self._clock = clock

    # -- audit --------------------------------------------------------------------------------

    async def record(self, event: str, **fields: Any) -> None:
        """A security-log record (off the loop; durable when it returns)."""
        if self.audit is None:
            return
        audit = self.audit
        await asyncio.get_running_loop().run_in_executor(
            self._audit_executor, lambda: audit.security(event, **fields)
        )

    # -- logins -------------------------------------------------------------------------------

    async def check_locked(self, user: str, address: str) -> None:
        """AuthenticationRateLimit while the user or the client host is locked out."""
        if not len(self.tracker):
            return  # no failure counted anywhere: nobody is locked out
        try:
            self.tracker.check(user, client_host(address))
        except AccountLocked as locked:
            await self.record("login_locked", user=user, client=address)
            raise QuiverError(RATE_LIMIT, str(locked)) from None

    async def login(self, user: str, password: str, address: str) -> Session:
        """Check a user's password; a session token on success."""
        await self.check_locked(user, address)
        host = client_host(address)
        state = self._state()
        record = state.user(user)
        expected = _DUMMY_HASH
        credential_index = 0
        change_required = False
        active = False
        if record is not None:
            expected, credential_index = record.password_hash, record.credential_index
            change_required, active = record.change_required, not record.suspended
        elif not state.users:
            initial = self._bootstrap()
            if initial is not None and initial[0] == user:
                expected, active = initial[1], True
        loop = asyncio.get_running_loop()
        good = await loop.run_in_executor(self._executor, verify_password, password, expected)
        if not good or not active:
            locked = self.tracker.failed(user, host)
            reason = "suspended" if good else "bad credentials"
            await self.record("login_failed", user=user, client=address, reason=reason)
            if locked:
                await self.record("lockout", user=user, client=address)
            raise QuiverError(UNAUTHORIZED, _FAILED)
        self.tracker.succeeded(user, host)
        await self.record("login", user=user, client=address, change_required=change_required)
        return self.issue(user, credential_index, change_required)

    def issue(self, user: str, credential_index: int, change_required: bool = False) -> Session:
        expires_at = self._clock() + self.session_ttl_s
        payload = json.dumps(
            {
                "u": user,
                "c": credential_index,
                "e": round(expires_at, 3),
                "n": secrets.token_hex(8),
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        body = _b64(payload)
        mac = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        return Session(user, f"{body}.{mac}", expires_at, change_required)

    def _initial_token(self, user: str, credential_index: int, password_hash: str) -> bool:
        """A token issued to the initial admin before the bootstrap entry was applied here
        stays good while that admin's password is the initial one."""
        initial = self._bootstrap()
        return credential_index == 0 and initial is not None and initial == (user, password_hash)

    def check_token(self, token: str) -> Session:
        """The session a token stands for; Unauthorized when forged, expired or revoked."""
        if len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
            raise QuiverError(UNAUTHORIZED, "malformed session token")
        body, mac = token.split(".")
        expected = _b64(hmac.new(self._key, body.encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(mac, expected):
            raise QuiverError(UNAUTHORIZED, "invalid session token")
        try:
            doc = json.loads(_unb64(body))
            user, credential_index, expires_at = str(doc["u"]), int(doc["c"]), float(doc["e"])
        except (ValueError, KeyError, TypeError):
            raise QuiverError(UNAUTHORIZED, "malformed session token") from None
        if self._clock() >= expires_at:
            raise QuiverError(UNAUTHORIZED, "the session token has expired; log in again")
        state = self._state()
        record = state.user(user)
        if record is None:
            if not state.users and credential_index == 0:
                initial = self._bootstrap()
                if initial is not None and initial[0] == user:
                    return Session(user, token, expires_at, False)
            raise QuiverError(UNAUTHORIZED, "the session token was revoked")
        if record.suspended:
            raise QuiverError(UNAUTHORIZED, "the session token was revoked")
        if record.credential_index != credential_index and not self._initial_token(
            user, credential_index, record.password_hash
        ):
            raise QuiverError(UNAUTHORIZED, "the session token was revoked")
        return Session(user, token, expires_at, record.change_required)
