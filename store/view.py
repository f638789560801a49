"""The graph read view: the one interface through which the query engine reads a graph.

`store.graph` implements it over RocksDB, `store.memory.MemoryGraph` in memory (the model
that tests compare the real store against), and `cypher` wraps it with the overlay of a
transaction's own pending writes. Names (labels, types, property keys) are strings here;
tokenisation is the store's business. Iteration order of every method is ascending id, so
that reads — and therefore the write sets computed from them — are deterministic.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from store.values import Value


class Direction(enum.Enum):
    OUTGOING = "outgoing"
    INCOMING = "incoming"
    BOTH = "both"


@dataclass(slots=True, frozen=True)
class NodeRecord:
    id: int
    labels: frozenset[str]
    properties: Mapping[str, Value]


@dataclass(slots=True, frozen=True)
class RelationshipRecord:
    id: int
    type: str
    start: int
    end: int
    properties: Mapping[str, Value]


@dataclass(slots=True, frozen=True)
class RelationshipEnds:
    """A relationship without its properties: all an expansion needs to move on."""

    id: int
    type: str
    start: int
    end: int


@dataclass(slots=True, frozen=True)
class IndexInfo:
    name: str
    label: str
    """The label (or, for relationship indexes, the type) indexed."""
    properties: tuple[str, ...]
    on_relationships: bool = False
    unique: bool = False
    """Backs a uniqueness constraint (and is then listed by SHOW CONSTRAINTS too)."""


@dataclass(slots=True, frozen=True)
class ConstraintInfo:
    name: str
    label: str
    properties: tuple[str, ...]
    kind: str = "UNIQUENESS"


class IndexNotFoundError(LookupError):
    """A seek on a (label, property) that has no index."""


class GraphView(Protocol):
    def node(self, node_id: int) -> NodeRecord | None:
        """The node's record. Read-only for the caller, properties included: a store may
        hand the same record to every reader (``store.graph`` caches decoded records)."""
        ...

    def relationship(self, rel_id: int) -> RelationshipRecord | None: ...

    def node_ids(self) -> Iterator[int]:
        """Every node id, ascending."""
        ...

    def node_ids_by_label(self, label: str) -> Iterator[int]: ...

    def node_ids_by_property(self, label: str, key: str, value: Value) -> Iterator[int]:
        """Index seek: nodes with `label` whose `key` equals `value` (Cypher equality).

        Raises IndexNotFoundError when no index covers (label, key).
        """
        ...

    def has_index(self, label: str, key: str) -> bool: ...

    def relationship_ids(self) -> Iterator[int]: ...

    def relationship_ids_by_type(self, type: str) -> Iterator[int]:
        """Every relationship of `type`, ascending id (a type scan: no record is read)."""
        ...

    def has_relationship_index(self, type: str, key: str) -> bool:
        """Whether a relationship index covers (`type`, `key`) alone."""
        ...

    def relationship_ids_by_property(self, type: str, key: str, value: Value) -> Iterator[int]:
        """Index seek: relationships of `type` whose `key` equals `value` (Cypher
        equality), ascending id.

        Raises IndexNotFoundError when no relationship index covers (type, key).
        """
        ...

    def relationships(
        self, node_id: int, direction: Direction, types: Sequence[str] | None = None
    ) -> Iterator[RelationshipRecord]:
        """Relationships at `node_id` in `direction`, of any of `types` (None: all).

        A self-loop appears once for BOTH.
        """
        ...

    def relationship_ends(
        self, node_id: int, direction: Direction, types: Sequence[str] | None = None
    ) -> Iterator[RelationshipEnds]:
        """``relationships`` without the properties (same relationships, same order): an
        expansion that needs only ids and types reads no relationship record."""
        ...

    def count_nodes(self, label: str | None = None) -> int: ...

    def count_relationships(self, type: str | None = None) -> int: ...

    def labels(self) -> list[str]:
        """Labels in use, sorted."""
        ...

    def relationship_types(self) -> list[str]: ...

    def property_keys(self) -> list[str]: ...

    def indexes(self) -> list[IndexInfo]: ...

    def constraints(self) -> list[ConstraintInfo]: ...

    def next_ids(self) -> tuple[int, int]:
        """The next unused (node id, relationship id): the leader allocates from here."""
        ...
