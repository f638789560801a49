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

* Property-based rules (``FOR (n:L) WHERE n.p <op> value``, a :class:`Condition`) narrow a
  read privilege (TRAVERSE, READ, MATCH) on nodes to those where the condition is true. A
  condition that evaluates to null (the property is absent, or of another type) is not
  true: such a GRANT does not grant and such a DENY does not deny.

The answers for a set of labels (or a type) are memoised in bounded caches when no
property-based rule could apply to them, so that the query engine's filtered graph view
costs a dictionary lookup per element.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any


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
    CREATE_INDEX = "CREATE INDEX"
    DROP_INDEX = "DROP INDEX"
    INDEX_MANAGEMENT = "INDEX MANAGEMENT"
    SHOW_CONSTRAINT = "SHOW CONSTRAINT"
    CREATE_CONSTRAINT = "CREATE CONSTRAINT"
    DROP_CONSTRAINT = "DROP CONSTRAINT"
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
    Action.CREATE_INDEX: frozenset(
        {Action.CREATE_INDEX, Action.INDEX_MANAGEMENT, Action.ALL_DATABASE}
    ),
    Action.DROP_INDEX: frozenset({Action.DROP_INDEX, Action.INDEX_MANAGEMENT, Action.ALL_DATABASE}),
    Action.INDEX_MANAGEMENT: frozenset({Action.INDEX_MANAGEMENT, Action.ALL_DATABASE}),
    Action.SHOW_CONSTRAINT: frozenset(
        {Action.SHOW_CONSTRAINT, Action.CONSTRAINT_MANAGEMENT, Action.ALL_DATABASE}
    ),
    Action.CREATE_CONSTRAINT: frozenset(
        {Action.CREATE_CONSTRAINT, Action.CONSTRAINT_MANAGEMENT, Action.ALL_DATABASE}
    ),
    Action.DROP_CONSTRAINT: frozenset(
        {Action.DROP_CONSTRAINT, Action.CONSTRAINT_MANAGEMENT, Action.ALL_DATABASE}
    ),
    Action.CONSTRAINT_MANAGEMENT: frozenset({Action.CONSTRAINT_MANAGEMENT, Action.ALL_DATABASE}),
    Action.TRANSACTION_MANAGEMENT: frozenset({Action.TRANSACTION_MANAGEMENT, Action.ALL_DATABASE}),
    Action.USER_MANAGEMENT: frozenset({Action.USER_MANAGEMENT, Action.ALL_DBMS}),
    Action.ROLE_MANAGEMENT: frozenset({Action.ROLE_MANAGEMENT, Action.ALL_DBMS}),
    Action.PRIVILEGE_MANAGEMENT: frozenset({Action.PRIVILEGE_MANAGEMENT, Action.ALL_DBMS}),
    Action.IMPERSONATE: frozenset({Action.IMPERSONATE, Action.ALL_DBMS}),
    Action.EXECUTE: frozenset({Action.EXECUTE, Action.ALL_DBMS}),
}


_READ_ACTIONS = {Action.TRAVERSE, Action.READ, Action.MATCH}

CONDITION_OPERATORS = ("=", "<>", "<", "<=", ">", ">=", "IS NULL", "IS NOT NULL", "IN", "NOT IN")
_UNARY_OPERATORS = ("IS NULL", "IS NOT NULL")

# Memoised answers per label set / type / (labels, property); cleared when full.
MAX_CACHED_ANSWERS = 4_096


def _comparable(a: Any, b: Any) -> bool:
    numeric = (int, float)
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool)
    if isinstance(a, numeric) and isinstance(b, numeric):
        return True
    return type(a) is type(b)


def _equal(a: Any, b: Any) -> bool | None:
    """Cypher equality of property values: null when either is null, false across types."""
    if a is None or b is None:
        return None
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return False
        results = [_equal(x, y) for x, y in zip(a, b, strict=True)]
        if False in results:
            return False
        return None if None in results else True
    if not _comparable(a, b):
        return False
    return bool(a == b)


