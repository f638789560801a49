"""What a follower's Bolt face runs on the leader for its client: Neo4j's server-side routing.

Owns the client-API calls (``proto/client.proto``) a follower makes on a Bolt client's
behalf, over ``Node.forward_channel()``, with the forwarded mark (the leader does not log the
statement again: the follower's query log has it) and the caller's own session token (the
leader checks the user, the impersonation and the privileges again):

- ``forward_run``: an auto-commit write (or ``system`` command), one Run call;
- ``ForwardedTransaction``: an explicit write transaction — Begin on the leader, then every
  Run, the Commit and the Rollback to the node that began it, over the channel Begin used.

A lost leader fails the statement with a retryable ``Neo.TransientError.*`` (a driver's managed
transaction then runs again from BEGIN, which finds the new leader): the leader stepped down
(``NotALeader``), its channel broke, or it lost the transaction before its timeout (it
restarted). A commit whose answer was lost fails with a non-retryable error instead, as a
driver's own ``IncompleteCommit`` does: the leader may have committed it.

Must never: execute Cypher, retry a statement itself, or send a transaction's statements to
any node but the one that began it.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

import grpc

from cluster import errors
from cluster.bolt.backend import SYSTEM_DATABASE, QueryResult, Summary, TransactionOptions
from cluster.errors import QuiverError
from cluster.node import (
    DEFAULT_TRANSACTION_TIMEOUT_S,
    FORWARDED_METADATA,
    MAX_TRANSACTION_TIMEOUT_S,
)
from cluster.security.node_security import SESSION_METADATA
from cluster.session import ResultBuilder
from cluster.values import to_proto
from proto import client_pb2, client_pb2_grpc

if TYPE_CHECKING:
    from cluster.security.sessions import Session

FORWARD_TIMEOUT_S: Final = 30.0
"""Bound of one forwarded call (Run, Begin, Commit)."""
ROLLBACK_TIMEOUT_S: Final = 5.0
"""Bound of a forwarded Rollback: it runs on RESET and on a closing connection, which wait
for it; a leader that does not answer drops the transaction at its timeout anyway."""

QUERY_TYPE: Final[dict[int, str]] = {
    client_pb2.QUERY_TYPE_READ_ONLY: "r",
    client_pb2.QUERY_TYPE_WRITE_ONLY: "w",
    client_pb2.QUERY_TYPE_READ_WRITE: "rw",
}
"""The client API's query types as Bolt's summary letters."""

Metadata = tuple[tuple[str, str], ...]


class LeaderChannel(Protocol):
    """What forwarding uses of ``cluster.node.Node``."""

    async def forward_channel(self) -> Any: ...


def forward_metadata(session: Session | None) -> Metadata:
    """The forwarded mark and the caller's session token (none without a security layer)."""
    if session is None:
        return ((FORWARDED_METADATA, "1"),)
    return ((FORWARDED_METADATA, "1"), (SESSION_METADATA, session.token))


def run_request(
    query: str,
    parameters: Mapping[str, Any],
    options: TransactionOptions | None = None,
    transaction_id: str = "",
) -> client_pb2.RunRequest:
    """An auto-commit write with its `options`, or a statement of `transaction_id` (whose
    Begin carried the options)."""
    request = client_pb2.RunRequest(
        query=query,
        parameters={k: to_proto(v) for k, v in parameters.items()},
        access_mode=client_pb2.ACCESS_MODE_WRITE,
        transaction_id=transaction_id,
    )
    if options is not None:
        request.bookmarks.extend(options.bookmarks)
        request.timeout_ms = options.timeout_ms or 0
        request.database = options.database if options.database == SYSTEM_DATABASE else ""
        request.impersonated_user = options.imp_user or ""
    return request


async def run_on(
    stub: client_pb2_grpc.QueryStub,
    request: client_pb2.RunRequest,
    metadata: Metadata,
) -> QueryResult:
    """One Run call, its stream collected; a failed call as its typed error."""
    builder = ResultBuilder()
    call = stub.Run(request, metadata=metadata, timeout=FORWARD_TIMEOUT_S)
    try:
        async for part in call:
            builder.add(part)
    except grpc.aio.AioRpcError as error:
        raise errors.from_rpc_error(error) from None
    result = builder.result(0)
    summary = Summary(
        result.counters,
        result.bookmark or None,
        QUERY_TYPE.get(builder.summary.query_type, "w"),
    )
    return QueryResult.of(result.columns, result.rows, summary)


