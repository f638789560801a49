"""Any input gives a result or a CypherError: never a crash, a hang or runaway memory."""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cypher import CypherError, Engine, Limits
from store.memory import MemoryGraph

ENGINE = Engine()
TOKENS = [
    "MATCH",
    "OPTIONAL",
    "WHERE",
    "RETURN",
    "WITH",
    "UNWIND",
    "AS",
    "CREATE",
    "MERGE",
    "SET",
    "DELETE",
    "DETACH",
    "REMOVE",
    "ORDER BY",
    "SKIP",
    "LIMIT",
    "DISTINCT",
    "UNION",
    "CALL",
    "YIELD",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "AND",
    "OR",
    "NOT",
    "IN",
    "IS NULL",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    ".",
    "..",
    "-",
    "->",
    "<-",
    "*",
    "+",
    "/",
    "%",
    "=",
    "<>",
    "<",
    ">",
    "|",
    "$p",
    "n",
    "m",
    "r",
    "x",
    "1",
    "2.5",
    "'s'",
    "null",
    "true",
    "count(",
    "collect(",
    "size(",
    "range(",
    "date(",
    "duration(",
    "A",
    "T",
    "`q`",
]


def _run(query: str, params: dict[str, object] | None = None) -> None:
    graph = MemoryGraph()
    try:
        result = ENGINE.run(graph, "CREATE (:A {v: 1})-[:T]->(:A {v: 2})")
        graph.apply(result.write_set)
        result = ENGINE.run(graph, query, params or {"p": 1})
        graph.apply(result.write_set)
    except CypherError as error:
        assert error.status_code.startswith("Neo.ClientError.")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=string.printable, max_size=80))
def test_cypher_arbitrary_text_gives_a_result_or_a_cypher_error(query: str) -> None:
    _run(query)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(TOKENS), max_size=25))
def test_cypher_token_soup_gives_a_result_or_a_cypher_error(tokens: list[str]) -> None:
    _run(" ".join(tokens))


@settings(max_examples=100, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=20,
    )
)
def test_cypher_any_parameter_value_is_handled(value: object) -> None:
    _run("RETURN $p AS v, $p = $p AS same, size(toString($p)) AS n", {"p": value})
    _run("CREATE (n:P {v: $p}) RETURN n", {"p": value})


def test_cypher_huge_integer_literals_are_refused_cleanly() -> None:
    _run("RETURN " + "9" * 5000)
    _run("RETURN " + "9" * 5000 + ".5")


def test_cypher_deep_nesting_is_refused_cleanly() -> None:
    for opener, closer in (("[", "]"), ("(", ")"), ("{a: ", "}")):
        _run("RETURN " + opener * 3000 + "1" + closer * 3000)
    _run("RETURN " + "-" * 5000 + "1")
    _run("RETURN " + " + ".join(["1"] * 5000))
    _run("RETURN " + "NOT " * 3000 + "true")


def test_cypher_long_strings_and_invalid_unicode_are_handled() -> None:
    _run("RETURN '" + "x" * 200_000 + "' AS s")
    _run("RETURN $p AS s", {"p": "\udcff broken surrogate"})
    _run("RETURN '\\uZZZZ'")


def test_cypher_runaway_expansion_ends_with_a_clear_error() -> None:
    engine = Engine(Limits(max_rows=10_000, max_expansions=50_000))
    graph = MemoryGraph()
    graph.apply(engine.run(graph, "UNWIND range(1, 30) AS i CREATE (:N {i: i})").write_set)
    graph.apply(
        engine.run(graph, "MATCH (a:N), (b:N) WHERE a.i < b.i CREATE (a)-[:E]->(b)").write_set
    )
    try:
        engine.run(graph, "MATCH p = (:N)-[*]-(:N) RETURN count(p)")
    except CypherError as error:
        assert "exceed" in str(error) or "more than" in str(error)
    else:
        raise AssertionError("an unbounded expansion must hit the limit")
    try:
        engine.run(graph, "UNWIND range(1, 200) AS a UNWIND range(1, 200) AS b RETURN a, b")
    except CypherError as error:
        assert "exceeded" in str(error)
    else:
        raise AssertionError("40,000 rows must exceed a 10,000-row limit")
