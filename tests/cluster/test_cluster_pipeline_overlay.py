"""The pipelined write path without processes: a statement executed over pending write sets
sees them, allocates ids after theirs and carries only its own operations; the state
machine applies a pipelined envelope only when the write it followed is the last applied,
so an intervening or refused write turns the rest of the pipeline into retryable
outdated outcomes, never into writes computed on effects that did not happen."""

from __future__ import annotations

import secrets
from pathlib import Path

from cluster.pipeline import Overlay, Pending, execute_over_pending
from cluster.statemachine import Decision, Envelope, StateMachine
from cypher import CypherError, Engine
from store.codec import encode_write_set
from store.crypto import Keyring
from store.graph import GraphStore
from store.writeset import CreateNode, CreateUniqueConstraint, WriteSet

KEK = bytes(range(32))


def _graph(path: Path) -> GraphStore:
    return GraphStore(path / "graph", Keyring(path, KEK))


def _envelope(write_set: WriteSet, after: bytes = b"", base: int = 0, seq: int = 0) -> Envelope:
    return Envelope(
        "client" if seq else "",
        seq,
        base,
        secrets.token_bytes(16),
        {"nodes_created": len(write_set.operations)},
        encode_write_set(write_set),
        after,
    )


def test_a_statement_over_pending_writes_sees_them_and_carries_only_its_own(
    tmp_path: Path,
) -> None:
    graph = _graph(tmp_path)
    engine = Engine()
    graph.apply(WriteSet((CreateNode(0, ("Item",), (("i", 0),)),)), 1)
    first = engine.run(graph, "CREATE (:Item {i: 1})").write_set
    second_result, overlaid = execute_over_pending(
        engine, graph, 1, [Pending(b"p1", first, index=2)], "CREATE (:Item {i: 2})", {}
    )
    assert overlaid
    assert second_result.write_set.operations == (CreateNode(2, ("Item",), (("i", 2),)),)
    counted, _ = execute_over_pending(
        engine,
        graph,
        1,
        [Pending(b"p1", first, index=2), Pending(b"p2", second_result.write_set)],
        "MATCH (n:Item) RETURN count(n) AS n",
        {},
    )
    assert counted.rows == [[3]] and not counted.write_set
    # A pending write already applied (index <= applied) is not replayed again.
    graph.apply(first, 2)
    again, overlaid = execute_over_pending(
        engine, graph, 2, [Pending(b"p1", first, index=2)], "MATCH (n:Item) RETURN count(n)", {}
    )
    assert not overlaid and again.rows == [[2]]


def test_a_batch_shares_one_overlay_and_equals_running_its_statements_one_by_one(
    tmp_path: Path,
) -> None:
    """Statements of a batch each run over the pending writes and the batch's earlier
    writes; one that fails leaves nothing behind, and what follows it is unaffected."""
    graph = _graph(tmp_path)
    engine = Engine()
    graph.apply(WriteSet((CreateUniqueConstraint("u", "P", ("k",)),)), 1)
    pending = [Pending(b"p1", engine.run(graph, "CREATE (:P {k: 0})").write_set)]
    overlay = Overlay(engine, graph, 1, pending)
    statements = [
        "CREATE (:P {k: 1})",
        "CREATE (:P {k: 0})",  # violates the constraint over the pending write: refused
        "MATCH (n:P) SET n.seen = true",
        "MATCH (n:P) WHERE n.k = 1 DETACH DELETE n",
        "CREATE (:P {k: 1})",  # the deleted holder of k = 1 is gone within the overlay
        "MATCH (n:P) RETURN n.k AS k, n.seen AS seen ORDER BY k",
    ]
    outcomes: list[object] = []
    for query in statements:
        try:
            outcomes.append(overlay.execute(query, {}))
        except CypherError as error:
            outcomes.append(error)
    assert isinstance(outcomes[1], CypherError)
    # The same statements one at a time over an explicit chain of pending writes.
    chain = list(pending)
    for query, outcome in zip(statements, outcomes, strict=True):
        if isinstance(outcome, CypherError):
            continue
        result, overlaid = execute_over_pending(engine, graph, 1, chain, query, {})
        assert overlaid and outcome == (result, True)
        if result.write_set:
            chain.append(Pending(secrets.token_bytes(4), result.write_set))
    last = outcomes[-1]
    assert isinstance(last, tuple) and last[0].rows == [[0, True], [1, None]]


def test_an_overlay_serves_the_next_batch_only_while_its_writes_are_the_pending_ones(
    tmp_path: Path,
) -> None:
    """The leader keeps a batch's overlay for the next batch instead of replaying every
    pending write again; that is right only while nothing was applied and the pending
    writes are exactly the ones it holds, in order, all proposed."""
    graph = _graph(tmp_path)
    engine = Engine()
    graph.apply(WriteSet((CreateNode(0, ("Item",), (("i", 0),)),)), 1)
    first = engine.run(graph, "CREATE (:Item {i: 1})").write_set
    pending = [Pending(b"p1", first, index=2)]
    overlay = Overlay(engine, graph, 1, pending)
    assert overlay.serves(graph, 1, pending)
    second, _ = overlay.execute("CREATE (:Item {i: 2})", {})
    assert not overlay.serves(graph, 1, pending)  # its write is not proposed (yet)
    pending.append(Pending(b"p2", second.write_set))
    pending.append(Pending(b"p3", WriteSet()))  # a request that wrote nothing, in the log
    assert overlay.serves(graph, 1, pending)
    # Going on in it is the same as a fresh replay of the pending writes.
    reused, _ = overlay.execute(
        "CREATE (:Item {i: 3}) WITH 1 AS x MATCH (n:Item) RETURN count(n)", {}
    )
    fresh, _ = execute_over_pending(
        engine,
        graph,
        1,
        pending,
        "CREATE (:Item {i: 3}) WITH 1 AS x MATCH (n:Item) RETURN count(n)",
        {},
    )
    assert reused == fresh and reused.rows == [[4]]
    pending.append(Pending(b"p4", reused.write_set))
    assert overlay.serves(graph, 1, pending)
    # Another writer's set in between (equal, but not the one it executed), a write that
    # left the pipeline, or an apply: each makes it rebuild.
    assert not overlay.serves(
        graph, 1, [*pending[:-1], Pending(b"p4", WriteSet(reused.write_set.operations))]
    )
    assert not overlay.serves(graph, 1, pending[1:])
    graph.apply(first, 2)
    assert not overlay.serves(graph, 2, pending)
    assert not overlay.serves(_graph(tmp_path / "other"), 1, pending)


