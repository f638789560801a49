"""The privilege-filtered graph view: what a restricted user's queries read.

`SecureView` wraps a `GraphView` and answers every read as if the elements a `PrivilegeSet`
hides did not exist: nodes the user cannot traverse (by label, or by a property-based rule),
relationships whose type cannot be traversed or whose end node is hidden, and properties
that cannot be read (absent from the record, so they read as null and never show in
`keys()`, `properties()`, map projections or index seeks). Counts, label and type lists and
the planner's estimates are computed over the visible elements only, so no aggregate, plan
or `db.labels()` row reveals a hidden one.

This is the one place reads are restricted: the executor and planner see nothing else. It
must never let a record, id or count of a hidden element through, and it never writes. The
unfiltered view stays reachable as `base` for the write-side checks that must see the whole
graph (uniqueness constraints, a DETACH DELETE that would remove hidden relationships),
whose errors must then not name what is hidden.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING

from cypher.errors import CypherError
from store.graph import GraphStore
from store.values import Value
from store.view import (
    ConstraintInfo,
    Direction,
    GraphView,
    IndexInfo,
    NodeRecord,
    RelationshipEnds,
    RelationshipRecord,
)

if TYPE_CHECKING:
    from cluster.security.privileges import Action, PrivilegeSet

MAX_CACHED_NODES = 65_536
"""Filtered node records (None: hidden) kept for one statement or transaction, so a node
read to decide visibility is not read again (cleared when full)."""
MAX_SHARED_LABEL_SETS = 8
"""Denied-label sets whose node visibility is shared between statements (see
``_shared_label_visibility``); the least recently made is dropped first."""

_shared_lock = threading.Lock()
_shared: dict[frozenset[str], tuple[weakref.ref[GraphStore], int, dict[int, bool]]] = {}


def _shared_label_visibility(base: GraphView, denied: frozenset[str]) -> dict[int, bool]:
    """Whether each node carries none of `denied`, shared by every statement that reads the
    same store at the same applied index (a friend-of-friend read checks each relationship's
    far end, mostly different nodes per statement, so only sharing saves the reads). Any
    write applied moves the index and starts a new map; a view over anything but the applied
    store itself (pending writes, an in-memory graph) gets a map of its own."""
    if not isinstance(base, GraphStore):
        return {}
    applied = base.applied_index()
    with _shared_lock:
        entry = _shared.get(denied)
        if entry is not None and entry[0]() is base and entry[1] == applied:
            return entry[2]
        visibility: dict[int, bool] = {}
        _shared.pop(denied, None)
        if len(_shared) >= MAX_SHARED_LABEL_SETS:
            del _shared[next(iter(_shared))]
        _shared[denied] = (weakref.ref(base), applied, visibility)
        return visibility


class SecureView:
    """A `GraphView` that shows only what `privileges` allow."""

    def __init__(self, base: GraphView, privileges: PrivilegeSet) -> None:
        self.base = base
        self.privileges = privileges
        self._records: dict[int, NodeRecord | None] = {}
        self._has_label: Callable[[int, str], bool] | None = getattr(base, "node_has_label", None)
        denied = privileges.traversal_denied_labels
        self._shares_labels = bool(
            denied is not None and not privileges.traverses_every_node and self._has_label
        )
        self._label_visible: dict[int, bool] = (
            _shared_label_visibility(base, denied)
            if denied is not None and self._shares_labels
            else {}
        )
        """Node id -> whether it carries none of the denied labels (label denies only)."""
        self._counts: dict[tuple[str, str | None], int] = {}
        self._relationships_unfiltered = (
            privileges.traverses_every_node
            and privileges.traverses_every_relationship
            and privileges.reads_every_relationship_property
        )

    def new_statement(self) -> None:
        """Forget what earlier statements of the transaction learnt: other commits may have
        hidden a node since (a label or a property set), and a visibility remembered from
        before would let its relationships, and so its id, through while its record is
        read afresh as hidden. Statements run under the graph's read lock, so within one
        statement the caches hold."""
        self._records.clear()
        self._counts.clear()
        denied = self.privileges.traversal_denied_labels
        # A shared map is another statement's too: take the current one, never clear it.
        self._label_visible = (
            _shared_label_visibility(self.base, denied)
            if denied is not None and self._shares_labels
            else {}
        )

    # -- elements -----------------------------------------------------------------------------

    def _node_visible(self, record: NodeRecord) -> bool:
        return self.privileges.can_traverse_node(record.labels, record.properties)

    def _visible_id(self, node_id: int) -> bool:
        """Whether an existing node (a relationship's end) may be traversed."""
        found = self._label_visible.get(node_id)
        if found is not None:
            return found
        privileges = self.privileges
        if privileges.traverses_every_node:
            return True
        denied = privileges.traversal_denied_labels
        if denied is not None and self._has_label is not None:
            # Label denies only: membership reads instead of decrypting the record.
            has_label = self._has_label
            found = not any(has_label(node_id, label) for label in denied)
            if len(self._label_visible) >= MAX_CACHED_NODES:
                self._label_visible.clear()
            self._label_visible[node_id] = found
            return found
        return self.node(node_id) is not None

    def _filtered_node(self, record: NodeRecord) -> NodeRecord:
        privileges = self.privileges
        if privileges.reads_every_node_property or not record.properties:
            return record
        raw = record.properties
        readable = {
            key: value
            for key, value in raw.items()
            if privileges.can_read_node_property(record.labels, key, raw)
        }
        if len(readable) == len(raw):
            return record
        return NodeRecord(record.id, record.labels, readable)

    def node(self, node_id: int) -> NodeRecord | None:
        records = self._records
        if node_id in records:
            return records[node_id]
        record = self.base.node(node_id)
        found = None
        if record is not None and self._node_visible(record):
            found = self._filtered_node(record)
        if len(records) >= MAX_CACHED_NODES:
            records.clear()
        records[node_id] = found
        return found

    def _rel_visible(self, record: RelationshipRecord, seen_from: int | None = None) -> bool:
        """The type may be traversed and both ends are visible (`seen_from`, an end the
        caller reached through this view, is known to be)."""
        privileges = self.privileges
        if not privileges.traverses_every_relationship and not (
            privileges.can_traverse_relationship(record.type)
        ):
            return False
        return (record.start == seen_from or self._visible_id(record.start)) and (
            record.end == seen_from or self._visible_id(record.end)
        )

    def _filtered_rel(self, record: RelationshipRecord) -> RelationshipRecord:
        privileges = self.privileges
        if privileges.reads_every_relationship_property or not record.properties:
            return record
        readable = {
            key: value
            for key, value in record.properties.items()
            if privileges.can_read_relationship_property(record.type, key)
        }
        if len(readable) == len(record.properties):
            return record
        return RelationshipRecord(record.id, record.type, record.start, record.end, readable)

    def relationship(self, rel_id: int) -> RelationshipRecord | None:
        record = self.base.relationship(rel_id)
        if record is None or not self._rel_visible(record):
            return None
        return self._filtered_rel(record)

    # -- scans and seeks ----------------------------------------------------------------------

    def node_ids(self) -> Iterator[int]:
        if self.privileges.traverses_every_node:
            yield from self.base.node_ids()
            return
        for node_id in self.base.node_ids():
            if self._visible_id(node_id):
                yield node_id

    def node_ids_by_label(self, label: str) -> Iterator[int]:
        if self.privileges.traverses_every_node:
            yield from self.base.node_ids_by_label(label)
            return
        for node_id in self.base.node_ids_by_label(label):
            if self._visible_id(node_id):
                yield node_id

    def has_index(self, label: str, key: str) -> bool:
        return self.base.has_index(label, key)

    def node_ids_by_property(self, label: str, key: str, value: Value) -> Iterator[int]:
        """The seek's nodes that are visible and whose `key` is readable: an unreadable
        property reads as null, which equals nothing."""
        privileges = self.privileges
        if privileges.reads_every_node_property:
            yield from self.base.node_ids_by_property(label, key, value)
            return
        for node_id in self.base.node_ids_by_property(label, key, value):
            # The filtered record lacks the key exactly when it cannot be read here.
            record = self.node(node_id)
            if record is not None and key in record.properties:
                yield node_id

    def relationship_ids(self) -> Iterator[int]:
        for rel_id in self.base.relationship_ids():
            if (
                self.privileges.traverses_every_node
                and self.privileges.traverses_every_relationship
            ):
                yield rel_id
                continue
            record = self.base.relationship(rel_id)
            if record is not None and self._rel_visible(record):
                yield rel_id

    def relationship_ids_by_type(self, type: str) -> Iterator[int]:
        privileges = self.privileges
        if not privileges.can_traverse_relationship(type):
            return
        if privileges.traverses_every_node:
            yield from self.base.relationship_ids_by_type(type)
            return
        for rel_id in self.base.relationship_ids_by_type(type):
            record = self.base.relationship(rel_id)
            if record is not None and self._rel_visible(record):
                yield rel_id

    def has_relationship_index(self, type: str, key: str) -> bool:
        return self.base.has_relationship_index(type, key)

    def relationship_ids_by_property(self, type: str, key: str, value: Value) -> Iterator[int]:
        """The seek's relationships that are visible and whose `key` is readable."""
        for rel_id in self.base.relationship_ids_by_property(type, key, value):
            record = self.relationship(rel_id)
            if record is not None and key in record.properties:
                yield rel_id

    def relationships(
        self, node_id: int, direction: Direction, types: Sequence[str] | None = None
    ) -> Iterator[RelationshipRecord]:
        if self._relationships_unfiltered:
            return self.base.relationships(node_id, direction, types)
        return self._filtered_relationships(node_id, direction, types)

    def relationship_ends(
        self, node_id: int, direction: Direction, types: Sequence[str] | None = None
    ) -> Iterator[RelationshipEnds]:
        """The visible relationships' ends: the same checks as ``relationships`` (type and
        other end; properties play no part in them), no relationship record read."""
        if self.privileges.traverses_every_node and self.privileges.traverses_every_relationship:
            return self.base.relationship_ends(node_id, direction, types)
        return self._filtered_ends(node_id, direction, types)

    def _filtered_ends(
        self, node_id: int, direction: Direction, types: Sequence[str] | None
    ) -> Iterator[RelationshipEnds]:
        visible_id = self._visible_id
        if not visible_id(node_id):
            return
        privileges = self.privileges
        every_type = privileges.traverses_every_relationship
        every_node = privileges.traverses_every_node
        for ends in self.base.relationship_ends(node_id, direction, types):
            if not every_type and not privileges.can_traverse_relationship(ends.type):
                continue
            if not every_node:
                other = ends.end if ends.start == node_id else ends.start
                if other != node_id and not visible_id(other):
                    continue
            yield ends

    def _filtered_relationships(
        self, node_id: int, direction: Direction, types: Sequence[str] | None
    ) -> Iterator[RelationshipRecord]:
        # The caller reached `node_id` through this view (or created it): only the other end
        # needs a check. A hidden `node_id` has no visible relationships at all. The hot loop
        # of every expansion, so the checks are spelled out rather than calling _rel_visible.
        visible_id = self._visible_id
        if not visible_id(node_id):
            return
        privileges = self.privileges
        every_type = privileges.traverses_every_relationship
        every_node = privileges.traverses_every_node
        every_property = privileges.reads_every_relationship_property
        for record in self.base.relationships(node_id, direction, types):
            if not every_type and not privileges.can_traverse_relationship(record.type):
                continue
            if not every_node:
                other = record.end if record.start == node_id else record.start
                if other != node_id and not visible_id(other):
                    continue
            yield record if every_property else self._filtered_rel(record)

    # -- counts and names ---------------------------------------------------------------------

    def count_nodes(self, label: str | None = None) -> int:
        if self.privileges.traverses_every_node:
            return self.base.count_nodes(label)
        key = ("node", label)
        count = self._counts.get(key)
        if count is None:
            ids = self.node_ids() if label is None else self.node_ids_by_label(label)
            count = sum(1 for _ in ids)
            self._counts[key] = count
        return count

    def count_relationships(self, type: str | None = None) -> int:
        privileges = self.privileges
        if privileges.traverses_every_node and privileges.traverses_every_relationship:
            return self.base.count_relationships(type)
        key = ("rel", type)
        count = self._counts.get(key)
        if count is None:
            count = 0
            for rel_id in self.base.relationship_ids():
                record = self.base.relationship(rel_id)
                if record is None or (type is not None and record.type != type):
                    continue
                if self._rel_visible(record):
                    count += 1
            self._counts[key] = count
        return count

    def labels(self) -> list[str]:
        """Labels of the visible nodes."""
        if self.privileges.traverses_every_node:
            return self.base.labels()
        return [
            label
            for label in self.base.labels()
            if next(iter(self.node_ids_by_label(label)), None) is not None
        ]

    def relationship_types(self) -> list[str]:
        """Types of the visible relationships."""
        found: set[str] = set()
        for rel_id in self.relationship_ids():
            record = self.base.relationship(rel_id)
            if record is not None:
                found.add(record.type)
        return sorted(found)

    def property_keys(self) -> list[str]:
        """Keys readable on some visible node or relationship."""
        privileges = self.privileges
        if privileges.reads_every_node_property and privileges.reads_every_relationship_property:
            return self.base.property_keys()
        found: set[str] = set()
        for node_id in self.node_ids():
            record = self.node(node_id)
            if record is not None:
                found.update(record.properties)
        for rel_id in self.relationship_ids():
            rel = self.relationship(rel_id)
            if rel is not None:
                found.update(rel.properties)
        return sorted(found)

    def indexes(self) -> list[IndexInfo]:
        return self.base.indexes()

    def constraints(self) -> list[ConstraintInfo]:
        return self.base.constraints()

    def next_ids(self) -> tuple[int, int]:
        return self.base.next_ids()


def forbidden(what: str) -> CypherError:
    return CypherError(f"{what} is not allowed", "Forbidden", kind="Forbidden")


class WriteGuard:
    """The write-side checks of a restricted transaction: each write the transaction state
    is about to record is allowed by `privileges` or fails with
    Neo.ClientError.Security.Forbidden before anything is recorded. New names (a label,
    relationship type or property key not yet in use) need name management too."""

    def __init__(self, base: GraphView, privileges: PrivilegeSet) -> None:
        self.base = base
        self.privileges = privileges
        self._names: dict[str, set[str]] | None = None

    def _check_names(self, kind: str, names: Iterable[str]) -> None:
        from cluster.security.privileges import Action

        if self._names is None:
            self._names = {
                "label": set(self.base.labels()),
                "type": set(self.base.relationship_types()),
                "key": set(self.base.property_keys()),
            }
        known = self._names[kind]
        action, what = {
            "label": (Action.CREATE_NEW_LABEL, "Creating a new label"),
            "type": (Action.CREATE_NEW_TYPE, "Creating a new relationship type"),
            "key": (Action.CREATE_NEW_PROPERTY_NAME, "Creating a new property name"),
        }[kind]
        for name in names:
            if name in known:
                continue
            if not self.privileges.can(action):
                raise forbidden(f"{what} ({name!r})")
            known.add(name)

    def create_node(self, labels: Iterable[str], keys: Iterable[str]) -> None:
        labels, keys = frozenset(labels), tuple(keys)
        if not self.privileges.can_create_node(labels):
            shown = ", ".join(sorted(labels)) or "no labels"
            raise forbidden(f"Creating a node with {shown}")
        for key in keys:
            if not self.privileges.can_set_node_property(labels, key):
                raise forbidden(f"Setting property {key!r} on a node")
        self._check_names("label", labels)
        self._check_names("key", keys)

    def create_relationship(self, rel_type: str, keys: Iterable[str]) -> None:
        keys = tuple(keys)
        if not self.privileges.can_create_relationship(rel_type):
            raise forbidden(f"Creating a relationship of type {rel_type!r}")
        for key in keys:
            if not self.privileges.can_set_relationship_property(rel_type, key):
                raise forbidden(f"Setting property {key!r} on a relationship")
        self._check_names("type", (rel_type,))
        self._check_names("key", keys)

    def set_node_property(self, labels: Iterable[str], key: str) -> None:
        if not self.privileges.can_set_node_property(labels, key):
            raise forbidden(f"Setting property {key!r} on a node")
        self._check_names("key", (key,))

    def set_relationship_property(self, rel_type: str, key: str) -> None:
        if not self.privileges.can_set_relationship_property(rel_type, key):
            raise forbidden(f"Setting property {key!r} on a relationship")
        self._check_names("key", (key,))

    def add_label(self, label: str) -> None:
        if not self.privileges.can_set_label(label):
            raise forbidden(f"Setting label {label!r}")
        self._check_names("label", (label,))

    def remove_label(self, label: str) -> None:
        if not self.privileges.can_remove_label(label):
            raise forbidden(f"Removing label {label!r}")

    def delete_node(self, labels: Iterable[str]) -> None:
        labels = frozenset(labels)
        if not self.privileges.can_delete_node(labels):
            shown = ", ".join(sorted(labels)) or "no labels"
            raise forbidden(f"Deleting a node with {shown}")

    def delete_relationship(self, rel_type: str) -> None:
        if not self.privileges.can_delete_relationship(rel_type):
            raise forbidden(f"Deleting a relationship of type {rel_type!r}")

    def schema(self, action: Action) -> None:
        if not self.privileges.can(action):
            raise forbidden(f"{action.value.capitalize()}")
