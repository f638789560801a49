"""A transaction's commit that a leader proposed and then lost its term over is settled, not
failed at once (``Node._propose_settled``).

A retried explicit transaction runs again from its first statement, with nothing to
deduplicate it; so the commit must not tell the client "retry" while its entry may still be
committed by the next leader. The node here is not started: the test plays the Raft loop's
part (the index the proposal got, the step-down, what gets applied) and watches the answer.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from cluster import errors
from cluster.errors import QuiverError
from cluster.node import Node
from cluster.statemachine import Decision, Envelope, Outcome
from raft.types import NONE, Entry, Snapshot, SnapshotMetadata, StateType

INDEX = 7


def _leader(node: Node) -> Node:
    """`node` as a leader of term 2 that applied everything before INDEX."""
    node.raw = SimpleNamespace(  # type: ignore[assignment]
        raft=SimpleNamespace(state=StateType.LEADER, term=2, lead=1), leader=1
    )
    node.applied_index = INDEX - 1
    return node


async def _commit_then(node: Node, after_step_down: object) -> Outcome:
    """Propose a commit, give it its index as the Raft loop would, step down, then let
    ``after_step_down`` happen; the commit's answer."""
    envelope = Envelope("", 0, INDEX - 1, node._proposal_id(), {}, b"")
    commit = asyncio.create_task(node._propose_settled(envelope))
    await node._inbox.get()  # the proposal reached the Raft loop ...
    node._settling[envelope.proposal_id] = INDEX  # ... which put it at INDEX
    assert node.raw is not None
    node.raw.raft.state, node.raw.raft.term, node.raw.raft.lead = StateType.FOLLOWER, 3, NONE
    node.raw.leader = NONE
    node._on_soft_state(was_leader=True)
    assert envelope.proposal_id in node._proposals, "a lost term failed the commit at once"
    if after_step_down == "applied":
        node._applied(
            Entry(term=2, index=INDEX),
            Outcome(INDEX, Decision.APPLY, proposal_id=envelope.proposal_id),
        )
    elif after_step_down == "overwritten":
        node._applied(Entry(term=3, index=INDEX), Outcome(INDEX, Decision.APPLY))
    else:
        metadata = SnapshotMetadata(index=INDEX + 5, term=3)
        node._installed(Snapshot(data=b"", metadata=metadata))
    return await asyncio.wait_for(commit, 5)


def test_a_commit_the_next_leader_committed_succeeds(unstarted_node: Node) -> None:
    outcome = asyncio.run(_commit_then(_leader(unstarted_node), "applied"))
    assert outcome.index == INDEX


def test_a_commit_overwritten_by_the_next_leader_is_safe_to_retry(unstarted_node: Node) -> None:
    with pytest.raises(QuiverError) as raised:
        asyncio.run(_commit_then(_leader(unstarted_node), "overwritten"))
    assert raised.value.code == errors.NOT_A_LEADER


def test_a_commit_passed_by_a_snapshot_is_unknown(unstarted_node: Node) -> None:
    with pytest.raises(QuiverError) as raised:
        asyncio.run(_commit_then(_leader(unstarted_node), "snapshot"))
    assert raised.value.code == errors.COMMIT_OUTCOME_UNKNOWN
