"""Pending ReadIndex requests on the leader, released once a quorum confirms leadership.

Owns the queue of read contexts and their acknowledgements; builds no messages.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from raft.types import Message


class ReadOnlyOption(enum.Enum):
    SAFE = "safe"
    """Every read waits for a heartbeat round acknowledged by a quorum."""
    LEASE_BASED = "lease-based"
    """Reads are served from a valid leader lease when there is one, else as SAFE."""


@dataclass(slots=True)
class ReadIndexStatus:
    request: Message
    index: int
    acks: dict[int, bool] = field(default_factory=dict)


class ReadOnly:
    __slots__ = ("max_pending", "option", "pending", "queue")

    def __init__(self, option: ReadOnlyOption, max_pending: int) -> None:
        self.option = option
        self.max_pending = max_pending
        self.pending: dict[bytes, ReadIndexStatus] = {}
        self.queue: list[bytes] = []

    def add_request(self, index: int, request: Message) -> bool:
        """Queue a read at `index`; False when the queue is full (the read is dropped)."""
        ctx = request.entries[0].data
        if ctx in self.pending:
            return True
        if len(self.queue) >= self.max_pending:
            return False
        self.pending[ctx] = ReadIndexStatus(request=request, index=index)
        self.queue.append(ctx)
        return True

    def recv_ack(self, node: int, ctx: bytes) -> dict[int, bool] | None:
        status = self.pending.get(ctx)
        if status is None:
            return None
        status.acks[node] = True
        return status.acks

    def advance(self, ctx: bytes) -> list[ReadIndexStatus]:
        """Release the read with `ctx` and every read queued before it."""
        if ctx not in self.pending:
            return []
        position = self.queue.index(ctx)
        released = [self.pending.pop(c) for c in self.queue[: position + 1]]
        del self.queue[: position + 1]
        return released

    def last_pending_request_ctx(self) -> bytes:
        return self.queue[-1] if self.queue else b""

    def reset(self) -> None:
        self.pending.clear()
        self.queue.clear()
