"""Quorum arithmetic for majority and joint (two-majority) configurations.

Pure functions over sets of voter ids; no knowledge of terms, logs or messages.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping

from raft.types import NONE

INFINITE_INDEX = 1 << 63
"""The committed index of an empty configuration: it never constrains a joint config."""


class VoteResult(enum.Enum):
    PENDING = "pending"
    LOST = "lost"
    WON = "won"


def majority(voter_count: int) -> int:
    return voter_count // 2 + 1


def majority_committed_index(voters: frozenset[int], acked: Mapping[int, int]) -> int:
    """The largest index that a majority of `voters` has acknowledged."""
    if not voters:
        return INFINITE_INDEX
    indexes = sorted((acked.get(voter, 0) for voter in voters), reverse=True)
    return indexes[majority(len(voters)) - 1]


def majority_vote_result(voters: frozenset[int], votes: Mapping[int, bool]) -> VoteResult:
    if not voters:
        return VoteResult.WON  # an empty config wins everything, so joint configs reduce
    granted = missing = 0
    for voter in voters:
        vote = votes.get(voter)
        if vote is None:
            missing += 1
        elif vote:
            granted += 1
    needed = majority(len(voters))
    if granted >= needed:
        return VoteResult.WON
    if granted + missing >= needed:
        return VoteResult.PENDING
    return VoteResult.LOST


class JointConfig:
    """Two majority configs; decisions need both. `outgoing` is empty outside a change."""

    __slots__ = ("incoming", "outgoing")

    def __init__(self, incoming: frozenset[int], outgoing: frozenset[int] = frozenset()) -> None:
        self.incoming = incoming
        self.outgoing = outgoing

    def ids(self) -> frozenset[int]:
        return self.incoming | self.outgoing

    def is_joint(self) -> bool:
        return bool(self.outgoing)

    def committed_index(self, acked: Mapping[int, int]) -> int:
        return min(
            majority_committed_index(self.incoming, acked),
            majority_committed_index(self.outgoing, acked),
        )

    def vote_result(self, votes: Mapping[int, bool]) -> VoteResult:
        first = majority_vote_result(self.incoming, votes)
        second = majority_vote_result(self.outgoing, votes)
        if first is second:
            return first
        if VoteResult.LOST in (first, second):
            return VoteResult.LOST
        return VoteResult.PENDING

    def __repr__(self) -> str:
        incoming = sorted(self.incoming)
        if self.outgoing:
            return f"{incoming}&&{sorted(self.outgoing)}"
        return f"{incoming}"


def is_voter(config: JointConfig, node_id: int) -> bool:
    return node_id != NONE and node_id in config.ids()
