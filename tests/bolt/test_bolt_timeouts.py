"""Bolt's tx_timeout stops a statement, as Neo4j's does, with TransactionTimedOut: an
auto-commit statement (a write-mode session's, which runs on the leader's write path, and a
read-mode one's) and the statements of a read transaction. Before, the timeout was taken
for explicit write transactions only: a 1 s query ran its full 10 s and more."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import neo4j
import pytest
from bolt_cluster_helpers import helpers
from neo4j import exceptions as neo4j_errors

LONG_READ = "UNWIND range(1, 6000) AS a UNWIND range(1, 6000) AS b RETURN count(*)"
TIMED_OUT = "Neo.ClientError.Transaction.TransactionTimedOut"


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[neo4j.Driver]:
    for cluster in helpers.start_cluster(tmp_path_factory.mktemp("bolt-timeouts")):
        leader = helpers.wait_for("a leader", cluster.leader)
        doc = json.loads((cluster.directory / "cluster.json").read_text())
        address = {int(n["id"]): str(n["bolt"]) for n in doc["nodes"]}[leader]
        credentials = json.loads((cluster.directory / "credentials.json").read_text())
        with neo4j.GraphDatabase.driver(
            "bolt://" + address,
            auth=(credentials["user"], credentials["password"]),
            encrypted=True,
            trusted_certificates=neo4j.TrustCustomCAs(str(cluster.directory / "ca.pem")),
            connection_timeout=10,
            max_transaction_retry_time=5,
        ) as opened:
            opened.verify_connectivity()
            # Everything committed so far applied (logins, the leader's no-op): no apply
            # waits on the statements below, so only their timeout can stop them.
            cluster.client.run("RETURN 1", mode="read", consistency="linearizable")
            yield opened


@pytest.mark.parametrize("mode", [neo4j.WRITE_ACCESS, neo4j.READ_ACCESS])
def test_an_auto_commit_statement_stops_at_its_tx_timeout(driver: neo4j.Driver, mode: Any) -> None:
    with driver.session(default_access_mode=mode) as session:
        with pytest.raises(neo4j_errors.ClientError) as stopped:
            session.run(neo4j.Query(LONG_READ, timeout=1.0)).consume()
        assert stopped.value.code == TIMED_OUT
        assert session.run("RETURN 1 AS one").single()["one"] == 1


def test_a_read_transaction_stops_at_its_tx_timeout(driver: neo4j.Driver) -> None:
    @neo4j.unit_of_work(timeout=1.0)
    def long_read(tx: neo4j.ManagedTransaction) -> Any:
        return tx.run(LONG_READ).single()

    with driver.session() as session:
        with pytest.raises(neo4j_errors.ClientError) as stopped:
            session.execute_read(long_read)
        assert stopped.value.code == TIMED_OUT
