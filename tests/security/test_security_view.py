"""Fine-grained graph privileges enforced by the Cypher engine, case by case from Neo4j's
documented semantics (operations manual, Authorization: read privileges, write privileges,
property-based access control, privileges: some examples), on the in-memory model and on
the encrypted store alike.

Denied reads are silent (the element does not exist: not in matches, counts, paths, index
seeks, keys(), properties(), db.labels() or PROFILE rows); denied writes fail with
Neo.ClientError.Security.Forbidden and change nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.security.privileges import (
    NODES,
    RELATIONSHIPS,
    Action,
    Condition,
    Privilege,
    deny,
    grant,
    resolve,
)
from cypher import CypherError, Engine
from store.crypto import Keyring
from store.graph import GraphStore
from store.memory import MemoryGraph

KEK = bytes(range(32))
ENGINE = Engine()

# Alice knows Bob (a secret agent) who knows Carol; Alice also knows unlabelled Dan, who knows
# Gus, who knows Carol: with Bob hidden, Carol is three hops from Alice instead of two.
BASE = [
    "CREATE INDEX person_ssn FOR (n:Person) ON (n.ssn)",
    "CREATE (a:Person {name: 'Alice', ssn: '111', age: 30}),"
    " (b:Person:Secret {name: 'Bob', ssn: '222'}),"
    " (c:Person {name: 'Carol', age: 40}), (d {name: 'Dan'}), (g:Person {name: 'Gus'}),"
    " (e1:Email {name: 'e1', classification: 'secret'}), (e2:Email {name: 'e2'}),"
    " (a)-[:KNOWS {since: 2000}]->(b), (b)-[:KNOWS]->(c), (a)-[:KNOWS]->(d),"
    " (d)-[:KNOWS]->(g), (g)-[:KNOWS]->(c), (c)-[:LIKES]->(e1)",
]

MATCH_ALL = (grant(Action.MATCH, NODES), grant(Action.MATCH, RELATIONSHIPS))
HIDE_SECRET = (*MATCH_ALL, deny(Action.TRAVERSE, NODES, ["Secret"]))
SECRET_EMAIL = Condition("classification", "=", "secret")


class Db:
    """A graph (memory or encrypted store) that applies each statement's write set."""

    def __init__(self, view: Any, apply: Callable[[Any], None]) -> None:
        self.view = view
        self._apply = apply

    def run(self, query: str, params: dict[str, Any] | None = None, privileges=None) -> Any:
        result = ENGINE.run(self.view, query, params, privileges)
        self._apply(result.write_set)
        return result

    def dump(self) -> list[Any]:
        return list(self.view.canonical_dump())


@pytest.fixture(params=["memory", "store"])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Db]:
    if request.param == "memory":
        graph = MemoryGraph()
        database = Db(graph, graph.apply)
        for statement in BASE:
            database.run(statement)
        yield database
        return
    store = GraphStore(tmp_path / "graph", Keyring(tmp_path, KEK))
    index = [0]

    def apply(write_set: Any) -> None:
        index[0] += 1
        store.apply(write_set, index[0])

    database = Db(store, apply)
    for statement in BASE:
        database.run(statement)
    try:
        yield database
    finally:
        store.close()


def user(*privileges: Privilege, roles: tuple[str, ...] = ("custom",)):
    return resolve(roles, {"custom": privileges})


