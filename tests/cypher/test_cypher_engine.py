"""Unit tests of the embedded Cypher engine over a MemoryGraph."""

from typing import Any

import pytest

from cypher import CypherError, Engine, Node
from store.memory import MemoryGraph
from store.writeset import CreateNode, CreateRelationship


def run(graph: MemoryGraph, query: str, params: dict[str, Any] | None = None) -> Any:
    result = Engine().run(graph, query, params)
    graph.apply(result.write_set)
    return result


def test_create_produces_a_write_set_with_ids_from_the_view_and_counters() -> None:
    graph = MemoryGraph()
    result = run(graph, "CREATE (a:Person {name: 'Ada'})-[:KNOWS]->(b:Person {name: 'Bob'})")
    kinds = [type(op) for op in result.write_set.operations]
    assert kinds == [CreateNode, CreateNode, CreateRelationship]
    assert result.counters["nodes_created"] == 2
    assert result.counters["relationships_created"] == 1
    assert result.counters["properties_set"] == 2
    assert graph.next_ids() == (2, 1)


def test_match_reads_committed_graph_and_returns_public_nodes() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:Person {name: 'Ada', age: 36}), (:Person {name: 'Bob', age: 20})")
    result = run(graph, "MATCH (p:Person) WHERE p.age > $min RETURN p ORDER BY p.name", {"min": 1})
    assert result.columns == ["p"]
    assert [row[0].properties["name"] for row in result.rows] == ["Ada", "Bob"]
    assert isinstance(result.rows[0][0], Node)


def test_statement_reads_its_own_pending_writes() -> None:
    graph = MemoryGraph()
    result = run(graph, "CREATE (:A {x: 1}) WITH 1 AS one MATCH (a:A) RETURN a.x")
    assert result.rows == [[1]]


def test_transaction_statements_see_earlier_statements_writes() -> None:
    graph = MemoryGraph()
    engine = Engine()
    tx = engine.begin(graph)
    tx.run("CREATE (:A {x: 1})")
    assert tx.run("MATCH (a:A) RETURN count(a)").rows == [[1]]
    graph.apply(tx.commit())
    assert graph.count_nodes("A") == 1


def test_aggregation_groups_by_non_aggregate_columns() -> None:
    graph = MemoryGraph()
    rows = run(graph, "UNWIND [1, 1, 2] AS x RETURN x, count(*) AS c ORDER BY x").rows
    assert rows == [[1, 2], [2, 1]]


def test_syntax_error_carries_status_code_line_and_column() -> None:
    with pytest.raises(CypherError) as info:
        Engine().run(MemoryGraph(), "MATCH (a)\nRETURN b")
    assert info.value.status_code == "Neo.ClientError.Statement.SyntaxError"
    assert info.value.detail == "UndefinedVariable"
    with pytest.raises(CypherError) as info:
        Engine().run(MemoryGraph(), "MATCH (a\nRETURN a")
    assert info.value.line == 2


def test_integer_overflow_is_an_arithmetic_error() -> None:
    with pytest.raises(CypherError) as info:
        Engine().run(MemoryGraph(), "RETURN 9223372036854775807 + 1")
    assert info.value.status_code == "Neo.ClientError.Statement.ArithmeticError"


def test_deeply_nested_input_is_refused_with_a_clear_error() -> None:
    query = "RETURN " + "[" * 5000 + "]" * 5000
    with pytest.raises(CypherError) as info:
        Engine().run(MemoryGraph(), query)
    assert info.value.status_code == "Neo.ClientError.Statement.SyntaxError"


def test_deleting_a_connected_node_without_detach_fails() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:A)-[:T]->(:B)")
    with pytest.raises(CypherError) as info:
        run(graph, "MATCH (a:A) DELETE a")
    assert info.value.status_code == "Neo.ClientError.Schema.ConstraintValidationFailed"


def test_plans_are_cached_by_query_text() -> None:
    engine = Engine()
    assert engine.plan("RETURN 1") is engine.plan("RETURN 1")


def test_uniqueness_constraint_rejects_a_duplicate_with_a_schema_error() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE CONSTRAINT person_email FOR (p:Person) REQUIRE p.email IS UNIQUE")
    run(graph, "CREATE (:Person {email: 'a@x'})")
    with pytest.raises(CypherError) as info:
        run(graph, "CREATE (:Person {email: 'a@x'})")
    assert info.value.status_code == "Neo.ClientError.Schema.ConstraintValidationFailed"
    with pytest.raises(CypherError):
        run(graph, "CREATE (:Person {email: 'b@x'}), (:Person {email: 'b@x'})")
    run(graph, "CREATE (:Person {email: 'c@x'})")
    assert graph.count_nodes("Person") == 2


