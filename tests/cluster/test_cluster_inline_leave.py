"""A statement whose text ran quick once runs inline on the event loop next time; with other
parameters it may be slow (UNWIND range(1, $n)), and the event loop runs Raft: a 4.6 s inline
read on the leader cost it its leadership. Such a statement now leaves the loop after
INLINE_STOP_S and runs again on a reader thread, with the same answer."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from types import SimpleNamespace

from cluster.node import Node
from cluster.statemachine import ReadWriteLock
from cypher import Engine
from store.crypto import PlaintextCipher
from store.graph import GraphStore

QUERY = "UNWIND range(1, $n) AS i RETURN count(*) AS c"


class _RecordingEngine(Engine):
    def __init__(self) -> None:
        super().__init__()
        self.threads: list[str] = []

    def run(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        self.threads.append(threading.current_thread().name)
        return super().run(*args, **kwargs)


def test_a_quick_text_that_turns_slow_leaves_the_event_loop(
    unstarted_node: Node, tmp_path: Path
) -> None:
    engine = _RecordingEngine()
    unstarted_node.engine = engine
    graph = GraphStore(tmp_path / "graph", PlaintextCipher())
    unstarted_node.sm = SimpleNamespace(graph=graph, lock=ReadWriteLock())  # type: ignore[assignment]

    async def scenario() -> None:
        loop = threading.current_thread().name
        # As after a quick run (timed by thread CPU, which a loaded machine may stretch).
        unstarted_node._quick[QUERY] = True
        assert (await unstarted_node._execute(QUERY, {"n": 1}))[0].rows == [[1]]
        assert engine.threads[-1] == loop
        unstarted_node._quick[QUERY] = True
        # Many times INLINE_STOP_S of work with the same text: started inline, left the loop.
        n = 2_000_000
        assert (await unstarted_node._execute(QUERY, {"n": n}))[0].rows == [[n]]
        assert engine.threads[-2] == loop and engine.threads[-1].startswith("reader")
        assert not unstarted_node._quick[QUERY]

    try:
        asyncio.run(scenario())
    finally:
        unstarted_node._readers.shutdown()
        graph.close()
