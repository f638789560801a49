"""The parser: positions, keywords as names, pattern parentheses, and the error kinds."""

import pytest

from cypher import ast
from cypher.errors import CypherError
from cypher.parser import parse


def _query(text: str) -> ast.SingleQuery:
    body = parse(text).body
    assert isinstance(body, ast.Query)
    return body.parts[0]


def test_keywords_are_names_after_a_dot_and_as_map_keys() -> None:
    clause = _query("MATCH (n) RETURN n.end, {count: 1, end: n.order} AS m").clauses[1]
    assert isinstance(clause, ast.Return)
    first = clause.projection.items[0].expression
    assert first == ast.Property(ast.Variable("n"), "end")


def test_parenthesised_pattern_in_where_is_a_pattern_and_arithmetic_stays_arithmetic() -> None:
    match = _query("MATCH (a), (b) WHERE (a)-[:T]->(b) RETURN (1) - (2) AS d").clauses[0]
    assert isinstance(match, ast.Match)
    assert isinstance(match.where, ast.PatternExpr)
    ret = _query("RETURN (1) - (2) AS d").clauses[0]
    assert isinstance(ret, ast.Return)
    assert isinstance(ret.projection.items[0].expression, ast.BinaryOp)


def test_column_names_keep_the_original_text() -> None:
    clause = _query("MATCH (n) RETURN count(*), toUpper(n.name)").clauses[1]
    assert isinstance(clause, ast.Return)
    assert [i.text for i in clause.projection.items] == ["count(*)", "toUpper(n.name)"]


def test_variable_length_ranges_parse_to_bounds() -> None:
    match = _query("MATCH ()-[*2..5]->(), ()-[*..3]-(), ()<-[*]-() RETURN 1").clauses[0]
    assert isinstance(match, ast.Match)
    assert [p.rels[0].length for p in match.patterns] == [(2, 5), (1, 3), (1, None)]
    assert [p.rels[0].direction for p in match.patterns] == ["out", "both", "in"]


def test_syntax_errors_point_at_line_and_column() -> None:
    with pytest.raises(CypherError) as info:
        parse("MATCH (n)\nRETURN n +")
    assert info.value.kind == "SyntaxError"
    assert info.value.detail == "UnexpectedSyntax"
    assert info.value.line == 2


def test_integer_literal_range_is_checked_at_compile_time() -> None:
    assert isinstance(_query("RETURN -9223372036854775808 AS m").clauses[0], ast.Return)
    with pytest.raises(CypherError) as info:
        from cypher import Engine
        from store.memory import MemoryGraph

        Engine().run(MemoryGraph(), "RETURN 9223372036854775808 AS m")
    assert info.value.detail == "IntegerOverflow"


def test_schema_commands_are_recognised() -> None:
    body = parse("CREATE INDEX person_id IF NOT EXISTS FOR (p:Person) ON (p.id)").body
    assert body == ast.SchemaCommand(
        "create_index", "person_id", "Person", ("id",), if_not_exists=True
    )
    constraint = parse("CREATE CONSTRAINT FOR (p:Person) REQUIRE p.email IS UNIQUE").body
    assert isinstance(constraint, ast.SchemaCommand)
    assert constraint.action == "create_constraint"
    assert constraint.properties == ("email",)
