"""Plain values of the consensus core: entries, messages, states, snapshots, conf changes.

This module owns the vocabulary every other raft module speaks. It must never hold behaviour
beyond encoding and trivial accessors, and never import anything outside the standard library.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

NONE = 0
"""The node id that means "nobody" (no leader, no vote). Real node ids start at 1."""

CAMPAIGN_TRANSFER = b"campaign-transfer"
"""Context of a vote request sent on a leadership transfer: voters skip their lease check."""


class MessageType(enum.IntEnum):
    HUP = 1  # local: start an election
    BEAT = 2  # local: leader sends heartbeats
    PROPOSE = 3
    APPEND = 4
    APPEND_RESPONSE = 5
    VOTE = 6
    VOTE_RESPONSE = 7
    PRE_VOTE = 8
    PRE_VOTE_RESPONSE = 9
    SNAPSHOT = 10
    HEARTBEAT = 11
    HEARTBEAT_RESPONSE = 12
    UNREACHABLE = 13  # local: the transport could not deliver to a peer
    SNAPSHOT_STATUS = 14  # local: the transport reports a snapshot send finished or failed
    CHECK_QUORUM = 15  # local: leader checks that a quorum is active
    TRANSFER_LEADER = 16
    TIMEOUT_NOW = 17
    READ_INDEX = 18
    READ_INDEX_RESPONSE = 19


LOCAL_MESSAGES = frozenset(
    {
        MessageType.HUP,
        MessageType.BEAT,
        MessageType.UNREACHABLE,
        MessageType.SNAPSHOT_STATUS,
        MessageType.CHECK_QUORUM,
    }
)

RESPONSE_MESSAGES = frozenset(
    {
        MessageType.APPEND_RESPONSE,
        MessageType.VOTE_RESPONSE,
        MessageType.HEARTBEAT_RESPONSE,
        MessageType.UNREACHABLE,
        MessageType.PRE_VOTE_RESPONSE,
    }
)


def vote_response_type(vote_type: MessageType) -> MessageType:
    if vote_type is MessageType.VOTE:
        return MessageType.VOTE_RESPONSE
    if vote_type is MessageType.PRE_VOTE:
        return MessageType.PRE_VOTE_RESPONSE
    raise ValueError(f"not a vote message: {vote_type.name}")


class EntryType(enum.IntEnum):
    NORMAL = 1
    CONF_CHANGE = 2


@dataclass(slots=True, frozen=True)
class Entry:
    term: int = 0
    index: int = 0
    type: EntryType = EntryType.NORMAL
    data: bytes = b""

    def size(self) -> int:
        """Approximate encoded size in bytes, used for message and batch limits."""
        return len(self.data) + 24


@dataclass(slots=True, frozen=True)
class HardState:
    """What must be durable before any message that depends on it is sent."""

    term: int = 0
    vote: int = NONE
    commit: int = 0

    def is_empty(self) -> bool:
        return self == EMPTY_HARD_STATE


EMPTY_HARD_STATE = HardState()


@dataclass(slots=True, frozen=True)
class ConfState:
    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()
    voters_outgoing: tuple[int, ...] = ()
    learners_next: tuple[int, ...] = ()
    auto_leave: bool = False

    def members(self) -> frozenset[int]:
        return frozenset(self.voters) | frozenset(self.learners) | frozenset(self.voters_outgoing)


@dataclass(slots=True, frozen=True)
class SnapshotMetadata:
    conf_state: ConfState = field(default_factory=ConfState)
    index: int = 0
    term: int = 0


@dataclass(slots=True, frozen=True)
class Snapshot:
    data: bytes = b""
    metadata: SnapshotMetadata = field(default_factory=SnapshotMetadata)

    def is_empty(self) -> bool:
        return self.metadata.index == 0


EMPTY_SNAPSHOT = Snapshot()


@dataclass(slots=True, frozen=True)
class Message:
    type: MessageType
    to: int = NONE
    sender: int = NONE
    term: int = 0
    log_term: int = 0
    index: int = 0
    entries: tuple[Entry, ...] = ()
    commit: int = 0
    snapshot: Snapshot | None = None
    reject: bool = False
    reject_hint: int = 0
    context: bytes = b""
    lease_tick: int = 0
    """The leader's logical clock when it sent an append or heartbeat, echoed in the response:
    the leader's lease is measured from the send time of acknowledged messages."""


class StateType(enum.Enum):
    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"
    PRE_CANDIDATE = "pre-candidate"


@dataclass(slots=True, frozen=True)
class SoftState:
    """Volatile state worth reporting (who leads, our role); never persisted."""

    lead: int = NONE
    state: StateType = StateType.FOLLOWER


@dataclass(slots=True, frozen=True)
class ReadState:
    """A read request is safe to serve once the node has applied `index`."""

    index: int
    request_ctx: bytes


class ConfChangeType(enum.Enum):
    ADD_VOTER = "add-voter"
    ADD_LEARNER = "add-learner"
    REMOVE_NODE = "remove-node"


class ConfChangeTransition(enum.Enum):
    AUTO = "auto"
    """One change: applied directly. Several: joint consensus, left automatically."""
    JOINT_IMPLICIT = "joint-implicit"
    """Always joint, left automatically once the joint configuration is applied."""
    JOINT_EXPLICIT = "joint-explicit"
    """Always joint; the application proposes the empty change that leaves it."""


@dataclass(slots=True, frozen=True)
class ConfChangeSingle:
    type: ConfChangeType
    node_id: int


@dataclass(slots=True, frozen=True)
class ConfChange:
    """A membership change. No changes at all means "leave the joint configuration"."""

    changes: tuple[ConfChangeSingle, ...] = ()
    transition: ConfChangeTransition = ConfChangeTransition.AUTO
    context: bytes = b""

    def leave_joint(self) -> bool:
        return not self.changes and self.transition is ConfChangeTransition.AUTO

    def enter_joint(self) -> tuple[bool, bool]:
        """Whether this change uses joint consensus, and if so whether it leaves it by itself."""
        if self.transition is not ConfChangeTransition.AUTO or len(self.changes) > 1:
            return True, self.transition is not ConfChangeTransition.JOINT_EXPLICIT
        return False, False

    def encode(self) -> bytes:
        doc = {
            "changes": [[c.type.value, c.node_id] for c in self.changes],
            "transition": self.transition.value,
            "context": self.context.hex(),
        }
        return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()

    @staticmethod
    def decode(data: bytes) -> ConfChange:
        doc = json.loads(data)
        return ConfChange(
            changes=tuple(
                ConfChangeSingle(ConfChangeType(kind), int(node)) for kind, node in doc["changes"]
            ),
            transition=ConfChangeTransition(doc["transition"]),
            context=bytes.fromhex(doc["context"]),
        )

    def to_entry_data(self) -> bytes:
        return self.encode()


def add_voter(node_id: int) -> ConfChange:
    return ConfChange((ConfChangeSingle(ConfChangeType.ADD_VOTER, node_id),))


def add_learner(node_id: int) -> ConfChange:
    return ConfChange((ConfChangeSingle(ConfChangeType.ADD_LEARNER, node_id),))


def remove_node(node_id: int) -> ConfChange:
    return ConfChange((ConfChangeSingle(ConfChangeType.REMOVE_NODE, node_id),))
