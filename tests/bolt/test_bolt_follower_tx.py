"""Server-side routing: the official neo4j driver over `bolt+s://` (no routing table)
straight to a FOLLOWER of a real three-node cluster runs write transactions — `execute_query`,
`execute_write`, explicit BEGIN/COMMIT/ROLLBACK — which the follower proxies to the leader;
bookmarks chain (a read on the follower, or a transaction begun after a write, sees it), a
rolled-back write is nowhere, and after a failure inside a transaction the session goes on."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import neo4j
import pytest
from bolt_cluster_helpers import helpers
from neo4j import exceptions as neo4j_errors

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    yield from helpers.start_cluster(tmp_path_factory.mktemp("bolt-follower-tx"))


def _driver(cluster: Any, node_id: int) -> neo4j.Driver:
    """`bolt+s://` to one node (the caller points SSL_CERT_FILE at the cluster CA: the `+s`
    schemes trust the system store)."""
    doc = json.loads((cluster.directory / "cluster.json").read_text())
    address = next(str(n["bolt"]) for n in doc["nodes"] if int(n["id"]) == node_id)
    credentials = json.loads((cluster.directory / "credentials.json").read_text())
    return neo4j.GraphDatabase.driver(
        f"bolt+s://{address}",
        auth=(credentials["user"], credentials["password"]),
        connection_timeout=10,
        max_transaction_retry_time=20,
    )


def _follower_id(cluster: Any) -> int:
    leader = helpers.wait_for("a leader", cluster.leader)
    return min(node_id for node_id in (1, 2, 3) if node_id != leader)


@pytest.fixture
def follower(cluster: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[neo4j.Driver]:
    monkeypatch.setenv("SSL_CERT_FILE", str(cluster.directory / "ca.pem"))
    with _driver(cluster, _follower_id(cluster)) as driver:
        yield driver


def _tag() -> str:
    return f"ftx-{uuid.uuid4().hex[:10]}"


def _names(session: neo4j.Session, tag: str) -> list[str]:
    result = session.run("MATCH (p:FTx {tag: $tag}) RETURN p.name AS name ORDER BY name", tag=tag)
    return [record["name"] for record in result]


def test_execute_query_write_on_a_follower_is_committed_and_read_back_there(
    follower: neo4j.Driver,
) -> None:
    tag = _tag()
    records, summary, _ = follower.execute_query(
        "CREATE (p:FTx {tag: $tag, name: 'ada'}) RETURN p.name AS name",
        tag=tag,
        database_="neo4j",
    )
    assert [record["name"] for record in records] == ["ada"]
    assert summary.counters.nodes_created == 1
    held = follower.execute_query_bookmark_manager.get_bookmarks()
    assert held, "a committed write hands back a bookmark"
    bookmarks = neo4j.Bookmarks.from_raw_values(held)
    # The same follower, at once, with that bookmark: the write is there.
    with follower.session(
        database="neo4j", bookmarks=bookmarks, default_access_mode=neo4j.READ_ACCESS
    ) as session:
        assert _names(session, tag) == ["ada"]
    read, _, _ = follower.execute_query(
        "MATCH (p:FTx {tag: $tag}) RETURN count(p) AS n",
        tag=tag,
        database_="neo4j",
        routing_=neo4j.RoutingControl.READ,
    )
    assert read[0]["n"] == 1


def test_execute_write_runs_several_statements_in_one_transaction(
    follower: neo4j.Driver,
) -> None:
    tag = _tag()

    def work(tx: neo4j.ManagedTransaction) -> int:
        tx.run("CREATE (:FTx {tag: $tag, name: 'a'})", tag=tag).consume()
        tx.run("CREATE (:FTx {tag: $tag, name: 'b'})", tag=tag).consume()
        # The transaction sees its own writes before it commits.
        record = tx.run(
            "MATCH (a:FTx {tag: $tag, name: 'a'}), (b:FTx {tag: $tag, name: 'b'}) "
            "CREATE (a)-[r:KNOWS]->(b) RETURN count(r) AS n",
            tag=tag,
        ).single(strict=True)
        return int(record["n"])

    with follower.session(database="neo4j") as session:
        assert session.execute_write(work) == 1
        count = session.run(
            "MATCH (:FTx {tag: $tag})-[r:KNOWS]->(:FTx {tag: $tag}) RETURN count(r) AS n",
            tag=tag,
        ).single(strict=True)
        assert count["n"] == 1
        assert _names(session, tag) == ["a", "b"]


def test_explicit_transactions_commit_and_roll_back(follower: neo4j.Driver) -> None:
    tag = _tag()
    with follower.session(database="neo4j") as session:
        tx = session.begin_transaction()
        tx.run("CREATE (:FTx {tag: $tag, name: 'kept'})", tag=tag).consume()
        tx.commit()
        tx = session.begin_transaction()
        tx.run("CREATE (:FTx {tag: $tag, name: 'dropped'})", tag=tag).consume()
        inside = tx.run("MATCH (p:FTx {tag: $tag}) RETURN count(p) AS n", tag=tag).single()
        assert inside is not None and inside["n"] == 2
        tx.rollback()
        assert _names(session, tag) == ["kept"]


def test_a_failure_inside_a_transaction_is_followed_by_reset_and_the_session_goes_on(
    follower: neo4j.Driver,
) -> None:
    tag = _tag()
    with follower.session(database="neo4j") as session:
        tx = session.begin_transaction()
        tx.run("CREATE (:FTx {tag: $tag, name: 'lost'})", tag=tag).consume()
        with pytest.raises(neo4j_errors.ClientError) as failure:
            tx.run("RETURN 1 +").consume()
        assert failure.value.code == "Neo.ClientError.Statement.SyntaxError"
        tx.close()
        with session.begin_transaction() as tx:
            tx.run("CREATE (:FTx {tag: $tag, name: 'after'})", tag=tag).consume()
            tx.commit()
        assert _names(session, tag) == ["after"]


def test_a_write_transaction_after_a_write_sees_it_through_the_bookmark(
    follower: neo4j.Driver,
) -> None:
    tag = _tag()
    with follower.session(database="neo4j") as session:
        session.run("CREATE (:FTx {tag: $tag, name: 'first', v: 1})", tag=tag).consume()
        first = session.last_bookmarks()

        def bump(tx: neo4j.ManagedTransaction) -> int:
            record = tx.run(
                "MATCH (p:FTx {tag: $tag, name: 'first'}) SET p.v = p.v + 1 RETURN p.v AS v",
                tag=tag,
            ).single(strict=True)
            return int(record["v"])

        assert session.execute_write(bump) == 2
        second = session.last_bookmarks()
        assert second.raw_values and second.raw_values != first.raw_values
        assert session.execute_write(bump) == 3
        third = session.last_bookmarks()
    with follower.session(
        database="neo4j", bookmarks=third, default_access_mode=neo4j.READ_ACCESS
    ) as session:
        value = session.run("MATCH (p:FTx {tag: $tag}) RETURN p.v AS v", tag=tag).single()
        assert value is not None and value["v"] == 3


def _logged_parameters(cluster: Any, node_id: int) -> list[list[str]]:
    """The parameter names of every query-log record node `node_id` has written so far."""
    audit_dir = cluster.directory / "nodes" / str(node_id) / "data" / "audit"
    text = "".join(p.read_text() for p in sorted(audit_dir.glob("query.*.jsonl")))
    records = [json.loads(line)["fields"] for line in text.splitlines() if line.endswith("}")]
    return [list(record.get("parameters", ())) for record in records]


def test_a_proxied_transaction_is_in_the_follower_query_log_once_and_not_the_leader(
    cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cluster.directory / "ca.pem"))
    follower_id = _follower_id(cluster)
    leader_id = helpers.wait_for("a leader", cluster.leader)
    marker = f"audit_{uuid.uuid4().hex[:10]}"
    sentinel = f"sentinel_{uuid.uuid4().hex[:10]}"
    with (
        _driver(cluster, follower_id) as driver,
        driver.session(database="neo4j") as session,
        session.begin_transaction() as tx,
    ):
        tx.run(f"CREATE (:FTx {{tag: ${marker}}})", {marker: _tag()}).consume()
        tx.commit()
    helpers.wait_for(
        "the statement in the follower's query log",
        lambda: [marker] in _logged_parameters(cluster, follower_id),
    )
    assert _logged_parameters(cluster, follower_id).count([marker]) == 1
    # A statement sent to the leader after it: once that is in the leader's log, so would be
    # the proxied one, had the leader logged it.
    with _driver(cluster, leader_id) as driver, driver.session(database="neo4j") as session:
        session.run(f"RETURN ${sentinel} AS s", {sentinel: 1}).consume()
    helpers.wait_for(
        "the sentinel in the leader's query log",
        lambda: [sentinel] in _logged_parameters(cluster, leader_id),
    )
    assert [marker] not in _logged_parameters(cluster, leader_id)


def test_a_proxied_transaction_has_the_callers_privileges_on_the_leader(
    cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(cluster.directory / "ca.pem"))
    follower_id = _follower_id(cluster)
    user = f"ftx_{uuid.uuid4().hex[:8]}"
    cluster.client.system(f"CREATE USER {user} SET PASSWORD 'ftx-pass-1' CHANGE NOT REQUIRED")
    cluster.client.system(f"GRANT ROLE reader TO {user}")
    committed = cluster.statuses()[helpers.wait_for("a leader", cluster.leader)].commit_index
    helpers.wait_for(
        "the user on the follower",
        lambda: cluster.client.node_status(follower_id, 1.0).applied_index >= committed,
    )
    doc = json.loads((cluster.directory / "cluster.json").read_text())
    address = next(str(n["bolt"]) for n in doc["nodes"] if int(n["id"]) == follower_id)
    with (
        neo4j.GraphDatabase.driver(
            f"bolt+s://{address}", auth=(user, "ftx-pass-1"), connection_timeout=10
        ) as driver,
        driver.session(database="neo4j") as session,
    ):
        tx = session.begin_transaction()
        assert tx.run("MATCH (n) RETURN count(n) AS n").single(strict=True)["n"] >= 0
        with pytest.raises(neo4j_errors.ClientError) as refused:
            tx.run("CREATE (:FTx {tag: 'reader'})").consume()
        assert refused.value.code == "Neo.ClientError.Security.Forbidden"


@pytest.mark.parametrize("on", ["follower", "leader"])
def test_a_write_transaction_is_begun_after_its_bookmarks_which_must_be_quivers(
    cluster: Any, monkeypatch: pytest.MonkeyPatch, on: str
) -> None:
    """Begin waits for the session's bookmarks on the leader (proxied or local): a bookmark
    that is not Quiver's is refused instead of ignored."""
    monkeypatch.setenv("SSL_CERT_FILE", str(cluster.directory / "ca.pem"))
    leader_id = helpers.wait_for("a leader", cluster.leader)
    node_id = leader_id if on == "leader" else _follower_id(cluster)
    bookmarks = neo4j.Bookmarks.from_raw_values(["not-a-bookmark"])
    with (
        _driver(cluster, node_id) as driver,
        driver.session(database="neo4j", bookmarks=bookmarks) as session,
        pytest.raises(neo4j_errors.ClientError) as refused,
    ):
        session.begin_transaction()
    assert refused.value.code == "Neo.ClientError.Transaction.InvalidBookmark"


def test_a_leader_change_mid_transaction_fails_it_retryably_and_commits_nothing(
    cluster: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The follower the transaction came through becomes the leader: the old leader refuses
    the commit, the driver sees a retryable transient error (never a silent loss), and the
    next transaction runs locally on the new leader."""
    from cluster.admin import run_admin

    monkeypatch.setenv("SSL_CERT_FILE", str(cluster.directory / "ca.pem"))
    follower_id = _follower_id(cluster)
    tag = _tag()
    with _driver(cluster, follower_id) as driver, driver.session(database="neo4j") as session:
        tx = session.begin_transaction()
        tx.run("CREATE (:FTx {tag: $tag, name: 'lost'})", tag=tag).consume()
        run_admin(cluster.directory, "transfer-leader", follower_id, 5.0)
        helpers.wait_for("the follower leads", lambda: cluster.leader() == follower_id)
        with pytest.raises(neo4j_errors.TransientError) as lost:
            tx.commit()
        assert lost.value.is_retryable()

        def create(tx: neo4j.ManagedTransaction) -> None:
            tx.run("CREATE (:FTx {tag: $tag, name: 'kept'})", tag=tag).consume()

        session.execute_write(create)
        assert _names(session, tag) == ["kept"]
