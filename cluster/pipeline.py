"""Pipelined writes on the leader: a statement executes against the applied graph plus the
overlay of the leader's pending (proposed, not yet applied) write sets, so that several
writes are in flight at once and share a Ready, an fsync and an AppendEntries round.

Owns the overlay: the pending write sets are replayed, in order, into a transaction state
over the graph (``cypher.txstate.TxState``), a statement runs in it, and its own operations
are cut off the end; a batch of statements shares one replay (:class:`Overlay`). Replay
reproduces the pending writes' node and relationship ids because ids are allocated in order
from the graph's next ids, and it is checked: a pending write the overlay cannot reproduce
(schema changes, an id that comes out different) raises ``OverlayUnavailableError`` and the
caller waits for the pipeline to drain instead.

Safety does not rest on the overlay: each pipelined envelope names the pending write it was
executed after, and the state machine applies it only if that write is the last one applied
(``cluster.statemachine``), so a pending write that failed or was refused takes everything
pipelined after it down with a retryable ``Neo.TransientError.Transaction.Outdated``.

Must never: write to the graph, or read a live graph outside the state machine's read lock
(a snapshot of it needs none).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from cypher import CypherError, Engine, Result, Transaction
from cypher.txstate import TxState, TxStateView
from store import writeset as ws
from store.view import GraphView

if TYPE_CHECKING:
    from cluster.security.privileges import PrivilegeSet

MAX_PIPELINE: Final = 256
"""Writes proposed and not yet applied, at most; a writer beyond waits for room."""


class OverlayUnavailableError(Exception):
    """The pending writes cannot be replayed: execute once they are applied."""


@dataclass(slots=True)
class Pending:
    """A write proposed by this leader and not yet applied."""

    proposal_id: bytes
    write_set: ws.WriteSet
    index: int = 0
    """Its log index, once the Raft loop proposed it (0 before)."""


def _replay(tx: TxState, write_set: ws.WriteSet) -> None:
    for op in write_set.operations:
        if isinstance(op, ws.CreateNode):
            if tx.create_node(op.labels, dict(op.properties)) != op.node_id:
                raise OverlayUnavailableError("a node id came out different")
        elif isinstance(op, ws.CreateRelationship):
            created = tx.create_relationship(op.type, op.start, op.end, dict(op.properties))
            if created != op.rel_id:
                raise OverlayUnavailableError("a relationship id came out different")
        elif isinstance(op, ws.SetNodeProperty):
            tx.set_node_property(op.node_id, op.key, op.value)
        elif isinstance(op, ws.SetRelationshipProperty):
            tx.set_rel_property(op.rel_id, op.key, op.value)
        elif isinstance(op, ws.AddLabel):
            tx.add_label(op.node_id, op.label)
        elif isinstance(op, ws.RemoveLabel):
            tx.remove_label(op.node_id, op.label)
        elif isinstance(op, ws.DeleteRelationship):
            tx.delete_relationship(op.rel_id)
        elif isinstance(op, ws.DeleteNode):
            tx.delete_node(op.node_id, detach=False)
        else:
            raise OverlayUnavailableError(f"{type(op).__name__} is not replayed")


def _unapplied(pending: Sequence[Pending], applied_index: int) -> list[ws.WriteSet]:
    return [p.write_set for p in pending if p.index == 0 or p.index > applied_index]


class Overlay:
    """The applied graph plus pending writes, for a batch of statements executed in order,
    each on top of the writes of the ones before it.

    The pending writes are replayed once into a transaction state; a statement runs in it
    and its own operations are cut off the end; a statement that writes stays in the
    overlay for the next, one that fails is dropped (the state is rebuilt from the writes
    kept, on the next statement). So a batch of n statements over k pending writes costs
    one replay of k, not n. Use in one thread, over a snapshot or under the state
    machine's read lock.
    """

    def __init__(
        self, engine: Engine, graph: GraphView, applied_index: int, pending: Sequence[Pending]
    ) -> None:
        self._engine = engine
        self._graph = graph
        self._applied_index = applied_index
        self._writes = _unapplied(pending, applied_index)
        self._tx: TxState | None = None
        """Exactly `_writes` replayed, or None: to be rebuilt."""

    def serves(self, graph: GraphView, applied_index: int, pending: Sequence[Pending]) -> bool:
        """Whether this overlay is still `pending` over `graph` at `applied_index`: nothing
        was applied since it was built, and the pending writes are its own, in order (those
        it was built over and then each write it executed, all proposed). Then the next
        batch goes on in it instead of replaying every pending write again: under load a
        batch holds about one statement, and the pipeline a few dozen writes."""
        if graph is not self._graph or applied_index != self._applied_index:
            return False
        mine = [w for w in self._writes if w]
        theirs = [w for w in _unapplied(pending, applied_index) if w]
        return len(mine) == len(theirs) and all(a is b for a, b in zip(mine, theirs, strict=True))

    def discard_last(self) -> None:
        """Take back the write of the statement just executed (it will not be proposed):
        the statements after it must not see it. The state is rebuilt from the writes kept,
        when the next statement runs."""
        self._writes.pop()
        self._tx = None

    def _replayed(self) -> TxState:
        tx = TxState(self._graph)
        try:
            for write_set in self._writes:
                _replay(tx, write_set)
        except CypherError as error:
            raise OverlayUnavailableError(f"replay failed: {error}") from None
        return tx

    def execute(
        self, query: str, parameters: Mapping[str, Any], privileges: PrivilegeSet | None = None
    ) -> tuple[Result, bool]:
        """Run `query` over the overlay: the result (its write set: this statement's
        operations only) and whether any pending write was under it. With `privileges`, as
        a user they restrict: the pending writes (anyone's) are replayed unrestricted and
        the statement reads them through the filtered view like committed data."""
        if not self._writes:
            result = self._engine.run(self._graph, query, parameters, privileges)
            if result.write_set:
                self._writes.append(result.write_set)
            return result, False
        tx = self._tx if self._tx is not None else self._replayed()
        if privileges is not None:
            return self._execute_restricted(tx, query, parameters, privileges), True
        self._tx = None  # until the statement succeeded, the state is not `_writes`
        replayed = len(tx.operations)
        deleted_before = set(tx.deleted_nodes)
        result = Transaction(self._engine, tx).run(query, parameters)
        tx.finish()  # the end-of-statement checks, over the overlay and the statement together
        own = list(tx.operations[replayed:])
        own.extend(ws.DeleteNode(n) for n in sorted(tx.deleted_nodes - deleted_before))
        write_set = ws.WriteSet(tuple(own))
        if own:
            self._writes.append(write_set)
        self._tx = tx
        return dataclasses.replace(result, write_set=write_set), True

    def _execute_restricted(
        self, tx: TxState, query: str, parameters: Mapping[str, Any], privileges: PrivilegeSet
    ) -> Result:
        self._tx = None  # until the statement succeeded, the state is not `_writes`
        result = self._engine.run(TxStateView(tx), query, parameters, privileges)
        if result.write_set:
            try:
                _replay(tx, result.write_set)  # ids follow the overlay's: they replay alike
            except CypherError as error:
                raise OverlayUnavailableError(f"replay failed: {error}") from None
            self._writes.append(result.write_set)
        self._tx = tx
        return result


def over_pending(graph: GraphView, applied_index: int, pending: Sequence[Pending]) -> GraphView:
    """The graph (applied up to `applied_index`) with the pending writes not applied yet
    replayed over it, read-only (``OverlayUnavailableError`` when they cannot be). Use
    in one thread, over a snapshot or under the state machine's read lock."""
    writes = _unapplied(pending, applied_index)
    if not writes:
        return graph
    tx = TxState(graph)
    try:
        for write_set in writes:
            _replay(tx, write_set)
    except CypherError as error:
        raise OverlayUnavailableError(f"replay failed: {error}") from None
    return TxStateView(tx)


def execute_over_pending(
    engine: Engine,
    graph: GraphView,
    applied_index: int,
    pending: Sequence[Pending],
    query: str,
    parameters: Mapping[str, Any],
    privileges: PrivilegeSet | None = None,
) -> tuple[Result, bool]:
    """Run `query` over the graph (applied up to `applied_index`) plus the pending writes
    not applied yet; the result (its write set: this statement's operations only) and
    whether any pending write was under it. Call over a snapshot or under the state
    machine's read lock."""
    return Overlay(engine, graph, applied_index, pending).execute(query, parameters, privileges)
