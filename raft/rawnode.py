"""The application's handle on the core: inputs in, `Ready` batches out.

The persistence contract, in order, for each Ready:
  1. persist `snapshot`, `entries` and `hard_state` (fsync when `must_sync`);
  2. only then send `messages` (they may promise what step 1 made durable: votes, acks);
  3. apply `snapshot` then `committed_entries` to the state machine;
  4. call `advance(ready)`.
A crash anywhere loses at most what step 1 had not made durable, and no message ever
claimed it. Nothing here performs I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from raft.core import Config, Raft
from raft.errors import ProposalDroppedError, StepLocalMessageError
from raft.progress import ProgressState
from raft.types import (
    LOCAL_MESSAGES,
    NONE,
    RESPONSE_MESSAGES,
    ConfChange,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SoftState,
    StateType,
)


@dataclass(slots=True)
class Ready:
    soft_state: SoftState | None = None
    hard_state: HardState | None = None
    read_states: list[ReadState] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    committed_entries: list[Entry] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    must_sync: bool = False


@dataclass(slots=True, frozen=True)
class PeerStatus:
    match: int
    next: int
    state: ProgressState
    is_learner: bool
    recent_active: bool


@dataclass(slots=True, frozen=True)
class Status:
    id: int
    hard_state: HardState
    soft_state: SoftState
    applied: int
    lead_transferee: int
    conf_state: ConfState
    progress: dict[int, PeerStatus]


class RawNode:
    def __init__(self, config: Config) -> None:
        self.raft = Raft(config)
        self._prev_soft = self.raft.soft_state()
        self._prev_hard = self.raft.hard_state()
        self._ready_outstanding = False

    # -- inputs -------------------------------------------------------------------------------

    def tick(self) -> None:
        self.raft.tick()

    def campaign(self) -> None:
        self.raft.step(Message(type=MessageType.HUP))

    def propose(self, data: bytes) -> None:
        """Propose one entry; raises ProposalDroppedError when it cannot be accepted now."""
        self.raft.step(
            Message(type=MessageType.PROPOSE, sender=self.raft.id, entries=(Entry(data=data),))
        )

    def propose_batch(self, payloads: list[bytes]) -> None:
        """Propose several entries at once: one append, one broadcast."""
        if payloads:
            entries = tuple(Entry(data=data) for data in payloads)
            self.raft.step(Message(type=MessageType.PROPOSE, sender=self.raft.id, entries=entries))

    def propose_conf_change(self, change: ConfChange) -> None:
        entry = Entry(type=EntryType.CONF_CHANGE, data=change.encode())
        self.raft.step(Message(type=MessageType.PROPOSE, sender=self.raft.id, entries=(entry,)))

    def apply_conf_change(self, change: ConfChange) -> ConfState:
        """Apply a committed conf change entry; call this when applying it."""
        return self.raft.apply_conf_change(change)

    def step(self, message: Message) -> None:
        """Feed a message received from a peer."""
        if message.type in LOCAL_MESSAGES:
            raise StepLocalMessageError(f"{message.type.name} is a local message")
        if message.type in RESPONSE_MESSAGES and message.sender not in self.raft.trk.progress:
            # A response from a node outside the configuration carries nothing we can use.
            return
        try:
            self.raft.step(message)
        except ProposalDroppedError:
            # A proposal forwarded by a peer that we cannot take: its proposer times out
            # and retries; there is nobody here to tell.
            return

    def read_index(self, request_ctx: bytes) -> None:
        """Ask for a linearizable read; a ReadState with this context comes in a Ready."""
        self.raft.step(Message(type=MessageType.READ_INDEX, entries=(Entry(data=request_ctx),)))

    def transfer_leader(self, transferee: int) -> None:
        self.raft.step(Message(type=MessageType.TRANSFER_LEADER, sender=transferee))

    def report_unreachable(self, node: int) -> None:
        self.raft.step(Message(type=MessageType.UNREACHABLE, sender=node))

    def report_snapshot(self, node: int, failed: bool) -> None:
        self.raft.step(Message(type=MessageType.SNAPSHOT_STATUS, sender=node, reject=failed))

    # -- outputs ------------------------------------------------------------------------------

    def has_ready(self) -> bool:
        raft = self.raft
        if raft.broadcast_pending or raft.msgs or raft.read_states:
            return True
        soft, hard = self._prev_soft, self._prev_hard
        if raft.lead != soft.lead or raft.state is not soft.state:
            return True
        if raft.term != hard.term or raft.vote != hard.vote or raft.log.committed != hard.commit:
            return True
        if raft.log.has_pending_snapshot() or raft.log.unstable.entries:
            return True
        return raft.log.has_next_committed_entries()

    def ready(self) -> Ready:
        assert not self._ready_outstanding, "ready() called twice without advance()"
        raft = self.raft
        raft.flush()
        ready = Ready(
            entries=raft.log.unstable_entries(),
            committed_entries=raft.log.next_committed_entries(),
            messages=raft.msgs,
            read_states=raft.read_states,
            snapshot=raft.log.unstable.snapshot,
        )
        raft.msgs = []
        raft.read_states = []
        soft = raft.soft_state()
        if soft != self._prev_soft:
            ready.soft_state = soft
            self._prev_soft = soft
        hard = raft.hard_state()
        if hard != self._prev_hard:
            ready.hard_state = hard
        ready.must_sync = bool(ready.entries) or (
            ready.hard_state is not None
            and (hard.vote != self._prev_hard.vote or hard.term != self._prev_hard.term)
        )
        self._ready_outstanding = True
        return ready

    def advance(self, ready: Ready) -> None:
        """Tell the core that `ready` was persisted, sent and applied."""
        assert self._ready_outstanding, "advance() without ready()"
        self._ready_outstanding = False
        if ready.hard_state is not None:
            self._prev_hard = ready.hard_state
        raft = self.raft
        if ready.entries:
            last = ready.entries[-1]
            raft.log.stable_to(last.index, last.term)
        applied = 0
        if ready.snapshot is not None:
            raft.log.stable_snapshot_to(ready.snapshot.metadata.index)
            applied = ready.snapshot.metadata.index
        if ready.committed_entries:
            applied = ready.committed_entries[-1].index
        payload = sum(len(entry.data) for entry in ready.committed_entries)
        raft.advance(applied, payload)

    # -- introspection ------------------------------------------------------------------------

    def status(self) -> Status:
        raft = self.raft
        progress: dict[int, PeerStatus] = {}
        if raft.state is StateType.LEADER:
            for node, pr in raft.trk.progress.items():
                progress[node] = PeerStatus(
                    match=pr.match,
                    next=pr.next,
                    state=pr.state,
                    is_learner=pr.is_learner,
                    recent_active=pr.recent_active,
                )
        return Status(
            id=raft.id,
            hard_state=raft.hard_state(),
            soft_state=raft.soft_state(),
            applied=raft.log.applied,
            lead_transferee=raft.lead_transferee,
            conf_state=raft.trk.conf_state(),
            progress=progress,
        )

    @property
    def leader(self) -> int:
        return self.raft.lead if self.raft.lead != NONE else NONE
