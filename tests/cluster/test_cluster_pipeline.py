"""Pipelined writes on the leader: concurrent clients' statements execute over the pending
overlay and share commits. Read-modify-write increments of one counter from many clients
lose no update (conflicts come back as retryable errors the client retries), and
independent creates from many clients all land."""

from __future__ import annotations

import threading

from conftest import LocalCluster, wait_for

from cluster.client import connect
from cluster.errors import QuiverError

CLIENTS = 8
INCREMENTS = 15
CREATES = 25
JOIN_TIMEOUT_S = 120.0


def _in_threads(count: int, work: object) -> list[str]:
    failures: list[str] = []

    def run(worker: int) -> None:
        try:
            assert callable(work)
            work(worker)
        except QuiverError as error:
            failures.append(f"{error.code}: {error.message}")

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
        assert not thread.is_alive()
    return failures


def test_concurrent_increments_lose_no_update_and_creates_all_land(
    local_cluster: LocalCluster,
) -> None:
    directory = local_cluster.directory
    wait_for("a leader", local_cluster.leader)
    local_cluster.client.run("CREATE (:Counter {n: 0})")

    def increment(_worker: int) -> None:
        client = connect(directory, timeout_s=60.0)
        for _ in range(INCREMENTS):
            client.run("MATCH (c:Counter) SET c.n = c.n + 1")
        client.close()

    def create(worker: int) -> None:
        client = connect(directory, timeout_s=60.0)
        for i in range(CREATES):
            client.run("CREATE (:Row {worker: $w, i: $i})", {"w": worker, "i": i})
        client.close()

    assert _in_threads(CLIENTS, increment) == []
    assert _in_threads(CLIENTS, create) == []
    client = local_cluster.client
    counter = client.run(
        "MATCH (c:Counter) RETURN c.n AS n", mode="read", consistency="linearizable"
    )
    assert counter.rows == [[CLIENTS * INCREMENTS]], "an increment was lost or applied twice"
    rows = client.run(
        "MATCH (r:Row) RETURN r.worker AS w, r.i AS i ORDER BY w, i",
        mode="read",
        consistency="linearizable",
    )
    assert rows.rows == [[w, i] for w in range(CLIENTS) for i in range(CREATES)]
