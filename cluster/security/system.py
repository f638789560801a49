"""The replicated security state: users, roles and the privileges of each role.

:class:`SecurityState` is what every replica holds identically. It changes only by
:meth:`SecurityState.apply` of a list of :class:`Command` (one Raft entry), a pure function
of the state, the commands and the entry's index: a command that breaks a rule (a user that
exists already, a role that does not) raises :class:`SecurityError` and the whole entry
changes nothing, on every replica alike. Commands carry password *hashes* only, made on the
leader before it proposes (``cluster.security.admin``): the log never holds a clear password.

Roles start as Neo4j 5's built-in ones (``PUBLIC``, ``reader``, ``editor``, ``publisher``,
``architect``, ``admin``) with the privileges of ``cluster.security.privileges``; those are
ordinary stored privileges afterwards (revocable, as in Neo4j). ``PUBLIC`` cannot be dropped,
granted or revoked: every user has it.

A user's ``credential_index`` is the index of the entry that last set their password or
status: a session token names it, so a password change, a suspension or a drop (a re-created
user gets a new index) revokes every token issued before.

Property-based rules (``FOR (n:L) WHERE n.p = v``) are stored as :class:`PropertyRule` beside
their privilege and handed to ``privileges.Privilege`` as its condition by
:meth:`privileges_for` (were a Privilege without conditions ever used, a conditional GRANT
would be left out and a conditional DENY applied everywhere: never more than the rule allows).

Encoding: canonical JSON (sorted keys, no spaces), for the Raft entry and for persistence.

Must never: read a clock or anything but the state and the command, or hold a clear password.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cluster.security.privileges import (
    BUILTIN_ROLES,
    DEFAULT_DATABASE,
    Action,
    Privilege,
    PrivilegeSet,
)

STATE_FORMAT: Final = 1
PUBLIC: Final = "PUBLIC"
ADMIN_ROLE: Final = "admin"
ACTIVE: Final = "ACTIVE"
SUSPENDED: Final = "SUSPENDED"

INVALID_ARGUMENTS: Final = "Neo.ClientError.General.InvalidArguments"
FORBIDDEN: Final = "Neo.ClientError.Security.Forbidden"
MAX_NAME_CHARS: Final = 128
MAX_USERS: Final = 100_000
MAX_ROLES: Final = 10_000
MAX_PRIVILEGES_PER_ROLE: Final = 10_000


class SecurityError(Exception):
    """A command refused by the state's rules; ``code`` is the Neo4j status code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class PropertyRule:
    """``FOR (n[:label]) WHERE n.property <op> value`` (``op``: =, <>, <, <=, >, >=, IN,
    NOT IN, IS NULL, IS NOT NULL; ``value`` a JSON scalar, or a list for IN)."""

    variable: str
    label: str | None
    property: str
    op: str
    value: Any = None

    def to_json(self) -> dict[str, Any]:
        return {
            "variable": self.variable,
            "label": self.label,
            "property": self.property,
            "op": self.op,
            "value": self.value,
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> PropertyRule:
        return PropertyRule(
            str(doc["variable"]),
            None if doc.get("label") is None else str(doc["label"]),
            str(doc["property"]),
            str(doc["op"]),
            doc.get("value"),
        )

    def __str__(self) -> str:
        label = f":{self.label}" if self.label else ""
        target = f"{self.variable}.{_quote_name(self.property)}"
        if self.op in ("IS NULL", "IS NOT NULL"):
            return f"FOR ({self.variable}{label}) WHERE {target} {self.op}"
        return f"FOR ({self.variable}{label}) WHERE {target} {self.op} {_literal(self.value)}"


@dataclass(frozen=True, slots=True)
class Rule:
    """One stored privilege of a role, with its property condition if it has one."""

    privilege: Privilege
    condition: PropertyRule | None = None

    def to_json(self) -> dict[str, Any]:
        p = self.privilege
        return {
            "grant": p.grant,
            "action": p.action.value,
            "segment": p.segment,
            "names": None if p.names is None else sorted(p.names),
            "properties": None if p.properties is None else sorted(p.properties),
            "graph": p.graph,
            "condition": None if self.condition is None else self.condition.to_json(),
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> Rule:
        privilege = Privilege.of(
            bool(doc["grant"]),
            Action(doc["action"]),
            str(doc["segment"]),
            doc.get("names"),
            doc.get("properties"),
            doc.get("graph"),
        )
        condition = doc.get("condition")
        return Rule(privilege, None if condition is None else PropertyRule.from_json(condition))

    def key(self) -> str:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))


