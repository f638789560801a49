"""Neo4j's documented privilege semantics, case by case, through the real client against one
real three-node cluster: an admin creates roles and users and grants or denies through the
``system`` database, then each case's statement runs as its user (``connect(...,
auth=(user, password))``). The engine-level table is ``tests/security/test_security_view.py``;
this one checks the same rules survive the cluster's faces (login, the user's resolved
privileges on every node, reads on followers, writes on the leader).

Denied reads are silent; denied writes fail with ``Neo.ClientError.Security.Forbidden`` and
change nothing. Writes that are allowed run in a transaction that is rolled back, so that every
case sees the same graph (and an allowed new label stays new for the next case); the last test
commits a few allowed writes for real."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import LocalCluster, start_cluster, wait_for

from cluster.client import Client, connect
from cluster.errors import QuiverError

FORBIDDEN = "Neo.ClientError.Security.Forbidden"
CONNECTED = "Neo.ClientError.Schema.ConstraintValidationFailed"

# Alice knows Bob (a secret agent) who knows Carol; Alice also knows unlabelled Dan, who knows
# Gus, who knows Carol: with Bob hidden, Carol is three hops from Alice instead of two.
GRAPH = [
    "CREATE INDEX person_ssn FOR (n:Person) ON (n.ssn)",
    "CREATE (a:Person {name: 'Alice', ssn: '111', age: 30}),"
    " (b:Person:Secret {name: 'Bob', ssn: '222'}),"
    " (c:Person {name: 'Carol', age: 40}), (d {name: 'Dan'}), (g:Person {name: 'Gus'}),"
    " (e1:Email {name: 'e1', classification: 'secret'}), (e2:Email {name: 'e2'}),"
    " (a)-[:KNOWS {since: 2000}]->(b), (b)-[:KNOWS]->(c), (a)-[:KNOWS]->(d),"
    " (d)-[:KNOWS]->(g), (g)-[:KNOWS]->(c), (c)-[:LIKES]->(e1)",
]
FINGERPRINT = (
    "MATCH (n) OPTIONAL MATCH (n)-[r]->() "
    "RETURN count(DISTINCT n), count(r), collect(DISTINCT labels(n)), collect(properties(n))"
)

# A role is its grants and denies ("{r}" is the role's name); a built-in role is its name.
MATCH_ALL = (
    "GRANT MATCH {*} ON GRAPH * NODES * TO {r}",
    "GRANT MATCH {*} ON GRAPH * RELATIONSHIPS * TO {r}",
)
HIDE_SECRET = (*MATCH_ALL, "DENY TRAVERSE ON GRAPH * NODES Secret TO {r}")
NO_SSN = (*MATCH_ALL, "DENY READ {ssn} ON GRAPH * NODES Person TO {r}")
NO_SECRET_EMAIL = (
    *MATCH_ALL,
    "DENY TRAVERSE ON GRAPH * FOR (n:Email) WHERE n.classification = 'secret' TO {r}",
)
PUBLIC_ONLY = ()

Role = tuple[str, ...]

READS: list[tuple[str, Role, str, list[list[Any]]]] = [
    ("public alone sees nothing", PUBLIC_ONLY, "MATCH (n) RETURN count(n)", [[0]]),
    ("one denied label hides a multi-label node", HIDE_SECRET, "MATCH (n) RETURN count(n)", [[6]]),
    ("count of a label", HIDE_SECRET, "MATCH (n:Person) RETURN count(*)", [[3]]),
    (
        "relationships of a hidden node vanish",
        HIDE_SECRET,
        "MATCH ()-[r]->() RETURN count(*)",
        [[4]],
    ),
    (
        "only visible neighbours",
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
        "aggregates see visible nodes only",
        HIDE_SECRET,
        "MATCH (n:Person) RETURN collect(n.name), sum(n.age), count(DISTINCT n.ssn)",
        [[["Alice", "Carol", "Gus"], 70, 1]],
    ),
    (
        "a denied property is null and absent from keys and properties",
        NO_SSN,
        "MATCH (n:Person {name: 'Alice'}) RETURN n.ssn, [k IN keys(n) WHERE k = 'ssn'],"
        " properties(n)",
        [[None, [], {"name": "Alice", "age": 30}]],
    ),
    (
        "an index seek does not match a denied property",
        NO_SSN,
        "MATCH (n:Person {ssn: '111'}) RETURN n.name",
        [],
    ),
    (
        "WHERE on a denied property finds nothing",
        NO_SSN,
        "MATCH (n) WHERE n.ssn IS NOT NULL RETURN count(n)",
        [[0]],
    ),
    (
        "a denied relationship property is null",
        (*MATCH_ALL, "DENY READ {since} ON GRAPH * RELATIONSHIPS KNOWS TO {r}"),
        "MATCH ()-[r:KNOWS]->() WHERE r.since IS NOT NULL RETURN count(r)",
        [[0]],
    ),
    (
        "TRAVERSE without READ: counted, properties null",
        ("GRANT TRAVERSE ON GRAPH * NODES Person TO {r}",),
        "MATCH (n) RETURN count(n), collect(n.name)",
        [[4, []]],
    ),
    (
        "a property-based DENY hides the nodes where it holds",
        NO_SECRET_EMAIL,
        "MATCH (n:Email) RETURN n.name",
        [["e2"]],
    ),
    (
        "a property-based DENY whose property is null does not apply",
        (
            *MATCH_ALL,
            "DENY TRAVERSE ON GRAPH * FOR (n:Email) WHERE n.classification <> 'x' TO {r}",
        ),
        "MATCH (n:Email) RETURN n.name",
        [["e2"]],
    ),
    (
        "a property-based GRANT shows only the nodes where it holds",
        (
            "GRANT MATCH {*} ON GRAPH * FOR (n:Email) WHERE n.classification IS NULL TO {r}",
            "GRANT MATCH {*} ON GRAPH * RELATIONSHIPS * TO {r}",
        ),
        "MATCH (n) RETURN n.name",
        [["e2"]],
    ),
    (
        "a relationship to a node hidden by a property rule is hidden",
        NO_SECRET_EMAIL,
        "MATCH ()-[r:LIKES]->() RETURN count(r)",
        [[0]],
    ),
    (
        "db.labels() lists only labels of visible nodes",
        (*MATCH_ALL, "DENY TRAVERSE ON GRAPH * NODES Email TO {r}"),
        "CALL db.labels() YIELD label RETURN label ORDER BY label",
        [["Person"], ["Secret"]],
    ),
    ("the reader role reads everything", ("reader",), "MATCH (n) RETURN count(n)", [[7]]),
    (
        "the architect role reads everything",
        ("architect",),
        "MATCH (n:Secret) RETURN n.name, n.ssn",
        [["Bob", "222"]],
    ),
    ("the admin role reads everything", ("admin",), "MATCH ()-[r]->() RETURN count(r)", [[6]]),
]

# Writes: (case, role, statement, rows of the allowed statement or the refusal's code).
WRITES: list[tuple[str, Role, str, Any]] = [
    ("a reader cannot create", ("reader",), "CREATE (:Person)", FORBIDDEN),
    (
        "CREATE on a label",
        (*MATCH_ALL, "GRANT CREATE ON GRAPH * NODES Person TO {r}"),
        "CREATE (n:Person) RETURN labels(n)",
        [[["Person"]]],
    ),
    (
        "creating a node needs CREATE on every label",
        (*MATCH_ALL, "GRANT CREATE ON GRAPH * NODES Person TO {r}"),
        "CREATE (:Person:Email)",
        FORBIDDEN,
    ),
    (
        "creating a node with properties needs SET PROPERTY",
        (*MATCH_ALL, "GRANT CREATE ON GRAPH * NODES Person TO {r}"),
        "CREATE (:Person {name: 'Zed'})",
        FORBIDDEN,
    ),
    (
        "SET PROPERTY on one property of one label",
        (*MATCH_ALL, "GRANT SET PROPERTY {age} ON GRAPH * NODES Person TO {r}"),
        "MATCH (n {name: 'Alice'}) SET n.age = 31 RETURN n.age",
        [[31]],
    ),
    (
        "SET PROPERTY of another property",
        (*MATCH_ALL, "GRANT SET PROPERTY {age} ON GRAPH * NODES Person TO {r}"),
        "MATCH (n {name: 'Alice'}) SET n.name = 'A'",
        FORBIDDEN,
    ),
    (
        "a DENY on a relationship property beats a GRANT on all",
        (
            *MATCH_ALL,
            "GRANT SET PROPERTY {*} ON GRAPH * TO {r}",
            "DENY SET PROPERTY {*} ON GRAPH * RELATIONSHIPS * TO {r}",
        ),
        "MATCH ()-[r:LIKES]->() SET r.weight = 1",
        FORBIDDEN,
    ),
    (
        "DETACH DELETE fails when it would delete relationships the user cannot see",
        (*HIDE_SECRET, "GRANT DELETE ON GRAPH * TO {r}"),
        "MATCH (n {name: 'Alice'}) DETACH DELETE n",
        FORBIDDEN,
    ),
    (
        "DETACH DELETE of a node whose relationships are all visible",
        (*HIDE_SECRET, "GRANT DELETE ON GRAPH * TO {r}"),
        "MATCH (n {name: 'Dan'}) DETACH DELETE n RETURN 1",
        [[1]],
    ),
    (
        "DELETE of a node that still has hidden relationships",
        (*HIDE_SECRET, "GRANT DELETE ON GRAPH * TO {r}"),
        "MATCH (n {name: 'Alice'}) OPTIONAL MATCH (n)-[r]-() DELETE r, n",
        CONNECTED,
    ),
    (
        "deleting a node needs DELETE on all its labels",
        (
            *MATCH_ALL,
            "GRANT DELETE ON GRAPH * NODES Person TO {r}",
            "GRANT DELETE ON GRAPH * RELATIONSHIPS * TO {r}",
        ),
        "MATCH (n:Secret) DETACH DELETE n",
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
        "the MERGE privilege creates",
        (*MATCH_ALL, "GRANT MERGE {*} ON GRAPH * NODES Person TO {r}"),
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
        "CREATE NEW LABEL alone",
        (
            *MATCH_ALL,
            "GRANT CREATE ON GRAPH * NODES * TO {r}",
            "GRANT CREATE NEW LABEL ON DATABASE * TO {r}",
        ),
        "CREATE (n:Brand) RETURN labels(n)",
        [[["Brand"]]],
    ),
    (
        "CREATE NEW LABEL is not CREATE NEW PROPERTY NAME",
        (
            *MATCH_ALL,
            "GRANT CREATE ON GRAPH * NODES * TO {r}",
            "GRANT SET PROPERTY {*} ON GRAPH * TO {r}",
            "GRANT CREATE NEW LABEL ON DATABASE * TO {r}",
        ),
        "CREATE (:Brand {slogan: 'x'})",
        FORBIDDEN,
    ),
    (
        "a publisher may create new names",
        ("publisher",),
        "CREATE (:Brand {slogan: 'x'})-[:MET]->(n:Brand) RETURN labels(n)",
        [[["Brand"]]],
    ),
    (
        "a publisher cannot manage indexes",
        ("publisher",),
        "CREATE INDEX FOR (n:Email) ON (n.name)",
        FORBIDDEN,
    ),
    (
        "an editor cannot create constraints",
        ("editor",),
        "CREATE CONSTRAINT FOR (n:Email) REQUIRE n.name IS UNIQUE",
        FORBIDDEN,
    ),
    (
        "an admin may create new names",
        ("admin",),
        "CREATE (n:Brand) RETURN labels(n)",
        [[["Brand"]]],
    ),
]

ROLES: list[Role] = list(dict.fromkeys(case[1] for case in [*READS, *WRITES]))


class Users:
    """One user per distinct role of the tables (a built-in role granted as it is, a custom
    one created with its grants), logged in through the real client."""

    def __init__(self, cluster: LocalCluster) -> None:
        self._cluster = cluster
        self._clients: dict[Role, Client] = {}
        self.names: dict[Role, str] = {}
        admin = cluster.client
        for number, role in enumerate(ROLES):
            name = f"case_user_{number}"
            admin.system(f"CREATE USER {name} SET PASSWORD '{name}-pass' CHANGE NOT REQUIRED")
            if role and all(" " not in part for part in role):
                for built_in in role:
                    admin.system(f"GRANT ROLE {built_in} TO {name}")
            elif role:
                role_name = f"case_role_{number}"
                admin.system(f"CREATE ROLE {role_name}")
                for command in role:
                    admin.system(command.replace("{r}", role_name))
                admin.system(f"GRANT ROLE {role_name} TO {name}")
            self.names[role] = name

    def client(self, role: Role) -> Client:
        if role not in self._clients:
            name = self.names[role]
            self._clients[role] = connect(
                self._cluster.directory, auth=(name, f"{name}-pass"), timeout_s=10.0
            )
        return self._clients[role]

    def close(self) -> None:
        for client in self._clients.values():
            client.close()


def _all_applied(cluster: LocalCluster) -> bool:
    statuses = [s for s in cluster.statuses().values() if s is not None]
    if len(statuses) != 3:
        return False
    commit = max(status.commit_index for status in statuses)
    return all(status.applied_index >= commit for status in statuses)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from start_cluster(tmp_path_factory.mktemp("privileges"))


@pytest.fixture(scope="module")
def users(cluster: LocalCluster) -> Iterator[Users]:
    wait_for("a leader", cluster.leader)
    for statement in GRAPH:
        cluster.client.run(statement)
    made = Users(cluster)
    # Every node has the users and their privileges before any case logs in anywhere.
    wait_for("every node to apply the security state", lambda: _all_applied(cluster))
    try:
        yield made
    finally:
        made.close()


def _fingerprint(cluster: LocalCluster) -> Any:
    return cluster.client.run(FINGERPRINT, mode="read", consistency="linearizable").rows


@pytest.mark.parametrize(("case", "role", "query", "expected"), READS, ids=[c[0] for c in READS])
def test_reads_through_the_cluster_hide_what_is_denied(
    users: Users, case: str, role: Role, query: str, expected: list[list[Any]]
) -> None:
    result = users.client(role).run(query, mode="read", consistency="linearizable")
    assert result.rows == expected, case


@pytest.mark.parametrize(("case", "role", "query", "expected"), WRITES, ids=[c[0] for c in WRITES])
def test_writes_through_the_cluster_are_allowed_or_forbidden(
    cluster: LocalCluster, users: Users, case: str, role: Role, query: str, expected: Any
) -> None:
    client = users.client(role)
    before = _fingerprint(cluster)
    if isinstance(expected, str):
        with pytest.raises(QuiverError) as refused:
            client.run(query)
        assert refused.value.code == expected, case
    else:
        transaction = client.begin()
        try:
            assert transaction.run(query).rows == expected, case
        finally:
            transaction.rollback()
    assert _fingerprint(cluster) == before, "the graph changed"


def test_built_in_roles_manage_what_neo4j_lets_them(cluster: LocalCluster, users: Users) -> None:
    """architect: indexes and constraints, but not users; admin: users too. The allowed
    writes here commit through Raft for real."""
    architect = users.client(("architect",))
    architect.run("CREATE INDEX email_name FOR (n:Email) ON (n.name)")
    architect.run("DROP INDEX email_name")
    with pytest.raises(QuiverError) as refused:
        architect.system("CREATE USER nobody SET PASSWORD 'nobody-pass' CHANGE NOT REQUIRED")
    assert refused.value.code == FORBIDDEN
    with pytest.raises(QuiverError) as refused:
        users.client(("editor",)).system("SHOW USERS")
    assert refused.value.code == FORBIDDEN
    admin = users.client(("admin",))
    shown = [row[0] for row in admin.system("SHOW USERS").rows]
    assert users.names[("admin",)] in shown
    editor = users.client(("editor",))
    editor.run("CREATE (:Email {name: 'e3'})")
    assert editor.run(
        "MATCH (n:Email {name: 'e3'}) RETURN count(n)", mode="read", consistency="linearizable"
    ).rows == [[1]]
    # Committed by an editor, hidden from a user who may not traverse Email nodes.
    no_email = next(role for role in ROLES if "DENY TRAVERSE ON GRAPH * NODES Email TO {r}" in role)
    assert users.client(no_email).run(
        "MATCH (n {name: 'e3'}) RETURN count(n)", mode="read", consistency="linearizable"
    ).rows == [[0]]
