"""Deterministic simulation of many Raft nodes in one process, with safety checks.

The simulator owns a fake network (loss, delay, duplication, reordering, partitions), fake
disks (what a node persisted survives its crash; nothing else does), clients that write and
read throughout, and a nemesis that crashes and restarts nodes, transfers leadership, changes
membership and compacts logs. Everything random comes from one seed, so a seed replays
exactly. After every step it checks Raft's safety properties; at the end, liveness.

It drives the real core (`RawNode`) through the real persistence contract. It must never use
wall-clock time, threads or I/O beyond printing its report: that is what keeps it exact.
"""

from __future__ import annotations

import argparse
import hashlib
import heapq
import random
import sys
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

from raft.core import Config
from raft.errors import ProposalDroppedError
from raft.quorum import VoteResult
from raft.rawnode import RawNode, Ready
from raft.read_only import ReadOnlyOption
from raft.storage import NO_LIMIT, MemoryStorage
from raft.types import (
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
    StateType,
)

TRACE_LINES = 40
MAX_DELIVERIES_PER_TICK = 20_000
"""Bound on message deliveries between two ticks; hitting it is itself a violation."""


class Violation(Exception):
    def __init__(self, prop: str, detail: str) -> None:
        super().__init__(f"{prop}: {detail}")
        self.prop = prop
        self.detail = detail


@dataclass(slots=True, frozen=True)
class SimOptions:
    seed: int
    nodes: int = 3
    steps: int = 300
    """Ticks of the faulty phase; the recovery phase that follows has its own bound."""
    recovery_ticks: int = 400


@dataclass(slots=True)
class Knobs:
    """Per-seed fault and protocol settings, drawn from the seed."""

    drop_rate: float
    duplicate_rate: float
    reorder_rate: float
    """Links are FIFO (like a gRPC stream) except for this share of messages."""
    max_delay_ticks: float
    crash_rate: float
    partition_rate: float
    transfer_rate: float
    conf_change_rate: float
    compact_rate: float
    write_rate: float
    read_rate: float
    torn_write_rate: float
    crash_on_commit_rate: float
    """Crash a new leader at its first commit, once it is durable and before it is sent:
    the moment Raft's commit rule (Figure 8) is about, provoked on purpose."""
    max_append_bytes: int
    max_inflight_msgs: int
    read_only: ReadOnlyOption
    pre_vote: bool
    check_quorum: bool
    election_ticks: int = 10
    heartbeat_ticks: int = 1

    @staticmethod
    def draw(rng: random.Random) -> Knobs:
        lease = rng.random() < 0.5
        check_quorum = lease or rng.random() < 0.7
        if rng.random() < 0.25:
            return Knobs.leader_storm(rng, lease, check_quorum)
        return Knobs(
            drop_rate=rng.choice([0.0, 0.01, 0.05, 0.15]),
            duplicate_rate=rng.choice([0.0, 0.01, 0.05]),
            reorder_rate=rng.choice([0.0, 0.02, 0.2]),
            max_delay_ticks=rng.choice([0.2, 1.0, 3.0]),
            crash_rate=rng.choice([0.0, 0.005, 0.02, 0.05]),
            partition_rate=rng.choice([0.0, 0.01, 0.03]),
            transfer_rate=rng.choice([0.0, 0.01, 0.03]),
            conf_change_rate=rng.choice([0.0, 0.01, 0.03]),
            compact_rate=rng.choice([0.0, 0.02, 0.1]),
            write_rate=rng.choice([0.3, 1.0, 3.0]),
            read_rate=rng.choice([0.1, 0.5, 1.5]),
            torn_write_rate=rng.choice([0.0, 0.2]),
            crash_on_commit_rate=rng.choice([0.0, 0.0, 0.2, 0.5]),
            # Tiny appends split batches, which exposes commit-rule mistakes.
            max_append_bytes=rng.choice([1, 64, 1 << 20]),
            max_inflight_msgs=rng.choice([1, 4, 256]),
            read_only=ReadOnlyOption.LEASE_BASED if lease else ReadOnlyOption.SAFE,
            pre_vote=rng.random() < 0.8,
            check_quorum=check_quorum,
        )

    @staticmethod
    def leader_storm(rng: random.Random, lease: bool, check_quorum: bool) -> Knobs:
        """Leaders die young, mid-replication, one entry per message: several short terms
        leave divergent tails behind, which is where commit-rule mistakes show."""
        return Knobs(
            drop_rate=0.1,
            duplicate_rate=0.0,
            reorder_rate=0.0,
            max_delay_ticks=rng.choice([0.5, 2.0]),
            crash_rate=0.05,
            partition_rate=0.02,
            transfer_rate=0.0,
            conf_change_rate=0.0,
            compact_rate=0.02,
            write_rate=1.0,
            read_rate=0.5,
            torn_write_rate=0.0,
            crash_on_commit_rate=0.5,
            max_append_bytes=1,
            max_inflight_msgs=rng.choice([1, 4]),
            read_only=ReadOnlyOption.LEASE_BASED if lease else ReadOnlyOption.SAFE,
            pre_vote=rng.random() < 0.8,
            check_quorum=check_quorum,
        )