async def forward_run(
    node: LeaderChannel,
    query: str,
    parameters: Mapping[str, Any],
    options: TransactionOptions,
    session: Session | None,
) -> QueryResult:
    """An auto-commit statement run on the leader."""
    stub = client_pb2_grpc.QueryStub(await node.forward_channel())
    return await run_on(stub, run_request(query, parameters, options), forward_metadata(session))


def _leader_lost(what: str, cause: QuiverError) -> QuiverError:
    return QuiverError(
        errors.UNAVAILABLE,
        f"the leader running this transaction is gone ({what}: {cause.message}); "
        "run the transaction again",
    )


@dataclass(slots=True)
class ForwardedTransaction:
    """A write transaction open on the leader for a Bolt client of this follower."""

    stub: client_pb2_grpc.QueryStub
    tx_id: str
    metadata: Metadata
    expires_at: float
    """When the leader drops the transaction (monotonic, this node's clock): a transaction
    the leader does not know before then was lost with a leader that restarted."""
    audit: Any = None
    """Who the statements are logged as here (``cluster_backend._Audit``)."""

    @staticmethod
    async def begin(
        node: LeaderChannel,
        options: TransactionOptions,
        session: Session | None,
        audit: Any = None,
    ) -> ForwardedTransaction:
        """Begin on the leader. The leader begins only once it has applied everything
        committed (``Node.begin`` waits for it), so the transaction sees every bookmark the
        cluster handed out; the bookmarks ride along all the same."""
        stub = client_pb2_grpc.QueryStub(await node.forward_channel())
        metadata = forward_metadata(session)
        request = client_pb2.BeginRequest(
            access_mode=client_pb2.ACCESS_MODE_WRITE,
            bookmarks=list(options.bookmarks),
            timeout_ms=options.timeout_ms or 0,
            impersonated_user=options.imp_user or "",
        )
        started = time.monotonic()
        try:
            response = await stub.Begin(request, metadata=metadata, timeout=FORWARD_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            cause = errors.from_rpc_error(error)
            if cause.code == errors.NOT_A_LEADER:
                raise _leader_lost("begin", cause) from None
            raise cause from None
        timeout_s = (options.timeout_ms or 0) / 1000 or DEFAULT_TRANSACTION_TIMEOUT_S
        timeout_s = min(timeout_s, MAX_TRANSACTION_TIMEOUT_S)
        return ForwardedTransaction(
            stub, response.transaction_id, metadata, started + timeout_s, audit
        )

    def _lost(self, what: str, cause: QuiverError) -> QuiverError:
        """`cause` as the client should see it: a lost leader is transient."""
        if cause.unanswered or cause.code == errors.NOT_A_LEADER:
            return _leader_lost(what, cause)
        if cause.code == errors.TRANSACTION_NOT_FOUND and time.monotonic() < self.expires_at:
            return _leader_lost(what, cause)
        return cause

    async def run(self, query: str, parameters: Mapping[str, Any]) -> QueryResult:
        request = run_request(query, parameters, transaction_id=self.tx_id)
        try:
            return await run_on(self.stub, request, self.metadata)
        except QuiverError as error:
            raise self._lost("run", error) from None

    async def commit(self) -> str:
        request = client_pb2.CommitRequest(transaction_id=self.tx_id)
        try:
            response = await self.stub.Commit(
                request, metadata=self.metadata, timeout=FORWARD_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as error:
            cause = errors.from_rpc_error(error)
            if cause.unanswered:
                raise QuiverError(
                    errors.COMMIT_OUTCOME_UNKNOWN,
                    f"the leader did not answer the commit ({cause.message}): the transaction "
                    "may or may not have been committed",
                ) from None
            raise self._lost("commit", cause) from None
        return str(response.bookmark)

    async def rollback(self) -> None:
        """Best effort, bounded: a leader that cannot be reached drops the transaction at
        its timeout (``Node._purge_transactions``)."""
        request = client_pb2.RollbackRequest(transaction_id=self.tx_id)
        try:
            await self.stub.Rollback(request, metadata=self.metadata, timeout=ROLLBACK_TIMEOUT_S)
        except grpc.aio.AioRpcError as error:
            raise errors.from_rpc_error(error) from None
