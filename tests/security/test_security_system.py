"""The replicated security state and the system database's commands, case by case from
Neo4j 5's documented semantics. Hashing is replaced by a fast fake (the real Argon2id has its
own tests); what matters here is that commands carry hashes only."""

from __future__ import annotations

from typing import Any

import pytest

from cluster.security.admin import AdminResult, execute_admin
from cluster.security.privileges import NODES, Action, Privilege
from cluster.security.system import (
    Command,
    SecurityError,
    SecurityState,
    decode_commands,
    encode_commands,
)

SYNTAX = "Neo.ClientError.Statement.SyntaxError"
FORBIDDEN = "Neo.ClientError.Security.Forbidden"


def fake_hash(password: str) -> str:
    if len(password) < 8:
        from cluster.security.passwords import PasswordPolicyError

        raise PasswordPolicyError("A password must be at least 8 characters")
    return "fake$" + password[::-1]


def fake_verify(password: str, encoded: str) -> bool:
    return encoded == "fake$" + password[::-1]


class Cluster:
    """A state and an index, applying what the admin commands return, as replicas do."""

    def __init__(self) -> None:
        self.state = SecurityState()
        self.index = 1
        self.apply([Command("bootstrap_admin", {"name": "admin", "hash": fake_hash("adminpass")})])

    def apply(self, commands: list[Command]) -> None:
        self.index += 1
        # Through the encoding, as a Raft entry would carry them.
        self.state.apply(decode_commands(encode_commands(commands)), self.index)

    def run(self, user: str, query: str, parameters: dict[str, Any] | None = None) -> AdminResult:
        result = execute_admin(
            self.state, user, query, parameters, hasher=fake_hash, verifier=fake_verify
        )
        if result.commands:
            self.apply(result.commands)
        return result

    def error(self, user: str, query: str, parameters: dict[str, Any] | None = None) -> str:
        with pytest.raises(SecurityError) as raised:
            self.run(user, query, parameters)
        return raised.value.code


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


def test_the_bootstrap_admin_exists_once_and_is_not_change_required(cluster: Cluster) -> None:
    admin = cluster.state.user("admin")
    assert admin is not None and not admin.change_required and "admin" in admin.roles
    cluster.apply([Command("bootstrap_admin", {"name": "other", "hash": "x"})])
    assert cluster.state.user("other") is None


def test_create_user_defaults_to_change_required_and_stores_only_a_hash(cluster: Cluster) -> None:
    result = cluster.run("admin", "CREATE USER alice SET PASSWORD 'secret-pw'")
    assert "secret-pw" not in encode_commands(result.commands).decode()
    alice = cluster.state.user("alice")
    assert alice is not None and alice.change_required and not alice.suspended
    assert alice.password_hash == fake_hash("secret-pw")
    rows = cluster.run("admin", "SHOW USERS").rows
    assert ["alice", ["PUBLIC"], True, False, None] in rows


def test_create_user_options(cluster: Cluster) -> None:
    cluster.run(
        "admin",
        "CREATE USER bob SET PLAINTEXT PASSWORD $pw CHANGE NOT REQUIRED SET STATUS SUSPENDED",
        {"pw": "password1"},
    )
    bob = cluster.state.user("bob")
    assert bob is not None and not bob.change_required and bob.suspended
    assert cluster.error("admin", "CREATE USER bob SET PASSWORD 'password2'") == (
        "Neo.ClientError.General.InvalidArguments"
    )
    assert not cluster.run("admin", "CREATE USER bob IF NOT EXISTS SET PASSWORD 'pass2word'").writes
    cluster.run("admin", "CREATE OR REPLACE USER bob SET PASSWORD 'password3'")
    bob = cluster.state.user("bob")
    assert bob is not None and bob.change_required and not bob.suspended
    assert cluster.error("admin", "CREATE OR REPLACE USER x IF NOT EXISTS SET PASSWORD 'p1234567'")


