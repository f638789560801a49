"""One node process: the Raft core driven by asyncio, the store, the query engine, gRPC.

Owns the node's event loop and its tasks (one TaskGroup: the Raft loop, the ticker, one
sender per peer, the gRPC servers), the Ready loop and its persistence contract, the apply
loop, and the request paths of writes and reads.

The Raft loop is the only code that touches the ``RawNode``: ticks, peer messages,
proposals and read requests reach it through one bounded inbox. For each Ready it
  1. persists snapshot, entries and hard state in the storage thread (fdatasync when
     ``must_sync``) and waits for it,
  2. then queues the messages to the peers (a steady leader queues them first),
  3. then applies committed entries in the storage thread (conf changes through the core),
     or, when they are big (``INLINE_APPLY_BYTES``) or the apply thread has entries still to
     apply, hands them to the apply thread, in order, and goes on: ``advance`` then tells
     the core they are applied, as far as it is concerned (what it hands out next, and
     conf changes, which wait for the apply thread and are applied here);
  4. then calls ``advance``.
The Raft log's writes and fsyncs run only in the single storage thread, the graph's applies
there or in the apply thread; queries run in a small reader pool; the event loop never
blocks on disk.

Writes run on the leader, pipelined (``cluster.pipeline``): under the write lock a statement
executes against the applied graph plus the overlay of this leader's pending proposals and
is proposed in an envelope with the request id and the pending write it followed; the lock
is released before the commit, so many writes are in flight, batched into one Ready, one
fsync and one AppendEntries round (group commit), and the answer comes after apply. A
follower forwards writes to the leader's client port. A leader that stays leader sends its
appends before its own fsync (the loop is serial: no answer is stepped before it returned).
A commit notice (an append that only moves a follower's commit index) waits up to
``COMMIT_NOTICE_DELAY_S`` for the next append to that follower, which carries it anyway.

Reads: ``linearizable`` through the core's ReadIndex (a follower's request goes to the
leader for the index), ``causal`` after the bookmark's index is applied (bounded wait),
``stale`` at once.

Snapshots and compaction: once ``snapshot_entries`` entries were applied since the last
snapshot, the graph's memtables are flushed in the file thread (RocksDB does it without the
GIL), and at a later apply the Raft loop pins a checkpoint of the graph beside its applies
(so the checkpoint's index and the configuration go together; it holds the GIL, so the
flush before it keeps that short) and the snapshotter task writes it to a durable
snapshot file in the file thread, records it in the log and compacts the log up to
``compact_keep_entries`` below it (``store.raftlog`` refuses to compact past a durable
snapshot). A follower that needs entries the leader compacted away gets the snapshot file by
``InstallSnapshot`` (``cluster.transport``); the stream is kept in a file and verified, then
handed to the core, and when the core's Ready carries it the storage thread records it in the
log *first* and then installs it into the graph, so a crash in between re-installs it from
the file on restart. The request-dedup table travels inside the snapshot (it is part of the
graph store's state, see ``cluster.statemachine``).

Membership (on the leader, one change at a time, through Raft): a conf change carries in its
context the proposal id and, when it adds a node, the node's addresses; applying it (on every
node) records the addresses in the replicated state (so snapshots carry them), starts or
stops the peer's senders and answers the waiting request. After a restart the core is given
the snapshot's index as applied, so that committed conf changes after the snapshot reach it
again (the graph skips entries it has; ``self.applied_index`` follows the replay).

Must never: send a message before the Ready's persistence returned, apply an entry twice
(the store is idempotent by index), or wait without a deadline.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import gc
import hashlib
import heapq
import itertools
import json
import logging
import os
import random
import secrets
import signal
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer

from cluster import errors, eventloop
from cluster.certs import CERT_POLL_S, CertificateReloader
from cluster.config import NodeConfig, NodeEntry
from cluster.errors import QuiverError
from cluster.metrics import NodeMetrics
from cluster.pipeline import (
    MAX_PIPELINE,
    Overlay,
    OverlayUnavailableError,
    Pending,
    over_pending,
)
from cluster.statemachine import Decision, Envelope, Outcome, StateMachine
from cluster.transport import (
    CHANNEL_OPTIONS,
    SERVER_OPTIONS,
    PeerSender,
    RaftTransportService,
    SnapshotRejectedError,
    SnapshotSender,
    snapshot_message,
)
from cypher import CypherError, Engine, Result, Transaction
from cypher.executor import current_guard, statement_guard
from proto import admin_pb2, client_pb2, raft_pb2, raft_pb2_grpc
from raft.core import Config
from raft.errors import (
    CompactedError,
    ProposalDroppedError,
    SnapshotOutOfDateError,
    UnavailableError,
)
from raft.rawnode import RawNode, Ready
from raft.read_only import ReadOnlyOption
from raft.types import (
    NONE,
    ConfChange,
    ConfChangeSingle,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
    StateType,
)
from store import failpoints
from store.codec import encode_write_set
from store.crypto import fsync_dir, load_kek
from store.graph import GraphSnapshot, StoreNotReadyError, StoreWriteError
from store.node_store import NodeStore
from store.raftlog import MAX_ENTRIES_RECORD_BYTES, LogSyncError
from store.snapshot import MAX_CHUNK_BYTES, SnapshotSource, read_snapshot_file
from store.view import GraphView
from store.writeset import WriteSet

if TYPE_CHECKING:
    from cluster.bolt.server import BoltServer
    from cluster.security.privileges import PrivilegeSet

log = logging.getLogger("quiver.node")

INBOX_ITEMS: Final = 16_384
MAX_INPUTS_PER_READY: Final = 4096
MAX_APPLY_WAITERS: Final = 100_000
INLINE_APPLY_BYTES: Final = 256 * 1024
"""Committed entries of at most this much data (one Ready's) are applied while the Raft loop
waits, in the storage thread, with the persistence of the entries when they come together
(one trip); bigger ones are applied off the loop, in the apply thread, while the loop goes
on stepping, ticking and sending. Before, the loop waited for every apply: a write of 100K
property updates took seconds to apply on every node, the leader sent no heartbeats
meanwhile and the followers none of their answers, and each such write cost an election or
two (6 terms for 4 of them beside a stream of small writes)."""
APPLY_BACKLOG_BYTES: Final = 64 * 1024 * 1024
"""Entry data handed to the apply thread and not yet applied, at most: beyond it the Raft
loop waits for the apply thread to catch up."""
PROPOSAL_TIMEOUT_S: Final = 10.0
DEFAULT_QUERY_TIMEOUT_S: Final = 30.0
"""How long an auto-commit statement may run (an explicit transaction's statements: until
the transaction's own deadline); then it ends with Neo.ClientError.Transaction.
TransactionTimedOut. Before, nothing stopped a statement: a cartesian product ran for as
long as it liked on a reader thread."""
INLINE_STOP_S: Final = 0.02
"""A statement run inline on the event loop (its text last ran under INLINE_BUDGET_S) that
still runs after this long is stopped and run again on a reader thread: the same text with
other parameters (UNWIND range(1, $n)) may be slow, and the event loop runs Raft: a 4.6 s
inline read on the leader cost it its leadership. Ten inline budgets: a statement that
was quick once and is a little slower now still finishes where it started."""
READ_HOLD_FRACTION: Final = 0.5
"""A statement that holds the graph's read lock while an apply of committed entries waits
for it stops (Neo.TransientError.Transaction.Outdated, retried by clients) once the apply
waited this fraction of the election timeout. The Raft loop waits for its apply, so a
leader that a long statement holds up sends no heartbeats: a 36M-row count (12 s) on the
leader cost it its leadership and held every write for 10 s.

Half the timeout: the leader stays silent for at most that (plus the apply), while its
followers wait at least a whole timeout before they campaign. Statements in threads read a
snapshot and hold no lock (``Node._execute``, ``Node._execute_writes``, explicit
transactions); what still holds it is a quick statement on the event loop (which stops at
INLINE_STOP_S anyway) and the re-run of a transaction at its commit (``Node._reexecuted``,
at most REEXECUTE_MAX_S)."""
CAUSAL_WAIT_S: Final = 5.0
LEADER_READY_WAIT_S: Final = 5.0
LEADER_WAIT_S: Final = 2.0
"""How long a follower waits for a leader to be known before it fails a statement it would
forward to one (an election takes about an election timeout)."""
READ_INDEX_TIMEOUT_S: Final = 5.0
READ_ROUND_GATHER_S: Final = 0.005
"""At most this long between a read-index round and the next when readers are waiting (the
pause is as long as the round before, up to this)."""
COMMIT_NOTICE_DELAY_S: Final = 0.001
"""How long a leader holds a commit notice for a peer, waiting for the next append to it,
which carries the new commit index anyway (see ``Node._defer_notice``)."""
FETCH_SIZE: Final = 1000
READER_THREADS: Final = 4
WRITER_THREADS: Final = 2
WRITE_BATCH: Final = 64
"""Queued writes executed in one trip to a writer thread, at most."""
MAX_QUEUED_WRITES: Final = 4096
INLINE_BUDGET_S: Final = 0.002
"""A statement whose text last ran faster than this (CPU time of the thread that ran it) runs
on the event loop. A reader thread does not keep such a statement from holding the loop up
anyway (it holds the GIL for as long, and the loop may wait up to the 5 ms switch interval
to get it back); it only adds the trip.
Measured: friend-of-friend over Bolt 1.84 -> 1.55 ms p50 with 2 ms instead of 0.5 ms."""
INLINE_WRITES: Final = 4
"""Queued writes executed on the event loop together, at most (each of them quick); a bigger
batch goes to a writer thread."""
INLINE_QUERIES: Final = 1024
BOOKMARK_PREFIX: Final = "quiver:"
FORWARDED_METADATA: Final = "quiver-forwarded"
SHUTDOWN_GRACE_S: Final = 2.0
CERT_CHANNEL_GRACE_S: Final = 30.0
"""A forwarding channel replaced by a CA rotation closes after its calls, at most this long."""
FAILPOINTS_ENV: Final = "QUIVER_FAILPOINTS"
MAX_TRANSACTIONS: Final = 1000
TRANSACTION_PURGE_S: Final = 1.0
"""How often transactions left open past their timeout are ended (see ``Node._ticker``)."""
MAX_OPEN_TRANSACTION_BYTES: Final = 256 << 20
"""The writes all open transactions on a node hold, encoded, at most (each holds at most
MAX_WRITE_SET_BYTES): a statement that would take them past it fails its transaction with
Neo4j's transient MemoryPoolOutOfMemoryError (as past ``db.memory.transaction.total.max``).
Their state in memory takes some times more; without the bound, 1000 open transactions
could hold 16 GiB of writes."""
REEXECUTE_MAX_S: Final = 0.05
"""An explicit transaction whose statements took at most this much CPU time (in all) is run
again at its commit when writes were applied since it began, and commits if every statement
answers the same again (``Node._reexecuted``); a longer one is outdated then, as it would
hold the leader's write pipeline up for as long."""
REEXECUTE_MAX_STATEMENTS: Final = 100
DEFAULT_TRANSACTION_TIMEOUT_S: Final = 30.0
MAX_TRANSACTION_TIMEOUT_S: Final = 300.0
MAX_SNAPSHOT_BYTES: Final = 64 << 30
"""A snapshot stream claiming more is refused."""
MAX_SNAPSHOT_CHUNK_BYTES: Final = MAX_CHUNK_BYTES + 4096
FILE_THREADS: Final = 2
STOP_HANDOFF_S: Final = 5.0
"""How long a leader asked to stop (SIGTERM) tries to hand leadership over first."""
STOP_SETTLE_S: Final = 2.0
"""Then how long it waits for the writes in flight to be answered."""
MAX_BACKUP_WAIT_S: Final = 300.0
"""The longest a backup waits for its member to apply the index it must hold."""
RECEIVED_PREFIX: Final = "received-"
RECEIVING_PREFIX: Final = "receiving-"
PROMOTE_MAX_LAG_ENTRIES: Final = 100
DEFAULT_CATCH_UP_S: Final = 30.0
MAX_CATCH_UP_S: Final = 300.0
COUNTER_FIELDS: Final = tuple(client_pb2.Counters.DESCRIPTOR.fields_by_name)

T = TypeVar("T")


def bookmark(index: int) -> str:
    return f"{BOOKMARK_PREFIX}{index}"


def parse_bookmarks(bookmarks: list[str]) -> int:
    highest = 0
    for text in bookmarks:
        if not text.startswith(BOOKMARK_PREFIX) or not text[len(BOOKMARK_PREFIX) :].isdigit():
            raise QuiverError(errors.INVALID_BOOKMARK, f"not a Quiver bookmark: {text!r}")
        highest = max(highest, int(text[len(BOOKMARK_PREFIX) :]))
    return highest


_CARRIES_COMMIT: Final = frozenset({MessageType.APPEND, MessageType.HEARTBEAT})


def _is_commit_notice(message: Message) -> bool:
    """A leader's append that carries no entries: it only moves the follower's commit index."""
    return message.type is MessageType.APPEND and not message.entries


@dataclass(slots=True)
class _Tick:
    pass


@dataclass(slots=True)
class _Step:
    message: Message


@dataclass(slots=True)
class _Propose:
    data: bytes
    proposal_id: bytes


@dataclass(slots=True)
class _ReadIndex:
    context: bytes


@dataclass(slots=True)
class _TransferLeader:
    to: int


@dataclass(slots=True)
class _Unreachable:
    peer: int


@dataclass(slots=True)
class _ProposeConfChange:
    change: ConfChange
    proposal_id: bytes


@dataclass(slots=True)
class _SnapshotStatus:
    peer: int
    failed: bool


_Input = (
    _Tick
    | _Step
    | _Propose
    | _ProposeConfChange
    | _ReadIndex
    | _TransferLeader
    | _Unreachable
    | _SnapshotStatus
)


class MemberChange(enum.Enum):
    ADD_LEARNER = "add-learner"
    PROMOTE = "promote"
    DEMOTE = "demote"
    REMOVE = "remove"


@dataclass(slots=True)
class _OpenTransaction:
    tx_id: str
    transaction: Transaction
    snapshot: GraphSnapshot
    """The graph as it was when the transaction began: every statement reads it (plus the
    transaction's own writes), so a write committed between two statements shows in
    neither. Before, each read the graph as it was then, and a read-only transaction could
    see half of a concurrent write (read skew)."""
    base_index: int
    """The applied index of `snapshot`: its commit runs again if a write was applied since
    (``Node._reexecuted``), and a read-only one answers its bookmark."""
    deadline: float
    client_id: str
    lock: asyncio.Lock
    """Statements of one transaction run one at a time."""
    owner: str = ""
    """The user who began it: only they may use it (its id alone is not enough)."""
    write_bytes: int = 0
    """What its statements wrote so far, encoded: past MAX_WRITE_SET_BYTES it can never
    commit, so it ends then rather than hold its writes in memory until the commit; it
    counts towards MAX_OPEN_TRANSACTION_BYTES until it ends."""
    privileges: PrivilegeSet | None = None
    statements: list[_Answered] | None = field(default_factory=list)
    """Its statements with a digest of what each answered, to run them again at the commit
    when other writes were applied since it began (``Node._reexecuted``); None once they
    took more than REEXECUTE_MAX_S or were more than REEXECUTE_MAX_STATEMENTS, and for a
    read-only one."""
    spent_s: float = 0.0
    read_only: bool = False
    """Begun in read access mode: a statement that writes fails it."""
    running: asyncio.Future[Any] | None = None
    """What a thread last did or does for it (a statement, its commit)."""

    def close_when_idle(self) -> None:
        """Close its snapshot now, or once the thread working for it is done (a statement
        whose caller went away runs on: its thread must not lose the snapshot under it)."""
        if self.running is None or self.running.done():
            self.snapshot.close()
        else:
            self.running.add_done_callback(lambda _: self.snapshot.close())


def _discard_outcome(future: asyncio.Future[Any], close: bool = False) -> None:
    """For a thread's work whose caller went away: its outcome is retrieved (no "never
    retrieved" warning) and, with `close`, the snapshot it returns is closed."""

    def done(_: asyncio.Future[Any]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        if close:
            future.result().close()

    future.add_done_callback(done)


@dataclass(slots=True, frozen=True)
class _Answered:
    query: str
    parameters: dict[str, Any]
    digest: bytes
    """``_answer_digest`` of its result."""


def _answer_digest(result: Result) -> bytes:
    """What a statement answered (columns, rows, counters), in 32 bytes. Values that are
    equal may print differently (a map's key order): then two answers differ here, which
    costs a transaction its re-run at the commit, never its correctness."""
    answer = (result.columns, result.rows, sorted(result.counters.items()))
    return hashlib.sha256(repr(answer).encode("utf-8", "surrogatepass")).digest()


MAX_WRITE_SET_BYTES: Final = MAX_ENTRIES_RECORD_BYTES - (64 << 10)
"""A transaction's writes, encoded, at most: they travel in one Raft entry, and a log record
holds at most ``MAX_ENTRIES_RECORD_BYTES`` of entry data (the envelope's other fields take
far less than the margin). A larger entry would stop every node that tried to persist it."""


def statement_deadline(timeout_ms: int | None) -> float | None:
    """The deadline (``time.monotonic()``) of a client's timeout in milliseconds (Bolt's
    tx_timeout), at most MAX_TRANSACTION_TIMEOUT_S away; None when none was given."""
    if not timeout_ms:
        return None
    return time.monotonic() + min(timeout_ms / 1000, MAX_TRANSACTION_TIMEOUT_S)


class _LeaveLoop(Exception):
    """Raised into a statement run inline on the event loop that ran past INLINE_STOP_S:
    it is run again on a reader thread. Not a CypherError, which the engine and the
    pipeline would take for the statement's own failure."""


def _both(first: Callable[[], None], second: Callable[[], None]) -> Callable[[], None]:
    def check() -> None:
        first()
        second()

    return check


def _received_index(name: str) -> int:
    """The index in a received snapshot file's name (0 for a name not of that form)."""
    digits = name[len(RECEIVED_PREFIX) :].split("-", 1)[0]
    return int(digits) if digits.isdigit() else 0


def _data_bytes(entries: list[Entry]) -> int:
    return sum(len(entry.data) for entry in entries)


def _inline_check() -> Callable[[], None]:
    stop = time.monotonic() + INLINE_STOP_S

    def check() -> None:
        if time.monotonic() > stop:
            raise _LeaveLoop

    return check


def _too_large(size: int) -> QuiverError:
    return QuiverError(
        errors.TOO_LARGE,
        f"the transaction's writes take {size} bytes; at most {MAX_WRITE_SET_BYTES} fit one "
        "replicated log entry: split the work into several transactions (Quiver commits "
        "CALL { ... } IN TRANSACTIONS as one transaction)",
    )


@dataclass(slots=True)
class _Executed:
    """A statement executed for a write request: its result, whether pending writes were
    under it, and its write (not yet in the pipeline; None when it wrote nothing)."""

    result: Result
    overlaid: bool
    written: Pending | None
    encoded: bytes
    """The write set as proposed (encoded even when empty: a request with an id proposes
    it all the same)."""


_Queued = tuple[Result, int, Envelope | None, "asyncio.Future[Outcome] | None"]
"""A queued write once executed: result, the applied index it ran at, and the proposed
envelope with the future of its outcome (None, None for a read-only statement)."""


@dataclass(slots=True)
class _QueuedWrite:
    query: str
    parameters: dict[str, Any]
    client_id: str
    sequence: int
    ready: asyncio.Future[_Queued]
    privileges: PrivilegeSet | None = None
    """The caller's resolved privileges (None: unrestricted)."""
    deadline: float | None = None
    """The client's own (Bolt's tx_timeout, ``time.monotonic()``); None: the batch's."""


def _settle(
    queued: _QueuedWrite, done: _Queued | None = None, error: QuiverError | None = None
) -> None:
    """Answer a queued write's caller once (a caller that gave up is skipped)."""
    if queued.ready.done():
        return
    if error is not None:
        queued.ready.set_exception(error)
    else:
        assert done is not None
        queued.ready.set_result(done)


@dataclass(slots=True, frozen=True)
class Answer:
    """What a query produced, ready to stream."""

    columns: list[str]
    rows: list[list[Any]]
    counters: dict[str, int]
    bookmark: str
    applied_index: int
    query_type: int


def _outcome_unknown(why: str) -> QuiverError:
    """A write whose outcome this node cannot tell and no retry can deduplicate (drivers do
    not retry ``TransactionCommitFailed``)."""
    return QuiverError(
        errors.COMMIT_OUTCOME_UNKNOWN,
        f"the commit's outcome is unknown: {why} (check the data before running it again)",
    )


class BackupStream:
    """One backup being streamed (``Node.open_backup``): ``await next()`` gives each chunk,
    then None; ``close()``, however the stream ends, lets the member take the next backup
    and closes the checkpoint (idempotent; safe while a chunk is being read)."""

    def __init__(self, node: Node, source: SnapshotSource) -> None:
        self._node = node
        self._source = source
        self._chunks = source.chunks()
        self._closed = False
        self.applied_index = source.applied_index

    async def next(self) -> bytes | None:
        if self._closed:
            raise QuiverError(errors.UNAVAILABLE, "the backup stream is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._node._backups, next, self._chunks, None)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._node._backing_up = False
        self._node._release_checkpoint(self._source)


class Node:
    def __init__(self, config: NodeConfig) -> None:
        self.config = config
        self.id = config.id
        self.engine = Engine()
        self._storage = ThreadPoolExecutor(max_workers=1, thread_name_prefix="storage")
        # Big applies, off the Raft loop (INLINE_APPLY_BYTES): the storage thread goes on
        # persisting the log meanwhile (the log and the graph are separate stores).
        self._applier = ThreadPoolExecutor(max_workers=1, thread_name_prefix="apply")
        self._apply_backlog: collections.deque[list[Entry]] = collections.deque()
        """Committed entries the apply thread has still to apply, in log order, each list
        one trip to it; while any are, every later entry goes after them."""
        self._apply_backlog_bytes = 0
        self._applies_drained = asyncio.Event()
        self._applies_drained.set()
        self._apply_progress = asyncio.Event()
        """Set each time the apply thread finishes a piece of the backlog."""
        self._apply_task: asyncio.Task[None] | None = None
        self._readers = ThreadPoolExecutor(max_workers=READER_THREADS, thread_name_prefix="reader")
        # The write path's statements (queued writes, explicit transactions, commits): reads
        # on snapshots may take their whole timeout, and four of them must not hold every
        # write up for as long.
        self._writers = ThreadPoolExecutor(max_workers=WRITER_THREADS, thread_name_prefix="writer")
        # Snapshot files (writing our own, reading for a peer, keeping a received one): long
        # work that must not hold up the storage thread.
        self._files = ThreadPoolExecutor(max_workers=FILE_THREADS, thread_name_prefix="files")
        # Backups streamed to a client: one at a time, every step of it (the pin, each
        # chunk, the release) on this one thread, so the release never overtakes a chunk.
        self._backups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup")
        self._backing_up = False
        self._snapshot_senders: dict[int, SnapshotSender] = {}
        self._snapshot_jobs: asyncio.Queue[tuple[SnapshotSource, ConfState]] = asyncio.Queue(
            maxsize=1
        )
        self._snapshotting = False
        self._snapshot_flush: asyncio.Future[None] | None = None
        """The graph's memtables being flushed before the next checkpoint is pinned."""
        self.snapshot_index = 0
        self._replayed_to = 0
        """The graph's applied index at start: entries up to it are replayed to the core."""
        self.peers: dict[int, NodeEntry] = dict(config.peers)
        self._peer_tasks: dict[int, list[asyncio.Task[None]]] = {}
        self._task_group: asyncio.TaskGroup | None = None
        self._conf_changes: dict[bytes, asyncio.Future[tuple[int, ConfState]]] = {}
        self._membership_lock = asyncio.Lock()
        self._pipeline: dict[bytes, Pending] = {}
        """This leader's writes proposed and not yet applied, in proposal order."""
        self._overlay: Overlay | None = None
        """The last batch's overlay, for the next batch if it still serves (one writer at a
        time uses it: under the write lock)."""
        self._pipeline_snapshot: GraphSnapshot | None = None
        """The snapshot the last batch run in a thread read (``_pipeline_graph``; under the
        write lock too)."""
        self._pipeline_room = asyncio.Event()
        self._pipeline_empty = asyncio.Event()
        self.snapshots_installed = 0
        self.snapshots_taken = 0
        self.store: NodeStore | None = None
        self.sm: StateMachine | None = None
        self.raw: RawNode | None = None
        self._inbox: asyncio.Queue[_Input] = asyncio.Queue(maxsize=INBOX_ITEMS)
        self._senders: dict[int, PeerSender] = {}
        self._notices: dict[int, Message] = {}
        """Commit notices held back, by peer (``_defer_notice``)."""
        self._notice_timer: asyncio.TimerHandle | None = None
        self._proposals: dict[bytes, asyncio.Future[Outcome]] = {}
        self._settling: dict[bytes, int] = {}
        """Proposals no retry can deduplicate (``_propose_settled``), by id: their log index
        once proposed (0 before)."""
        self._leading = False
        self._hand_over_on_stop = True
        """Whether this node led as of the last soft state handled (``_on_soft_state``): the
        core's own state has moved on already when a Ready reports the change."""
        self._reads: dict[bytes, asyncio.Future[int]] = {}
        self._leader_known = asyncio.Event()
        """Set while this node knows a leader (itself included)."""
        self._lost_leader = NONE
        """The leader our transport lost its stream to (its process is likely gone), until
        a message from it or another leader: not named in status, not forwarded to."""
        self._quick: dict[str, bool] = {}
        """Statement texts by whether their last run took under INLINE_BUDGET_S."""
        self._read_hold_s = config.tick_ms * config.election_ticks / 1000 * READ_HOLD_FRACTION
        self._tick_queued = False
        """A tick waits in the inbox: the ticker queues no other until it is stepped."""
        self._read_waiters: list[asyncio.Future[int]] = []
        """Linearizable readers waiting for the next read-index round."""
        self._read_round = False
        """Whether a read-index round is in flight."""
        self._apply_waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._waiter_seq = 0
        self.applied_index = 0
        self.term_applied = 0
        self._write_lock = asyncio.Lock()
        self._write_queue: collections.deque[_QueuedWrite] = collections.deque()
        self._id_prefix = secrets.token_bytes(8)
        self._id_counter = itertools.count()
        self._writer: asyncio.Task[None] | None = None
        self._transactions: dict[str, _OpenTransaction] = {}
        self._open_write_bytes = 0
        """What the open transactions wrote, encoded, in all (``MAX_OPEN_TRANSACTION_BYTES``)."""
        self._timed_out: collections.OrderedDict[str, str] = collections.OrderedDict()
        """The last transactions that ended at their timeout (id -> owner): a statement or
        commit that comes for one is told so, not that there is no such transaction."""
        # Failpoint: peers this node is cut off from (tests only; see Admin.Partition).
        self.failpoints_enabled = failpoints.enabled()
        self.blocked: frozenset[int] = frozenset()
        self._stop = asyncio.Event()
        self._client_credentials: grpc.ChannelCredentials | None = None
        self._peer_credentials: grpc.ChannelCredentials | None = None
        self._leader_channels: dict[int, grpc.aio.Channel] = {}
        self._certificates: CertificateReloader | None = None
        self._certificates_changed = asyncio.Event()
        self._bolt_ssl: ssl.SSLContext | None = None
        self._bolt_stale = False
        """Whether the Bolt context's last reload failed (it is tried again each poll)."""
        self.health = HealthServicer()
        from cluster.security.node_security import NodeSecurity

        self.security = NodeSecurity(self)
        self.metrics = NodeMetrics(self)
        """Logins, session tokens, the ``system`` database, the initial admin, the audit log."""

    # -- storage thread -----------------------------------------------------------------------

    async def _in_storage(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._storage, fn)

    def _open_store(self) -> None:
        kek = load_kek(self.config.key_file)
        self.store = NodeStore(self.config.data_dir, kek)
        if failpoints.ACTIVE and "drop-tail" in failpoints.ACTIVE:
            log.warning(
                "n%d failpoint drop-tail: log cut to %d", self.id, failpoints.drop_tail(self.store)
            )
        self.sm = StateMachine(self.store.graph)
        log_store = self.store.log
        store = self.store
        for partial in store.snapshot_dir.glob(f"{RECEIVING_PREFIX}*"):
            partial.unlink()
        for node_id, member in self.sm.members().items():
            self.peers[node_id] = NodeEntry(
                node_id, member["zone"], member["grpc"], member["peer"], "", member.get("bolt", "")
            )
        if (
            not self.config.join
            and log_store.snapshot().metadata.index == 0
            and log_store.last_index() == 0
        ):
            # A new member of the initial configuration: every one of them starts from the
            # same bootstrap snapshot, so none needs another's snapshot to begin.
            voters = tuple(sorted(self.config.peers))
            log_store.apply_snapshot(
                Snapshot(metadata=SnapshotMetadata(ConfState(voters=voters), index=1, term=1))
            )
        snapshot = log_store.snapshot()
        if snapshot.data and (
            store.graph.installing() or store.graph.applied_index() < snapshot.metadata.index
        ):
            # The log took a received snapshot but the process died before (or while) the
            # graph installed it: install it again from the kept file.
            log.warning("n%d: re-installing the snapshot at %d", self.id, snapshot.metadata.index)
            store.install_snapshot_file(store.snapshot_path(snapshot))
        self.snapshot_index = snapshot.metadata.index
        # The core restarts from the snapshot: what was applied after it is replayed (the
        # graph skips it), so that committed conf changes reach the core's configuration.
        applied = snapshot.metadata.index
        self.applied_index = applied
        self._replayed_to = self.sm.applied_index
        self.raw = RawNode(
            Config(
                id=self.id,
                storage=log_store,
                rng=random.Random(secrets.randbits(64)),
                election_ticks=self.config.election_ticks,
                heartbeat_ticks=self.config.heartbeat_ticks,
                applied=applied,
                check_quorum=True,
                pre_vote=True,
                read_only_option=ReadOnlyOption.SAFE,
                disable_proposal_forwarding=True,
            )
        )

    def _close_store(self) -> None:
        if self.store is not None:
            self.store.close()

    # -- inputs -------------------------------------------------------------------------------

    def deliver(self, message: Message) -> None:
        """A message from a peer; dropped when the inbox is full (Raft retransmits)."""
        if message.sender in self.blocked:
            return
        try:
            self._inbox.put_nowait(_Step(message))
        except asyncio.QueueFull:
            log.warning("inbox full: dropped %s from n%d", message.type.name, message.sender)

    def _report_unreachable(self, peer: int) -> None:
        # When the inbox is full the core learns it from the next failed send.
        with contextlib.suppress(asyncio.QueueFull):
            self._inbox.put_nowait(_Unreachable(peer))

    def is_member(self, node_id: int) -> bool:
        assert self.raw is not None
        members = self.raw.raft.trk.conf_state().members()
        if not members:
            # A joining node before its first snapshot: the peers it was told of.
            return node_id in self.peers
        return node_id in members

    # -- the Raft loop ------------------------------------------------------------------------

    async def _ticker(self) -> None:
        """One tick per interval. Ticks missed while the loop was held up are dropped, not
        made up in a burst (Go's time.Ticker drops them for etcd alike): a burst would run a
        follower's election timer, or a leader's check-quorum, through a stall in one go,
        before the heartbeats and answers that arrived meanwhile are stepped, and so depose
        a healthy leader under load (seen: one leader change in a 5-minute full-load run).
        Dropping ticks only slows this node's clock: reads never rely on it (ReadIndex), and
        a slow voter refuses votes for longer, which costs liveness at worst."""
        interval = self.config.tick_ms / 1000 / failpoints.clock_rate()
        next_at = purge_at = time.monotonic()
        while True:
            next_at += interval
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
            if next_at >= purge_at:
                # Transactions left open past their timeout (each pins a snapshot) end even
                # when no other transaction comes along to purge them.
                purge_at = next_at + TRANSACTION_PURGE_S
                self._purge_transactions()
            if not self._tick_queued:
                # Nor while the Raft loop is held up by an apply (the event loop runs on):
                # a write set of 200K creates took seconds to apply on every node, and the
                # ticks queued meanwhile made a burst that started elections after it.
                self._tick_queued = True
                await self._inbox.put(_Tick())
            next_at = max(next_at, time.monotonic() - interval)  # at most one tick owed

    def _handle_input(self, item: _Input) -> None:
        raw = self.raw
        assert raw is not None
        if isinstance(item, _Tick):
            self._tick_queued = False
            raw.tick()
        elif isinstance(item, _Step):
            raw.step(item.message)
            if item.message.sender == self._lost_leader:
                self._lost_leader = NONE  # alive after all
                if raw.leader != NONE:
                    self._leader_known.set()
        elif isinstance(item, _Propose):
            try:
                raw.propose(item.data)
            except ProposalDroppedError:
                self._fail_proposal(item.proposal_id, self._not_leader_error())
            else:
                pending = self._pipeline.get(item.proposal_id)
                if pending is not None:
                    pending.index = raw.raft.log.last_index()
                if item.proposal_id in self._settling:
                    self._settling[item.proposal_id] = raw.raft.log.last_index()
        elif isinstance(item, _ReadIndex):
            if raw.leader == NONE:
                self._fail_read(item.context, self._no_leader_error())
            else:
                raw.read_index(item.context)
        elif isinstance(item, _TransferLeader):
            raw.transfer_leader(item.to)
        elif isinstance(item, _ProposeConfChange):
            try:
                raw.propose_conf_change(item.change)
            except ProposalDroppedError:
                future = self._conf_changes.pop(item.proposal_id, None)
                if future is not None and not future.done():
                    future.set_exception(self._not_leader_error())
        elif isinstance(item, _SnapshotStatus):
            raw.report_snapshot(item.peer, item.failed)
        else:
            raw.report_unreachable(item.peer)
            if item.peer == raw.leader and item.peer != self.id:
                # The core campaigns soon (if the leader stays silent); meanwhile, rather
                # than fail every statement against the dead leader, forwards wait for
                # the election and status names no leader.
                self._lost_leader = item.peer
                self._leader_known.clear()

    async def _raft_loop(self) -> None:
        raw = self.raw
        assert raw is not None
        while True:
            self._handle_input(await self._inbox.get())
            for _ in range(MAX_INPUTS_PER_READY):
                try:
                    item = self._inbox.get_nowait()
                except asyncio.QueueEmpty:
                    break
                self._handle_input(item)
            while raw.has_ready():
                await self._handle_ready(raw, raw.ready())

    async def _handle_ready(self, raw: RawNode, ready: Ready) -> None:
        store = self.store
        assert store is not None
        was_leader = self._leading
        if ready.soft_state is not None:
            self._on_soft_state(was_leader)
        # 1. persist (a leader that stays leader sends first: its appends go out while its
        # own fsync runs, Raft thesis 10.2.1; no answer to them is stepped before this
        # Ready's persistence returned, because the loop is serial)
        snapshot, entries, hard_state = ready.snapshot, ready.entries, ready.hard_state
        send_first = (
            was_leader
            and raw.raft.state is StateType.LEADER
            and ready.soft_state is None
            and snapshot is None
        )
        committed = ready.committed_entries
        notices: list[Message] = []
        if send_first:
            for message in ready.messages:
                if committed and _is_commit_notice(message):
                    notices.append(message)
                else:
                    self._send(message)
        if (
            committed
            and snapshot is None
            and (send_first or not ready.messages)
            and all(entry.type is EntryType.NORMAL for entry in committed)
            and not self._apply_backlog
            and _data_bytes(committed) <= INLINE_APPLY_BYTES
        ):
            # Nothing waits to be sent after the persistence: persist and apply in one trip
            # to the storage thread (the order within it is the same).
            await self._persist_and_apply(entries, hard_state, ready.must_sync, committed)
            for message in notices:
                self._defer_notice(message)
            for read_state in ready.read_states:
                future = self._reads.pop(read_state.request_ctx, None)
                if future is not None and not future.done():
                    future.set_result(read_state.index)
            await self._maybe_snapshot(raw)
            raw.advance(ready)
            return
        if snapshot is not None:
            await self._drain_applies()  # the installation replaces the graph
        if snapshot is not None or entries or hard_state is not None:

            def persist() -> None:
                if snapshot is not None:
                    self._install_snapshot(snapshot)
                store.log.save(entries, hard_state, sync=ready.must_sync)

            await self._in_storage(persist)
            if snapshot is not None:
                self._installed(snapshot)
        # 2. send
        if not send_first:
            for message in ready.messages:
                self._send(message)
        for message in notices:
            self._defer_notice(message)
        # 3. apply
        for read_state in ready.read_states:
            future = self._reads.pop(read_state.request_ctx, None)
            if future is not None and not future.done():
                future.set_result(read_state.index)
        if ready.committed_entries:
            await self._apply(raw, ready.committed_entries)
            await self._maybe_snapshot(raw)
        # 4. advance
        raw.advance(ready)

    async def _persist_and_apply(
        self,
        entries: list[Entry],
        hard_state: HardState | None,
        must_sync: bool,
        committed: list[Entry],
    ) -> None:
        store = self.store
        assert store is not None

        def work() -> list[Outcome]:
            if entries or hard_state is not None:
                store.log.save(entries, hard_state, sync=must_sync)
            return self._apply_entries(committed)

        outcomes = await self._in_storage(work)
        for entry, outcome in zip(committed, outcomes, strict=True):
            self._applied(entry, outcome)

    # -- snapshots ----------------------------------------------------------------------------

    def _install_snapshot(self, snapshot: Snapshot) -> None:
        """Storage thread: the log first (durable), then the graph from the kept file."""
        store, sm = self.store, self.sm
        assert store is not None and sm is not None
        store.log.apply_snapshot(snapshot)
        if snapshot.data:
            with sm.lock.write():
                store.install_snapshot_file(store.snapshot_path(snapshot))
        self._remove_stale_snapshot_files()

    def _installed(self, snapshot: Snapshot) -> None:
        index = snapshot.metadata.index
        assert index > self.applied_index, "a snapshot older than the applied state"
        self.applied_index = index
        self.term_applied = max(self.term_applied, snapshot.metadata.term)
        self.snapshot_index = index
        self.snapshots_installed += 1
        log.info("n%d installed the snapshot at %d", self.id, index)
        if self._settling:
            self._settle(lost=False)
        self._release_apply_waiters()

    def _remove_stale_snapshot_files(self) -> None:
        """Received snapshot files are no longer needed once the log names a snapshot at
        or past their index (but the one it names). A newer one may be on its way to the
        core, to be installed at a Ready yet to come: kept. Before, the snapshotter, writing
        this node's own snapshot meanwhile, removed it, and the installation stopped the
        node (twice in a soak where every apply went through the apply thread)."""
        store = self.store
        assert store is not None
        current = store.log.snapshot()
        keep = store.snapshot_path(current).name if current.data else ""
        for path in store.snapshot_dir.glob(f"{RECEIVED_PREFIX}*"):
            if path.name == keep or _received_index(path.name) > current.metadata.index:
                continue
            path.unlink(missing_ok=True)

    async def _maybe_snapshot(self, raw: RawNode, in_backlog: bool = False) -> None:
        """Pin a checkpoint when the policy says so; the snapshotter writes it out. From the
        Raft loop while the apply thread has no work, or from the apply task between two
        pieces of it (`in_backlog`): never beside an apply."""
        store = self.store
        assert store is not None
        if self.applied_index - self.snapshot_index < self.config.snapshot_entries:
            return
        if self._apply_backlog and not in_backlog:
            return  # the apply task checks between the pieces of its backlog
        if self.applied_index < self._replayed_to:
            return  # still replaying after a restart: the graph is ahead of the core
        if self._snapshotting or self._snapshot_jobs.full():
            return
        flush = self._snapshot_flush
        if flush is None:
            # First the memtables go to disk in the file thread, beside the applies: RocksDB
            # flushes without the GIL, while a checkpoint flushes holding it, with this loop
            # waiting (no heartbeat leaves a leader meanwhile). The pin comes at a later
            # apply, with little left to flush.
            loop = asyncio.get_running_loop()
            self._snapshot_flush = loop.run_in_executor(self._files, store.graph.flush_memtables)
            return
        if not flush.done():
            return
        self._snapshot_flush = None
        if flush.exception() is not None:
            log.warning("n%d: flushing before a snapshot failed: %s", self.id, flush.exception())
        conf_state = raw.raft.trk.conf_state()
        source = await self._in_storage(store.checkpoint)
        assert source.applied_index == self.applied_index
        self._snapshot_jobs.put_nowait((source, conf_state))

    def _write_snapshot(self, source: SnapshotSource, conf_state: ConfState) -> Snapshot:
        """File thread: the snapshot file, its record in the log, then compaction."""
        store = self.store
        assert store is not None
        try:
            snapshot = store.write_snapshot(source, conf_state)
        finally:
            source.close()
        compact_to = snapshot.metadata.index - self.config.compact_keep_entries
        if compact_to > store.log.first_index():
            store.log.compact(compact_to)
        self._remove_stale_snapshot_files()
        return snapshot

    async def _snapshotter(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            source, conf_state = await self._snapshot_jobs.get()
            self._snapshotting = True
            try:
                snapshot = await loop.run_in_executor(
                    self._files, self._write_snapshot, source, conf_state
                )
            except (OSError, SnapshotOutOfDateError, CompactedError, UnavailableError) as error:
                # A snapshot installed from the leader meanwhile, or a disk problem: the
                # next policy check tries again.
                log.warning(
                    "n%d: snapshot at %d not taken: %s", self.id, source.applied_index, error
                )
            else:
                self.snapshot_index = max(self.snapshot_index, snapshot.metadata.index)
                self.snapshots_taken += 1
                assert self.store is not None
                log.info(
                    "n%d took a snapshot at %d; the log starts at %d",
                    self.id,
                    snapshot.metadata.index,
                    self.store.log.first_index(),
                )
            finally:
                self._snapshotting = False

    def _open_snapshot_chunks(self, snapshot: Snapshot) -> Iterator[bytes]:
        """File thread: the chunks of one of this node's snapshots, for a peer."""
        store = self.store
        assert store is not None
        if not snapshot.data:
            return iter(())  # the bootstrap snapshot: an empty graph
        chunks = read_snapshot_file(store.snapshot_path(snapshot))
        return iter(chunks)

    def _report_snapshot(self, peer: int, failed: bool) -> None:
        # If dropped, the core still leaves snapshot state once the peer's answers show it
        # caught up (or the peer is probed again after the next failed send).
        try:
            self._inbox.put_nowait(_SnapshotStatus(peer, failed))
        except asyncio.QueueFull:
            log.warning("inbox full: snapshot status for n%d dropped", peer)

    async def receive_snapshot(
        self, peer: int, chunks: AsyncIterator[raft_pb2.SnapshotChunk]
    ) -> int:
        """Keep a snapshot stream from `peer` in a file, verify it, hand it to the core."""
        store = self.store
        assert store is not None
        if peer in self.blocked:
            raise SnapshotRejectedError("cut off by a failpoint")
        loop = asyncio.get_running_loop()
        store.snapshot_dir.mkdir(exist_ok=True)
        temporary = store.snapshot_dir / f"{RECEIVING_PREFIX}{secrets.token_hex(8)}"
        handle = await loop.run_in_executor(self._files, open, temporary, "wb")
        first: raft_pb2.SnapshotChunk | None = None
        digest = hashlib.sha256()
        received = 0
        complete = False
        try:
            async for chunk in chunks:
                if first is None:
                    first = chunk
                    if chunk.to != self.id or chunk.sender != peer:
                        raise SnapshotRejectedError("a snapshot not from its sender or not for us")
                elif (
                    chunk.metadata != first.metadata
                    or chunk.term != first.term
                    or chunk.to != first.to
                    or chunk.sender != first.sender
                ):
                    raise SnapshotRejectedError("chunks of different snapshots in one stream")
                if chunk.offset != received:
                    raise SnapshotRejectedError(f"chunk at {chunk.offset}, expected {received}")
                if len(chunk.data) > MAX_SNAPSHOT_CHUNK_BYTES:
                    raise SnapshotRejectedError("a chunk too large")
                received += len(chunk.data)
                if received > MAX_SNAPSHOT_BYTES:
                    raise SnapshotRejectedError("the snapshot is too large")
                digest.update(chunk.data)
                if chunk.data:
                    framed = len(chunk.data).to_bytes(4, "big") + chunk.data
                    await loop.run_in_executor(self._files, handle.write, framed)
                if chunk.last:
                    if chunk.checksum != digest.digest():
                        raise SnapshotRejectedError("the checksum of the stream does not match")
                    complete = True
                    break
            if first is None or not complete:
                raise SnapshotRejectedError("the stream ended before its last chunk")
            index, term = first.metadata.index, first.metadata.term
            name = f"{RECEIVED_PREFIX}{index:020d}-{term}.qsnap"

            def keep() -> None:
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
                os.replace(temporary, store.snapshot_dir / name)
                fsync_dir(store.snapshot_dir)

            await loop.run_in_executor(self._files, keep)
        finally:
            if not handle.closed:
                await loop.run_in_executor(self._files, handle.close)
            temporary.unlink(missing_ok=True)
        descriptor = b""
        if received:
            descriptor = json.dumps({"file": name, "index": index}).encode()
        log.info(
            "n%d received the snapshot at %d from n%d (%d bytes)", self.id, index, peer, received
        )
        self.deliver(snapshot_message(first, descriptor))
        return received

    def _defer_notice(self, message: Message) -> None:
        """Hold a commit notice (an append without entries) for up to
        ``COMMIT_NOTICE_DELAY_S``: the next append or heartbeat to the peer carries the new
        commit index and replaces it. Under a stream of writes the notice is never sent, and
        the follower does not step, persist, apply and answer one message per write twice;
        after the last write it goes out once the delay has passed. Holding a message back is
        as safe as a slow network; a follower learns of a commit at most that much later
        (its causal reads wait for it, bounded), and the leader's answers are already on
        their way before any notice competes with them for the CPU."""
        self._notices[message.to] = message
        if self._notice_timer is None:
            self._notice_timer = asyncio.get_running_loop().call_later(
                COMMIT_NOTICE_DELAY_S, self._send_notices
            )

    def _send_notices(self) -> None:
        self._notice_timer = None
        notices = list(self._notices.values())
        self._notices.clear()
        raw = self.raw
        if raw is None or raw.raft.state is not StateType.LEADER:
            return
        for message in notices:
            if message.term == raw.raft.term:
                self._send(message)

    def _send(self, message: Message) -> None:
        if self._notices and message.type in _CARRIES_COMMIT:
            held = self._notices.get(message.to)
            if held is not None and message.term == held.term and message.commit >= held.commit:
                del self._notices[message.to]
        if message.type is MessageType.SNAPSHOT:
            snapshot_sender = self._snapshot_senders.get(message.to)
            if snapshot_sender is None or message.to in self.blocked:
                assert self.raw is not None
                self.raw.report_snapshot(message.to, failed=True)
            else:
                snapshot_sender.send(message)
            return
        sender = self._senders.get(message.to)
        if sender is not None and message.to not in self.blocked:
            sender.send(message)

    async def _apply(self, raw: RawNode, entries: list[Entry]) -> None:
        """Apply committed entries in log order: a few small ones while the Raft loop waits,
        others in the apply thread after those it has still to apply (the loop goes on);
        a conf change once everything before it is applied, through the core."""
        batch: list[Entry] = []

        async def flush() -> None:
            if not batch:
                return
            work = list(batch)
            batch.clear()
            if self._apply_backlog or _data_bytes(work) > INLINE_APPLY_BYTES:
                await self._apply_later(work)
                return
            outcomes = await self._in_storage(lambda: self._apply_entries(work))
            for entry, outcome in zip(work, outcomes, strict=True):
                self._applied(entry, outcome)

        for entry in entries:
            if entry.type is EntryType.CONF_CHANGE:
                await flush()
                await self._drain_applies()
                await self._apply_conf_change(raw, entry)
            else:
                batch.append(entry)
        await flush()

    def _apply_entries(self, entries: list[Entry]) -> list[Outcome]:
        """Storage or apply thread: the state machine applies `entries`."""
        sm = self.sm
        assert sm is not None
        return [sm.apply_entry(entry.index, entry.data) for entry in entries]

    async def _apply_later(self, work: list[Entry]) -> None:
        """Hand `work` to the apply thread (after the entries it has already); waits only
        while the backlog is full (``APPLY_BACKLOG_BYTES``)."""
        size = _data_bytes(work)
        while self._apply_backlog and self._apply_backlog_bytes + size > APPLY_BACKLOG_BYTES:
            self._apply_progress.clear()
            await self._apply_progress.wait()  # room, not the whole backlog applied
        self._apply_backlog.append(work)
        self._apply_backlog_bytes += size
        self._applies_drained.clear()
        if self._apply_task is None or self._apply_task.done():
            assert self._task_group is not None
            # In the node's task group: an apply that fails stops the node, as it did on
            # the Raft loop.
            self._apply_task = self._task_group.create_task(self._apply_backlogged())

    async def _apply_backlogged(self) -> None:
        raw = self.raw
        assert raw is not None
        loop = asyncio.get_running_loop()
        while self._apply_backlog:
            work = self._apply_backlog[0]
            outcomes = await loop.run_in_executor(self._applier, self._apply_entries, work)
            for entry, outcome in zip(work, outcomes, strict=True):
                self._applied(entry, outcome)
            # The snapshot policy here too: under a stream of big writes the backlog is
            # never empty when the Raft loop checks it. The piece is still in the backlog,
            # so nothing applies meanwhile (the Raft loop applies nothing inline then).
            await self._maybe_snapshot(raw, in_backlog=True)
            self._apply_backlog.popleft()
            self._apply_backlog_bytes -= _data_bytes(work)
            self._apply_progress.set()
        self._applies_drained.set()

    async def _drain_applies(self) -> None:
        """Until the apply thread has applied everything handed to it."""
        while self._apply_backlog:
            await self._applies_drained.wait()

    async def _apply_conf_change(self, raw: RawNode, entry: Entry) -> None:
        sm = self.sm
        assert sm is not None
        change = ConfChange.decode(entry.data)
        conf_state = raw.apply_conf_change(change)
        context = json.loads(change.context) if change.context else {}
        added: dict[int, dict[str, str]] = {}
        member = context.get("member")
        if isinstance(member, dict):
            added[int(member["id"])] = {
                k: str(member[k]) for k in ("zone", "grpc", "peer", "bolt") if k in member
            }
        removed = [c.node_id for c in change.changes if c.type is ConfChangeType.REMOVE_NODE]
        outcome = await self._in_storage(lambda: sm.apply_membership(entry.index, added, removed))
        for node_id, doc in added.items():
            self.peers[node_id] = NodeEntry(
                node_id, doc["zone"], doc["grpc"], doc["peer"], "", doc.get("bolt", "")
            )
        for node_id in sorted(conf_state.members()):
            if node_id != self.id and node_id in self.peers:
                self._start_peer(node_id)
        for node_id in removed:
            if node_id == self.id:
                log.warning("n%d was removed from the cluster at %d", self.id, entry.index)
            else:
                self._stop_peer(node_id)
        log.info(
            "n%d configuration at %d: voters %s learners %s",
            self.id,
            entry.index,
            list(conf_state.voters),
            list(conf_state.learners),
        )
        self._applied(entry, outcome)
        proposal = bytes.fromhex(str(context.get("proposal", "")))
        future = self._conf_changes.pop(proposal, None)
        if future is not None and not future.done():
            future.set_result((entry.index, conf_state))

    def _start_peer(self, peer_id: int) -> None:
        """Senders towards a peer (once); owned by the node's task group."""
        if peer_id in self._peer_tasks or self._task_group is None:
            return
        peer = self.peers[peer_id]
        assert self._peer_credentials is not None
        address = self.config.peer_routes.get(peer_id, peer.peer)
        sender = PeerSender(
            self.id,
            peer_id,
            address,
            self._peer_credentials,
            self.config.cluster_id,
            self._report_unreachable,
        )
        snapshot_sender = SnapshotSender(
            self.id,
            peer_id,
            address,
            self._peer_credentials,
            self._open_snapshot_chunks,
            self._files,
            self._report_snapshot,
        )
        self._senders[peer_id] = sender
        self._snapshot_senders[peer_id] = snapshot_sender
        self._peer_tasks[peer_id] = [
            self._task_group.create_task(sender.run()),
            self._task_group.create_task(snapshot_sender.run()),
        ]

    def _stop_peer(self, peer_id: int) -> None:
        """Cancel a removed peer's senders (the task group joins them)."""
        for task in self._peer_tasks.pop(peer_id, []):
            task.cancel()
        self._senders.pop(peer_id, None)
        self._snapshot_senders.pop(peer_id, None)

    def _applied(self, entry: Entry, outcome: Outcome) -> None:
        assert entry.index > self.applied_index, "an entry applied twice"
        self.applied_index = entry.index
        self.term_applied = max(self.term_applied, entry.term)
        if outcome.proposal_id:
            self._unpipeline(outcome.proposal_id)
            future = self._proposals.pop(outcome.proposal_id, None)
            if future is not None and not future.done():
                future.set_result(outcome)
        if self._settling:
            self._settle(lost=True)
        self._release_apply_waiters()

    def _release_apply_waiters(self) -> None:
        while self._apply_waiters and self._apply_waiters[0][0] <= self.applied_index:
            _, _, waiter = heapq.heappop(self._apply_waiters)
            if not waiter.done():
                waiter.set_result(None)

    def _on_soft_state(self, was_leader: bool) -> None:
        assert self.raw is not None
        raft = self.raw.raft
        self._leading = raft.state is StateType.LEADER
        log.info(
            "n%d is %s in term %d (leader n%d)", self.id, raft.state.value, raft.term, raft.lead
        )
        if was_leader and raft.state is not StateType.LEADER:
            # Proposals in flight may or may not commit; the client retries with the same
            # request id and the dedup table answers the truth.
            for proposal_id in list(self._proposals):
                if not self._settling.get(proposal_id):
                    self._fail_proposal(proposal_id, self._not_leader_error())
            for proposal_id in list(self._pipeline):
                self._unpipeline(proposal_id)
        if not was_leader and raft.state is StateType.LEADER:
            self.metrics.leaderships.inc()
            self.security.on_leader()
        if raft.lead != self._lost_leader:
            self._lost_leader = NONE
        if self.known_leader() == NONE:
            self._leader_known.clear()
        else:
            self._leader_known.set()

    def known_leader(self) -> int:
        """The leader, as far as this node knows one it can reach (NONE otherwise)."""
        assert self.raw is not None
        lead = self.raw.leader
        return NONE if lead == self._lost_leader else lead

    def _fail_proposal(self, proposal_id: bytes, error: QuiverError) -> None:
        future = self._proposals.pop(proposal_id, None)
        if future is not None and not future.done():
            future.set_exception(error)

    def _fail_read(self, context: bytes, error: QuiverError) -> None:
        future = self._reads.pop(context, None)
        if future is not None and not future.done():
            future.set_exception(error)

    # -- waiting ------------------------------------------------------------------------------

    async def wait_applied(self, index: int, timeout_s: float, code: str) -> None:
        if self.applied_index >= index:
            return
        if len(self._apply_waiters) >= MAX_APPLY_WAITERS:
            raise QuiverError(errors.UNAVAILABLE, "too many requests waiting for apply")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiter_seq += 1
        heapq.heappush(self._apply_waiters, (index, self._waiter_seq, future))
        try:
            await asyncio.wait_for(future, timeout_s)
        except TimeoutError:
            raise QuiverError(
                code,
                f"index {index} not applied within {timeout_s:.1f} s "
                f"(n{self.id} applied {self.applied_index})",
            ) from None

    # -- backups ------------------------------------------------------------------------------

    async def open_backup(self, min_index: int, wait_s: float) -> BackupStream:
        """This member's state as a sealed snapshot stream, chunk by chunk (``BackupStream``).

        Waits (at most `wait_s`) until `min_index` is applied here, flushes the memtables on
        the backup thread (without the GIL), then pins a checkpoint on the storage thread,
        where no snapshot install runs beside it, without a configuration (a restore makes
        its own). One backup at a time; the caller closes the stream however it ends."""
        store = self.store
        if store is None:
            raise QuiverError(errors.UNAVAILABLE, f"n{self.id} is not started")
        if self._backing_up:
            raise QuiverError(errors.UNAVAILABLE, f"a backup of n{self.id} is running already")
        self._backing_up = True
        pin: Future[SnapshotSource] | None = None
        try:
            await self.wait_applied(
                min_index, min(max(wait_s, 0.0), MAX_BACKUP_WAIT_S), errors.BOOKMARK_TIMEOUT
            )
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(self._backups, store.graph.flush_memtables)
            pin = self._storage.submit(store.checkpoint)
            source = await asyncio.wrap_future(pin)
        except BaseException:
            self._backing_up = False
            if pin is not None:  # cancelled while pinning: let go of it once pinned
                pin.add_done_callback(
                    lambda done: (
                        None
                        if done.cancelled() or done.exception() is not None
                        else self._release_checkpoint(done.result())
                    )
                )
            raise
        stream = BackupStream(self, source)
        if source.installing or source.applied_index < min_index:
            stream.close()
            raise QuiverError(
                errors.UNAVAILABLE,
                f"n{self.id} holds no whole state at index {min_index} now; retry the backup",
            )
        return stream

    def _release_checkpoint(self, source: SnapshotSource) -> None:
        """Close a backup's checkpoint on the backup thread, after any chunk still being
        read there (inline once that thread is shut down: nothing reads it any more)."""
        try:
            self._backups.submit(source.close)
        except RuntimeError:
            source.close()

    # -- status -------------------------------------------------------------------------------

    def leader_address(self) -> str:
        peer = self.peers.get(self.known_leader())
        return peer.grpc if peer is not None else ""

    def _not_leader_error(self) -> QuiverError:
        address = self.leader_address()
        where = f"; the leader is at {address}" if address else "; no leader is known"
        return QuiverError(errors.NOT_A_LEADER, f"n{self.id} is not the leader{where}", address)

    def _no_leader_error(self) -> QuiverError:
        return QuiverError(errors.UNAVAILABLE, f"n{self.id} knows no leader (election running)")

    def status(self) -> admin_pb2.NodeStatus:
        raw = self.raw
        assert raw is not None
        raft = raw.raft
        conf = raft.trk.conf_state()
        if raft.state is StateType.LEADER:
            role = admin_pb2.ROLE_LEADER
        elif self.id in conf.learners:
            role = admin_pb2.ROLE_LEARNER
        elif raft.state in (StateType.CANDIDATE, StateType.PRE_CANDIDATE):
            role = admin_pb2.ROLE_CANDIDATE
        else:
            role = admin_pb2.ROLE_FOLLOWER
        match = {}
        if raft.state is StateType.LEADER:
            match = {node: pr.match for node, pr in raft.trk.progress.items()}
        return admin_pb2.NodeStatus(
            id=self.id,
            zone=self.config.zone,
            role=role,
            term=raft.term,
            commit_index=raft.log.committed,
            applied_index=self.applied_index,
            leader_id=self.known_leader(),
            leader_address=self.leader_address(),
            pid=os.getpid(),
            voters=conf.voters,
            learners=conf.learners,
            match_index=match,
            snapshot_index=self.snapshot_index,
            first_index=raw.raft.log.first_index(),
            snapshots_installed=self.snapshots_installed,
            snapshots_taken=self.snapshots_taken,
        )

    # -- queries ------------------------------------------------------------------------------

    async def _execute(
        self,
        query: str,
        parameters: dict[str, Any],
        privileges: PrivilegeSet | None = None,
        deadline: float | None = None,
    ) -> tuple[Result, int]:
        """Run a read-only statement on the applied graph; returns its result and the
        index of the last entry applied to the graph it read. One whose text last ran in
        under ``INLINE_BUDGET_S`` runs right here on the event loop when the graph is not
        being written (a trip to a reader thread costs more than such a statement); any
        other in a reader thread, on a snapshot of the graph (``GraphStore.snapshot``):
        applies go on beside it, however long it takes. A statement that turns out slow
        inline is sent to the threads from then on, so the loop is held up by it once at
        most."""
        sm = self.sm
        assert sm is not None

        def run(view: GraphView) -> Result:
            started = time.thread_time()
            try:
                return self.engine.run(view, query, parameters, privileges)
            finally:
                self._timed(query, started)

        try:
            if self._quick.get(query):
                with sm.lock.try_read() as held:
                    if held:
                        try:
                            with statement_guard(_inline_check()):
                                return run(sm.graph), sm.graph.applied_index()
                        except _LeaveLoop:
                            self._quick[query] = False

            def in_snapshot() -> tuple[Result, int]:
                until = time.monotonic() + DEFAULT_QUERY_TIMEOUT_S if deadline is None else deadline
                snapshot = self._graph_snapshot()
                with snapshot, statement_guard(self._statement_check(until, give_way=False)):
                    return run(snapshot), snapshot.applied_index()

            return await asyncio.get_running_loop().run_in_executor(self._readers, in_snapshot)
        except CypherError as error:
            raise QuiverError(error.status_code, str(error.args[0])) from None

    def _graph_snapshot(self) -> GraphSnapshot:
        """A snapshot of the applied graph (``GraphStore.snapshot``), taken between two
        commits, even during an apply; during a snapshot installation, once it is done.
        Blocks: for a reader thread."""
        sm = self.sm
        assert sm is not None
        try:
            return sm.graph.snapshot()
        except StoreNotReadyError:
            with sm.lock.read():  # waits out the snapshot installation
                return sm.graph.snapshot()

    def _graph_snapshot_now(self) -> GraphSnapshot | None:
        """``_graph_snapshot`` without waiting, for the event loop (None: take it in a
        thread)."""
        sm = self.sm
        assert sm is not None
        try:
            return sm.graph.try_snapshot()
        except StoreNotReadyError:
            return None

    def _statement_check(self, deadline: float, give_way: bool = True) -> Callable[[], None]:
        """The guard of a statement (``statement_guard``): it stops at `deadline`
        (``time.monotonic()``), or, with `give_way` (one that holds the graph's read lock),
        once an apply waited for the lock longer than the read hold
        (``READ_HOLD_FRACTION``)."""
        sm = self.sm
        assert sm is not None
        lock, hold_s = sm.lock, self._read_hold_s

        def check() -> None:
            now = time.monotonic()
            if now > deadline:
                raise CypherError(
                    "The transaction has been terminated: the statement ran past its timeout",
                    kind="TransactionTimedOut",
                )
            waiting = lock.writer_waiting_since
            if give_way and waiting is not None and now - waiting > hold_s:
                raise CypherError(
                    f"the statement held the graph for more than {hold_s * 1000:.0f} ms "
                    "while committed writes waited to be applied; it may succeed if retried",
                    kind="Outdated",
                )

        return check

    async def read(
        self,
        query: str,
        parameters: dict[str, Any],
        consistency: int,
        bookmarks: list[str],
        privileges: PrivilegeSet | None = None,
        deadline: float | None = None,
    ) -> Answer:
        """A read-only statement; with `privileges`, as the user they belong to. It stops
        at `deadline` (``time.monotonic()``; None: ``DEFAULT_QUERY_TIMEOUT_S`` from now)."""
        if (
            failpoints.ACTIVE
            and "follower-local-read" in failpoints.ACTIVE
            and not self.is_leader()
        ):
            consistency = client_pb2.CONSISTENCY_STALE  # planted bug (a): store.failpoints
        if consistency == client_pb2.CONSISTENCY_LINEARIZABLE:
            index = await self._read_index()
            await self.wait_applied(index, READ_INDEX_TIMEOUT_S, errors.UNAVAILABLE)
        elif consistency != client_pb2.CONSISTENCY_STALE:
            index = parse_bookmarks(bookmarks)
            await self.wait_applied(index, CAUSAL_WAIT_S, errors.BOOKMARK_TIMEOUT)
        result, applied = await self._execute(query, parameters, privileges, deadline)
        if result.write_set:
            raise QuiverError(errors.ACCESS_MODE, errors.WRITE_IN_READ_MODE)
        return Answer(
            result.columns,
            result.rows,
            result.counters,
            "",
            applied,
            client_pb2.QUERY_TYPE_READ_ONLY,
        )

    async def _read_index(self) -> int:
        """A read index confirmed by a quorum after this call began. Batched as etcd does:
        the callers that arrive while a round is in flight share the next round, so one
        heartbeat round serves any number of concurrent linearizable reads."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._read_waiters.append(future)
        if not self._read_round:
            self._start_read_round()
        try:
            return await asyncio.wait_for(future, READ_INDEX_TIMEOUT_S)
        except TimeoutError:
            raise QuiverError(
                errors.UNAVAILABLE, "no quorum confirmed the read index in time"
            ) from None

    def _start_read_round(self) -> None:
        """Ask the core for one read index on behalf of every waiting reader."""
        waiters, self._read_waiters = self._read_waiters, []
        context = self._proposal_id()
        round_: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._reads[context] = round_
        self._read_round = True
        # Bounded: a round that no quorum answers fails its readers and lets the next go.
        timer = asyncio.get_running_loop().call_later(
            READ_INDEX_TIMEOUT_S,
            self._fail_read,
            context,
            QuiverError(errors.UNAVAILABLE, "no quorum confirmed the read index in time"),
        )
        started = asyncio.get_running_loop().time()
        round_.add_done_callback(
            lambda done: self._end_read_round(context, done, waiters, timer, started)
        )
        try:
            self._inbox.put_nowait(_ReadIndex(context))
        except asyncio.QueueFull:
            self._fail_read(context, QuiverError(errors.UNAVAILABLE, "the node is overloaded"))

    def _end_read_round(
        self,
        context: bytes,
        done: asyncio.Future[int],
        waiters: list[asyncio.Future[int]],
        timer: asyncio.TimerHandle,
        started: float,
    ) -> None:
        timer.cancel()
        self._reads.pop(context, None)
        self._read_round = False
        error = done.exception()
        for waiter in waiters:
            if waiter.done():
                continue
            if error is not None:
                waiter.set_exception(error)
            else:
                waiter.set_result(done.result())
        if self._read_waiters:
            # Readers came while this round was out: more are coming. The next round waits
            # as long as this one took (READ_ROUND_GATHER_S at most) to take them too; a
            # round costs the leader and every follower a heartbeat exchange, whatever
            # number of reads it serves. A reader with no round out starts one at once.
            loop = asyncio.get_running_loop()
            self._read_round = True
            loop.call_later(min(loop.time() - started, READ_ROUND_GATHER_S), self._next_read_round)

    def _next_read_round(self) -> None:
        self._read_round = False
        if self._read_waiters:
            self._start_read_round()

    def is_leader(self) -> bool:
        assert self.raw is not None
        return self.raw.raft.state is StateType.LEADER

    def _timed(self, query: str, started: float) -> None:
        """Remember whether a statement's run since `started` (``time.thread_time``, on this
        thread) was quick. CPU time, not wall time: a statement the GIL was taken from
        halfway, under load, is not slow, and sent to a reader thread it would pay a trip
        for nothing."""
        if len(self._quick) >= INLINE_QUERIES:
            self._quick.clear()
        self._quick[query] = time.thread_time() - started < INLINE_BUDGET_S

    async def _leader_ready(self) -> None:
        """Wait (bounded) until this leader applied an entry of its own term and everything
        committed, so the applied state holds every acknowledged write."""
        raw = self.raw
        assert raw is not None
        deadline = time.monotonic() + LEADER_READY_WAIT_S
        while self.term_applied != raw.raft.term or self.applied_index < raw.raft.log.committed:
            if not self.is_leader():
                raise self._not_leader_error()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QuiverError(errors.UNAVAILABLE, "the leader is not ready in time")
            await self.wait_applied(
                max(raw.raft.log.committed, self.applied_index + 1), remaining, errors.UNAVAILABLE
            )
        if not self.is_leader():
            raise self._not_leader_error()

    async def _submit(self, envelope: Envelope) -> asyncio.Future[Outcome]:
        """Hand an envelope to the Raft loop; the future its outcome will resolve."""
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._proposals[envelope.proposal_id] = future
        await self._inbox.put(_Propose(envelope.encode(), envelope.proposal_id))
        return future

    async def _outcome(
        self,
        envelope: Envelope,
        future: asyncio.Future[Outcome],
        timeout_error: QuiverError | None = None,
    ) -> Outcome:
        """Wait (bounded) for a submitted envelope's outcome; errors raised."""
        try:
            outcome = await asyncio.wait_for(future, PROPOSAL_TIMEOUT_S)
        except TimeoutError:
            raise timeout_error or QuiverError(
                errors.UNAVAILABLE,
                "the write was not committed in time; retry it with the same request id",
            ) from None
        finally:
            self._proposals.pop(envelope.proposal_id, None)
            self._unpipeline(envelope.proposal_id)
        if outcome.error:
            code = outcome.error_code or "Neo.ClientError.Schema.ConstraintValidationFailed"
            raise QuiverError(code, outcome.error)
        if outcome.decision is Decision.OUTDATED:
            raise QuiverError(errors.OUTDATED, "a concurrent write changed what this one read")
        return outcome

    async def _propose(self, envelope: Envelope) -> Outcome:
        """Propose an envelope and wait (bounded) for its outcome; errors already raised."""
        return await self._outcome(envelope, await self._submit(envelope))

    async def _propose_settled(self, envelope: Envelope) -> Outcome:
        """``_propose`` for an envelope that no retry can deduplicate (an explicit
        transaction's commit: a retry runs the whole transaction again). A leader that loses
        its term with the entry in its log does not fail it at once, because the next leader
        may still commit it; the outcome waits (bounded) until this node, leader or not,
        applied that index: the entry applied there is the outcome, another entry there
        means it is lost for good (NotALeader: retrying is safe), and an index passed by a
        snapshot or the timeout leaves it unknown (TransactionCommitFailed, which drivers
        do not retry)."""
        proposal_id = envelope.proposal_id
        self._settling[proposal_id] = 0
        unknown = _outcome_unknown("it was not decided in time")
        try:
            return await self._outcome(envelope, await self._submit(envelope), unknown)
        finally:
            self._settling.pop(proposal_id, None)

    def _settle(self, lost: bool) -> None:
        """Decide the settling proposals whose index this node has now applied without
        applying them: lost (another entry is there) or unknown (a snapshot passed it)."""
        for proposal_id, index in list(self._settling.items()):
            if 0 < index <= self.applied_index and proposal_id in self._proposals:
                del self._settling[proposal_id]
                if lost:
                    error = QuiverError(
                        errors.NOT_A_LEADER,
                        "the leader lost its term before the commit; nothing was committed",
                    )
                else:
                    error = _outcome_unknown("this node caught up by a snapshot")
                self._fail_proposal(proposal_id, error)

    def _unpipeline(self, proposal_id: bytes) -> None:
        if self._pipeline.pop(proposal_id, None) is not None:
            self._pipeline_room.set()
            if not self._pipeline:
                self._pipeline_empty.set()

    async def _wait_pipeline(self, event: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(event.wait(), PROPOSAL_TIMEOUT_S)
        except TimeoutError:
            raise QuiverError(errors.UNAVAILABLE, "the write pipeline did not move") from None

    async def _leader_term_ready(self) -> None:
        """Bounded wait until this leader applied an entry of its own term: everything
        before its term is applied, and whatever follows is its own (pipelined or not)."""
        raw = self.raw
        assert raw is not None
        if self.term_applied != raw.raft.term:
            await self._leader_ready()
        if not self.is_leader():
            raise self._not_leader_error()

    def _proposal_id(self) -> bytes:
        """A unique id for a proposal or a read request: random per process, then counted
        (no system call per id; safe from any thread)."""
        return self._id_prefix + next(self._id_counter).to_bytes(8, "big")

    def _execute_batch(
        self, pending: list[Pending], batch: list[_QueuedWrite], graph: GraphView, locked: bool
    ) -> tuple[int, list[_Executed | CypherError | OverlayUnavailableError | QuiverError]]:
        """Each queued statement over `graph` (the applied graph, its read lock `locked` by
        the caller, or a snapshot of it), the pending writes and the batch's earlier writes,
        in order; the applied index they ran at and, per statement, what came of it (a
        write's `Pending` is new, not in the pipeline)."""
        executed: list[_Executed | CypherError | OverlayUnavailableError | QuiverError] = []
        applied = graph.applied_index()
        overlay = self._overlay
        if overlay is None or not overlay.serves(graph, applied, pending):
            overlay = self._overlay = Overlay(self.engine, graph, applied, pending)
        outer = current_guard()
        for queued in batch:
            started = time.thread_time()
            guard = outer
            if queued.deadline is not None:
                own = self._statement_check(queued.deadline, give_way=locked)
                guard = own if outer is None else _both(outer, own)
            try:
                with statement_guard(guard) if guard is not None else contextlib.nullcontext():
                    result, overlaid = overlay.execute(
                        queued.query, queued.parameters, queued.privileges
                    )
            except (CypherError, OverlayUnavailableError) as error:
                executed.append(error)
                continue
            finally:
                self._timed(queued.query, started)
            written = None
            encoded = encode_write_set(result.write_set)
            if result.write_set:
                if len(encoded) > MAX_WRITE_SET_BYTES:
                    overlay.discard_last()
                    executed.append(_too_large(len(encoded)))
                    continue
                written = Pending(self._proposal_id(), result.write_set)
            executed.append(_Executed(result, overlaid, written, encoded))
        return applied, executed

    async def _execute_writes(
        self, pending: list[Pending], batch: list[_QueuedWrite]
    ) -> tuple[int, list[_Executed | CypherError | OverlayUnavailableError | QuiverError]]:
        """`_execute_batch` right here on the event loop, over the applied graph, when the
        batch is small, each of its statements last ran quick and the graph is not being
        written (a trip to a thread costs more than such a batch); else in a writer thread
        over a snapshot of the graph (``_pipeline_graph``), holding no lock: committed
        writes are applied beside it, however long it runs. Before, it held the graph's read
        lock, and gave way (a retryable Outdated) after half an election timeout when an
        apply waited: a write of a second or more could not complete while writes kept
        coming. `pending` must be taken before the snapshot: every write of this leader's
        that the snapshot lacks is then among them, but for one whose outcome timed out
        (``_outcome`` takes it out of the pipeline while it may still be applied); a write
        executed without it is refused by the state machine (its base is older than that
        write, and it is not chained after it), as under the lock."""
        sm = self.sm
        assert sm is not None
        if len(batch) <= INLINE_WRITES and all(self._quick.get(q.query) for q in batch):
            with sm.lock.try_read() as held:
                if held:
                    try:
                        with statement_guard(_inline_check()):
                            return self._execute_batch(pending, batch, sm.graph, locked=True)
                    except _LeaveLoop:
                        # The overlay holds what the batch's earlier statements wrote:
                        # built afresh from the pending writes for the run in a thread.
                        self._overlay = None
                        for queued in batch:
                            self._quick[queued.query] = False

        def in_snapshot() -> tuple[
            int, list[_Executed | CypherError | OverlayUnavailableError | QuiverError]
        ]:
            deadline = time.monotonic() + DEFAULT_QUERY_TIMEOUT_S
            snapshot = self._pipeline_graph()
            with statement_guard(self._statement_check(deadline, give_way=False)):
                return self._execute_batch(pending, batch, snapshot, locked=False)

        return await asyncio.get_running_loop().run_in_executor(self._writers, in_snapshot)

    def _pipeline_graph(self) -> GraphSnapshot:
        """A snapshot of the applied graph for the write pipeline: the one it used last
        while nothing was applied since (so the overlay built over it serves on), else a
        new one. Under the write lock, a batch at a time."""
        sm = self.sm
        assert sm is not None
        snapshot = self._pipeline_snapshot
        if snapshot is not None and snapshot.applied_index() == sm.graph.applied_index():
            return snapshot
        if snapshot is not None:
            snapshot.close()
        snapshot = self._pipeline_snapshot = self._graph_snapshot()
        return snapshot

    async def _execute_and_propose(self, batch: list[_QueuedWrite]) -> list[_QueuedWrite]:
        """Execute a batch (`_execute_writes`) and propose its writes in order,
        each chained to the one before; the statements that must run again once the
        pipeline is empty (a read-only one that read pending writes: it may answer only
        from applied state; one the overlay cannot carry). Under the write lock."""
        await self._leader_term_ready()
        while len(self._pipeline) + len(batch) > MAX_PIPELINE:
            self._pipeline_room.clear()
            await self._wait_pipeline(self._pipeline_room)
        pending = list(self._pipeline.values())
        base, executed = await self._execute_writes(pending, batch)
        if not self.is_leader():
            raise self._not_leader_error()
        after = pending[-1].proposal_id if pending else b""
        again: list[_QueuedWrite] = []
        for queued, done in zip(batch, executed, strict=True):
            if isinstance(done, QuiverError):
                _settle(queued, error=done)
            elif isinstance(done, CypherError):
                _settle(queued, error=QuiverError(done.status_code, str(done.args[0])))
            elif isinstance(done, OverlayUnavailableError) or (
                done.written is None and done.overlaid
            ):
                again.append(queued)
            elif done.written is None and not queued.client_id:
                _settle(queued, (done.result, base, None, None))
            else:
                # A request with an id is decided in log order even when it wrote nothing
                # (an empty write set): it may be the retry of one that applied, or is still
                # pending, after its arrival was checked (on a new leader that had not yet
                # applied the last term), and then it wrote nothing only because the first
                # did (a compare-and-set that no longer matches). The state machine answers
                # such a retry as the duplicate it is, with the first one's counters.
                result = done.result
                written = done.written or Pending(self._proposal_id(), WriteSet())
                envelope = Envelope(
                    queued.client_id,
                    queued.sequence,
                    base,
                    written.proposal_id,
                    dict(result.counters),
                    done.encoded,
                    after,
                )
                after = written.proposal_id
                self._pipeline[written.proposal_id] = written
                self._pipeline_empty.clear()
                if not queued.client_id:
                    # No retry can deduplicate it: decided like a transaction's commit.
                    self._settling[written.proposal_id] = 0
                _settle(queued, (result, base, envelope, await self._submit(envelope)))
        return again

    async def _drain_writes(self) -> None:
        """The one task that executes and proposes queued writes, a batch at a time: many
        writes share a trip to a writer thread, a Ready, an fsync and an append round."""
        batch: list[_QueuedWrite] = []
        try:
            while self._write_queue:
                take = min(WRITE_BATCH, len(self._write_queue))
                batch = [self._write_queue.popleft() for _ in range(take)]
                try:
                    async with self._write_lock:
                        again = await self._execute_and_propose(batch)
                        # Bounded: with an empty pipeline the first of them cannot read a
                        # pending write, so every round settles at least one.
                        while again:
                            while self._pipeline:
                                self._pipeline_empty.clear()
                                await self._wait_pipeline(self._pipeline_empty)
                            again = await self._execute_and_propose(again)
                except QuiverError as error:
                    for queued in batch:
                        _settle(queued, error=error)
        finally:
            # Cancelled (the node stops) or a bug: no caller is left waiting.
            unavailable = QuiverError(errors.UNAVAILABLE, "the write was not executed; retry it")
            for queued in [*batch, *self._write_queue]:
                _settle(queued, error=unavailable)
            # Idle (or no longer the leader): no snapshot kept pinned (no thread uses it).
            if self._pipeline_snapshot is not None:
                self._pipeline_snapshot.close()
                self._pipeline_snapshot = None
            self._write_queue.clear()

    async def write(
        self,
        query: str,
        parameters: dict[str, Any],
        client_id: str,
        sequence: int,
        privileges: PrivilegeSet | None = None,
        deadline: float | None = None,
    ) -> Answer:
        """Execute on the leader over the applied graph plus the pending writes, propose,
        answer after apply (execution stops at `deadline`, ``time.monotonic()``, when
        given). Pipelined and batched: one task executes the queued writes a
        batch at a time and proposes them (``_drain_writes``); the wait for commit is the
        caller's, so many writes share a Ready. Callers checked leadership."""
        sm = self.sm
        assert sm is not None
        if client_id:
            # An in-memory lookup (the graph store caches its meta family): no disk. One the
            # table does not show yet is caught when applied (the state machine's dedup).
            record = sm.client_record(client_id)
            if record is not None and sequence <= record[0]:
                return Answer(
                    [],
                    [],
                    record[2],
                    bookmark(record[1]),
                    self.applied_index,
                    client_pb2.QUERY_TYPE_WRITE_ONLY,
                )
        if len(self._write_queue) >= MAX_QUEUED_WRITES:
            raise QuiverError(errors.UNAVAILABLE, "too many writes are queued; retry it")
        queued = _QueuedWrite(
            query,
            parameters,
            client_id,
            sequence,
            asyncio.get_running_loop().create_future(),
            privileges,
            deadline,
        )
        self._write_queue.append(queued)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain_writes())
        result, base, envelope, future = await queued.ready
        if envelope is None or future is None:
            return Answer(
                result.columns,
                result.rows,
                result.counters,
                bookmark(base),
                base,
                client_pb2.QUERY_TYPE_READ_ONLY,
            )
        if failpoints.ACTIVE and "ack-before-commit" in failpoints.ACTIVE:  # planted bug (b)
            return Answer(
                result.columns,
                result.rows,
                dict(result.counters),
                "",
                base,
                client_pb2.QUERY_TYPE_READ_WRITE,
            )
        unknown = None if client_id else _outcome_unknown("it was not decided in time")
        try:
            outcome = await self._outcome(envelope, future, unknown)
        finally:
            self._settling.pop(envelope.proposal_id, None)
        if outcome.decision is Decision.DUPLICATE:
            return Answer(
                [],
                [],
                outcome.counters,
                bookmark(outcome.original_index),
                outcome.index,
                client_pb2.QUERY_TYPE_WRITE_ONLY,
            )
        return Answer(
            result.columns,
            result.rows,
            outcome.counters,
            bookmark(outcome.index),
            outcome.index,
            client_pb2.QUERY_TYPE_READ_WRITE,
        )

    # -- explicit transactions (each over a snapshot of the graph taken when it began; a
    #    read-write one on the leader, run again at its commit when writes were applied
    #    since, outdated if it then answers differently) -------------------------------------

    def _purge_transactions(self) -> None:
        now = time.monotonic()
        for tx in [tx for tx in self._transactions.values() if tx.deadline < now]:
            self._end(tx)
            self._timed_out[tx.tx_id] = tx.owner
            if len(self._timed_out) > MAX_TRANSACTIONS:
                self._timed_out.popitem(last=False)
        if not self._transactions and self._open_write_bytes:
            # A bug (the accounting missed a path): said, and the bound given back.
            log.error(
                "n%d: %d bytes of writes counted for no open transaction",
                self.id,
                self._open_write_bytes,
            )
            self._open_write_bytes = 0

    async def begin(
        self,
        client_id: str,
        timeout_ms: int,
        privileges: PrivilegeSet | None = None,
        owner: str = "",
        read_only: bool = False,
    ) -> str:
        """Open a transaction over a snapshot of the graph as this node has applied it. A
        read-write one only on the leader, once it has applied everything committed; a
        `read_only` one on any member (its caller first waits for the bookmarks it must
        see): it refuses writes, and its commit answers the bookmark of what it read."""
        if not read_only:
            if not self.is_leader():
                raise self._not_leader_error()
            await self._leader_ready()
        timeout_s = timeout_ms / 1000 if timeout_ms else DEFAULT_TRANSACTION_TIMEOUT_S
        self._purge_transactions()
        if len(self._transactions) >= MAX_TRANSACTIONS:
            raise QuiverError(errors.UNAVAILABLE, "too many open transactions")
        snapshot = self._graph_snapshot_now()
        if snapshot is None:  # a commit being written: not on the event loop
            taking = asyncio.get_running_loop().run_in_executor(self._readers, self._graph_snapshot)
            try:
                snapshot = await asyncio.shield(taking)
            except asyncio.CancelledError:
                _discard_outcome(taking, close=True)
                raise
        if len(self._transactions) >= MAX_TRANSACTIONS:  # others began meanwhile
            snapshot.close()
            raise QuiverError(errors.UNAVAILABLE, "too many open transactions")
        tx_id = secrets.token_hex(16)
        self._transactions[tx_id] = _OpenTransaction(
            tx_id,
            self.engine.begin(snapshot, privileges),
            snapshot,
            snapshot.applied_index(),
            time.monotonic() + min(timeout_s, MAX_TRANSACTION_TIMEOUT_S),
            client_id,
            asyncio.Lock(),
            owner,
            privileges=privileges,
            statements=None if read_only else [],
            read_only=read_only,
        )
        return tx_id

    def _transaction(self, tx_id: str, owner: str | None) -> _OpenTransaction:
        """An open transaction; one begun by another user than `owner` (None: any, for a
        face that binds transactions to its connection) does not exist for the caller."""
        self._purge_transactions()
        tx = self._transactions.get(tx_id)
        if tx is None or (owner is not None and owner != tx.owner):
            raise self._no_transaction(tx_id, owner)
        return tx

    def _no_transaction(self, tx_id: str, owner: str | None) -> QuiverError:
        timed_out = self._timed_out.get(tx_id)
        if timed_out is not None and (owner is None or owner == timed_out):
            return QuiverError(
                errors.TRANSACTION_TIMED_OUT,
                f"transaction {tx_id!r} ran past its timeout and was rolled back; run it "
                "again in a new transaction (with a longer timeout if it needs one)",
            )
        return QuiverError(
            errors.TRANSACTION_NOT_FOUND,
            f"no open transaction {tx_id!r} on n{self.id} (ended, or the leader changed)",
        )

    async def run_in_transaction(
        self, tx_id: str, query: str, parameters: dict[str, Any], owner: str | None = None
    ) -> Answer:
        tx = self._transaction(tx_id, owner)
        timeout = self._statement_check(tx.deadline, give_way=False)

        def run(guard: Callable[[], None]) -> tuple[Result, float, bytes, int]:
            started = time.thread_time()
            try:
                with statement_guard(guard):
                    operations = tx.transaction.tx.operations
                    before = len(operations)
                    result = tx.transaction.run(query, parameters)
            finally:
                self._timed(query, started)
            added = 0
            if len(operations) > before:
                if tx.read_only:
                    raise QuiverError(errors.ACCESS_MODE, errors.WRITE_IN_READ_MODE)
                added = len(encode_write_set(WriteSet(tuple(operations[before:]))))
                if tx.write_bytes + added > MAX_WRITE_SET_BYTES:
                    raise _too_large(tx.write_bytes + added)
            spent = time.thread_time() - started
            digest = _answer_digest(result) if tx.statements is not None else b""
            return result, spent, digest, added

        async with tx.lock:
            if self._transactions.get(tx_id) is not tx:  # ended while this waited
                raise self._no_transaction(tx_id, owner)
            try:
                done = self._run_inline(tx, query, run, timeout)
                if done is None:
                    done = await self._in_thread(tx, lambda: run(timeout))
                result, spent, digest, added = done
            except CypherError as error:
                self._end(tx)
                raise QuiverError(error.status_code, str(error.args[0])) from None
            except QuiverError:
                self._end(tx)
                raise
            if self._transactions.get(tx_id) is not tx:  # ended (rolled back) meanwhile
                raise self._no_transaction(tx_id, owner)
            if self._open_write_bytes + added > MAX_OPEN_TRANSACTION_BYTES:
                self._end(tx)
                raise QuiverError(
                    errors.MEMORY_POOL,
                    f"the open transactions on n{self.id} would hold more than "
                    f"{MAX_OPEN_TRANSACTION_BYTES >> 20} MiB of writes; this one is rolled "
                    "back (retry it once others have ended)",
                )
            tx.write_bytes += added
            self._open_write_bytes += added
            tx.spent_s += spent
            if tx.statements is not None:
                if tx.spent_s > REEXECUTE_MAX_S or len(tx.statements) >= REEXECUTE_MAX_STATEMENTS:
                    tx.statements = None
                else:
                    tx.statements.append(_Answered(query, parameters, digest))
        return Answer(
            result.columns,
            result.rows,
            result.counters,
            "",
            tx.base_index,
            client_pb2.QUERY_TYPE_READ_ONLY if tx.read_only else client_pb2.QUERY_TYPE_READ_WRITE,
        )

    def _run_inline(
        self,
        tx: _OpenTransaction,
        query: str,
        run: Callable[[Callable[[], None]], T],
        timeout: Callable[[], None],
    ) -> T | None:
        """A read-only transaction's statement right here on the event loop when its text
        last ran quick (``INLINE_BUDGET_S``), as an auto-commit read would; None when it is
        not, or it turned out slow (it reads a snapshot and writes nothing, so it runs
        again in a thread from the start). A managed read (BEGIN, RUN, COMMIT) took a trip
        to a thread at each step: 1.41-1.51 ms p50 over Bolt became 2.03-2.35 ms."""
        if not tx.read_only or not self._quick.get(query):
            return None
        try:
            return run(_both(_inline_check(), timeout))
        except _LeaveLoop:
            self._quick[query] = False
            return None

    async def _in_thread(self, tx: _OpenTransaction, work: Callable[[], T]) -> T:
        """`work` for `tx` in a thread (a reader for a read-only transaction, else a
        writer). A caller cancelled meanwhile (its client's deadline, a disconnect) ends
        the transaction: the thread goes on with its state, and its snapshot is closed
        once that is done. Before, the cancellation let the transaction's next statement
        (or a rollback closing the snapshot) in beside the thread still running."""
        pool = self._readers if tx.read_only else self._writers
        future = asyncio.get_running_loop().run_in_executor(pool, work)
        tx.running = future
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            _discard_outcome(future)
            self._end(tx)
            raise

    async def commit(self, tx_id: str, owner: str | None = None) -> str:
        tx = self._transaction(tx_id, owner)
        async with tx.lock:
            if not self._forget(tx):  # ended while this waited
                raise self._no_transaction(tx_id, owner)
            if tx.read_only:  # it wrote nothing: nothing to take from its state
                tx.close_when_idle()
                return bookmark(tx.base_index)
            try:
                write_set = await self._in_thread(tx, tx.transaction.commit)
            except CypherError as error:
                raise QuiverError(error.status_code, str(error.args[0])) from None
            finally:
                tx.close_when_idle()
            if not write_set:
                return bookmark(tx.base_index)
            encoded = encode_write_set(write_set)
            if len(encoded) > MAX_WRITE_SET_BYTES:
                raise _too_large(len(encoded))
            sm = self.sm
            assert sm is not None
            async with self._write_lock:
                if not self.is_leader():
                    raise self._not_leader_error()
                envelope = Envelope("", 0, tx.base_index, self._proposal_id(), {}, encoded)
                if self._pipeline or sm.last_write_index > tx.base_index:
                    envelope = await self._reexecuted(tx, envelope)
                outcome = await self._propose_settled(envelope)
        return bookmark(outcome.index)

    async def _reexecuted(self, tx: _OpenTransaction, envelope: Envelope) -> Envelope:
        """The commit of `tx`, begun before writes that were applied (or are pending) since:
        its statements run again, in order, over the graph as it is now plus the pending
        writes, under the write lock (so nothing else is proposed before it); if every one
        answers what it answered (columns, rows, counters), the transaction commits what
        they write now, as if it had run at this moment: its client saw nothing that this
        run would not have shown it, so the history stays serializable. Else, and for a
        transaction too long to run again (``REEXECUTE_MAX_S``), `envelope` as it is, which
        the state machine finds outdated.

        Before, every such commit was outdated: 16 clients each running one-statement
        CREATE transactions through a driver's ``execute_write`` committed 10 a second
        (1 client: 163), the rest retried."""
        statements = tx.statements
        if statements is None:
            return envelope
        sm = self.sm
        assert sm is not None
        pending = list(self._pipeline.values())

        def again() -> tuple[int, WriteSet] | None:
            deadline = time.monotonic() + DEFAULT_QUERY_TIMEOUT_S
            with sm.lock.read(), statement_guard(self._statement_check(deadline)):
                applied = sm.graph.applied_index()
                try:
                    rerun = self.engine.begin(
                        over_pending(sm.graph, applied, pending), tx.privileges
                    )
                    for answered in statements:
                        result = rerun.run(answered.query, answered.parameters)
                        if _answer_digest(result) != answered.digest:
                            return None
                    return applied, rerun.commit()
                except (CypherError, OverlayUnavailableError):
                    return None  # what it read changed enough to fail now: outdated

        done = await asyncio.get_running_loop().run_in_executor(self._writers, again)
        if done is None:
            return envelope
        applied, write_set = done
        encoded = encode_write_set(write_set)
        if len(encoded) > MAX_WRITE_SET_BYTES:
            raise _too_large(len(encoded))
        after = pending[-1].proposal_id if pending else b""
        return Envelope("", 0, applied, envelope.proposal_id, {}, encoded, after)

    async def change_membership(
        self, kind: MemberChange, node_id: int, member: NodeEntry | None, catch_up_s: float
    ) -> tuple[int, ConfState]:
        """One membership change through Raft, on the leader; (index, configuration) once
        applied here. One at a time: the core refuses a second while one is unapplied."""
        raw = self.raw
        assert raw is not None
        async with self._membership_lock:
            if not self.is_leader():
                raise self._not_leader_error()
            await self._leader_ready()
            conf = raw.raft.trk.conf_state()
            if conf.voters_outgoing:
                raise QuiverError(errors.UNAVAILABLE, "a joint configuration is being left")
            context: dict[str, Any] = {}
            voters_after = set(conf.voters)
            if kind is MemberChange.ADD_LEARNER:
                if node_id in conf.members():
                    raise QuiverError(errors.INVALID_REQUEST, f"n{node_id} is a member already")
                if member is None or not member.grpc or not member.peer:
                    raise QuiverError(errors.INVALID_REQUEST, "a new member needs its addresses")
                context["member"] = {
                    "id": node_id,
                    "zone": member.zone,
                    "grpc": member.grpc,
                    "peer": member.peer,
                }
                if member.bolt:
                    context["member"]["bolt"] = member.bolt
                change_type = ConfChangeType.ADD_LEARNER
            elif kind is MemberChange.PROMOTE:
                if node_id not in conf.learners:
                    raise QuiverError(errors.INVALID_REQUEST, f"n{node_id} is not a learner")
                await self._wait_caught_up(node_id, catch_up_s)
                change_type = ConfChangeType.ADD_VOTER
            elif kind is MemberChange.DEMOTE:
                if node_id not in conf.voters:
                    raise QuiverError(errors.INVALID_REQUEST, f"n{node_id} is not a voter")
                change_type = ConfChangeType.ADD_LEARNER
                voters_after.discard(node_id)
            else:
                if node_id not in conf.members():
                    raise QuiverError(errors.INVALID_REQUEST, f"n{node_id} is not a member")
                change_type = ConfChangeType.REMOVE_NODE
                voters_after.discard(node_id)
            if node_id == self.id and kind in (MemberChange.DEMOTE, MemberChange.REMOVE):
                raise QuiverError(
                    errors.INVALID_REQUEST,
                    f"n{node_id} leads: transfer leadership first (quiver admin transfer-leader)",
                )
            if not voters_after:
                raise QuiverError(errors.INVALID_REQUEST, "the last voter cannot go")
            proposal_id = self._proposal_id()
            context["proposal"] = proposal_id.hex()
            change = ConfChange(
                changes=(ConfChangeSingle(change_type, node_id),),
                context=json.dumps(context, sort_keys=True).encode(),
            )
            loop = asyncio.get_running_loop()
            future: asyncio.Future[tuple[int, ConfState]] = loop.create_future()
            self._conf_changes[proposal_id] = future
            try:
                await self._inbox.put(_ProposeConfChange(change, proposal_id))
                return await asyncio.wait_for(future, PROPOSAL_TIMEOUT_S)
            except TimeoutError:
                raise QuiverError(
                    errors.UNAVAILABLE,
                    "the membership change was not applied in time; check the status",
                ) from None
            finally:
                self._conf_changes.pop(proposal_id, None)

    async def _wait_caught_up(self, node_id: int, timeout_s: float) -> None:
        """Bounded wait until a learner's log is within PROMOTE_MAX_LAG_ENTRIES of ours."""
        raw = self.raw
        assert raw is not None
        deadline = time.monotonic() + min(max(timeout_s, 0.0), MAX_CATCH_UP_S)
        while True:
            if not self.is_leader():
                raise self._not_leader_error()
            progress = raw.raft.trk.progress.get(node_id)
            match = 0 if progress is None else progress.match
            if match > 0 and raw.raft.log.committed - match <= PROMOTE_MAX_LAG_ENTRIES:
                return
            if time.monotonic() >= deadline:
                raise QuiverError(
                    errors.UNAVAILABLE,
                    f"n{node_id} has not caught up (at {match}, commit "
                    f"{raw.raft.log.committed}); try again later",
                )
            await asyncio.sleep(self.config.tick_ms / 1000)

    def partition(self, peers: list[int]) -> None:
        """Failpoint: drop all Raft traffic with `peers` and forward nothing to them."""
        if not self.failpoints_enabled:
            raise QuiverError(
                errors.INVALID_REQUEST,
                f"failpoints are off (start the node with {FAILPOINTS_ENV}=1)",
            )
        self.blocked = frozenset(peers)
        log.warning("n%d failpoint: cut off from %s", self.id, sorted(self.blocked) or "nobody")

    def has_transaction(self, tx_id: str, owner: str | None = None) -> bool:
        tx = self._transactions.get(tx_id)
        return tx is not None and (owner is None or owner == tx.owner)

    def rollback(self, tx_id: str, owner: str | None = None) -> bool:
        """End a transaction without committing it; whether there was one (of `owner`)."""
        tx = self._transactions.get(tx_id)
        if tx is None or (owner is not None and owner != tx.owner):
            return False
        self._end(tx)
        return True

    def _forget(self, tx: _OpenTransaction) -> bool:
        """Take `tx` out of the open transactions, with its share of their writes; whether
        it was open."""
        if self._transactions.get(tx.tx_id) is not tx:
            return False
        del self._transactions[tx.tx_id]
        self._open_write_bytes -= tx.write_bytes
        return True

    def _end(self, tx: _OpenTransaction) -> None:
        """End `tx` (if it is still open): forgotten, its snapshot closed once no thread
        works for it."""
        self._forget(tx)
        tx.close_when_idle()

    async def forward_channel(self) -> grpc.aio.Channel:
        """The leader's client channel, for a statement this follower forwards; while an
        election runs, after waiting (bounded) for its outcome; else a typed error."""
        channel = self.leader_channel()
        if channel is None and not self._leader_known.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._leader_known.wait(), LEADER_WAIT_S)
            # Having won the election it waited for, this node takes the statement through
            # its own client port: rare, and cheaper than failing it.
            channel = self.leader_channel(or_self=True)
        if channel is None:
            raise self._no_leader_error()
        return channel

    def leader_channel(self, or_self: bool = False) -> grpc.aio.Channel | None:
        """A channel to the leader's client port, for forwarding writes."""
        assert self.raw is not None and self._client_credentials is not None
        lead = self.known_leader()
        peer = self.peers.get(lead)
        if (
            lead == NONE
            or (lead == self.id and not or_self)
            or peer is None
            or lead in self.blocked
        ):
            return None
        channel = self._leader_channels.get(lead)
        if channel is None:
            channel = grpc.aio.secure_channel(
                peer.grpc, self._client_credentials, options=CHANNEL_OPTIONS
            )
            self._leader_channels[lead] = channel
        return channel

    async def transfer_leader(self, to: int) -> int:
        raw = self.raw
        assert raw is not None
        if not self.is_leader():
            raise self._not_leader_error()
        if to == 0:
            progress = raw.raft.trk.progress
            candidates = [n for n in progress if n != self.id and not progress[n].is_learner]
            if not candidates:
                raise QuiverError(errors.INVALID_REQUEST, "no follower to transfer to")
            to = max(candidates, key=lambda n: progress[n].match)
        await self._inbox.put(_TransferLeader(to))
        deadline = time.monotonic() + LEADER_READY_WAIT_S
        while time.monotonic() < deadline:
            if raw.leader not in (NONE, self.id):
                return raw.leader
            await asyncio.sleep(self.config.tick_ms / 1000)
        raise QuiverError(errors.UNAVAILABLE, f"leadership did not move to n{to} in time")

    # -- running ------------------------------------------------------------------------------

    async def run(self) -> None:
        from cluster.service import AdminService, QueryService, add_query_service

        await self._in_storage(self._open_store)
        await self.security.start()
        cfg = self.config
        # Rotated certificates are picked up while running (quiver certs rotate).
        self._certificates = CertificateReloader(cfg.ca, cfg.cert, cfg.key)
        peer_server_credentials = self._certificates.server_credentials(require_client_auth=True)
        client_server_credentials = self._certificates.server_credentials(require_client_auth=False)
        self._client_credentials = self._certificates.client_channel_credentials()
        self._peer_credentials = self._certificates.peer_channel_credentials()
        peer_server = grpc.aio.server(options=SERVER_OPTIONS)
        raft_pb2_grpc.add_RaftTransportServicer_to_server(
            RaftTransportService(
                self.id, cfg.cluster_id, self.is_member, self.deliver, self.receive_snapshot
            ),
            peer_server,
        )
        peer_server.add_secure_port(cfg.listen_peer, peer_server_credentials)
        client_server = grpc.aio.server(options=SERVER_OPTIONS)
        from proto import admin_pb2_grpc

        add_query_service(QueryService(self), client_server)
        admin_pb2_grpc.add_AdminServicer_to_server(AdminService(self), client_server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, client_server)
        client_server.add_secure_port(cfg.listen_grpc, client_server_credentials)
        await peer_server.start()
        await client_server.start()
        bolt_server: BoltServer | None = None
        metrics_server: asyncio.Server | None = None
        try:
            bolt_server = await self._start_bolt()
            if cfg.listen_metrics:
                metrics_server = await self.metrics.serve(cfg.listen_metrics)
            await self.health.set("", health_pb2.HealthCheckResponse.SERVING)
            await self.health.set("quiver.v1.Query", health_pb2.HealthCheckResponse.SERVING)
            log.info(
                "n%d serving clients on %s, peers on %s, Bolt on %s, metrics on %s",
                self.id,
                cfg.listen_grpc,
                cfg.listen_peer,
                cfg.listen_bolt or "-",
                cfg.listen_metrics or "-",
            )
            # What exists now (modules, the store's caches, the servers) lives as long as
            # the process: out of the collector's sight, a full collection walks only what
            # came later. Under 64 writers, a leader's full collections took 23-41 ms each
            # (every ~2 s, holding the GIL); after the freeze 1-1.5 ms.
            gc.collect()
            gc.freeze()
            async with asyncio.TaskGroup() as tasks:
                self._task_group = tasks
                for peer_id in sorted(self.peers):
                    if peer_id != self.id:
                        self._start_peer(peer_id)
                tasks.create_task(self._raft_loop())
                tasks.create_task(self._ticker())
                tasks.create_task(self._snapshotter())
                tasks.create_task(self._watch_certificates())
                tasks.create_task(self._stop_when_asked())
        except* _Stopping:
            log.info("n%d stopping", self.id)
        finally:
            await self.health.enter_graceful_shutdown()
            if bolt_server is not None:
                await bolt_server.close()
            if metrics_server is not None:
                metrics_server.close()
            await client_server.stop(SHUTDOWN_GRACE_S)
            await peer_server.stop(SHUTDOWN_GRACE_S)
            for channel in self._leader_channels.values():
                await channel.close()
            while not self._snapshot_jobs.empty():
                self._snapshot_jobs.get_nowait()[0].close()
            self._files.shutdown(wait=True)
            self._backups.shutdown(wait=True)
            self._applier.shutdown(wait=True)
            self._writers.shutdown(wait=True)
            await self._in_storage(self._close_store)  # closes the snapshots reads still use
            self._storage.shutdown(wait=True)
            self._readers.shutdown(wait=True)
            self.security.close()

    async def _start_bolt(self) -> BoltServer | None:
        """The Bolt face (Neo4j drivers) on ``listen_bolt``, TLS with the node's certificate;
        the same session layer as the gRPC face (``cluster.bolt.cluster_backend``)."""
        from cluster.bolt.cluster_backend import NodeBackend, PeerBoltAddresses
        from cluster.bolt.server import BoltServer, server_ssl_context

        cfg = self.config
        if not cfg.listen_bolt:
            return None
        # Live: a member added at run time carries its Bolt address in its conf change.
        bolt_addresses = PeerBoltAddresses(self.peers)
        host, _, port = cfg.listen_bolt.rpartition(":")
        self._bolt_ssl = server_ssl_context(str(cfg.cert), str(cfg.key))
        server = BoltServer(
            NodeBackend(self, bolt_addresses, security=self.security),
            host,
            int(port),
            ssl_context=self._bolt_ssl,
        )
        await server.start()
        return server

    async def _stop_when_asked(self) -> None:
        await self._stop.wait()
        if self._hand_over_on_stop:
            await self._hand_over()
        raise _Stopping

    async def _hand_over(self) -> None:
        """Before a leader stops on its own (SIGTERM: a rolling restart, a service manager),
        leadership goes to the most up-to-date voter, then the writes in flight get a short
        while to be answered: its clients see neither an election timeout nor a write cut
        off. Bounded; the stop goes on whatever happens here."""
        if not self.is_leader():
            return
        try:
            to = await asyncio.wait_for(self.transfer_leader(0), STOP_HANDOFF_S)
        except (QuiverError, TimeoutError) as error:
            log.warning("n%d stops as leader: %s", self.id, getattr(error, "message", error))
            return
        log.info("n%d stopping: leadership handed to n%d", self.id, to)
        deadline = time.monotonic() + STOP_SETTLE_S
        while self._proposals and time.monotonic() < deadline:
            await asyncio.sleep(self.config.tick_ms / 1000)

    def reload_certificates(self) -> None:
        """Look at the certificate files now (SIGHUP) rather than at the next poll."""
        self._certificates_changed.set()

    async def _watch_certificates(self) -> None:
        """Every ``CERT_POLL_S`` (or on SIGHUP), take up rotated certificate files: the gRPC
        servers' fetchers hand them to new handshakes by themselves; here the peer streams
        reconnect with the new client certificate, forwarding channels trust the new CA
        bundle and the Bolt listener's context loads the new chain. Open connections keep the
        certificate they negotiated."""
        assert self._certificates is not None and self._task_group is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._certificates_changed.wait(), CERT_POLL_S)
            self._certificates_changed.clear()
            before = self._certificates.current
            material = await asyncio.to_thread(self._certificates.check)
            if material is None:
                if self._bolt_stale:
                    self._reload_bolt_certificate()
                continue
            self._peer_credentials = self._certificates.peer_channel_credentials()
            for sender in self._senders.values():
                sender.use_credentials(self._peer_credentials)
            for snapshot_sender in self._snapshot_senders.values():
                snapshot_sender.use_credentials(self._peer_credentials)
            if material.ca != before.ca:
                self._client_credentials = self._certificates.client_channel_credentials()
                old_channels = list(self._leader_channels.values())
                self._leader_channels.clear()
                for channel in old_channels:  # in-flight forwards finish first
                    self._task_group.create_task(channel.close(CERT_CHANNEL_GRACE_S))
            self._reload_bolt_certificate()
            log.info("n%d now presents certificate serial %x", self.id, material.serial)

    def _reload_bolt_certificate(self) -> None:
        """New Bolt handshakes present the files' certificate (a pair that does not match,
        rotated again meanwhile, is tried again at the next poll)."""
        if self._bolt_ssl is None:
            return
        try:
            self._bolt_ssl.load_cert_chain(str(self.config.cert), str(self.config.key))
            self._bolt_stale = False
        except (ssl.SSLError, OSError) as error:
            log.warning("n%d Bolt certificate not reloaded yet: %s", self.id, error)
            self._bolt_stale = True

    def stop(self, hand_over: bool = True) -> None:
        """Stop serving; a leader first hands leadership over (``_hand_over``) unless told
        not to (SIGINT: the whole cluster is stopping, nobody would take it)."""
        self._hand_over_on_stop = hand_over
        self._stop.set()


class _Stopping(Exception):
    """Raised inside the TaskGroup to cancel and join every task."""


def serve(config: NodeConfig) -> int:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s n{config.id} %(name)s %(levelname)s %(message)s",
    )

    async def main() -> None:
        node = Node(config)
        loop = asyncio.get_running_loop()
        log.info("n%d event loop: %s", config.id, type(loop).__module__)
        loop.add_signal_handler(signal.SIGTERM, node.stop)
        loop.add_signal_handler(signal.SIGINT, lambda: node.stop(hand_over=False))
        loop.add_signal_handler(signal.SIGHUP, node.reload_certificates)
        await node.run()

    try:
        eventloop.run(main())  # $QUIVER_EVENT_LOOP: uvloop (default) or asyncio
    except BaseException as error:
        failed = _log_sync_failure(error)
        if failed is None:
            raise
        # One line for the operator, not a traceback: the node stops without acknowledging
        # anything more, and a supervisor sees the non-zero status.
        log.critical("%s", failed)
        return EXIT_STORAGE_FAILURE
    return 0


EXIT_STORAGE_FAILURE: Final = 3
"""``quiver serve``'s status when its storage failed: its log could not be made durable (an
fsync failed), or a RocksDB write of its graph failed."""
MAX_ERROR_DEPTH: Final = 100
"""Exceptions looked at when searching a node's stopping error for a storage failure."""


def _log_sync_failure(error: BaseException) -> LogSyncError | StoreWriteError | None:
    """The storage failure behind ``error`` (inside the task group's exception groups, or
    as a cause), if that is what stopped the node: a failed log fdatasync, or a failed
    RocksDB write (applying an entry, installing a snapshot)."""
    pending: list[BaseException] = [error]
    for _ in range(MAX_ERROR_DEPTH):
        if not pending:
            return None
        current = pending.pop()
        if isinstance(current, (LogSyncError, StoreWriteError)):
            return current
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        if current.__cause__ is not None:
            pending.append(current.__cause__)
    return None
