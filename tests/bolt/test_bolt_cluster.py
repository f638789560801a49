"""The official neo4j driver against a real three-node cluster (`quiver up --detach`): every
node serves Bolt over TLS on the port `cluster.json` lists, `neo4j+s://` routes writes to the
leader and a read after a write in the same session sees it, and a wrong password is the
driver's AuthError."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import neo4j
import pytest
from bolt_cluster_helpers import helpers
from neo4j import exceptions as neo4j_errors

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from helpers.start_cluster(tmp_path_factory.mktemp("bolt-cluster"))


def _bolt_addresses(directory: Path) -> dict[int, str]:
    doc = json.loads((directory / "cluster.json").read_text())
    return {int(node["id"]): str(node["bolt"]) for node in doc["nodes"]}


def _auth(directory: Path) -> tuple[str, str]:
    doc = json.loads((directory / "credentials.json").read_text())
    return str(doc["user"]), str(doc["password"])


@pytest.fixture
def trust_cluster_ca(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The `+s` schemes trust the system store (the driver refuses trusted_certificates with
    them): point OpenSSL's default CA file at the cluster CA."""
    monkeypatch.setenv("SSL_CERT_FILE", str(cluster.directory / "ca.pem"))


def _driver(uri: str, directory: Path, auth: tuple[str, str]) -> neo4j.Driver:
    """`neo4j+s://` and `bolt+s://` as they are (CA from SSL_CERT_FILE); `neo4j://` and
    `bolt://` with encrypted=True and TrustCustomCAs(the cluster CA), the driver's form of a
    custom CA."""
    if "+s://" in uri:
        return neo4j.GraphDatabase.driver(
            uri, auth=auth, connection_timeout=10, max_transaction_retry_time=20
        )
    return neo4j.GraphDatabase.driver(
        uri,
        auth=auth,
        encrypted=True,
        trusted_certificates=neo4j.TrustCustomCAs(str(directory / "ca.pem")),
        connection_timeout=10,
        max_transaction_retry_time=20,
    )


def test_every_node_lists_its_bolt_address_in_cluster_json_and_status(cluster: Any) -> None:
    addresses = _bolt_addresses(cluster.directory)
    assert sorted(addresses) == [1, 2, 3]
    assert len(set(addresses.values())) == 3
    assert all(address.startswith("127.0.0.1:") for address in addresses.values())
    helpers.wait_for("a leader", cluster.leader)
    result = helpers.quiver("status", "--dir", str(cluster.directory), "--format", "json")
    assert result.returncode == 0, result.stderr
    shown = {node["id"]: node["bolt"] for node in json.loads(result.stdout)["nodes"]}
    assert shown == addresses
    text = helpers.quiver("status", "--dir", str(cluster.directory))
    assert all(address in text.stdout for address in addresses.values())


@pytest.mark.usefixtures("trust_cluster_ca")
@pytest.mark.parametrize("scheme", ["neo4j+s", "neo4j"])
def test_neo4j_s_routes_the_write_to_the_leader_and_the_read_after_it_sees_it(
    cluster: Any, scheme: str
) -> None:
    leader = helpers.wait_for("a leader", cluster.leader)
    addresses = _bolt_addresses(cluster.directory)
    name = f"ada-{uuid.uuid4().hex[:8]}"

    def create(tx: neo4j.ManagedTransaction) -> str:
        result = tx.run("CREATE (p:Person {name: $name}) RETURN p.name AS name", name=name)
        record = result.single(strict=True)
        address = result.consume().server.address
        assert record["name"] == name
        return f"{address.host}:{address.port}"

    def find(tx: neo4j.ManagedTransaction) -> list[str]:
        result = tx.run("MATCH (p:Person {name: $name}) RETURN p.name AS name", name=name)
        return [record["name"] for record in result]

    # The first router is a follower when node 1 is not the leader: routing still finds it.
    driver = _driver(f"{scheme}://{addresses[1]}", cluster.directory, _auth(cluster.directory))
    with driver, driver.session(database="neo4j") as session:
        served_by = session.execute_write(create)
        assert served_by == addresses[leader]
        assert session.last_bookmarks()
        assert session.execute_read(find) == [name]


@pytest.mark.usefixtures("trust_cluster_ca")
def test_bolt_s_to_each_node_with_the_cluster_ca(cluster: Any) -> None:
    helpers.wait_for("a leader", cluster.leader)
    for node_id, address in sorted(_bolt_addresses(cluster.directory).items()):
        with _driver(f"bolt+s://{address}", cluster.directory, _auth(cluster.directory)) as d:
            d.verify_connectivity()
            with d.session() as session:
                record = session.run("RETURN $n AS n", n=node_id).single(strict=True)
                assert record["n"] == node_id


