"""A restricted user's statements on the leader's pipelined write path: they run over the
pending writes of anyone (replayed unrestricted) through the filtered view, allocate ids
after theirs, carry only their own operations, and are refused as a direct run would be."""

from __future__ import annotations

from pathlib import Path

import pytest

from cluster.pipeline import Overlay, Pending
from cluster.security.privileges import NODES, RELATIONSHIPS, Action, deny, grant, resolve
from cypher import CypherError, Engine
from store.crypto import Keyring
from store.graph import GraphStore

KEK = bytes(range(32))
RESTRICTED = resolve(
    ["r"],
    {
        "r": [
            grant(Action.MATCH, NODES),
            grant(Action.MATCH, RELATIONSHIPS),
            deny(Action.TRAVERSE, NODES, ["Secret"]),
            grant(Action.WRITE),
        ]
    },
)


def test_restricted_statements_over_pending_writes(tmp_path: Path) -> None:
    graph = GraphStore(tmp_path / "graph", Keyring(tmp_path, KEK))
    engine = Engine()
    try:
        graph.apply(engine.run(graph, "CREATE (:Person {name: 'Ada'})").write_set, 1)
        pending_ws = engine.run(
            graph,
            "MATCH (a:Person {name: 'Ada'}) "
            "CREATE (a)-[:KNOWS]->(:Person:Secret {name: 'Bob'}), (:Person {name: 'Cy'})",
        ).write_set
        overlay = Overlay(engine, graph, 1, [Pending(b"p1", pending_ws, index=2)])
        counted, overlaid = overlay.execute(
            "MATCH (n:Person) RETURN collect(n.name) AS names", {}, RESTRICTED
        )
        assert overlaid and counted.rows == [[["Ada", "Cy"]]]
        created, _ = overlay.execute(
            "CREATE (n:Person {name: 'Dee'}) RETURN id(n) AS id", {}, RESTRICTED
        )
        assert created.rows == [[3]]  # after the pending write's nodes 1 and 2
        assert len(created.write_set.operations) == 1
        with pytest.raises(CypherError) as caught:
            overlay.execute("MATCH (n {name: 'Ada'}) DETACH DELETE n", {}, RESTRICTED)
        assert caught.value.status_code == "Neo.ClientError.Security.Forbidden"
        after, _ = overlay.execute("MATCH (n:Person) RETURN count(n) AS n", {}, RESTRICTED)
        assert after.rows == [[3]]  # Ada, Cy and the restricted user's own Dee
        everything, _ = overlay.execute("MATCH (n:Person) RETURN count(n) AS n", {})
        assert everything.rows == [[4]]
        # Applied in order, the writes give the graph the overlay showed.
        graph.apply(pending_ws, 2)
        graph.apply(created.write_set, 3)
        names = engine.run(graph, "MATCH (n:Person) RETURN n.name ORDER BY id(n)").rows
        assert names == [["Ada"], ["Bob"], ["Cy"], ["Dee"]]
    finally:
        graph.close()
