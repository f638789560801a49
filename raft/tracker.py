"""The leader's view of the cluster: the active configuration and a Progress per member.

It answers quorum questions (what is committed, who won the vote, is a quorum active, since
when does a quorum acknowledge our leadership) and builds nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from raft.progress import Progress
from raft.quorum import JointConfig, VoteResult, majority
from raft.types import ConfState


@dataclass(slots=True)
class TrackerConfig:
    voters: JointConfig = field(default_factory=lambda: JointConfig(frozenset()))
    learners: frozenset[int] = frozenset()
    # Learners that are still voters in the outgoing config; they become learners on leaving.
    learners_next: frozenset[int] = frozenset()
    auto_leave: bool = False

    def copy(self) -> TrackerConfig:
        return TrackerConfig(
            voters=JointConfig(self.voters.incoming, self.voters.outgoing),
            learners=self.learners,
            learners_next=self.learners_next,
            auto_leave=self.auto_leave,
        )

    def __repr__(self) -> str:
        text = f"voters={self.voters!r}"
        if self.learners:
            text += f" learners={sorted(self.learners)}"
        if self.learners_next:
            text += f" learners_next={sorted(self.learners_next)}"
        if self.auto_leave:
            text += " autoleave"
        return text


class ProgressTracker:
    __slots__ = ("config", "max_inflight_bytes", "max_inflight_msgs", "progress", "votes")

    def __init__(self, max_inflight_msgs: int, max_inflight_bytes: int) -> None:
        self.config = TrackerConfig()
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.max_inflight_msgs = max_inflight_msgs
        self.max_inflight_bytes = max_inflight_bytes

    def conf_state(self) -> ConfState:
        return ConfState(
            voters=tuple(sorted(self.config.voters.incoming)),
            learners=tuple(sorted(self.config.learners)),
            voters_outgoing=tuple(sorted(self.config.voters.outgoing)),
            learners_next=tuple(sorted(self.config.learners_next)),
            auto_leave=self.config.auto_leave,
        )

    def is_singleton(self) -> bool:
        return len(self.config.voters.incoming) == 1 and not self.config.voters.outgoing

    def committed(self) -> int:
        return self.config.voters.committed_index(
            {node: pr.match for node, pr in self.progress.items()}
        )

    def quorum_lease_tick(self, own_id: int, now: int) -> int:
        """The logical time from which a quorum has acknowledged this leader."""
        acked = {node: pr.lease_ack_tick for node, pr in self.progress.items()}
        acked[own_id] = now
        return self.config.voters.committed_index(acked)

    def read_round_voters(self, own_id: int) -> list[int] | None:
        """The followers a read round asks: the fewest that make a quorum with `own_id`,
        chosen by who acknowledged the newest message and, at the same tick, who did so
        first (then by id). In id order.

        None when there is no sound choice and every voter must be asked: a joint config
        (two quorums to satisfy), a leader that is no voter of its config, or too few
        followers that have answered at all in this term.

        Ranking by "answered last" would be wrong: a slow follower's answer to a message
        sent to every peer always arrives last, so it would keep winning.
        """
        voters = self.config.voters
        if voters.is_joint() or own_id not in voters.incoming:
            return None
        needed = majority(len(voters.incoming)) - 1
        answered = [
            node
            for node in voters.incoming
            if node != own_id and self.progress[node].lease_ack_seq > 0
        ]
        if len(answered) < needed:
            return None
        answered.sort(
            key=lambda node: (
                -self.progress[node].lease_ack_tick,
                self.progress[node].lease_ack_seq,
                node,
            )
        )
        return sorted(answered[:needed])

    def visit(self, visitor: Callable[[int, Progress], None]) -> None:
        """Call `visitor` for each member in id order (determinism matters to the simulator)."""
        for node in sorted(self.progress):
            visitor(node, self.progress[node])

    def quorum_active(self) -> bool:
        votes = {node: pr.recent_active for node, pr in self.progress.items() if not pr.is_learner}
        return self.config.voters.vote_result(votes) is VoteResult.WON

    def voter_nodes(self) -> list[int]:
        return sorted(self.config.voters.ids())

    def learner_nodes(self) -> list[int]:
        return sorted(self.config.learners)

    def reset_votes(self) -> None:
        self.votes = {}

    def record_vote(self, node: int, granted: bool) -> None:
        self.votes.setdefault(node, granted)

    def tally_votes(self) -> tuple[int, int, VoteResult]:
        granted = rejected = 0
        for node, pr in self.progress.items():
            if pr.is_learner:
                continue
            vote = self.votes.get(node)
            if vote is None:
                continue
            if vote:
                granted += 1
            else:
                rejected += 1
        return granted, rejected, self.config.voters.vote_result(self.votes)
