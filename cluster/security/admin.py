"""The ``system`` database: Neo4j's administration commands over :class:`SecurityState`.

:func:`execute_admin` parses one command (a hand-written tokenizer and recursive descent:
the language is small and closed), checks the caller (a CHANGE REQUIRED user may only change
their own password, ``Neo.ClientError.Security.CredentialsExpired``; the DBMS privilege the
command needs, ``Neo.ClientError.Security.Forbidden``) and the rules (minimum password length,
nobody suspends or drops themselves, IF [NOT] EXISTS), and returns either result rows (SHOW
commands, with Neo4j 5's column names) or the :class:`Command` list to replicate. Passwords
are hashed here, on the leader, before anything is proposed: commands carry hashes only.
A SHOW command's ``YIELD``/``WHERE``/``RETURN`` tail is Cypher, run by the query engine over
the command's rows (``_filter``).

Hashing and verifying are slow (Argon2id): call this off the event loop.

Must never: change the state (the caller proposes the commands; replicas apply them), or put
a clear password into a command, a row or an error message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from cluster.security import passwords
from cluster.security.privileges import (
    DEFAULT_DATABASE,
    ELEMENTS,
    NODES,
    RELATIONSHIPS,
    Action,
    Privilege,
)
from cluster.security.system import (
    ADMIN_ROLE,
    FORBIDDEN,
    INVALID_ARGUMENTS,
    PUBLIC,
    Command,
    PropertyRule,
    Rule,
    SecurityError,
    SecurityState,
    privilege_command,
    privilege_rows,
)
from cypher.engine import Engine
from cypher.errors import CypherError
from store.memory import MemoryGraph

SYNTAX_ERROR: Final = "Neo.ClientError.Statement.SyntaxError"
CREDENTIALS_EXPIRED: Final = "Neo.ClientError.Security.CredentialsExpired"
NOT_SYSTEM_COMMAND: Final = "Neo.ClientError.Statement.NotSystemDatabaseCommand"
SYSTEM_DATABASE: Final = "system"
DATABASE_NOT_FOUND: Final = "Neo.ClientError.Database.DatabaseNotFound"
MAX_QUERY_CHARS: Final = 65_536
PRIVILEGE_COLUMNS: Final = ["access", "action", "resource", "graph", "segment", "role", "immutable"]
USER_COLUMNS: Final = ["user", "roles", "passwordChangeRequired", "suspended", "home"]


@dataclass(slots=True)
class AdminResult:
    """Rows to answer (SHOW) or commands to replicate (everything else), never both."""

    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    kind: str = ""
    """The command's name for the audit log (``CREATE USER``, ``GRANT``...)."""
    target: str = ""
    """The user or role it concerns, for the audit log."""

    @property
    def writes(self) -> bool:
        return bool(self.commands)


# -- tokens --------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>\s+|//[^\n]*)
  | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<quoted>`(?:[^`]|``)*`)
  | (?P<number>-?\d+(?:\.\d+)?)
  | (?P<param>\$[A-Za-z_][A-Za-z_0-9]*)
  | (?P<word>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op><>|<=|>=|=|<|>|\(|\)|\{|\}|\[|\]|,|:|\.|\*|;)
    """,
    re.VERBOSE,
)
_ESCAPES: Final = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_TAIL_WORDS: Final = frozenset({"YIELD", "WHERE"})


@dataclass(slots=True, frozen=True)
class _Token:
    kind: str  # word, name (backticked), string, number, param, op, tail, end
    text: str
    value: Any = None


def _unescape(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and i + 1 < len(body):
            out.append(_ESCAPES.get(body[i + 1], body[i + 1]))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _tokenize(query: str) -> list[_Token]:
    if len(query) > MAX_QUERY_CHARS:
        raise SecurityError(SYNTAX_ERROR, "the command is too long")
    tokens: list[_Token] = []
    position = 0
    depth = 0
    while position < len(query):
        match = _TOKEN.match(query, position)
        if match is None:
            raise SecurityError(SYNTAX_ERROR, f"Invalid input at offset {position}")
        position = match.end()
        kind = match.lastgroup
        text = match.group()
        if kind == "space":
            continue
        if (
            kind == "word"
            and depth == 0
            and text.upper() in _TAIL_WORDS
            and tokens
            and tokens[0].text.upper() == "SHOW"
        ):
            # A SHOW command's YIELD / WHERE / RETURN tail is Cypher: kept whole, as text.
            tail = query[match.start() :].strip().rstrip(";")
            tokens.append(_Token("tail", tail, tail))
            break
        if kind == "op" and text in "([{":
            depth += 1
        elif kind == "op" and text in ")]}":
            depth -= 1
        if kind == "string":
            tokens.append(_Token("string", text, _unescape(text[1:-1])))
        elif kind == "quoted":
            tokens.append(_Token("name", text, text[1:-1].replace("``", "`")))
        elif kind == "number":
            tokens.append(_Token("number", text, float(text) if "." in text else int(text)))
        elif kind == "param":
            tokens.append(_Token("param", text, text[1:]))
        elif kind == "word":
            tokens.append(_Token("word", text, text))
        else:
            tokens.append(_Token("op", text))
    while tokens and tokens[-1].kind == "op" and tokens[-1].text == ";":
        tokens.pop()
    tokens.append(_Token("end", "<end>"))
    return tokens