READS: list[tuple[str, tuple[Privilege, ...], str, list[list[Any]]]] = [
    ("admin sees all nodes", (), "MATCH (n) RETURN count(n)", [[7]]),
    ("public alone sees nothing", ("PUBLIC",), "MATCH (n) RETURN count(n)", [[0]]),  # type: ignore[list-item]
    ("one denied label hides a multi-label node", HIDE_SECRET, "MATCH (n) RETURN count(n)", [[6]]),
    ("count of a label", HIDE_SECRET, "MATCH (n:Person) RETURN count(*)", [[3]]),
    ("count(*) of relationships", HIDE_SECRET, "MATCH ()-[r]->() RETURN count(*)", [[4]]),
    (
        "relationships to hidden nodes are hidden",
        HIDE_SECRET,
        "MATCH (:Person {name: 'Alice'})-->(x) RETURN x.name",
        [["Dan"]],
    ),
    (
        "variable-length paths skip hidden nodes",
        HIDE_SECRET,
        "MATCH (:Person {name: 'Alice'})-[:KNOWS*]->(x) RETURN x.name ORDER BY x.name",
        [["Carol"], ["Dan"], ["Gus"]],
    ),
    (
        "shortestPath goes around a hidden node",
        HIDE_SECRET,
        "MATCH p = shortestPath((:Person {name: 'Alice'})-[:KNOWS*]->(:Person {name: 'Carol'}))"
        " RETURN length(p)",
        [[3]],
    ),
    (
        "an index seek does not find a hidden node",
        HIDE_SECRET,
        "MATCH (n:Person {ssn: '222'}) RETURN n.name",
        [],
    ),
    (
        "an index seek does not match an unreadable property",
        (*MATCH_ALL, deny(Action.READ, NODES, ["Person"], ["ssn"])),
        "MATCH (n:Person {ssn: '111'}) RETURN n.name",
        [],
    ),
    (
        "an unreadable property is null and absent from keys, properties and projections",
        (*MATCH_ALL, deny(Action.READ, NODES, ["Person"], ["ssn"])),
        "MATCH (n:Person {name: 'Alice'})"
        " RETURN n.ssn, [k IN keys(n) WHERE k = 'ssn'], properties(n), n {.*}",
        [[None, [], {"name": "Alice", "age": 30}, {"name": "Alice", "age": 30}]],
    ),
    (
        "WHERE on an unreadable property finds nothing",
        (*MATCH_ALL, deny(Action.READ, NODES, ["Person"], ["ssn"])),
        "MATCH (n) WHERE n.ssn IS NOT NULL RETURN count(n)",
        [[0]],
    ),
    (
        "READ of some properties only",
        (
            grant(Action.TRAVERSE, NODES),
            grant(Action.READ, NODES, ["Person"], ["name"]),
        ),
        "MATCH (n:Person {name: 'Alice'}) RETURN n.name, n.age, keys(n)",
        [["Alice", None, ["name"]]],
    ),
    (
        "TRAVERSE without READ: the node counts but its properties are null",
        (grant(Action.TRAVERSE, NODES, ["Person"]),),
        "MATCH (n) RETURN count(n), collect(n.name)",
        [[4, []]],
    ),
    (
        "a grant on one label shows the node with all its labels, not unlabelled ones",
        (grant(Action.MATCH, NODES, ["Person"]),),
        "MATCH (n) WHERE n:Secret RETURN labels(n), n.name",
        [[["Person", "Secret"], "Bob"]],
    ),
    (
        "unlabelled nodes need NODES *",
        (grant(Action.MATCH, NODES, ["Person", "Email"]),),
        "MATCH (n) RETURN count(n)",
        [[6]],
    ),
    (
        "a relationship type that cannot be traversed is hidden",
        (*MATCH_ALL, deny(Action.TRAVERSE, RELATIONSHIPS, ["KNOWS"])),
        "MATCH ()-[r]->() RETURN type(r), count(r)",
        [["LIKES", 1]],
    ),
    (
        "relationships need their own grant",
        (grant(Action.MATCH, NODES),),
        "MATCH (a)-[r]-(b) RETURN count(r)",
        [[0]],
    ),
    (
        "an unreadable relationship property is null",
        (*MATCH_ALL, deny(Action.READ, RELATIONSHIPS, ["KNOWS"], ["since"])),
        "MATCH ()-[r:KNOWS]->() WHERE r.since IS NOT NULL RETURN count(r)",
        [[0]],
    ),
    (
        "DENY MATCH {props} denies only the reads",
        (*MATCH_ALL, deny(Action.MATCH, NODES, ["Secret"], ["ssn"])),
        "MATCH (n:Secret) RETURN n.name, n.ssn",
        [["Bob", None]],
    ),
    (
        "DENY MATCH {*} hides the node",
        (*MATCH_ALL, deny(Action.MATCH, NODES, ["Secret"])),
        "MATCH (n:Person) RETURN count(n)",
        [[3]],
    ),
    (
        "a property-based DENY hides nodes where it holds",
        (*MATCH_ALL, deny(Action.TRAVERSE, NODES, ["Email"], condition=SECRET_EMAIL)),
        "MATCH (n:Email) RETURN n.name",
        [["e2"]],
    ),
    (
        "a property-based DENY whose condition is null does not apply",
        (
            *MATCH_ALL,
            deny(
                Action.TRAVERSE, NODES, ["Email"], condition=Condition("classification", "<>", "x")
            ),
        ),
        "MATCH (n:Email) RETURN n.name",
        [["e2"]],
    ),
    (
        "a property-based GRANT shows only nodes where it holds",
        (
            grant(Action.MATCH, NODES, ["Email"], condition=Condition("classification", "IS NULL")),
            grant(Action.MATCH, RELATIONSHIPS),
        ),
        "MATCH (n) RETURN n.name",
        [["e2"]],
    ),
    (
        "a property-based READ rule",
        (
            grant(Action.TRAVERSE, NODES),
            grant(Action.READ, NODES, ["Person"], condition=Condition("age", ">=", 35)),
        ),
        "MATCH (n:Person) RETURN n.name",
        [[None], [None], ["Carol"], [None]],
    ),
    (
        "a relationship to a node hidden by a property rule is hidden",
        (*MATCH_ALL, deny(Action.TRAVERSE, NODES, ["Email"], condition=SECRET_EMAIL)),
        "MATCH ()-[r:LIKES]->() RETURN count(r)",
        [[0]],
    ),
    (
        "db.labels() lists only labels of visible nodes",
        (*MATCH_ALL, deny(Action.TRAVERSE, NODES, ["Email"])),
        "CALL db.labels() YIELD label RETURN label",
        [["Person"], ["Secret"]],
    ),
    (
        "db.relationshipTypes() lists only visible relationships' types",
        (*MATCH_ALL, deny(Action.TRAVERSE, NODES, ["Email"])),
        "CALL db.relationshipTypes() YIELD relationshipType RETURN relationshipType",
        [["KNOWS"]],
    ),
    (
        "db.propertyKeys() lists only readable keys",
        (
            grant(Action.TRAVERSE, NODES),
            grant(Action.READ, NODES, None, ["name"]),
            grant(Action.TRAVERSE, RELATIONSHIPS),
        ),
        "CALL db.propertyKeys() YIELD propertyKey RETURN propertyKey",
        [["name"]],
    ),
    (
        "aggregates see visible nodes only",
        HIDE_SECRET,
        "MATCH (n:Person) RETURN collect(n.name), sum(n.age), count(DISTINCT n.ssn)",
        [[["Alice", "Carol", "Gus"], 70, 1]],
    ),
    (
        "COUNT subqueries and pattern expressions see visible nodes only",
        HIDE_SECRET,
        "MATCH (a:Person {name: 'Alice'}) RETURN COUNT { (a)-->() }, size([(a)-->(x) | x])",
        [[1, 1]],
    ),
    ("the reader role reads everything", ("reader",), "MATCH (n) RETURN count(n)", [[7]]),  # type: ignore[list-item]
]


