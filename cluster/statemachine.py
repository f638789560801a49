"""The replicated state machine of a node: what a committed Raft entry does to the store.

Owns the entry envelope (what the leader proposes), the request-dedup table and the
optimistic concurrency check, both part of the replicated state, and the order in which an
entry reaches disk.

Envelope of a NORMAL entry: ``[1, client_id, sequence, base_index, proposal_id, counters,
write_set_bytes, after]`` in ``store.codec``'s deterministic encoding (the log seals it at rest).
Empty data is a new leader's no-op. A SECURITY entry (users, roles, privileges: the
``system`` database's commands, ``cluster.security.system``) is ``[2, client_id, sequence,
proposal_id, commands_json]``; it is deduplicated by (client_id, sequence) like a write, never
outdated (it reads no graph), and applies all of its commands or, when one breaks a rule of the
security state, none (every replica refuses it alike; the outcome carries the error). The
security state is an application record of the graph store (``sm/security``), written in the
same batch as the entry's index, so snapshots carry it.

Decisions, identical on every replica because they depend only on the entries applied
before: a request whose (client_id, sequence) was applied already is a *duplicate* and
changes nothing (the answer repeats the first one's bookmark and counters); a write set
executed against state older than the last applied write is *outdated* and changes nothing:
for a pipelined write (``after``: the proposal id of the pending write it was executed on
top of) unless that very write is the last one applied; otherwise when ``base_index <
last_write_index`` (the client gets a retryable
``Neo.TransientError.Transaction.Outdated``, never a lost update); anything else is applied.

Durability: the decision's effects on the replicated state (the last write index, the
client's dedup record) are application records of the graph store (``GraphStore.apply``'s
`meta`), written in the same RocksDB batch as the write set and the applied index, so a crash
leaves all or none of an entry, and snapshots carry the dedup table with the graph. The batch
goes through RocksDB's WAL: a process crash loses nothing; the Raft log is the durable record.

Must never: decide from anything but the entry and the replicated state (no clocks, no
local flags), or apply part of a write set. Runs in the node's storage thread.
"""

from __future__ import annotations

import enum
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Final

from cluster.security.system import (
    Command,
    SecurityError,
    SecurityState,
    decode_commands,
    encode_commands,
)
from store.codec import decode_value, decode_write_set, encode_value
from store.graph import GraphStore
from store.memory import WriteSetError
from store.writeset import WriteSet

ENVELOPE_FORMAT: Final = 1
SECURITY_FORMAT: Final = 2
SECURITY_KEY: Final = b"sm/security"
LAST_WRITE_KEY: Final = b"sm/last-write"
LAST_WRITE_PROPOSAL_KEY: Final = b"sm/last-write-proposal"
CLIENT_PREFIX: Final = b"sm/client/"
MEMBER_PREFIX: Final = b"sm/member/"
CACHED_CLIENT_RECORDS: Final = 4096
"""Parsed client records kept, at most (the cache starts over when full)."""
"""Addresses of members added at run time (``quiver admin add-learner``), by node id."""


class Decision(enum.Enum):
    APPLY = "apply"
    DUPLICATE = "duplicate"
    OUTDATED = "outdated"
    NOOP = "noop"


@dataclass(slots=True, frozen=True)
class Envelope:
    client_id: str
    sequence: int
    base_index: int
    proposal_id: bytes
    counters: dict[str, int]
    write_set: bytes
    after: bytes = b""
    """Pipelined: the proposal id of the last pending write this one was executed after."""

    def encode(self) -> bytes:
        return encode_value(
            [
                ENVELOPE_FORMAT,
                self.client_id,
                self.sequence,
                self.base_index,
                self.proposal_id,
                dict(self.counters),
                self.write_set,
                self.after,
            ]
        )

    @staticmethod
    def decode(data: bytes) -> Envelope:
        return Envelope.from_doc(decode_value(data))

    @staticmethod
    def from_doc(doc: object) -> Envelope:
        if not isinstance(doc, list) or len(doc) not in (7, 8) or doc[0] != ENVELOPE_FORMAT:
            raise ValueError("not an entry envelope")
        _, client_id, sequence, base, proposal, counters, write_set = doc[:7]
        after = doc[7] if len(doc) == 8 else b""
        assert isinstance(after, bytes)
        assert isinstance(client_id, str) and isinstance(sequence, int)
        assert isinstance(base, int) and isinstance(proposal, bytes)
        assert isinstance(counters, dict) and isinstance(write_set, bytes)
        return Envelope(
            client_id,
            sequence,
            base,
            proposal,
            {str(k): int(v) for k, v in counters.items()},  # type: ignore[arg-type]
            write_set,
            after,
        )