@dataclass(frozen=True, slots=True)
class Condition:
    """The ``WHERE n.property <operator> value`` of a property-based rule. ``value`` is a
    property value (for IN / NOT IN a list of them); IS [NOT] NULL take none."""

    property: str
    operator: str
    value: Any = None

    def __post_init__(self) -> None:
        if self.operator not in CONDITION_OPERATORS:
            raise ValueError(f"unsupported operator {self.operator!r} in a property-based rule")
        if self.operator in ("IN", "NOT IN") and not isinstance(self.value, (list, tuple)):
            raise ValueError(f"{self.operator} needs a list")
        if isinstance(self.value, list):
            object.__setattr__(self, "value", tuple(self.value))

    @classmethod
    def like(cls, rule: Any) -> Condition:
        """A condition from any record with ``property``, ``operator`` (or ``op``) and
        ``value`` attributes, such as the system database's stored ``PropertyRule``."""
        operator = getattr(rule, "operator", None) or getattr(rule, "op", None)
        if operator is None or not hasattr(rule, "property"):
            raise ValueError(f"not a property condition: {rule!r}")
        return cls(rule.property, str(operator).upper(), getattr(rule, "value", None))

    def evaluate(self, properties: Mapping[str, Any]) -> bool | None:
        """Cypher's ternary result over an element's properties (None: null)."""
        actual = properties.get(self.property)
        operator = self.operator
        if operator == "IS NULL":
            return actual is None
        if operator == "IS NOT NULL":
            return actual is not None
        wanted = list(self.value) if isinstance(self.value, tuple) else self.value
        if actual is None or wanted is None:
            return None
        if operator in ("IN", "NOT IN"):
            results = [_equal(actual, item) for item in wanted]
            found: bool | None = True if True in results else (None if None in results else False)
            if operator == "IN" or found is None:
                return found
            return not found
        if operator in ("=", "<>"):
            equal = _equal(actual, wanted)
            if equal is None:
                return None
            return equal if operator == "=" else not equal
        if not _comparable(actual, wanted) or isinstance(actual, (list, bool)):
            return None
        try:
            if operator == "<":
                return bool(actual < wanted)
            if operator == "<=":
                return bool(actual <= wanted)
            if operator == ">":
                return bool(actual > wanted)
            return bool(actual >= wanted)
        except TypeError:
            return None

    def __str__(self) -> str:
        if self.operator in _UNARY_OPERATORS:
            return f"n.{self.property} {self.operator}"
        return f"n.{self.property} {self.operator} {self.value!r}"