class _Parser:
    def __init__(self, query: str, parameters: Mapping[str, Any]) -> None:
        self.tokens = _tokenize(query)
        self.position = 0
        self.parameters = parameters

    # primitives

    def peek(self, ahead: int = 0) -> _Token:
        return self.tokens[min(self.position + ahead, len(self.tokens) - 1)]

    def error(self, expected: str) -> SecurityError:
        token = self.peek()
        return SecurityError(SYNTAX_ERROR, f"Invalid input '{token.text}': expected {expected}")

    def at(self, *words: str) -> bool:
        """The next tokens are these keywords (case-insensitive) or punctuation."""
        for offset, word in enumerate(words):
            token = self.peek(offset)
            if token.kind == "word":
                if token.text.upper() != word:
                    return False
            elif token.kind != "op" or token.text != word:
                return False
        return True

    def accept(self, *words: str) -> bool:
        if self.at(*words):
            self.position += len(words)
            return True
        return False

    def expect(self, *words: str) -> None:
        if not self.accept(*words):
            raise self.error(" ".join(words))

    def end(self) -> None:
        """The command ends here (before a SHOW command's YIELD / WHERE tail, if any)."""
        if self.peek().kind not in ("end", "tail"):
            raise self.error("the end of the command")

    def name(self, what: str = "a name") -> str:
        token = self.peek()
        if token.kind in ("word", "name"):
            self.position += 1
            return str(token.value)
        if token.kind == "param":
            self.position += 1
            value = self._parameter(str(token.value))
            if not isinstance(value, str):
                raise SecurityError(INVALID_ARGUMENTS, f"${token.value} must be a string")
            return value
        raise self.error(what)

    def names(self, what: str = "a name") -> list[str]:
        found = [self.name(what)]
        while self.accept(","):
            found.append(self.name(what))
        return found

    def names_or_star(self, what: str = "a name") -> list[str] | None:
        if self.accept("*"):
            return None
        return self.names(what)

    def _parameter(self, key: str) -> Any:
        if key not in self.parameters:
            raise SecurityError(
                "Neo.ClientError.Statement.ParameterMissing", f"Expected parameter(s): {key}"
            )
        return self.parameters[key]

    def password(self) -> str:
        token = self.peek()
        if token.kind == "string":
            self.position += 1
            return str(token.value)
        if token.kind == "param":
            self.position += 1
            value = self._parameter(str(token.value))
            if not isinstance(value, str):
                raise SecurityError(INVALID_ARGUMENTS, "A password must be a string")
            return value
        raise self.error("a password string or parameter")

    def literal(self) -> Any:
        if self.accept("["):
            items: list[Any] = []
            if not self.accept("]"):
                items.append(self.literal())
                while self.accept(","):
                    items.append(self.literal())
                self.expect("]")
            return items
        token = self.peek()
        self.position += 1
        if token.kind in ("string", "number"):
            return token.value
        if token.kind == "param":
            return self._parameter(str(token.value))
        if token.kind == "word" and token.text.upper() in ("TRUE", "FALSE", "NULL"):
            return {"TRUE": True, "FALSE": False, "NULL": None}[token.text.upper()]
        self.position -= 1
        raise self.error("a literal value")


# -- the commands ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Context:
    state: SecurityState
    user: str
    parameters: Mapping[str, Any]
    hasher: Callable[[str], str]
    verifier: Callable[[str, str], bool]

    def privileges(self):  # type: ignore[no-untyped-def]
        return self.state.privileges_for(self.user, SYSTEM_DATABASE)

    def require(self, action: Action) -> None:
        if not self.privileges().can(action):
            raise SecurityError(
                FORBIDDEN,
                f"Permission denied for {action.value} (user '{self.user}').",
            )

    def hash(self, password: str) -> str:
        try:
            return self.hasher(password)
        except passwords.PasswordPolicyError as error:
            raise SecurityError(INVALID_ARGUMENTS, f"{error}.") from None


def execute_admin(
    state: SecurityState,
    user: str,
    query: str,
    parameters: Mapping[str, Any] | None = None,
    *,
    hasher: Callable[[str], str] = passwords.hash_password,
    verifier: Callable[[str, str], bool] = passwords.verify_password,
) -> AdminResult:
    """Run one administration command as ``user`` against ``state`` (not changed)."""
    context = _Context(state, user, parameters or {}, hasher, verifier)
    record = state.user(user)
    if record is None or record.suspended:
        raise SecurityError("Neo.ClientError.Security.Unauthorized", "unknown or suspended user")
    parser = _Parser(query, context.parameters)
    if record.change_required and not parser.at("ALTER", "CURRENT", "USER"):
        raise SecurityError(
            CREDENTIALS_EXPIRED,
            "Permission denied. The credentials you provided were valid, but must be changed "
            "before you can use this instance.",
        )
    result = _dispatch(parser, context)
    parser.end()
    return result


def _dispatch(parser: _Parser, context: _Context) -> AdminResult:
    if parser.accept("SHOW"):
        result = _show(parser, context)
        tail = parser.peek()
        if tail.kind == "tail":
            parser.position += 1
            result.columns, result.rows = _filter(result, tail.value, context.parameters)
        return result
    if parser.accept("CREATE", "OR", "REPLACE", "USER"):
        return _create_user(parser, context, replace=True)
    if parser.accept("CREATE", "USER"):
        return _create_user(parser, context, replace=False)
    if parser.accept("ALTER", "CURRENT", "USER"):
        return _alter_current_user(parser, context)
    if parser.accept("ALTER", "USER"):
        return _alter_user(parser, context)
    if parser.accept("DROP", "USER"):
        return _drop_user(parser, context)
    if parser.accept("CREATE", "OR", "REPLACE", "ROLE"):
        return _create_role(parser, context, replace=True)
    if parser.accept("CREATE", "ROLE"):
        return _create_role(parser, context, replace=False)
    if parser.accept("DROP", "ROLE"):
        return _drop_role(parser, context)
    role_privilege = parser.at("GRANT", "ROLE", "MANAGEMENT", "ON") or parser.at(
        "REVOKE", "ROLE", "MANAGEMENT", "ON"
    )
    if not role_privilege and (parser.at("GRANT", "ROLE") or parser.at("GRANT", "ROLES")):
        parser.position += 2
        return _role_membership(parser, context, grant=True)
    if not role_privilege and (parser.at("REVOKE", "ROLE") or parser.at("REVOKE", "ROLES")):
        parser.position += 2
        return _role_membership(parser, context, grant=False)
    if parser.at("GRANT") or parser.at("DENY") or parser.at("REVOKE"):
        return _privilege_command(parser, context)
    raise SecurityError(
        NOT_SYSTEM_COMMAND,
        "Not a recognised system command or procedure. This Cypher command can only be "
        "executed in a user database.",
    )


