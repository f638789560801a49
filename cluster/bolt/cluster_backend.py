"""``BoltBackend`` over a cluster node: the Bolt face on the gRPC face's session layer.

Every call goes to the same ``cluster.node.Node`` methods the gRPC ``QueryService`` uses —
``read`` (causal, after the bookmarks), ``write`` (on the leader), ``begin`` /
``run_in_transaction`` / ``commit`` / ``rollback`` (explicit transactions: read-write ones on
the leader, read-only ones on any member) —
so both faces share one engine, one transaction table, one error taxonomy. On a follower:
an auto-commit write is forwarded to the leader over the client gRPC API exactly as
``QueryService`` forwards it; a write transaction is proxied to the leader whole (Neo4j's
server-side routing, ``cluster.bolt.forwarded``: Begin, every Run, Commit and Rollback on the
node that began it), so that a driver on ``bolt://`` to a follower can write; a lost leader
fails its statement with a retryable ``Neo.TransientError.*``. A read transaction runs on
the node it was begun on, any member, over one snapshot of its graph taken once the
bookmarks are applied there: its statements see one moment, and its commit answers that
moment's bookmark. On the leader (or a follower that became it) write transactions run
locally.

Routing: the leader as writer, every other member (learners included) as reader, every
member as router, from the node's live Raft status and the members' Bolt addresses.

Every statement (auto-commit or in a transaction) goes to the node's query log, with the
logged-on user and the impersonated one (BEGIN/RUN ``imp_user``, checked by
``NodeSecurity.acting``); a write or transaction forwarded to the leader is recorded here,
not there.

Must never: execute Cypher outside the node's paths, or answer a write before it is applied.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, Protocol

from cluster import errors
from cluster.bolt.backend import (
    SYSTEM_DATABASE,
    UNAUTHORIZED,
    AccessMode,
    ConnectionInfo,
    Principal,
    QueryResult,
    RoutingTable,
    Summary,
    TransactionOptions,
    check_basic_auth,
)
from cluster.bolt.embedded import system_database_result
from cluster.bolt.forwarded import QUERY_TYPE, ForwardedTransaction, forward_run
from cluster.errors import QuiverError
from cluster.node import CAUSAL_WAIT_S, parse_bookmarks, statement_deadline
from proto import admin_pb2, client_pb2

if TYPE_CHECKING:
    from cluster.security.node_security import NodeSecurity
    from cluster.security.sessions import Session

ROUTING_TTL_S: Final = 30
FORBIDDEN: Final = "Neo.ClientError.Security.Forbidden"


class AnswerLike(Protocol):
    columns: list[str]
    rows: list[list[Any]]
    counters: dict[str, int]
    bookmark: str
    query_type: int


class ClusterNode(Protocol):
    """What this backend uses of ``cluster.node.Node`` (its public request paths)."""

    id: int

    def is_leader(self) -> bool: ...

    def status(self) -> admin_pb2.NodeStatus: ...

    async def read(
        self,
        query: str,
        parameters: dict[str, Any],
        consistency: int,
        bookmarks: list[str],
        privileges: Any = None,
        deadline: float | None = None,
    ) -> AnswerLike: ...

    async def write(
        self,
        query: str,
        parameters: dict[str, Any],
        client_id: str,
        sequence: int,
        privileges: Any = None,
        deadline: float | None = None,
    ) -> AnswerLike: ...

    async def wait_applied(self, index: int, timeout_s: float, code: str) -> None: ...

    async def begin(
        self, client_id: str, timeout_ms: int, privileges: Any = None, read_only: bool = False
    ) -> str: ...

    async def run_in_transaction(
        self, tx_id: str, query: str, parameters: dict[str, Any]
    ) -> AnswerLike: ...

    async def commit(self, tx_id: str) -> str: ...

    def rollback(self, tx_id: str) -> None: ...

    async def forward_channel(self) -> Any: ...


@dataclass(slots=True)
class _ReadTransaction:
    """In the system database without a security layer (which answers its few reads)."""

    bookmarks: list[str]
    privileges: Any = None
    """What the node's read path restricts the user to (None: unrestricted)."""
    audit: _Audit | None = None
    deadline: float | None = None
    """From BEGIN's tx_timeout: its statements stop there (None: each its own default)."""


@dataclass(slots=True, frozen=True)
class _NodeTransaction:
    tx_id: str
    audit: _Audit | None = None


@dataclass(slots=True, frozen=True)
class _Audit:
    """Who a transaction's statements are logged as."""

    session: Session
    impersonated: str
    connection: ConnectionInfo
    database: str


@dataclass(slots=True)
class _SystemTransaction:
    """Administration commands in an explicit transaction (a driver's managed transaction on
    ``system``): each one commits through Raft as it runs, as in Neo4j."""

    user: Principal
    options: TransactionOptions
    connection: ConnectionInfo
    bookmark: str | None = None


def _result(answer: AnswerLike, auto_commit: bool) -> QueryResult:
    summary = Summary(
        dict(answer.counters),
        answer.bookmark or None if auto_commit else None,
        QUERY_TYPE.get(answer.query_type, "r"),
    )
    return QueryResult.of(answer.columns, answer.rows, summary)


