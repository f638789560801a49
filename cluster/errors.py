"""Typed errors of the cluster, each with a Neo4j status code, and their gRPC form.

Owns the mapping between a Neo4j-style error and a gRPC status: the serialized
``quiver.v1.Error`` in trailing metadata under ``quiver-error-bin`` (see client.proto),
the status code from the Neo4j classification, and which errors a client may retry.
"""

from __future__ import annotations

from typing import Final

import grpc

from proto import client_pb2

ERROR_METADATA_KEY: Final = "quiver-error-bin"
LEADER_METADATA_KEY: Final = "quiver-leader"

NOT_A_LEADER: Final = "Neo.ClientError.Cluster.NotALeader"
UNAVAILABLE: Final = "Neo.TransientError.General.DatabaseUnavailable"
OUTDATED: Final = "Neo.TransientError.Transaction.Outdated"
BOOKMARK_TIMEOUT: Final = "Neo.TransientError.Transaction.BookmarkTimeout"
TIMED_OUT: Final = "Neo.TransientError.Transaction.LockClientStopped"
INVALID_BOOKMARK: Final = "Neo.ClientError.Transaction.InvalidBookmark"
TRANSACTION_NOT_FOUND: Final = "Neo.ClientError.Transaction.TransactionNotFound"
TRANSACTION_TIMED_OUT: Final = "Neo.ClientError.Transaction.TransactionTimedOut"
INVALID_REQUEST: Final = "Neo.ClientError.Request.Invalid"
UNKNOWN: Final = "Neo.DatabaseError.General.UnknownError"
SERVICE_UNAVAILABLE: Final = "Neo.TransientError.General.ServiceUnavailable"
COMMIT_OUTCOME_UNKNOWN: Final = "Neo.DatabaseError.Transaction.TransactionCommitFailed"
"""A transaction's commit that may or may not have been applied (drivers do not retry it)."""
ACCESS_MODE: Final = "Neo.ClientError.Statement.AccessMode"
WRITE_IN_READ_MODE: Final = "Writing in read access mode not allowed."
"""Neo4j's message for ACCESS_MODE."""
MEMORY_POOL: Final = "Neo.TransientError.General.MemoryPoolOutOfMemoryError"
"""The node's open transactions hold all the memory they may: retry later."""
TOO_LARGE: Final = "Neo.ClientError.General.TransactionOutOfMemoryError"

RETRYABLE_CLIENT_ERRORS: Final = frozenset({NOT_A_LEADER})
"""Client errors that a retry elsewhere can cure (Neo4j drivers re-route on these)."""


class QuiverError(Exception):
    """An error with a Neo4j status code, raised by the server and by the client library."""

    def __init__(self, code: str, message: str, leader: str = "") -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.leader = leader
        """For NotALeader: the client address of the leader, when known."""
        self.unanswered = False
        """Made by the client from a call's gRPC status: the node did not answer at all."""

    @property
    def retryable(self) -> bool:
        return is_retryable(self.code)


def is_retryable(code: str) -> bool:
    return code.startswith("Neo.TransientError.") or code in RETRYABLE_CLIENT_ERRORS


def grpc_status(code: str) -> grpc.StatusCode:
    if code.startswith("Neo.ClientError.Security."):
        if "Unauthorized" in code or "Credentials" in code:
            return grpc.StatusCode.UNAUTHENTICATED
        return grpc.StatusCode.PERMISSION_DENIED
    if code.startswith("Neo.ClientError."):
        return grpc.StatusCode.INVALID_ARGUMENT
    if code.startswith("Neo.TransientError."):
        if code == OUTDATED:
            return grpc.StatusCode.ABORTED
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.INTERNAL


def trailing_metadata(error: QuiverError) -> tuple[tuple[str, str | bytes], ...]:
    payload = client_pb2.Error(code=error.code, message=error.message).SerializeToString()
    items: list[tuple[str, str | bytes]] = [(ERROR_METADATA_KEY, payload)]
    if error.leader:
        items.append((LEADER_METADATA_KEY, error.leader))
    return tuple(items)


def from_rpc_error(error: grpc.RpcError) -> QuiverError:
    """The typed error a failed call carried, or one made from its gRPC status."""
    leader = ""
    payload: bytes | None = None
    trailing = error.trailing_metadata() if hasattr(error, "trailing_metadata") else None
    for key, value in trailing or ():
        if key == ERROR_METADATA_KEY and isinstance(value, bytes):
            payload = value
        elif key == LEADER_METADATA_KEY:
            leader = value if isinstance(value, str) else value.decode()
    if payload is not None:
        decoded = client_pb2.Error.FromString(payload)
        return QuiverError(decoded.code, decoded.message, leader)
    status = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
    details = error.details() if hasattr(error, "details") else str(error)
    if status in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        unanswered = QuiverError(SERVICE_UNAVAILABLE, f"{status.name}: {details}")
        unanswered.unanswered = True
        return unanswered
    return QuiverError(UNKNOWN, f"{status.name}: {details}")