@dataclass(frozen=True, slots=True)
class User:
    name: str
    password_hash: str
    status: str = ACTIVE
    change_required: bool = True
    roles: frozenset[str] = frozenset()
    credential_index: int = 0
    """Index of the entry that last set the password or the status (session tokens name it)."""

    @property
    def suspended(self) -> bool:
        return self.status == SUSPENDED

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "hash": self.password_hash,
            "status": self.status,
            "change_required": self.change_required,
            "roles": sorted(self.roles),
            "credential_index": self.credential_index,
        }

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> User:
        return User(
            str(doc["name"]),
            str(doc["hash"]),
            str(doc["status"]),
            bool(doc["change_required"]),
            frozenset(str(r) for r in doc["roles"]),
            int(doc["credential_index"]),
        )


@dataclass(frozen=True, slots=True)
class Command:
    """One deterministic change: ``op`` and its arguments (JSON values only)."""

    op: str
    args: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"op": self.op, "args": dict(self.args)}

    @staticmethod
    def from_json(doc: Mapping[str, Any]) -> Command:
        return Command(str(doc["op"]), dict(doc["args"]))


def encode_commands(commands: Iterable[Command]) -> bytes:
    return _canonical([c.to_json() for c in commands])


def decode_commands(data: bytes) -> list[Command]:
    doc = json.loads(data)
    if not isinstance(doc, list):
        raise ValueError("not a list of security commands")
    return [Command.from_json(item) for item in doc]


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _builtin_rules() -> dict[str, list[Rule]]:
    return {name: [Rule(p) for p in privileges] for name, privileges in BUILTIN_ROLES.items()}


def _check_name(kind: str, name: Any) -> str:
    if not isinstance(name, str) or not name or len(name) > MAX_NAME_CHARS:
        raise SecurityError(INVALID_ARGUMENTS, f"invalid {kind} name {name!r}")
    return name


