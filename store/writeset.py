"""The write set: deterministic low-level mutations that a transaction produced.

The leader's query engine turns a write statement into a WriteSet (ids allocated by the
leader); Raft replicates it; every node applies it to its store in one atomic batch. Applying
the same write sets in the same order gives byte-identical logical content everywhere, so
every operation is fully specified: no defaults, no clocks, no randomness at apply time.
This module owns the operation shapes only; `store.graph` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from store.values import Value


@dataclass(slots=True, frozen=True)
class CreateNode:
    node_id: int
    labels: tuple[str, ...]
    properties: tuple[tuple[str, Value], ...]


@dataclass(slots=True, frozen=True)
class DeleteNode:
    """Deletes a node that has no relationships left (DETACH DELETE emits those first)."""

    node_id: int


@dataclass(slots=True, frozen=True)
class CreateRelationship:
    rel_id: int
    type: str
    start: int
    end: int
    properties: tuple[tuple[str, Value], ...]


@dataclass(slots=True, frozen=True)
class DeleteRelationship:
    rel_id: int


@dataclass(slots=True, frozen=True)
class SetNodeProperty:
    """Sets a property; value None removes it."""

    node_id: int
    key: str
    value: Value


@dataclass(slots=True, frozen=True)
class SetRelationshipProperty:
    rel_id: int
    key: str
    value: Value


@dataclass(slots=True, frozen=True)
class AddLabel:
    node_id: int
    label: str


@dataclass(slots=True, frozen=True)
class RemoveLabel:
    node_id: int
    label: str


@dataclass(slots=True, frozen=True)
class CreateIndex:
    name: str
    label: str
    properties: tuple[str, ...]
    on_relationships: bool = False


@dataclass(slots=True, frozen=True)
class DropIndex:
    name: str


@dataclass(slots=True, frozen=True)
class CreateUniqueConstraint:
    name: str
    label: str
    properties: tuple[str, ...]


@dataclass(slots=True, frozen=True)
class DropConstraint:
    name: str


Operation = (
    CreateNode
    | DeleteNode
    | CreateRelationship
    | DeleteRelationship
    | SetNodeProperty
    | SetRelationshipProperty
    | AddLabel
    | RemoveLabel
    | CreateIndex
    | DropIndex
    | CreateUniqueConstraint
    | DropConstraint
)


@dataclass(slots=True, frozen=True)
class WriteSet:
    operations: tuple[Operation, ...] = field(default_factory=tuple)

    def __bool__(self) -> bool:
        return bool(self.operations)
