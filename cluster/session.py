"""What the sync client (``cluster.connect``) and the async one (``cluster.connect_async``)
share: the client-side state of a session and every decision made over it, with no I/O.

Owns: the members and the leader a client believes in (learned from a node's status or from
a NotALeader error), the choice of the node for a request (writes and linearizable reads to
the leader; causal and stale reads to a replica in the client's zone, others when it has none
or when its replicas failed lately), the bookmark a session carries (the newest it saw),
request ids (client id, sequence) given once per request and reused by its retries, the
retry budget (jittered exponential backoff under a deadline), the assembly of a result from
a Run stream, and the typed form of an error (ClientError, TransientError, DatabaseError,
each with its Neo4j status code).

Must never: do I/O or sleep (the clients do, each in its own way), give a retry a new
request id, or retry past the deadline.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cluster import errors
from cluster.errors import QuiverError
from cluster.values import from_proto, to_proto
from proto import admin_pb2, client_pb2

DEFAULT_TIMEOUT_S: Final = 30.0
RETRY_MIN_S: Final = 0.05
RETRY_MAX_S: Final = 0.25
STATUS_TIMEOUT_S: Final = 2.0
MIN_CALL_TIMEOUT_S: Final = 0.1
SUSPECT_S: Final = 3.0
"""How long reads pass over a replica after it failed one with a retryable error."""
LEADER_TTL_S: Final = 5.0
"""How long a leader named by a node's status (or a NotALeader error) is trusted before a
status asks again: a follower forwards writes without a word, so after a graceful transfer a
client that never re-asked would pay a forwarding hop on every write."""
MAX_MEMBERS: Final = 64
MAX_WRITE_LANES: Final = 256
"""Writes one client may have in flight at once, each under its own dedup id (a lane)."""
BOOKMARK_PREFIX: Final = "quiver:"

CONSISTENCY: Final = {
    "linearizable": client_pb2.CONSISTENCY_LINEARIZABLE,
    "causal": client_pb2.CONSISTENCY_CAUSAL,
    "stale": client_pb2.CONSISTENCY_STALE,
}


# -- typed errors ---------------------------------------------------------------------------


class ClientError(QuiverError):
    """``Neo.ClientError.*``: the request is wrong (syntax, constraint, security, ...)."""


class TransientError(QuiverError):
    """``Neo.TransientError.*``: the same request may succeed when retried."""


class DatabaseError(QuiverError):
    """``Neo.DatabaseError.*`` (or an unclassified code): the database failed."""


def typed(error: QuiverError) -> QuiverError:
    """The same error as an instance of the class its Neo4j classification names."""
    if isinstance(error, ClientError | TransientError | DatabaseError):
        return error
    if error.code.startswith("Neo.ClientError."):
        kind: type[QuiverError] = ClientError
    elif error.code.startswith("Neo.TransientError."):
        kind = TransientError
    else:
        kind = DatabaseError
    converted = kind(error.code, error.message, error.leader)
    converted.unanswered = error.unanswered
    return converted


def client_error(code: str, message: str) -> QuiverError:
    return typed(QuiverError(code, message))


# -- results --------------------------------------------------------------------------------


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
class ResultBuilder:
    """Collects one Run stream (a header, record batches, a summary) into a Result; with
    `keep_rows` off it only hands each batch's rows on (a streamed read)."""

    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    summary: client_pb2.Summary = field(default_factory=client_pb2.Summary)
    keep_rows: bool = True

    def add(self, response: client_pb2.RunResponse) -> list[list[Any]]:
        """Take in one message of the stream (a header, records, a summary: any of them);
        the rows it brought."""
        if response.HasField("header"):
            self.columns = list(response.header.columns)
        if response.HasField("summary"):
            self.summary = response.summary
        rows = [
            [from_proto(value) for value in record.values] for record in response.records.records
        ]
        if self.keep_rows:
            self.rows.extend(rows)
        return rows

    def result(self, served_by: int) -> Result:
        counters = {
            descriptor.name: int(value)
            for descriptor, value in self.summary.counters.ListFields()
            if descriptor.name != "contains_updates"
        }
        return Result(
            self.columns,
            self.rows,
            counters,
            self.summary.bookmark,
            self.summary.applied_index,
            served_by,
        )


# -- members, requests, retries -------------------------------------------------------------


@dataclass(slots=True)
class Member:
    id: int
    zone: str
    address: str


@dataclass(slots=True, frozen=True)
class Call:
    """One request, built once: every attempt sends these same bytes (same request id)."""

    request: client_pb2.RunRequest
    to_leader: bool
    lane: int | None = None
    """The write lane the request id belongs to, held until the call ends (see Session)."""


