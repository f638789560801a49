"""Neo4j's privilege resolution as pure functions.

A :class:`Privilege` is one ``GRANT`` or ``DENY`` of an action, on a graph (or every graph),
for a segment: ``NODES labels``, ``RELATIONSHIPS types`` or ``ELEMENTS`` (both), with an
optional property set (``READ {a, b}``); database and DBMS privileges have no segment.
:func:`resolve` unions the privileges of a user's roles (``PUBLIC`` always included) into a
:class:`PrivilegeSet` that answers the questions the query engine asks.

The rules, as Neo4j documents them:

* A capability needs a GRANT that applies and no DENY that applies: DENY beats GRANT, over
  all roles alike.
* ``MATCH {props}`` = ``TRAVERSE`` + ``READ {props}``; ``DENY MATCH {props}`` denies only the
  reads, ``DENY MATCH {*}`` also the traversal. ``MERGE {props}`` = ``MATCH`` + ``CREATE`` +
  ``SET PROPERTY`` and can only be granted. ``WRITE`` = ``CREATE``, ``DELETE``,
  ``SET LABEL *``, ``REMOVE LABEL *``, ``SET PROPERTY {*}`` on every element.
  ``ALL GRAPH PRIVILEGES`` = all of the above.
* A privilege on ``NODES A, B`` applies to a node carrying A or B; on ``NODES *`` to every
  node, unlabelled ones included (the only way to see those). So a node with one denied
  label is hidden however many granted labels it has.
* A relationship is visible when its type may be traversed and both its end nodes are.
* Properties of an element that cannot be traversed cannot be read.
* Creating or deleting a node needs the privilege for every one of its labels (``*`` for a
  node without labels).

Property-based rules (``FOR (n:L) WHERE n.p = v``) are not modelled here yet.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    # Graph privileges.
    TRAVERSE = "TRAVERSE"
    READ = "READ"
    MATCH = "MATCH"
    WRITE = "WRITE"
    CREATE = "CREATE"
    DELETE = "DELETE"
    SET_LABEL = "SET LABEL"
    REMOVE_LABEL = "REMOVE LABEL"
    SET_PROPERTY = "SET PROPERTY"
    MERGE = "MERGE"
    ALL_GRAPH = "ALL GRAPH PRIVILEGES"
    # Database privileges.
    ACCESS = "ACCESS"
    CREATE_NEW_LABEL = "CREATE NEW LABEL"
    CREATE_NEW_TYPE = "CREATE NEW RELATIONSHIP TYPE"
    CREATE_NEW_PROPERTY_NAME = "CREATE NEW PROPERTY NAME"
    NAME_MANAGEMENT = "NAME MANAGEMENT"
    SHOW_INDEX = "SHOW INDEX"
    INDEX_MANAGEMENT = "INDEX MANAGEMENT"
    SHOW_CONSTRAINT = "SHOW CONSTRAINT"
    CONSTRAINT_MANAGEMENT = "CONSTRAINT MANAGEMENT"
    TRANSACTION_MANAGEMENT = "TRANSACTION MANAGEMENT"
    ALL_DATABASE = "ALL DATABASE PRIVILEGES"
    # DBMS privileges.
    USER_MANAGEMENT = "USER MANAGEMENT"
    ROLE_MANAGEMENT = "ROLE MANAGEMENT"
    PRIVILEGE_MANAGEMENT = "PRIVILEGE MANAGEMENT"
    IMPERSONATE = "IMPERSONATE"
    EXECUTE = "EXECUTE"
    ALL_DBMS = "ALL DBMS PRIVILEGES"


NODES = "NODES"
RELATIONSHIPS = "RELATIONSHIPS"
ELEMENTS = "ELEMENTS"
DATABASE = "DATABASE"
DBMS = "DBMS"
DEFAULT_DATABASE = "neo4j"

_GRAPH_ACTIONS = {
    Action.TRAVERSE,
    Action.READ,
    Action.MATCH,
    Action.WRITE,
    Action.CREATE,
    Action.DELETE,
    Action.SET_LABEL,
    Action.REMOVE_LABEL,
    Action.SET_PROPERTY,
    Action.MERGE,
    Action.ALL_GRAPH,
}
_DBMS_ACTIONS = {
    Action.USER_MANAGEMENT,
    Action.ROLE_MANAGEMENT,
    Action.PRIVILEGE_MANAGEMENT,
    Action.IMPERSONATE,
    Action.EXECUTE,
    Action.ALL_DBMS,
}

# A basic capability, and the granted actions that include it.
_COVERED_BY: dict[Action, frozenset[Action]] = {
    Action.TRAVERSE: frozenset({Action.TRAVERSE, Action.MATCH, Action.MERGE, Action.ALL_GRAPH}),
    Action.READ: frozenset({Action.READ, Action.MATCH, Action.MERGE, Action.ALL_GRAPH}),
    Action.CREATE: frozenset({Action.CREATE, Action.WRITE, Action.MERGE, Action.ALL_GRAPH}),
    Action.DELETE: frozenset({Action.DELETE, Action.WRITE, Action.ALL_GRAPH}),
    Action.SET_LABEL: frozenset({Action.SET_LABEL, Action.WRITE, Action.ALL_GRAPH}),
    Action.REMOVE_LABEL: frozenset({Action.REMOVE_LABEL, Action.WRITE, Action.ALL_GRAPH}),
    Action.SET_PROPERTY: frozenset(
        {Action.SET_PROPERTY, Action.WRITE, Action.MERGE, Action.ALL_GRAPH}
    ),
    Action.ACCESS: frozenset({Action.ACCESS, Action.ALL_DATABASE}),
    Action.CREATE_NEW_LABEL: frozenset(
        {Action.CREATE_NEW_LABEL, Action.NAME_MANAGEMENT, Action.ALL_DATABASE}
    ),
    Action.CREATE_NEW_TYPE: frozenset(
        {Action.CREATE_NEW_TYPE, Action.NAME_MANAGEMENT, Action.ALL_DATABASE}
    ),
    Action.CREATE_NEW_PROPERTY_NAME: frozenset(
        {Action.CREATE_NEW_PROPERTY_NAME, Action.NAME_MANAGEMENT, Action.ALL_DATABASE}
    ),
    Action.SHOW_INDEX: frozenset({Action.SHOW_INDEX, Action.INDEX_MANAGEMENT, Action.ALL_DATABASE}),
    Action.INDEX_MANAGEMENT: frozenset({Action.INDEX_MANAGEMENT, Action.ALL_DATABASE}),
    Action.SHOW_CONSTRAINT: frozenset(
        {Action.SHOW_CONSTRAINT, Action.CONSTRAINT_MANAGEMENT, Action.ALL_DATABASE}
    ),
    Action.CONSTRAINT_MANAGEMENT: frozenset({Action.CONSTRAINT_MANAGEMENT, Action.ALL_DATABASE}),
    Action.TRANSACTION_MANAGEMENT: frozenset({Action.TRANSACTION_MANAGEMENT, Action.ALL_DATABASE}),
    Action.USER_MANAGEMENT: frozenset({Action.USER_MANAGEMENT, Action.ALL_DBMS}),
    Action.ROLE_MANAGEMENT: frozenset({Action.ROLE_MANAGEMENT, Action.ALL_DBMS}),
    Action.PRIVILEGE_MANAGEMENT: frozenset({Action.PRIVILEGE_MANAGEMENT, Action.ALL_DBMS}),
    Action.IMPERSONATE: frozenset({Action.IMPERSONATE, Action.ALL_DBMS}),
    Action.EXECUTE: frozenset({Action.EXECUTE, Action.ALL_DBMS}),
}


def _names(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


@dataclass(frozen=True, slots=True)
class Privilege:
    """One GRANT (``grant=True``) or DENY. ``None`` stands for ``*`` in ``graph`` (every graph
    or database), ``names`` (every label / type, or for SET/REMOVE LABEL every label, or for
    IMPERSONATE every user) and ``properties`` (every property)."""

    grant: bool
    action: Action
    segment: str = ELEMENTS
    names: frozenset[str] | None = None
    properties: frozenset[str] | None = None
    graph: str | None = None

    def __post_init__(self) -> None:
        if self.action is Action.MERGE and not self.grant:
            raise ValueError("MERGE can only be granted (DENY MERGE is not supported)")
        if self.action in _GRAPH_ACTIONS:
            if self.segment not in (NODES, RELATIONSHIPS, ELEMENTS):
                raise ValueError(f"{self.action} applies to NODES, RELATIONSHIPS or ELEMENTS")
        elif self.action in _DBMS_ACTIONS:
            object.__setattr__(self, "segment", DBMS)
        else:
            object.__setattr__(self, "segment", DATABASE)

    @classmethod
    def of(
        cls,
        grant: bool,
        action: Action,
        segment: str = ELEMENTS,
        names: Iterable[str] | None = None,
        properties: Iterable[str] | None = None,
        graph: str | None = None,
    ) -> Privilege:
        return cls(grant, action, segment, _names(names), _names(properties), graph)


def grant(action: Action, segment: str = ELEMENTS, names=None, properties=None, graph=None):
    """``GRANT action {properties} ON GRAPH graph segment names``."""
    return Privilege.of(True, action, segment, names, properties, graph)


def deny(action: Action, segment: str = ELEMENTS, names=None, properties=None, graph=None):
    """``DENY action {properties} ON GRAPH graph segment names``."""
    return Privilege.of(False, action, segment, names, properties, graph)


# Neo4j 5's built-in roles. PUBLIC: ACCESS to the default database, EXECUTE procedures and
# functions. Each next role adds to the one before.
_READER = (
    grant(Action.ACCESS),
    grant(Action.MATCH, NODES),
    grant(Action.MATCH, RELATIONSHIPS),
    grant(Action.SHOW_INDEX),
    grant(Action.SHOW_CONSTRAINT),
)
_EDITOR = (*_READER, grant(Action.WRITE))
_PUBLISHER = (*_EDITOR, grant(Action.NAME_MANAGEMENT))
_ARCHITECT = (*_PUBLISHER, grant(Action.INDEX_MANAGEMENT), grant(Action.CONSTRAINT_MANAGEMENT))
BUILTIN_ROLES: Mapping[str, tuple[Privilege, ...]] = {
    "PUBLIC": (grant(Action.ACCESS, graph=DEFAULT_DATABASE), grant(Action.EXECUTE)),
    "reader": _READER,
    "editor": _EDITOR,
    "publisher": _PUBLISHER,
    "architect": _ARCHITECT,
    "admin": (
        *_ARCHITECT,
        grant(Action.ALL_DATABASE),
        grant(Action.ALL_GRAPH),
        grant(Action.ALL_DBMS),
    ),
}


def _applies_to_graph(privilege: Privilege, graph: str) -> bool:
    return privilege.graph is None or privilege.graph == graph


class PrivilegeSet:
    """The union of some roles' privileges, for one graph, answering capability questions."""

    def __init__(self, privileges: Iterable[Privilege], graph: str = DEFAULT_DATABASE) -> None:
        self.graph = graph
        self._privileges = tuple(p for p in privileges if _applies_to_graph(p, graph))

    def _matching(self, capability: Action, grant_: bool, segment: str, property_: str | None):
        for privilege in self._privileges:
            if privilege.grant != grant_ or privilege.action not in _COVERED_BY[capability]:
                continue
            if privilege.segment not in (segment, ELEMENTS) and segment not in (DATABASE, DBMS):
                continue
            if (
                not grant_
                and privilege.action is Action.MATCH
                and capability is Action.TRAVERSE
                and privilege.properties is not None
            ):
                continue  # DENY MATCH {props} denies only the reads
            if (
                property_ is not None
                and privilege.properties is not None
                and property_ not in privilege.properties
            ):
                continue
            yield privilege

    def _any_applies(self, capability: Action, grant_: bool, segment: str, names, prop=None):
        """A privilege applies to an element carrying any of ``names`` (labels or a type)."""
        for privilege in self._matching(capability, grant_, segment, prop):
            if privilege.names is None or privilege.names & names:
                return True
        return False

    def _allowed_any(self, capability: Action, segment: str, names, prop=None) -> bool:
        names = frozenset(names)
        return self._any_applies(capability, True, segment, names, prop) and not (
            self._any_applies(capability, False, segment, names, prop)
        )

    def _allowed_each(self, capability: Action, segment: str, names, prop=None) -> bool:
        """Every one of ``names`` needs a grant (``*`` when there are none); none denied."""
        names = frozenset(names)
        if self._any_applies(capability, False, segment, names, prop):
            return False
        grants = list(self._matching(capability, True, segment, prop))
        if any(p.names is None for p in grants):
            return True
        return bool(names) and all(any(name in p.names for p in grants) for name in names)

    # Reads.

    def can_traverse_node(self, labels: Iterable[str]) -> bool:
        return self._allowed_any(Action.TRAVERSE, NODES, labels)

    def can_read_node_property(self, labels: Iterable[str], prop: str) -> bool:
        labels = frozenset(labels)
        return self.can_traverse_node(labels) and self._allowed_any(
            Action.READ, NODES, labels, prop
        )

    def can_traverse_relationship(
        self,
        rel_type: str,
        start_labels: Iterable[str] | None = None,
        end_labels: Iterable[str] | None = None,
    ) -> bool:
        """The type may be traversed, and so may both end nodes (when given)."""
        if not self._allowed_any(Action.TRAVERSE, RELATIONSHIPS, (rel_type,)):
            return False
        return all(
            labels is None or self.can_traverse_node(labels)
            for labels in (start_labels, end_labels)
        )

    def can_read_relationship_property(self, rel_type: str, prop: str) -> bool:
        return self.can_traverse_relationship(rel_type) and self._allowed_any(
            Action.READ, RELATIONSHIPS, (rel_type,), prop
        )

    # Writes.

    def can_create_node(self, labels: Iterable[str], properties: Iterable[str] = ()) -> bool:
        labels = frozenset(labels)
        return self._allowed_each(Action.CREATE, NODES, labels) and all(
            self.can_set_node_property(labels, prop) for prop in properties
        )

    def can_delete_node(self, labels: Iterable[str]) -> bool:
        return self._allowed_each(Action.DELETE, NODES, labels)

    def can_create_relationship(self, rel_type: str, properties: Iterable[str] = ()) -> bool:
        return self._allowed_each(Action.CREATE, RELATIONSHIPS, (rel_type,)) and all(
            self._allowed_any(Action.SET_PROPERTY, RELATIONSHIPS, (rel_type,), prop)
            for prop in properties
        )

    def can_delete_relationship(self, rel_type: str) -> bool:
        return self._allowed_each(Action.DELETE, RELATIONSHIPS, (rel_type,))

    def can_set_label(self, label: str) -> bool:
        return self._allowed_each(Action.SET_LABEL, NODES, (label,))

    def can_remove_label(self, label: str) -> bool:
        return self._allowed_each(Action.REMOVE_LABEL, NODES, (label,))

    def can_set_node_property(self, labels: Iterable[str], prop: str) -> bool:
        return self._allowed_any(Action.SET_PROPERTY, NODES, labels, prop)

    def can_merge_node(self, labels: Iterable[str], properties: Iterable[str] = ()) -> bool:
        labels = frozenset(labels)
        return (
            self.can_traverse_node(labels)
            and all(self.can_read_node_property(labels, p) for p in properties)
            and self.can_create_node(labels, properties)
        )

    # Database and DBMS.

    def can(self, action: Action, name: str | None = None) -> bool:
        """A database privilege on this graph (ACCESS, CREATE NEW LABEL, INDEX MANAGEMENT,
        ...) or a DBMS one (USER MANAGEMENT, IMPERSONATE ``name``, ...)."""
        if action in _GRAPH_ACTIONS:
            raise ValueError(f"{action} is a graph privilege: ask can_traverse_node etc.")
        segment = DBMS if action in _DBMS_ACTIONS else DATABASE
        names = frozenset(() if name is None else (name,))
        if self._any_applies(action, False, segment, names):
            return False
        return any(
            p.names is None or p.names & names for p in self._matching(action, True, segment, None)
        )


def resolve(
    roles: Iterable[str],
    role_privileges: Mapping[str, Iterable[Privilege]] | None = None,
    graph: str = DEFAULT_DATABASE,
) -> PrivilegeSet:
    """The privileges of a user with ``roles`` (``PUBLIC`` implied) on ``graph``: the union of
    the built-in roles' grants and ``role_privileges`` (custom roles, and privileges added to
    built-in ones). An unknown role contributes nothing."""
    table: dict[str, list[Privilege]] = {name: list(p) for name, p in BUILTIN_ROLES.items()}
    for name, privileges in (role_privileges or {}).items():
        table.setdefault(name, []).extend(privileges)
    privileges: list[Privilege] = []
    for role in {"PUBLIC", *roles}:
        privileges.extend(table.get(role, ()))
    return PrivilegeSet(privileges, graph)
