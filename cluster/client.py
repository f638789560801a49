"""The Python client: ``cluster.connect(...)`` (synchronous).

Owns leader discovery (the Admin status of any node names the leader; a NotALeader error
names it too), routing (writes and linearizable reads to the leader; causal and stale reads
to a replica in the client's zone when there is one), bookmarks carried across a session,
and retries of retryable errors with backoff under a deadline, each retry with the *same*
request id (client id, sequence) so that the cluster applies a write at most once.

Must never: retry with a new request id, or retry forever.
"""

from __future__ import annotations

import itertools
import random
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc

from cluster import errors
from cluster.config import ClusterFile, load_cluster
from cluster.errors import QuiverError
from cluster.transport import CHANNEL_OPTIONS
from cluster.values import from_proto, to_proto
from proto import admin_pb2, admin_pb2_grpc, client_pb2, client_pb2_grpc

DEFAULT_TIMEOUT_S: Final = 30.0
RETRY_MIN_S: Final = 0.05
RETRY_MAX_S: Final = 0.25
STATUS_TIMEOUT_S: Final = 2.0

CONSISTENCY: Final = {
    "linearizable": client_pb2.CONSISTENCY_LINEARIZABLE,
    "causal": client_pb2.CONSISTENCY_CAUSAL,
    "stale": client_pb2.CONSISTENCY_STALE,
}


@dataclass(slots=True, frozen=True)
class Record:
    columns: list[str]
    values: list[Any]

    def __getitem__(self, key: str | int) -> Any:
        if isinstance(key, int):
            return self.values[key]
        return self.values[self.columns.index(key)]


@dataclass(slots=True, frozen=True)
class Result:
    columns: list[str]
    rows: list[list[Any]]
    counters: dict[str, int]
    bookmark: str
    applied_index: int
    served_by: int
    """The node whose client port answered (a follower may have forwarded the write)."""

    def records(self) -> list[Record]:
        return [Record(self.columns, row) for row in self.rows]

    def to_json(self) -> dict[str, Any]:
        from cluster.values import to_json

        return {
            "columns": self.columns,
            "rows": [[to_json(value) for value in row] for row in self.rows],
            "bookmark": self.bookmark or None,
            "counters": self.counters,
        }


@dataclass(slots=True)
class _Member:
    id: int
    zone: str
    address: str
    channel: grpc.Channel | None = None


MAX_MEMBERS = 64


