"""A hop's target node is checked against its label expression (`:A|B`, `:!A`) whether or not
it is named: the expansion's fast path for an unconstrained anonymous target must not take a
node pattern that only a label expression constrains for an unconstrained one."""

from __future__ import annotations

import pytest

from cypher.engine import Engine
from store.memory import MemoryGraph


@pytest.fixture
def graph() -> MemoryGraph:
    engine = Engine()
    graph = MemoryGraph()
    result = engine.run(
        graph, "CREATE (s:S)-[:R]->(:A), (s)-[:R]->(:B), (s)-[:R]->(:C), (:T)-[:R]->(s)"
    )
    graph.apply(result.write_set)
    return graph


@pytest.mark.parametrize(
    ("pattern", "count"),
    [
        ("(:S)-[:R]->(:A|B)", 2),
        ("(:S)-[:R]->(x:A|B)", 2),
        ("(:S)-[:R]->(:!A)", 2),
        ("(:S)-[:R]->(x:!A)", 2),
        ("(:A|C)<-[:R]-(:S)", 2),
        ("(:S)<-[:R]-(:A|T)", 1),
        ("(:S)-[:R]->()-[:R]->(:A|B)", 0),
        ("(:T)-[:R]->()-[:R]->(:A|B)", 2),
    ],
)
def test_a_hops_target_matches_only_nodes_its_label_expression_allows(
    graph: MemoryGraph, pattern: str, count: int
) -> None:
    result = Engine().run(graph, f"MATCH {pattern} RETURN count(*) AS n")
    assert result.rows == [[count]]
