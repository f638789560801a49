"""Security inside a node: who a request is, the ``system`` database, the initial admin and
the security audit log.

Owns, for one node:

* authentication of gRPC calls from their metadata — ``quiver-session: <token>`` (a token any
  node issued, ``cluster.security.sessions``) or ``authorization: Basic <user:password>``; a
  good basic login answers with its token in the trailing metadata (``quiver-session``),
  and is remembered (keyed by a MAC of the credentials, bounded, expiring, valid only while
  the user's credentials are unchanged) so that a client that never keeps the token does not
  cost an Argon2id hash per request;
* the ``system`` database on the leader: an administration command is executed against the
  applied security state in a worker thread (passwords hashed there) and its commands are
  proposed as one SECURITY entry through Raft; the answer comes after apply. Followers
  forward (``cluster.service``, ``cluster.bolt.cluster_backend``) with the caller's token;
* the bootstrap: a leader whose applied state has no users proposes the initial admin (the
  Argon2id hash ``quiver init`` wrote into the node config, or a hash of the credentials
  file's password), not change-required, so ``quiver up`` then ``quiver query`` works;
* the security audit log (``<data_dir>/audit/security.*.jsonl``): logins, failures,
  lockouts, administration commands (literals masked), authorisation failures;
* the query log (``<data_dir>/audit/query.*.jsonl``, the same hash chain): one record per
  statement a client sent to this node, on either face (a forwarded write is recorded by
  the node the client talked to, not by the leader), gathered on the loop and handed to the
  audit thread in batches without waiting for it; with ``MAX_QUERY_LOG_BATCHES`` batches
  queued there, a statement waits for the oldest (back-pressure, never an unbounded queue
  or a dropped record);
* impersonation (Neo4j's ``IMPERSONATE (user)``): a statement runs as another user, with
  their privileges, when the logged-in user holds that privilege for them
  (:func:`check_impersonation`).

Must never: hash or fsync on the event loop, propose a clear password, or answer an admin
command before its entry is applied.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections import OrderedDict, deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cluster.errors import QuiverError
from cluster.security.admin import AdminResult, execute_admin
from cluster.security.audit import AuditLog, mask_query
from cluster.security.passwords import FailureTracker, hash_password
from cluster.security.privileges import DEFAULT_DATABASE, Action, PrivilegeSet
from cluster.security.sessions import (
    CREDENTIALS_EXPIRED,
    FORBIDDEN,
    UNAUTHORIZED,
    Authenticator,
    Session,
    token_key,
)
from cluster.security.system import Command, SecurityError, SecurityState
from cluster.statemachine import Decision, SecurityEnvelope
from store.crypto import load_kek

if TYPE_CHECKING:
    from cluster.node import Answer, Node

log = logging.getLogger("quiver.security")

SESSION_METADATA: Final = "quiver-session"
AUTHORIZATION_METADATA: Final = "authorization"
SYSTEM_DATABASE: Final = "system"
MAX_REMEMBERED_LOGINS: Final = 10_000
HASH_THREADS: Final = 2
BOOTSTRAP_ATTEMPTS: Final = 3
MAX_CACHED_PRIVILEGES: Final = 10_000
QUERY_LOG_BATCH: Final = 64
QUERY_LOG_FLUSH_S: Final = 0.05
"""Query-log records reach the audit thread in batches of ``QUERY_LOG_BATCH``, a partial
batch after at most this long (a statement costs the loop a list append, not a thread
hand-off; a killed node loses at most this much of its query log)."""
MAX_QUERY_LOG_BATCHES: Final = 16
"""Batches handed to the audit thread and not yet written; then a statement waits."""
QUERY_LOG_SYNC_EVERY: Final = 64
"""Query-log records between fsyncs (each is in the kernel at once; see AuditLog)."""
MAX_TRANSACTION_USERS: Final = 10_000
"""Open gRPC transactions whose impersonated user is remembered (oldest forgotten first)."""
MAX_ADMISSIONS: Final = 10_000
"""Call credentials (a token, or a MAC of a Basic header) whose check is remembered while
the security state is unchanged; past this many all are forgotten at once."""
REMEMBER_LOGIN_MARGIN_S: Final = 60.0
"""A remembered password login is used only while its session has this long left."""
LOGIN_WAITS: Final = 2
"""Times a login waits for the same credentials' verification in flight, at most, before it
verifies them itself."""
LOGIN_WAIT_S: Final = 10.0
"""How long one such wait lasts, at most."""


@dataclass(slots=True, frozen=True)
class _Remembered:
    user: str
    credential_index: int
    session: Session


@dataclass(slots=True, frozen=True)
class _Admission:
    """A call credential already checked against ``state``: good for ``session`` until the
    clock reaches ``until``, while ``state`` is the applied security state (an applied
    change replaces the object, so identity is its version)."""

    state: SecurityState
    session: Session
    until: float
    user: str
    """For a password: whose lockout is checked on every call all the same."""


def _admission_key(key: bytes, authorization: str) -> bytes:
    """The lookup key of a Basic header among the admissions: a MAC (keyed BLAKE2b), never
    the header, so that no password is kept as a lookup key. Not ``hmac.digest``: OpenSSL's
    one-shot HMAC lets go of the GIL, and taking it back costs every call a thread hand-off
    while other threads (gRPC's poller, the audit thread) want it; BLAKE2b keeps it for
    inputs under 2 KiB (and takes 1 us where the HMAC takes 4)."""
    return hashlib.blake2b(authorization.encode(), key=key, digest_size=32).digest()


def parse_basic(value: str) -> tuple[str, str]:
    """(user, password) of an ``authorization: Basic <base64 user:password>`` value."""
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise QuiverError(UNAUTHORIZED, "unsupported authorization scheme (use Basic)")
    try:
        user, sep, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise QuiverError(UNAUTHORIZED, "malformed Basic credentials") from None
    if not sep:
        raise QuiverError(UNAUTHORIZED, "malformed Basic credentials")
    return user, password


def basic_value(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def check_impersonation(state: SecurityState, user: str, target: str) -> None:
    """``user`` may run statements as ``target``: they hold ``IMPERSONATE (target)`` and
    ``target`` exists and is active. Forbidden otherwise, as in Neo4j; the privilege is
    checked first, so that a user without it learns nothing about who exists."""
    if not state.users:
        raise QuiverError(FORBIDDEN, "Impersonation needs users: the initial admin is not set up")
    if not state.privileges_for(user, DEFAULT_DATABASE).can(Action.IMPERSONATE, target):
        raise QuiverError(
            FORBIDDEN, f"Impersonation failed: user '{user}' may not impersonate '{target}'."
        )
    record = state.user(target)
    if record is None:
        raise QuiverError(FORBIDDEN, f"Impersonation failed: the user '{target}' does not exist.")
    if record.suspended:
        raise QuiverError(FORBIDDEN, f"Impersonation failed: the user '{target}' is suspended.")


def _impersonator(session: Session) -> dict[str, str]:
    """The security-log member naming who impersonates ``session``'s user, if anyone."""
    return {"impersonated_by": session.impersonator} if session.impersonator else {}


class NodeSecurity:
    def __init__(self, node: Node) -> None:
        self.node = node
        config = node.config
        self._hashing = ThreadPoolExecutor(max_workers=HASH_THREADS, thread_name_prefix="auth")
        self._audit_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="audit")
        self._bootstrap_admin: tuple[str, str] | None = None
        self._remember_key = secrets.token_bytes(32)
        self._remembered: OrderedDict[bytes, _Remembered] = OrderedDict()
        self._verifying: dict[bytes, asyncio.Future[None]] = {}
        """Password logins being verified, by the key they will be remembered under."""
        self.audit: AuditLog | None = None
        self.authenticator = Authenticator(
            self.state,
            b"",
            self._hashing,
            tracker=FailureTracker(config.auth_max_failures, config.auth_lock_seconds),
            session_ttl_s=config.session_ttl_s,
            audit_executor=self._audit_thread,
            bootstrap=lambda: self._bootstrap_admin,
        )
        self._bootstrapping = False
        self._privileges_state: SecurityState | None = None
        self._privileges: dict[tuple[str, str], PrivilegeSet] = {}
        self._admissions: dict[str | bytes, _Admission] = {}
        self._graph_access: dict[tuple[str, bool], tuple[SecurityState, PrivilegeSet | None]] = {}
        self.query_audit: AuditLog | None = None
        self.query_literals = config.query_log_literals
        self._query_pending: deque[Future[Any]] = deque()
        self._query_buffer: list[dict[str, Any]] = []
        self._query_timer: asyncio.TimerHandle | None = None
        self._transaction_users: OrderedDict[str, str] = OrderedDict()

    def state(self) -> SecurityState:
        sm = self.node.sm
        return SecurityState() if sm is None else sm.security()

    # -- lifetime -----------------------------------------------------------------------------

    async def start(self) -> None:
        """After the store is open: the token key, the initial admin, the audit log."""
        loop = asyncio.get_running_loop()
        config = self.node.config
        kek = await loop.run_in_executor(self._hashing, load_kek, config.key_file)
        self.authenticator._key = token_key(kek)
        self._bootstrap_admin = await loop.run_in_executor(self._hashing, self._initial_admin)
        audit_dir = config.data_dir / "audit"
        self.audit = await loop.run_in_executor(
            self._audit_thread,
            lambda: AuditLog(
                audit_dir, "security", keep_segments=config.security_log_keep_segments
            ),
        )
        self.authenticator.audit = self.audit
        if config.query_log:
            self.query_audit = await loop.run_in_executor(
                self._audit_thread,
                lambda: AuditLog(
                    audit_dir,
                    "query",
                    sync_every=QUERY_LOG_SYNC_EVERY,
                    keep_segments=config.query_log_keep_segments,
                ),
            )

    def _initial_admin(self) -> tuple[str, str] | None:
        config = self.node.config
        if config.admin_user and config.admin_password_hash:
            return config.admin_user, config.admin_password_hash
        if config.credentials is not None and config.credentials.exists():
            doc = json.loads(config.credentials.read_text())
            return str(doc["user"]), hash_password(str(doc["password"]))
        return None

    def close(self) -> None:
        self._hashing.shutdown(wait=True)
        self._hand_over()  # the records still gathering on the loop
        for audit in (self.audit, self.query_audit):
            if audit is not None:
                self._audit_thread.submit(audit.close).result()
        self._audit_thread.shutdown(wait=True)

    # -- bootstrap ----------------------------------------------------------------------------

    def on_leader(self) -> None:
        """Called when this node becomes leader: propose the initial admin if none exists."""
        group = self.node._task_group
        if group is None or self._bootstrapping or self._bootstrap_admin is None:
            return
        if self.state().users:
            return
        self._bootstrapping = True
        group.create_task(self._bootstrap())

    async def _bootstrap(self) -> None:
        try:
            for _ in range(BOOTSTRAP_ATTEMPTS):
                try:
                    await self.ensure_bootstrapped()
                    return
                except QuiverError as error:
                    if not self.node.is_leader():
                        return
                    log.warning(
                        "n%d: the initial admin is not created yet: %s", self.node.id, error
                    )
        finally:
            self._bootstrapping = False

    async def ensure_bootstrapped(self) -> None:
        """On the leader: the initial admin exists in the applied state (proposed if not)."""
        node = self.node
        await node._leader_term_ready()
        admin = self._bootstrap_admin
        if self.state().users or admin is None:
            return
        command = Command("bootstrap_admin", {"name": admin[0], "hash": admin[1]})
        await self._propose([command], "", 0)
        log.info("n%d: created the initial admin %r", node.id, admin[0])

    async def _propose(self, commands: list[Command], client_id: str, sequence: int) -> int:
        node = self.node
        envelope = SecurityEnvelope(client_id, sequence, secrets.token_bytes(16), tuple(commands))
        future = await node._submit(envelope)  # type: ignore[arg-type]
        outcome = await node._outcome(envelope, future)  # type: ignore[arg-type]
        if outcome.decision is Decision.DUPLICATE:
            return outcome.original_index
        return outcome.index

    # -- authentication -----------------------------------------------------------------------

    async def authenticate_metadata(
        self, metadata: tuple[tuple[str, str | bytes], ...], address: str
    ) -> tuple[Session, bool]:
        """The session of a call's metadata, and whether it came from a password (its token
        is then sent back, for the client to use instead).

        A credential that passed is remembered (:class:`_Admission`) while the applied
        security state is the same object and its session is good: a token until it
        expires, a password while its remembered login would be used. Everything the
        checks read — credential indexes, suspensions, drops, password changes — lives in
        that state, so the answer is the one the checks would give; the lockout of a
        password's user and client host, kept outside it, is checked on every call."""
        token = ""
        authorization = ""
        for key, value in metadata:
            text = value.decode() if isinstance(value, bytes) else value
            if key == SESSION_METADATA:
                token = text
            elif key == AUTHORIZATION_METADATA:
                authorization = text
        if token:
            try:
                return self.token_session(token), False
            except QuiverError:
                if not authorization:
                    raise
        if not authorization:
            raise QuiverError(
                UNAUTHORIZED, "no credentials: send 'authorization: Basic ...' or a session token"
            )
        key = _admission_key(self._remember_key, authorization)
        state = self.state()
        admitted = self._admissions.get(key)
        if admitted is not None and admitted.state is state and time.time() < admitted.until:
            await self.authenticator.check_locked(admitted.user, address)
            return admitted.session, True
        user, password = parse_basic(authorization)
        session, _ = await self.login(user, password, address)
        until = session.expires_at - REMEMBER_LOGIN_MARGIN_S
        # Not if a change was applied while the password was hashed, nor a session too short
        # to be remembered at all.
        if self.state() is state and time.time() < until:
            self._admit(key, _Admission(state, session, until, user))
        return session, True

    def token_session(self, token: str) -> Session:
        """A session token's session, remembered (:class:`_Admission`) while the applied
        security state is the same object and the token has not expired: a call's token on
        the gRPC face, a connection's on the Bolt face (checked again for every statement)."""
        state = self.state()
        admitted = self._admissions.get(token)
        if (
            admitted is not None
            and admitted.state is state
            and self.authenticator._clock() < admitted.until
        ):
            return admitted.session
        session = self.authenticator.check_token(token)
        self._admit(token, _Admission(state, session, session.expires_at, ""))
        return session

    def _admit(self, key: str | bytes, admission: _Admission) -> None:
        if len(self._admissions) >= MAX_ADMISSIONS:
            self._admissions.clear()
        self._admissions[key] = admission

    async def login(self, user: str, password: str, address: str) -> tuple[Session, bool]:
        """A password login, from memory when these credentials were verified lately and the
        user's credentials have not changed since."""
        await self.authenticator.check_locked(user, address)  # locked whatever the password
        key = hmac.new(self._remember_key, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        for waited in range(LOGIN_WAITS + 1):
            remembered = self._from_memory(key, user)
            if remembered is not None:
                return remembered, False
            # The same credentials are being verified (a pool of connections opened at
            # once): wait for that one hash instead of computing it again. A verification
            # that failed remembers nothing, so each waiter then tries, and counts, its own.
            verifying = self._verifying.get(key)
            if verifying is None or waited == LOGIN_WAITS:
                break
            await asyncio.wait([verifying], timeout=LOGIN_WAIT_S)
            await self.authenticator.check_locked(user, address)  # locked meanwhile?
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._verifying.setdefault(key, done)
        try:
            session = await self.authenticator.login(user, password, address)
            state = self.state()
            index = self._credential_index(state, user)
            if index is not None:
                self._remembered[key] = _Remembered(user, index, session)
                while len(self._remembered) > MAX_REMEMBERED_LOGINS:
                    self._remembered.popitem(last=False)
        finally:
            if self._verifying.get(key) is done:
                del self._verifying[key]
            done.set_result(None)
        if not state.users and self.node.is_leader():
            self.on_leader()  # the initial admin logged in before its bootstrap entry applied
        return session, True

    def _from_memory(self, key: bytes, user: str) -> Session | None:
        """The session of a login remembered under `key`, if the user's credentials have
        not changed since and it is not about to expire (else it is forgotten)."""
        remembered = self._remembered.get(key)
        if remembered is None:
            return None
        state = self.state()
        record = state.user(user)
        fresh = remembered.session.expires_at - time.time() > REMEMBER_LOGIN_MARGIN_S
        if (
            not fresh
            or self._credential_index(state, user) != remembered.credential_index
            or (record is not None and record.suspended)
        ):
            del self._remembered[key]
            return None
        self._remembered.move_to_end(key)
        session = remembered.session
        change_required = record is not None and record.change_required
        if session.change_required != change_required:
            session = dataclasses.replace(session, change_required=change_required)
        return session

    def _credential_index(self, state: SecurityState, user: str) -> int | None:
        """Which password of `user` a login checked: the record's credential index; 0 for
        the initial admin while no user exists yet (its password is the configured hash);
        None for nobody."""
        record = state.user(user)
        if record is not None:
            return record.credential_index
        admin = self._bootstrap_admin
        if not state.users and admin is not None and admin[0] == user:
            return 0
        return None

    def session(self, token: str) -> Session:
        return self.authenticator.check_token(token)

    # -- authorisation ------------------------------------------------------------------------

    def privileges(self, user: str, database: str = DEFAULT_DATABASE) -> PrivilegeSet:
        """``user``'s resolved privileges on ``database``, for the engine: cached until the
        security state changes (an applied SECURITY entry replaces the state object)."""
        state = self.state()
        if state is not self._privileges_state:
            self._privileges_state = state
            self._privileges = {}
        key = (user, database)
        found = self._privileges.get(key)
        if found is None:
            if len(self._privileges) >= MAX_CACHED_PRIVILEGES:
                self._privileges.clear()
            found = self._privileges[key] = state.privileges_for(user, database)
        return found

    def graph_privileges(self, session: Session) -> PrivilegeSet | None:
        """What the engine restricts ``session``'s statements on the graph to; None (the
        unfiltered path) for a user whose roles deny nothing and grant everything, as the
        built-in admin's do, and for the initial admin before the bootstrap entry reached
        here."""
        if not self.state().users:
            return None
        privileges = self.privileges(session.user, DEFAULT_DATABASE)
        return None if privileges.unrestricted else privileges

    async def check_graph_access(self, session: Session, address: str) -> None:
        """A graph query: the user's password is current and they may access the database."""
        if session.change_required:
            await self._refused(session, address, "credentials expired")
            raise QuiverError(
                CREDENTIALS_EXPIRED,
                "Permission denied. The credentials you provided were valid, but must be "
                "changed before you can use this instance.",
            )
        state = self.state()
        if not state.users:
            return  # the initial admin, before the bootstrap entry reached this node
        if not self.privileges(session.user, DEFAULT_DATABASE).can(Action.ACCESS):
            record = state.user(session.user)
            roles = sorted({"PUBLIC", *(record.roles if record else ())})
            raise QuiverError(
                FORBIDDEN,
                f"Database access is not allowed for user '{session.user}' with roles {roles}.",
            )

    async def graph_restriction(self, session: Session, address: str) -> PrivilegeSet | None:
        """:meth:`check_graph_access`, then :meth:`graph_privileges`: what the engine
        restricts ``session``'s statement to. Both answers follow from the user, their
        password state and the applied security state, so a pass is remembered while that
        state is the same object (an applied change replaces it); a refusal never is."""
        state = self.state()
        key = (session.user, session.change_required)
        allowed = self._graph_access.get(key)
        if allowed is not None and allowed[0] is state:
            return allowed[1]
        await self.check_graph_access(session, address)
        restriction = self.graph_privileges(session)
        if self.state() is state:
            if len(self._graph_access) >= MAX_CACHED_PRIVILEGES:
                self._graph_access.clear()
            self._graph_access[key] = (state, restriction)
        return restriction

    async def authorization_failed(self, session: Session, address: str, query: str) -> None:
        """A statement refused with Forbidden (by the engine's write checks): audited with
        its literals masked; the faces call it for every Forbidden answer."""
        await self.authenticator.record(
            "authorization_failed", user=session.user, client=address, query=mask_query(query)
        )

    async def _refused(self, session: Session, address: str, what: str) -> None:
        await self.authenticator.record(
            "authorization_failed",
            user=session.user,
            client=address,
            reason=what,
            **_impersonator(session),
        )

    # -- impersonation ------------------------------------------------------------------------

    async def acting(self, session: Session, target: str, address: str) -> Session:
        """Who a statement runs as: ``session`` itself, or (``target`` named) the impersonated
        user, checked by :func:`check_impersonation` after the caller's own password state.
        The returned session keeps the caller's token (a forwarded request carries the
        caller's token and the target's name, and the leader checks again)."""
        if not target or target == session.user:
            return session
        if session.change_required:
            await self._refused(session, address, "credentials expired")
            raise QuiverError(
                CREDENTIALS_EXPIRED,
                "Permission denied. The credentials you provided were valid, but must be "
                "changed before you can use this instance.",
            )
        try:
            check_impersonation(self.state(), session.user, target)
        except QuiverError as error:
            await self.authenticator.record(
                "impersonation_failed",
                user=session.user,
                client=address,
                impersonated=target,
                reason=error.message,
            )
            raise
        return dataclasses.replace(
            session, user=target, change_required=False, impersonator=session.user
        )

    def remember_transaction(self, tx_id: str, impersonated: str) -> None:
        """A gRPC transaction begun as ``impersonated``: its statements run (and are logged)
        as that user whatever their requests say."""
        if not impersonated:
            return
        self._transaction_users[tx_id] = impersonated
        while len(self._transaction_users) > MAX_TRANSACTION_USERS:
            self._transaction_users.popitem(last=False)

    def transaction_user(self, tx_id: str) -> str:
        return self._transaction_users.get(tx_id, "")

    def forget_transaction(self, tx_id: str) -> None:
        self._transaction_users.pop(tx_id, None)

    # -- the query log ------------------------------------------------------------------------

    async def log_query(
        self,
        *,
        user: str,
        impersonated: str,
        client: str,
        database: str,
        query: str,
        parameters: dict[str, Any],
        started: float,
        rows: int,
        outcome: str,
    ) -> None:
        """One statement's query-log record (``started``: its ``time.monotonic()``), and its
        count and duration in the node's metrics.

        Records gather on the loop and go to the audit thread in batches (masking and the
        write happen there): a full batch at once, else after ``QUERY_LOG_FLUSH_S``. A
        statement waits only when ``MAX_QUERY_LOG_BATCHES`` batches are already queued."""
        seconds = time.monotonic() - started
        self.node.metrics.statement(database, outcome, seconds)
        audit = self.query_audit
        if audit is None:
            return
        self._query_buffer.append(
            {
                "user": user,
                "client": client,
                "query": query,
                "duration_ms": round(seconds * 1000, 3),
                "rows": rows,
                "outcome": outcome,
                "parameters": dict.fromkeys(parameters),
                "database": database,
                "impersonated": impersonated if impersonated != user else "",
            }
        )
        if len(self._query_buffer) >= QUERY_LOG_BATCH:
            pending = self._query_pending
            self._reap_written()
            while len(pending) >= MAX_QUERY_LOG_BATCHES:
                oldest = pending.popleft()
                await asyncio.wrap_future(oldest)
                self._reap(oldest)
            self._hand_over()
        elif self._query_timer is None:
            loop = asyncio.get_running_loop()
            self._query_timer = loop.call_later(QUERY_LOG_FLUSH_S, self._flush_query_log)

    def _flush_query_log(self) -> None:
        """The timer's hand-over of a partial batch (never waits: with the queue full it
        tries again later, and a full batch makes its statement wait)."""
        self._query_timer = None
        self._reap_written()
        if len(self._query_pending) >= MAX_QUERY_LOG_BATCHES:
            loop = asyncio.get_running_loop()
            self._query_timer = loop.call_later(QUERY_LOG_FLUSH_S, self._flush_query_log)
            return
        self._hand_over()

    def _hand_over(self) -> Future[Any] | None:
        if self._query_timer is not None:
            self._query_timer.cancel()
            self._query_timer = None
        batch, self._query_buffer = self._query_buffer, []
        audit = self.query_audit
        if not batch or audit is None:
            return None
        literals = self.query_literals

        written = self._audit_thread.submit(audit.queries, batch, literals=literals)
        self._query_pending.append(written)
        return written

    def _reap_written(self) -> None:
        pending = self._query_pending
        while pending and pending[0].done():
            self._reap(pending.popleft())

    def _reap(self, written: Future[Any]) -> None:
        error = written.exception()
        if error is not None:
            log.error("n%d: query-log records were not written: %s", self.node.id, error)

    # -- the system database ------------------------------------------------------------------

    async def system(
        self,
        session: Session,
        query: str,
        parameters: dict[str, Any],
        address: str,
        client_id: str = "",
        sequence: int = 0,
    ) -> Answer:
        """One administration command, on the leader (callers checked leadership)."""
        from cluster.node import Answer, bookmark
        from proto import client_pb2

        node = self.node
        await self.ensure_bootstrapped()
        sm = node.sm
        if client_id and sm is not None:
            record = sm.client_record(client_id)
            if record is not None and sequence <= record[0]:
                # A retry of a command already applied (its answer was lost): not again.
                return Answer(
                    [], [], {}, bookmark(record[1]), node.applied_index,
                    client_pb2.QUERY_TYPE_WRITE_ONLY,
                )  # fmt: skip
        if session.impersonator and mask_query(query).upper().split()[:3] == [
            "ALTER", "CURRENT", "USER",
        ]:  # fmt: skip
            # Before the old password is checked: no guessing another user's password.
            await self._impersonated_password_change(session, address)
        state = self.state()
        loop = asyncio.get_running_loop()
        try:
            result: AdminResult = await loop.run_in_executor(
                self._hashing, lambda: execute_admin(state, session.user, query, parameters)
            )
        except SecurityError as error:
            event = "authorization_failed" if "Security" in error.code else "admin_failed"
            await self.authenticator.record(
                event, user=session.user, client=address, query=mask_query(query),
                code=error.code, **_impersonator(session),
            )  # fmt: skip
            raise QuiverError(error.code, error.message) from None
        if session.impersonator and result.kind == "ALTER CURRENT USER":
            await self._impersonated_password_change(session, address)
        if not result.writes:
            if result.kind != "SHOW":
                await self._admin_record(session, address, query, result, 0)
            return Answer(
                result.columns,
                result.rows,
                {},
                bookmark(node.applied_index),
                node.applied_index,
                client_pb2.QUERY_TYPE_READ_ONLY,
            )
        try:
            index = await self._propose(result.commands, client_id, sequence)
        except QuiverError as error:
            await self.authenticator.record(
                "admin_failed", user=session.user, client=address, query=mask_query(query),
                code=error.code,
            )  # fmt: skip
            raise
        await self._admin_record(session, address, query, result, index)
        return Answer([], [], {}, bookmark(index), index, client_pb2.QUERY_TYPE_WRITE_ONLY)

    async def _impersonated_password_change(self, session: Session, address: str) -> None:
        await self._refused(session, address, "password change while impersonating")
        raise QuiverError(
            FORBIDDEN, "Changing the password of an impersonated user is not allowed."
        )

    async def _admin_record(
        self, session: Session, address: str, query: str, result: AdminResult, index: int
    ) -> None:
        await self.authenticator.record(
            "admin_command",
            user=session.user,
            client=address,
            command=result.kind,
            target=result.target,
            query=mask_query(query),
            index=index,
            **_impersonator(session),
        )