@dataclass(slots=True)
class Retry:
    """One request's retry budget: a jittered backoff doubling from RETRY_MIN_S up to
    RETRY_MAX_S, and a deadline (monotonic seconds) that no pause crosses; each attempt
    gets the time left (at least MIN_CALL_TIMEOUT_S)."""

    deadline: float
    rng: random.Random
    backoff_s: float = RETRY_MIN_S
    attempt: int = 0

    def call_timeout_s(self, now: float) -> float:
        return max(MIN_CALL_TIMEOUT_S, self.deadline - now)

    def pause_after(self, error: QuiverError, now: float) -> float | None:
        """The pause before the next attempt, or None when `error` is to be raised."""
        remaining = self.deadline - now
        if not error.retryable or remaining <= self.backoff_s:
            return None
        # Half of what is left at most, so that the next attempt has time of its own.
        pause = min(self.backoff_s * (0.5 + self.rng.random()), remaining / 2)
        self.backoff_s = min(RETRY_MAX_S, self.backoff_s * 2)
        self.attempt += 1
        return pause


def bookmark_index(bookmark: str) -> int | None:
    text = bookmark.removeprefix(BOOKMARK_PREFIX)
    if text == bookmark or not text.isdigit():
        return None
    return int(text)


class Session:
    """The pure half of a client: what it believes about the cluster and its session.

    Request ids. The cluster remembers, per client id, the last sequence it applied and
    treats any request with a sequence not above it as a duplicate (answered, not applied):
    that holds only if one id has one write in flight at a time. So concurrent writes of one
    client (tasks, threads) each take a *lane* — the client id itself for lane 0, the client
    id plus ``.N`` for lane N — with its own sequence, held from the first attempt to the
    last retry and then free for the next write. Lanes are reused, so their number (and the
    cluster's dedup table) grows only with the client's peak concurrency, at most
    MAX_WRITE_LANES."""

    def __init__(
        self,
        members: Iterable[Member],
        *,
        zone: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        client_id: str | None = None,
        discover_members: bool = False,
        suspect_s: float = SUSPECT_S,
        rng: random.Random | None = None,
        impersonate: str = "",
    ) -> None:
        self.members = list(members)
        if not self.members or len(self.members) > MAX_MEMBERS:
            raise ValueError(f"a client needs 1 to {MAX_MEMBERS} members")
        self.zone = zone
        self.timeout_s = timeout_s
        self.client_id = client_id or uuid.uuid4().hex
        self.discover_members = discover_members
        """Follow a leader that is not among `members` (one added since the client started)."""
        self.suspect_s = suspect_s
        self.impersonate = impersonate
        """Run every statement as this user (Neo4j's impersonation; the logged-in user needs
        ``IMPERSONATE`` for them); "" runs as the logged-in user."""
        self.bookmarks: set[str] = set()
        self.leader_id = 0
        self._leader_confirmed_at = -math.inf
        self._suspects: dict[int, float] = {}
        self._silent: dict[int, float] = {}
        """Leaders that did not answer a call at all (down, most likely), until when: no
        replica to pick, nor a leader to believe when a status still names one, until it
        answers something again."""
        self._lane_sequences: list[itertools.count[int]] = []
        self._free_lanes: list[int] = []
        self._lock = threading.Lock()  # lanes and bookmark: a sync client may be shared by threads
        self._rng = rng or random.Random()

    # -- members and the leader ---------------------------------------------------------------

    def _member(self, node_id: int) -> Member:
        for member in self.members:
            if member.id == node_id:
                return member
        raise KeyError(node_id)

    def _member_id(self, node_id: int, address: str) -> int:
        """The member with this id (or else this client address); 0 when not one of ours."""
        for member in self.members:
            if (
                node_id and member.id == node_id and (not address or member.address == address)
            ) or (address and member.address == address):
                return member.id
        return 0

    def _leader_from(self, error: QuiverError) -> int:
        return self._member_id(0, error.leader)

    def needs_discovery(self, to_leader: bool, now: float) -> bool:
        """Whether a request for the leader should first ask who leads."""
        return to_leader and (not self.leader_id or now - self._leader_confirmed_at > LEADER_TTL_S)

    def discovery_order(self) -> list[Member]:
        """The members to ask who leads: the believed leader first (one question when it
        still leads), then the others at random."""
        others = [m for m in self.members if m.id != self.leader_id]
        believed = [m for m in self.members if m.id == self.leader_id]
        return believed + self._rng.sample(others, len(others))

    def observe_status(self, status: admin_pb2.NodeStatus, now: float) -> int:
        """Learn the leader a node's status names (0: none that this client can reach)."""
        self._silent.pop(status.id, None)  # it answered
        leader = self._member_id(status.leader_id, status.leader_address)
        if leader and self._silent.get(leader, 0.0) > now:
            leader = 0  # its peers may not know yet
        if (
            not leader
            and status.leader_id
            and status.leader_address
            and self.discover_members
            and len(self.members) < MAX_MEMBERS
            and all(m.id != status.leader_id for m in self.members)
        ):
            # A member added since this client started (quiver admin add-learner).
            self.members.append(Member(status.leader_id, "", status.leader_address))
            leader = status.leader_id
        if leader:
            self.leader_id = leader
            self._leader_confirmed_at = now
        return leader

    def choose(self, to_leader: bool, attempt: int, now: float) -> Member:
        """The node for an attempt. The leader when one is known and wanted; otherwise a
        replica: the client's zone first, passing over replicas that failed lately (all of
        them when every one did), spread at random within the preferred group."""
        if to_leader and self.leader_id:
            return self._member(self.leader_id)
        group = self._preferred(now)
        return group[(attempt + self._rng.randrange(len(group))) % len(group)]

    def preferred_replicas(self, now: float) -> list[int]:
        """The ids `choose` would pick a read replica from at `now` (for status and tests)."""
        return [m.id for m in self._preferred(now)]

    def _preferred(self, now: float) -> list[Member]:
        passed_over = (self._suspects, self._silent)
        healthy = [m for m in self.members if all(d.get(m.id, 0.0) <= now for d in passed_over)]
        pool = healthy or self.members
        return [m for m in pool if self.zone is not None and m.zone == self.zone] or pool

    # -- requests -----------------------------------------------------------------------------

    def prepare_run(
        self,
        query: str,
        parameters: Mapping[str, Any] | None,
        mode: str,
        consistency: str,
    ) -> Call:
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
            consistency=CONSISTENCY[consistency],
            bookmarks=sorted(self.bookmarks),
            impersonated_user=self.impersonate,
        )
        if mode == "write":
            lane = self._take_lane()
            request.client_id = self.lane_client_id(lane)
            request.sequence = next(self._lane_sequences[lane])
            return Call(request, to_leader=True, lane=lane)
        return Call(request, to_leader=consistency == "linearizable")

    def lane_client_id(self, lane: int) -> str:
        return self.client_id if lane == 0 else f"{self.client_id}.{lane}"

    def _take_lane(self) -> int:
        with self._lock:
            if self._free_lanes:
                return self._free_lanes.pop()
            if len(self._lane_sequences) >= MAX_WRITE_LANES:
                raise client_error(
                    errors.SERVICE_UNAVAILABLE,
                    f"more than {MAX_WRITE_LANES} writes in flight on one client",
                )
            self._lane_sequences.append(itertools.count(1))
            return len(self._lane_sequences) - 1

    def finish(self, call: Call) -> None:
        """The call is over (answered, or given up): its lane may carry the next write."""
        if call.lane is not None:
            with self._lock:
                assert call.lane not in self._free_lanes, "a lane finished twice"
                self._free_lanes.append(call.lane)

    def prepare_begin(
        self, timeout_s: float | None, mode: str = "write"
    ) -> client_pb2.BeginRequest:
        """A transaction in `mode`: "write" on the leader, "read" on any replica (read-only,
        over one snapshot taken once the session's bookmarks are applied there)."""
        if mode not in ("read", "write"):
            raise ValueError("mode is 'read' or 'write'")
        return client_pb2.BeginRequest(
            access_mode=(
                client_pb2.ACCESS_MODE_READ if mode == "read" else client_pb2.ACCESS_MODE_WRITE
            ),
            bookmarks=sorted(self.bookmarks),
            client_id=self.client_id,
            timeout_ms=int((timeout_s or self.timeout_s) * 1000),
            impersonated_user=self.impersonate,
        )

    @staticmethod
    def in_transaction(
        transaction_id: str, query: str, parameters: Mapping[str, Any] | None
    ) -> client_pb2.RunRequest:
        return client_pb2.RunRequest(
            query=query,
            parameters={k: to_proto(v) for k, v in (parameters or {}).items()},
            transaction_id=transaction_id,
        )

    def retry(self, timeout_s: float | None, now: float) -> Retry:
        return Retry(now + (timeout_s or self.timeout_s), self._rng)

    # -- outcomes -----------------------------------------------------------------------------

    def failed(
        self, error: QuiverError, member: Member, to_leader: bool, retry: Retry, now: float
    ) -> float | None:
        """Learn from a failed attempt; the pause before the next one, or None to raise."""
        pause = retry.pause_after(error, now)
        if pause is None:
            return None
        if error.code == errors.NOT_A_LEADER:
            self.leader_id = self._leader_from(error)
            self._leader_confirmed_at = now if self.leader_id else -math.inf
        elif to_leader:
            self.leader_id = 0
            if error.unanswered:
                self._silent[member.id] = now + self.suspect_s
        else:
            self._suspects[member.id] = now + self.suspect_s
        return pause

    def succeeded(self, member: Member, to_leader: bool, bookmark: str) -> None:
        self._suspects.pop(member.id, None)
        self._silent.pop(member.id, None)
        if to_leader and not self.leader_id:
            # It answered, perhaps by forwarding: believed, but asked about at the next request.
            self.leader_id = member.id
        self.observe_bookmark(bookmark)

    def observe_bookmark(self, bookmark: str) -> None:
        """Carry the newest bookmark: with concurrent requests on one client, an answer that
        arrives late must not take the session back to an older one."""
        if not bookmark:
            return
        new = bookmark_index(bookmark)
        with self._lock:
            held = [i for b in self.bookmarks if (i := bookmark_index(b)) is not None]
            if new is not None and held and max(held) >= new:
                return
            self.bookmarks = {bookmark}