class _HasBolt(Protocol):
    bolt: str


class PeerBoltAddresses(Mapping[int, str]):
    """Node id -> Bolt address, read live from the node's member table (``Node.peers``), so
    that a member added at run time (its conf change carries its address) is routed to as
    soon as it is applied; members without a Bolt address are left out."""

    def __init__(self, peers: Mapping[int, _HasBolt]) -> None:
        self._peers = peers

    def __getitem__(self, node_id: int) -> str:
        peer = self._peers.get(node_id)
        if peer is None or not peer.bolt:
            raise KeyError(node_id)
        return peer.bolt

    def __iter__(self) -> Iterator[int]:
        return iter([node_id for node_id, peer in self._peers.items() if peer.bolt])

    def __len__(self) -> int:
        return sum(1 for peer in self._peers.values() if peer.bolt)


def _bookmark_index(bookmark: str) -> int:
    tail = bookmark.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else -1


@dataclass(slots=True, frozen=True)
class SessionPrincipal(Principal):
    """A principal logged on against the replicated users, with its session token: each
    statement checks the token again, so a suspension, a drop or a password change ends
    the connection's rights at once."""

    token: str = ""


@dataclass
class NodeBackend:
    node: ClusterNode
    bolt_addresses: Mapping[int, str]
    """Node id -> the host:port its Bolt listener advertises (``"bolt"`` in cluster.json)."""
    users: Mapping[str, str] = field(default_factory=dict)
    """user -> password, for a backend without ``security`` (tests of the Bolt face)."""
    security: NodeSecurity | None = None
    """The node's users, sessions and ``system`` database (``cluster.security``)."""

    async def authenticate(
        self, scheme: str, principal: str, credentials: str, connection: ConnectionInfo
    ) -> Principal:
        if self.security is None:
            return check_basic_auth(self.users, scheme, principal, credentials)
        if scheme != "basic":
            raise QuiverError(UNAUTHORIZED, "only the basic scheme is supported")
        session, _ = await self.security.login(principal, credentials, connection.client_address)
        record = self.security.state().user(session.user)
        roles = tuple(sorted(record.roles)) if record is not None else ("admin",)
        return SessionPrincipal(session.user, roles, session.token)

    async def _restrict(self, session: Session | None, connection: ConnectionInfo) -> Any:
        """Check the user may use the graph; the privileges that restrict the node's read,
        write and begin (None: unrestricted, and without a security layer). Remembered by
        the shared layer (``NodeSecurity.graph_restriction``, as for the gRPC face) while
        the applied security state is the same object."""
        security = self.security
        if security is None or session is None:
            return None
        return await security.graph_restriction(session, connection.client_address)

    def _session(self, user: Principal) -> Session | None:
        """The statement's session, its token checked again, through the admissions the
        gRPC face's calls use (``NodeSecurity.token_session``): what a check depends on
        (credential indexes, suspensions, drops) lives in the replicated security state, so
        the answer is remembered while that state is the same object and the token good."""
        security = self.security
        if security is None:
            return None
        return security.token_session(user.token if isinstance(user, SessionPrincipal) else "")

    async def run(
        self,
        user: Principal,
        query: str,
        parameters: dict[str, Any],
        options: TransactionOptions,
        connection: ConnectionInfo,
    ) -> QueryResult:
        started = time.monotonic()
        security = self.security
        if security is None:
            return await self._run(None, query, parameters, options, connection)
        session = self._session(user)
        assert session is not None
        failure: QuiverError | None = None
        try:
            result = await self._run(session, query, parameters, options, connection)
        except QuiverError as error:
            if error.code == FORBIDDEN:
                await security.authorization_failed(session, connection.client_address, query)
            failure = error
        await security.log_query(
            user=session.user,
            impersonated=options.imp_user or "",
            client=connection.client_address,
            database=options.database,
            query=query,
            parameters=parameters,
            started=started,
            rows=0 if failure is not None else len(result.rows or ()),
            outcome=failure.code if failure is not None else "ok",
        )
        if failure is not None:
            raise failure
        return result

    async def _log(
        self,
        audit: _Audit | None,
        query: str,
        parameters: dict[str, Any],
        started: float,
        rows: int,
        outcome: str,
    ) -> None:
        if self.security is None or audit is None:
            return
        await self.security.log_query(
            user=audit.session.user,
            impersonated=audit.impersonated,
            client=audit.connection.client_address,
            database=audit.database,
            query=query,
            parameters=parameters,
            started=started,
            rows=rows,
            outcome=outcome,
        )

    async def _acting(
        self, session: Session | None, options: TransactionOptions, connection: ConnectionInfo
    ) -> Session | None:
        """Who the statements run as: the session's user or the impersonated one."""
        if not options.imp_user:
            return session
        if self.security is None or session is None:
            raise QuiverError(FORBIDDEN, "Impersonation needs the security layer's users.")
        return await self.security.acting(session, options.imp_user, connection.client_address)

    async def _run(
        self,
        session: Session | None,
        query: str,
        parameters: dict[str, Any],
        options: TransactionOptions,
        connection: ConnectionInfo,
    ) -> QueryResult:
        security = self.security
        acting = await self._acting(session, options, connection) if options.imp_user else session
        if options.database == SYSTEM_DATABASE:
            if security is None or acting is None:
                return system_database_result(query)
            if self.node.is_leader():
                answer = await security.system(acting, query, parameters, connection.client_address)
                return _result(answer, True)
            return await self._forward(query, parameters, options, session)
        privileges = await self._restrict(acting, connection)
        node = self.node
        if options.access_mode is AccessMode.READ:
            answer = await node.read(
                query,
                parameters,
                client_pb2.CONSISTENCY_CAUSAL,
                list(options.bookmarks),
                privileges,
                statement_deadline(options.timeout_ms),
            )
            return _result(answer, True)
        if node.is_leader():
            deadline = statement_deadline(options.timeout_ms)
            return _result(await node.write(query, parameters, "", 0, privileges, deadline), True)
        return await self._forward(query, parameters, options, session)

    async def _forward(
        self,
        query: str,
        parameters: dict[str, Any],
        options: TransactionOptions,
        session: Session | None = None,
    ) -> QueryResult:
        """To the leader, with the caller's own token and the impersonated user's name (the
        leader checks the impersonation again)."""
        return await forward_run(self.node, query, parameters, options, session)

    async def begin(
        self, user: Principal, options: TransactionOptions, connection: ConnectionInfo
    ) -> object:
        session = self._session(user)
        if session is not None and options.database == SYSTEM_DATABASE:
            return _SystemTransaction(user, options, connection)
        acting = await self._acting(session, options, connection) if options.imp_user else session
        privileges = await self._restrict(acting, connection)
        audit = None
        if session is not None:
            audit = _Audit(session, options.imp_user or "", connection, options.database)
        if options.database == SYSTEM_DATABASE:
            return _ReadTransaction(
                list(options.bookmarks), privileges, audit, statement_deadline(options.timeout_ms)
            )
        read_only = options.access_mode is AccessMode.READ
        if not read_only and not self.node.is_leader():
            return await ForwardedTransaction.begin(self.node, options, session, audit)
        if options.bookmarks:  # as the client API's Begin: the transaction sees them
            await self.node.wait_applied(
                parse_bookmarks(list(options.bookmarks)), CAUSAL_WAIT_S, errors.BOOKMARK_TIMEOUT
            )
        tx_id = await self.node.begin("", options.timeout_ms or 0, privileges, read_only=read_only)
        return _NodeTransaction(tx_id, audit)

    async def run_in_transaction(
        self, transaction: object, query: str, parameters: dict[str, Any]
    ) -> QueryResult:
        if isinstance(transaction, _SystemTransaction):
            result = await self.run(
                transaction.user, query, parameters, transaction.options, transaction.connection
            )
            transaction.bookmark = result.summary().bookmark or transaction.bookmark
            return result
        assert isinstance(transaction, (_ReadTransaction, _NodeTransaction, ForwardedTransaction))
        started = time.monotonic()
        try:
            if isinstance(transaction, _ReadTransaction):
                answer = await self.node.read(
                    query,
                    parameters,
                    client_pb2.CONSISTENCY_CAUSAL,
                    transaction.bookmarks,
                    transaction.privileges,
                    transaction.deadline,
                )
                result = _result(answer, False)
            elif isinstance(transaction, ForwardedTransaction):
                result = await transaction.run(query, parameters)
            else:
                answer = await self.node.run_in_transaction(transaction.tx_id, query, parameters)
                result = _result(answer, False)
        except QuiverError as error:
            await self._log(transaction.audit, query, parameters, started, 0, error.code)
            raise
        rows = len(result.rows or ())
        await self._log(transaction.audit, query, parameters, started, rows, "ok")
        return result

    async def commit(self, transaction: object) -> str | None:
        if isinstance(transaction, _SystemTransaction):
            return transaction.bookmark
        if isinstance(transaction, _ReadTransaction):
            return max(transaction.bookmarks, key=_bookmark_index, default=None)
        if isinstance(transaction, ForwardedTransaction):
            return await transaction.commit()
        assert isinstance(transaction, _NodeTransaction)
        return await self.node.commit(transaction.tx_id)

    async def rollback(self, transaction: object) -> None:
        if isinstance(transaction, _NodeTransaction):
            self.node.rollback(transaction.tx_id)
        elif isinstance(transaction, ForwardedTransaction):
            await transaction.rollback()

    async def route(
        self,
        user: Principal | None,
        database: str,
        bookmarks: tuple[str, ...],
        connection: ConnectionInfo,
    ) -> RoutingTable:
        status = self.node.status()
        members = sorted({*status.voters, *status.learners} or {self.node.id})
        known = [m for m in members if m in self.bolt_addresses]
        leader = status.leader_id if status.leader_id in self.bolt_addresses else None
        writers = (self.bolt_addresses[leader],) if leader is not None else ()
        readers = tuple(self.bolt_addresses[m] for m in known if m != leader) or writers
        routers = tuple(self.bolt_addresses[m] for m in known)
        return RoutingTable(ROUTING_TTL_S, writers, readers, routers)
