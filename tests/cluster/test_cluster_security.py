"""Authentication against the replicated users on a real three-node cluster: a user created
through Raft logs in on every node, wrong passwords are refused and lock out, a CHANGE
REQUIRED user must change the password first, suspension and DROP USER revoke session tokens
everywhere, and the administration commands work over Bolt's ``system`` database too."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import grpc
import neo4j
import pytest
from conftest import LocalCluster, start_cluster, wait_for

from cluster.client import Client, connect
from cluster.config import load_cluster
from cluster.errors import QuiverError
from proto import client_pb2, client_pb2_grpc

UNAUTHORIZED = "Neo.ClientError.Security.Unauthorized"
LOCKED = "Neo.ClientError.Security.AuthenticationRateLimit"
EXPIRED = "Neo.ClientError.Security.CredentialsExpired"
TRANSACTION_NOT_FOUND = "Neo.ClientError.Transaction.TransactionNotFound"
OUTDATED_CODE = "Neo.TransientError.Transaction.Outdated"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from start_cluster(tmp_path_factory.mktemp("security"))


def _client(cluster: LocalCluster, node_id: int, user: str, password: str) -> Client:
    """A client of one node only, logged in as `user`."""
    address = load_cluster(cluster.directory).node(node_id).grpc
    return connect(
        addresses=[address],
        ca=cluster.directory / "ca.pem",
        auth=(user, password),
        timeout_s=5.0,
    )


def _error(client: Client, query: str = "RETURN 1") -> str:
    with pytest.raises(QuiverError) as raised:
        client.run(query, mode="read", consistency="stale")
    return raised.value.code


def _can_read(cluster: LocalCluster, node_id: int, user: str, password: str) -> bool:
    with _client(cluster, node_id, user, password) as client:
        try:
            return client.run("RETURN 1 AS one", mode="read", consistency="stale").rows == [[1]]
        except QuiverError as error:
            if error.code not in (UNAUTHORIZED, LOCKED):
                raise
            return False


def _raw_run(
    cluster: LocalCluster, node_id: int, metadata: tuple[tuple[str, str], ...]
) -> tuple[dict[str, Any], list[client_pb2.RunResponse]]:
    """A Run with exactly this metadata (no client library): its trailing metadata and parts."""
    directory = cluster.directory
    address = load_cluster(directory).node(node_id).grpc
    credentials = grpc.ssl_channel_credentials((directory / "ca.pem").read_bytes())
    with grpc.secure_channel(address, credentials) as channel:
        request = client_pb2.RunRequest(
            query="RETURN 1",
            access_mode=client_pb2.ACCESS_MODE_READ,
            consistency=client_pb2.CONSISTENCY_STALE,
        )
        call = client_pb2_grpc.QueryStub(channel).Run(request, metadata=metadata, timeout=10)
        responses = list(call)
        return dict(call.trailing_metadata() or ()), responses


def _raw_code(cluster: LocalCluster, node_id: int, metadata: tuple[tuple[str, str], ...]) -> str:
    try:
        _raw_run(cluster, node_id, metadata)
    except grpc.RpcError as error:
        from cluster.errors import from_rpc_error

        return from_rpc_error(error).code  # type: ignore[arg-type]
    return ""


def _basic(user: str, password: str) -> tuple[str, str]:
    return ("authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


def test_a_user_created_through_raft_logs_in_on_every_node(cluster: LocalCluster) -> None:
    wait_for("a leader", cluster.leader)
    admin = cluster.client
    admin.system("CREATE USER alice SET PASSWORD 'alice-pass-1' CHANGE NOT REQUIRED")
    rows = admin.system("SHOW USERS").rows
    assert ["alice", ["PUBLIC"], False, False, None] in rows
    for node_id in (1, 2, 3):
        wait_for(
            f"alice on n{node_id}", lambda n=node_id: _can_read(cluster, n, "alice", "alice-pass-1")
        )
    # The log holds hashes only: the password appears in no node's configuration either.
    for config in cluster.directory.glob("nodes/*/node.json"):
        assert "alice-pass-1" not in config.read_text()
    assert (
        "$argon2id$"
        in json.loads((cluster.directory / "nodes/1/node.json").read_text())["admin_password_hash"]
    )


def test_wrong_passwords_are_unauthorized_then_locked_out_then_unlocked(
    cluster: LocalCluster,
) -> None:
    wait_for("a leader", cluster.leader)
    cluster.client.system(
        "CREATE USER carl IF NOT EXISTS SET PASSWORD 'carl-pass-1' CHANGE NOT REQUIRED"
    )
    wait_for("carl on n2", lambda: _can_read(cluster, 2, "carl", "carl-pass-1"))
    with _client(cluster, 2, "carl", "wrong-password") as wrong:
        assert [_error(wrong) for _ in range(3)] == [UNAUTHORIZED] * 3
        assert _error(wrong) == LOCKED
    with _client(cluster, 2, "carl", "carl-pass-1") as right:
        assert _error(right) == LOCKED  # locked whatever the password
    # The lock lasts 5 s (the default), then the right password works again.
    wait_for("the lock to expire", lambda: _can_read(cluster, 2, "carl", "carl-pass-1"), 20)


def test_a_change_required_user_must_change_the_password_first(cluster: LocalCluster) -> None:
    wait_for("a leader", cluster.leader)
    cluster.client.system("CREATE USER bob SET PASSWORD $pw", {"pw": "bob-initial"})
    with connect(cluster.directory, auth=("bob", "bob-initial"), timeout_s=5.0) as bob:
        wait_for("bob on the leader", lambda: _first_code(bob) == EXPIRED)
        with pytest.raises(QuiverError) as raised:
            bob.system("SHOW USERS")
        assert raised.value.code == EXPIRED
        bob.system("ALTER CURRENT USER SET PASSWORD FROM 'bob-initial' TO 'bob-changed'")
        assert _first_code(bob) == UNAUTHORIZED  # the old password is gone
    with connect(cluster.directory, auth=("bob", "bob-changed"), timeout_s=5.0) as bob:
        assert bob.run("RETURN 2 AS two", mode="read", consistency="linearizable").rows == [[2]]
        # An admin can require a change again: the remembered login follows at once.
        cluster.client.system("ALTER USER bob SET PASSWORD CHANGE REQUIRED")
        assert _first_code(bob) == EXPIRED


def _first_code(client: Client) -> str:
    try:
        client.run("RETURN 1", mode="read", consistency="linearizable")
    except QuiverError as error:
        return error.code
    return ""


def test_suspension_and_drop_revoke_session_tokens_on_every_node(cluster: LocalCluster) -> None:
    wait_for("a leader", cluster.leader)
    admin = cluster.client
    admin.system("CREATE USER dora SET PASSWORD 'dora-pass-1' CHANGE NOT REQUIRED")
    wait_for("dora on n3", lambda: _can_read(cluster, 3, "dora", "dora-pass-1"))
    trailing, _ = _raw_run(cluster, 3, (_basic("dora", "dora-pass-1"),))
    token = trailing["quiver-session"]
    for node_id in (1, 2, 3):  # any node takes any node's token
        assert _raw_code(cluster, node_id, (("quiver-session", token),)) == ""
    assert _raw_code(cluster, 1, (("quiver-session", token[:-2] + "xx"),)) == UNAUTHORIZED
    assert _raw_code(cluster, 1, ()) == UNAUTHORIZED

    admin.system("ALTER USER dora SET STATUS SUSPENDED")
    for node_id in (1, 2, 3):
        wait_for(
            f"the suspension on n{node_id}",
            lambda n=node_id: _raw_code(cluster, n, (("quiver-session", token),)) == UNAUTHORIZED,
        )
    assert not _can_read(cluster, 1, "dora", "dora-pass-1")
    admin.system("ALTER USER dora SET STATUS ACTIVE")
    wait_for("dora back on n1", lambda: _can_read(cluster, 1, "dora", "dora-pass-1"))
    # A token from before the suspension stays revoked; a new one works until DROP USER.
    assert _raw_code(cluster, 1, (("quiver-session", token),)) == UNAUTHORIZED
    trailing, _ = _raw_run(cluster, 1, (_basic("dora", "dora-pass-1"),))
    token = trailing["quiver-session"]
    admin.system("DROP USER dora")
    for node_id in (1, 2, 3):
        wait_for(
            f"the drop on n{node_id}",
            lambda n=node_id: _raw_code(cluster, n, (("quiver-session", token),)) == UNAUTHORIZED,
        )


def test_admins_manage_users_over_bolt_and_new_users_log_on(cluster: LocalCluster) -> None:
    leader = wait_for("a leader", cluster.leader)
    doc = json.loads((cluster.directory / "cluster.json").read_text())
    bolt = {int(n["id"]): str(n["bolt"]) for n in doc["nodes"]}
    creds = json.loads((cluster.directory / "credentials.json").read_text())
    follower = next(n for n in bolt if n != leader)

    def driver(node_id: int, auth: tuple[str, str]) -> neo4j.Driver:
        return neo4j.GraphDatabase.driver(
            f"bolt://{bolt[node_id]}",
            auth=auth,
            encrypted=True,
            trusted_certificates=neo4j.TrustCustomCAs(str(cluster.directory / "ca.pem")),
            connection_timeout=10,
        )

    # On a follower: the command is forwarded to the leader with the caller's session.
    with driver(follower, (creds["user"], creds["password"])) as admin:
        admin.execute_query(
            "CREATE USER erin SET PASSWORD 'erin-pass-1' CHANGE NOT REQUIRED", database_="system"
        )
        users = admin.execute_query("SHOW USERS", database_="system").records
        assert "erin" in [record["user"] for record in users]
        filtered = admin.execute_query(
            "SHOW USERS YIELD user, suspended WHERE user = $name RETURN user, suspended",
            {"name": "erin"},
            database_="system",
        ).records
        assert [record.data() for record in filtered] == [{"user": "erin", "suspended": False}]
    with driver(follower, ("erin", "erin-pass-1")) as erin:
        wait_for("erin on the follower", lambda: _bolt_ok(erin))
    with (
        driver(follower, ("erin", "wrong-password")) as wrong,
        pytest.raises(neo4j.exceptions.AuthError),
    ):
        wrong.verify_connectivity()


def _bolt_ok(driver: neo4j.Driver) -> bool:
    try:
        driver.verify_connectivity()
    except neo4j.exceptions.AuthError:
        return False
    return True


def test_the_initial_admin_comes_from_the_directory(cluster: LocalCluster) -> None:
    """`connect(DIR)` logs in with the credentials file; a client without it is refused."""
    wait_for("a leader", cluster.leader)
    assert cluster.client.run("RETURN 3 AS x", mode="read").rows == [[3]]
    with _client(cluster, 1, "admin", "not-the-password") as wrong:
        assert _error(wrong) == UNAUTHORIZED


def test_cluster_administration_needs_an_admin(cluster: LocalCluster) -> None:
    from proto import admin_pb2, admin_pb2_grpc

    leader = wait_for("a leader", cluster.leader)
    cluster.client.system("CREATE USER fay SET PASSWORD 'fay-pass-1' CHANGE NOT REQUIRED")
    wait_for("fay on the leader", lambda: _can_read(cluster, leader, "fay", "fay-pass-1"))
    with _client(cluster, leader, "fay", "fay-pass-1") as fay:
        stub = admin_pb2_grpc.AdminStub(fay._channel(fay.members[0]))
        assert stub.Status(admin_pb2.StatusRequest(), timeout=5).leader_id == leader
        with pytest.raises(grpc.RpcError) as refused:
            stub.TransferLeader(admin_pb2.TransferLeaderRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    assert cluster.leader() == leader


def test_quiver_query_runs_admin_commands_and_logs_in_as_a_user(cluster: LocalCluster) -> None:
    import os
    import subprocess
    import sys

    wait_for("a leader", cluster.leader)

    def quiver_query(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k != "QUIVER_PASSWORD"}
        if password is not None:
            env["QUIVER_PASSWORD"] = password
        return subprocess.run(
            [sys.executable, "-m", "cluster.cli", "query", "--dir", str(cluster.directory), *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            env=env,
            stdin=subprocess.DEVNULL,
        )

    created = quiver_query("-d", "system", "CREATE USER gus SET PASSWORD 'gus-pass-1'")
    assert created.returncode == 0, created.stderr
    expired = quiver_query("--user", "gus", "RETURN 1", password="gus-pass-1")
    assert expired.returncode != 0 and EXPIRED in expired.stderr
    changed = quiver_query(
        "--user",
        "gus",
        "-d",
        "system",
        "ALTER CURRENT USER SET PASSWORD FROM 'gus-pass-1' TO 'gus-pass-2'",
        password="gus-pass-1",
    )
    assert changed.returncode == 0, changed.stderr
    ok = quiver_query("--user", "gus", "--format", "json", "RETURN 1 AS one", password="gus-pass-2")
    assert ok.returncode == 0 and json.loads(ok.stdout)["rows"] == [[1]], ok.stderr


def test_denied_access_is_forbidden_and_audited_without_passwords(cluster: LocalCluster) -> None:
    from cluster.security.audit import verify

    wait_for("a leader", cluster.leader)
    admin = cluster.client
    admin.system("CREATE USER hal SET PASSWORD 'hal-secret-1' CHANGE NOT REQUIRED")
    admin.system("CREATE ROLE shut_out")
    admin.system("DENY ACCESS ON DATABASE neo4j TO shut_out")
    admin.system("GRANT ROLE shut_out TO hal")
    wait_for("hal refused on n1", lambda: _code_as(cluster, 1, "hal", "hal-secret-1") == FORBIDDEN)
    audit_dir = cluster.directory / "nodes" / "1" / "data" / "audit"
    text = "".join(path.read_text() for path in sorted(audit_dir.glob("security.*.jsonl")))
    events = [json.loads(line)["fields"] for line in text.splitlines()]
    assert any(e["event"] == "authorization_failed" and e["user"] == "hal" for e in events)
    assert any(e["event"] == "login" and e["user"] == "hal" for e in events)
    assert "hal-secret-1" not in text and "alice-pass-1" not in text
    assert verify(audit_dir).ok
    leader_dir = cluster.directory / "nodes" / str(cluster.leader()) / "data" / "audit"
    leader_text = "".join(p.read_text() for p in leader_dir.glob("security.*.jsonl"))
    assert '"command":"CREATE USER"' in leader_text and "hal-secret-1" not in leader_text


FORBIDDEN = "Neo.ClientError.Security.Forbidden"


def _code_as(cluster: LocalCluster, node_id: int, user: str, password: str) -> str:
    with _client(cluster, node_id, user, password) as client:
        try:
            client.run("RETURN 1", mode="read", consistency="stale")
        except QuiverError as error:
            return error.code
    return ""


def test_a_retried_admin_command_applies_once(cluster: LocalCluster) -> None:
    leader = wait_for("a leader", cluster.leader)
    client = cluster.client
    request = client_pb2.RunRequest(
        query="CREATE USER ivan SET PASSWORD 'ivan-pass-1'",
        database="system",
        client_id="security-retry-client",
        sequence=3,
    )
    stub = client_pb2_grpc.QueryStub(client._channel(client._member(leader)))
    first = list(stub.Run(request, timeout=10))[-1].summary.bookmark
    again = list(stub.Run(request, timeout=10))[-1].summary.bookmark  # as a lost answer's retry
    assert first and again == first
    assert [row[0] for row in client.system("SHOW USERS").rows].count("ivan") == 1


def test_privileges_restrict_what_a_user_sees_and_writes(cluster: LocalCluster) -> None:
    wait_for("a leader", cluster.leader)
    admin = cluster.client
    admin.run("CREATE (:Vault {code: 7}), (:Note {text: 'hi'})")
    admin.system("CREATE USER nora SET PASSWORD 'nora-pass-1' CHANGE NOT REQUIRED")
    with connect(cluster.directory, auth=("nora", "nora-pass-1"), timeout_s=5.0) as nora:
        count = "MATCH (n) RETURN count(n) AS n"
        # No role but PUBLIC: access to the database, nothing visible, nothing writable.
        assert nora.run(count, mode="read", consistency="linearizable").rows == [[0]]
        with pytest.raises(QuiverError) as refused:
            nora.run("CREATE (:Note {text: 'mine'})")
        assert refused.value.code == FORBIDDEN
        # Forwarded by a follower, the write is still hers: the leader refuses it too.
        follower = next(n for n in (1, 2, 3) if n != cluster.leader())
        with _client(cluster, follower, "nora", "nora-pass-1") as via_follower:
            stub = client_pb2_grpc.QueryStub(via_follower._channel(via_follower.members[0]))
            request = client_pb2.RunRequest(query="CREATE (:Note {text: 'mine'})")
            with pytest.raises(grpc.RpcError) as failed:
                list(stub.Run(request, timeout=10))
        from cluster.errors import from_rpc_error

        assert from_rpc_error(failed.value).code == FORBIDDEN  # type: ignore[arg-type]
        admin.system("GRANT ROLE reader TO nora")
        admin.system("CREATE ROLE no_vault")
        admin.system("DENY TRAVERSE ON GRAPH * NODES Vault TO no_vault")
        admin.system("GRANT ROLE no_vault TO nora")
        seen = nora.run("MATCH (n) RETURN labels(n) AS l", mode="read", consistency="linearizable")
        assert ["Note"] in [row[0] for row in seen.rows]
        assert ["Vault"] not in [row[0] for row in seen.rows]
        assert admin.run(count, mode="read", consistency="linearizable").rows[0][0] >= 2


# -- the query log and impersonation ---------------------------------------------------------


def _query_log(cluster: LocalCluster, node_id: int) -> list[dict[str, Any]]:
    """The `fields` of every query-log record node `node_id` has written so far."""
    audit_dir = cluster.directory / "nodes" / str(node_id) / "data" / "audit"
    text = "".join(p.read_text() for p in sorted(audit_dir.glob("query.*.jsonl")))
    return [json.loads(line)["fields"] for line in text.splitlines() if line.endswith("}")]


def _grpc_code(call: Any) -> str:
    from cluster.errors import from_rpc_error

    try:
        call()
    except grpc.RpcError as error:
        return from_rpc_error(error).code  # type: ignore[arg-type]
    return ""


def test_impersonation_over_grpc_runs_as_the_other_user_and_the_query_log_names_both(
    cluster: LocalCluster,
) -> None:
    import os
    import subprocess
    import sys

    leader = wait_for("a leader", cluster.leader)
    admin = cluster.client
    admin.system("CREATE USER imp_ivy SET PASSWORD 'ivy-pass-1' CHANGE NOT REQUIRED")
    admin.system("CREATE USER imp_jay SET PASSWORD 'jay-pass-1' CHANGE NOT REQUIRED")
    admin.system("GRANT ROLE publisher TO imp_jay")
    admin.system("CREATE ROLE may_be_jay")
    admin.system("GRANT IMPERSONATE (imp_jay) ON DBMS TO may_be_jay")
    admin.system("GRANT ROLE may_be_jay TO imp_ivy")
    follower = next(n for n in (1, 2, 3) if n != leader)
    with _client(cluster, follower, "imp_ivy", "ivy-pass-1") as ivy:
        stub = client_pb2_grpc.QueryStub(ivy._channel(ivy.members[0]))

        def create(impersonated: str) -> None:
            request = client_pb2.RunRequest(
                query="CREATE (:Impersonated {by: 'ivy as jay'})", impersonated_user=impersonated
            )
            list(stub.Run(request, timeout=10))

        # On her own (PUBLIC only) she may not write; as jay (publisher) she may, through the
        # follower, which forwards the write to the leader (which checks again).
        assert _grpc_code(lambda: create("")) == FORBIDDEN
        wait_for("the grant on the follower", lambda: _grpc_code(lambda: create("imp_jay")) == "")
        assert _grpc_code(lambda: create("admin")) == FORBIDDEN  # not granted
        assert _grpc_code(lambda: create("imp_nobody")) == FORBIDDEN
    # The client library: every statement, transactions included, as the impersonated user.
    with connect(
        cluster.directory, auth=("imp_ivy", "ivy-pass-1"), impersonate="imp_jay", timeout_s=5.0
    ) as as_jay:
        with as_jay.transaction() as tx:
            tx.run("CREATE (:Impersonated {by: 'a transaction', n: 2})")
        count = "MATCH (n:Impersonated) RETURN count(n) AS n"
        assert as_jay.run(count, mode="read", consistency="linearizable").rows == [[2]]
        # On the system database too, except that jay's password is not hers to change
        # (refused before the old one is checked: no guessing it this way).
        assert as_jay.system("SHOW CURRENT USER").rows[0][0] == "imp_jay"
        with pytest.raises(QuiverError) as no_password_change:
            as_jay.system("ALTER CURRENT USER SET PASSWORD FROM 'jay-pass-1' TO 'jay-pass-2'")
        assert no_password_change.value.code == FORBIDDEN
    with connect(cluster.directory, auth=("imp_ivy", "ivy-pass-1"), timeout_s=5.0) as ivy_self:
        assert ivy_self.run(count, mode="read", consistency="linearizable").rows == [[0]]
    from_cli = subprocess.run(
        [
            *(sys.executable, "-m", "cluster.cli", "query", "--dir", str(cluster.directory)),
            *("--user", "imp_ivy", "--impersonate", "imp_jay", "--format", "json", count),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "QUIVER_PASSWORD": "ivy-pass-1"},
        stdin=subprocess.DEVNULL,
    )
    assert from_cli.returncode == 0 and json.loads(from_cli.stdout)["rows"] == [[2]], from_cli

    forwarded = "CREATE (:Impersonated {by: '***'})"

    def follower_records() -> list[dict[str, Any]]:
        return [r for r in _query_log(cluster, follower) if r["user"] == "imp_ivy"]

    wait_for("the follower's query log", lambda: len(follower_records()) >= 4)
    records = follower_records()
    done = [r for r in records if r["query"] == forwarded and r["outcome"] == "ok"]
    assert done and done[0]["impersonated"] == "imp_jay" and done[0]["database"] == "neo4j"
    refused = [r for r in records if r["outcome"] == FORBIDDEN]
    assert {r.get("impersonated", "") for r in refused} >= {"", "admin", "imp_nobody"}
    assert all("ivy as jay" not in json.dumps(r) for r in records)
    # Recorded once, where the client talked: not again by the leader it was forwarded to.
    leader_records = [r for r in _query_log(cluster, leader) if r["user"] == "imp_ivy"]
    assert not [r for r in leader_records if r["query"] == forwarded]
    wait_for(
        "the transaction's statement on the leader",
        lambda: any(
            r["query"] == "CREATE (:Impersonated {by: '***', n: ?})"
            and r.get("impersonated") == "imp_jay"
            for r in _query_log(cluster, leader)
        ),
    )
    verified = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "audit", "verify", "--dir", str(cluster.directory)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert verified.returncode == 0, verified.stderr
    audit_dirs = list(cluster.directory.glob("nodes/*/data/audit"))
    assert all(list(d.glob("query.*.jsonl")) for d in audit_dirs)


def test_impersonation_over_bolt_with_the_official_driver(cluster: LocalCluster) -> None:
    leader = wait_for("a leader", cluster.leader)
    doc = json.loads((cluster.directory / "cluster.json").read_text())
    bolt = {int(n["id"]): str(n["bolt"]) for n in doc["nodes"]}
    follower = next(n for n in bolt if n != leader)
    admin = cluster.client
    admin.run("CREATE (:BoltImpersonated {n: 1})")
    admin.system("CREATE USER imp_kit SET PASSWORD 'kit-pass-1' CHANGE NOT REQUIRED")
    admin.system("CREATE USER imp_lee SET PASSWORD 'lee-pass-1' CHANGE NOT REQUIRED")
    admin.system("GRANT ROLE reader TO imp_lee")
    admin.system("CREATE ROLE may_be_lee")
    admin.system("GRANT IMPERSONATE (imp_lee) ON DBMS TO may_be_lee")
    admin.system("GRANT ROLE may_be_lee TO imp_kit")
    count = "MATCH (n:BoltImpersonated) RETURN count(n) AS c"
    with neo4j.GraphDatabase.driver(
        f"bolt://{bolt[follower]}",
        auth=("imp_kit", "kit-pass-1"),
        encrypted=True,
        trusted_certificates=neo4j.TrustCustomCAs(str(cluster.directory / "ca.pem")),
        connection_timeout=10,
    ) as driver:

        def seen(impersonated: str | None) -> int:
            with driver.session(database="neo4j", impersonated_user=impersonated) as session:
                return int(session.run(count).single(strict=True)["c"])

        # As lee (reader) the node is there; as kit herself (PUBLIC only) it is not.
        wait_for("lee's view on the follower", lambda: _bolt_seen(seen, "imp_lee") == 1)
        assert seen(None) == 0
        with (
            driver.session(
                database="neo4j", impersonated_user="imp_lee", default_access_mode=neo4j.READ_ACCESS
            ) as session,
            session.begin_transaction() as tx,
        ):
            assert tx.run(count).single(strict=True)["c"] == 1
        with driver.session(database="neo4j", impersonated_user="imp_lee") as session:
            # Forwarded to the leader, which checks the impersonation again: lee only reads.
            with pytest.raises(neo4j.exceptions.ClientError) as no_write:
                session.run("CREATE (:BoltImpersonated {n: 2})").consume()
            assert no_write.value.code == FORBIDDEN
        for other in ("admin", "imp_nobody"):
            with pytest.raises(neo4j.exceptions.ClientError) as refused:
                seen(other)
            assert refused.value.code == FORBIDDEN

    def kit_records() -> list[dict[str, Any]]:
        return [r for r in _query_log(cluster, follower) if r["user"] == "imp_kit"]

    wait_for("the follower's query log", lambda: len(kit_records()) >= 5)
    as_lee = [r for r in kit_records() if r.get("impersonated") == "imp_lee"]
    assert any(r["query"] == count and r["outcome"] == "ok" and r["rows"] == 1 for r in as_lee)
    assert any(r["outcome"] == FORBIDDEN for r in as_lee)  # the write lee may not make
    assert any(
        r.get("impersonated") == "admin" and r["outcome"] == FORBIDDEN for r in kit_records()
    )


def _bolt_seen(seen: Any, impersonated: str) -> int:
    try:
        return int(seen(impersonated))
    except neo4j.exceptions.ClientError as error:
        if error.code != FORBIDDEN:  # the grant not applied on this node yet
            raise
        return -1


def test_a_transaction_belongs_to_the_user_who_began_it(cluster: LocalCluster) -> None:
    """Another user who learns a transaction's id can neither run in it, commit it nor
    roll it back: for them it does not exist; its owner carries on undisturbed."""
    leader = wait_for("a leader", cluster.leader)
    cluster.client.system(
        "CREATE USER mallory IF NOT EXISTS SET PASSWORD 'mallory-pass-1' CHANGE NOT REQUIRED"
    )
    cluster.client.system("GRANT ROLE editor TO mallory")
    wait_for(
        "mallory on the leader", lambda: _can_read(cluster, leader, "mallory", "mallory-pass-1")
    )
    admin = json.loads((cluster.directory / "credentials.json").read_text())
    owner = _client(cluster, leader, admin["user"], admin["password"])
    intruder = _client(cluster, leader, "mallory", "mallory-pass-1")
    with owner, intruder:
        tx = owner.begin()
        tx.run("CREATE (:Owned {who: 'owner'})")
        stub = client_pb2_grpc.QueryStub(intruder._channel(intruder.members[0]))
        attempts = {
            "run": lambda: list(
                stub.Run(
                    client_pb2.RunRequest(
                        query="CREATE (:Owned {who: 'mallory'})",
                        transaction_id=tx.transaction_id,
                    ),
                    timeout=10,
                )
            ),
            "commit": lambda: stub.Commit(
                client_pb2.CommitRequest(transaction_id=tx.transaction_id), timeout=10
            ),
        }
        for what, attempt in attempts.items():
            assert _grpc_code(attempt) == TRANSACTION_NOT_FOUND, what
        stub.Rollback(client_pb2.RollbackRequest(transaction_id=tx.transaction_id), timeout=10)
        tx.run("CREATE (:Owned {who: 'owner, again'})")
        tx.commit()
        rows = owner.run(
            "MATCH (n:Owned) RETURN n.who AS who ORDER BY who",
            mode="read",
            consistency="linearizable",
        ).rows
    assert rows == [["owner"], ["owner, again"]]


def test_a_restricted_transaction_runs_again_at_its_commit_as_its_own_user(
    cluster: LocalCluster,
) -> None:
    """A transaction that writes were applied beside runs again at its commit (and commits
    when it answers the same): as the user who began it, through the same filter. A write
    she cannot see changes none of her answers; one she can, does."""
    leader = wait_for("a leader", cluster.leader)
    admin = cluster.client
    admin.system("CREATE USER tess IF NOT EXISTS SET PASSWORD 'tess-pass-1' CHANGE NOT REQUIRED")
    admin.system("CREATE ROLE no_safe IF NOT EXISTS")
    admin.system("DENY TRAVERSE ON GRAPH * NODES Safe TO no_safe")
    admin.system("GRANT ROLE publisher TO tess")
    admin.system("GRANT ROLE no_safe TO tess")
    wait_for("tess on the leader", lambda: _can_read(cluster, leader, "tess", "tess-pass-1"))
    admin.run("CREATE (:Shelf {by: 'admin'})")
    count = "MATCH (s:Shelf) RETURN count(s) AS shelves"
    with _client(cluster, leader, "tess", "tess-pass-1") as tess:
        tx = tess.begin()
        assert tx.run(count).rows == [[1]]
        tx.run("CREATE (:Shelf {by: 'tess'})")
        admin.run("CREATE (:Shelf:Safe {by: 'admin'})")  # hidden from her
        tx.commit()  # run again as tess: still one shelf before hers

        tx = tess.begin()
        assert tx.run(count).rows == [[2]]
        tx.run("CREATE (:Shelf {by: 'tess'})")
        admin.run("CREATE (:Shelf {by: 'admin'})")  # she would see it
        with pytest.raises(QuiverError) as refused:
            tx.commit()
        assert refused.value.code == OUTDATED_CODE
    shelves = admin.run(count, mode="read", consistency="linearizable")
    assert shelves.rows == [[4]]
