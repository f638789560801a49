"""Index and constraint privileges are as fine as Neo4j's: CREATE INDEX and DROP INDEX (and
CREATE/DROP CONSTRAINT) are separate privileges, each implied by INDEX MANAGEMENT
(CONSTRAINT MANAGEMENT) and by ALL DATABASE PRIVILEGES; a grant of one does not give the
other, and the system database's commands grant exactly the privilege they name."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.security.admin import execute_admin
from cluster.security.privileges import Action, PrivilegeSet, deny, grant
from cluster.security.system import (
    Command,
    SecurityState,
    decode_commands,
    encode_commands,
)
from cypher import CypherError, Engine
from store.memory import MemoryGraph

FORBIDDEN = "Neo.ClientError.Security.Forbidden"
CREATE_INDEX = "CREATE INDEX p_id FOR (p:P) ON (p.id)"
DROP_INDEX = "DROP INDEX p_id"
CREATE_CONSTRAINT = "CREATE CONSTRAINT p_key FOR (p:P) REQUIRE p.key IS UNIQUE"
DROP_CONSTRAINT = "DROP CONSTRAINT p_key"


def _outcome(privileges: PrivilegeSet, query: str, graph: MemoryGraph) -> str:
    engine = Engine()
    try:
        result = engine.run(graph, query, {}, privileges)
    except CypherError as error:
        return error.status_code
    graph.apply(result.write_set)
    return "ok"


@pytest.mark.parametrize(
    ("granted", "expected"),
    [
        ([Action.CREATE_INDEX], ["ok", FORBIDDEN]),
        ([Action.DROP_INDEX], [FORBIDDEN, "ok"]),
        ([Action.INDEX_MANAGEMENT], ["ok", "ok"]),
        ([Action.ALL_DATABASE], ["ok", "ok"]),
        ([Action.CREATE_CONSTRAINT], [FORBIDDEN, FORBIDDEN]),
    ],
)
def test_creating_and_dropping_an_index_are_separate_privileges(
    granted: list[Action], expected: list[str]
) -> None:
    graph = MemoryGraph()
    admin = PrivilegeSet([grant(Action.ALL_DATABASE)])
    privileges = PrivilegeSet([grant(Action.ACCESS), *(grant(a) for a in granted)])
    created = _outcome(privileges, CREATE_INDEX, graph)
    if created != "ok":  # the index must exist for the drop to be about privileges
        assert _outcome(admin, CREATE_INDEX, graph) == "ok"
    assert [created, _outcome(privileges, DROP_INDEX, graph)] == expected


def test_a_deny_of_dropping_constraints_leaves_creating_them() -> None:
    graph = MemoryGraph()
    privileges = PrivilegeSet([grant(Action.CONSTRAINT_MANAGEMENT), deny(Action.DROP_CONSTRAINT)])
    assert _outcome(privileges, CREATE_CONSTRAINT, graph) == "ok"
    assert _outcome(privileges, DROP_CONSTRAINT, graph) == FORBIDDEN


def test_the_system_database_grants_exactly_the_schema_privilege_it_names() -> None:
    state = SecurityState()
    index = 1

    def run(query: str) -> Any:
        nonlocal index
        result = execute_admin(state, "admin", query, {}, hasher=_hash, verifier=_verify)
        if result.commands:
            index += 1
            state.apply(decode_commands(encode_commands(result.commands)), index)
        return result

    state.apply([Command("bootstrap_admin", {"name": "admin", "hash": _hash("adminpass")})], 1)
    run("CREATE ROLE indexer")
    run("GRANT ACCESS ON DATABASE * TO indexer")
    run("GRANT CREATE INDEX ON DATABASE * TO indexer")
    run("CREATE USER ivy SET PASSWORD 'ivy-pass-1' CHANGE NOT REQUIRED")
    run("GRANT ROLE indexer TO ivy")
    shown = run("SHOW ROLE indexer PRIVILEGES AS COMMANDS").rows
    assert shown == [
        ["GRANT ACCESS ON DATABASE * TO indexer"],
        ["GRANT CREATE INDEX ON DATABASE * TO indexer"],
    ]
    graph = MemoryGraph()
    privileges = state.privileges_for("ivy")
    assert _outcome(privileges, CREATE_INDEX, graph) == "ok"
    assert _outcome(privileges, DROP_INDEX, graph) == FORBIDDEN


def _hash(password: str) -> str:
    return "fake$" + password[::-1]


def _verify(password: str, encoded: str) -> bool:
    return encoded == _hash(password)