def test_index_seek_is_used_and_agrees_with_a_scan() -> None:
    graph = MemoryGraph()
    run(graph, "UNWIND range(1, 50) AS i CREATE (:P {id: i % 10})")
    scan = run(graph, "MATCH (p:P {id: 3}) RETURN count(p)").rows
    run(graph, "CREATE INDEX FOR (p:P) ON (p.id)")
    assert graph.has_index("P", "id")
    assert run(graph, "MATCH (p:P {id: 3}) RETURN count(p)").rows == scan == [[5]]
    assert run(graph, "MATCH (p:P {id: $v}) RETURN count(p)", {"v": 3.0}).rows == [[5]]


def test_creating_a_unique_constraint_over_duplicate_data_fails_with_creation_failed() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:P {id: 1}), (:P {id: 1}), (:P {id: 2}), (:Q {id: 2})")
    with pytest.raises(CypherError) as raised:
        run(graph, "CREATE CONSTRAINT p_id FOR (p:P) REQUIRE p.id IS UNIQUE")
    assert raised.value.status_code == "Neo.ClientError.Schema.ConstraintCreationFailed"
    assert graph.constraints() == []
    run(graph, "MATCH (p:P {id: 1}) WITH p LIMIT 1 SET p.id = 3")
    run(graph, "CREATE CONSTRAINT p_id FOR (p:P) REQUIRE p.id IS UNIQUE")
    assert [c.name for c in graph.constraints()] == ["p_id"]


def test_index_seek_sees_the_transactions_own_creates_sets_and_deletes() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE INDEX FOR (p:P) ON (p.id)")
    run(graph, "UNWIND range(1, 5) AS i CREATE (:P {id: i})")
    tx = Engine().begin(graph)
    tx.run("CREATE (:P {id: 9})")
    tx.run("MATCH (p:P {id: 2}) SET p.id = 7")
    tx.run("MATCH (p:P {id: 3}) DELETE p")
    tx.run("MATCH (p:P {id: 4}) REMOVE p:P")
    tx.run("CREATE (q:Q {id: 5}) SET q:P")

    def ids(value: int) -> list[int]:
        return [row[0] for row in tx.run("MATCH (p:P {id: $v}) RETURN p.id", {"v": value}).rows]

    assert ids(9) == [9]
    assert ids(2) == []
    assert ids(7) == [7]
    assert ids(3) == []
    assert ids(4) == []
    assert ids(5) == [5, 5]
    assert ids(1) == [1]


def _operators(plan: Any) -> list[str]:
    found = [plan.operator]
    for child in plan.children:
        found += _operators(child)
    return found


def test_explain_describes_an_index_seek_and_expansions_without_running_anything() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE INDEX FOR (p:Person) ON (p.id)")
    run(graph, "UNWIND range(1, 20) AS i CREATE (:Person {id: i})")
    result = run(
        graph,
        "EXPLAIN MATCH (p:Person {id: $id})-[:KNOWS]->()-[:KNOWS]->(f) "
        "RETURN count(DISTINCT f) AS n",
        {"id": 3},
    )
    assert result.columns == ["n"] and result.rows == []
    assert _operators(result.plan)[:5] == [
        "ProduceResults",
        "EagerAggregation",
        "Expand(All)",
        "Expand(All)",
        "NodeIndexSeek",
    ]
    assert result.plan.rows is None
    explained_write = run(graph, "EXPLAIN CREATE (:Person {id: 99})")
    assert explained_write.write_set.operations == ()
    assert explained_write.counters["nodes_created"] == 0


def test_profile_returns_the_rows_of_a_normal_run_and_actual_rows_per_clause() -> None:
    graph = MemoryGraph()
    run(graph, "UNWIND range(1, 10) AS i CREATE (:N {i: i})")
    query = "MATCH (n:N) WHERE n.i > 3 RETURN n.i AS i ORDER BY i LIMIT 4"
    plain = run(graph, query)
    profiled = run(graph, "PROFILE " + query)
    assert profiled.rows == plain.rows == [[4], [5], [6], [7]]
    plan = profiled.plan
    assert plan.operator == "ProduceResults" and plan.rows == 4
    filtered = plan
    while filtered.operator != "Filter":
        filtered = filtered.children[0]
    assert filtered.rows == 7
    assert filtered.children[0].operator == "NodeByLabelScan"
    assert filtered.children[0].estimated_rows == 10


def test_count_subquery_counts_pattern_matches_and_query_rows_per_row() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (a:P {n: 1})-[:K]->(:Q), (a)-[:K]->(:R), (:P {n: 2})")
    rows = run(
        graph,
        "MATCH (p:P) RETURN p.n, COUNT { (p)-[:K]->() } AS total, "
        "COUNT { MATCH (p)-[:K]->(q) WHERE q:Q RETURN q } AS qs ORDER BY p.n",
    ).rows
    assert rows == [[1, 2, 1], [2, 0, 0]]
    assert run(graph, "MATCH (p:P) WHERE COUNT { (p)-->() } > 1 RETURN p.n").rows == [[1]]
    # A map projection on a variable named count is not a subquery.
    assert run(graph, "WITH {n: 1} AS count RETURN count {.n} AS m").rows == [[{"n": 1}]]


