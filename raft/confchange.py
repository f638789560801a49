"""Membership changes: compute the next configuration and progress map from a ConfChange.

Pure: takes the current configuration and returns a new one (or raises ConfChangeError),
never mutating the tracker it was given. Follows etcd's confchange.Changer.
"""

from __future__ import annotations

from raft.errors import ConfChangeError
from raft.progress import Inflights, Progress
from raft.quorum import JointConfig
from raft.tracker import ProgressTracker, TrackerConfig
from raft.types import ConfChangeSingle, ConfChangeType, ConfState

ProgressMap = dict[int, Progress]


class Changer:
    def __init__(self, tracker: ProgressTracker, last_index: int) -> None:
        self.tracker = tracker
        self.last_index = last_index

    def _snapshot(self) -> tuple[TrackerConfig, ProgressMap]:
        # Copies, so that a refused change leaves the tracker exactly as it was.
        progress = {node: pr.clone() for node, pr in self.tracker.progress.items()}
        return self.tracker.config.copy(), progress

    def enter_joint(
        self, auto_leave: bool, changes: tuple[ConfChangeSingle, ...]
    ) -> tuple[TrackerConfig, ProgressMap]:
        config, progress = self._snapshot()
        if config.voters.is_joint():
            raise ConfChangeError("configuration is already joint")
        if not config.voters.incoming:
            raise ConfChangeError("cannot make a zero-voter configuration joint")
        config.voters = JointConfig(config.voters.incoming, config.voters.incoming)
        self._apply(config, progress, changes)
        config.auto_leave = auto_leave
        _check_invariants(config, progress)
        return config, progress

    def leave_joint(self) -> tuple[TrackerConfig, ProgressMap]:
        config, progress = self._snapshot()
        if not config.voters.is_joint():
            raise ConfChangeError("cannot leave a non-joint configuration")
        if not config.voters.outgoing:
            raise ConfChangeError("configuration is not joint")
        learners = set(config.learners)
        for node in config.learners_next:
            learners.add(node)
            progress[node].is_learner = True
        config.learners = frozenset(learners)
        config.learners_next = frozenset()
        for node in config.voters.outgoing:
            if node not in config.voters.incoming and node not in config.learners:
                del progress[node]
        config.voters = JointConfig(config.voters.incoming)
        config.auto_leave = False
        _check_invariants(config, progress)
        return config, progress

    def simple(self, changes: tuple[ConfChangeSingle, ...]) -> tuple[TrackerConfig, ProgressMap]:
        config, progress = self._snapshot()
        if config.voters.is_joint():
            raise ConfChangeError("cannot apply a simple change in a joint configuration")
        before = config.voters.incoming
        self._apply(config, progress, changes)
        if len(before ^ config.voters.incoming) > 1:
            raise ConfChangeError("more than one voter changed without entering joint config")
        _check_invariants(config, progress)
        return config, progress

    def _apply(
        self,
        config: TrackerConfig,
        progress: ProgressMap,
        changes: tuple[ConfChangeSingle, ...],
    ) -> None:
        for change in changes:
            if change.node_id == 0:
                continue  # etcd's convention: a change for node 0 is a no-op
            if change.type is ConfChangeType.ADD_VOTER:
                self._make_voter(config, progress, change.node_id)
            elif change.type is ConfChangeType.ADD_LEARNER:
                self._make_learner(config, progress, change.node_id)
            else:
                _remove(config, progress, change.node_id)
        if not config.voters.incoming:
            raise ConfChangeError("removed all voters")

    def _init_progress(
        self, config: TrackerConfig, progress: ProgressMap, node: int, is_learner: bool
    ) -> None:
        if is_learner:
            config.learners = config.learners | {node}
        else:
            config.voters = JointConfig(config.voters.incoming | {node}, config.voters.outgoing)
        progress[node] = Progress(
            next_index=max(self.last_index, 1),
            inflights=Inflights(self.tracker.max_inflight_msgs, self.tracker.max_inflight_bytes),
            is_learner=is_learner,
        )

    def _make_voter(self, config: TrackerConfig, progress: ProgressMap, node: int) -> None:
        pr = progress.get(node)
        if pr is None:
            self._init_progress(config, progress, node, is_learner=False)
            return
        pr.is_learner = False
        config.learners = config.learners - {node}
        config.learners_next = config.learners_next - {node}
        config.voters = JointConfig(config.voters.incoming | {node}, config.voters.outgoing)

    def _make_learner(self, config: TrackerConfig, progress: ProgressMap, node: int) -> None:
        pr = progress.get(node)
        if pr is None:
            self._init_progress(config, progress, node, is_learner=True)
            return
        if pr.is_learner:
            return
        _remove(config, progress, node)
        progress[node] = pr  # keep the live progress of a demoted voter
        if node in config.voters.outgoing:
            # Still a voter in the outgoing half: becomes a learner when the joint state ends.
            config.learners_next = config.learners_next | {node}
        else:
            pr.is_learner = True
            config.learners = config.learners | {node}


def _remove(config: TrackerConfig, progress: ProgressMap, node: int) -> None:
    if node not in progress:
        return
    config.voters = JointConfig(config.voters.incoming - {node}, config.voters.outgoing)
    config.learners = config.learners - {node}
    config.learners_next = config.learners_next - {node}
    if node not in config.voters.outgoing:
        del progress[node]


def _check_invariants(config: TrackerConfig, progress: ProgressMap) -> None:
    for node in config.voters.ids() | config.learners | config.learners_next:
        if node not in progress:
            raise ConfChangeError(f"no progress for member {node}")
    for node in config.learners_next:
        if node not in config.voters.outgoing:
            raise ConfChangeError(f"{node} is in learners_next but not an outgoing voter")
        if progress[node].is_learner:
            raise ConfChangeError(f"{node} is in learners_next but already a learner")
    for node in config.learners:
        if node in config.voters.ids():
            raise ConfChangeError(f"{node} is both learner and voter")
        if not progress[node].is_learner:
            raise ConfChangeError(f"{node} is a learner whose progress says voter")
    if not config.voters.is_joint() and (config.learners_next or config.auto_leave):
        raise ConfChangeError("joint-only state in a non-joint configuration")


def restore(
    conf_state: ConfState, last_index: int, max_inflight_msgs: int, max_inflight_bytes: int
) -> tuple[TrackerConfig, ProgressMap]:
    """The configuration and fresh progress described by a ConfState (boot or snapshot)."""
    config = TrackerConfig(
        voters=JointConfig(frozenset(conf_state.voters), frozenset(conf_state.voters_outgoing)),
        learners=frozenset(conf_state.learners),
        learners_next=frozenset(conf_state.learners_next),
        auto_leave=conf_state.auto_leave,
    )
    progress: ProgressMap = {}
    for node in config.voters.ids() | config.learners:
        progress[node] = Progress(
            next_index=max(last_index, 1),
            inflights=Inflights(max_inflight_msgs, max_inflight_bytes),
            is_learner=node in config.learners,
        )
    _check_invariants(config, progress)
    return config, progress
