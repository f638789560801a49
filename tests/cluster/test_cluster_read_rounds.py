"""How a leader batches linearizable reads into read-index rounds (``Node._read_index``), on
the node's own methods with the Raft loop replaced by the test: a reader with no round out
starts one at once; readers that come while a round is out are never answered by it (its
index may predate a write they must see) but share the next round, which starts after a
pause no longer than the round before and ``READ_ROUND_GATHER_S``, so that those who come
during the pause share it too."""

from __future__ import annotations

import asyncio
import itertools

from cluster import node as node_module
from cluster.node import Node

WAIT_S = 5.0


def _node() -> Node:
    node = Node.__new__(Node)
    node._inbox = asyncio.Queue()
    node._reads = {}
    node._read_waiters = []
    node._read_round = False
    node._id_prefix = b"test"
    node._id_counter = itertools.count()
    return node


async def _round(node: Node) -> bytes:
    """The context of the next read-index request the node hands to its Raft loop."""
    item = await asyncio.wait_for(node._inbox.get(), WAIT_S)
    assert isinstance(item, node_module._ReadIndex)
    return item.context


def test_readers_during_a_round_share_the_next_one_after_a_bounded_pause() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        node = _node()
        first = asyncio.create_task(node._read_index())
        await asyncio.sleep(0)
        context = node._inbox.get_nowait()  # at once: no round was out
        assert isinstance(context, node_module._ReadIndex)
        later = [asyncio.create_task(node._read_index()) for _ in range(3)]
        await asyncio.sleep(0)
        assert node._inbox.empty()  # a round is out: they wait for the next
        await asyncio.sleep(0.01)  # the round takes a while
        ended = loop.time()
        node._reads[context.context].set_result(7)
        # Right after the round ended, before the next one left: it joins that one too.
        later.append(asyncio.create_task(node._read_index()))
        assert await asyncio.wait_for(first, WAIT_S) == 7
        second = await _round(node)
        assert loop.time() - ended <= node_module.READ_ROUND_GATHER_S + 1.0
        assert not any(reader.done() for reader in later)  # not answered by the first round
        node._reads[second].set_result(9)
        assert [await asyncio.wait_for(r, WAIT_S) for r in later] == [9, 9, 9, 9]
        assert node._inbox.empty()  # one round for the four
        assert not node._read_round

        # Nobody waiting when a round ends: the next reader starts a round at once.
        alone = asyncio.create_task(node._read_index())
        await asyncio.sleep(0)
        third = node._inbox.get_nowait()
        assert isinstance(third, node_module._ReadIndex)
        node._reads[third.context].set_result(11)
        assert await asyncio.wait_for(alone, WAIT_S) == 11

    asyncio.run(scenario())