def _privileges(spec: tuple[Any, ...]):
    if spec == ():
        return None
    if all(isinstance(item, str) for item in spec):
        return resolve(spec if spec != ("PUBLIC",) else ())
    return user(*spec)


@pytest.mark.parametrize(("case", "spec", "query", "expected"), READS, ids=[c[0] for c in READS])
def test_read_privileges_hide_what_they_deny(
    db: Db, case: str, spec: tuple[Any, ...], query: str, expected: list[list[Any]]
) -> None:
    result = db.run(query, privileges=_privileges(spec))
    assert result.rows == expected, case


def test_profile_and_explain_row_counts_do_not_reveal_hidden_nodes(db: Db) -> None:
    privileges = user(*HIDE_SECRET)
    profiled = db.run("PROFILE MATCH (n:Person) RETURN n.name", privileges=privileges).plan
    explained = db.run("EXPLAIN MATCH (n:Person) RETURN n.name", privileges=privileges).plan

    def numbers(plan: Any) -> list[float]:
        found = [plan.estimated_rows, plan.rows or 0]
        for child in plan.children:
            found.extend(numbers(child))
        return found

    assert max(numbers(profiled)) == 3
    assert max(numbers(explained)) == 3


# Writes: (case, privileges, query, expected rows or an error's status code). A failure
# leaves the graph unchanged.
FORBIDDEN = "Neo.ClientError.Security.Forbidden"
CONNECTED = "Neo.ClientError.Schema.ConstraintValidationFailed"
WRITES: list[tuple[str, tuple[Any, ...], str, Any]] = [
    ("a reader cannot create", ("reader",), "CREATE (:Person)", FORBIDDEN),
    (
        "CREATE on a label",
        (*MATCH_ALL, grant(Action.CREATE, NODES, ["Person"])),
        "CREATE (n:Person) RETURN labels(n)",
        [[["Person"]]],
    ),
    (
        "creating a node needs CREATE on every label",
        (*MATCH_ALL, grant(Action.CREATE, NODES, ["Person"])),
        "CREATE (:Person:Email)",
        FORBIDDEN,
    ),
    (
        "creating a node with properties needs SET PROPERTY",
        (*MATCH_ALL, grant(Action.CREATE, NODES, ["Person"])),
        "CREATE (:Person {name: 'Zed'})",
        FORBIDDEN,
    ),
    (
        "CREATE and SET PROPERTY {name}",
        (
            *MATCH_ALL,
            grant(Action.CREATE, NODES, ["Person"]),
            grant(Action.SET_PROPERTY, NODES, ["Person"], ["name"]),
        ),
        "CREATE (n:Person {name: 'Zed'}) RETURN n.name",
        [["Zed"]],
    ),
    (
        "creating a relationship needs CREATE on its type",
        (*MATCH_ALL, grant(Action.CREATE, RELATIONSHIPS, ["LIKES"])),
        "MATCH (a {name: 'Alice'}), (d {name: 'Dan'}) CREATE (a)-[:KNOWS]->(d)",
        FORBIDDEN,
    ),
    (
        "CREATE on a relationship type",
        (*MATCH_ALL, grant(Action.CREATE, RELATIONSHIPS, ["LIKES"])),
        "MATCH (a {name: 'Alice'}), (d {name: 'Dan'}) CREATE (a)-[r:LIKES]->(d) RETURN type(r)",
        [["LIKES"]],
    ),
    (
        "deleting a node needs DELETE on all its labels",
        (*MATCH_ALL, grant(Action.DELETE, NODES, ["Person"]), grant(Action.DELETE, RELATIONSHIPS)),
        "MATCH (n:Secret) DETACH DELETE n",
        FORBIDDEN,
    ),
    (
        "DELETE on every label of the node",
        (
            *MATCH_ALL,
            grant(Action.DELETE, NODES, ["Person", "Secret"]),
            grant(Action.DELETE, RELATIONSHIPS),
        ),
        "MATCH (n:Secret) DETACH DELETE n RETURN 1",
        [[1]],
    ),
    (
        "DETACH DELETE also needs DELETE on the relationships",
        (*MATCH_ALL, grant(Action.DELETE, NODES)),
        "MATCH (n {name: 'Dan'}) DETACH DELETE n",
        FORBIDDEN,
    ),
    (
        "DETACH DELETE fails when it would delete relationships the user cannot see",
        (*HIDE_SECRET, grant(Action.DELETE)),
        "MATCH (n {name: 'Alice'}) DETACH DELETE n",
        FORBIDDEN,
    ),
    (
        "DETACH DELETE of a node whose relationships are all visible",
        (*HIDE_SECRET, grant(Action.DELETE)),
        "MATCH (n {name: 'Dan'}) DETACH DELETE n RETURN 1",
        [[1]],
    ),
    (
        "DELETE of a node that still has hidden relationships",
        (*HIDE_SECRET, grant(Action.DELETE)),
        "MATCH (n {name: 'Alice'}) OPTIONAL MATCH (n)-[r]-() DELETE r, n",
        CONNECTED,
    ),
    (
        "SET LABEL on one label",
        (*MATCH_ALL, grant(Action.SET_LABEL, NODES, ["Email"])),
        "MATCH (n {name: 'Dan'}) SET n:Email RETURN labels(n)",
        [[["Email"]]],
    ),
    (
        "SET LABEL of another label",
        (*MATCH_ALL, grant(Action.SET_LABEL, NODES, ["Email"])),
        "MATCH (n {name: 'Dan'}) SET n:Secret",
        FORBIDDEN,
    ),
    (
        "REMOVE LABEL on one label",
        (*MATCH_ALL, grant(Action.REMOVE_LABEL, NODES, ["Secret"])),
        "MATCH (n:Secret) REMOVE n:Secret RETURN labels(n)",
        [[["Person"]]],
    ),
    (
        "REMOVE LABEL of another label",
        (*MATCH_ALL, grant(Action.REMOVE_LABEL, NODES, ["Secret"])),
        "MATCH (n:Secret) REMOVE n:Person",
        FORBIDDEN,
    ),
    (
        "SET PROPERTY {age} on Person",
        (*MATCH_ALL, grant(Action.SET_PROPERTY, NODES, ["Person"], ["age"])),
        "MATCH (n {name: 'Alice'}) SET n.age = 31 RETURN n.age",
        [[31]],
    ),
    (
        "SET PROPERTY of another property",
        (*MATCH_ALL, grant(Action.SET_PROPERTY, NODES, ["Person"], ["age"])),
        "MATCH (n {name: 'Alice'}) SET n.name = 'A'",
        FORBIDDEN,
    ),
    (
        "SET PROPERTY on another label",
        (*MATCH_ALL, grant(Action.SET_PROPERTY, NODES, ["Person"], ["age"])),
        "MATCH (n:Email {name: 'e2'}) SET n.age = 1",
        FORBIDDEN,
    ),
    (
        "REMOVE of a property needs SET PROPERTY",
        (*MATCH_ALL,),
        "MATCH (n {name: 'Alice'}) REMOVE n.age",
        FORBIDDEN,
    ),
    (
        "a denied relationship property",
        (*MATCH_ALL, grant(Action.SET_PROPERTY), deny(Action.SET_PROPERTY, RELATIONSHIPS)),
        "MATCH ()-[r:LIKES]->() SET r.weight = 1",
        FORBIDDEN,
    ),
    (
        "MERGE that matches needs only MATCH",
        MATCH_ALL,
        "MERGE (n:Person {name: 'Alice'}) RETURN n.age",
        [[30]],
    ),
    (
        "MERGE that would create needs CREATE and SET PROPERTY",
        MATCH_ALL,
        "MERGE (n:Person {name: 'Zed'})",
        FORBIDDEN,
    ),
    (
        "the MERGE privilege",
        (*MATCH_ALL, grant(Action.MERGE, NODES, ["Person"])),
        "MERGE (n:Person {name: 'Zed'}) RETURN n.name",
        [["Zed"]],
    ),
    ("an editor cannot create a new label", ("editor",), "CREATE (:Brand)", FORBIDDEN),
    (
        "an editor cannot create a new property name",
        ("editor",),
        "CREATE (:Person {nickname: 'x'})",
        FORBIDDEN,
    ),
    (
        "an editor cannot create a new relationship type",
        ("editor",),
        "MATCH (a {name: 'Alice'}), (d {name: 'Dan'}) CREATE (a)-[:MET]->(d)",
        FORBIDDEN,
    ),
    (
        "an editor may use existing names",
        ("editor",),
        "CREATE (n:Person {name: 'Zed'})-[:KNOWS]->(:Email) RETURN n.name",
        [["Zed"]],
    ),
    (
        "a publisher may create new names",
        ("publisher",),
        "CREATE (:Brand {slogan: 'x'})-[:MET]->(n:Brand) RETURN labels(n)",
        [[["Brand"]]],
    ),
    (
        "CREATE NEW LABEL alone",
        (*MATCH_ALL, grant(Action.CREATE, NODES), grant(Action.CREATE_NEW_LABEL)),
        "CREATE (n:Brand) RETURN labels(n)",
        [[["Brand"]]],
    ),
    (
        "a publisher cannot manage indexes",
        ("publisher",),
        "CREATE INDEX FOR (n:Email) ON (n.name)",
        FORBIDDEN,
    ),
    (
        "an architect manages indexes",
        ("architect",),
        "CREATE INDEX email_name FOR (n:Email) ON (n.name)",
        [],
    ),
    (
        "an editor cannot create constraints",
        ("editor",),
        "CREATE CONSTRAINT FOR (n:Email) REQUIRE n.name IS UNIQUE",
        FORBIDDEN,
    ),
    (
        "an architect cannot drop what does not exist but may try",
        ("architect",),
        "DROP INDEX nothing IF EXISTS",
        [],
    ),
    ("a reader lists indexes", ("reader",), "SHOW INDEXES YIELD name RETURN name", None),
    ("PUBLIC alone cannot list indexes", ("PUBLIC",), "SHOW INDEXES", FORBIDDEN),
]


