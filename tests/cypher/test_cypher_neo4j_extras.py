"""Cypher that Neo4j 5 users write daily but the openCypher TCK does not cover: FOREACH, the
type check of a CREATE/MERGE endpoint, and the functions and clauses added after the TCK.

Expected results are Neo4j 5's, from its Cypher manual (clauses/foreach, functions/*,
expressions/type-predicate-expressions); where the manual is silent the comment says how the
expectation was reasoned."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.security.privileges import NODES, RELATIONSHIPS, Action, deny, grant, resolve
from cypher import CypherError, Engine
from store.memory import MemoryGraph
from store.writeset import CreateNode

ENGINE = Engine()
SYNTAX = "Neo.ClientError.Statement.SyntaxError"
TYPE = "Neo.ClientError.Statement.TypeError"
FORBIDDEN = "Neo.ClientError.Security.Forbidden"


def run(graph: MemoryGraph, query: str, params: dict[str, Any] | None = None, privileges=None):
    result = ENGINE.run(graph, query, params, privileges)
    graph.apply(result.write_set)
    return result


def fails(graph: MemoryGraph, query: str, params: dict[str, Any] | None = None) -> CypherError:
    before = list(graph.canonical_dump())
    with pytest.raises(CypherError) as caught:
        run(graph, query, params)
    assert list(graph.canonical_dump()) == before, "a failed statement changed the graph"
    return caught.value


def counters(result: Any) -> dict[str, int]:
    return {name: value for name, value in result.counters.items() if value}


# -- FOREACH -------------------------------------------------------------------------------


def test_foreach_creates_once_per_item_with_neo4j_counters() -> None:
    graph = MemoryGraph()
    result = run(graph, "FOREACH (x IN [1, 2, 3] | CREATE (:F {x: x}))")
    assert result.columns == [] and result.rows == []
    assert counters(result) == {"nodes_created": 3, "properties_set": 3, "labels_added": 3}
    assert run(graph, "MATCH (f:F) RETURN f.x ORDER BY f.x").rows == [[1], [2], [3]]


def test_foreach_sets_properties_along_a_path_as_the_manual_shows() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:P {name: 'A'})-[:KNOWS]->(:P {name: 'B'})-[:KNOWS]->(:P {name: 'C'})")
    result = run(
        graph,
        "MATCH p = (:P {name: 'A'})-[:KNOWS*]->(:P {name: 'C'}) "
        "FOREACH (n IN nodes(p) | SET n.marked = true) RETURN length(p)",
    )
    assert result.rows == [[2]]
    assert counters(result) == {"properties_set": 3}
    assert run(graph, "MATCH (n:P) WHERE n.marked RETURN count(n)").rows == [[3]]


def test_nested_foreach_sees_outer_variables_and_merges_what_earlier_items_created() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:Root)")
    result = run(
        graph,
        "MATCH (r:Root) FOREACH (x IN [1, 2] | "
        "  FOREACH (y IN [x, x + 10, 1] | MERGE (k:K {v: y}) MERGE (r)-[:HAS]->(k)))",
    )
    # Items 1, 11, 1 then 2, 12, 1: MERGE reads the writes of the earlier iterations.
    assert counters(result) == {
        "nodes_created": 4,
        "relationships_created": 4,
        "properties_set": 4,
        "labels_added": 4,
    }
    rows = run(graph, "MATCH (:Root)-[:HAS]->(k) RETURN k.v ORDER BY k.v").rows
    assert rows == [[1], [2], [11], [12]]


def test_foreach_passes_its_rows_on_unchanged_and_binds_nothing_after_it() -> None:
    graph = MemoryGraph()
    result = run(
        graph, "UNWIND [1, 2] AS i FOREACH (x IN [i] | CREATE (n:N {x: x})) RETURN i ORDER BY i"
    )
    assert result.rows == [[1], [2]]
    error = fails(graph, "FOREACH (x IN [1] | CREATE (n:N)) RETURN n")
    assert error.status_code == SYNTAX and error.detail == "UndefinedVariable"
    error = fails(graph, "FOREACH (x IN [1] | CREATE (:N)) RETURN x")
    assert error.status_code == SYNTAX and error.detail == "UndefinedVariable"


def test_foreach_variable_may_shadow_an_outer_one_inside_only() -> None:
    graph = MemoryGraph()
    result = run(graph, "WITH 0 AS x FOREACH (x IN [5] | CREATE (:S {v: x})) RETURN x")
    assert result.rows == [[0]]
    assert run(graph, "MATCH (s:S) RETURN s.v").rows == [[5]]


def test_foreach_remove_delete_and_detach_delete() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:D {k: 1, tmp: 1})-[:R]->(:D {k: 2, tmp: 2}), (:E {k: 3})")
    result = run(graph, "MATCH (d:D) WITH collect(d) AS ds FOREACH (d IN ds | REMOVE d.tmp, d:D)")
    assert counters(result) == {"properties_set": 2, "labels_removed": 2}
    result = run(
        graph,
        "MATCH (n) WHERE n.k IN [1, 2] WITH collect(n) AS ns FOREACH (n IN ns | DETACH DELETE n)",
    )
    assert counters(result) == {"nodes_deleted": 2, "relationships_deleted": 1}
    result = run(graph, "MATCH (e:E) FOREACH (x IN [e] | DELETE x)")
    assert counters(result) == {"nodes_deleted": 1}
    assert run(graph, "MATCH (n) RETURN count(n)").rows == [[0]]


def test_foreach_over_null_does_nothing() -> None:
    graph = MemoryGraph()
    result = run(graph, "FOREACH (x IN null | CREATE (:N))")
    assert counters(result) == {}
    result = run(graph, "FOREACH (x IN $list | CREATE (:N))", {"list": None})
    assert counters(result) == {}


def test_foreach_over_a_non_list_is_a_type_error() -> None:
    graph = MemoryGraph()
    error = fails(graph, "FOREACH (x IN $v | CREATE (:N {v: x}))", {"v": 1})
    assert error.status_code == TYPE
    # Known without running it (Neo4j: "Type mismatch: expected List<T> but was Integer").
    error = fails(graph, "FOREACH (x IN 1 | CREATE (:N))")
    assert error.status_code == SYNTAX and error.detail == "InvalidArgumentType"
    error = fails(graph, "CREATE (n:N) FOREACH (x IN n | CREATE (:M))")
    assert error.status_code == SYNTAX


def test_foreach_allows_only_updating_clauses() -> None:
    graph = MemoryGraph()
    for query in (
        "FOREACH (x IN [1] | MATCH (n) SET n.x = x)",
        "FOREACH (x IN [1] | WITH x CREATE (:N))",
        "FOREACH (x IN [1] | CREATE (:N) RETURN x)",
        "FOREACH (x IN [1] | )",
        "UNWIND [1] AS i FOREACH (x IN collect(i) | CREATE (:N))",
    ):
        assert fails(graph, query).status_code == SYNTAX, query


def test_foreach_in_a_transaction_is_read_by_the_next_statement() -> None:
    graph = MemoryGraph()
    tx = ENGINE.begin(graph)
    tx.run("FOREACH (x IN range(1, 4) | CREATE (:T {x: x}))")
    assert tx.run("MATCH (t:T) RETURN sum(t.x)").rows == [[10]]
    graph.apply(tx.commit())
    assert run(graph, "MATCH (t:T) RETURN count(t)").rows == [[4]]


def test_explain_and_profile_show_foreach_and_its_inner_operators() -> None:
    graph = MemoryGraph()
    query = "UNWIND [1, 2] AS i FOREACH (x IN [i, i] | CREATE (:N {x: x}))"
    explained = run(graph, "EXPLAIN " + query)
    assert counters(explained) == {} and explained.plan is not None
    text = explained.plan.render()
    assert "+Foreach x" in text and "+Create (:N)" in text
    profiled = run(graph, "PROFILE " + query)
    assert counters(profiled)["nodes_created"] == 4
    assert profiled.plan is not None
    rows = {op.operator: op.rows for op in _operators(profiled.plan)}
    assert rows["Foreach"] == 2 and rows["Create"] == 4


def _operators(plan: Any) -> list[Any]:
    found = [plan]
    for child in plan.children:
        found.extend(_operators(child))
    return found


def test_a_restricted_users_foreach_writes_are_checked_like_any_write() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:Person {name: 'Ada', seen: false}), (:Person:Secret {name: 'Bob'})")
    match_all = (grant(Action.MATCH, NODES), grant(Action.MATCH, RELATIONSHIPS))
    hide_secret = (*match_all, deny(Action.TRAVERSE, NODES, ["Secret"]))
    writer = resolve(["custom"], {"custom": (*hide_secret, grant(Action.WRITE))})
    result = run(
        graph,
        "MATCH (p:Person) WITH collect(p) AS ps FOREACH (p IN ps | SET p.seen = true)",
        privileges=writer,
    )
    assert counters(result) == {"properties_set": 1}
    assert run(graph, "MATCH (p:Person) RETURN p.name, p.seen ORDER BY p.name").rows == [
        ["Ada", True],
        ["Bob", None],
    ]
    # May set properties but not create nodes: a FOREACH that creates is refused whole.
    setter = resolve(["custom"], {"custom": (*match_all, grant(Action.SET_PROPERTY, NODES))})
    before = list(graph.canonical_dump())
    with pytest.raises(CypherError) as caught:
        run(
            graph,
            "MATCH (p:Person {name: 'Ada'}) FOREACH (x IN [1] | SET p.seen = x CREATE (:Person))",
            privileges=setter,
        )
    assert caught.value.status_code == FORBIDDEN
    assert list(graph.canonical_dump()) == before


# -- CREATE / MERGE endpoints that are not nodes --------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "UNWIND [1] AS n CREATE (a)-[:R]->(n)",
        "WITH $p AS n CREATE (n)-[:R]->(b)",
        "UNWIND [1] AS n MERGE (a:Q)-[:R]->(n)",
        "UNWIND ['x'] AS n MERGE (n)-[:R]->(:Q)",
        "CREATE ()-[:T]->() WITH 1 AS one MATCH ()-[r]->() WITH [r][0] AS n CREATE (n)-[:R]->()",
    ],
)
def test_a_relationship_endpoint_that_is_not_a_node_is_a_type_error(query: str) -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:Q)")
    error = fails(graph, query, {"p": 1})
    assert error.status_code == TYPE
    assert "expected to find a node" in str(error)


def test_an_endpoint_known_not_to_be_a_node_is_refused_before_running() -> None:
    error = fails(MemoryGraph(), "WITH 1 AS n CREATE (a)-[:R]->(n)")
    assert error.status_code == SYNTAX and error.detail == "VariableTypeConflict"


# -- type predicates, COLLECT { }, string and list functions of Neo4j 5 ----------------------


def one_row(query: str, params: dict[str, Any] | None = None) -> list[Any]:
    rows = run(MemoryGraph(), query, params).rows
    assert len(rows) == 1
    return rows[0]  # type: ignore[no-any-return]


def test_type_predicates_follow_the_manuals_examples() -> None:
    assert one_row(
        "RETURN 1 IS :: INTEGER, 'x' IS :: INTEGER, 1 IS NOT :: STRING, 1.5 :: INTEGER | FLOAT,"
        " [1, 2] IS :: LIST<INT>, [1, 'a'] IS :: LIST<INTEGER | STRING>, [1, 'a'] :: LIST<INT>,"
        " date() IS :: DATE, datetime() IS :: TIMESTAMP WITH TIME ZONE,"
        " localtime() IS :: TIME WITHOUT TIME ZONE, {a: 1} IS :: MAP, 1 IS :: ANY"
    ) == [True, False, True, True, True, True, False, True, True, True, True, True]


def test_null_is_of_every_type_except_a_not_null_one() -> None:
    assert one_row(
        "RETURN null IS :: INTEGER, null IS :: INTEGER NOT NULL, null IS :: NULL,"
        " 1 IS :: NULL, null IS NOT :: STRING NOT NULL, [1, null] IS :: LIST<INTEGER NOT NULL>,"
        " [1, null] IS :: LIST<INTEGER>"
    ) == [True, False, True, False, True, False, True]


def test_type_predicates_read_nodes_relationships_and_property_values() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:A {v: 1})-[:R]->(:B {v: 'x'})")
    rows = run(
        graph,
        "MATCH (a)-[r]->(b) RETURN a IS :: NODE, r :: RELATIONSHIP, r IS :: NODE,"
        " a.v IS :: PROPERTY VALUE, b.v IS :: INTEGER",
    ).rows
    assert rows == [[True, True, False, True, False]]
    rows = run(graph, "MATCH (n) WHERE n.v IS :: STRING RETURN labels(n)").rows
    assert rows == [[["B"]]]


def test_a_type_that_does_not_exist_is_a_syntax_error() -> None:
    for query in ("RETURN 1 IS :: INTEGR", "RETURN 1 :: LIST", "RETURN 1 IS :: NULL NOT NULL"):
        assert fails(MemoryGraph(), query).status_code == SYNTAX, query


def test_value_type_names_types_as_neo4j_does() -> None:
    assert one_row(
        "RETURN valueType(1), valueType(1.0), valueType('a'), valueType(null), valueType(true),"
        " valueType([1, 2]), valueType([]), valueType({a: 1}), valueType(date('2020-01-01')),"
        " valueType(duration('P1D'))"
    ) == [
        "INTEGER NOT NULL",
        "FLOAT NOT NULL",
        "STRING NOT NULL",
        "NULL",
        "BOOLEAN NOT NULL",
        "LIST<INTEGER NOT NULL> NOT NULL",
        "LIST<NOTHING> NOT NULL",
        "MAP NOT NULL",
        "DATE NOT NULL",
        "DURATION NOT NULL",
    ]


def test_collect_subquery_returns_the_list_of_its_one_column() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (a:P {name: 'A'})-[:K]->(:P {name: 'B'}), (a)-[:K]->(:P {name: 'C'})")
    rows = run(
        graph,
        "MATCH (p:P) RETURN p.name,"
        " COLLECT { MATCH (p)-[:K]->(f) RETURN f.name ORDER BY f.name DESC } AS friends"
        " ORDER BY p.name",
    ).rows
    assert rows == [["A", ["C", "B"]], ["B", []], ["C", []]]
    assert one_row(
        "RETURN COLLECT { UNWIND [1, 1, 2] AS x RETURN x UNION UNWIND [2, 3] AS x RETURN x }"
    ) == [[1, 2, 3]]
    for query in (
        "RETURN COLLECT { UNWIND [1] AS x RETURN x, x AS y }",
        "RETURN COLLECT { MATCH (n) }",
        "RETURN COLLECT { CREATE (n) RETURN n }",
    ):
        assert fails(graph, query).status_code == SYNTAX, query


def test_collect_is_still_the_aggregate_and_a_map_key() -> None:
    assert one_row("UNWIND [1, 2] AS collect RETURN collect(collect), {collect: 1}.collect") == [
        [1, 2],
        1,
    ]


def test_string_functions_of_neo4j_5() -> None:
    assert one_row(
        "RETURN btrim('xxyyhelloxyxy', 'xy'), btrim('  hello  '), ltrim('xxhello', 'x'),"
        " rtrim('helloxx', 'x'), ltrim('  a'), btrim(null, 'x'), btrim('x', null),"
        " char_length('héllo'), character_length(''), char_length(null)"
    ) == ["hello", "hello", "hello", "hello", "a", None, None, 5, 0, None]


def test_normalization_functions_and_predicates() -> None:
    composed, decomposed = "\u00c5", "A\u030a"
    assert one_row(
        "RETURN normalize($d) = $c, normalize($c, NFD) = $d, normalize($c, NFKC) = $c,"
        " $c IS NORMALIZED, $d IS NORMALIZED, $d IS NOT NFC NORMALIZED, $d IS NFD NORMALIZED,"
        " null IS NORMALIZED, normalize(null)",
        {"c": composed, "d": decomposed},
    ) == [True, True, True, True, False, True, True, None, None]
    assert fails(MemoryGraph(), "RETURN 'a' IS NORMALISED").status_code == SYNTAX


def test_concatenation_operator() -> None:
    assert one_row("RETURN 'Neo' || '4j', [1] || [2, 3], null || 'a', [1] || null") == [
        "Neo4j",
        [1, 2, 3],
        None,
        None,
    ]
    assert fails(MemoryGraph(), "RETURN 'a' || 1").status_code == TYPE


def test_conversion_list_functions_and_small_helpers() -> None:
    assert one_row(
        "RETURN toIntegerList(['1', 'x', null, 2.5]), toFloatList(['1.5', 2]),"
        " toStringList([1, true, 1.5]), toBooleanList(['true', 'no', 0]), toIntegerList(null),"
        " isNaN(0.0 / 0.0), isNaN(1), isNaN(null), nullIf(1, 1), nullIf(1, 2), nullIf(null, 1)"
    ) == [
        [1, None, None, 2],
        [1.5, 2.0],
        ["1", "true", "1.5"],
        [True, None, False],
        None,
        True,
        False,
        None,
        None,
        1,
        None,
    ]
    assert fails(MemoryGraph(), "RETURN toIntegerList(1)").status_code == TYPE
    assert fails(MemoryGraph(), "RETURN isNaN('a')").status_code == TYPE


# -- CALL subqueries: scope clause, IN TRANSACTIONS ----------------------------------------


def test_call_with_a_scope_clause_sees_only_what_it_imports() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:P {name: 'A', age: 3}), (:P {name: 'B', age: 4}), (:T)")
    rows = run(graph, "MATCH (p:P) CALL (p) { RETURN p.name AS n } RETURN n ORDER BY n").rows
    assert rows == [["A"], ["B"]]
    rows = run(graph, "MATCH (p:P) CALL (*) { RETURN p.age * 2 AS a } RETURN a ORDER BY a").rows
    assert rows == [[6], [8]]
    rows = run(
        graph, "MATCH (p:P) CALL () { MATCH (t:T) RETURN count(t) AS c } RETURN p.name, c"
    ).rows
    assert sorted(rows) == [["A", 1], ["B", 1]]
    for query in (
        "MATCH (p:P) CALL () { RETURN p.name AS n } RETURN n",
        "MATCH (p:P) CALL (q) { RETURN 1 AS n } RETURN n",
    ):
        error = fails(graph, query)
        assert error.status_code == SYNTAX and error.detail == "UndefinedVariable", query


def test_call_in_transactions_runs_in_an_implicit_transaction() -> None:
    graph = MemoryGraph()
    result = run(
        graph, "UNWIND range(1, 5) AS x CALL (x) { CREATE (:T {x: x}) } IN TRANSACTIONS OF 2 ROWS"
    )
    assert counters(result) == {"nodes_created": 5, "properties_set": 5, "labels_added": 5}
    result = run(
        graph,
        "UNWIND range(1, 5) AS x CALL { WITH x MATCH (t:T {x: x}) SET t.y = 2 * x"
        " RETURN t.y AS y } IN TRANSACTIONS OF $size ROWS ON ERROR FAIL RETURN sum(y)",
        {"size": 3},
    )
    assert result.rows == [[30]]
    result = run(graph, "CALL { MATCH (t:T) DETACH DELETE t } IN 2 CONCURRENT TRANSACTIONS")
    assert counters(result) == {"nodes_deleted": 5}


def test_call_in_transactions_is_refused_in_an_explicit_transaction_as_neo4j_does() -> None:
    graph = MemoryGraph()
    tx = ENGINE.begin(graph)
    with pytest.raises(CypherError) as caught:
        tx.run("UNWIND [1] AS x CALL (x) { CREATE (:T) } IN TRANSACTIONS")
    assert caught.value.status_code == "Neo.DatabaseError.Statement.ExecutionFailed"
    assert "implicit transaction" in str(caught.value)
    assert tx.commit().operations == ()


def test_call_in_transactions_options_quiver_cannot_honour_are_named() -> None:
    graph = MemoryGraph()
    for query, named in (
        ("CALL { CREATE () } IN TRANSACTIONS ON ERROR CONTINUE", "ON ERROR CONTINUE"),
        ("CALL { CREATE () } IN TRANSACTIONS REPORT STATUS AS s", "REPORT STATUS"),
    ):
        error = fails(graph, query)
        assert error.status_code == SYNTAX and named in str(error), query
    for query in (
        "CALL { CREATE () } IN TRANSACTIONS OF 0 ROWS",
        "CALL { CREATE () } IN TRANSACTIONS OF 2",
        "CALL { CALL { CREATE () } IN TRANSACTIONS RETURN 1 AS one } RETURN one",
        "FOREACH (x IN [1] | CREATE ()) CALL { CREATE () } IN TRANSACTIONS OF -1 ROWS",
    ):
        assert fails(graph, query).status_code == SYNTAX, query


# -- inline WHERE in node and relationship patterns -----------------------------------------


def test_inline_where_in_node_and_relationship_patterns_filters_matches() -> None:
    graph = MemoryGraph()
    run(
        graph,
        "CREATE (a:P {name: 'A', age: 36})-[:K {since: 2000}]->(:P {name: 'B', age: 20}),"
        " (a)-[:K {since: 1990}]->(:P {name: 'C', age: 50})",
    )
    assert run(graph, "MATCH (n:P WHERE n.age > 30) RETURN n.name ORDER BY n.name").rows == [
        ["A"],
        ["C"],
    ]
    assert run(graph, "MATCH ()-[r:K WHERE r.since > 1995]->(b) RETURN b.name").rows == [["B"]]
    rows = run(
        graph,
        "MATCH (a:P WHERE a.name = $n)-[:K]->(b WHERE b.age > a.age) RETURN b.name",
        {"n": "A"},
    ).rows
    assert rows == [["C"]]
    rows = run(
        graph,
        "MATCH (p:P) RETURN p.name, [(p)-[r:K WHERE r.since < 1995]->(f) | f.name],"
        " COUNT { (p)-->(x:P WHERE x.age < 30) } ORDER BY p.name",
    ).rows
    assert rows == [["A", ["C"], 1], ["B", [], 0], ["C", [], 0]]


def test_inline_where_is_for_matching_only() -> None:
    graph = MemoryGraph()
    for query in (
        "CREATE (n:X WHERE n.a = 1)",
        "MERGE (n:X WHERE n.a = 1)",
        "MATCH (a)-[r*1..2 WHERE r.x = 1]->(b) RETURN b",
        "MATCH (n WHERE count(n) > 1) RETURN n",
        "MATCH (n WHERE m.x = 1) RETURN n",
    ):
        assert fails(graph, query).status_code == SYNTAX, query


# -- SHOW FUNCTIONS / PROCEDURES, and Neo4j syntax Quiver does not implement -----------------


def test_show_procedures_and_functions_list_what_the_engine_can_call() -> None:
    graph = MemoryGraph()
    procedures = run(graph, "SHOW PROCEDURES")
    assert procedures.columns == ["name", "description", "mode", "worksOnSystem"]
    names = [row[0] for row in procedures.rows]
    assert names == sorted(names, key=str.lower)
    assert {"db.labels", "db.relationshipTypes", "db.propertyKeys", "dbms.components"} <= set(names)
    functions = run(graph, "SHOW FUNCTIONS YIELD name, category, aggregating")
    assert functions.columns == ["name", "category", "aggregating"]
    by_name = {row[0]: row[1:] for row in functions.rows}
    assert by_name["toUpper"] == ["String", False]
    assert by_name["collect"] == ["Aggregating", True]
    assert by_name["date.truncate"] == ["Temporal", False]
    assert "is normalized" not in by_name
    error = fails(graph, "SHOW PROCEDURES YIELD nope")
    assert error.status_code == SYNTAX and "nope" in str(error)


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("LOAD CSV WITH HEADERS FROM 'file:///x.csv' AS row RETURN row", "LOAD CSV"),
        ("USE neo4j MATCH (n) RETURN n", "USE"),
        ("MATCH (n) FINISH", "FINISH"),
        ("RETURN 1 AS x NEXT RETURN x", "NEXT"),
        ("MATCH (n) RETURN n ORDER BY n OFFSET 1", "OFFSET"),
        ("INSERT (:A)", "INSERT"),
        ("MATCH p = SHORTEST 1 (a)-->(b) RETURN p", "path selectors"),
        ("MATCH p = ANY SHORTEST (a)-->(b) RETURN p", "path selectors"),
        ("MATCH (a)-[:R]->{1,3}(b) RETURN b", "quantified"),
        ("MATCH (a)-[:R]-+(b) RETURN b", "quantified"),
        ("MATCH ((a)-[:R]->(b)){2} RETURN a", "quantified"),
        ("SHOW DATABASES", "SHOW DATABASES"),
        ("SHOW TRANSACTIONS", "SHOW TRANSACTIONS"),
    ],
)
def test_neo4j_syntax_quiver_lacks_is_a_syntax_error_that_names_it(query: str, named: str) -> None:
    error = fails(MemoryGraph(), query)
    assert error.status_code == SYNTAX
    assert error.detail == "UnsupportedFeature"
    assert named in str(error)


def test_ordinary_syntax_errors_keep_their_detail() -> None:
    for query in ("MATCH (a) RETRUN a", "RETURN 1 +* 2", "MATCH (a) RETURN a.x +"):
        error = fails(MemoryGraph(), query)
        assert error.status_code == SYNTAX and error.detail == "UnexpectedSyntax", query


# -- label expressions as predicates ---------------------------------------------------------


def test_label_expressions_are_predicates_in_where_and_return() -> None:
    graph = MemoryGraph()
    run(
        graph,
        "CREATE (:Person {name: 'Ada'})-[:KNOWS]->(:Person:Dev {name: 'Bob'}),"
        " (:City {name: 'Paris'}), (:Dev {name: 'Dee'})-[:LIKES]->(:X {name: 'X'})",
    )

    def names(where: str) -> list[str]:
        rows = run(graph, f"MATCH (n) WHERE {where} RETURN n.name ORDER BY n.name").rows
        return [row[0] for row in rows]

    assert names("n:Person|City") == ["Ada", "Bob", "Paris"]
    assert names("n:!Person") == ["Dee", "Paris", "X"]
    assert names("n:Person&Dev") == ["Bob"]
    assert names("n:(Person|City)&!Dev") == ["Ada", "Paris"]
    assert names("n:Dev&!Person|City") == ["Dee", "Paris"]  # & binds tighter than |
    assert names("(n:Person|City) AND n.name STARTS WITH 'P'") == ["Paris"]
    rows = run(graph, "MATCH ()-[r]->() WHERE r:KNOWS|LIKES RETURN type(r) ORDER BY type(r)").rows
    assert rows == [["KNOWS"], ["LIKES"]]
    rows = run(graph, "MATCH (n:City) RETURN n:Person|City, n:!City").rows
    assert rows == [[True, False]]


def test_a_bar_after_a_label_in_a_list_comprehension_still_projects() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:Person {name: 'Ada'}), (:Dev {name: 'Dee'})")
    rows = run(
        graph,
        "MATCH (n) WITH collect(n) AS ns"
        " RETURN [x IN ns WHERE x:Person | x.name], [x IN ns WHERE x:Dev | x:Person]",
    ).rows
    assert rows == [[["Ada"], [False]]]
    rows = run(graph, "MATCH ()-[r:KNOWS|LIKES*1..2]->() RETURN count(r)").rows
    assert rows == [[0]]


# -- dynamic property keys, vector and bounding-box functions ------------------------------


def test_set_and_remove_a_property_whose_key_is_computed() -> None:
    graph = MemoryGraph()
    run(graph, "CREATE (:P {name: 'A', age: 1})")
    result = run(
        graph, "MATCH (n:P) SET n[$key] = 37, n['x' + 'y'] = 1 RETURN n.age, n.xy", {"key": "age"}
    )
    assert result.rows == [[37, 1]] and counters(result) == {"properties_set": 2}
    result = run(graph, "MATCH (n:P) REMOVE n[$key] RETURN keys(n)", {"key": "age"})
    assert result.rows == [[["name", "xy"]]]
    for key in (1, None):
        assert fails(graph, "MATCH (n:P) SET n[$key] = 1", {"key": key}).status_code == TYPE


def test_vector_similarity_functions() -> None:
    cosine_orthogonal, cosine_parallel, euclidean, missing = one_row(
        "RETURN vector.similarity.cosine([1.0, 0.0], [0.0, 1.0]),"
        " vector.similarity.cosine([1, 1], [2, 2]), vector.similarity.euclidean([0, 0], [1, 1]),"
        " vector.similarity.cosine(null, [1])"
    )
    assert cosine_orthogonal == pytest.approx(0.5)
    assert cosine_parallel == pytest.approx(1.0)
    assert euclidean == pytest.approx(1 / 3)
    assert missing is None
    error = fails(MemoryGraph(), "RETURN vector.similarity.cosine([1], [1, 2])")
    assert error.status_code == "Neo.ClientError.Statement.ArgumentError"


def test_point_within_bbox_including_across_the_date_line() -> None:
    assert one_row(
        "RETURN point.withinBBox(point({x: 1, y: 1}), point({x: 0, y: 0}), point({x: 2, y: 2})),"
        " point.withinBBox(point({x: 3, y: 1}), point({x: 0, y: 0}), point({x: 2, y: 2})),"
        " point.withinBBox(point({longitude: 179, latitude: 0}),"
        "   point({longitude: 170, latitude: -1}), point({longitude: -170, latitude: 1})),"
        " point.withinBBox(point({x: 1, y: 1}), point({longitude: 0, latitude: 0}),"
        "   point({longitude: 2, latitude: 2})),"
        " point.withinBBox(null, point({x: 0, y: 0}), point({x: 2, y: 2}))"
    ) == [True, False, True, None, None]


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ("MATCH (n:$($label)) RETURN n", "dynamic labels"),
        ("MATCH (n) SET n:$($label)", "dynamic labels"),
        ("MATCH (n) RETURN n ORDER BY n.name NULLS LAST", "NULLS FIRST / NULLS LAST"),
        ("RETURN trim(BOTH 'x' FROM 'xax')", "btrim"),
    ],
)
def test_newer_syntax_is_refused_naming_it(query: str, named: str) -> None:
    error = fails(MemoryGraph(), query, {"label": "A"})
    assert error.status_code == SYNTAX and error.detail == "UnsupportedFeature"
    assert named in str(error)


def test_foreach_over_the_leaders_pending_writes_sees_them_and_carries_only_its_own() -> None:
    from cluster.pipeline import Pending, execute_over_pending

    graph = MemoryGraph()
    engine = Engine()
    run(graph, "CREATE (:Root)")
    first = engine.run(graph, "FOREACH (x IN [1, 2] | CREATE (:K {v: x}))").write_set
    pending = [Pending(b"p1", first, index=2)]
    second, overlaid = execute_over_pending(
        engine,
        graph,
        1,
        pending,
        "MATCH (r:Root) FOREACH (x IN [2, 3] | MERGE (k:K {v: x}) MERGE (r)-[:HAS]->(k))",
        {},
    )
    assert overlaid
    assert counters(second)["nodes_created"] == 1  # v: 2 is pending, only v: 3 is new
    assert counters(second)["relationships_created"] == 2
    created = [op for op in second.write_set.operations if isinstance(op, CreateNode)]
    assert [op.node_id for op in created] == [3]  # after the pending 1 and 2; none of theirs
    writer = resolve(
        ["custom"],
        {"custom": (grant(Action.MATCH, NODES), grant(Action.MATCH, RELATIONSHIPS))},
    )
    with pytest.raises(CypherError) as caught:
        execute_over_pending(
            engine,
            graph,
            1,
            [*pending, Pending(b"p2", second.write_set)],
            "FOREACH (x IN [1] | CREATE (:K {v: 9}))",
            {},
            writer,
        )
    assert caught.value.status_code == FORBIDDEN
    counted, _ = execute_over_pending(
        engine,
        graph,
        1,
        [*pending, Pending(b"p2", second.write_set)],
        "MATCH (:Root)-[:HAS]->(k:K) RETURN collect(k.v) AS vs",
        {},
    )
    assert sorted(counted.rows[0][0]) == [2, 3]


def test_call_in_transactions_is_an_auto_commit_statement_over_the_pending_overlay() -> None:
    from cluster.pipeline import Pending, execute_over_pending

    graph = MemoryGraph()
    engine = Engine()
    first = engine.run(graph, "CREATE (:K {v: 1})").write_set
    result, overlaid = execute_over_pending(
        engine,
        graph,
        0,
        [Pending(b"p1", first, index=1)],
        "MATCH (k:K) CALL (k) { SET k.seen = true } IN TRANSACTIONS RETURN k.v",
        {},
    )
    assert overlaid and result.rows == [[1]]
    assert counters(result) == {"properties_set": 1}