@dataclass(slots=True, frozen=True)
class SecurityEnvelope:
    """A SECURITY entry: commands on the users, roles and privileges (hashes, never clear
    passwords), with the request id for dedup."""

    client_id: str
    sequence: int
    proposal_id: bytes
    commands: tuple[Command, ...]

    def encode(self) -> bytes:
        return encode_value(
            [
                SECURITY_FORMAT,
                self.client_id,
                self.sequence,
                self.proposal_id,
                encode_commands(self.commands),
            ]
        )

    @staticmethod
    def from_doc(doc: list[object]) -> SecurityEnvelope:
        if len(doc) != 5 or doc[0] != SECURITY_FORMAT:
            raise ValueError("not a security envelope")
        _, client_id, sequence, proposal, commands = doc
        assert isinstance(client_id, str) and isinstance(sequence, int)
        assert isinstance(proposal, bytes) and isinstance(commands, bytes)
        return SecurityEnvelope(client_id, sequence, proposal, tuple(decode_commands(commands)))


@dataclass(slots=True, frozen=True)
class Outcome:
    """What applying one entry did, for the proposer's waiting request."""

    index: int
    decision: Decision
    proposal_id: bytes = b""
    counters: dict[str, int] = field(default_factory=dict)
    original_index: int = 0
    """For a duplicate: the index at which the request was first applied."""
    error: str = ""
    """A write set the graph refused (a constraint): every replica refuses it alike."""
    error_code: str = ""
    """The Neo4j status code of ``error`` when it is not a constraint's (security entries)."""