@pytest.mark.parametrize(("case", "spec", "query", "expected"), WRITES, ids=[c[0] for c in WRITES])
def test_write_privileges_allow_or_fail_with_forbidden(
    db: Db, case: str, spec: tuple[Any, ...], query: str, expected: Any
) -> None:
    before = db.dump()
    privileges = _privileges(spec)
    if isinstance(expected, str):
        with pytest.raises(CypherError) as caught:
            db.run(query, privileges=privileges)
        assert caught.value.status_code == expected, case
        assert db.dump() == before, "a failed statement changed the graph"
        return
    result = db.run(query, privileges=privileges)
    if expected is not None:
        assert result.rows == expected, case


def test_a_uniqueness_violation_does_not_name_the_hidden_node(db: Db) -> None:
    db.run("CREATE CONSTRAINT person_name FOR (n:Person) REQUIRE n.name IS UNIQUE")
    restricted = user(*HIDE_SECRET, grant(Action.WRITE))
    hidden_id = db.run("MATCH (n:Secret) RETURN id(n)").rows[0][0]
    with pytest.raises(CypherError) as caught:
        db.run("CREATE (:Person {name: 'Bob'})", privileges=restricted)
    assert caught.value.status_code == "Neo.ClientError.Schema.ConstraintValidationFailed"
    assert f"node {hidden_id}" not in str(caught.value)


