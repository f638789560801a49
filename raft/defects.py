"""Planted defects: deliberate bugs that tests switch on to prove the simulator finds them.

Each defect is off unless a test enters `planted(...)`. There is no configuration option,
environment variable or command-line flag that reaches this module: only Python code in the
test process can switch a defect on, and only for the duration of a `with` block.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from contextlib import contextmanager


class Defect(enum.Enum):
    COMMIT_PREVIOUS_TERM_BY_COUNTING = "commit-previous-term-by-counting"
    """Commit an entry from an earlier term because a quorum holds it (Raft's Figure 8)."""
    VOTE_WITHOUT_LOG_CHECK = "vote-without-log-check"
    """Grant votes without checking that the candidate's log is at least as up to date."""
    LEASE_READ_WITHOUT_QUORUM = "lease-read-without-quorum"
    """Serve lease reads whether or not a quorum acknowledged the leader recently."""
    APPEND_WITHOUT_LOG_MATCH = "append-without-log-match"
    """Followers accept appends without checking the term of the preceding entry."""
    READ_INDEX_WITHOUT_QUORUM = "read-index-without-quorum"
    """Answer ReadIndex at once, without a heartbeat round confirming leadership."""


_active: set[Defect] = set()


def active(defect: Defect) -> bool:
    return defect in _active


@contextmanager
def planted(defect: Defect) -> Iterator[None]:
    _active.add(defect)
    try:
        yield
    finally:
        _active.discard(defect)