@dataclass(slots=True)
class Client:
    members: list[_Member]
    credentials: grpc.ChannelCredentials
    zone: str | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    client_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    bookmarks: set[str] = field(default_factory=set)
    leader_id: int = 0
    discover_members: bool = False
    """Follow a leader that is not among `members` (one added since the client started)."""
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _rng: random.Random = field(default_factory=random.Random)

    # -- channels -----------------------------------------------------------------------------

    def _member(self, node_id: int) -> _Member:
        for member in self.members:
            if member.id == node_id:
                return member
        raise KeyError(node_id)

    def _channel(self, member: _Member) -> grpc.Channel:
        if member.channel is None:
            member.channel = grpc.secure_channel(
                member.address, self.credentials, options=CHANNEL_OPTIONS
            )
        return member.channel

    def close(self) -> None:
        for member in self.members:
            if member.channel is not None:
                member.channel.close()
                member.channel = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- discovery ----------------------------------------------------------------------------

    def node_status(
        self, node_id: int, timeout_s: float = STATUS_TIMEOUT_S
    ) -> admin_pb2.NodeStatus:
        stub = admin_pb2_grpc.AdminStub(self._channel(self._member(node_id)))
        try:
            status: admin_pb2.NodeStatus = stub.Status(admin_pb2.StatusRequest(), timeout=timeout_s)
        except grpc.RpcError as error:
            raise errors.from_rpc_error(error) from None
        return status

    def find_leader(self) -> int:
        """Ask the members who leads; 0 when none answers with a leader."""
        for member in self._rng.sample(self.members, len(self.members)):
            try:
                status = self.node_status(member.id)
            except QuiverError:
                continue
            leader = self._member_id(status.leader_id, status.leader_address)
            if (
                not leader
                and status.leader_id
                and status.leader_address
                and self.discover_members
                and len(self.members) < MAX_MEMBERS
                and all(m.id != status.leader_id for m in self.members)
            ):
                # A member added since this client started (quiver admin add-learner).
                self.members.append(_Member(status.leader_id, "", status.leader_address))
                leader = status.leader_id
            if leader:
                self.leader_id = leader
                return leader
        return 0

    def _pick(self, to_leader: bool, attempt: int) -> _Member:
        if to_leader and self.leader_id:
            return self._member(self.leader_id)
        if to_leader and self.find_leader():
            return self._member(self.leader_id)
        local = [m for m in self.members if self.zone is not None and m.zone == self.zone]
        pool = local if local and attempt == 0 else self.members
        return pool[(attempt + self._rng.randrange(len(pool))) % len(pool)]

    # -- queries ------------------------------------------------------------------------------

    def run(
        self,
        query: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        mode: str = "write",
        consistency: str = "causal",
        timeout_s: float | None = None,
    ) -> Result:
        """Run one auto-commit statement; retried on retryable errors with the same id."""
        if mode not in ("read", "write"):
            raise ValueError("mode is 'read' or 'write'")
        if consistency not in CONSISTENCY:
            raise ValueError(f"consistency is one of {', '.join(CONSISTENCY)}")
        request = client_pb2.RunRequest(
            query=query,
            parameters={k: to_proto(v) for k, v in (parameters or {}).items()},
            access_mode=(
                client_pb2.ACCESS_MODE_READ if mode == "read" else client_pb2.ACCESS_MODE_WRITE
            ),
            consistency=CONSISTENCY[consistency],  # type: ignore[arg-type]
            bookmarks=sorted(self.bookmarks),
            client_id=self.client_id,
            sequence=next(self._sequence),
        )
        to_leader = mode == "write" or consistency == "linearizable"
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        backoff = RETRY_MIN_S
        for attempt in itertools.count():
            member = self._pick(to_leader, attempt)
            remaining = deadline - time.monotonic()
            try:
                result = self._run_once(member, request, remaining)
            except QuiverError as error:
                if not error.retryable or time.monotonic() + backoff >= deadline:
                    raise
                if error.code == errors.NOT_A_LEADER:
                    self.leader_id = self._leader_from(error)
                elif to_leader:
                    self.leader_id = 0
                time.sleep(backoff * (0.5 + self._rng.random()))
                backoff = min(RETRY_MAX_S, backoff * 2)
                continue
            if result.bookmark:
                self.bookmarks = {result.bookmark}
            if to_leader:
                self.leader_id = member.id
            return result
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self, timeout_s: float | None = None) -> Iterator[Transaction]:
        """``with client.transaction() as tx: tx.run(...)``: commits when the block ends,
        rolls back when it raises."""
        transaction = self.begin(timeout_s)
        try:
            yield transaction
        except BaseException:
            transaction.rollback()
            raise
        if transaction.open:
            transaction.commit()

    def begin(self, timeout_s: float | None = None) -> Transaction:
        """Open a transaction on the leader (found, and followed, with bounded retries)."""
        request = client_pb2.BeginRequest(
            bookmarks=sorted(self.bookmarks),
            client_id=self.client_id,
            timeout_ms=int((timeout_s or self.timeout_s) * 1000),
        )
        deadline = time.monotonic() + self.timeout_s
        backoff = RETRY_MIN_S
        for attempt in itertools.count():
            member = self._pick(True, attempt)
            stub = client_pb2_grpc.QueryStub(self._channel(member))
            try:
                response = stub.Begin(request, timeout=max(0.1, deadline - time.monotonic()))
            except grpc.RpcError as rpc_error:
                error = errors.from_rpc_error(rpc_error)
                if not error.retryable or time.monotonic() + backoff >= deadline:
                    raise error from None
                self.leader_id = self._leader_from(error)
                time.sleep(backoff * (0.5 + self._rng.random()))
                backoff = min(RETRY_MAX_S, backoff * 2)
                continue
            self.leader_id = member.id
            return Transaction(self, member, response.transaction_id)
        raise AssertionError("unreachable")

    def _leader_from(self, error: QuiverError) -> int:
        return self._member_id(0, error.leader)

    def _member_id(self, node_id: int, address: str) -> int:
        """The member with this id (or else this client address); 0 when not one of ours."""
        for member in self.members:
            if (
                node_id and member.id == node_id and (not address or member.address == address)
            ) or (address and member.address == address):
                return member.id
        return 0

    def _run_once(
        self, member: _Member, request: client_pb2.RunRequest, timeout_s: float
    ) -> Result:
        stub = client_pb2_grpc.QueryStub(self._channel(member))
        columns: list[str] = []
        rows: list[list[Any]] = []
        summary = client_pb2.Summary()
        try:
            for response in stub.Run(request, timeout=max(0.1, timeout_s)):
                part = response.WhichOneof("part")
                if part == "header":
                    columns = list(response.header.columns)
                elif part == "records":
                    rows.extend(
                        [from_proto(value) for value in record.values]
                        for record in response.records.records
                    )
                elif part == "summary":
                    summary = response.summary
        except grpc.RpcError as error:
            raise errors.from_rpc_error(error) from None
        counters = {
            descriptor.name: int(value)
            for descriptor, value in summary.counters.ListFields()
            if descriptor.name != "contains_updates"
        }
        return Result(columns, rows, counters, summary.bookmark, summary.applied_index, member.id)


