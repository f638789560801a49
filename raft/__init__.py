"""Quiver's consensus core: a pure, deterministic Raft state machine (etcd raft's design).

Owns elections (pre-vote, check-quorum), replication with flow control, ReadIndex and lease
reads, leadership transfer, learners, joint and single-step membership changes, snapshots.
It must never do I/O, read a clock, start a thread or import anything outside the standard
library: time is `tick()`, the network is `step()`/`Ready.messages`, the disk is the
persistence contract of `RawNode`.
"""

from raft.core import CampaignType, Config, Raft
from raft.errors import (
    CompactedError,
    ConfChangeError,
    ProposalDroppedError,
    RaftError,
    SnapshotTemporarilyUnavailableError,
    UnavailableError,
)
from raft.progress import ProgressState
from raft.rawnode import RawNode, Ready, Status
from raft.read_only import ReadOnlyOption
from raft.storage import MemoryStorage, Storage
from raft.types import (
    NONE,
    ConfChange,
    ConfChangeSingle,
    ConfChangeTransition,
    ConfChangeType,
    ConfState,
    Entry,
    EntryType,
    HardState,
    Message,
    MessageType,
    ReadState,
    Snapshot,
    SnapshotMetadata,
    SoftState,
    StateType,
    add_learner,
    add_voter,
    remove_node,
)

__all__ = [
    "NONE",
    "CampaignType",
    "CompactedError",
    "ConfChange",
    "ConfChangeError",
    "ConfChangeSingle",
    "ConfChangeTransition",
    "ConfChangeType",
    "ConfState",
    "Config",
    "Entry",
    "EntryType",
    "HardState",
    "MemoryStorage",
    "Message",
    "MessageType",
    "ProgressState",
    "ProposalDroppedError",
    "Raft",
    "RaftError",
    "RawNode",
    "ReadOnlyOption",
    "ReadState",
    "Ready",
    "Snapshot",
    "SnapshotMetadata",
    "SnapshotTemporarilyUnavailableError",
    "SoftState",
    "StateType",
    "Status",
    "Storage",
    "UnavailableError",
    "add_learner",
    "add_voter",
    "remove_node",
]
