"""Transaction state: the committed graph view plus the overlay of a transaction's writes.

Reads see the transaction's own pending writes; every write is recorded as a store
operation, in order, with ids allocated from `view.next_ids()`, and counted in Neo4j's
counters. `finish()` checks the end-of-statement invariants (no deleted node keeps a
relationship) and returns the deterministic `WriteSet`. It never writes to the view.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from cypher.errors import CypherError
from store import writeset as ws
from store.view import (
    ConstraintInfo,
    Direction,
    GraphView,
    IndexInfo,
    IndexNotFoundError,
    NodeRecord,
    RelationshipEnds,
    RelationshipRecord,
)

if TYPE_CHECKING:
    from cypher.secure import WriteGuard

COUNTER_NAMES = (
    "nodes_created",
    "nodes_deleted",
    "relationships_created",
    "relationships_deleted",
    "properties_set",
    "labels_added",
    "labels_removed",
    "indexes_added",
    "indexes_removed",
    "constraints_added",
    "constraints_removed",
)


@dataclass(slots=True)
class _NodeData:
    labels: set[str]
    properties: dict[str, Any]


@dataclass(slots=True)
class _RelData:
    type: str
    start: int
    end: int
    properties: dict[str, Any]


@dataclass(slots=True)
class RelInfo:
    id: int
    type: str
    start: int
    end: int


def deleted_entity(kind: str, entity_id: int) -> CypherError:
    return CypherError(
        f"{kind} {entity_id} has been deleted in this transaction",
        "DeletedEntityAccess",
        kind="EntityNotFound",
    )


_NO_WRITES: Final = ws.WriteSet(())


@dataclass
class TxState:
    view: GraphView
    nodes: dict[int, _NodeData] = field(default_factory=dict)
    rels: dict[int, _RelData] = field(default_factory=dict)
    deleted_nodes: set[int] = field(default_factory=set)
    deleted_rels: set[int] = field(default_factory=set)
    created_nodes: list[int] = field(default_factory=list)
    created_rels: list[int] = field(default_factory=list)
    operations: list[ws.Operation] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTER_NAMES, 0))
    next_node_id: int = -1
    next_rel_id: int = -1
    touched_nodes: set[int] = field(default_factory=set)
    relabelled_nodes: set[int] = field(default_factory=set)
    """Nodes a label was removed from (the other writes to a node touch it)."""
    written_rels: set[int] = field(default_factory=set)
    """Committed relationships this transaction set a property of."""
    guard: WriteGuard | None = None
    """A restricted user's write checks (None: unrestricted); `view` is then filtered."""

    @property
    def base_view(self) -> GraphView:
        """The unfiltered graph, for checks that must see hidden elements too."""
        return self.view if self.guard is None else self.guard.base

    def _allocate_ids(self) -> None:
        # Read lazily: a read-only statement never needs the view's next ids.
        if self.next_node_id < 0:
            self.next_node_id, self.next_rel_id = self.view.next_ids()

    @property
    def dirty(self) -> bool:
        return bool(self.operations)

    # -- reads --------------------------------------------------------------------------------

    def _node(self, node_id: int) -> _NodeData | None:
        data = self.nodes.get(node_id)
        if data is not None:
            return data
        if node_id in self.deleted_nodes:
            return None
        record = self.view.node(node_id)
        if record is None:
            return None
        data = _NodeData(set(record.labels), dict(record.properties))
        self.nodes[node_id] = data
        return data

    def _rel(self, rel_id: int) -> _RelData | None:
        data = self.rels.get(rel_id)
        if data is not None:
            return data
        if rel_id in self.deleted_rels:
            return None
        record = self.view.relationship(rel_id)
        if record is None:
            return None
        data = _RelData(record.type, record.start, record.end, dict(record.properties))
        self.rels[rel_id] = data
        return data

    def node_exists(self, node_id: int) -> bool:
        return node_id not in self.deleted_nodes and self._node(node_id) is not None

    def node_labels(self, node_id: int) -> set[str]:
        if node_id in self.deleted_nodes:
            raise deleted_entity("node", node_id)
        data = self._node(node_id)
        return data.labels if data is not None else set()

    def node_properties(self, node_id: int) -> dict[str, Any]:
        if node_id in self.deleted_nodes:
            raise deleted_entity("node", node_id)
        data = self._node(node_id)
        return data.properties if data is not None else {}

    def rel_info(self, rel_id: int) -> RelInfo:
        data = self.rels.get(rel_id) or self._rel(rel_id)
        if data is None:
            raise deleted_entity("relationship", rel_id)
        return RelInfo(rel_id, data.type, data.start, data.end)

    def rel_type(self, rel_id: int) -> str:
        return self.rel_info(rel_id).type

    def rel_properties(self, rel_id: int) -> dict[str, Any]:
        if rel_id in self.deleted_rels:
            raise deleted_entity("relationship", rel_id)
        data = self._rel(rel_id)
        return data.properties if data is not None else {}

    def is_deleted_node(self, node_id: int) -> bool:
        return node_id in self.deleted_nodes

    def is_deleted_rel(self, rel_id: int) -> bool:
        return rel_id in self.deleted_rels

    def node_ids(self) -> Iterator[int]:
        for node_id in self.view.node_ids():
            if node_id not in self.deleted_nodes:
                yield node_id
        for node_id in list(self.created_nodes):
            if node_id not in self.deleted_nodes:
                yield node_id

    def node_ids_by_label(self, label: str) -> Iterator[int]:
        if not self.nodes:
            yield from self.view.node_ids_by_label(label)
            return
        found = set()
        for node_id in self.view.node_ids_by_label(label):
            if node_id in self.deleted_nodes:
                continue
            data = self.nodes.get(node_id)
            if data is None or label in data.labels:
                found.add(node_id)
        for node_id, data in self.nodes.items():
            if label in data.labels and node_id not in self.deleted_nodes:
                found.add(node_id)
        yield from sorted(found)

    def node_ids_by_property(self, label: str, key: str, value: Any) -> Iterator[int] | None:
        """Index seek over the view plus this transaction's writes (None: no index).

        A superset of the matches, ascending: the committed seek's nodes that still exist,
        plus every node this transaction created or changed (a property set or a label
        added may make it match). The caller checks labels and properties on each.
        """
        if not self.view.has_index(label, key):
            return None
        if not self.operations and not self.deleted_nodes:
            return self.view.node_ids_by_property(label, key, value)
        found = {
            node_id
            for node_id in self.view.node_ids_by_property(label, key, value)
            if node_id not in self.deleted_nodes
        }
        found.update(node_id for node_id in self.touched_nodes if node_id not in self.deleted_nodes)
        return iter(sorted(found))

    def relationships(
        self, node_id: int, direction: Direction, types: Sequence[str] | None
    ) -> list[RelInfo]:
        created = self.created_nodes
        if not self.created_rels and not self.deleted_rels:
            if created and node_id >= created[0]:
                return []
            # No overlay: the view's ends serve as they are (same four attributes), and
            # reading them reads no relationship record.
            return list(self.view.relationship_ends(node_id, direction, types or None))  # type: ignore[arg-type]
        result: list[RelInfo] = []
        # Ids are allocated ascending, so a node created here has no committed relationships.
        if not created or node_id < created[0]:
            for record in self.view.relationship_ends(node_id, direction, types or None):
                if record.id in self.deleted_rels:
                    continue
                result.append(RelInfo(record.id, record.type, record.start, record.end))
        for rel_id in self.created_rels:
            if rel_id in self.deleted_rels:
                continue
            data = self.rels[rel_id]
            if types and data.type not in types:
                continue
            out = data.start == node_id
            inc = data.end == node_id
            if (
                (direction is Direction.OUTGOING and out)
                or (direction is Direction.INCOMING and inc)
                or (direction is Direction.BOTH and (out or inc))
            ):
                result.append(RelInfo(rel_id, data.type, data.start, data.end))
        return result

    def relationship_ids(self) -> Iterator[int]:
        for rel_id in self.view.relationship_ids():
            if rel_id not in self.deleted_rels:
                yield rel_id
        for rel_id in list(self.created_rels):
            if rel_id not in self.deleted_rels:
                yield rel_id

    def forget_reads(self) -> None:
        """Forget the records this transaction only read, so that its next statement reads
        them afresh; what it wrote (or deleted) stays. For a restricted user's transaction:
        another commit may have hidden a node since, and a record kept from before would
        still answer label scans."""
        kept = self.touched_nodes | self.relabelled_nodes | self.deleted_nodes
        for node_id in [n for n in self.nodes if n not in kept]:
            del self.nodes[node_id]
        kept = self.written_rels | self.deleted_rels | set(self.created_rels)
        for rel_id in [r for r in self.rels if r not in kept]:
            del self.rels[rel_id]

    # -- writes -------------------------------------------------------------------------------

    def create_node(self, labels: Sequence[str], properties: dict[str, Any]) -> int:
        self._allocate_ids()
        node_id = self.next_node_id
        self.next_node_id += 1
        props = {k: v for k, v in properties.items() if v is not None}
        unique_labels = tuple(dict.fromkeys(labels))
        if self.guard is not None:
            self.guard.create_node(unique_labels, props)
        self.nodes[node_id] = _NodeData(set(unique_labels), dict(props))
        self.created_nodes.append(node_id)
        self.touched_nodes.add(node_id)
        self.operations.append(ws.CreateNode(node_id, unique_labels, tuple(props.items())))
        self.counters["nodes_created"] += 1
        self.counters["labels_added"] += len(unique_labels)
        self.counters["properties_set"] += len(props)
        return node_id

    def create_relationship(
        self, rel_type: str, start: int, end: int, properties: dict[str, Any]
    ) -> int:
        for node_id in (start, end):
            # A node reference only comes from this view or this transaction, so it exists
            # unless this transaction deleted it: no need to read its record.
            if node_id in self.deleted_nodes:
                raise deleted_entity("node", node_id)
        self._allocate_ids()
        rel_id = self.next_rel_id
        self.next_rel_id += 1
        props = {k: v for k, v in properties.items() if v is not None}
        if self.guard is not None:
            self.guard.create_relationship(rel_type, props)
        self.rels[rel_id] = _RelData(rel_type, start, end, dict(props))
        self.created_rels.append(rel_id)
        self.operations.append(
            ws.CreateRelationship(rel_id, rel_type, start, end, tuple(props.items()))
        )
        self.counters["relationships_created"] += 1
        self.counters["properties_set"] += len(props)
        return rel_id

    def set_node_property(self, node_id: int, key: str, value: Any) -> None:
        if node_id in self.deleted_nodes:
            raise deleted_entity("node", node_id)
        data = self._node(node_id)
        if data is None:
            raise deleted_entity("node", node_id)
        if self.guard is not None and (value is not None or key in data.properties):
            self.guard.set_node_property(data.labels, key)
        if value is None:
            if key not in data.properties:
                return
            del data.properties[key]
        else:
            data.properties[key] = value
        self.operations.append(ws.SetNodeProperty(node_id, key, value))
        self.touched_nodes.add(node_id)
        self.counters["properties_set"] += 1

    def set_rel_property(self, rel_id: int, key: str, value: Any) -> None:
        if rel_id in self.deleted_rels:
            raise deleted_entity("relationship", rel_id)
        data = self._rel(rel_id)
        if data is None:
            raise deleted_entity("relationship", rel_id)
        if self.guard is not None and (value is not None or key in data.properties):
            self.guard.set_relationship_property(data.type, key)
        if value is None:
            if key not in data.properties:
                return
            del data.properties[key]
        else:
            data.properties[key] = value
        self.written_rels.add(rel_id)
        self.operations.append(ws.SetRelationshipProperty(rel_id, key, value))
        self.counters["properties_set"] += 1

    def add_label(self, node_id: int, label: str) -> None:
        data = self._node(node_id)
        if data is None or node_id in self.deleted_nodes:
            raise deleted_entity("node", node_id)
        if label in data.labels:
            return
        if self.guard is not None:
            self.guard.add_label(label)
        data.labels.add(label)
        self.operations.append(ws.AddLabel(node_id, label))
        self.touched_nodes.add(node_id)
        self.counters["labels_added"] += 1

    def remove_label(self, node_id: int, label: str) -> None:
        data = self._node(node_id)
        if data is None or node_id in self.deleted_nodes:
            raise deleted_entity("node", node_id)
        if label not in data.labels:
            return
        if self.guard is not None:
            self.guard.remove_label(label)
        data.labels.discard(label)
        self.relabelled_nodes.add(node_id)
        self.operations.append(ws.RemoveLabel(node_id, label))
        self.counters["labels_removed"] += 1

    def delete_relationship(self, rel_id: int) -> None:
        if rel_id in self.deleted_rels:
            return
        data = self._rel(rel_id)
        if data is None:
            return
        if self.guard is not None:
            self.guard.delete_relationship(data.type)
        self.deleted_rels.add(rel_id)
        self.operations.append(ws.DeleteRelationship(rel_id))
        self.counters["relationships_deleted"] += 1

    def delete_node(self, node_id: int, detach: bool) -> None:
        if node_id in self.deleted_nodes:
            return
        data = self._node(node_id)
        if data is None:
            return
        if self.guard is not None:
            self.guard.delete_node(data.labels)
            if detach:
                self._check_no_hidden_relationships(node_id)
        if detach:
            for rel in self.relationships(node_id, Direction.BOTH, None):
                self.delete_relationship(rel.id)
        self.deleted_nodes.add(node_id)
        self.counters["nodes_deleted"] += 1

    def _check_no_hidden_relationships(self, node_id: int) -> None:
        """DETACH DELETE must not remove relationships the user cannot see."""
        assert self.guard is not None
        visible = {rel.id for rel in self.relationships(node_id, Direction.BOTH, None)}
        for record in self.guard.base.relationships(node_id, Direction.BOTH, None):
            if record.id not in visible and record.id not in self.deleted_rels:
                from cypher.secure import forbidden

                raise forbidden("Deleting relationships that are not visible")

    def add_schema_operation(self, operation: ws.Operation, counter: str) -> None:
        self.operations.append(operation)
        self.counters[counter] += 1

    def _check_uniqueness(self) -> None:
        """Uniqueness constraints hold for every node this transaction created or changed."""
        if not self.touched_nodes:
            return
        from cypher.values import group_key

        for constraint in self.view.constraints():
            seen: dict[object, int] = {}
            for node_id in sorted(self.touched_nodes):
                if node_id in self.deleted_nodes:
                    continue
                data = self.nodes[node_id]
                if constraint.label not in data.labels:
                    continue
                properties = self.constraint_properties(node_id)
                values = [properties.get(key) for key in constraint.properties]
                if any(value is None for value in values):
                    continue
                key = tuple(group_key(value) for value in values)
                other = seen.get(key)
                if other is None:
                    other = self._committed_holder(constraint, values, node_id)
                if other is not None:
                    # A restricted user must not learn the id of a node they cannot see.
                    holder = f" (node {other})" if self.guard is None else ""
                    raise CypherError(
                        f"node {node_id} already exists with label `{constraint.label}` and "
                        f"properties {list(constraint.properties)}{holder}",
                        "UniquenessConstraintViolation",
                        kind="ConstraintValidationFailed",
                    )
                seen[key] = node_id

    def constraint_properties(self, node_id: int) -> dict[str, Any]:
        """The properties of a node this transaction holds, as the whole graph has them.

        A restricted transaction loads only what its user may read (plus its own writes);
        a uniqueness constraint must see the unreadable values too, or a node whose hidden
        value collides could take the constrained label. The user's own writes win; a
        readable key the transaction removed stays removed."""
        data = self.nodes[node_id]
        created = self.created_nodes
        if self.guard is None or (created and node_id >= created[0]):
            return data.properties
        record = self.guard.base.node(node_id)
        if record is None:
            return data.properties
        seen = self.view.node(node_id)
        readable = seen.properties if seen is not None else {}
        hidden = {k: v for k, v in record.properties.items() if k not in readable}
        return {**hidden, **data.properties} if hidden else data.properties

    def _committed_holder(self, constraint: Any, values: list[Any], node_id: int) -> int | None:
        from cypher.values import equals

        first_key = constraint.properties[0]
        # The whole graph: a node the user cannot see still holds its value.
        view = self.base_view
        if view.has_index(constraint.label, first_key):
            candidates: Iterator[int] = view.node_ids_by_property(
                constraint.label, first_key, values[0]
            )
        else:
            candidates = view.node_ids_by_label(constraint.label)
        for other in candidates:
            if other == node_id or other in self.deleted_nodes or other in self.touched_nodes:
                continue
            data = self._node(other) if self.guard is None else view.node(other)
            if data is None or constraint.label not in data.labels:
                continue
            if all(
                equals(data.properties.get(key), value) is True
                for key, value in zip(constraint.properties, values, strict=True)
            ):
                return other
        return None

    def _has_hidden_relationships(self, node_id: int) -> bool:
        assert self.guard is not None
        return any(
            record.id not in self.deleted_rels
            for record in self.guard.base.relationships(node_id, Direction.BOTH, None)
        )

    def finish(self) -> ws.WriteSet:
        """Check end-of-statement invariants and return the write set."""
        if not self.operations and not self.deleted_nodes and not self.touched_nodes:
            return _NO_WRITES  # a read-only statement: nothing to check
        for node_id in sorted(self.deleted_nodes):
            if self.relationships(node_id, Direction.BOTH, None) or (
                self.guard is not None and self._has_hidden_relationships(node_id)
            ):
                raise CypherError(
                    f"node {node_id} cannot be deleted: it still has relationships",
                    "DeleteConnectedNode",
                    kind="ConstraintVerificationFailed",
                )
        self._check_uniqueness()
        operations = list(self.operations)
        operations.extend(ws.DeleteNode(node_id) for node_id in sorted(self.deleted_nodes))
        return ws.WriteSet(tuple(operations))