class Transaction:
    """An explicit transaction on the leader: statements see each other's writes; the
    commit is refused with a retryable ``Neo.TransientError.Transaction.Outdated`` when
    another write was applied after it began (never a lost update)."""

    def __init__(self, client: Client, member: _Member, transaction_id: str) -> None:
        self._client = client
        self._member = member
        self.transaction_id = transaction_id
        self.open = True

    def run(self, query: str, parameters: Mapping[str, Any] | None = None) -> Result:
        if not self.open:
            raise QuiverError(errors.TRANSACTION_NOT_FOUND, "the transaction has ended")
        request = client_pb2.RunRequest(
            query=query,
            parameters={k: to_proto(v) for k, v in (parameters or {}).items()},
            transaction_id=self.transaction_id,
        )
        try:
            return self._client._run_once(self._member, request, self._client.timeout_s)
        except QuiverError:
            self.open = False
            raise

    def commit(self) -> str:
        """Commit; the bookmark of the commit. Not retried: a commit is not idempotent."""
        if not self.open:
            raise QuiverError(errors.TRANSACTION_NOT_FOUND, "the transaction has ended")
        self.open = False
        stub = client_pb2_grpc.QueryStub(self._client._channel(self._member))
        try:
            response = stub.Commit(
                client_pb2.CommitRequest(transaction_id=self.transaction_id),
                timeout=self._client.timeout_s,
            )
        except grpc.RpcError as error:
            raise errors.from_rpc_error(error) from None
        if response.bookmark:
            self._client.bookmarks = {response.bookmark}
        return str(response.bookmark)

    def rollback(self) -> None:
        if not self.open:
            return
        self.open = False
        stub = client_pb2_grpc.QueryStub(self._client._channel(self._member))
        try:
            stub.Rollback(
                client_pb2.RollbackRequest(transaction_id=self.transaction_id),
                timeout=STATUS_TIMEOUT_S,
            )
        except grpc.RpcError as error:
            raise errors.from_rpc_error(error) from None


def connect(
    directory: str | Path = ".quiver",
    *,
    addresses: Iterable[str] | None = None,
    ca: str | Path | None = None,
    zone: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Client:
    """A client of the cluster described by ``DIR/cluster.json`` (or by `addresses`/`ca`)."""
    if addresses is not None:
        if ca is None:
            raise ValueError("addresses need the CA certificate (ca=...)")
        members = [_Member(i + 1, "", address) for i, address in enumerate(addresses)]
        ca_bytes = Path(ca).read_bytes()
    else:
        cluster: ClusterFile = load_cluster(Path(directory))
        members = [_Member(n.id, n.zone, n.grpc) for n in cluster.nodes]
        ca_bytes = (Path(ca) if ca is not None else cluster.ca_path).read_bytes()
    credentials = grpc.ssl_channel_credentials(root_certificates=ca_bytes)
    return Client(members, credentials, zone=zone, timeout_s=timeout_s, discover_members=True)
