"""Explicit transactions on a real cluster: statements see each other's writes, nothing is
visible before commit, a rollback leaves no trace, and a transaction that a concurrent write
outdated is refused with a retryable error instead of losing that write; one whose
statements answer the same over the concurrent writes commits (it runs again at the
commit)."""

from __future__ import annotations

import pytest
from conftest import LocalCluster, wait_for

from cluster import errors
from cluster.client import connect
from cluster.errors import QuiverError
from cluster.session import bookmark_index


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


def test_a_transaction_reads_one_moment_and_its_bookmark_covers_what_it_read(
    local_cluster: LocalCluster,
) -> None:
    """Every statement of a transaction reads the graph as it was when the transaction
    began (plus its own writes), so a write committed between two of them shows in neither:
    no read skew. Before, each statement read the graph as it was then: the second saw half
    of a write the first had not seen, and the read-only commit answered the bookmark of the
    moment the transaction began, older than what it had read."""
    client = local_cluster.client
    wait_for("a leader", local_cluster.leader)
    client.run("CREATE (:Side {name: 'a', v: 0}), (:Side {name: 'b', v: 0})")
    reader = client.begin()
    assert reader.run("MATCH (s:Side {name: 'a'}) RETURN s.v").rows == [[0]]
    moved = client.run(
        "MATCH (s:Side) SET s.v = 1 WITH count(*) AS n CREATE (:Side {name: 'new', v: n - 1})"
    )
    assert reader.run("MATCH (s:Side) RETURN count(s), sum(s.v)").rows == [[2, 0]]
    assert reader.run("MATCH (s:Side {name: 'new'}) RETURN s.v").rows == []
    read_at = reader.commit()
    assert int(read_at.split(":")[1]) < int(moved.bookmark.split(":")[1])

    # A read-write transaction sees its own writes over the same moment.
    writer = client.begin()
    writer.run("CREATE (:Side {name: 'c', v: 5})")
    client.run("MATCH (s:Side {name: 'a'}) SET s.v = 2")
    assert writer.run("MATCH (s:Side) RETURN s.name, s.v ORDER BY s.name").rows == [
        ["a", 1],
        ["b", 1],
        ["c", 5],
        ["new", 1],
    ]
    with pytest.raises(QuiverError) as refused:  # what it read changed: outdated
        writer.commit()
    assert refused.value.code == errors.OUTDATED


def test_a_read_transaction_runs_on_a_replica_and_refuses_writes(
    local_cluster: LocalCluster,
) -> None:
    leader = wait_for("a leader", local_cluster.leader)
    follower = next(m for m in local_cluster.client.members if m.id != leader)
    written = local_cluster.client.run("CREATE (:Shelf {n: 1})")
    with connect(local_cluster.directory, zone=follower.zone) as zoned:
        zoned.bookmarks = {written.bookmark}
        tx = zoned.begin(mode="read")
        first = tx.run("MATCH (s:Shelf) RETURN count(s)")  # after the bookmark
        assert first.rows == [[1]] and first.served_by == follower.id
        read_at = tx.commit()  # the moment it read, no older than the bookmark
        assert bookmark_index(read_at) >= bookmark_index(written.bookmark)  # type: ignore[operator]
        refused_tx = zoned.begin(mode="read")
        with pytest.raises(QuiverError) as refused:
            refused_tx.run("CREATE (:Shelf {n: 2})")
        assert refused.value.code == errors.ACCESS_MODE
        assert zoned.run("MATCH (s:Shelf) RETURN count(s)", mode="read").rows == [[1]]
        with pytest.raises(ValueError, match="mode is 'read' or 'write'"):
            zoned.begin(mode="stale")
