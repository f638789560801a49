"""The one interface the Bolt server needs from whatever runs queries: ``BoltBackend``.

The server owns the wire (framing, PackStream, the message state machine, version-specific
fields); a backend owns authentication, execution, transactions, bookmarks and topology.
A cluster node implements it over the same session and transaction layer its gRPC face
uses (``Node.read``/``write``/``begin``/``run_in_transaction``/``commit``/``rollback``), so
both faces share one layer; ``cluster.bolt.embedded`` implements it over an in-process
engine for tests.

Errors: a backend raises ``cluster.errors.QuiverError`` (or ``cypher.CypherError``), whose
Neo4j status code goes to the client unchanged — ``Neo.ClientError.Security.Unauthorized``
for a wrong password, ``Neo.ClientError.Cluster.NotALeader`` for a write on a follower (the
driver then re-routes), ``Neo.TransientError.*`` for what a retry may cure.

Must never: see bytes of the wire, or know which protocol version a client speaks.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from cluster import errors
from cluster.errors import QuiverError

DEFAULT_DATABASE: Final = "neo4j"
SYSTEM_DATABASE: Final = "system"
DATABASE_NOT_FOUND: Final = "Neo.ClientError.Database.DatabaseNotFound"
UNAUTHORIZED: Final = "Neo.ClientError.Security.Unauthorized"
ACCESS_MODE_ERROR: Final = errors.ACCESS_MODE


class AccessMode(enum.Enum):
    READ = "r"
    WRITE = "w"


@dataclass(slots=True, frozen=True)
class Principal:
    """Who a connection is logged on as (after LOGON)."""

    user: str
    roles: tuple[str, ...] = ()


@dataclass(slots=True, frozen=True)
class ConnectionInfo:
    client_address: str
    """host:port of the peer, for audit records."""
    server_address: str
    """host:port the client reached, as the client named it when it says (routing context)."""


@dataclass(slots=True, frozen=True)
class TransactionOptions:
    """What RUN (auto-commit) and BEGIN carry besides the query."""

    database: str
    """Already resolved by the server: ``neo4j`` or ``system``."""
    access_mode: AccessMode = AccessMode.WRITE
    bookmarks: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)
    timeout_ms: int | None = None
    imp_user: str | None = None


@dataclass(slots=True, frozen=True)
class Summary:
    """The end of a result: Neo4j counters (``nodes_created``...), the bookmark of the write
    (auto-commit only; a transaction's bookmark comes from ``commit``), the query type
    (``r``, ``w``, ``rw``, ``s``)."""

    counters: Mapping[str, int] = field(default_factory=dict)
    bookmark: str | None = None
    query_type: str = "r"


@dataclass(slots=True)
class QueryResult:
    """Columns at once; records as an async stream; the summary once the stream is done."""

    columns: list[str]
    records: AsyncIterator[Sequence[Any]]
    summary: Callable[[], Summary]
    rows: Sequence[Sequence[Any]] | None = None
    """Every record at once when the backend has them (``of``): the server then streams
    them without a trip through the event loop per record; ``records`` is not used."""

    @staticmethod
    def of(columns: list[str], rows: Iterable[Sequence[Any]], summary: Summary) -> QueryResult:
        materialized = rows if isinstance(rows, Sequence) else list(rows)
        return QueryResult(list(columns), _Rows(materialized), lambda: summary, materialized)


class _Rows:
    """A materialized result's rows as an async iterator: a plain object, not an async
    generator (one per statement, and the server does not use it for such results)."""

    __slots__ = ("position", "rows")

    def __init__(self, rows: Sequence[Sequence[Any]]) -> None:
        self.rows = rows
        self.position = 0

    def __aiter__(self) -> _Rows:
        return self

    async def __anext__(self) -> Sequence[Any]:
        if self.position >= len(self.rows):
            raise StopAsyncIteration
        self.position += 1
        return self.rows[self.position - 1]

    async def aclose(self) -> None:
        self.position = len(self.rows)


@dataclass(slots=True, frozen=True)
class RoutingTable:
    """ROUTE's answer: host:port lists by role, valid for ``ttl_s`` seconds."""

    ttl_s: int
    writers: tuple[str, ...]
    readers: tuple[str, ...]
    routers: tuple[str, ...]


def check_basic_auth(
    users: Mapping[str, str], scheme: str, principal: str, credentials: str
) -> Principal:
    """The `basic` scheme against a user -> password table, compared in constant time.

    One check for every backend until the security issue's user store replaces it; a wrong
    user and a wrong password get the same answer."""
    expected = users.get(principal)
    if (
        scheme != "basic"
        or expected is None
        or not hmac.compare_digest(expected.encode(), credentials.encode())
    ):
        raise QuiverError(UNAUTHORIZED, "The client is unauthorized due to authentication failure.")
    return Principal(principal, ("admin",))


class BoltBackend(Protocol):
    async def authenticate(
        self, scheme: str, principal: str, credentials: str, connection: ConnectionInfo
    ) -> Principal:
        """Check LOGON's credentials; raise QuiverError(UNAUTHORIZED, ...) when wrong."""
        ...

    async def run(
        self,
        user: Principal,
        query: str,
        parameters: dict[str, Any],
        options: TransactionOptions,
        connection: ConnectionInfo,
    ) -> QueryResult:
        """An auto-commit statement: the write is durable before the summary is produced."""
        ...

    async def begin(
        self, user: Principal, options: TransactionOptions, connection: ConnectionInfo
    ) -> object:
        """Open an explicit transaction; the returned handle is opaque to the server."""
        ...

    async def run_in_transaction(
        self, transaction: object, query: str, parameters: dict[str, Any]
    ) -> QueryResult: ...

    async def commit(self, transaction: object) -> str | None:
        """Commit and return the bookmark of the commit."""
        ...

    async def rollback(self, transaction: object) -> None:
        """Idempotent: rolling back an ended or failed transaction is fine."""
        ...

    async def route(
        self,
        user: Principal | None,
        database: str,
        bookmarks: tuple[str, ...],
        connection: ConnectionInfo,
    ) -> RoutingTable: ...
