"""The differential oracle of issue #7: for random small graphs and random privilege sets
(denied labels, denied relationship types, a property-based DENY, an unreadable property,
grants that leave unlabelled nodes out), a restricted user's results for a fixed family of
queries equal an unrestricted user's results on a copy of the graph from which the
invisible elements were physically removed. The copy is computed from the rules directly,
not through the privilege code under test."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cluster.security.privileges import (
    NODES,
    RELATIONSHIPS,
    Action,
    Condition,
    deny,
    grant,
    resolve,
)
from cypher import Engine
from cypher.txstate import TxState, TxStateView
from store.memory import MemoryGraph
from store.writeset import CreateIndex, CreateNode, CreateRelationship, WriteSet

LABELS = ("A", "B", "C")
TYPES = ("X", "Y")
QUERIES = (
    "MATCH (n) RETURN count(n)",
    "MATCH (n:A) RETURN count(*)",
    "MATCH ()-[r]->() RETURN count(r)",
    "MATCH (n) RETURN id(n), labels(n), properties(n) ORDER BY id(n)",
    "MATCH (a)-[r]->(b) RETURN id(a), type(r), id(b), r.weight ORDER BY id(r)",
    "MATCH (a)-[*1..3]->(b) RETURN id(a), id(b), count(*) ORDER BY id(a), id(b)",
    "MATCH p = shortestPath((a)-[*..4]-(b)) WHERE id(a) < id(b)"
    " RETURN id(a), id(b), length(p) ORDER BY id(a), id(b)",
    "MATCH (n:A {v: 1}) RETURN id(n)",
    "MATCH (n:A) WHERE n.v >= 1 RETURN id(n)",
    "MATCH (n) RETURN n.v, count(*), collect(n.w) ORDER BY n.v",
    "MATCH (n) WHERE n.w IS NOT NULL RETURN count(n), collect(keys(n))",
    "MATCH (n) RETURN id(n), COUNT { (n)--() } ORDER BY id(n)",
    "CALL db.labels() YIELD label RETURN label",
    "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType",
    "CALL db.propertyKeys() YIELD propertyKey RETURN propertyKey",
    # Unordered on purpose: where the pattern starts decides the order of its rows.
    "MATCH (a:A)-->(b:B) RETURN id(a), id(b)",
    "MATCH (n) OPTIONAL MATCH (n)-->(m) RETURN id(n), n {.*}, collect(id(m)),"
    " [(n)<--(k) | k.w] ORDER BY id(n)",
)


@dataclass(frozen=True)
class Rules:
    denied_labels: frozenset[str]
    denied_types: frozenset[str]
    hide_above: int | None
    """DENY TRAVERSE ON NODES * FOR (n) WHERE n.v > hide_above."""
    hide_w_of_b: bool
    """DENY READ {w} ON NODES B."""
    labelled_only: bool
    """GRANT MATCH on the labels only, not NODES *: unlabelled nodes are hidden."""

    def privileges(self):
        privileges = [grant(Action.MATCH, RELATIONSHIPS)]
        if self.labelled_only:
            privileges.append(grant(Action.MATCH, NODES, LABELS))
        else:
            privileges.append(grant(Action.MATCH, NODES))
        if self.denied_labels:
            privileges.append(deny(Action.TRAVERSE, NODES, self.denied_labels))
        if self.denied_types:
            privileges.append(deny(Action.TRAVERSE, RELATIONSHIPS, self.denied_types))
        if self.hide_above is not None:
            condition = Condition("v", ">", self.hide_above)
            privileges.append(deny(Action.TRAVERSE, NODES, None, condition=condition))
        if self.hide_w_of_b:
            privileges.append(deny(Action.READ, NODES, ["B"], ["w"]))
        return resolve(["restricted"], {"restricted": privileges})

    def node_visible(self, labels: tuple[str, ...], props: dict[str, object]) -> bool:
        if self.labelled_only and not labels:
            return False
        if self.denied_labels & set(labels):
            return False
        value = props.get("v")
        return not (self.hide_above is not None and value is not None and value > self.hide_above)


nodes_strategy = st.lists(
    st.tuples(
        st.sets(st.sampled_from(LABELS), max_size=2).map(lambda s: tuple(sorted(s))),
        st.one_of(st.none(), st.integers(0, 3)),
        st.one_of(st.none(), st.just("x")),
    ),
    min_size=1,
    max_size=7,
)
rules_strategy = st.builds(
    Rules,
    st.frozensets(st.sampled_from(LABELS), max_size=2),
    st.frozensets(st.sampled_from(TYPES), max_size=1),
    st.one_of(st.none(), st.integers(0, 2)),
    st.booleans(),
    st.booleans(),
)


def _props(v: object, w: object) -> dict[str, object]:
    return {k: value for k, value in (("v", v), ("w", w)) if value is not None}


def _valid(nodes, rels):
    return [rel for rel in rels if rel[0] < len(nodes) and rel[1] < len(nodes)]


def _overlay(nodes, rels, committed: int) -> TxStateView:
    """The whole graph as the first `committed` nodes applied and the rest, with every
    relationship, as a transaction's pending writes on top."""
    graph = MemoryGraph()
    operations: list[object] = [CreateIndex("a_v", "A", ("v",))]
    for node_id, (labels, v, w) in enumerate(nodes[:committed]):
        operations.append(CreateNode(node_id, labels, tuple(_props(v, w).items())))
    graph.apply(WriteSet(tuple(operations)))  # type: ignore[arg-type]
    tx = TxState(graph)
    for labels, v, w in nodes[committed:]:
        tx.create_node(labels, _props(v, w))
    for start, end, rel_type, weight in _valid(nodes, rels):
        tx.create_relationship(rel_type, start, end, {} if weight is None else {"weight": weight})
    return TxStateView(tx)