# users


def _password_clause(parser: _Parser) -> tuple[str, bool | None]:
    """After SET: ``[PLAINTEXT] PASSWORD 'x' [CHANGE [NOT] REQUIRED]``."""
    if parser.accept("ENCRYPTED"):
        raise SecurityError(INVALID_ARGUMENTS, "ENCRYPTED passwords are not supported")
    parser.accept("PLAINTEXT")
    parser.expect("PASSWORD")
    password = parser.password()
    return password, _change_required(parser)


def _change_required(parser: _Parser) -> bool | None:
    if parser.accept("CHANGE", "NOT", "REQUIRED"):
        return False
    if parser.accept("CHANGE", "REQUIRED"):
        return True
    return None


def _status(parser: _Parser) -> bool:
    """After SET STATUS: True when SUSPENDED."""
    if parser.accept("SUSPENDED"):
        return True
    parser.expect("ACTIVE")
    return False


def _user_row(state: SecurityState, name: str) -> list[Any]:
    user = state.users[name]
    roles = sorted({PUBLIC, *user.roles})
    return [user.name, roles, user.change_required, user.suspended, None]


def _create_user(parser: _Parser, context: _Context, replace: bool) -> AdminResult:
    name = parser.name("a user name")
    if_not_exists = parser.accept("IF", "NOT", "EXISTS")
    if replace and if_not_exists:
        raise SecurityError(
            SYNTAX_ERROR,
            "Failed to create the specified user: cannot have both OR REPLACE and IF NOT EXISTS.",
        )
    parser.expect("SET")
    password, change_required = _password_clause(parser)
    suspended = False
    while parser.accept("SET"):
        if parser.accept("STATUS"):
            suspended = _status(parser)
        elif parser.accept("HOME", "DATABASE"):
            parser.name("a database name")
        else:
            raise parser.error("STATUS or HOME DATABASE")
    parser.end()
    context.require(Action.USER_MANAGEMENT)
    exists = context.state.user(name) is not None
    if exists and if_not_exists:
        return AdminResult(kind="CREATE USER", target=name)
    if exists and not replace:
        raise SecurityError(
            INVALID_ARGUMENTS, f"Failed to create the specified user '{name}': User already exists."
        )
    if replace and name == context.user:
        raise SecurityError(
            INVALID_ARGUMENTS,
            f"Failed to replace the specified user '{name}': Deleting yourself is not allowed.",
        )
    command = Command(
        "create_user",
        {
            "name": name,
            "hash": context.hash(password),
            "change_required": True if change_required is None else change_required,
            "suspended": suspended,
            "replace": replace,
        },
    )
    return AdminResult(commands=[command], kind="CREATE USER", target=name)


def _alter_user(parser: _Parser, context: _Context) -> AdminResult:
    name = parser.name("a user name")
    if_exists = parser.accept("IF", "EXISTS")
    password: str | None = None
    change_required: bool | None = None
    suspended: bool | None = None
    clauses = 0
    while True:
        if parser.accept("SET"):
            clauses += 1
            if parser.at("PASSWORD", "CHANGE"):
                parser.expect("PASSWORD")
                change_required = _change_required(parser)
                if change_required is None:
                    raise parser.error("CHANGE [NOT] REQUIRED")
            elif parser.at("PASSWORD") or parser.at("PLAINTEXT") or parser.at("ENCRYPTED"):
                password, required = _password_clause(parser)
                if required is not None:
                    change_required = required
            elif parser.accept("STATUS"):
                suspended = _status(parser)
            elif parser.accept("HOME", "DATABASE"):
                parser.name("a database name")
            else:
                raise parser.error("PASSWORD, STATUS or HOME DATABASE")
        elif parser.accept("REMOVE", "HOME", "DATABASE"):
            clauses += 1
        else:
            break
    if not clauses:
        raise parser.error("SET or REMOVE")
    parser.end()
    context.require(Action.USER_MANAGEMENT)
    record = context.state.user(name)
    if record is None:
        if if_exists:
            return AdminResult(kind="ALTER USER", target=name)
        raise SecurityError(
            INVALID_ARGUMENTS, f"Failed to alter the specified user '{name}': User does not exist."
        )
    if name == context.user and suspended is not None and suspended != record.suspended:
        raise SecurityError(
            INVALID_ARGUMENTS,
            f"Failed to alter the specified user '{name}': "
            "Changing your own activation status is not allowed.",
        )
    args: dict[str, Any] = {"name": name}
    if password is not None:
        if context.verifier(password, record.password_hash):
            raise SecurityError(
                INVALID_ARGUMENTS,
                f"Failed to alter the specified user '{name}': "
                "Old password and new password cannot be the same.",
            )
        args["hash"] = context.hash(password)
    if change_required is not None:
        args["change_required"] = change_required
    if suspended is not None:
        args["suspended"] = suspended
    return AdminResult(commands=[Command("alter_user", args)], kind="ALTER USER", target=name)


