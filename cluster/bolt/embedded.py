"""An in-process ``BoltBackend``: one engine over one graph, write sets applied directly.

For tests of the Bolt face without a cluster, and for a single-process development server.
It follows the node's rules where a client can see them: bookmarks ``quiver:<index>`` (one
index per applied write set), optimistic explicit transactions (a commit after a concurrent
write is ``Neo.TransientError.Transaction.Outdated``), read-only access refusing writes.

Must never: be used where durability matters (nothing here is persisted by itself).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cluster import errors
from cluster.bolt.backend import (
    ACCESS_MODE_ERROR,
    SYSTEM_DATABASE,
    AccessMode,
    ConnectionInfo,
    Principal,
    QueryResult,
    RoutingTable,
    Summary,
    TransactionOptions,
    check_basic_auth,
)
from cluster.errors import QuiverError
from cypher import CypherError, Engine, Result, Transaction
from store.graph import GraphStore
from store.memory import MemoryGraph
from store.writeset import WriteSet

BOOKMARK_PREFIX: Final = "quiver:"
ROUTING_TTL_S: Final = 300
MAX_TRANSACTIONS: Final = 1000


@dataclass(slots=True)
class _Transaction:
    transaction: Transaction
    base_index: int
    access_mode: AccessMode
    database: str
    open: bool = True


def _query_type(result: Result, access_mode: AccessMode) -> str:
    if result.write_set:
        return "rw" if result.columns else "w"
    return "r"


@dataclass
class EmbeddedBackend:
    users: Mapping[str, str]
    """user -> password."""
    graph: MemoryGraph | GraphStore = field(default_factory=MemoryGraph)
    """In memory, or the encrypted RocksDB store (each write set applied as the next index)."""
    engine: Engine = field(default_factory=Engine)
    advertised_address: str | None = None
    """What ROUTE lists; by default the address the client reached."""
    applied_index: int = 0
    _transactions: dict[str, _Transaction] = field(default_factory=dict)

    async def authenticate(
        self, scheme: str, principal: str, credentials: str, connection: ConnectionInfo
    ) -> Principal:
        return check_basic_auth(self.users, scheme, principal, credentials)

    @staticmethod
    def _refuse_impersonation(options: TransactionOptions) -> None:
        if options.imp_user:
            raise QuiverError(
                "Neo.ClientError.Security.Forbidden",
                "Impersonation needs users: this embedded graph has none.",
            )

    def _check_bookmarks(self, bookmarks: tuple[str, ...]) -> None:
        for text in bookmarks:
            number = text[len(BOOKMARK_PREFIX) :]
            if not text.startswith(BOOKMARK_PREFIX) or not number.isdigit():
                raise QuiverError(errors.INVALID_BOOKMARK, f"not a Quiver bookmark: {text!r}")
            if int(number) > self.applied_index:
                raise QuiverError(errors.BOOKMARK_TIMEOUT, f"bookmark {text} is in the future")

    def _apply(self, write_set: WriteSet) -> str:
        self.applied_index += 1
        if isinstance(self.graph, GraphStore):
            self.graph.apply(write_set, self.applied_index)
        else:
            self.graph.apply(write_set)
        return f"{BOOKMARK_PREFIX}{self.applied_index}"

    async def run(
        self,
        user: Principal,
        query: str,
        parameters: dict[str, Any],
        options: TransactionOptions,
        connection: ConnectionInfo,
    ) -> QueryResult:
        self._refuse_impersonation(options)
        self._check_bookmarks(options.bookmarks)
        if options.database == SYSTEM_DATABASE:
            return system_database_result(query)
        result = self.engine.run(self.graph, query, parameters)
        bookmark = f"{BOOKMARK_PREFIX}{self.applied_index}"
        if result.write_set:
            if options.access_mode is AccessMode.READ:
                raise QuiverError(ACCESS_MODE_ERROR, errors.WRITE_IN_READ_MODE)
            bookmark = self._apply(result.write_set)
        summary = Summary(result.counters, bookmark, _query_type(result, options.access_mode))
        return QueryResult.of(result.columns, result.rows, summary)

    async def begin(
        self, user: Principal, options: TransactionOptions, connection: ConnectionInfo
    ) -> object:
        self._refuse_impersonation(options)
        self._check_bookmarks(options.bookmarks)
        if len(self._transactions) >= MAX_TRANSACTIONS:
            raise QuiverError(errors.UNAVAILABLE, "too many open transactions")
        handle = secrets.token_hex(8)
        self._transactions[handle] = _Transaction(
            self.engine.begin(self.graph),
            self.applied_index,
            options.access_mode,
            options.database,
        )
        return handle

    def _open(self, handle: object) -> _Transaction:
        tx = self._transactions.get(str(handle))
        if tx is None:
            raise QuiverError(errors.TRANSACTION_NOT_FOUND, "no such open transaction")
        return tx

    async def run_in_transaction(
        self, transaction: object, query: str, parameters: dict[str, Any]
    ) -> QueryResult:
        tx = self._open(transaction)
        if tx.database == SYSTEM_DATABASE:
            return system_database_result(query)
        try:
            result = tx.transaction.run(query, parameters)
        except CypherError:
            self._transactions.pop(str(transaction), None)
            raise
        wrote = any(result.counters.values())
        if wrote and tx.access_mode is AccessMode.READ:
            self._transactions.pop(str(transaction), None)
            raise QuiverError(ACCESS_MODE_ERROR, errors.WRITE_IN_READ_MODE)
        summary = Summary(result.counters, None, "rw" if wrote else "r")
        return QueryResult.of(result.columns, result.rows, summary)

    async def commit(self, transaction: object) -> str | None:
        tx = self._transactions.pop(str(transaction), None)
        if tx is None:
            raise QuiverError(errors.TRANSACTION_NOT_FOUND, "no such open transaction")
        write_set = tx.transaction.commit()
        if not write_set:
            return f"{BOOKMARK_PREFIX}{self.applied_index}"
        if self.applied_index != tx.base_index:
            raise QuiverError(errors.OUTDATED, "a concurrent write changed what this one read")
        return self._apply(write_set)

    async def rollback(self, transaction: object) -> None:
        self._transactions.pop(str(transaction), None)

    async def route(
        self,
        user: Principal | None,
        database: str,
        bookmarks: tuple[str, ...],
        connection: ConnectionInfo,
    ) -> RoutingTable:
        me = self.advertised_address or connection.server_address
        return RoutingTable(ROUTING_TTL_S, (me,), (me,), (me,))


def system_database_result(query: str) -> QueryResult:
    """The `system` database answers SHOW DATABASES; other administration is not here."""
    if query.strip().rstrip(";").upper() != "SHOW DATABASES":
        raise QuiverError(
            "Neo.ClientError.Statement.NotSystemDatabaseCommand",
            "the embedded system database answers SHOW DATABASES only",
        )
    columns = ["name", "type", "access", "currentStatus", "default", "home"]
    rows = [
        ["neo4j", "standard", "read-write", "online", True, True],
        ["system", "system", "read-write", "online", False, False],
    ]
    return QueryResult.of(columns, rows, Summary({}, None, "r"))