def test_call_subquery_imports_with_a_leading_with_and_joins_its_rows() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (a:P {n: 1})-[:K]->(:Q), (a)-[:K]->(:Q), (:P {n: 2})")
    rows = run(
        graph,
        "MATCH (p:P) CALL { WITH p MATCH (p)-[:K]->(q) RETURN count(q) AS k } "
        "RETURN p.n, k ORDER BY p.n",
    ).rows
    assert rows == [[1, 2], [2, 0]]
    union = "CALL { MATCH (p:P) RETURN p.n AS x UNION MATCH (p:P) RETURN p.n AS x } RETURN x"
    assert sorted(run(graph, union).rows) == [[1], [2]]
    unit = run(graph, "UNWIND [1, 2, 3] AS i CALL { WITH i CREATE (:Z {i: i}) } RETURN i")
    assert unit.rows == [[1], [2], [3]] and unit.counters["nodes_created"] == 3
    with pytest.raises(CypherError) as raised:
        run(graph, "MATCH (p:P) CALL { RETURN p.n AS y } RETURN y")
    assert raised.value.detail == "UndefinedVariable"
    with pytest.raises(CypherError) as raised:
        run(graph, "MATCH (p:P) CALL { MATCH (q:Q) RETURN q AS p } RETURN p")
    assert raised.value.detail == "VariableAlreadyBound"


def test_label_expressions_in_node_patterns_match_or_and_not() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:A {n: 1}), (:B {n: 2}), (:A:B {n: 3}), (:C {n: 4}), ({n: 5})")

    def names(query: str) -> list[int]:
        return sorted(row[0] for row in run(graph, query).rows)

    assert names("MATCH (x:A|B) RETURN x.n") == [1, 2, 3]
    assert names("MATCH (x:A&B) RETURN x.n") == [3]
    assert names("MATCH (x:A&!B) RETURN x.n") == [1]
    assert names("MATCH (x:!A) RETURN x.n") == [2, 4, 5]
    assert names("MATCH (x:(A|C)&!B) RETURN x.n") == [1, 4]
    assert names("MATCH (x) WHERE EXISTS { (x:B|C) } RETURN x.n") == [2, 3, 4]
    with pytest.raises(CypherError):
        run(graph, "CREATE (:A|B)")


def test_index_seek_after_deleting_the_found_node_in_the_same_statement_finds_nothing() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE INDEX FOR (p:P) ON (p.id)")
    run(graph, "CREATE (:P {id: 1})")
    result = run(
        graph,
        "MATCH (n:P {id: 1}) DELETE n WITH count(*) AS c MATCH (m:P {id: 1}) RETURN count(m)",
    )
    assert result.rows == [[0]]
    assert result.counters["nodes_deleted"] == 1


def test_explain_of_a_schema_command_changes_nothing() -> None:
    graph = MemoryGraph()
    result = run(graph, "EXPLAIN CREATE INDEX FOR (p:P) ON (p.id)")
    assert result.write_set.operations == () and graph.indexes() == []
    assert result.plan is not None and result.plan.operator == "SchemaCommand"


def test_profile_counts_rows_at_each_pattern_start_and_expansion() -> None:
    graph = MemoryGraph()
    run(graph, "UNWIND range(1, 6) AS i CREATE (:P {id: i})")
    run(graph, "MATCH (a:P), (b:P) WHERE b.id = a.id + 1 CREATE (a)-[:K]->(b)")
    result = run(graph, "PROFILE MATCH (a:P)-[:K]->(b)-[:K]->(c) RETURN count(*) AS n")
    assert result.rows == [[4]]
    expand_two = result.plan.children[0].children[0]
    expand_one = expand_two.children[0]
    scan = expand_one.children[0]
    assert [op.operator for op in (expand_two, expand_one, scan)] == [
        "Expand(All)",
        "Expand(All)",
        "NodeByLabelScan",
    ]
    assert (expand_two.rows, expand_one.rows, scan.rows) == (4, 5, 6)


def test_dates_span_neo4js_years_beyond_pythons_calendar() -> None:
    graph = MemoryGraph()
    rows = run(
        graph,
        "RETURN toString(date('+10000-01-01')) AS far, "
        "toString(date('-0001-12-31') + duration('P1D')) AS zero, "
        "date('-999999999-01-01').year AS first, "
        "toString(duration.between(date('-999999999-01-01'), date('+999999999-12-31'))) AS span",
    ).rows
    assert rows == [["+10000-01-01", "0000-01-01", -999_999_999, "P1999999998Y11M30D"]]
    for query in (
        "RETURN date({year: 1000000000})",
        "RETURN date('+999999999-12-31') + duration('P1D')",
    ):
        with pytest.raises(CypherError) as raised:
            run(graph, query)
        assert raised.value.kind == "ArgumentError"