def _names(values: Iterable[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(values)


@dataclass(frozen=True, slots=True)
class Privilege:
    """One GRANT (``grant=True``) or DENY. ``None`` stands for ``*`` in ``graph`` (every graph
    or database), ``names`` (every label / type, or for SET/REMOVE LABEL every label, or for
    IMPERSONATE every user) and ``properties`` (every property). ``condition`` makes a
    read privilege on NODES a property-based rule (``FOR (n:names) WHERE condition``)."""

    grant: bool
    action: Action
    segment: str = ELEMENTS
    names: frozenset[str] | None = None
    properties: frozenset[str] | None = None
    graph: str | None = None
    condition: Condition | None = None

    def __post_init__(self) -> None:
        if self.action is Action.MERGE and not self.grant:
            raise ValueError("MERGE can only be granted (DENY MERGE is not supported)")
        if self.condition is not None and not isinstance(self.condition, Condition):
            object.__setattr__(self, "condition", Condition.like(self.condition))
        if self.condition is not None and (
            self.action not in _READ_ACTIONS or self.segment != NODES
        ):
            raise ValueError("property-based rules apply to TRAVERSE, READ and MATCH on NODES only")
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
        condition: Condition | None = None,
    ) -> Privilege:
        return cls(grant, action, segment, _names(names), _names(properties), graph, condition)


def grant(
    action: Action,
    segment: str = ELEMENTS,
    names=None,
    properties=None,
    graph=None,
    condition: Condition | None = None,
):
    """``GRANT action {properties} ON GRAPH graph segment names [FOR ... WHERE condition]``."""
    return Privilege.of(True, action, segment, names, properties, graph, condition)


def deny(
    action: Action,
    segment: str = ELEMENTS,
    names=None,
    properties=None,
    graph=None,
    condition: Condition | None = None,
):
    """``DENY action {properties} ON GRAPH graph segment names [FOR ... WHERE condition]``."""
    return Privilege.of(False, action, segment, names, properties, graph, condition)


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
    # Database names are case-insensitive (Neo4j normalises them to lower case): a DENY on
    # GRAPH Neo4j must not miss the graph neo4j.
    return privilege.graph is None or privilege.graph.lower() == graph.lower()


class PrivilegeSet:
    """The union of some roles' privileges, for one graph, answering capability questions.

    ``properties`` (an element's property map) is what property-based rules are evaluated
    over; omitted, every rule's property reads as null."""

    def __init__(self, privileges: Iterable[Privilege], graph: str = DEFAULT_DATABASE) -> None:
        self.graph = graph
        self._privileges = tuple(p for p in privileges if _applies_to_graph(p, graph))
        self._conditional = tuple(p for p in self._privileges if p.condition is not None)
        self._cache: dict[tuple[Any, ...], bool] = {}
        self.traverses_every_node = self._unconditionally_all(Action.TRAVERSE, NODES)
        """Every node may be traversed, whatever its labels and properties."""
        self.reads_every_node_property = self.traverses_every_node and (
            self._unconditionally_all(Action.READ, NODES)
        )
        self.traversal_denied_labels = self._traversal_denied_labels()
        """When not None: a node may be traversed exactly when it carries none of these
        labels (an unconditional grant on every node, only label denies)."""
        self.traverses_every_relationship = self._unconditionally_all(
            Action.TRAVERSE, RELATIONSHIPS
        )
        self.reads_every_relationship_property = self.traverses_every_relationship and (
            self._unconditionally_all(Action.READ, RELATIONSHIPS)
        )
        self.unrestricted = self._unrestricted()
        """Nothing is denied and every graph and schema capability is granted on every
        element: the engine may run unfiltered (an admin's statements pay nothing)."""

    def _unrestricted(self) -> bool:
        if any(not p.grant for p in self._privileges):
            return False
        if not (self.reads_every_node_property and self.reads_every_relationship_property):
            return False
        writes = (
            Action.CREATE,
            Action.DELETE,
            Action.SET_LABEL,
            Action.REMOVE_LABEL,
            Action.SET_PROPERTY,
        )
        for action in writes:
            for segment in (NODES, RELATIONSHIPS):
                if segment == RELATIONSHIPS and action in (Action.SET_LABEL, Action.REMOVE_LABEL):
                    continue
                if not self._unconditionally_all(action, segment):
                    return False
        schema = (
            Action.CREATE_NEW_LABEL,
            Action.CREATE_NEW_TYPE,
            Action.CREATE_NEW_PROPERTY_NAME,
            Action.SHOW_INDEX,
            Action.CREATE_INDEX,
            Action.DROP_INDEX,
            Action.SHOW_CONSTRAINT,
            Action.CREATE_CONSTRAINT,
            Action.DROP_CONSTRAINT,
        )
        return all(self.can(action) for action in schema)

    def _unconditionally_all(self, capability: Action, segment: str) -> bool:
        """A grant of ``capability`` on every element of ``segment`` and every property, and
        no deny of it at all."""
        granted = any(
            p.names is None and p.properties is None and p.condition is None
            for p in self._matching(capability, True, segment, None)
        )
        return granted and not any(self._matching(capability, False, segment, None))

    def _traversal_denied_labels(self) -> frozenset[str] | None:
        granted = any(
            p.names is None and p.condition is None
            for p in self._matching(Action.TRAVERSE, True, NODES, None)
        )
        denied: set[str] = set()
        for privilege in self._matching(Action.TRAVERSE, False, NODES, None):
            if privilege.names is None or privilege.condition is not None:
                return None
            denied |= privilege.names
        return frozenset(denied) if granted else None

    def _memo(self, key: tuple[Any, ...], compute) -> bool:
        found = self._cache.get(key)
        if found is None:
            found = compute()
            if len(self._cache) >= MAX_CACHED_ANSWERS:
                self._cache.clear()
            self._cache[key] = found
        return found

    def _has_condition_for(self, labels: frozenset[str]) -> bool:
        return any(p.names is None or p.names & labels for p in self._conditional)

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

    def _any_applies(
        self, capability: Action, grant_: bool, segment: str, names, prop=None, properties=None
    ):
        """A privilege applies to an element carrying any of ``names`` (labels or a type) and,
        for a property-based rule, whose properties make its condition true."""
        for privilege in self._matching(capability, grant_, segment, prop):
            if privilege.names is None or privilege.names & names:
                condition = privilege.condition
                if condition is None or condition.evaluate(properties or {}) is True:
                    return True
        return False

    def _allowed_any(self, capability: Action, segment: str, names, prop=None, properties=None):
        names = frozenset(names)
        return self._any_applies(capability, True, segment, names, prop, properties) and not (
            self._any_applies(capability, False, segment, names, prop, properties)
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

    def can_traverse_node(
        self, labels: Iterable[str], properties: Mapping[str, Any] | None = None
    ) -> bool:
        if self.traverses_every_node:
            return True
        labels = frozenset(labels)
        if self._conditional and self._has_condition_for(labels):
            return self._allowed_any(Action.TRAVERSE, NODES, labels, None, properties)
        return self._memo(
            ("traverse", labels), lambda: self._allowed_any(Action.TRAVERSE, NODES, labels)
        )

    def can_read_node_property(
        self, labels: Iterable[str], prop: str, properties: Mapping[str, Any] | None = None
    ) -> bool:
        if self.reads_every_node_property:
            return True
        labels = frozenset(labels)
        if self._conditional and self._has_condition_for(labels):
            return self.can_traverse_node(labels, properties) and self._allowed_any(
                Action.READ, NODES, labels, prop, properties
            )
        return self._memo(
            ("read", labels, prop),
            lambda: (
                self.can_traverse_node(labels)
                and self._allowed_any(Action.READ, NODES, labels, prop)
            ),
        )

    def can_traverse_relationship(
        self,
        rel_type: str,
        start_labels: Iterable[str] | None = None,
        end_labels: Iterable[str] | None = None,
    ) -> bool:
        """The type may be traversed, and so may both end nodes (when given)."""
        if not self.traverses_every_relationship and not self._memo(
            ("traverse-type", rel_type),
            lambda: self._allowed_any(Action.TRAVERSE, RELATIONSHIPS, (rel_type,)),
        ):
            return False
        return all(
            labels is None or self.can_traverse_node(labels)
            for labels in (start_labels, end_labels)
        )

    def can_read_relationship_property(self, rel_type: str, prop: str) -> bool:
        if self.reads_every_relationship_property:
            return True
        return self._memo(
            ("read-type", rel_type, prop),
            lambda: (
                self.can_traverse_relationship(rel_type)
                and self._allowed_any(Action.READ, RELATIONSHIPS, (rel_type,), prop)
            ),
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

    def can_set_relationship_property(self, rel_type: str, prop: str) -> bool:
        return self._allowed_any(Action.SET_PROPERTY, RELATIONSHIPS, (rel_type,), prop)

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