def test_a_transaction_reads_its_own_writes_through_the_filter(db: Db) -> None:
    restricted = user(*HIDE_SECRET, grant(Action.WRITE))
    tx = ENGINE.begin(db.view, restricted)
    tx.run("CREATE (:Person {name: 'Zed'})")
    assert tx.run("MATCH (n:Person) RETURN count(n)").rows == [[4]]
    db._apply(tx.commit())
    assert db.run("MATCH (n:Person) RETURN count(n)").rows == [[5]]


def test_no_privileges_means_unrestricted(db: Db) -> None:
    assert db.run("MATCH (n) RETURN count(n)", privileges=None).rows == [[7]]
    admin = resolve(["admin"])
    assert db.run("MATCH (n) RETURN count(n)", privileges=admin).rows == [[7]]
    assert db.run("CREATE (:Brand)", privileges=admin).counters["nodes_created"] == 1


def test_constraint_creation_checks_hidden_data_without_naming_it(db: Db) -> None:
    db.run("CREATE (:Person:Secret {name: 'Alice'})")
    hidden_id = db.run("MATCH (n:Secret {name: 'Alice'}) RETURN id(n)").rows[0][0]
    restricted = user(*HIDE_SECRET, grant(Action.CONSTRAINT_MANAGEMENT))
    with pytest.raises(CypherError) as caught:
        db.run(
            "CREATE CONSTRAINT person_name FOR (n:Person) REQUIRE n.name IS UNIQUE",
            privileges=restricted,
        )
    assert caught.value.status_code == "Neo.ClientError.Schema.ConstraintCreationFailed"
    assert str(hidden_id) not in str(caught.value)