@pytest.mark.usefixtures("trust_cluster_ca")
def test_a_wrong_password_is_an_auth_error(cluster: Any) -> None:
    address = _bolt_addresses(cluster.directory)[1]
    user, _ = _auth(cluster.directory)
    driver = _driver(f"bolt+s://{address}", cluster.directory, (user, "not the password"))
    with driver, pytest.raises(neo4j_errors.AuthError):
        driver.verify_connectivity()


def _code(session: neo4j.Session) -> str:
    """The status code `RETURN 1` fails with in this session, or "" when it answers."""
    try:
        session.run("RETURN 1 AS one").consume()
    except neo4j_errors.Neo4jError as error:
        return error.code or "?"
    return ""


def test_an_open_connection_loses_its_rights_as_soon_as_the_security_state_changes(
    cluster: Any,
) -> None:
    """A connection's statements remember their token and access checks only while the
    replicated security state stays the same object: a DENY ACCESS and then a suspension
    reach a connection that is open and has run statements since its LOGON."""
    helpers.wait_for("a leader", cluster.leader)
    admin = cluster.client
    user = f"bolt_{uuid.uuid4().hex[:8]}"
    role = f"{user}_role"
    admin.system(f"CREATE USER {user} SET PASSWORD 'bolt-pass-1' CHANGE NOT REQUIRED")
    admin.system(f"CREATE ROLE {role}")
    admin.system(f"GRANT ROLE {role} TO {user}")
    address = _bolt_addresses(cluster.directory)[1]
    driver = _driver(f"bolt://{address}", cluster.directory, (user, "bolt-pass-1"))
    with driver, driver.session(database="neo4j") as session:
        helpers.wait_for(f"{user} on n1", lambda: _code(session) == "")
        assert [_code(session) for _ in range(3)] == ["", "", ""]  # checks remembered now
        admin.system(f"DENY ACCESS ON DATABASE neo4j TO {role}")
        helpers.wait_for(
            "the denial", lambda: _code(session) == "Neo.ClientError.Security.Forbidden"
        )
        admin.system(f"ALTER USER {user} SET STATUS SUSPENDED")
        helpers.wait_for(
            "the suspension", lambda: _code(session) == "Neo.ClientError.Security.Unauthorized"
        )


def test_a_read_transaction_on_a_follower_reads_one_moment_and_refuses_writes(
    cluster: Any,
) -> None:
    """A read transaction's statements all read one snapshot of the node it runs on, taken
    once the bookmarks are applied there, and its bookmark is that snapshot's: the next
    transaction of the session reads no older state than it read. Before, each statement
    was a causal read of its own, and the commit handed back the bookmarks it began with."""
    leader = helpers.wait_for("a leader", cluster.leader)
    addresses = _bolt_addresses(cluster.directory)
    follower = min(node for node in addresses if node != leader)
    tag = uuid.uuid4().hex[:8]
    auth = _auth(cluster.directory)
    writer = _driver(f"neo4j://{addresses[leader]}", cluster.directory, auth)
    reader = _driver(f"bolt://{addresses[follower]}", cluster.directory, auth)
    with writer, reader, writer.session() as writes:
        writes.run("CREATE (:Pair {tag: $tag, side: 'a', v: 0})", tag=tag).consume()
        writes.run("CREATE (:Pair {tag: $tag, side: 'b', v: 0})", tag=tag).consume()
        with reader.session(
            default_access_mode=neo4j.READ_ACCESS, bookmarks=writes.last_bookmarks()
        ) as reads:
            tx = reads.begin_transaction()
            count = "MATCH (p:Pair {tag: $tag}) RETURN count(p) AS n, sum(p.v) AS v"
            assert tx.run(count, tag=tag).single(strict=True).values() == [2, 0]
            moved = writes.run(
                "MATCH (p:Pair {tag: $tag}) SET p.v = 1 WITH count(*) AS n "
                "CREATE (:Pair {tag: $tag, side: 'c', v: 1})",
                tag=tag,
            )
            moved.consume()
            helpers.wait_for(
                "the follower to apply the write",
                lambda: _applied(reader, writes.last_bookmarks(), count, tag) == [3, 3],
            )
            assert tx.run(count, tag=tag).single(strict=True).values() == [2, 0]
            tx.commit()
            seen = reads.last_bookmarks()
            assert _index(seen) < _index(writes.last_bookmarks())

            tx = reads.begin_transaction()
            with pytest.raises(neo4j_errors.ClientError) as refused:
                tx.run("CREATE (:Pair {tag: $tag})", tag=tag).consume()
            assert refused.value.code == "Neo.ClientError.Statement.AccessMode"
            tx.close()


def _applied(driver: neo4j.Driver, bookmarks: Any, query: str, tag: str) -> list[Any]:
    with driver.session(default_access_mode=neo4j.READ_ACCESS, bookmarks=bookmarks) as session:
        return list(session.run(query, tag=tag).single(strict=True).values())


def _index(bookmarks: Any) -> int:
    return max(int(text.split(":")[1]) for text in bookmarks.raw_values)
