"""Which statements run on the event loop (``Node._timed`` and ``INLINE_BUDGET_S``): the
budget is CPU time on the thread that ran the statement, so a statement that was held up
without running (the GIL taken from it under load, here a blocking wait) stays on the loop,
and one that computes past the budget goes to the reader threads."""

from __future__ import annotations

import time

from cluster import node as node_module
from cluster.node import Node


def _node() -> Node:
    node = Node.__new__(Node)
    node._quick = {}
    return node


def test_time_spent_not_running_does_not_make_a_statement_slow() -> None:
    node = _node()
    started = time.thread_time()
    time.sleep(node_module.INLINE_BUDGET_S * 3)  # held up, not running: the behaviour tested
    node._timed("RETURN 1", started)
    assert node._quick["RETURN 1"] is True


def test_a_statement_that_computes_past_the_budget_is_slow() -> None:
    node = _node()
    started = time.thread_time()
    deadline = started + node_module.INLINE_BUDGET_S * 2
    while time.thread_time() < deadline:  # bounded: this thread's CPU time passes it
        pass
    node._timed("MATCH (n) RETURN n", started)
    assert node._quick["MATCH (n) RETURN n"] is False