class SecurityState:
    """Users and roles; change it only through :meth:`apply` (all or nothing per entry)."""

    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.roles: dict[str, list[Rule]] = _builtin_rules()

    # -- queries ------------------------------------------------------------------------------

    def user(self, name: str) -> User | None:
        return self.users.get(name)

    def rules_of(self, role: str) -> list[Rule]:
        return list(self.roles.get(role, ()))

    def privileges_for(self, user: str, database: str = DEFAULT_DATABASE) -> PrivilegeSet:
        """The resolved privileges of ``user`` on ``database``: the union over their roles
        (``PUBLIC`` included). An unknown or suspended user gets none."""
        record = self.users.get(user)
        if record is None or record.suspended:
            return PrivilegeSet((), database)
        return self.privileges_of_roles(record.roles, database)

    def privileges_of_roles(
        self, roles: Iterable[str], database: str = DEFAULT_DATABASE
    ) -> PrivilegeSet:
        privileges: list[Privilege] = []
        for role in sorted({PUBLIC, *roles}):
            for rule in self.roles.get(role, ()):
                privileges.extend(_effective(rule))
        return PrivilegeSet(privileges, database)

    def is_admin(self, user: str) -> bool:
        record = self.users.get(user)
        return record is not None and ADMIN_ROLE in record.roles

    # -- changes ------------------------------------------------------------------------------

    def apply(self, commands: Iterable[Command], index: int) -> None:
        """Apply one entry's commands, all or none: on a :class:`SecurityError` the state is
        as before. ``index`` is the entry's Raft index."""
        users = dict(self.users)
        roles = {name: list(rules) for name, rules in self.roles.items()}
        try:
            for command in commands:
                handler = _HANDLERS.get(command.op)
                if handler is None:
                    raise SecurityError(INVALID_ARGUMENTS, f"unknown command {command.op!r}")
                handler(self, dict(command.args), index)
        except (KeyError, TypeError, ValueError) as error:
            self.users, self.roles = users, roles
            raise SecurityError(INVALID_ARGUMENTS, f"malformed command: {error}") from None
        except SecurityError:
            self.users, self.roles = users, roles
            raise

    def copy(self) -> SecurityState:
        clone = SecurityState()
        clone.users = dict(self.users)
        clone.roles = {name: list(rules) for name, rules in self.roles.items()}
        return clone

    def _user(self, name: str) -> User:
        record = self.users.get(name)
        if record is None:
            raise SecurityError(INVALID_ARGUMENTS, f"User '{name}' does not exist.")
        return record

    def _role(self, name: str) -> list[Rule]:
        rules = self.roles.get(name)
        if rules is None:
            raise SecurityError(INVALID_ARGUMENTS, f"Role '{name}' does not exist.")
        return rules

    def _bootstrap(self, args: dict[str, Any], index: int) -> None:
        if self.users:
            return  # a cluster that has users keeps them: a repeated bootstrap does nothing
        name = _check_name("user", args["name"])
        self.users[name] = User(
            name, str(args["hash"]), ACTIVE, bool(args.get("change_required", False)),
            frozenset({ADMIN_ROLE}), index,
        )  # fmt: skip

    def _create_user(self, args: dict[str, Any], index: int) -> None:
        name = _check_name("user", args["name"])
        old = self.users.get(name)
        if old is not None and not args.get("replace"):
            raise SecurityError(
                "Neo.ClientError.General.InvalidArguments",
                f"Failed to create the specified user '{name}': User already exists.",
            )
        if old is None and len(self.users) >= MAX_USERS:
            raise SecurityError(INVALID_ARGUMENTS, f"at most {MAX_USERS} users")
        self.users[name] = User(
            name,
            str(args["hash"]),
            SUSPENDED if args.get("suspended") else ACTIVE,
            bool(args.get("change_required", True)),
            frozenset(),
            index,
        )

    def _alter_user(self, args: dict[str, Any], index: int) -> None:
        record = self._user(str(args["name"]))
        changes: dict[str, Any] = {}
        if args.get("hash") is not None:
            changes["password_hash"] = str(args["hash"])
        if args.get("change_required") is not None:
            changes["change_required"] = bool(args["change_required"])
        if args.get("suspended") is not None:
            status = SUSPENDED if args["suspended"] else ACTIVE
            if status != record.status:
                changes["status"] = status
        if "password_hash" in changes or "status" in changes:
            changes["credential_index"] = index
        self.users[record.name] = dataclasses.replace(record, **changes)

    def _set_own_password(self, args: dict[str, Any], index: int) -> None:
        record = self._user(str(args["name"]))
        self.users[record.name] = dataclasses.replace(
            record, password_hash=str(args["hash"]), change_required=False, credential_index=index
        )

    def _drop_user(self, args: dict[str, Any], index: int) -> None:
        name = str(args["name"])
        self._user(name)
        del self.users[name]

    def _create_role(self, args: dict[str, Any], index: int) -> None:
        name = _check_name("role", args["name"])
        if name in self.roles:
            raise SecurityError(
                INVALID_ARGUMENTS,
                f"Failed to create the specified role '{name}': Role already exists.",
            )
        if len(self.roles) >= MAX_ROLES:
            raise SecurityError(INVALID_ARGUMENTS, f"at most {MAX_ROLES} roles")
        source = args.get("copy_of")
        self.roles[name] = [] if source is None else list(self._role(str(source)))

    def _drop_role(self, args: dict[str, Any], index: int) -> None:
        name = str(args["name"])
        if name == PUBLIC:
            raise SecurityError(INVALID_ARGUMENTS, "The PUBLIC role cannot be dropped.")
        self._role(name)
        del self.roles[name]
        for user in list(self.users.values()):
            if name in user.roles:
                self.users[user.name] = dataclasses.replace(user, roles=user.roles - {name})

    def _grant_role(self, args: dict[str, Any], index: int) -> None:
        roles = [str(r) for r in args["roles"]]
        users = [str(u) for u in args["users"]]
        for role in roles:
            if role == PUBLIC:
                raise SecurityError(INVALID_ARGUMENTS, "The PUBLIC role is granted to every user.")
            self._role(role)
        for name in users:
            record = self._user(name)
            self.users[name] = dataclasses.replace(record, roles=record.roles | set(roles))

    def _revoke_role(self, args: dict[str, Any], index: int) -> None:
        roles = [str(r) for r in args["roles"]]
        users = [str(u) for u in args["users"]]
        for role in roles:
            if role == PUBLIC:
                raise SecurityError(INVALID_ARGUMENTS, "The PUBLIC role cannot be revoked.")
            self._role(role)
        for name in users:
            record = self._user(name)
            self.users[name] = dataclasses.replace(record, roles=record.roles - set(roles))

    def _grant_privilege(self, args: dict[str, Any], index: int) -> None:
        rules = self._role(str(args["role"]))
        rule = Rule.from_json(args["rule"])
        if rule.key() not in {r.key() for r in rules}:
            if len(rules) >= MAX_PRIVILEGES_PER_ROLE:
                raise SecurityError(INVALID_ARGUMENTS, "too many privileges on one role")
            rules.append(rule)

    def _revoke_privilege(self, args: dict[str, Any], index: int) -> None:
        role = str(args["role"])
        rules = self._role(role)
        key = Rule.from_json(args["rule"]).key()
        self.roles[role] = [r for r in rules if r.key() != key]

    # -- encoding -----------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT,
            "users": [self.users[name].to_json() for name in sorted(self.users)],
            "roles": {
                name: [rule.to_json() for rule in rules] for name, rules in self.roles.items()
            },
        }

    def encode(self) -> bytes:
        return _canonical(self.to_json())

    @staticmethod
    def decode(data: bytes) -> SecurityState:
        doc = json.loads(data)
        if not isinstance(doc, dict) or doc.get("format") != STATE_FORMAT:
            raise ValueError("not an encoded security state")
        state = SecurityState()
        state.users = {u["name"]: User.from_json(u) for u in doc["users"]}
        state.roles = {
            str(name): [Rule.from_json(r) for r in rules] for name, rules in doc["roles"].items()
        }
        return state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecurityState) and self.encode() == other.encode()

    __hash__ = None  # type: ignore[assignment]


