"""Explicit transactions on a real cluster: statements see each other's writes, nothing is
visible before commit, a rollback leaves no trace, and a transaction that a concurrent write
outdated is refused with a retryable error instead of losing that write; one whose
statements answer the same over the concurrent writes commits (it runs again at the
commit)."""

from __future__ import annotations

import pytest
from conftest import LocalCluster, wait_for

from cluster import errors
from cluster.errors import QuiverError


def test_transactions_commit_roll_back_and_refuse_outdated_writes(
    local_cluster: LocalCluster,
) -> None:
    client = local_cluster.client
    wait_for("a leader", local_cluster.leader)

    with client.transaction() as tx:
        tx.run("CREATE (:Account {id: 1, balance: 100})")
        inside = tx.run("MATCH (a:Account {id: 1}) RETURN a.balance AS b")
        assert inside.rows == [[100]]
        outside = client.run("MATCH (a:Account) RETURN count(a)", mode="read", consistency="stale")
        assert outside.rows == [[0]], "an uncommitted write is visible outside its transaction"
    committed = client.run(
        "MATCH (a:Account {id: 1}) RETURN a.balance", mode="read", consistency="causal"
    )
    assert committed.rows == [[100]]

    with pytest.raises(RuntimeError), client.transaction() as tx:
        tx.run("CREATE (:Account {id: 2, balance: 5})")
        raise RuntimeError("the application changed its mind")
    after_rollback = client.run(
        "MATCH (a:Account) RETURN count(a)", mode="read", consistency="linearizable"
    )
    assert after_rollback.rows == [[1]]

    slow = client.begin()
    seen = slow.run("MATCH (a:Account {id: 1}) RETURN a.balance AS b").rows[0][0]
    client.run("MATCH (a:Account {id: 1}) SET a.balance = a.balance + 10")  # commits first
    slow.run("MATCH (a:Account {id: 1}) SET a.balance = $b", {"b": seen - 30})
    with pytest.raises(QuiverError) as refused:
        slow.commit()
    assert refused.value.code == errors.OUTDATED and refused.value.retryable
    final = client.run(
        "MATCH (a:Account {id: 1}) RETURN a.balance", mode="read", consistency="linearizable"
    )
    assert final.rows == [[110]], "the concurrent write was lost"


def test_a_transaction_whose_answers_stay_the_same_commits_beside_concurrent_writes(
    local_cluster: LocalCluster,
) -> None:
    client = local_cluster.client
    wait_for("a leader", local_cluster.leader)
    client.run("CREATE (:Counter {id: 1, n: 0})")
    first, second = client.begin(), client.begin()
    first.run("CREATE (:Item {by: 'first'})")
    second.run("CREATE (:Item {by: 'second'})")
    bumped = second.run("MATCH (c:Counter {id: 1}) SET c.n = c.n + 1")
    assert bumped.counters["properties_set"] == 1
    client.run("MATCH (c:Counter {id: 1}) SET c.n = c.n + 1")  # after both began
    # Before, both commits were outdated: a write had been applied since they began.
    first.commit()
    second.commit()  # ran again over the increment above: it counts too
    final = client.run(
        "MATCH (c:Counter {id: 1}) OPTIONAL MATCH (i:Item) RETURN c.n, count(i)",
        mode="read",
        consistency="linearizable",
    )
    assert final.rows == [[2, 2]]

    # An answer that would change now: outdated, as before.
    third = client.begin()
    assert third.run("MATCH (c:Counter {id: 1}) RETURN c.n").rows == [[2]]
    client.run("MATCH (c:Counter {id: 1}) SET c.n = 10")
    third.run("CREATE (:Item {by: 'third'})")
    with pytest.raises(QuiverError) as refused:
        third.commit()
    assert refused.value.code == errors.OUTDATED and refused.value.retryable
    items = client.run("MATCH (i:Item) RETURN count(i)", mode="read", consistency="linearizable")
    assert items.rows == [[2]]