def _alter_current_user(parser: _Parser, context: _Context) -> AdminResult:
    parser.expect("SET", "PASSWORD", "FROM")
    old = parser.password()
    parser.expect("TO")
    new = parser.password()
    parser.end()
    record = context.state.users[context.user]
    if not context.verifier(old, record.password_hash):
        raise SecurityError(
            INVALID_ARGUMENTS,
            f"User '{context.user}' failed to alter their own password: "
            "Invalid principal or credentials.",
        )
    if old == new:
        raise SecurityError(
            INVALID_ARGUMENTS,
            f"User '{context.user}' failed to alter their own password: "
            "Old password and new password cannot be the same.",
        )
    command = Command("set_own_password", {"name": context.user, "hash": context.hash(new)})
    return AdminResult(commands=[command], kind="ALTER CURRENT USER", target=context.user)


def _drop_user(parser: _Parser, context: _Context) -> AdminResult:
    name = parser.name("a user name")
    if_exists = parser.accept("IF", "EXISTS")
    parser.end()
    context.require(Action.USER_MANAGEMENT)
    if context.state.user(name) is None:
        if if_exists:
            return AdminResult(kind="DROP USER", target=name)
        raise SecurityError(
            INVALID_ARGUMENTS, f"Failed to delete the specified user '{name}': User does not exist."
        )
    if name == context.user:
        raise SecurityError(
            INVALID_ARGUMENTS,
            f"Failed to delete the specified user '{name}': Deleting yourself is not allowed.",
        )
    return AdminResult(
        commands=[Command("drop_user", {"name": name})], kind="DROP USER", target=name
    )


# roles


def _create_role(parser: _Parser, context: _Context, replace: bool) -> AdminResult:
    name = parser.name("a role name")
    if_not_exists = parser.accept("IF", "NOT", "EXISTS")
    copy_of = None
    if parser.accept("AS", "COPY", "OF"):
        copy_of = parser.name("a role name")
    parser.end()
    context.require(Action.ROLE_MANAGEMENT)
    state = context.state
    if copy_of is not None and copy_of not in state.roles:
        raise SecurityError(
            INVALID_ARGUMENTS,
            f"Failed to create a role as copy of '{copy_of}': Role does not exist.",
        )
    commands: list[Command] = []
    if name in state.roles:
        if if_not_exists:
            return AdminResult(kind="CREATE ROLE", target=name)
        if not replace:
            raise SecurityError(
                INVALID_ARGUMENTS,
                f"Failed to create the specified role '{name}': Role already exists.",
            )
        if name == PUBLIC:
            raise SecurityError(INVALID_ARGUMENTS, "The PUBLIC role cannot be replaced.")
        commands.append(Command("drop_role", {"name": name}))
    args: dict[str, Any] = {"name": name}
    if copy_of is not None:
        args["copy_of"] = copy_of
    commands.append(Command("create_role", args))
    return AdminResult(commands=commands, kind="CREATE ROLE", target=name)


def _drop_role(parser: _Parser, context: _Context) -> AdminResult:
    name = parser.name("a role name")
    if_exists = parser.accept("IF", "EXISTS")
    parser.end()
    context.require(Action.ROLE_MANAGEMENT)
    if name not in context.state.roles:
        if if_exists:
            return AdminResult(kind="DROP ROLE", target=name)
        raise SecurityError(
            INVALID_ARGUMENTS, f"Failed to delete the specified role '{name}': Role does not exist."
        )
    if name == PUBLIC:
        raise SecurityError(
            INVALID_ARGUMENTS, "Failed to delete the specified role 'PUBLIC': Permission denied."
        )
    return AdminResult(
        commands=[Command("drop_role", {"name": name})], kind="DROP ROLE", target=name
    )


def _role_membership(parser: _Parser, context: _Context, grant: bool) -> AdminResult:
    roles = parser.names("a role name")
    parser.expect("TO" if grant else "FROM")
    users = parser.names("a user name")
    parser.end()
    context.require(Action.ROLE_MANAGEMENT)
    verb = "grant" if grant else "revoke"
    for role in roles:
        if role not in context.state.roles:
            raise SecurityError(
                INVALID_ARGUMENTS, f"Failed to {verb} role '{role}': Role does not exist."
            )
        if role == PUBLIC:
            raise SecurityError(
                INVALID_ARGUMENTS, f"Failed to {verb} role '{PUBLIC}': Permission denied."
            )
    for user in users:
        if context.state.user(user) is None:
            raise SecurityError(
                INVALID_ARGUMENTS, f"Failed to {verb} role to user '{user}': User does not exist."
            )
    if not grant and context.user in users and ADMIN_ROLE in roles:
        raise SecurityError(
            INVALID_ARGUMENTS,
            f"Failed to revoke role '{ADMIN_ROLE}' from user '{context.user}': "
            "revoking your own admin role is not allowed.",
        )
    command = Command(f"{verb}_role", {"roles": roles, "users": users})
    return AdminResult(
        commands=[command], kind=f"{verb.upper()} ROLE", target=",".join(roles + users)
    )


# SHOW