def test_relationship_type_scans_and_seeks_are_filtered(db: Db) -> None:
    from cypher.secure import SecureView
    from cypher.txstate import TxState, TxStateView
    from store.writeset import CreateIndex, WriteSet

    db._apply(WriteSet((CreateIndex("knows_since", "KNOWS", ("since",), True),)))

    def scan(*privileges: Privilege) -> tuple[int, list[int]]:
        view = SecureView(db.view, user(*privileges))
        return (
            len(list(view.relationship_ids_by_type("KNOWS"))),
            list(view.relationship_ids_by_property("KNOWS", "since", 2000)),
        )

    admin_count, admin_seek = scan(grant(Action.ALL_GRAPH))
    assert admin_count == 5 and len(admin_seek) == 1
    assert scan(*HIDE_SECRET) == (3, [])
    assert scan(*MATCH_ALL, deny(Action.READ, RELATIONSHIPS, ["KNOWS"], ["since"])) == (5, [])
    assert scan(*MATCH_ALL, deny(Action.TRAVERSE, RELATIONSHIPS, ["KNOWS"])) == (0, [])
    # Over pending writes: a new KNOWS {since: 2000} between visible nodes shows.
    tx = TxState(db.view)
    tx.create_relationship("KNOWS", 0, 2, {"since": 2000})
    view = SecureView(TxStateView(tx), user(*HIDE_SECRET))
    assert len(list(view.relationship_ids_by_type("KNOWS"))) == 4
    assert len(list(view.relationship_ids_by_property("KNOWS", "since", 2000))) == 1
