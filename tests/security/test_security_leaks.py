"""Leaks and wrong answers found by probing the privilege-filtered engine as a restricted
user would, each pinned by the smallest case that showed it (the graph and fixtures of
test_security_view.py: Alice knows secret Bob, who knows Carol; Alice knows unlabelled Dan,
who knows Gus, who knows Carol).

Each expectation follows Neo4j's documented semantics: a node the user cannot traverse does
not exist for them, in any statement of a transaction; a uniqueness constraint holds over
the whole graph, whatever the writer may read."""

from __future__ import annotations

import pytest
import test_security_view as view_cases
from test_security_system import Cluster
from test_security_view import ENGINE, HIDE_SECRET, MATCH_ALL, Db, user

from cluster.pipeline import Overlay, Pending
from cluster.security.privileges import NODES, Action, PrivilegeSet, deny, grant
from cluster.security.system import SecurityError
from cypher import CypherError
from store.memory import MemoryGraph

db = view_cases.db
"""The same graph, on the in-memory model and on the encrypted store."""

CONSTRAINT_FAILED = "Neo.ClientError.Schema.ConstraintValidationFailed"


def test_a_node_hidden_between_two_statements_of_a_transaction_is_hidden_in_the_second(
    db: Db,
) -> None:
    restricted = user(*HIDE_SECRET)
    tx = ENGINE.begin(db.view, restricted)
    assert tx.run("MATCH (:Person {name: 'Gus'})<--(x) RETURN count(x)").rows == [[1]]
    # Another user's commit puts Dan under the denied label while the transaction is open.
    db.run("MATCH (d {name: 'Dan'}) SET d:Secret, d.plan = 'X'")
    assert tx.run("MATCH (:Person {name: 'Gus'})<--(x) RETURN x, id(x)").rows == []
    assert tx.run("MATCH (a:Person {name: 'Alice'})-->(x) RETURN count(x)").rows == [[0]]


def test_a_node_read_before_another_commit_hid_it_is_hidden_in_the_next_statement(db: Db) -> None:
    restricted = user(*HIDE_SECRET, grant(Action.WRITE))
    tx = ENGINE.begin(db.view, restricted)
    assert tx.run("MATCH (c:Person {name: 'Carol'}) RETURN c.name").rows == [["Carol"]]
    tx.run("MATCH (g:Person {name: 'Gus'}) SET g.age = 50")  # a node it wrote stays its own
    db.run("MATCH (c {name: 'Carol'}) SET c:Secret")
    assert sorted(tx.run("MATCH (n:Person) RETURN n.name").rows) == [["Alice"], ["Gus"]]
    assert tx.run("MATCH (n:Person {name: 'Gus'}) RETURN n.age").rows == [[50]]
    assert tx.run("MATCH (n) WHERE n.name = 'Carol' RETURN count(n)").rows == [[0]]


def test_a_node_whose_unreadable_value_collides_cannot_take_the_constrained_label(db: Db) -> None:
    db.run("CREATE CONSTRAINT person_ssn FOR (n:Person) REQUIRE n.ssn IS UNIQUE")
    db.run("CREATE (:Employee {name: 'Eve', ssn: '111'})")  # Alice's ssn
    restricted = user(
        *MATCH_ALL, deny(Action.READ, NODES, ["Person", "Employee"], ["ssn"]), grant(Action.WRITE)
    )
    before = db.dump()
    with pytest.raises(CypherError) as caught:
        db.run("MATCH (n:Employee) SET n:Person", privileges=restricted)
    assert caught.value.status_code == CONSTRAINT_FAILED
    assert db.dump() == before


def test_the_constraint_sees_an_unreadable_value_written_by_a_pending_write(db: Db) -> None:
    # On the leader's pipelined path, the node and its value are another user's write that
    # is proposed and not yet applied.
    db.run("CREATE CONSTRAINT person_ssn FOR (n:Person) REQUIRE n.ssn IS UNIQUE")
    pending = ENGINE.run(db.view, "CREATE (:Employee {name: 'Eve', ssn: '111'})").write_set
    restricted = user(
        *MATCH_ALL, deny(Action.READ, NODES, ["Person", "Employee"], ["ssn"]), grant(Action.WRITE)
    )
    overlay = Overlay(ENGINE, db.view, 0, [Pending(b"eve", pending)])
    with pytest.raises(CypherError) as caught:
        overlay.execute("MATCH (n:Employee) SET n:Person", {}, restricted)
    assert caught.value.status_code == CONSTRAINT_FAILED