def _digest(previous: bytes, entry: Entry) -> bytes:
    hasher = hashlib.blake2b(previous, digest_size=12)
    hasher.update(entry.term.to_bytes(8, "big"))
    hasher.update(entry.data)
    return hasher.digest()


@dataclass(slots=True)
class StateMachine:
    """The replicated state: a digest over every applied entry, and the config."""

    applied: int = 0
    digest: bytes = b""
    conf_state: ConfState = field(default_factory=ConfState)

    def encode(self) -> bytes:
        return self.applied.to_bytes(8, "big") + self.digest

    @staticmethod
    def decode(data: bytes, conf_state: ConfState) -> StateMachine:
        return StateMachine(int.from_bytes(data[:8], "big"), data[8:], conf_state)


@dataclass(slots=True)
class SimNode:
    id: int
    storage: MemoryStorage
    raw: RawNode | None = None
    state: StateMachine = field(default_factory=StateMachine)
    incarnation: int = 0
    checked_commit: int = 0
    first_commit_term: int = 0
    """Up to where this incarnation's commit index was checked against the committed log."""

    @property
    def up(self) -> bool:
        return self.raw is not None


@dataclass(slots=True)
class PendingWrite:
    proposer: int
    incarnation: int
    started: float


@dataclass(slots=True)
class PendingRead:
    node: int
    incarnation: int
    started: float
    required_index: int