_HANDLERS = {
    "bootstrap_admin": SecurityState._bootstrap,
    "create_user": SecurityState._create_user,
    "alter_user": SecurityState._alter_user,
    "set_own_password": SecurityState._set_own_password,
    "drop_user": SecurityState._drop_user,
    "create_role": SecurityState._create_role,
    "drop_role": SecurityState._drop_role,
    "grant_role": SecurityState._grant_role,
    "revoke_role": SecurityState._revoke_role,
    "grant_privilege": SecurityState._grant_privilege,
    "revoke_privilege": SecurityState._revoke_privilege,
}


def _effective(rule: Rule) -> list[Privilege]:
    """What a stored rule contributes to a PrivilegeSet (see the module docstring)."""
    if rule.condition is None:
        return [rule.privilege]
    if "condition" in {f.name for f in dataclasses.fields(Privilege)}:
        return [dataclasses.replace(rule.privilege, condition=rule.condition)]  # type: ignore[call-arg]
    if rule.privilege.grant:
        return []  # a conditional GRANT the engine cannot evaluate grants nothing
    return [rule.privilege]  # a conditional DENY denies everywhere until conditions exist


# -- display (SHOW PRIVILEGES) ---------------------------------------------------------------

_ACTION_NAMES: Final = {
    Action.TRAVERSE: "traverse",
    Action.READ: "read",
    Action.MATCH: "match",
    Action.WRITE: "write",
    Action.CREATE: "create_element",
    Action.DELETE: "delete_element",
    Action.SET_LABEL: "set_label",
    Action.REMOVE_LABEL: "remove_label",
    Action.SET_PROPERTY: "set_property",
    Action.MERGE: "merge",
    Action.ALL_GRAPH: "graph_actions",
    Action.ACCESS: "access",
    Action.CREATE_NEW_LABEL: "create_label",
    Action.CREATE_NEW_TYPE: "create_reltype",
    Action.CREATE_NEW_PROPERTY_NAME: "create_propertykey",
    Action.NAME_MANAGEMENT: "token",
    Action.SHOW_INDEX: "show_index",
    Action.CREATE_INDEX: "create_index",
    Action.DROP_INDEX: "drop_index",
    Action.INDEX_MANAGEMENT: "index",
    Action.SHOW_CONSTRAINT: "show_constraint",
    Action.CREATE_CONSTRAINT: "create_constraint",
    Action.DROP_CONSTRAINT: "drop_constraint",
    Action.CONSTRAINT_MANAGEMENT: "constraint",
    Action.TRANSACTION_MANAGEMENT: "transaction_management",
    Action.ALL_DATABASE: "database_actions",
    Action.USER_MANAGEMENT: "user_management",
    Action.ROLE_MANAGEMENT: "role_management",
    Action.PRIVILEGE_MANAGEMENT: "privilege_management",
    Action.IMPERSONATE: "impersonate",
    Action.EXECUTE: "execute",
    Action.ALL_DBMS: "dbms_actions",
}


