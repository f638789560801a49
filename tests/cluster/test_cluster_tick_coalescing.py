"""While the Raft loop is held up (an apply of a large write set takes seconds on every
node), the ticker queues one tick, not one per interval: a burst of queued ticks ran the
election timers through the stall at once and started elections after a 200K-node write."""

from __future__ import annotations

import asyncio

from cluster.node import Node, _Tick


def test_ticks_do_not_pile_up_while_the_raft_loop_is_held_up(unstarted_node: Node) -> None:
    interval_s = unstarted_node.config.tick_ms / 1000

    async def scenario() -> int:
        ticker = asyncio.create_task(unstarted_node._ticker())
        try:
            # Nobody steps the inbox for twenty intervals, as during a long apply.
            await asyncio.sleep(20 * interval_s)
        finally:
            ticker.cancel()
            await asyncio.gather(ticker, return_exceptions=True)
        return unstarted_node._inbox.qsize()

    assert asyncio.run(scenario()) == 1
    assert isinstance(unstarted_node._inbox.get_nowait(), _Tick)