class TxStateView:
    """A `GraphView` of a transaction state: the committed graph with the state's writes on
    top. A statement run over it (for a restricted user, through `cypher.secure`) sees the
    pending writes as committed; its own writes get the ids that follow the state's. Read
    only: it never changes the state it shows (beyond loading records into its cache)."""

    def __init__(self, tx: TxState) -> None:
        self.tx = tx

    def node(self, node_id: int) -> NodeRecord | None:
        if self.tx.is_deleted_node(node_id):
            return None
        data = self.tx._node(node_id)
        if data is None:
            return None
        return NodeRecord(node_id, frozenset(data.labels), dict(data.properties))

    def node_has_label(self, node_id: int, label: str) -> bool:
        if self.tx.is_deleted_node(node_id):
            return False
        data = self.tx._node(node_id)
        return data is not None and label in data.labels

    def relationship(self, rel_id: int) -> RelationshipRecord | None:
        if self.tx.is_deleted_rel(rel_id):
            return None
        data = self.tx._rel(rel_id)
        if data is None:
            return None
        return RelationshipRecord(rel_id, data.type, data.start, data.end, dict(data.properties))

    def node_ids(self) -> Iterator[int]:
        return self.tx.node_ids()

    def node_ids_by_label(self, label: str) -> Iterator[int]:
        return self.tx.node_ids_by_label(label)

    def has_index(self, label: str, key: str) -> bool:
        return self.tx.view.has_index(label, key)

    def node_ids_by_property(self, label: str, key: str, value: Any) -> Iterator[int]:
        from store.memory import values_equal

        seek = self.tx.node_ids_by_property(label, key, value)
        if seek is None:
            raise IndexNotFoundError(f"no index on :{label}({key})")
        for node_id in seek:
            record = self.node(node_id)
            if record is None or label not in record.labels:
                continue
            stored = record.properties.get(key)
            if stored is not None and values_equal(stored, value):
                yield node_id

    def relationship_ids(self) -> Iterator[int]:
        return self.tx.relationship_ids()

    def relationship_ids_by_type(self, type: str) -> Iterator[int]:
        tx = self.tx
        found = {
            rel_id
            for rel_id in tx.view.relationship_ids_by_type(type)
            if rel_id not in tx.deleted_rels
        }
        found.update(
            rel_id
            for rel_id in tx.created_rels
            if rel_id not in tx.deleted_rels and tx.rels[rel_id].type == type
        )
        return iter(sorted(found))

    def has_relationship_index(self, type: str, key: str) -> bool:
        return self.tx.view.has_relationship_index(type, key)

    def relationship_ids_by_property(self, type: str, key: str, value: Any) -> Iterator[int]:
        """The committed seek corrected by this state's relationships (created, changed or
        deleted ones), each decided on its current properties."""
        from store.memory import values_equal

        tx = self.tx
        candidates = set(tx.view.relationship_ids_by_property(type, key, value))
        candidates.update(tx.rels)
        for rel_id in sorted(candidates):
            record = self.relationship(rel_id)
            if record is None or record.type != type:
                continue
            stored = record.properties.get(key)
            if stored is not None and values_equal(stored, value):
                yield rel_id

    def relationships(
        self, node_id: int, direction: Direction, types: Sequence[str] | None = None
    ) -> Iterator[RelationshipRecord]:
        for info in self.tx.relationships(node_id, direction, types):
            record = self.relationship(info.id)
            if record is not None:
                yield record

    def relationship_ends(
        self, node_id: int, direction: Direction, types: Sequence[str] | None = None
    ) -> Iterator[RelationshipEnds]:
        for info in self.tx.relationships(node_id, direction, types):
            yield RelationshipEnds(info.id, info.type, info.start, info.end)

    def count_nodes(self, label: str | None = None) -> int:
        """The committed count corrected by the nodes this state holds (its writes)."""
        tx = self.tx
        count = tx.view.count_nodes(label)
        for node_id, data in list(tx.nodes.items()):
            before = tx.view.node(node_id)
            had = before is not None and (label is None or label in before.labels)
            has = node_id not in tx.deleted_nodes and (label is None or label in data.labels)
            count += int(has) - int(had)
        return count

    def count_relationships(self, type: str | None = None) -> int:
        tx = self.tx
        count = tx.view.count_relationships(type)
        for rel_id, data in list(tx.rels.items()):
            matches = type is None or data.type == type
            committed = tx.view.relationship(rel_id) is not None
            alive = rel_id not in tx.deleted_rels
            count += int(matches and alive and not committed) - int(
                matches and committed and not alive
            )
        return count

    def labels(self) -> list[str]:
        found = set(self.tx.view.labels())
        for node_id, data in self.tx.nodes.items():
            if node_id not in self.tx.deleted_nodes:
                found |= data.labels
        return sorted(found)

    def relationship_types(self) -> list[str]:
        found = set(self.tx.view.relationship_types())
        for rel_id in self.tx.created_rels:
            if rel_id not in self.tx.deleted_rels:
                found.add(self.tx.rels[rel_id].type)
        return sorted(found)

    def property_keys(self) -> list[str]:
        found = set(self.tx.view.property_keys())
        for data in self.tx.nodes.values():
            found.update(data.properties)
        for rel in self.tx.rels.values():
            found.update(rel.properties)
        return sorted(found)

    def indexes(self) -> list[IndexInfo]:
        return self.tx.view.indexes()

    def constraints(self) -> list[ConstraintInfo]:
        return self.tx.view.constraints()

    def next_ids(self) -> tuple[int, int]:
        self.tx._allocate_ids()
        return self.tx.next_node_id, self.tx.next_rel_id