def test_passwords_shorter_than_eight_are_refused(cluster: Cluster) -> None:
    code = cluster.error("admin", "CREATE USER carol SET PASSWORD 'short'")
    assert code == "Neo.ClientError.General.InvalidArguments"
    assert cluster.state.user("carol") is None


def test_alter_and_drop_user(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE USER dave SET PASSWORD 'password1'")
    before = cluster.state.users["dave"].credential_index
    cluster.run("admin", "ALTER USER dave SET PASSWORD CHANGE NOT REQUIRED")
    assert cluster.state.users["dave"].credential_index == before  # tokens survive that
    cluster.run("admin", "ALTER USER dave SET STATUS SUSPENDED")
    dave = cluster.state.users["dave"]
    assert dave.suspended and not dave.change_required and dave.credential_index > before
    cluster.run("admin", "ALTER USER dave SET PASSWORD 'password2' SET STATUS ACTIVE")
    assert fake_verify("password2", cluster.state.users["dave"].password_hash)
    assert cluster.error("admin", "ALTER USER nobody SET STATUS ACTIVE")
    assert not cluster.run("admin", "ALTER USER nobody IF EXISTS SET STATUS ACTIVE").writes
    cluster.run("admin", "DROP USER dave")
    assert cluster.state.user("dave") is None
    assert cluster.error("admin", "DROP USER dave") == "Neo.ClientError.General.InvalidArguments"
    assert not cluster.run("admin", "DROP USER dave IF EXISTS").writes


def test_admins_cannot_suspend_or_drop_themselves(cluster: Cluster) -> None:
    assert cluster.error("admin", "ALTER USER admin SET STATUS SUSPENDED")
    assert cluster.error("admin", "DROP USER admin")
    admin = cluster.state.users["admin"]
    assert not admin.suspended


def test_a_change_required_user_can_only_change_their_password(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE USER erin SET PASSWORD 'initial-pw'")
    cluster.run("admin", "GRANT ROLE admin TO erin")
    code = cluster.error("erin", "SHOW USERS")
    assert code == "Neo.ClientError.Security.CredentialsExpired"
    assert cluster.error("erin", "ALTER CURRENT USER SET PASSWORD FROM 'wrong-pw' TO 'x1234567'")
    assert cluster.error("erin", "ALTER CURRENT USER SET PASSWORD FROM 'initial-pw' TO 'short'")
    assert cluster.error(
        "erin", "ALTER CURRENT USER SET PASSWORD FROM 'initial-pw' TO 'initial-pw'"
    )
    index = cluster.state.users["erin"].credential_index
    cluster.run("erin", "ALTER CURRENT USER SET PASSWORD FROM 'initial-pw' TO 'changed-pw'")
    erin = cluster.state.users["erin"]
    assert not erin.change_required and erin.credential_index > index
    assert fake_verify("changed-pw", erin.password_hash)
    assert [row[0] for row in cluster.run("erin", "SHOW USERS").rows] == ["admin", "erin"]


def test_dbms_privileges_are_checked(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE USER frank SET PASSWORD 'password1' CHANGE NOT REQUIRED")
    for query in (
        "SHOW USERS",
        "CREATE USER x SET PASSWORD 'password1'",
        "CREATE ROLE r",
        "GRANT ROLE reader TO frank",
        "GRANT TRAVERSE ON GRAPH * TO reader",
        "SHOW PRIVILEGES",
    ):
        assert cluster.error("frank", query) == "Neo.ClientError.Security.Forbidden", query
    assert cluster.run("frank", "SHOW CURRENT USER").rows == [
        ["frank", ["PUBLIC"], False, False, None]
    ]
    cluster.run("frank", "SHOW USER PRIVILEGES")  # one's own privileges need nothing
    cluster.run("admin", "CREATE ROLE usermgr")
    cluster.run("admin", "GRANT USER MANAGEMENT ON DBMS TO usermgr")
    cluster.run("admin", "GRANT ROLE usermgr TO frank")
    cluster.run("frank", "CREATE USER grace SET PASSWORD 'password1'")
    assert cluster.error("frank", "CREATE ROLE r2") == "Neo.ClientError.Security.Forbidden"
    cluster.run("admin", "DENY USER MANAGEMENT ON DBMS TO usermgr")
    assert cluster.error("frank", "DROP USER grace") == "Neo.ClientError.Security.Forbidden"


def test_roles_create_copy_drop_grant_revoke(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE USER hank SET PASSWORD 'password1'")
    cluster.run("admin", "CREATE ROLE analyst AS COPY OF reader")
    assert cluster.state.rules_of("analyst") == cluster.state.rules_of("reader")
    assert cluster.error("admin", "CREATE ROLE analyst")
    assert not cluster.run("admin", "CREATE ROLE analyst IF NOT EXISTS").writes
    cluster.run("admin", "GRANT ROLES analyst, editor TO hank")
    assert cluster.state.users["hank"].roles == {"analyst", "editor"}
    rows = cluster.run("admin", "SHOW ROLES WITH USERS").rows
    assert ["analyst", "hank"] in rows and ["PUBLIC", "hank"] in rows
    cluster.run("admin", "REVOKE ROLE editor FROM hank")
    assert cluster.state.users["hank"].roles == {"analyst"}
    cluster.run("admin", "DROP ROLE analyst")
    assert cluster.state.users["hank"].roles == frozenset()
    assert cluster.error("admin", "DROP ROLE PUBLIC")
    assert cluster.error("admin", "GRANT ROLE PUBLIC TO hank")
    assert cluster.error("admin", "GRANT ROLE nosuch TO hank")
    assert ["PUBLIC"] in cluster.run("admin", "SHOW ROLES").rows


def test_privileges_resolve_through_roles_for_the_engine(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE USER ivy SET PASSWORD 'password1'")
    nothing = cluster.state.privileges_for("ivy")
    assert nothing.can(Action.ACCESS)  # PUBLIC: access to the default database
    assert not nothing.can_traverse_node({"Person"})
    cluster.run("admin", "CREATE ROLE people")
    cluster.run("admin", "GRANT MATCH {name, age} ON GRAPH * NODES Person, Pet TO people")
    cluster.run("admin", "DENY READ {age} ON GRAPH * NODES Pet TO people")
    cluster.run("admin", "GRANT ROLE people TO ivy")
    rules = cluster.state.rules_of("people")
    assert len(rules) == 5  # one per label and property, as Neo4j stores them
    privileges = cluster.state.privileges_for("ivy")
    assert privileges.can_traverse_node({"Person"})
    assert privileges.can_read_node_property({"Person"}, "age")
    assert not privileges.can_read_node_property({"Pet"}, "age")
    assert not privileges.can_read_node_property({"Person"}, "secret")
    assert not privileges.can_traverse_node({"Other"})
    cluster.run("admin", "REVOKE DENY READ {age} ON GRAPH * NODES Pet FROM people")
    assert cluster.state.privileges_for("ivy").can_read_node_property({"Pet"}, "age")
    cluster.run("admin", "REVOKE MATCH {name, age} ON GRAPH * NODES Pet FROM people")
    assert not cluster.state.privileges_for("ivy").can_traverse_node({"Pet"})
    cluster.run("admin", "ALTER USER ivy SET STATUS SUSPENDED")
    assert not cluster.state.privileges_for("ivy").can(Action.ACCESS)


def test_graph_privilege_forms_parse(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE ROLE w")
    for query in (
        "GRANT TRAVERSE ON GRAPH neo4j NODES * TO w",
        "GRANT READ {*} ON GRAPHS * RELATIONSHIPS KNOWS TO w",
        "GRANT MATCH {*} ON HOME GRAPH ELEMENTS * TO w",
        "GRANT WRITE ON GRAPH * TO w",
        "GRANT CREATE ON GRAPH * NODES A TO w",
        "DENY DELETE ON GRAPH * RELATIONSHIPS R TO w",
        "GRANT SET LABEL A, B ON GRAPH * TO w",
        "DENY REMOVE LABEL * ON GRAPH * TO w",
        "GRANT SET PROPERTY {p} ON GRAPH * NODES A TO w",
        "GRANT MERGE {*} ON GRAPH * NODES A TO w",
        "GRANT ALL GRAPH PRIVILEGES ON GRAPH * TO w",
        "GRANT ACCESS ON DATABASE * TO w",
        "DENY ACCESS ON DATABASE neo4j TO w",
        "GRANT CREATE NEW LABEL ON DATABASE * TO w",
        "GRANT CREATE NEW RELATIONSHIP TYPE ON DATABASE * TO w",
        "GRANT CREATE NEW PROPERTY NAME ON DATABASE * TO w",
        "GRANT NAME MANAGEMENT ON DATABASE * TO w",
        "GRANT INDEX MANAGEMENT ON DATABASE * TO w",
        "GRANT CONSTRAINT MANAGEMENT ON DEFAULT DATABASE TO w",
        "GRANT ALL DATABASE PRIVILEGES ON DATABASE * TO w",
        "GRANT ROLE MANAGEMENT ON DBMS TO w",
        "GRANT PRIVILEGE MANAGEMENT ON DBMS TO w",
        "GRANT IMPERSONATE (alice, bob) ON DBMS TO w",
        "GRANT ALL DBMS PRIVILEGES ON DBMS TO w",
        "GRANT ALL PRIVILEGES ON DBMS TO w",
    ):
        result = cluster.run("admin", query)
        assert result.writes, query
    assert cluster.error("admin", "DENY MERGE {*} ON GRAPH * NODES A TO w")
    assert cluster.error("admin", "GRANT TRAVERSE ON DBMS TO w")
    assert cluster.error("admin", "GRANT TRAVERSE ON GRAPH * TO nosuch")
    assert cluster.error("admin", "GRANT FLY ON GRAPH * TO w") == (
        "Neo.ClientError.Statement.SyntaxError"
    )
    privileges = cluster.state.privileges_of_roles(["w"])
    assert privileges.can(Action.IMPERSONATE, "alice")
    assert not privileges.can(Action.ACCESS)  # DENY beats GRANT


def test_property_rules_are_kept_with_their_condition(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE ROLE pr")
    cluster.run("admin", "GRANT READ {*} ON GRAPH * FOR (n:Person) WHERE n.secret = false TO pr")
    cluster.run("admin", "DENY TRAVERSE ON GRAPH * FOR (n) WHERE n.level > 3 TO pr")
    cluster.run("admin", "GRANT TRAVERSE ON GRAPH * FOR (n:Doc {public: true}) TO pr")
    cluster.run("admin", "DENY MATCH {*} ON GRAPH * FOR (n:X) WHERE n.p IS NULL TO pr")
    rules = cluster.state.rules_of("pr")
    conditions = [rule.condition for rule in rules]
    assert all(condition is not None for condition in conditions)
    assert conditions[0] is not None and conditions[0].op == "=" and conditions[0].value is False
    assert rules[0].privilege.segment == NODES and rules[0].privilege.names == {"Person"}
    assert conditions[1] is not None and conditions[1].label is None
    commands = [row[0] for row in cluster.run("admin", "SHOW ROLE pr PRIVILEGES AS COMMANDS").rows]
    assert "GRANT READ {*} ON GRAPH * FOR (n:Person) WHERE n.secret = false TO pr" in commands
    assert "DENY TRAVERSE ON GRAPH * FOR (n) WHERE n.level > 3 TO pr" in commands
    cluster.run(
        "admin", "REVOKE GRANT READ {*} ON GRAPH * FOR (n:Person) WHERE n.secret = false FROM pr"
    )
    assert len(cluster.state.rules_of("pr")) == 3


def test_show_privileges_columns_and_commands(cluster: Cluster) -> None:
    result = cluster.run("admin", "SHOW ROLE reader PRIVILEGES")
    assert result.columns == [
        "access",
        "action",
        "resource",
        "graph",
        "segment",
        "role",
        "immutable",
    ]
    assert ["GRANTED", "match", "all_properties()", "*", "NODE(*)", "reader", False] in result.rows
    assert ["GRANTED", "access", "database", "*", "database", "reader", False] in result.rows
    commands = cluster.run("admin", "SHOW ROLE reader PRIVILEGES AS COMMANDS").rows
    assert ["GRANT MATCH {*} ON GRAPH * NODES * TO reader"] in commands
    assert ["GRANT ACCESS ON DATABASE * TO reader"] in commands
    user_rows = cluster.run("admin", "SHOW USER admin PRIVILEGES")
    assert user_rows.columns[-1] == "user"
    assert {row[5] for row in user_rows.rows} == {"PUBLIC", "admin"}


def test_revoking_a_builtin_grant_takes_effect(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE USER jo SET PASSWORD 'password1' CHANGE NOT REQUIRED")
    cluster.run("admin", "GRANT ROLE editor TO jo")
    assert cluster.state.privileges_for("jo").can_create_node({"A"})
    cluster.run("admin", "REVOKE GRANT WRITE ON GRAPH * FROM editor")
    assert not cluster.state.privileges_for("jo").can_create_node({"A"})
    assert cluster.state.privileges_for("jo").can_traverse_node({"A"})


def test_a_failing_entry_changes_nothing_on_any_replica(cluster: Cluster) -> None:
    before = cluster.state.encode()
    with pytest.raises(SecurityError):
        cluster.apply(
            [
                Command("create_role", {"name": "half"}),
                Command("grant_role", {"roles": ["nosuch"], "users": ["admin"]}),
            ]
        )
    assert cluster.state.encode() == before
    with pytest.raises(SecurityError):
        cluster.apply([Command("no_such_op", {})])
    assert cluster.state.encode() == before


def test_the_state_encodes_canonically_and_round_trips(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE USER kim SET PASSWORD 'password1'")
    cluster.run("admin", "CREATE ROLE k")
    cluster.run("admin", "GRANT READ {a} ON GRAPH * FOR (n:L) WHERE n.x <> 'y' TO k")
    cluster.run("admin", "GRANT ROLE k TO kim")
    data = cluster.state.encode()
    copy = SecurityState.decode(data)
    assert copy == cluster.state and copy.encode() == data
    replica = Cluster()
    replica.state = SecurityState.decode(data)
    assert replica.state.privileges_for("kim").can(Action.ACCESS)


def test_syntax_errors_and_non_system_commands(cluster: Cluster) -> None:
    assert cluster.error("admin", "CREATE USER") == "Neo.ClientError.Statement.SyntaxError"
    assert cluster.error("admin", "MATCH (n) RETURN n") == (
        "Neo.ClientError.Statement.NotSystemDatabaseCommand"
    )
    assert cluster.error("admin", "SHOW USERS extra") == "Neo.ClientError.Statement.SyntaxError"
    assert cluster.run("admin", "show users;").columns[0] == "user"
    assert cluster.run("admin", "SHOW DATABASES").rows[1][0] == "system"


def test_privilege_values_are_the_privileges_module_type(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE ROLE t")
    cluster.run("admin", "GRANT TRAVERSE ON GRAPH * NODES A TO t")
    assert all(isinstance(r.privilege, Privilege) for r in cluster.state.rules_of("t"))


def test_property_rules_reach_the_engine_as_conditions(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE USER lee SET PASSWORD 'password1' CHANGE NOT REQUIRED")
    cluster.run("admin", "CREATE ROLE cond")
    cluster.run("admin", "GRANT TRAVERSE ON GRAPH * NODES * TO cond")
    cluster.run("admin", "DENY TRAVERSE ON GRAPH * FOR (n:Doc) WHERE n.level > 3 TO cond")
    cluster.run("admin", "GRANT READ {*} ON GRAPH * FOR (n:Doc) WHERE n.tag IN ['a', 'b'] TO cond")
    cluster.run("admin", "GRANT ROLE cond TO lee")
    privileges = cluster.state.privileges_for("lee")
    conditional = [p for p in privileges._privileges if p.condition is not None]
    assert len(conditional) == 2
    assert {(p.condition.property, p.condition.operator) for p in conditional} == {
        ("level", ">"),
        ("tag", "IN"),
    }
    commands = [
        row[0] for row in cluster.run("admin", "SHOW ROLE cond PRIVILEGES AS COMMANDS").rows
    ]
    assert "GRANT READ {*} ON GRAPH * FOR (n:Doc) WHERE n.tag IN ['a', 'b'] TO cond" in commands
    # Conditions apply to reads on nodes only, as in Neo4j.
    assert cluster.error("admin", "GRANT CREATE ON GRAPH * FOR (n:Doc) WHERE n.x = 1 TO cond") == (
        "Neo.ClientError.General.InvalidArguments"
    )


def test_show_commands_take_yield_where_and_return_as_neo4j_does(cluster: Cluster) -> None:
    cluster.run("admin", "CREATE USER alice SET PASSWORD 'secret-pw' CHANGE NOT REQUIRED")
    cluster.run("admin", "CREATE USER bob SET PASSWORD 'secret-pw'")
    cluster.run("admin", "CREATE ROLE auditor")
    cluster.run("admin", "GRANT ROLE auditor TO alice")
    where = cluster.run("admin", "SHOW USERS WHERE 'auditor' IN roles")
    assert where.columns == ["user", "roles", "passwordChangeRequired", "suspended", "home"]
    assert where.rows == [["alice", ["PUBLIC", "auditor"], False, False, None]]
    assert cluster.run("admin", "SHOW USERS WHERE user = $who", {"who": "bob"}).rows[0][0] == "bob"
    yielded = cluster.run("admin", "SHOW USERS YIELD user AS name, suspended ORDER BY name DESC")
    assert yielded.columns == ["name", "suspended"]
    assert yielded.rows == [["bob", False], ["alice", False], ["admin", False]]
    assert cluster.run("admin", "SHOW USERS YIELD * SKIP 1 LIMIT 1").rows[0][0] == "alice"
    returned = cluster.run(
        "admin", "SHOW USERS YIELD user, roles WHERE size(roles) > 1 RETURN user"
    )
    assert returned.columns == ["user"] and returned.rows == [["admin"], ["alice"]]
    counted = cluster.run(
        "admin", "SHOW ROLES YIELD role WHERE role STARTS WITH 'a' RETURN count(*)"
    )
    assert counted.rows == [[3]]  # admin, architect, auditor
    # A word of the tail inside a string is not a clause of it.
    assert cluster.run("admin", "SHOW USERS YIELD user WHERE user CONTAINS 'return'").rows == []
    privileges = cluster.run("admin", "SHOW ROLE reader PRIVILEGES YIELD role, access").rows
    assert privileges and all(row == ["reader", "GRANTED"] for row in privileges)


def test_a_show_tail_is_checked_like_a_query_and_may_only_read(cluster: Cluster) -> None:
    assert cluster.error("admin", "SHOW USERS WHERE nosuch > 1") == SYNTAX
    assert cluster.error("admin", "SHOW USERS YIELD user WHERE") == SYNTAX
    assert cluster.error("admin", "SHOW USERS YIELD user CREATE (n) RETURN user") == SYNTAX
    # The command's own privilege is checked first: a tail does not widen what one may see.
    cluster.run("admin", "CREATE USER carol SET PASSWORD 'secret-pw' CHANGE NOT REQUIRED")
    assert cluster.error("carol", "SHOW USERS WHERE user = 'carol'") == FORBIDDEN
    assert cluster.run("carol", "SHOW CURRENT USER YIELD user").rows == [["carol"]]


def test_a_show_tail_may_start_on_a_new_line(cluster: Cluster) -> None:
    assert cluster.run("admin", "SHOW USERS\nWHERE\tsuspended").rows == []
