"""Which statements run on the event loop (``Node._timed`` and ``INLINE_BUDGET_S``): the
budget is CPU time on the thread that ran the statement, so a statement that was held up
without running (another thread took the CPU and the GIL) stays on the loop, and one that
computes past the budget goes to the reader threads."""

from __future__ import annotations

import threading
import time

from cluster import node as node_module
from cluster.node import Node


def _node() -> Node:
    node = Node.__new__(Node)
    node._quick = {}
    return node


def _compute(cpu_s: float) -> None:
    """Run on this thread for `cpu_s` of its CPU time (bounded: that time passes)."""
    deadline = time.thread_time() + cpu_s
    while time.thread_time() < deadline:
        pass


def test_time_another_thread_runs_meanwhile_does_not_make_a_statement_slow() -> None:
    node = _node()
    started = time.thread_time()
    other = threading.Thread(target=_compute, args=(node_module.INLINE_BUDGET_S * 3,))
    other.start()
    other.join(30)  # held up while the other computes, as under a busy GIL
    node._timed("RETURN 1", started)
    assert node._quick["RETURN 1"] is True


def test_a_statement_that_computes_past_the_budget_is_slow() -> None:
    node = _node()
    started = time.thread_time()
    _compute(node_module.INLINE_BUDGET_S * 2)
    node._timed("MATCH (n) RETURN n", started)
    assert node._quick["MATCH (n) RETURN n"] is False
