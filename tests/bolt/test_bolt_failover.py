"""SIGKILL of the leader in the middle of a stream of `execute_write` calls through the
official neo4j driver (`neo4j://` routing, the cluster CA via TrustCustomCAs): the driver
re-routes and retries through the election, every acknowledged write is in the graph
exactly once afterwards, and the supervisor restarts the killed node, which catches up.

The writes are `MERGE (:W {id: $i})`: a retry of a write whose commit outcome the driver
could not learn (the leader died between commit and answer) must not apply it twice; the
Bolt path carries no request id, so idempotence comes from the statement."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import neo4j
import pytest
from bolt_cluster_helpers import helpers

pytestmark = pytest.mark.slow

WRITES_BEFORE = 15
WRITES_AFTER = 15
MAX_INCOMPLETE_COMMITS = 3


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    yield from helpers.start_cluster(tmp_path)


def _driver(address: str, directory: Path, scheme: str = "neo4j") -> neo4j.Driver:
    credentials = json.loads((directory / "credentials.json").read_text())
    return neo4j.GraphDatabase.driver(
        f"{scheme}://{address}",
        auth=(credentials["user"], credentials["password"]),
        encrypted=True,
        trusted_certificates=neo4j.TrustCustomCAs(str(directory / "ca.pem")),
        connection_timeout=5,
        max_transaction_retry_time=30,
    )


def _merge(tx: neo4j.ManagedTransaction, i: int) -> str:
    result = tx.run("MERGE (w:W {id: $i}) RETURN w.id AS id", i=i)
    assert result.single(strict=True)["id"] == i
    address = result.consume().server.address
    return f"{address.host}:{address.port}"


def _write_once(session: neo4j.Session, i: int, incomplete: list[int]) -> str:
    """`execute_write`, and the one case the driver leaves to the application: the
    connection died while COMMIT was in flight (IncompleteCommit, outcome unknown), which
    any Neo4j application must handle itself — MERGE makes running it again safe."""
    for _ in range(MAX_INCOMPLETE_COMMITS):
        try:
            return session.execute_write(_merge, i)
        except neo4j.exceptions.IncompleteCommit:
            incomplete.append(i)
    raise AssertionError(f"write {i}: {MAX_INCOMPLETE_COMMITS} commits of unknown outcome")


def _ids(tx: neo4j.ManagedTransaction) -> list[int]:
    return [record["id"] for record in tx.run("MATCH (w:W) RETURN w.id AS id")]


@pytest.mark.timeout(240)
def test_leader_sigkill_during_execute_write_loses_no_acknowledged_write(
    cluster: Any,
) -> None:
    directory = cluster.directory
    bolt = {
        int(n["id"]): str(n["bolt"])
        for n in json.loads((directory / "cluster.json").read_text())["nodes"]
    }
    old_leader = helpers.wait_for("a leader", cluster.leader)
    # Route through a node that survives, so the driver's first router is not the victim.
    router = next(node for node in sorted(bolt) if node != old_leader)
    acknowledged: list[int] = []
    served_by: list[str] = []
    errors: list[BaseException] = []
    incomplete: list[int] = []
    with _driver(bolt[router], directory) as driver, driver.session(database="neo4j") as session:

        def writer() -> None:
            try:
                for i in range(WRITES_BEFORE + WRITES_AFTER):
                    served_by.append(_write_once(session, i, incomplete))
                    acknowledged.append(i)
            except BaseException as error:  # handed to the test thread below
                errors.append(error)

        thread = threading.Thread(target=writer, name="bolt-writer")
        thread.start()
        helpers.wait_for("writes before the kill", lambda: len(acknowledged) >= WRITES_BEFORE)
        old_pid = cluster.statuses()[old_leader].pid
        os.kill(old_pid, signal.SIGKILL)  # while the writer is in the middle of its stream
        killed_at = time.monotonic()
        acknowledged_at_kill = len(acknowledged)
        thread.join(timeout=120)
        assert not thread.is_alive(), "execute_write did not carry on after the kill"
        assert errors == [], f"execute_write failed: {errors!r}"
        failover_s = time.monotonic() - killed_at
        new_leader = helpers.wait_for(
            "a new leader", lambda: (lead := cluster.leader()) != old_leader and lead
        )
        assert served_by[0] == bolt[old_leader]
        assert served_by[-1] == bolt[new_leader]
        assert acknowledged_at_kill < len(acknowledged)
        ids = session.execute_read(_ids)
    after = len(acknowledged) - acknowledged_at_kill
    print(
        f"bolt failover: {after} writes acknowledged in {failover_s:.1f} s after SIGKILL; "
        f"commits of unknown outcome run again: {incomplete}"
    )
    counts = Counter(ids)
    assert sorted(counts) == acknowledged, "an acknowledged write is missing (or one extra)"
    assert [i for i, n in counts.items() if n > 1] == [], "a retried write applied twice"

    # The supervisor restarts the killed node; it catches up and serves the writes itself.
    helpers.wait_for(
        "the killed node to be restarted",
        lambda: (pid := cluster.node_pid(old_leader)) is not None and pid != old_pid,
    )
    bookmarks = session.last_bookmarks()

    def caught_up() -> list[int] | None:
        try:
            with (
                _driver(bolt[old_leader], directory, scheme="bolt") as direct,
                direct.session(bookmarks=bookmarks, default_access_mode="READ") as one,
            ):
                return sorted(r["id"] for r in one.run("MATCH (w:W) RETURN w.id AS id"))
        except (neo4j.exceptions.Neo4jError, neo4j.exceptions.DriverError):
            return None

    assert helpers.wait_for("the restarted node to catch up", caught_up) == acknowledged
