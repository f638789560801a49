"""What the leader knows of each follower: match and next index, replication state, and the
window of in-flight appends (flow control). Owned by the tracker; no messages are built here.
"""

from __future__ import annotations

import enum
from collections import deque


class ProgressState(enum.Enum):
    PROBE = "probe"
    """One append at a time until we find where the follower's log matches ours."""
    REPLICATE = "replicate"
    """Appends are pipelined, bounded by the in-flight window."""
    SNAPSHOT = "snapshot"
    """A snapshot is on its way; nothing else is sent until it is acknowledged or fails."""


class Inflights:
    """A bounded window of in-flight appends, by last index and byte size."""

    __slots__ = ("_bytes", "_queue", "max_bytes", "max_count")

    def __init__(self, max_count: int, max_bytes: int) -> None:
        assert max_count > 0
        self.max_count = max_count
        self.max_bytes = max_bytes
        self._queue: deque[tuple[int, int]] = deque()
        self._bytes = 0

    def add(self, last_index: int, size: int) -> None:
        assert not self.full(), "in-flight window overflow"
        self._queue.append((last_index, size))
        self._bytes += size

    def free_le(self, index: int) -> None:
        """Acknowledge every append whose last entry is at or below `index`."""
        while self._queue and self._queue[0][0] <= index:
            _, size = self._queue.popleft()
            self._bytes -= size

    def full(self) -> bool:
        return len(self._queue) >= self.max_count or self._bytes >= self.max_bytes

    def count(self) -> int:
        return len(self._queue)

    def reset(self) -> None:
        self._queue.clear()
        self._bytes = 0


class Progress:
    __slots__ = (
        "inflights",
        "is_learner",
        "lease_ack_seq",
        "lease_ack_tick",
        "match",
        "msg_app_flow_paused",
        "next",
        "pending_snapshot",
        "recent_active",
        "state",
    )

    def __init__(
        self, next_index: int, inflights: Inflights, is_learner: bool = False, match: int = 0
    ) -> None:
        self.match = match
        self.next = next_index
        self.state = ProgressState.PROBE
        self.pending_snapshot = 0
        # Set when the leader heard from this peer since the last check-quorum.
        self.recent_active = True
        # PROBE: one append is outstanding. REPLICATE: the in-flight window is full.
        # Either way: wait for an answer or the next heartbeat response.
        self.msg_app_flow_paused = False
        self.inflights = inflights
        self.is_learner = is_learner
        # The leader's logical clock when it sent the newest message this peer acknowledged.
        self.lease_ack_tick = 0
        # The leader's response sequence number (Raft.response_seq) when this peer first
        # acknowledged a message sent at lease_ack_tick: of two peers at the same tick, the
        # lower answered first. 0: no answer since this Progress was made (this term).
        self.lease_ack_seq = 0

    def __repr__(self) -> str:
        return (
            f"Progress({self.state.value} match={self.match} next={self.next}"
            f"{' learner' if self.is_learner else ''}"
            f"{' paused' if self.is_paused() else ''} inflight={self.inflights.count()})"
        )

    def clone(self) -> Progress:
        """A shallow copy (the in-flight window is shared), for computing a new config."""
        copy = Progress.__new__(Progress)
        for name in Progress.__slots__:
            setattr(copy, name, getattr(self, name))
        return copy

    def _reset_state(self, state: ProgressState) -> None:
        self.msg_app_flow_paused = False
        self.pending_snapshot = 0
        self.state = state
        self.inflights.reset()

    def become_probe(self) -> None:
        if self.state is ProgressState.SNAPSHOT:
            pending = self.pending_snapshot
            self._reset_state(ProgressState.PROBE)
            self.next = max(self.match + 1, pending + 1)
        else:
            self._reset_state(ProgressState.PROBE)
            self.next = self.match + 1

    def become_replicate(self) -> None:
        self._reset_state(ProgressState.REPLICATE)
        self.next = self.match + 1

    def become_snapshot(self, snapshot_index: int) -> None:
        self._reset_state(ProgressState.SNAPSHOT)
        self.pending_snapshot = snapshot_index

    def sent_entries(self, last_index: int, size: int) -> None:
        """An append carrying entries up to `last_index` was sent."""
        if self.state is ProgressState.REPLICATE:
            self.next = last_index + 1
            self.inflights.add(last_index, size)
            self.msg_app_flow_paused = self.inflights.full()
        elif self.state is ProgressState.PROBE:
            self.msg_app_flow_paused = True

    def maybe_update(self, index: int) -> bool:
        """The follower acknowledged entries up to `index`; False if that is old news."""
        updated = False
        if self.match < index:
            self.match = index
            updated = True
            self.msg_app_flow_paused = False
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decrease_to(self, rejected: int, match_hint: int) -> bool:
        """The follower rejected an append at `rejected`; back off to `match_hint` + 1."""
        if self.state is ProgressState.REPLICATE:
            # A stale rejection: we already know the follower matches at or past it.
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        # In PROBE (or SNAPSHOT) only the rejection of our latest probe counts.
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1)
        self.msg_app_flow_paused = False
        return True

    def is_paused(self) -> bool:
        """Whether appends to this peer wait (for an answer, a heartbeat response, a snapshot).

        In REPLICATE the flag is set when the window fills and cleared by any answer or
        heartbeat response; if the window is still full then, only an empty append goes out,
        which is enough to learn that the in-flight ones were lost.
        """
        if self.state is ProgressState.SNAPSHOT:
            return True
        return self.msg_app_flow_paused