def test_a_constraint_is_not_created_over_a_changed_node_whose_unreadable_value_collides(
    db: Db,
) -> None:
    db.run("CREATE (:Employee {name: 'Eve', ssn: '111'})")  # Alice's ssn
    restricted = user(
        *MATCH_ALL,
        deny(Action.READ, NODES, ["Person", "Employee"], ["ssn"]),
        grant(Action.WRITE),
        grant(Action.CONSTRAINT_MANAGEMENT),
    )
    tx = ENGINE.begin(db.view, restricted)
    tx.run("MATCH (n:Employee) SET n:Person")
    with pytest.raises(CypherError) as caught:
        tx.run("CREATE CONSTRAINT person_ssn FOR (n:Person) REQUIRE n.ssn IS UNIQUE")
    assert caught.value.status_code == "Neo.ClientError.Schema.ConstraintCreationFailed"


def test_the_order_of_an_unordered_pattern_does_not_depend_on_hidden_nodes() -> None:
    # Where a pattern starts decides the order of its rows; it was chosen on counts that
    # included hidden nodes, so adding hidden Emails flipped the order a user saw.
    def graph(hidden_emails: int) -> Db:
        memory = MemoryGraph()
        database = Db(memory, memory.apply)
        database.run(
            "CREATE (p1:Person {name: 'p1'}), (p2:Person {name: 'p2'}), (:Person),"
            " (e1:Email {name: 'e1'}), (e2:Email {name: 'e2'}),"
            " (p1)-[:SENT]->(e2), (p2)-[:SENT]->(e1)"
        )
        for _ in range(hidden_emails):
            database.run("CREATE (:Email:Secret)")
        return database

    query = "MATCH (a:Person)-->(b:Email) RETURN a.name, b.name"
    restricted = user(*HIDE_SECRET)
    expected = graph(0).run(query).rows
    assert graph(3).run(query, privileges=restricted).rows == expected


def test_a_deny_on_the_database_named_in_another_case_applies() -> None:
    # Database names are case-insensitive in Neo4j: an administrator's DENY on GRAPH Neo4j
    # was stored as written and never matched the graph "neo4j", so the grant on * won.
    cluster = Cluster()
    cluster.run("admin", "CREATE ROLE analyst")
    cluster.run("admin", "GRANT MATCH {*} ON GRAPH * NODES * TO analyst")
    cluster.run("admin", "DENY TRAVERSE ON GRAPH Neo4j NODES Secret TO analyst")
    cluster.run("admin", "DENY READ {ssn} ON GRAPH NEO4J NODES Person TO analyst")
    privileges = cluster.state.privileges_of_roles(["analyst"])
    assert not privileges.can_traverse_node({"Person", "Secret"})
    assert not privileges.can_read_node_property({"Person"}, "ssn")
    # A rule stored before names were normalised applies as well.
    stored = PrivilegeSet(
        [grant(Action.MATCH, NODES), deny(Action.TRAVERSE, NODES, ["S"], graph="NEO4J")]
    )
    assert not stored.can_traverse_node({"S"})


def test_a_privilege_on_a_database_that_does_not_exist_is_refused() -> None:
    # A misspelt name would otherwise store a DENY that protects nothing, silently.
    cluster = Cluster()
    cluster.run("admin", "CREATE ROLE analyst")
    for query in (
        "DENY TRAVERSE ON GRAPH neo4k NODES Secret TO analyst",
        "DENY ACCESS ON DATABASE neo4k TO analyst",
    ):
        with pytest.raises(SecurityError) as caught:
            cluster.run("admin", query)
        assert caught.value.code == "Neo.ClientError.Database.DatabaseNotFound", query
    assert cluster.state.privileges_of_roles(["analyst"]).can_traverse_node(set()) is False
