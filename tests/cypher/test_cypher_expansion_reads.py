"""An expansion that needs only where a relationship leads reads no relationship record
(``GraphView.relationship_ends``), in a statement, in a transaction over its own writes and
through a restricted user's view; one that reads a relationship's properties still does."""

from __future__ import annotations

from collections import Counter
from typing import Any

from cypher.engine import Engine
from store.memory import MemoryGraph

FRIEND_OF_FRIEND = (
    "MATCH (p:Person {id: $id})-[:KNOWS]->()-[:KNOWS]->(fof) RETURN fof.id AS id ORDER BY id"
)


class CountingView:
    """A graph view that counts the calls that read relationship records."""

    def __init__(self, base: MemoryGraph) -> None:
        self.base = base
        self.calls: Counter[str] = Counter()

    def relationships(self, *args: Any, **kwargs: Any) -> Any:
        self.calls["relationships"] += 1
        return self.base.relationships(*args, **kwargs)

    def relationship(self, rel_id: int) -> Any:
        self.calls["relationship"] += 1
        return self.base.relationship(rel_id)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.base, name)


def _graph(engine: Engine) -> MemoryGraph:
    graph = MemoryGraph()
    result = engine.run(
        graph,
        "CREATE (a:Person {id: 1}), (b:Person {id: 2}), (c:Person {id: 3}), (d:Person {id: 4}), "
        "(a)-[:KNOWS {since: 2001}]->(b), (b)-[:KNOWS {since: 2002}]->(c), "
        "(b)-[:KNOWS {since: 2003}]->(d), (a)-[:LIKES]->(c)",
    )
    graph.apply(result.write_set)
    return graph


def test_an_expansion_without_relationship_properties_reads_no_relationship_record() -> None:
    engine = Engine()
    view = CountingView(_graph(engine))
    result = engine.run(view, FRIEND_OF_FRIEND, {"id": 1})  # type: ignore[arg-type]
    assert result.rows == [[3], [4]]
    assert view.calls == Counter()


def test_a_transaction_expanding_over_its_own_writes_sees_them_without_reading_records() -> None:
    engine = Engine()
    view = CountingView(_graph(engine))
    transaction = engine.begin(view)  # type: ignore[arg-type]
    transaction.run("MATCH (d:Person {id: 4}) CREATE (d)<-[:KNOWS]-(:Person {id: 5})", {})
    transaction.run("MATCH (:Person {id: 2})-[r:KNOWS]->(:Person {id: 3}) DELETE r", {})
    result = transaction.run(FRIEND_OF_FRIEND, {"id": 1})
    assert result.rows == [[4]]
    assert view.calls["relationships"] == 0


def test_reading_a_relationships_properties_still_reads_its_record() -> None:
    engine = Engine()
    view = CountingView(_graph(engine))
    result = engine.run(
        view,  # type: ignore[arg-type]
        "MATCH (:Person {id: 1})-[:KNOWS]->()-[r:KNOWS]->() RETURN r.since AS since ORDER BY since",
    )
    assert result.rows == [[2002], [2003]]
    assert view.calls["relationship"] > 0


def test_a_restricted_user_expands_only_to_what_they_may_traverse_reading_no_record() -> None:
    from cluster.security.privileges import NODES, RELATIONSHIPS, Action, deny, grant, resolve

    engine = Engine()
    graph = _graph(engine)
    graph.apply(engine.run(graph, "MATCH (d:Person {id: 4}) SET d:Secret").write_set)
    view = CountingView(graph)
    hide_secret = resolve(
        ("custom",),
        {
            "custom": (
                grant(Action.MATCH, NODES),
                grant(Action.MATCH, RELATIONSHIPS),
                deny(Action.TRAVERSE, NODES, ["Secret"]),
            )
        },
    )
    result = engine.run(view, FRIEND_OF_FRIEND, {"id": 1}, hide_secret)  # type: ignore[arg-type]
    assert result.rows == [[3]]
    assert view.calls["relationships"] == 0