def _show(parser: _Parser, context: _Context) -> AdminResult:
    state = context.state
    if parser.accept("CURRENT", "USER"):
        parser.end()
        return AdminResult(USER_COLUMNS, [_user_row(state, context.user)], kind="SHOW")
    if parser.accept("USERS"):
        parser.end()
        context.require(Action.USER_MANAGEMENT)
        rows = [_user_row(state, name) for name in sorted(state.users)]
        return AdminResult(USER_COLUMNS, rows, kind="SHOW")
    if parser.accept("DATABASES") or parser.accept("DATABASE"):
        if parser.peek().kind != "end":
            parser.name("a database name")
        parser.end()
        columns = ["name", "type", "access", "currentStatus", "default", "home"]
        rows = [
            [DEFAULT_DATABASE, "standard", "read-write", "online", True, True],
            [SYSTEM_DATABASE, "system", "read-write", "online", False, False],
        ]
        return AdminResult(columns, rows, kind="SHOW")
    populated = False
    if parser.accept("POPULATED"):
        populated = True
    else:
        parser.accept("ALL")
    if parser.accept("ROLES"):
        with_users = parser.accept("WITH", "USERS")
        parser.end()
        context.require(Action.ROLE_MANAGEMENT)
        members = _members(state)
        rows: list[list[Any]] = []
        for role in sorted(state.roles):
            if populated and not members[role]:
                continue
            if with_users:
                rows.extend([role, user] for user in members[role])
            else:
                rows.append([role])
        return AdminResult(["role", "member"] if with_users else ["role"], rows, kind="SHOW")
    return _show_privileges(parser, context)


