"""A leader's commit notices wait for the next append to the peer (``Node._defer_notice``).

The node here is not started: its Raft core is a stand-in that says leader or not, and its
peer senders only record what they were given. That is the whole surface of the rule: which
messages leave, and when.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from cluster.node import COMMIT_NOTICE_DELAY_S, Node
from raft.types import Entry, Message, MessageType, StateType

TERM = 3


class _Sender:
    def __init__(self) -> None:
        self.sent: list[Message] = []

    def send(self, message: Message) -> None:
        self.sent.append(message)


def _leader(node: Node) -> dict[int, _Sender]:
    """`node` made a leader of term TERM with two recording peers; the peers."""
    node.raw = SimpleNamespace(raft=SimpleNamespace(state=StateType.LEADER, term=TERM))  # type: ignore[assignment]
    senders = {2: _Sender(), 3: _Sender()}
    node._senders = senders  # type: ignore[assignment]
    return senders


def _notice(to: int, commit: int, term: int = TERM) -> Message:
    return Message(type=MessageType.APPEND, to=to, sender=1, term=term, commit=commit)


def _watch_delay(node: Node) -> asyncio.Event:
    """An event set once the held notices went out (or were dropped)."""
    fired = asyncio.Event()
    send_notices = node._send_notices

    def watched() -> None:
        send_notices()
        fired.set()

    node._send_notices = watched  # type: ignore[method-assign]
    return fired


async def _after_the_delay(fired: asyncio.Event) -> None:
    await asyncio.wait_for(fired.wait(), 100 * COMMIT_NOTICE_DELAY_S + 5)


def test_an_append_carrying_the_commit_replaces_the_notice(unstarted_node: Node) -> None:
    node, senders = unstarted_node, _leader(unstarted_node)

    async def scenario() -> None:
        fired = _watch_delay(node)
        node._defer_notice(_notice(2, commit=7))
        node._defer_notice(_notice(3, commit=7))
        assert senders[2].sent == [] and senders[3].sent == []
        append = Message(
            type=MessageType.APPEND,
            to=2,
            sender=1,
            term=TERM,
            commit=7,
            entries=[Entry(term=TERM, index=8, data=b"w")],
        )
        node._send(append)
        await _after_the_delay(fired)

    asyncio.run(scenario())
    assert [m.entries for m in senders[2].sent] == [[Entry(term=TERM, index=8, data=b"w")]]
    assert [m.commit for m in senders[3].sent] == [7]  # nothing replaced it: sent late


def test_a_newer_notice_replaces_an_older_one(unstarted_node: Node) -> None:
    node, senders = unstarted_node, _leader(unstarted_node)

    async def scenario() -> None:
        fired = _watch_delay(node)
        node._defer_notice(_notice(2, commit=7))
        node._defer_notice(_notice(2, commit=9))
        await _after_the_delay(fired)

    asyncio.run(scenario())
    assert [m.commit for m in senders[2].sent] == [9]


def test_a_heartbeat_behind_the_commit_does_not_replace_it(unstarted_node: Node) -> None:
    node, senders = unstarted_node, _leader(unstarted_node)

    async def scenario() -> None:
        fired = _watch_delay(node)
        node._defer_notice(_notice(2, commit=9))
        node._send(Message(type=MessageType.HEARTBEAT, to=2, sender=1, term=TERM, commit=5))
        await _after_the_delay(fired)

    asyncio.run(scenario())
    assert [(m.type, m.commit) for m in senders[2].sent] == [
        (MessageType.HEARTBEAT, 5),
        (MessageType.APPEND, 9),
    ]


@pytest.mark.parametrize("change", ["stepped down", "new term"])
def test_a_leader_that_lost_its_term_sends_no_held_notice(
    unstarted_node: Node, change: str
) -> None:
    node, senders = unstarted_node, _leader(unstarted_node)

    async def scenario() -> None:
        fired = _watch_delay(node)
        node._defer_notice(_notice(2, commit=9))
        assert node.raw is not None
        if change == "stepped down":
            node.raw.raft.state = StateType.FOLLOWER
        else:
            node.raw.raft.term = TERM + 1
        await _after_the_delay(fired)

    asyncio.run(scenario())
    assert senders[2].sent == []