def _graph(nodes, rels, rules: Rules | None) -> MemoryGraph:
    """The whole graph (rules None) or the copy without what `rules` hide."""
    operations: list[object] = [CreateIndex("a_v", "A", ("v",))]
    visible: set[int] = set()
    for node_id, (labels, v, w) in enumerate(nodes):
        props = _props(v, w)
        if rules is not None:
            if not rules.node_visible(labels, props):
                continue
            if rules.hide_w_of_b and "B" in labels:
                props.pop("w", None)
        visible.add(node_id)
        operations.append(CreateNode(node_id, labels, tuple(props.items())))
    for rel_id, (start, end, rel_type, weight) in enumerate(_valid(nodes, rels)):
        if rules is not None and (
            rel_type in rules.denied_types or start not in visible or end not in visible
        ):
            continue
        props = () if weight is None else (("weight", weight),)
        operations.append(CreateRelationship(rel_id, rel_type, start, end, props))
    graph = MemoryGraph()
    graph.apply(WriteSet(tuple(operations)))  # type: ignore[arg-type]
    return graph


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=nodes_strategy,
    rels=st.lists(
        st.tuples(
            st.integers(0, 6),
            st.integers(0, 6),
            st.sampled_from(TYPES),
            st.one_of(st.none(), st.integers(0, 2)),
        ),
        max_size=10,
    ),
    rules=rules_strategy,
)
def test_restricted_results_equal_results_on_the_graph_without_hidden_elements(
    nodes, rels, rules: Rules
) -> None:
    engine = Engine()
    whole = _graph(nodes, rels, None)
    pruned = _graph(nodes, rels, rules)
    privileges = rules.privileges()
    for query in QUERIES:
        restricted = engine.run(whole, query, None, privileges).rows
        expected = engine.run(pruned, query).rows
        assert restricted == expected, query


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    nodes=nodes_strategy,
    rels=st.lists(
        st.tuples(
            st.integers(0, 6),
            st.integers(0, 6),
            st.sampled_from(TYPES),
            st.one_of(st.none(), st.integers(0, 2)),
        ),
        max_size=10,
    ),
    rules=rules_strategy,
    committed=st.integers(0, 7),
)
def test_restricted_results_over_pending_writes_equal_results_without_hidden_elements(
    nodes, rels, rules: Rules, committed: int
) -> None:
    engine = Engine()
    pruned = _graph(nodes, rels, rules)
    privileges = rules.privileges()
    for query in QUERIES:
        restricted = engine.run(_overlay(nodes, rels, committed), query, None, privileges).rows
        assert restricted == engine.run(pruned, query).rows, query