_LITERALS = re.compile(r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`(?:[^`]|``)*`""")
_CLAUSE = re.compile(r"\b(ORDER\s+BY|SKIP|LIMIT|WHERE|RETURN)\b", re.IGNORECASE)
_ALIAS = re.compile(r"(?s).*\s+AS\s+(`(?:[^`]|``)*`|[A-Za-z_][A-Za-z_0-9]*)\s*", re.IGNORECASE)
_ROWS_PARAMETER: Final = "__quiver_show_rows"
_SHOW_ENGINE: Final = Engine()
"""Runs SHOW tails (its plan cache keeps the few distinct ones)."""


def _blank_literals(text: str) -> str:
    """`text` with its strings and backticked names blanked out (same length), so that the
    words and commas left are the Cypher's own."""
    return _LITERALS.sub(lambda match: " " * len(match.group()), text)


def _top_level_commas(text: str) -> list[int]:
    depth, found = 0, []
    for offset, char in enumerate(_blank_literals(text)):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            found.append(offset)
    return found


def _yielded(items: str, columns: list[str]) -> list[str]:
    """RETURN items for the names a YIELD item list binds, in order."""
    if items.strip() == "*":
        return [f"`{column}` AS `{column}`" for column in columns]
    names, start = [], 0
    for end in [*_top_level_commas(items), len(items)]:
        item = items[start:end].strip()
        start = end + 1
        alias = _ALIAS.fullmatch(item)
        names.append(alias.group(1) if alias else item)
    return names


def _filter(
    result: AdminResult, tail: str, parameters: Mapping[str, Any]
) -> tuple[list[str], list[list[Any]]]:
    """A SHOW command's ``YIELD ... [ORDER BY] [SKIP] [LIMIT] [WHERE] [RETURN ...]`` or
    ``WHERE ...`` tail, as Neo4j reads it: Cypher over the command's rows, each column bound
    to its name, run by the query engine on an empty graph (the tail reads only its rows and
    parameters; a tail that writes is refused)."""
    bound = ", ".join(f"__row[{i}] AS `{column}`" for i, column in enumerate(result.columns))
    head = f"UNWIND ${_ROWS_PARAMETER} AS __row WITH {bound}"
    keyword, rest = (*tail.split(None, 1), "")[:2]
    if keyword.upper() == "WHERE":
        every = ", ".join(f"`{column}` AS `{column}`" for column in result.columns)
        query = f"{head} WHERE {rest} RETURN {every}"
    else:
        blank = _blank_literals(rest)
        clause = _CLAUSE.search(blank)
        items = rest[: clause.start()] if clause else rest
        query = f"{head} WITH {rest}"
        if not re.search(r"\bRETURN\b", blank, re.IGNORECASE):
            query += " RETURN " + ", ".join(_yielded(items, result.columns))
    try:
        answer = _SHOW_ENGINE.run(
            MemoryGraph(), query, {**parameters, _ROWS_PARAMETER: result.rows}
        )
    except CypherError as error:
        raise SecurityError(error.status_code, f"{error.args[0]} (in: {tail})") from None
    if answer.write_set or any(answer.counters.values()):
        raise SecurityError(SYNTAX_ERROR, f"a SHOW command's YIELD and WHERE may only read: {tail}")
    return answer.columns, answer.rows


def _members(state: SecurityState) -> dict[str, list[str]]:
    members: dict[str, list[str]] = {role: [] for role in state.roles}
    for name in sorted(state.users):
        for role in {PUBLIC, *state.users[name].roles}:
            if role in members:
                members[role].append(name)
    return members


def _show_privileges(parser: _Parser, context: _Context) -> AdminResult:
    state = context.state
    roles: list[str]
    user_filter: str | None = None
    if parser.accept("ROLE") or parser.accept("ROLES"):
        roles = parser.names("a role name")
        context.require(Action.PRIVILEGE_MANAGEMENT)
    elif parser.accept("USER") or parser.accept("USERS"):
        users = [context.user] if parser.at("PRIVILEGE") or parser.at("PRIVILEGES") else None
        if users is None:
            users = parser.names("a user name")
        if users != [context.user]:
            context.require(Action.PRIVILEGE_MANAGEMENT)
        roles = []
        for name in users:
            record = state.user(name)
            if record is None:
                raise SecurityError(INVALID_ARGUMENTS, f"User '{name}' does not exist.")
            roles.extend(sorted({PUBLIC, *record.roles}))
        user_filter = users[0] if len(users) == 1 else None
    else:
        roles = sorted(state.roles)
        context.require(Action.PRIVILEGE_MANAGEMENT)
    if not (parser.accept("PRIVILEGES") or parser.accept("PRIVILEGE")):
        raise parser.error("PRIVILEGES")
    as_commands = False
    if parser.accept("AS"):
        parser.accept("REVOKE")
        if not (parser.accept("COMMANDS") or parser.accept("COMMAND")):
            raise parser.error("COMMANDS")
        as_commands = True
    parser.end()
    rows: list[list[Any]] = []
    seen: set[str] = set()
    for role in dict.fromkeys(roles):
        if role not in state.roles:
            raise SecurityError(INVALID_ARGUMENTS, f"Role '{role}' does not exist.")
        for rule in state.rules_of(role):
            if as_commands:
                text = privilege_command(role, rule)
                if text not in seen:
                    seen.add(text)
                    rows.append([text])
                continue
            for row in privilege_rows(role, rule):
                values = [row[c] for c in PRIVILEGE_COLUMNS]
                if user_filter is not None:
                    values.append(user_filter)
                rows.append(values)
    if as_commands:
        return AdminResult(["command"], rows, kind="SHOW")
    columns = list(PRIVILEGE_COLUMNS) + (["user"] if user_filter is not None else [])
    return AdminResult(columns, rows, kind="SHOW")


# privileges

_DBMS_PRIVILEGES: Final = {
    ("USER", "MANAGEMENT"): Action.USER_MANAGEMENT,
    ("ROLE", "MANAGEMENT"): Action.ROLE_MANAGEMENT,
    ("PRIVILEGE", "MANAGEMENT"): Action.PRIVILEGE_MANAGEMENT,
}
_DATABASE_PRIVILEGES: Final = (
    (("ACCESS",), Action.ACCESS),
    (("CREATE", "NEW", "NODE", "LABELS"), Action.CREATE_NEW_LABEL),
    (("CREATE", "NEW", "NODE", "LABEL"), Action.CREATE_NEW_LABEL),
    (("CREATE", "NEW", "LABELS"), Action.CREATE_NEW_LABEL),
    (("CREATE", "NEW", "LABEL"), Action.CREATE_NEW_LABEL),
    (("CREATE", "NEW", "RELATIONSHIP", "TYPES"), Action.CREATE_NEW_TYPE),
    (("CREATE", "NEW", "RELATIONSHIP", "TYPE"), Action.CREATE_NEW_TYPE),
    (("CREATE", "NEW", "TYPES"), Action.CREATE_NEW_TYPE),
    (("CREATE", "NEW", "TYPE"), Action.CREATE_NEW_TYPE),
    (("CREATE", "NEW", "PROPERTY", "NAMES"), Action.CREATE_NEW_PROPERTY_NAME),
    (("CREATE", "NEW", "PROPERTY", "NAME"), Action.CREATE_NEW_PROPERTY_NAME),
    (("CREATE", "NEW", "NAMES"), Action.CREATE_NEW_PROPERTY_NAME),
    (("CREATE", "NEW", "NAME"), Action.CREATE_NEW_PROPERTY_NAME),
    (("NAME", "MANAGEMENT"), Action.NAME_MANAGEMENT),
    (("NAME",), Action.NAME_MANAGEMENT),
    # Quiver keeps index and constraint management whole: CREATE and DROP map onto it.
    (("CREATE", "INDEXES"), Action.CREATE_INDEX),
    (("CREATE", "INDEX"), Action.CREATE_INDEX),
    (("DROP", "INDEXES"), Action.DROP_INDEX),
    (("DROP", "INDEX"), Action.DROP_INDEX),
    (("SHOW", "INDEXES"), Action.SHOW_INDEX),
    (("SHOW", "INDEX"), Action.SHOW_INDEX),
    (("INDEX", "MANAGEMENT"), Action.INDEX_MANAGEMENT),
    (("INDEXES",), Action.INDEX_MANAGEMENT),
    (("INDEX",), Action.INDEX_MANAGEMENT),
    (("CREATE", "CONSTRAINTS"), Action.CREATE_CONSTRAINT),
    (("CREATE", "CONSTRAINT"), Action.CREATE_CONSTRAINT),
    (("DROP", "CONSTRAINTS"), Action.DROP_CONSTRAINT),
    (("DROP", "CONSTRAINT"), Action.DROP_CONSTRAINT),
    (("SHOW", "CONSTRAINTS"), Action.SHOW_CONSTRAINT),
    (("SHOW", "CONSTRAINT"), Action.SHOW_CONSTRAINT),
    (("CONSTRAINT", "MANAGEMENT"), Action.CONSTRAINT_MANAGEMENT),
    (("CONSTRAINTS",), Action.CONSTRAINT_MANAGEMENT),
    (("CONSTRAINT",), Action.CONSTRAINT_MANAGEMENT),
    (("TRANSACTION", "MANAGEMENT"), Action.TRANSACTION_MANAGEMENT),
    (("TRANSACTION",), Action.TRANSACTION_MANAGEMENT),
)
_GRAPH_WITH_PROPERTIES: Final = {
    "READ": Action.READ,
    "MATCH": Action.MATCH,
    "MERGE": Action.MERGE,
}
_OPERATORS: Final = ("<>", "<=", ">=", "=", "<", ">")
_CONDITIONAL_ACTIONS: Final = (Action.TRAVERSE, Action.READ, Action.MATCH)


@dataclass(slots=True)
class _Spec:
    """A parsed privilege before expansion into stored rules."""

    action: Action
    properties: list[str] | None = None
    labels: list[str] | None = None
    """SET LABEL / REMOVE LABEL: the labels (None: *)."""
    users: list[str] | None = None
    """IMPERSONATE: the users (None: *)."""
    kind: str = "graph"  # graph, database, dbms


def _properties(parser: _Parser) -> list[str] | None:
    parser.expect("{")
    found = parser.names_or_star("a property name")
    parser.expect("}")
    return found


def _privilege_spec(parser: _Parser) -> _Spec:
    for words, action in _DATABASE_PRIVILEGES:
        if parser.accept(*words):
            return _Spec(action, kind="database")
    for words, action in _DBMS_PRIVILEGES.items():
        if parser.accept(*words):
            return _Spec(action, kind="dbms")
    if parser.accept("IMPERSONATE"):
        users: list[str] | None = None
        if parser.accept("("):
            users = parser.names_or_star("a user name")
            parser.expect(")")
        return _Spec(Action.IMPERSONATE, users=users, kind="dbms")
    if parser.accept("ALL"):
        if parser.accept("DBMS"):
            parser.expect("PRIVILEGES")
            return _Spec(Action.ALL_DBMS, kind="dbms")
        if parser.accept("DATABASE"):
            parser.expect("PRIVILEGES")
            return _Spec(Action.ALL_DATABASE, kind="database")
        parser.accept("GRAPH")
        parser.expect("PRIVILEGES")
        return _Spec(Action.ALL_GRAPH, kind="all")  # decided by its ON target
    if parser.accept("TRAVERSE"):
        return _Spec(Action.TRAVERSE)
    for word, action in _GRAPH_WITH_PROPERTIES.items():
        if parser.accept(word):
            return _Spec(action, _properties(parser))
    if parser.accept("SET", "PROPERTY"):
        return _Spec(Action.SET_PROPERTY, _properties(parser))
    if parser.accept("SET", "LABEL"):
        return _Spec(Action.SET_LABEL, labels=parser.names_or_star("a label"))
    if parser.accept("REMOVE", "LABEL"):
        return _Spec(Action.REMOVE_LABEL, labels=parser.names_or_star("a label"))
    if parser.accept("WRITE"):
        return _Spec(Action.WRITE)
    if parser.accept("CREATE"):
        return _Spec(Action.CREATE)
    if parser.accept("DELETE"):
        return _Spec(Action.DELETE)
    if parser.accept("EXECUTE"):
        raise SecurityError(INVALID_ARGUMENTS, "EXECUTE privileges are not supported")
    raise parser.error("a privilege")


def _targets(parser: _Parser, keyword: str) -> list[str | None]:
    """``ON GRAPH[S] a, b`` / ``*`` / ``HOME GRAPH`` / ``DEFAULT GRAPH``; None is ``*``."""
    if parser.accept("HOME", keyword) or parser.accept("DEFAULT", keyword):
        return [DEFAULT_DATABASE]
    if not (parser.accept(keyword) or parser.accept(keyword + "S")):
        raise parser.error(f"{keyword} or {keyword}S")
    names = parser.names_or_star(f"a {keyword.lower()} name")
    if names is None:
        return [None]
    # Names are case-insensitive; one that names no database is refused, as Neo4j does,
    # rather than stored as a rule (a DENY) that silently protects nothing.
    found = [name.lower() for name in names]
    for name, lowered in zip(names, found, strict=True):
        if lowered not in (DEFAULT_DATABASE, SYSTEM_DATABASE):
            raise SecurityError(
                DATABASE_NOT_FOUND, f"Database does not exist. Database name: '{name}'."
            )
    return list(found)


@dataclass(slots=True)
class _Segment:
    kind: str
    names: list[str] | None
    condition: PropertyRule | None = None


def _segment(parser: _Parser, spec: _Spec) -> list[_Segment]:
    if parser.accept("NODES") or parser.accept("NODE"):
        return [_Segment(NODES, parser.names_or_star("a label"))]
    if parser.accept("RELATIONSHIPS") or parser.accept("RELATIONSHIP"):
        return [_Segment(RELATIONSHIPS, parser.names_or_star("a relationship type"))]
    if parser.accept("ELEMENTS") or parser.accept("ELEMENT"):
        names = parser.names_or_star("a label or type")
        return [_Segment(NODES, names), _Segment(RELATIONSHIPS, names)]
    if parser.accept("FOR"):
        return [_property_rule(parser)]
    return [_Segment(NODES, None), _Segment(RELATIONSHIPS, None)]


def _property_rule(parser: _Parser) -> _Segment:
    """``FOR (n[:L]) WHERE n.p <op> v``, ``... WHERE n.p IS [NOT] NULL``, or
    ``FOR (n[:L] {p: v})``."""
    parser.expect("(")
    variable = parser.name("a variable")
    label = parser.name("a label") if parser.accept(":") else None
    if parser.accept("{"):
        prop = parser.name("a property name")
        parser.expect(":")
        value = parser.literal()
        parser.expect("}")
        parser.expect(")")
        rule = PropertyRule(variable, label, prop, "=", value)
        return _Segment(NODES, None if label is None else [label], rule)
    parser.expect(")")
    parser.expect("WHERE")
    owner = parser.name("a variable")
    if owner != variable:
        raise SecurityError(SYNTAX_ERROR, f"Variable `{owner}` not defined")
    parser.expect(".")
    prop = parser.name("a property name")
    if parser.accept("NOT", "IN") or parser.accept("IN"):
        operator = "NOT IN" if parser.tokens[parser.position - 2].text.upper() == "NOT" else "IN"
        values = parser.literal()
        if not isinstance(values, list) or any(isinstance(v, (list, dict)) for v in values):
            raise SecurityError(INVALID_ARGUMENTS, f"{operator} needs a list of scalars")
        rule = PropertyRule(variable, label, prop, operator, values)
    elif parser.accept("IS", "NOT", "NULL"):
        rule = PropertyRule(variable, label, prop, "IS NOT NULL")
    elif parser.accept("IS", "NULL"):
        rule = PropertyRule(variable, label, prop, "IS NULL")
    else:
        op = next((o for o in _OPERATORS if parser.accept(o)), None)
        if op is None:
            raise parser.error("a comparison operator")
        value = parser.literal()
        if isinstance(value, (list, dict)):
            raise SecurityError(INVALID_ARGUMENTS, "a property rule compares with a scalar")
        rule = PropertyRule(variable, label, prop, op, value)
    return _Segment(NODES, None if label is None else [label], rule)


def _expand(spec: _Spec, grant: bool, graphs: list[str | None], segments: list[_Segment]):
    """Neo4j stores one privilege per graph, segment kind, name and property."""
    rules: list[Rule] = []
    for graph in graphs:
        if spec.kind == "database":
            rules.append(Rule(Privilege.of(grant, spec.action, graph=graph)))
            continue
        if spec.kind == "dbms":
            users = spec.users
            for user in [None] if users is None else users:
                names = None if user is None else [user]
                rules.append(Rule(Privilege.of(grant, spec.action, names=names)))
            continue
        if spec.action in (Action.SET_LABEL, Action.REMOVE_LABEL):
            for label in [None] if spec.labels is None else spec.labels:
                names = None if label is None else [label]
                rules.append(Rule(Privilege.of(grant, spec.action, NODES, names, graph=graph)))
            continue
        for segment in segments:
            if segment.condition is not None and spec.action not in _CONDITIONAL_ACTIONS:
                raise SecurityError(
                    INVALID_ARGUMENTS,
                    "property-based rules apply to TRAVERSE, READ and MATCH only",
                )
            for name in [None] if segment.names is None else segment.names:
                names = None if name is None else [name]
                for prop in [None] if spec.properties is None else spec.properties:
                    properties = None if prop is None else [prop]
                    try:
                        privilege = Privilege.of(
                            grant, spec.action, segment.kind, names, properties, graph
                        )
                    except ValueError as error:
                        raise SecurityError(INVALID_ARGUMENTS, str(error)) from None
                    rules.append(Rule(privilege, segment.condition))
    return rules


def _privilege_command(parser: _Parser, context: _Context) -> AdminResult:
    verb = parser.peek().text.upper()
    parser.position += 1
    revoke_which: tuple[bool, ...] = (True,) if verb == "GRANT" else (False,)
    if verb == "REVOKE":
        if parser.accept("GRANT"):
            revoke_which = (True,)
        elif parser.accept("DENY"):
            revoke_which = (False,)
        else:
            revoke_which = (True, False)
    parser.accept("IMMUTABLE")
    spec = _privilege_spec(parser)
    parser.expect("ON")
    segments: list[_Segment] = []
    if parser.accept("DBMS"):
        if spec.kind == "all":
            spec.action, spec.kind = Action.ALL_DBMS, "dbms"
        if spec.kind != "dbms":
            raise SecurityError(SYNTAX_ERROR, f"{spec.action.value} is not a DBMS privilege")
        graphs: list[str | None] = [None]
    elif (
        parser.at("DATABASE")
        or parser.at("DATABASES")
        or parser.at("HOME", "DATABASE")
        or (parser.at("DEFAULT", "DATABASE"))
    ):
        if spec.kind == "all":
            spec.action, spec.kind = Action.ALL_DATABASE, "database"
        if spec.kind != "database":
            raise SecurityError(SYNTAX_ERROR, f"{spec.action.value} is not a database privilege")
        graphs = _targets(parser, "DATABASE")
    else:
        if spec.kind == "all":
            spec.kind = "graph"
        if spec.kind != "graph":
            raise SecurityError(SYNTAX_ERROR, f"{spec.action.value} needs ON DATABASE or ON DBMS")
        graphs = _targets(parser, "GRAPH")
        if spec.action not in (
            Action.WRITE,
            Action.ALL_GRAPH,
            Action.SET_LABEL,
            Action.REMOVE_LABEL,
        ):
            segments = _segment(parser, spec)
        else:
            segments = [_Segment(NODES, None), _Segment(RELATIONSHIPS, None)]
    parser.expect("FROM" if verb == "REVOKE" else "TO")
    roles = parser.names("a role name")
    parser.end()
    context.require(Action.PRIVILEGE_MANAGEMENT)
    for role in roles:
        if role not in context.state.roles:
            raise SecurityError(
                INVALID_ARGUMENTS,
                f"Failed to {verb.lower()} privilege to role '{role}': Role does not exist.",
            )
    if spec.action in (Action.WRITE, Action.ALL_GRAPH):
        segments = [_Segment(ELEMENTS, None)]
    commands: list[Command] = []
    for grant in revoke_which:
        if verb == "REVOKE" and not grant and spec.action is Action.MERGE:
            continue  # there is no DENY MERGE to revoke
        rules = _expand(spec, grant, graphs, segments)
        op = "revoke_privilege" if verb == "REVOKE" else "grant_privilege"
        for role in roles:
            commands.extend(Command(op, {"role": role, "rule": r.to_json()}) for r in rules)
    return AdminResult(commands=commands, kind=verb, target=",".join(roles))
