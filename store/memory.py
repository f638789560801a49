"""MemoryGraph: the graph view and write-set semantics held in plain dictionaries.

It is the reference model: the RocksDB store must give the same answers for the same write
sets (property tests compare canonical dumps), and the query engine's tests and TCK runner
can run on it. It must stay simple enough to be obviously right; speed is not its job.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from store.values import Value
from store.view import (
    ConstraintInfo,
    Direction,
    IndexInfo,
    IndexNotFoundError,
    NodeRecord,
    RelationshipEnds,
    RelationshipRecord,
)
from store.writeset import (
    AddLabel,
    CreateIndex,
    CreateNode,
    CreateRelationship,
    CreateUniqueConstraint,
    DeleteNode,
    DeleteRelationship,
    DropConstraint,
    DropIndex,
    Operation,
    RemoveLabel,
    SetNodeProperty,
    SetRelationshipProperty,
    WriteSet,
)


class WriteSetError(ValueError):
    """A write set that does not fit the graph it is applied to: a bug on the leader."""


def values_equal(left: Value, right: Value) -> bool:
    """Cypher equality for index seeks: numbers compare by value, booleans are not numbers."""
    if isinstance(left, bool) or isinstance(right, bool):
        return type(left) is type(right) and left == right
    if isinstance(left, (int, float)) and isinstance(right, (int, float)):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(
            values_equal(a, b) for a, b in zip(left, right, strict=True)
        )
    return type(left) is type(right) and left == right


@dataclass(slots=True)
class _Node:
    labels: set[str]
    properties: dict[str, Value]


@dataclass(slots=True)
class _Relationship:
    type: str
    start: int
    end: int
    properties: dict[str, Value]


@dataclass
class MemoryGraph:
    nodes: dict[int, _Node] = field(default_factory=dict)
    rels: dict[int, _Relationship] = field(default_factory=dict)
    index_by_name: dict[str, IndexInfo] = field(default_factory=dict)
    constraint_by_name: dict[str, ConstraintInfo] = field(default_factory=dict)
    next_node_id: int = 0
    next_rel_id: int = 0

    # -- GraphView ----------------------------------------------------------------------------

    def node(self, node_id: int) -> NodeRecord | None:
        node = self.nodes.get(node_id)
        if node is None:
            return None
        return NodeRecord(node_id, frozenset(node.labels), dict(node.properties))

    def relationship(self, rel_id: int) -> RelationshipRecord | None:
        rel = self.rels.get(rel_id)
        if rel is None:
            return None
        return RelationshipRecord(rel_id, rel.type, rel.start, rel.end, dict(rel.properties))

    def node_ids(self) -> Iterator[int]:
        yield from sorted(self.nodes)

    def node_ids_by_label(self, label: str) -> Iterator[int]:
        yield from sorted(n for n, node in self.nodes.items() if label in node.labels)

    def has_index(self, label: str, key: str) -> bool:
        return any(
            not index.on_relationships and index.label == label and index.properties == (key,)
            for index in self.index_by_name.values()
        )

    def node_has_label(self, node_id: int, label: str) -> bool:
        node = self.nodes.get(node_id)
        return node is not None and label in node.labels

    def node_ids_by_property(self, label: str, key: str, value: Value) -> Iterator[int]:
        if not self.has_index(label, key):
            raise IndexNotFoundError(f"no index on :{label}({key})")
        for node_id in self.node_ids_by_label(label):
            stored = self.nodes[node_id].properties.get(key)
            if stored is not None and values_equal(stored, value):
                yield node_id

    def relationship_ids(self) -> Iterator[int]:
        yield from sorted(self.rels)

    def relationship_ids_by_type(self, type: str) -> Iterator[int]:
        yield from sorted(r for r, rel in self.rels.items() if rel.type == type)

    def has_relationship_index(self, type: str, key: str) -> bool:
        return any(
            index.on_relationships and index.label == type and index.properties == (key,)
            for index in self.index_by_name.values()
        )

    def relationship_ids_by_property(self, type: str, key: str, value: Value) -> Iterator[int]:
        if not self.has_relationship_index(type, key):
            raise IndexNotFoundError(f"no index on [:{type}]({key})")
        for rel_id in self.relationship_ids_by_type(type):
            stored = self.rels[rel_id].properties.get(key)
            if stored is not None and values_equal(stored, value):
                yield rel_id

    def relationships(
        self, node_id: int, direction: Direction, types: Sequence[str] | None = None
    ) -> Iterator[RelationshipRecord]:
        for rel_id in sorted(self.rels):
            rel = self.rels[rel_id]
            if types is not None and rel.type not in types:
                continue
            outgoing = rel.start == node_id
            incoming = rel.end == node_id
            if (
                (direction is Direction.OUTGOING and outgoing)
                or (direction is Direction.INCOMING and incoming)
                or (direction is Direction.BOTH and (outgoing or incoming))
            ):
                yield RelationshipRecord(rel_id, rel.type, rel.start, rel.end, dict(rel.properties))

    def relationship_ends(
        self, node_id: int, direction: Direction, types: Sequence[str] | None = None
    ) -> Iterator[RelationshipEnds]:
        for rel in self.relationships(node_id, direction, types):
            yield RelationshipEnds(rel.id, rel.type, rel.start, rel.end)

    def count_nodes(self, label: str | None = None) -> int:
        if label is None:
            return len(self.nodes)
        return sum(1 for node in self.nodes.values() if label in node.labels)

    def count_relationships(self, type: str | None = None) -> int:
        if type is None:
            return len(self.rels)
        return sum(1 for rel in self.rels.values() if rel.type == type)

    def labels(self) -> list[str]:
        return sorted({label for node in self.nodes.values() for label in node.labels})

    def relationship_types(self) -> list[str]:
        return sorted({rel.type for rel in self.rels.values()})

    def property_keys(self) -> list[str]:
        keys = {key for node in self.nodes.values() for key in node.properties}
        keys |= {key for rel in self.rels.values() for key in rel.properties}
        return sorted(keys)

    def indexes(self) -> list[IndexInfo]:
        return [self.index_by_name[name] for name in sorted(self.index_by_name)]

    def constraints(self) -> list[ConstraintInfo]:
        return [self.constraint_by_name[name] for name in sorted(self.constraint_by_name)]

    def next_ids(self) -> tuple[int, int]:
        return self.next_node_id, self.next_rel_id

    # -- applying write sets ------------------------------------------------------------------

    def apply(self, write_set: WriteSet) -> None:
        for operation in write_set.operations:
            self._apply(operation)

    def _apply(self, op: Operation) -> None:
        if isinstance(op, CreateNode):
            if op.node_id in self.nodes:
                raise WriteSetError(f"node {op.node_id} exists")
            self.nodes[op.node_id] = _Node(set(op.labels), dict(op.properties))
            self.next_node_id = max(self.next_node_id, op.node_id + 1)
        elif isinstance(op, DeleteNode):
            self._node(op.node_id)
            if any(op.node_id in (rel.start, rel.end) for rel in self.rels.values()):
                raise WriteSetError(f"node {op.node_id} still has relationships")
            del self.nodes[op.node_id]
        elif isinstance(op, CreateRelationship):
            if op.rel_id in self.rels:
                raise WriteSetError(f"relationship {op.rel_id} exists")
            self._node(op.start)
            self._node(op.end)
            self.rels[op.rel_id] = _Relationship(op.type, op.start, op.end, dict(op.properties))
            self.next_rel_id = max(self.next_rel_id, op.rel_id + 1)
        elif isinstance(op, DeleteRelationship):
            if self.rels.pop(op.rel_id, None) is None:
                raise WriteSetError(f"relationship {op.rel_id} does not exist")
        elif isinstance(op, SetNodeProperty):
            _set(self._node(op.node_id).properties, op.key, op.value)
        elif isinstance(op, SetRelationshipProperty):
            rel = self.rels.get(op.rel_id)
            if rel is None:
                raise WriteSetError(f"relationship {op.rel_id} does not exist")
            _set(rel.properties, op.key, op.value)
        elif isinstance(op, AddLabel):
            self._node(op.node_id).labels.add(op.label)
        elif isinstance(op, RemoveLabel):
            self._node(op.node_id).labels.discard(op.label)
        elif isinstance(op, CreateIndex):
            self.index_by_name[op.name] = IndexInfo(
                op.name, op.label, op.properties, on_relationships=op.on_relationships
            )
        elif isinstance(op, DropIndex):
            self.index_by_name.pop(op.name, None)
        elif isinstance(op, CreateUniqueConstraint):
            self.constraint_by_name[op.name] = ConstraintInfo(op.name, op.label, op.properties)
            self.index_by_name[op.name] = IndexInfo(op.name, op.label, op.properties, unique=True)
        elif isinstance(op, DropConstraint):
            self.constraint_by_name.pop(op.name, None)
            self.index_by_name.pop(op.name, None)
        else:  # pragma: no cover - the Operation union is closed
            raise WriteSetError(f"unknown operation {op!r}")

    def _node(self, node_id: int) -> _Node:
        node = self.nodes.get(node_id)
        if node is None:
            raise WriteSetError(f"node {node_id} does not exist")
        return node

    def canonical_dump(self) -> list[tuple[object, ...]]:
        """Logical content in a fixed order: two stores are equal iff their dumps are."""
        dump: list[tuple[object, ...]] = []
        for node_id in sorted(self.nodes):
            node = self.nodes[node_id]
            dump.append(("node", node_id, tuple(sorted(node.labels)), _sorted(node.properties)))
        for rel_id in sorted(self.rels):
            rel = self.rels[rel_id]
            dump.append(("rel", rel_id, rel.type, rel.start, rel.end, _sorted(rel.properties)))
        for index in self.indexes():
            dump.append(("index", index.name, index.label, index.properties, index.unique))
        for constraint in self.constraints():
            dump.append(("constraint", constraint.name, constraint.label, constraint.properties))
        dump.append(("next", self.next_node_id, self.next_rel_id))
        return dump


def _set(properties: dict[str, Value], key: str, value: Value) -> None:
    if value is None:
        properties.pop(key, None)
    else:
        properties[key] = value


def _sorted(properties: dict[str, Value]) -> tuple[tuple[str, str], ...]:
    return tuple((key, repr(properties[key])) for key in sorted(properties))