def test_a_discarded_write_is_not_seen_by_the_statements_after_it(tmp_path: Path) -> None:
    """The leader takes back a statement's write it will not propose (too large for one
    entry): the next statement of the batch runs as if it had never run."""
    graph = _graph(tmp_path)
    engine = Engine()
    pending = [Pending(b"p1", engine.run(graph, "CREATE (:Item {i: 0})").write_set)]
    overlay = Overlay(engine, graph, 0, pending)
    overlay.execute("CREATE (:Item {i: 1})", {})
    overlay.discard_last()
    after, _ = overlay.execute(
        "CREATE (:Item {i: 2}) WITH 1 AS x MATCH (n:Item) RETURN count(n)", {}
    )
    assert after.rows == [[2]]
    assert after.write_set.operations == (CreateNode(1, ("Item",), (("i", 2),)),)
    # With nothing pending, the first statement runs on the graph itself.
    bare = Overlay(engine, graph, 0, [])
    bare.execute("CREATE (:Item {i: 1})", {})
    bare.discard_last()
    alone, overlaid = bare.execute("MATCH (n:Item) RETURN count(n)", {})
    assert alone.rows == [[0]] and not overlaid


def test_a_pipelined_write_applies_only_after_the_write_it_followed(tmp_path: Path) -> None:
    graph = _graph(tmp_path)
    machine = StateMachine(graph)
    unique = _envelope(WriteSet((CreateUniqueConstraint("u", "P", ("k",)),)))
    assert machine.apply_entry(1, unique.encode()).decision is Decision.APPLY
    first = _envelope(WriteSet((CreateNode(0, ("P",), (("k", 0),)),)), after=unique.proposal_id)
    assert machine.apply_entry(2, first.encode()).decision is Decision.APPLY
    # Executed after `unique` too, but `first` was applied in between: outdated.
    stale = _envelope(WriteSet((CreateNode(1, ("P",), (("k", 1),)),)), after=unique.proposal_id)
    assert machine.apply_entry(3, stale.encode()).decision is Decision.OUTDATED
    # A write the graph refuses breaks the chain for whatever followed it.
    refused = _envelope(WriteSet((CreateNode(1, ("P",), (("k", 0),)),)), after=first.proposal_id)
    outcome = machine.apply_entry(4, refused.encode())
    assert outcome.decision is Decision.APPLY and outcome.error
    follower = _envelope(WriteSet((CreateNode(2, ("P",), (("k", 2),)),)), after=refused.proposal_id)
    assert machine.apply_entry(5, follower.encode()).decision is Decision.OUTDATED
    assert graph.node(1) is None and graph.node(2) is None and graph.applied_index() == 5
    # Not pipelined: the base index rule, and request dedup, as before.
    fresh = _envelope(WriteSet((CreateNode(3, (), ()),)), base=5, seq=7)
    assert machine.apply_entry(6, fresh.encode()).decision is Decision.APPLY
    retry = _envelope(WriteSet((CreateNode(4, (), ()),)), base=6, seq=7)
    duplicate = machine.apply_entry(7, retry.encode())
    assert duplicate.decision is Decision.DUPLICATE and duplicate.original_index == 6
    behind = _envelope(WriteSet((CreateNode(5, (), ()),)), base=5)
    assert machine.apply_entry(8, behind.encode()).decision is Decision.OUTDATED


def test_a_clients_record_follows_each_of_its_applied_requests(tmp_path: Path) -> None:
    """The parsed record is kept between lookups; each applied request replaces it, and a
    retry of an applied sequence is a duplicate answered with the first commit's index."""
    sm = StateMachine(_graph(tmp_path))
    assert sm.client_record("client") is None
    for index, seq in ((1, 1), (2, 2)):
        write_set = WriteSet((CreateNode(index - 1, ("Item",), ()),))
        outcome = sm.apply_entry(index, _envelope(write_set, base=index - 1, seq=seq).encode())
        assert outcome.decision is Decision.APPLY
        assert sm.client_record("client") == (seq, index, {"nodes_created": 1})
        assert sm.client_record("client") is sm.client_record("client")
    retry = _envelope(WriteSet((CreateNode(2, ("Item",), ()),)), base=2, seq=2)
    outcome = sm.apply_entry(3, retry.encode())
    assert outcome.decision is Decision.DUPLICATE and outcome.original_index == 2
    assert sm.client_record("client") == (2, 2, {"nodes_created": 1})