class Simulation:
    def __init__(self, options: SimOptions) -> None:
        self.options = options
        self.rng = random.Random(options.seed)
        self.knobs = Knobs.draw(self.rng)
        self.now = 0.0
        # (time, text or message): messages are formatted only when a trace is printed.
        self.trace_events: deque[tuple[float, str | Message]] = deque(maxlen=TRACE_LINES)
        self.nodes: dict[int, SimNode] = {}
        self.next_node_id = options.nodes + 1
        self.network: list[tuple[float, int, Message]] = []
        self.sequence = 0
        self.blocked: set[tuple[int, int]] = set()
        self.link_clock: dict[tuple[int, int], float] = {}
        self.faults_on = True
        # What the checker knows.
        self.leader_of_term: dict[int, int] = {}
        self.entry_at: dict[tuple[int, int], tuple[bytes, int]] = {}  # (index, term) -> data, prev
        self.committed: dict[int, tuple[int, bytes]] = {}
        self.max_committed = 0
        self.max_acked_index = 0
        self.writes: dict[bytes, PendingWrite] = {}
        self.acked_writes = 0
        self.reads: dict[bytes, PendingRead] = {}
        self.reads_checked = 0
        self.write_counter = 0
        self.read_counter = 0
        self.conf_counter = 0
        self.pending_conf_context: bytes | None = None

        voters = tuple(range(1, options.nodes + 1))
        bootstrap = Snapshot(
            data=StateMachine(applied=1, digest=b"boot").encode(),
            metadata=SnapshotMetadata(conf_state=ConfState(voters=voters), index=1, term=1),
        )
        for node_id in voters:
            storage = MemoryStorage()
            storage.apply_snapshot(bootstrap)
            self.nodes[node_id] = SimNode(node_id, storage)
            self._start(node_id)

    # -- reporting ----------------------------------------------------------------------------

    def log(self, text: str) -> None:
        self.trace_events.append((self.now, text))

    @property
    def trace(self) -> list[str]:
        return [
            f"t={at:8.2f} {event if isinstance(event, str) else 'deliver ' + _describe(event)}"
            for at, event in self.trace_events
        ]

    def replay_command(self) -> str:
        o = self.options
        return f"quiver sim --seeds 1 --start {o.seed} --nodes {o.nodes} --steps {o.steps}"

    # -- node lifecycle -----------------------------------------------------------------------

    def _config(self, node: SimNode, applied: int) -> Config:
        k = self.knobs
        return Config(
            id=node.id,
            storage=node.storage,
            rng=random.Random(self.options.seed * 7919 + node.id * 104729 + node.incarnation),
            election_ticks=k.election_ticks,
            heartbeat_ticks=k.heartbeat_ticks,
            applied=applied,
            max_append_bytes=k.max_append_bytes,
            max_inflight_msgs=k.max_inflight_msgs,
            check_quorum=k.check_quorum,
            pre_vote=k.pre_vote,
            read_only_option=k.read_only,
        )

    def _start(self, node_id: int) -> None:
        node = self.nodes[node_id]
        snapshot = node.storage.snapshot()
        if snapshot.is_empty():
            node.state = StateMachine()
        else:
            node.state = StateMachine.decode(snapshot.data, snapshot.metadata.conf_state)
        node.incarnation += 1
        node.checked_commit = node.state.applied
        node.raw = RawNode(self._config(node, node.state.applied))
        self.log(f"start n{node_id} (incarnation {node.incarnation}, applied {node.state.applied})")

    def _crash(self, node_id: int) -> None:
        node = self.nodes[node_id]
        node.raw = None  # volatile state gone; the storage keeps what was persisted
        self.log(f"crash n{node_id}")
        for peer in self.live_nodes():
            self._transport_lost(peer.id, node_id)

    def _transport_lost(self, node_id: int, peer: int) -> None:
        """`node_id`'s stream to `peer` broke (the peer died, or the link did): a real
        transport tells the core so, mostly. The core may take it as a hint that its
        leader is gone, which must only ever change when an election starts."""
        node = self.nodes[node_id]
        if node.raw is None or self.rng.random() >= 0.8:
            return
        node.raw.report_unreachable(peer)
        self.process(node)

    def live_nodes(self) -> list[SimNode]:
        return [node for _, node in sorted(self.nodes.items()) if node.raw is not None]

    def leader(self) -> SimNode | None:
        best: SimNode | None = None
        for node in self.live_nodes():
            assert node.raw is not None
            raft = node.raw.raft
            if raft.state is StateType.LEADER and (
                best is None or best.raw is None or raft.term > best.raw.raft.term
            ):
                best = node
        return best

    # -- the network --------------------------------------------------------------------------

    def send(self, message: Message) -> None:
        k = self.knobs
        if self.faults_on and self.rng.random() < k.drop_rate:
            self._dropped(message)
            return
        copies = 2 if self.faults_on and self.rng.random() < k.duplicate_rate else 1
        max_delay = k.max_delay_ticks if self.faults_on else 0.2
        link = (message.sender, message.to)
        for _ in range(copies):
            self.sequence += 1
            at = self.now + self.rng.random() * max_delay
            if not (self.faults_on and self.rng.random() < k.reorder_rate):
                at = max(at, self.link_clock.get(link, 0.0))
                self.link_clock[link] = at
            heapq.heappush(self.network, (at, self.sequence, message))

    def _dropped(self, message: Message) -> None:
        if message.type is MessageType.SNAPSHOT:
            sender = self.nodes.get(message.sender)
            if sender is not None and sender.raw is not None:
                sender.raw.report_snapshot(message.to, failed=True)

    def deliver(self, message: Message) -> None:
        target = self.nodes.get(message.to)
        if (message.sender, message.to) in self.blocked or target is None or target.raw is None:
            self._dropped(message)
            return
        self.trace_events.append((self.now, message))
        target.raw.step(message)
        self.process(target)
        if message.type is MessageType.SNAPSHOT:
            sender = self.nodes.get(message.sender)
            if sender is not None and sender.raw is not None:
                sender.raw.report_snapshot(message.to, failed=False)
                self.process(sender)

    # -- the Ready loop: the persistence contract ---------------------------------------------

    def process(self, node: SimNode) -> None:
        rounds = 0
        while node.raw is not None and node.raw.has_ready():
            rounds += 1
            if rounds > 100:
                raise Violation("bounded-ready", f"n{node.id} kept producing Ready")
            self._handle_ready(node, node.raw, node.raw.ready())

    def _handle_ready(self, node: SimNode, raw: RawNode, ready: Ready) -> None:
        if ready.soft_state is not None and ready.soft_state.state is StateType.LEADER:
            self._check_new_leader(node, raw)
        storage = node.storage
        self._check_appended(node, raw, ready.entries)
        if self.faults_on and ready.entries and self.rng.random() < self._torn_rate():
            # A crash in the middle of the write: a prefix of the entries reached the disk,
            # the hard state did not, no message went out, nothing was applied.
            keep = self.rng.randrange(len(ready.entries) + 1)
            if ready.snapshot is not None:
                storage.apply_snapshot(ready.snapshot)
            storage.append(ready.entries[:keep])
            self.log(f"torn write on n{node.id}: {keep}/{len(ready.entries)} entries")
            self._crash(node.id)
            return
        # 1. persist
        if ready.snapshot is not None:
            storage.apply_snapshot(ready.snapshot)
        storage.append(ready.entries)
        if (
            self.faults_on
            and ready.soft_state is not None
            and ready.soft_state.state is StateType.LEADER
            and self.rng.random() < self.knobs.crash_on_commit_rate
        ):
            # A new leader dies with its first entry durable but never sent.
            if ready.hard_state is not None:
                storage.set_hard_state(ready.hard_state)
            self._crash(node.id)
            return
        if ready.hard_state is not None:
            storage.set_hard_state(ready.hard_state)
            if ready.hard_state.commit > node.checked_commit:
                # The commit decision is the moment that matters, not when it is applied.
                self._check_commit_index(node, raw, ready.hard_state.commit)
                if (
                    self.faults_on
                    and raw.raft.state is StateType.LEADER
                    and node.first_commit_term != raw.raft.term
                ):
                    node.first_commit_term = raw.raft.term
                    if self.rng.random() < self.knobs.crash_on_commit_rate:
                        # A new leader's first commit, durable but not yet told to anyone.
                        self._crash(node.id)
                        return
        # 2. send
        for message in ready.messages:
            self.send(message)
        # 3. apply
        for read_state in ready.read_states:
            self._check_read(node, read_state.index, read_state.request_ctx)
        if ready.snapshot is not None:
            metadata = ready.snapshot.metadata
            node.state = StateMachine.decode(ready.snapshot.data, metadata.conf_state)
            self._check_committed(node, metadata.index, metadata.term, None)
        for entry in ready.committed_entries:
            self._apply(node, raw, entry)
        # 4. advance
        raw.advance(ready)

    def _torn_rate(self) -> float:
        return self.knobs.torn_write_rate * self.knobs.crash_rate

    def _apply(self, node: SimNode, raw: RawNode, entry: Entry) -> None:
        state = node.state
        if entry.index != state.applied + 1:
            raise Violation(
                "apply-order", f"n{node.id} applied {entry.index} after {state.applied}"
            )
        self._check_committed(node, entry.index, entry.term, entry.data)
        state.applied = entry.index
        state.digest = _digest(state.digest, entry)
        if entry.type is EntryType.CONF_CHANGE:
            change = ConfChange.decode(entry.data)
            state.conf_state = raw.apply_conf_change(change)
            self._conf_change_applied(change, state.conf_state)
            return
        write = self.writes.get(entry.data)
        if (
            write is not None
            and write.proposer == node.id
            and write.incarnation == node.incarnation
        ):
            del self.writes[entry.data]
            self.acked_writes += 1
            self.max_acked_index = max(self.max_acked_index, entry.index)

    # -- the checks ---------------------------------------------------------------------------

    def _check_new_leader(self, node: SimNode, raw: RawNode) -> None:
        term = raw.raft.term
        previous = self.leader_of_term.setdefault(term, node.id)
        if previous != node.id:
            raise Violation("election-safety", f"n{previous} and n{node.id} both led term {term}")
        self.log(f"n{node.id} leads term {term}")
        # Leader completeness: every committed entry is in the new leader's log.
        log = raw.raft.log
        first = log.first_index()
        if log.last_index() < self.max_committed:
            raise Violation(
                "leader-completeness",
                f"n{node.id} leads term {term} with last index {log.last_index()} "
                f"< committed {self.max_committed}",
            )
        for index in range(max(first, 2), self.max_committed + 1):
            committed_term, _ = self.committed[index]
            if log.term(index) != committed_term:
                raise Violation(
                    "leader-completeness",
                    f"n{node.id} leads term {term} but has term {log.term(index)} at "
                    f"committed index {index} (committed term {committed_term})",
                )

    def _check_appended(self, node: SimNode, raw: RawNode, entries: list[Entry]) -> None:
        """Log matching: an (index, term) names one entry with one predecessor, everywhere."""
        log = raw.raft.log
        for entry in entries:
            previous_term = log.term_or_zero(entry.index - 1)
            key = (entry.index, entry.term)
            known = self.entry_at.setdefault(key, (entry.data, previous_term))
            if known != (entry.data, previous_term):
                raise Violation(
                    "log-matching",
                    f"n{node.id} has a different entry at index {entry.index} term "
                    f"{entry.term} (or a different predecessor term)",
                )

    def _check_commit_index(self, node: SimNode, raw: RawNode, commit: int) -> None:
        log = raw.raft.log
        first = max(node.checked_commit + 1, log.first_index())
        if first <= commit:
            for entry in log.slice(first, commit + 1, NO_LIMIT):
                self._check_committed(node, entry.index, entry.term, entry.data)
        node.checked_commit = commit
        if raw.raft.state is StateType.LEADER and commit >= log.first_index():
            self._check_commit_is_durable(node, raw, commit, log.term(commit))

    def _log_tip(self, node: SimNode) -> tuple[int, int]:
        """(last term, last index) a node would campaign or vote with."""
        if node.raw is not None:
            log = node.raw.raft.log
            return log.last_term(), log.last_index()
        storage = node.storage
        return storage.term(storage.last_index()), storage.last_index()

    def _holds(self, node: SimNode, index: int, term: int) -> bool:
        if node.raw is not None:
            log = node.raw.raft.log
            if index < log.first_index():
                return True  # inside its snapshot: only committed entries get there
            return log.match_term(index, term)
        storage = node.storage
        if index < storage.first_index():
            return True
        return index <= storage.last_index() and storage.term(index) == term

    def _check_commit_is_durable(
        self, leader: SimNode, raw: RawNode, index: int, term: int
    ) -> None:
        """A committed entry can never be lost: no node without it may have a log at least
        as up to date as a quorum of voters (they would elect it). Checked the moment a
        leader commits, this catches an unsafe commit before any election exposes it."""
        config = raw.raft.trk.config.voters
        for candidate in self.nodes.values():
            if self._holds(candidate, index, term):
                continue
            tip = self._log_tip(candidate)
            votes = {}
            for voter in config.ids():
                other = self.nodes.get(voter)
                votes[voter] = other is not None and tip >= self._log_tip(other)
            if config.vote_result(votes) is VoteResult.WON:
                raise Violation(
                    "committed-entry-durability",
                    f"n{leader.id} committed index {index} (term {term}) in term "
                    f"{raw.raft.term}, but n{candidate.id}, without it, could be elected",
                )

    def _check_committed(self, node: SimNode, index: int, term: int, data: bytes | None) -> None:
        """State-machine safety: one entry per index, ever, on every node."""
        known = self.committed.get(index)
        if known is None:
            if data is None:
                return  # a snapshot past what we saw committed: entries come from others
            if (
                index > self.max_committed + 1
                and self.max_committed
                and index - 1 not in self.committed
            ):
                pass
            self.committed[index] = (term, data)
            self.max_committed = max(self.max_committed, index)
            return
        if known[0] != term or (data is not None and known[1] != data):
            raise Violation(
                "state-machine-safety",
                f"n{node.id} applied term {term} at index {index}, "
                f"but term {known[0]} was committed there",
            )

    def _check_read(self, node: SimNode, index: int, ctx: bytes) -> None:
        read = self.reads.pop(ctx, None)
        if read is None or read.node != node.id or read.incarnation != node.incarnation:
            return
        self.reads_checked += 1
        if index < read.required_index:
            raise Violation(
                "linearizable-read",
                f"read {ctx.decode()} on n{node.id} served at index {index}, but a write "
                f"at index {read.required_index} was acknowledged before it began",
            )

    # -- clients ------------------------------------------------------------------------------

    def client_write(self) -> None:
        live = self.live_nodes()
        if not live:
            return
        node = self.rng.choice(live)
        assert node.raw is not None
        self.write_counter += 1
        data = f"w{self.write_counter}".encode()
        try:
            node.raw.propose(data)
        except ProposalDroppedError:
            return
        self.writes[data] = PendingWrite(node.id, node.incarnation, self.now)
        self.process(node)

    def client_read(self) -> None:
        live = self.live_nodes()
        if not live:
            return
        leaders = [n for n in live if n.raw is not None and n.raw.raft.state is StateType.LEADER]
        # Clients send reads where they believe the leader is, stale leaders included (a
        # client on the minority side of a partition still talks to the old leader).
        node = self.rng.choice(leaders if leaders and self.rng.random() < 0.5 else live)
        assert node.raw is not None
        self.read_counter += 1
        ctx = f"r{self.read_counter}".encode()
        self.reads[ctx] = PendingRead(node.id, node.incarnation, self.now, self.max_acked_index)
        node.raw.read_index(ctx)
        self.process(node)

    # -- the nemesis --------------------------------------------------------------------------

    def nemesis(self) -> None:
        k, rng = self.knobs, self.rng
        if rng.random() < k.crash_rate * len(self.nodes):
            self._crash_or_restart()
        if rng.random() < k.partition_rate:
            self._partition_or_heal()
        if rng.random() < k.transfer_rate:
            self._transfer()
        if rng.random() < k.conf_change_rate:
            self._change_membership()
        if rng.random() < k.compact_rate * len(self.nodes):
            self._compact(rng.choice(sorted(self.nodes)))

    def _crash_or_restart(self) -> None:
        members = sorted(self._members())
        down = [n for n in members if not self.nodes[n].up]
        up = [n for n in members if self.nodes[n].up]
        if down and (not up or self.rng.random() < 0.6):
            self._start(self.rng.choice(down))
            return
        leader = self.leader()
        if leader is not None and self.rng.random() < 0.5:
            self._crash(leader.id)  # the leader is the most interesting node to lose
        elif up:
            self._crash(self.rng.choice(up))

    def _partition_or_heal(self) -> None:
        if self.blocked and self.rng.random() < 0.5:
            self.blocked.clear()
            self.log("heal all partitions")
            return
        ids = sorted(self.nodes)
        kind = self.rng.choice(["split", "isolate", "one-way", "isolate-leader", "isolate-leader"])
        if kind == "isolate-leader":
            leader = self.leader()
            if leader is None:
                return
            side = {leader.id}
        elif kind == "one-way":
            a, b = self.rng.sample(ids, 2) if len(ids) > 1 else (ids[0], ids[0])
            self.blocked.add((a, b))
            self.log(f"partition one-way n{a} -/-> n{b}")
            self._transport_lost(a, b)
            return
        elif kind == "isolate":
            side = {self.rng.choice(ids)}
        else:
            side = set(self.rng.sample(ids, len(ids) // 2))
        cut = [(a, b) for a in ids for b in ids if (a in side) != (b in side)]
        self.blocked.update(cut)
        self.log(f"partition {sorted(side)} from the rest")
        for a, b in cut:
            self._transport_lost(a, b)

    def _transfer(self) -> None:
        leader = self.leader()
        if leader is None or leader.raw is None:
            return
        voters = [n for n in leader.raw.raft.trk.config.voters.incoming if n != leader.id]
        if not voters:
            return
        target = self.rng.choice(sorted(voters))
        self.log(f"transfer leadership n{leader.id} -> n{target}")
        leader.raw.transfer_leader(target)
        self.process(leader)

    def _members(self) -> set[int]:
        """Nodes that some live node's applied config includes."""
        members: set[int] = set()
        leader = self.leader()
        source = [leader] if leader is not None else self.live_nodes()
        for node in source:
            if node.raw is not None:
                members |= node.raw.raft.trk.config.voters.ids()
                members |= node.raw.raft.trk.config.learners
        if not members:
            members = {n for n, node in self.nodes.items() if node.state.conf_state.members()}
        return {n for n in members if n in self.nodes} or set(self.nodes)

    def _change_membership(self) -> None:
        leader = self.leader()
        if leader is None or leader.raw is None:
            return
        config = leader.raw.raft.trk.config
        voters = sorted(config.voters.incoming)
        learners = sorted(config.learners)
        if config.voters.is_joint():
            if not config.auto_leave:
                self._propose_conf_change(leader, ConfChange())
            return
        base = self.options.nodes
        choices: list[tuple[str, ConfChange]] = []
        new_id = self.next_node_id
        if len(voters) + len(learners) < base + 2:
            choices.append(("add learner", _change(ConfChangeType.ADD_LEARNER, new_id)))
            choices.append(("add voter", _change(ConfChangeType.ADD_VOTER, new_id)))
        for learner in learners:
            choices.append(("promote", _change(ConfChangeType.ADD_VOTER, learner)))
            choices.append(("remove learner", _change(ConfChangeType.REMOVE_NODE, learner)))
        if len(voters) > max(1, base - 1):
            victim = self.rng.choice(voters)
            choices.append(("demote", _change(ConfChangeType.ADD_LEARNER, victim)))
            choices.append(("remove voter", _change(ConfChangeType.REMOVE_NODE, victim)))
        if len(voters) + len(learners) < base + 2:
            victim = self.rng.choice(voters)
            transition = self.rng.choice(list(ConfChangeTransition))
            swap = ConfChange(
                (
                    ConfChangeSingle(ConfChangeType.ADD_VOTER, new_id),
                    ConfChangeSingle(ConfChangeType.REMOVE_NODE, victim),
                ),
                transition,
            )
            choices.append(("joint swap", swap))
        if not choices:
            return
        name, change = self.rng.choice(choices)
        self.log(f"propose {name}: {_describe_change(change)}")
        self._propose_conf_change(leader, change)

    def _propose_conf_change(self, leader: SimNode, change: ConfChange) -> None:
        assert leader.raw is not None
        self.conf_counter += 1
        tagged = ConfChange(change.changes, change.transition, f"c{self.conf_counter}".encode())
        try:
            leader.raw.propose_conf_change(tagged)
        except ProposalDroppedError:
            return
        self.process(leader)

    def _conf_change_applied(self, change: ConfChange, conf_state: ConfState) -> None:
        """First application anywhere starts new members (they join empty)."""
        for single in change.changes:
            node_id = single.node_id
            if single.type is ConfChangeType.REMOVE_NODE or node_id in self.nodes:
                continue
            self.next_node_id = max(self.next_node_id, node_id + 1)
            self.nodes[node_id] = SimNode(node_id, MemoryStorage())
            self._start(node_id)
        del conf_state

    def _compact(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.raw is None:
            return
        applied = node.state.applied
        storage = node.storage
        if applied <= storage.snapshot().metadata.index + 2 or applied > storage.last_index():
            return
        storage.create_snapshot(applied, node.state.conf_state, node.state.encode())
        keep = self.rng.choice([0, 2, 10])
        if applied - keep > storage.first_index():
            storage.compact(applied - keep)
        self.log(f"n{node_id} snapshot at {applied}, log from {storage.first_index()}")

    # -- running ------------------------------------------------------------------------------

    def tick(self) -> None:
        self.now = float(int(self.now) + 1)
        for node in self.live_nodes():
            assert node.raw is not None
            node.raw.tick()
            self.process(node)

    def run_until_next_tick(self) -> None:
        horizon = float(int(self.now) + 1)
        deliveries = 0
        while self.network and self.network[0][0] < horizon:
            at, _, message = heapq.heappop(self.network)
            self.now = max(self.now, at)
            self.deliver(message)
            deliveries += 1
            if deliveries > MAX_DELIVERIES_PER_TICK:
                raise Violation("bounded-network", "message storm between two ticks")

    def step(self) -> None:
        if self.faults_on:
            self.nemesis()
        rng, k = self.rng, self.knobs
        writes = int(k.write_rate) + (1 if rng.random() < k.write_rate % 1 else 0)
        for _ in range(writes):
            self.client_write()
        if rng.random() < k.read_rate:
            self.client_read()
        self.run_until_next_tick()
        self.tick()

    def heal(self) -> None:
        self.faults_on = False
        self.blocked.clear()
        self.log("faults stop: heal partitions, restart members")
        for node_id in sorted(self._members()):
            if not self.nodes[node_id].up:
                self._start(node_id)

    def converged(self) -> bool:
        leader = self.leader()
        if leader is None or leader.raw is None:
            return False
        raft = leader.raw.raft
        if raft.trk.config.voters.is_joint() or not raft.committed_entry_in_current_term():
            return False
        members = raft.trk.config.voters.ids() | raft.trk.config.learners
        for node_id in members:
            node = self.nodes.get(node_id)
            if node is None or node.raw is None or node.state.applied < raft.log.committed:
                return False
        return True

    def lagging(self) -> str:
        leader = self.leader()
        if leader is None or leader.raw is None:
            return "no leader"
        raft = leader.raw.raft
        parts = [f"leader n{leader.id} commit {raft.log.committed} config {raft.trk.config!r}"]
        for node_id in sorted(raft.trk.config.voters.ids() | raft.trk.config.learners):
            node = self.nodes.get(node_id)
            if node is None or node.raw is None:
                parts.append(f"n{node_id} down")
            elif node.state.applied < raft.log.committed:
                parts.append(f"n{node_id} applied {node.state.applied}")
        return "; ".join(parts)

    def run(self) -> None:
        for _ in range(self.options.steps):
            self.step()
        self.heal()
        # Liveness: a leader is elected and a new proposal commits within a bound. A proposal
        # may be lost in a leader change (it was never acknowledged), so a final write is
        # proposed afresh to each new leader until one is acknowledged.
        attempts: list[bytes] = []
        proposed_to: tuple[int, int] | None = None
        for tick in range(self.options.recovery_ticks):
            if tick % 10 == 0:
                # Membership may still change as pending conf changes commit: bring up every
                # current member that is down.
                for node_id in sorted(self._members()):
                    if not self.nodes[node_id].up:
                        self._start(node_id)
            leader = self.leader()
            if leader is not None and leader.raw is not None:
                raft = leader.raw.raft
                config = raft.trk.config
                if config.voters.is_joint() and not config.auto_leave and tick % 20 == 0:
                    self._propose_conf_change(leader, ConfChange())
                if proposed_to != (leader.id, raft.term) and raft.committed_entry_in_current_term():
                    final = f"final{self.options.seed}.{len(attempts)}".encode()
                    try:
                        leader.raw.propose(final)
                    except ProposalDroppedError:
                        pass
                    else:
                        attempts.append(final)
                        proposed_to = (leader.id, raft.term)
                        self.writes[final] = PendingWrite(leader.id, leader.incarnation, self.now)
                        self.process(leader)
            self.run_until_next_tick()
            acknowledged = any(final not in self.writes for final in attempts)
            if acknowledged and self.converged():
                return
            self.tick()
        acknowledged = any(final not in self.writes for final in attempts)
        raise Violation(
            "liveness",
            f"no convergence {self.options.recovery_ticks} ticks after faults stopped "
            f"({len(attempts)} final writes proposed, "
            f"{'one' if acknowledged else 'none'} acknowledged; {self.lagging()})",
        )


def _change(kind: ConfChangeType, node_id: int) -> ConfChange:
    return ConfChange((ConfChangeSingle(kind, node_id),))


def _describe_change(change: ConfChange) -> str:
    parts = [f"{c.type.value} n{c.node_id}" for c in change.changes] or ["leave joint"]
    return ", ".join(parts) + f" ({change.transition.value})"


def _describe(m: Message) -> str:
    text = f"n{m.sender}->n{m.to} {m.type.name} term={m.term}"
    if m.type in (MessageType.APPEND, MessageType.APPEND_RESPONSE):
        text += f" index={m.index} log_term={m.log_term} commit={m.commit}"
        if m.entries:
            text += f" entries={m.entries[0].index}..{m.entries[-1].index}"
        if m.reject:
            text += f" REJECT hint={m.reject_hint}"
    elif m.type in (MessageType.VOTE_RESPONSE, MessageType.PRE_VOTE_RESPONSE):
        text += " REJECT" if m.reject else " GRANT"
    elif m.type is MessageType.SNAPSHOT and m.snapshot is not None:
        text += f" snapshot@{m.snapshot.metadata.index}"
    return text


# -- running many seeds ----------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class SeedResult:
    seed: int
    nodes: int
    steps: int
    violation: str | None = None
    trace: tuple[str, ...] = ()
    replay: str = ""
    acked_writes: int = 0
    reads_checked: int = 0


def run_seed(seed: int, nodes: int, steps: int) -> SeedResult:
    simulation = Simulation(SimOptions(seed=seed, nodes=nodes, steps=steps))
    try:
        simulation.run()
    except Violation as violation:
        return SeedResult(
            seed,
            nodes,
            steps,
            violation=str(violation),
            trace=tuple(simulation.trace),
            replay=simulation.replay_command(),
        )
    except AssertionError as failure:
        # An invariant asserted inside the core fired: a bug found, reported like one.
        return SeedResult(
            seed,
            nodes,
            steps,
            violation=f"core-assertion: {failure}",
            trace=tuple(simulation.trace),
            replay=simulation.replay_command(),
        )
    return SeedResult(
        seed,
        nodes,
        steps,
        acked_writes=simulation.acked_writes,
        reads_checked=simulation.reads_checked,
    )


def seed_plan(count: int, start: int, nodes: int | None) -> Iterator[tuple[int, int]]:
    """(seed, cluster size) pairs; without --nodes the sizes rotate through 3, 5 and 7."""
    sizes = (3, 5, 7)
    for seed in range(start, start + count):
        yield seed, nodes if nodes is not None else sizes[seed % len(sizes)]


def _run_one(job: tuple[int, int, int]) -> SeedResult:
    return run_seed(*job)


def run_seeds(
    count: int, start: int = 0, nodes: int | None = None, steps: int = 300, jobs: int = 1
) -> Iterator[SeedResult]:
    plan = [(seed, size, steps) for seed, size in seed_plan(count, start, nodes)]
    if jobs <= 1:
        for job in plan:
            yield _run_one(job)
        return
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(jobs) as pool:
        yield from pool.imap(_run_one, plan, chunksize=8)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="quiver sim",
        description="Run the Raft core under a simulated faulty network and check safety.",
    )
    parser.add_argument("--seeds", type=int, default=100, help="how many seeds to run")
    parser.add_argument("--start", type=int, default=0, help="first seed")
    parser.add_argument(
        "--nodes", type=int, choices=(3, 5, 7), help="cluster size (default: rotate)"
    )
    parser.add_argument("--steps", type=int, default=300, help="ticks of faults per seed")
    parser.add_argument("--jobs", type=int, default=1, help="worker processes")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    options = parser.parse_args(argv)
    if options.seeds < 1 or options.steps < 1:
        print(
            "Neo.ClientError.Request.Invalid: --seeds and --steps must be positive", file=sys.stderr
        )
        return 2
    started = time.monotonic()
    violations = 0
    done = 0
    writes = reads = 0
    for result in run_seeds(
        options.seeds, options.start, options.nodes, options.steps, options.jobs
    ):
        done += 1
        writes += result.acked_writes
        reads += result.reads_checked
        if result.violation is not None:
            violations += 1
            print(f"VIOLATION seed {result.seed} ({result.nodes} nodes): {result.violation}")
            print("  last events:")
            for line in result.trace:
                print(f"    {line}")
            print(f"  replay: {result.replay}")
            break
    elapsed = time.monotonic() - started
    if options.format == "json":
        import json

        print(
            json.dumps(
                {
                    "seeds": done,
                    "violations": violations,
                    "seconds": round(elapsed, 3),
                    "acked_writes": writes,
                    "reads_checked": reads,
                }
            )
        )
    else:
        rate = done / elapsed if elapsed > 0 else 0.0
        print(
            f"# {elapsed:.1f}s, {rate:.1f} seeds/s, {writes} acknowledged writes, "
            f"{reads} linearizable reads checked",
            file=sys.stderr,
        )
        print(f"{done} seeds, {violations} violations")
    return 1 if violations else 0


if __name__ == "__main__":
    raise SystemExit(main())