def _quote_name(name: str) -> str:
    if name.replace("_", "a").isalnum() and not name[:1].isdigit():
        return name
    return "`" + name.replace("`", "``") + "`"


def _literal(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(item) for item in value) + "]"
    return repr(value)


def _names_text(names: frozenset[str] | None) -> list[str]:
    return ["*"] if names is None else sorted(names)


def privilege_rows(role: str, rule: Rule) -> list[dict[str, Any]]:
    """SHOW PRIVILEGES rows of one stored rule (Neo4j 5 columns; one row per segment)."""
    p = rule.privilege
    access = "GRANTED" if p.grant else "DENIED"
    action = _ACTION_NAMES[p.action]
    graph = "*" if p.graph is None else p.graph
    rows: list[dict[str, Any]] = []
    if p.segment in ("DATABASE", "DBMS"):
        segment = "database"
        resource = "database"
        if p.action is Action.IMPERSONATE and p.names is not None:
            segment = ",".join(f"USER({n})" for n in sorted(p.names))
        elif p.segment == "DBMS":
            graph = "*"
        rows.append(_row(access, action, resource, graph, segment, role))
        return rows
    if p.properties is None:
        resource = "all_properties()"
    else:
        resource = ",".join(f"property({name})" for name in sorted(p.properties))
    if p.action in (Action.SET_LABEL, Action.REMOVE_LABEL):
        resource = ",".join(f"label({name})" for name in _names_text(p.names))
    elif p.action in (
        Action.TRAVERSE,
        Action.CREATE,
        Action.DELETE,
        Action.WRITE,
        Action.ALL_GRAPH,
    ):
        resource = "graph"
    segments = ["NODE", "RELATIONSHIP"] if p.segment == "ELEMENTS" else [p.segment[:-1]]
    if p.segment == "RELATIONSHIPS":
        segments = ["RELATIONSHIP"]
    for kind in segments:
        if rule.condition is not None:
            text = str(rule.condition)
        elif p.action in (Action.SET_LABEL, Action.REMOVE_LABEL):
            text = "NODE(*)"
        else:
            text = ",".join(f"{kind}({name})" for name in _names_text(p.names))
        rows.append(_row(access, action, resource, graph, text, role))
    return rows


def _row(access: str, action: str, resource: str, graph: str, segment: str, role: str):
    return {
        "access": access,
        "action": action,
        "resource": resource,
        "graph": graph,
        "segment": segment,
        "role": role,
        "immutable": False,
    }


def privilege_command(role: str, rule: Rule) -> str:
    """The command that would create this rule (``SHOW PRIVILEGES AS COMMANDS``)."""
    p = rule.privilege
    verb = "GRANT" if p.grant else "DENY"
    preposition = "TO"
    role_text = _quote_name(role)
    if p.segment == "DBMS":
        what = p.action.value
        if p.action is Action.IMPERSONATE:
            names = "*" if p.names is None else ", ".join(_quote_name(n) for n in sorted(p.names))
            what = f"IMPERSONATE ({names})"
        return f"{verb} {what} ON DBMS {preposition} {role_text}"
    if p.segment == "DATABASE":
        target = "*" if p.graph is None else _quote_name(p.graph)
        return f"{verb} {p.action.value} ON DATABASE {target} {preposition} {role_text}"
    graph = "*" if p.graph is None else _quote_name(p.graph)
    props = ""
    if p.action in (Action.READ, Action.MATCH, Action.SET_PROPERTY, Action.MERGE):
        inner = (
            "*" if p.properties is None else ", ".join(_quote_name(n) for n in sorted(p.properties))
        )
        props = f" {{{inner}}}"
    action = p.action.value
    if p.action in (Action.SET_LABEL, Action.REMOVE_LABEL):
        labels = "*" if p.names is None else ", ".join(_quote_name(n) for n in sorted(p.names))
        return f"{verb} {action} {labels} ON GRAPH {graph} {preposition} {role_text}"
    if p.action in (Action.WRITE, Action.ALL_GRAPH):
        return f"{verb} {action} ON GRAPH {graph} {preposition} {role_text}"
    if rule.condition is not None:
        segment = str(rule.condition)
    else:
        names = "*" if p.names is None else ", ".join(_quote_name(n) for n in sorted(p.names))
        segment = f"{p.segment} {names}"
    return f"{verb} {action}{props} ON GRAPH {graph} {segment} {preposition} {role_text}"