class ReadWriteLock:
    """Many readers or one writer: queries read the graph while no write set is half-applied
    under them (RocksDB reads are not one snapshot across keys)."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._readers = 0
        self._writer = False
        self.writer_waiting_since: float | None = None
        """``time.monotonic()`` when a writer began to wait for readers to leave (None: no
        writer waits): a long reader checks it to give way (the node's statement guard)."""

    @contextmanager
    def read(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._writer)
            self._readers += 1
        try:
            yield
        finally:
            with self._condition:
                self._readers -= 1
                self._condition.notify_all()

    @contextmanager
    def try_read(self) -> Iterator[bool]:
        """Like `read`, but never waits: yields False, holding nothing, while a writer holds
        or waits for the lock (for callers that must not block, as the event loop)."""
        with self._condition:
            held = not self._writer
            if held:
                self._readers += 1
        try:
            yield held
        finally:
            if held:
                with self._condition:
                    self._readers -= 1
                    self._condition.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        with self._condition:
            self._condition.wait_for(lambda: not self._writer)
            self._writer = True
            if self._readers:
                self.writer_waiting_since = time.monotonic()
                self._condition.wait_for(lambda: self._readers == 0)
                self.writer_waiting_since = None
        try:
            yield
        finally:
            with self._condition:
                self._writer = False
                self._condition.notify_all()


def _client_key(client_id: str) -> bytes:
    return CLIENT_PREFIX + hashlib.sha256(client_id.encode()).digest()[:16]


class StateMachine:
    """Decides and applies entries; its replicated state lives in the graph store."""

    def __init__(self, graph: GraphStore) -> None:
        self.graph = graph
        self.lock = ReadWriteLock()
        self._security: tuple[bytes | None, SecurityState] = (None, SecurityState())
        self._clients: dict[str, tuple[bytes, tuple[int, int, dict[str, int]]]] = {}
        """client id -> (the stored bytes, the record parsed from them)."""

    def security(self) -> SecurityState:
        """The current users, roles and privileges. Treat it as read-only: applying an entry
        replaces it (it never changes under a caller that holds it)."""
        data = self.graph.app_meta(SECURITY_KEY)
        cached_data, cached = self._security
        if data is cached_data or data == cached_data:
            return cached
        state = SecurityState() if data is None else SecurityState.decode(data)
        self._security = (data, state)
        return state

    @property
    def applied_index(self) -> int:
        """The last entry applied (decision and graph together, one batch)."""
        return self.graph.applied_index()

    @property
    def last_write_index(self) -> int:
        data = self.graph.app_meta(LAST_WRITE_KEY)
        return 0 if data is None else int(data)

    def client_record(self, client_id: str) -> tuple[int, int, dict[str, int]] | None:
        """(sequence, index, counters) of the client's last applied request. Read-only:
        records are shared between callers (every write looks its client up twice, once
        on arrival and once at apply; the parsed record is kept while the store holds the
        same bytes for it)."""
        data = self.graph.app_meta(_client_key(client_id))
        if data is None:
            return None
        cached = self._clients.get(client_id)
        if cached is not None and cached[0] is data:
            return cached[1]
        doc = json.loads(data)
        record = (
            int(doc["seq"]),
            int(doc["index"]),
            {k: int(v) for k, v in doc["counters"].items()},
        )
        if len(self._clients) >= CACHED_CLIENT_RECORDS:
            self._clients.clear()
        self._clients[client_id] = (data, record)
        return record

    def members(self) -> dict[int, dict[str, str]]:
        """Members added at run time: id -> {"zone", "grpc", "peer"} and "bolt" when it has one."""
        found = {}
        for key, value in self.graph.app_meta_items():
            if key.startswith(MEMBER_PREFIX):
                found[int(key[len(MEMBER_PREFIX) :])] = json.loads(value)
        return found

    def apply_noop(self, index: int) -> Outcome:
        """An entry that changes no graph state (a leader's no-op)."""
        with self.lock.write():
            self.graph.apply(WriteSet(), index)
        return Outcome(index, Decision.NOOP)

    def apply_membership(
        self, index: int, added: dict[int, dict[str, str]], removed: list[int]
    ) -> Outcome:
        """A conf change: the addresses of members it adds or removes, with the index."""
        meta: dict[bytes, bytes | None] = {
            MEMBER_PREFIX + str(node_id).encode(): json.dumps(entry, sort_keys=True).encode()
            for node_id, entry in added.items()
        }
        meta.update({MEMBER_PREFIX + str(node_id).encode(): None for node_id in removed})
        with self.lock.write():
            self.graph.apply(WriteSet(), index, meta)
        return Outcome(index, Decision.NOOP)

    def apply_security(self, index: int, envelope: SecurityEnvelope) -> Outcome:
        if index <= self.graph.applied_index():
            return Outcome(index, Decision.NOOP, envelope.proposal_id)
        meta: dict[bytes, bytes | None] = {}
        if envelope.client_id:
            record = self.client_record(envelope.client_id)
            if record is not None and envelope.sequence <= record[0]:
                with self.lock.write():
                    self.graph.apply(WriteSet(), index)
                return Outcome(index, Decision.DUPLICATE, envelope.proposal_id, {}, record[1])
        state = self.security().copy()
        error, code = "", ""
        try:
            state.apply(envelope.commands, index)
        except SecurityError as refused:
            error, code = refused.message, refused.code
        else:
            meta[SECURITY_KEY] = state.encode()
            if envelope.client_id:
                doc = {"seq": envelope.sequence, "index": index, "counters": {}}
                meta[_client_key(envelope.client_id)] = json.dumps(doc).encode()
        with self.lock.write():
            self.graph.apply(WriteSet(), index, meta)
        return Outcome(index, Decision.APPLY, envelope.proposal_id, {}, 0, error, code)

    def apply_entry(self, index: int, data: bytes) -> Outcome:
        if not data:
            return self.apply_noop(index)
        doc = decode_value(data)
        if isinstance(doc, list) and doc and doc[0] == SECURITY_FORMAT:
            return self.apply_security(index, SecurityEnvelope.from_doc(doc))
        envelope = Envelope.from_doc(doc)
        if index <= self.graph.applied_index():
            # Applied before (a replay): its effects are in the store already.
            return Outcome(index, Decision.NOOP, envelope.proposal_id)
        decision, original = self._decide(envelope)
        meta: dict[bytes, bytes | None] = {}
        refused: dict[bytes, bytes | None] = {}
        counters = envelope.counters
        if decision is Decision.APPLY:
            meta[LAST_WRITE_KEY] = str(index).encode()
            if envelope.client_id:
                doc = {"seq": envelope.sequence, "index": index, "counters": counters}
                meta[_client_key(envelope.client_id)] = json.dumps(doc).encode()
            # Refused by the graph: writes pipelined after this one were computed on its
            # effects, which never happened, so none of them may apply.
            refused = {**meta, LAST_WRITE_PROPOSAL_KEY: None}
            meta[LAST_WRITE_PROPOSAL_KEY] = envelope.proposal_id
        elif decision is Decision.DUPLICATE:
            record = self.client_record(envelope.client_id)
            counters = record[2] if record is not None else {}
        write_set = decode_write_set(envelope.write_set) if decision is Decision.APPLY else None
        error = ""
        with self.lock.write():
            try:
                self.graph.apply(write_set or WriteSet(), index, meta, refused or None)
            except WriteSetError as refused:
                error = str(refused)
        return Outcome(index, decision, envelope.proposal_id, counters, original, error)

    def _decide(self, envelope: Envelope) -> tuple[Decision, int]:
        if envelope.client_id:
            record = self.client_record(envelope.client_id)
            if record is not None and envelope.sequence <= record[0]:
                return Decision.DUPLICATE, record[1]
        if envelope.after:
            if self.graph.app_meta(LAST_WRITE_PROPOSAL_KEY) != envelope.after:
                return Decision.OUTDATED, 0
        elif envelope.base_index < self.last_write_index:
            return Decision.OUTDATED, 0
        return Decision.APPLY, 0
