"""The engine: parse (cached), analyze, execute, and package the result.

`Engine.run(view, query, parameters, privileges)` executes one statement against a
`GraphView` and returns a `Result` with columns, rows, Neo4j counters and the `WriteSet`
that the caller must apply (on the leader: propose to Raft). The engine never applies the
write set itself. A `Transaction` runs several statements over one `TxState`, so later
statements read the pending writes of earlier ones; its write set is that of all of them.

With a `PrivilegeSet` (a restricted user) the statement reads through `cypher.secure`'s
filtered view and its writes and schema commands are checked by a `WriteGuard`; `None`
(unrestricted) takes exactly the unfiltered path.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cypher import ast
from cypher.errors import CypherError
from cypher.executor import Context, Executor, Limits, Procedure
from cypher.parser import parse
from cypher.plan import PlanOperator, describe
from cypher.semantic import Analysis, analyze
from cypher.txstate import TxState
from cypher.values import Node, NodeRef, Path, PathValue, Relationship, RelRef
from store import writeset as ws
from store.view import GraphView

if TYPE_CHECKING:
    from cluster.security.privileges import PrivilegeSet

PLAN_CACHE_SIZE = 1_000


@dataclass(frozen=True, slots=True)
class Result:
    columns: list[str]
    rows: list[list[Any]]
    counters: dict[str, int]
    write_set: ws.WriteSet = field(default_factory=ws.WriteSet)
    plan: PlanOperator | None = None
    """EXPLAIN: the plan with estimated rows; PROFILE: with the actual rows too."""


@dataclass(frozen=True, slots=True)
class _Plan:
    statement: ast.Statement
    analysis: Analysis
    projections: dict[int, Any] = field(default_factory=dict)
    """What each run's executor works out once per projection (``Executor.projections``)."""


def _builtin_procedures() -> dict[str, Procedure]:
    def labels(ctx: Context, args: list[Any]) -> Iterable[dict[str, Any]]:
        found = set(ctx.tx.view.labels())
        for node_id in ctx.tx.nodes:
            if ctx.tx.node_exists(node_id):
                found |= ctx.tx.node_labels(node_id)
        return [{"label": label} for label in sorted(found)]

    def types(ctx: Context, args: list[Any]) -> Iterable[dict[str, Any]]:
        found = set(ctx.tx.view.relationship_types())
        found |= {ctx.tx.rel_type(r) for r in ctx.tx.created_rels if not ctx.tx.is_deleted_rel(r)}
        return [{"relationshipType": name} for name in sorted(found)]

    def keys(ctx: Context, args: list[Any]) -> Iterable[dict[str, Any]]:
        found = set(ctx.tx.view.property_keys())
        return [{"propertyKey": name} for name in sorted(found)]

    def components(ctx: Context, args: list[Any]) -> Iterable[dict[str, Any]]:
        return [{"name": "Quiver", "versions": ["0.1.0"], "edition": "community"}]

    return {
        "db.labels": Procedure("db.labels", [], [("label", "STRING?")], labels),
        "db.relationshiptypes": Procedure(
            "db.relationshipTypes", [], [("relationshipType", "STRING?")], types
        ),
        "db.propertykeys": Procedure("db.propertyKeys", [], [("propertyKey", "STRING?")], keys),
        "dbms.components": Procedure(
            "dbms.components",
            [],
            [("name", "STRING?"), ("versions", "LIST?"), ("edition", "STRING?")],
            components,
        ),
    }


_SIGNATURE = re.compile(r"^\s*([\w.]+)\s*\((.*?)\)\s*::\s*\((.*?)\)\s*:?\s*$", re.S)


def parse_signature(signature: str) -> tuple[str, list[tuple[str, str]], list[tuple[str, str]]]:
    """Parse `name(in :: TYPE?) :: (out :: TYPE?)` as the TCK writes procedure signatures."""
    m = _SIGNATURE.match(signature)
    if not m:
        raise ValueError(f"bad procedure signature {signature!r}")

    def fields(text: str) -> list[tuple[str, str]]:
        result = []
        for part in text.split(","):
            if part.strip():
                name, kind = part.split("::")
                result.append((name.strip(), kind.strip()))
        return result

    return m.group(1), fields(m.group(2)), fields(m.group(3))


class Engine:
    """Runs Cypher statements. Thread-safe; keeps a bounded cache of analysed statements."""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()
        self.procedures = _builtin_procedures()
        self._cache: OrderedDict[str, _Plan] = OrderedDict()
        self._lock = threading.Lock()

    def register_procedure(
        self,
        signature: str,
        function: Callable[[Context, list[Any]], Iterable[Mapping[str, Any]]],
    ) -> None:
        name, inputs, outputs = parse_signature(signature)
        self.procedures[name.lower()] = Procedure(name, inputs, outputs, function)  # type: ignore[arg-type]
        with self._lock:
            self._cache.clear()

    def plan(self, query: str) -> _Plan:
        with self._lock:
            plan = self._cache.get(query)
            if plan is not None:
                self._cache.move_to_end(query)
                return plan
        statement = parse(query)
        plan = _Plan(statement, analyze(statement, self.procedures))
        with self._lock:
            self._cache[query] = plan
            while len(self._cache) > PLAN_CACHE_SIZE:
                self._cache.popitem(last=False)
        return plan

    def run(
        self,
        view: GraphView,
        query: str,
        parameters: Mapping[str, Any] | None = None,
        privileges: PrivilegeSet | None = None,
    ) -> Result:
        """One statement; with `privileges`, as a user restricted by them (None: all)."""
        tx = TxState(view) if privileges is None else _restricted(view, privileges)
        columns, rows, plan = self._execute(tx, query, parameters)
        write_set = tx.finish()
        return Result(columns, _public_rows(tx, rows), dict(tx.counters), write_set, plan)

    def begin(self, view: GraphView, privileges: PrivilegeSet | None = None) -> Transaction:
        tx = TxState(view) if privileges is None else _restricted(view, privileges)
        return Transaction(self, tx, explicit=True)

    def _execute(
        self,
        tx: TxState,
        query: str,
        parameters: Mapping[str, Any] | None,
        explicit: bool = False,
    ) -> tuple[list[str], list[list[Any]], PlanOperator | None]:
        plan = self.plan(query)
        statement = plan.statement
        if explicit and plan.analysis.in_transactions:
            # Neo4j's own error (and code) for this case.
            raise CypherError(
                "A query with 'CALL { ... } IN TRANSACTIONS' can only be executed in an "
                "implicit transaction, but tried to execute in an explicit transaction.",
                "ExecutionFailed",
                kind="ExecutionFailed",
            )
        params = dict(parameters or {})
        if isinstance(statement.body, ast.SchemaCommand):
            if statement.mode == "EXPLAIN":
                return [], [], PlanOperator("SchemaCommand", statement.body.action, 0.0)
            if statement.body.action in ("show_procedures", "show_functions"):
                return (*_callables(statement.body, self.procedures), None)
            return (*_schema(tx, statement.body), None)
        star_columns = plan.analysis.star_columns
        description = by_clause = None
        if statement.mode is not None:
            description, by_clause = describe(statement.body, tx.view, star_columns)
        if statement.mode == "EXPLAIN":
            # Nothing runs: no rows, no writes.
            return _columns(statement.body, star_columns, self.procedures), [], description
        executor = Executor(
            tx, params, self.procedures, star_columns, self.limits, plan.projections
        )
        if statement.mode == "PROFILE":
            executor.clause_rows = {}
        try:
            columns, rows = executor.run_query(statement.body)
        except RecursionError:
            raise CypherError("query nested too deeply", "NestingTooDeep") from None
        except CypherError:
            raise
        except (ArithmeticError, ValueError, TypeError, LookupError, AttributeError) as error:
            # A bug in the engine must still end the statement with a typed error.
            raise CypherError(
                f"internal error: {type(error).__name__}: {error}",
                "ExecutionFailed",
                kind="ExecutionFailed",
            ) from error
        if description is not None and by_clause is not None and executor.clause_rows is not None:
            # Pattern steps first: where a step also ends its clause, the clause's count
            # (after WHERE) is the operator's output.
            for key in sorted(by_clause, key=lambda k: isinstance(k, int)):
                by_clause[key].rows = executor.clause_rows.get(key, 0)
            description.rows = len(rows)
        return columns, rows, description


class Transaction:
    """Several statements over one transaction state; `commit()` returns the write set."""

    def __init__(self, engine: Engine, tx: TxState, explicit: bool = False) -> None:
        self.engine = engine
        self.tx = tx
        self.explicit = explicit
        """A client's explicit transaction (`Engine.begin`), where CALL { ... } IN
        TRANSACTIONS is refused; False for a caller that runs one auto-commit statement
        over a state of its own (the leader's pending overlay)."""

    def run(self, query: str, parameters: Mapping[str, Any] | None = None) -> Result:
        if self.tx.guard is not None:
            from cypher.secure import SecureView

            # Commits since the last statement may have hidden what it saw: read afresh.
            self.tx.forget_reads()
            if isinstance(self.tx.view, SecureView):
                self.tx.view.new_statement()
        before = dict(self.tx.counters)
        columns, rows, plan = self.engine._execute(
            self.tx, query, parameters, explicit=self.explicit
        )
        counters = {k: v - before[k] for k, v in self.tx.counters.items()}
        return Result(columns, _public_rows(self.tx, rows), counters, plan=plan)

    def commit(self) -> ws.WriteSet:
        return self.tx.finish()


def _restricted(view: GraphView, privileges: PrivilegeSet) -> TxState:
    from cypher.secure import SecureView, WriteGuard

    return TxState(SecureView(view, privileges), guard=WriteGuard(view, privileges))


_SCHEMA_PRIVILEGE = {
    "show_indexes": "SHOW INDEX",
    "show_constraints": "SHOW CONSTRAINT",
    "create_index": "CREATE INDEX",
    "drop_index": "DROP INDEX",
    "create_constraint": "CREATE CONSTRAINT",
    "drop_constraint": "DROP CONSTRAINT",
}


def _callables(
    command: ast.SchemaCommand, procedures: dict[str, Procedure]
) -> tuple[list[str], list[list[Any]]]:
    """SHOW FUNCTIONS / SHOW PROCEDURES [YIELD columns]: the engine's own catalogue."""
    from cypher import catalog

    if command.action == "show_functions":
        rows, default, known = (
            catalog.function_rows(),
            catalog.FUNCTION_COLUMNS,
            catalog.FUNCTION_YIELDABLE,
        )
    else:
        rows, default, known = (
            catalog.procedure_rows(procedures),
            catalog.PROCEDURE_COLUMNS,
            catalog.PROCEDURE_YIELDABLE,
        )
    columns = list(command.properties) or default
    for column in columns:
        if column not in known:
            raise CypherError(
                f"`{column}` is not a column of {command.action[5:].upper()}: {known}",
                "UndefinedVariable",
                kind="SyntaxError",
                phase="compile time",
            )
    return columns, [[row[column] for column in columns] for row in rows]


def _schema(tx: TxState, command: ast.SchemaCommand) -> tuple[list[str], list[list[Any]]]:
    if tx.guard is not None:
        from cluster.security.privileges import Action

        tx.guard.schema(Action(_SCHEMA_PRIVILEGE.get(command.action, "CONSTRAINT MANAGEMENT")))
    view = tx.view
    if command.action == "show_indexes":
        rows: list[list[Any]] = [
            [
                i.name,
                "RANGE",
                "RELATIONSHIP" if i.on_relationships else "NODE",
                [i.label],
                list(i.properties),
                i.unique,
            ]
            for i in view.indexes()
        ]
        return [
            "name",
            "type",
            "entityType",
            "labelsOrTypes",
            "properties",
            "owningConstraint",
        ], rows
    if command.action == "show_constraints":
        rows = [[c.name, c.kind, [c.label], list(c.properties)] for c in view.constraints()]
        return ["name", "type", "labelsOrTypes", "properties"], rows
    if command.action == "create_index":
        name = command.name or f"index_{command.label}_{'_'.join(command.properties)}"
        if any(i.name == name for i in view.indexes()) or any(
            i.label == command.label and i.properties == command.properties for i in view.indexes()
        ):
            if command.if_not_exists:
                return [], []
            raise CypherError(
                f"an equivalent index already exists: {name}",
                "IndexAlreadyExists",
                kind="SemanticError",
            )
        tx.add_schema_operation(
            ws.CreateIndex(name, command.label, command.properties, command.on_relationships),
            "indexes_added",
        )
        return [], []
    if command.action == "create_constraint":
        name = command.name or f"constraint_{command.label}_{'_'.join(command.properties)}"
        if any(c.name == name for c in view.constraints()):
            if command.if_not_exists:
                return [], []
            raise CypherError(
                f"constraint {name} already exists", "ConstraintAlreadyExists", kind="SemanticError"
            )
        _check_existing_data_is_unique(tx, command.label, command.properties, name)
        tx.add_schema_operation(
            ws.CreateUniqueConstraint(name, command.label, command.properties),
            "constraints_added",
        )
        return [], []
    if command.action == "drop_index":
        if not any(i.name == command.name for i in view.indexes()):
            if command.if_exists:
                return [], []
            raise CypherError(
                f"no index named {command.name}", "IndexNotFound", kind="SemanticError"
            )
        tx.add_schema_operation(ws.DropIndex(command.name or ""), "indexes_removed")
        return [], []
    if not any(c.name == command.name for c in view.constraints()):
        if command.if_exists:
            return [], []
        raise CypherError(
            f"no constraint named {command.name}", "ConstraintNotFound", kind="SemanticError"
        )
    tx.add_schema_operation(ws.DropConstraint(command.name or ""), "constraints_removed")
    return [], []


def _columns(
    query: ast.Query, star_columns: dict[int, list[str]], procedures: dict[str, Procedure]
) -> list[str]:
    """The columns a query would return, known without running it (for EXPLAIN)."""
    final = query.parts[0].clauses[-1]
    if isinstance(final, ast.Return):
        projection = final.projection
        names = list(star_columns.get(id(projection), [])) if projection.star else []
        return names + [item.alias or item.text for item in projection.items]
    if isinstance(final, ast.Call):
        if final.yields is not None:
            return [alias for _, alias in final.yields]
        procedure = procedures.get(final.procedure.lower())
        return [name for name, _ in procedure.outputs] if procedure else []
    return []


def _check_existing_data_is_unique(
    tx: TxState, label: str, properties: tuple[str, ...], name: str
) -> None:
    """A uniqueness constraint is created only over data that already satisfies it."""
    from cypher.values import group_key

    seen: dict[object, int] = {}
    if tx.guard is None:
        candidates = tx.node_ids_by_label(label)
    else:
        # The whole graph: data the user cannot see must satisfy the constraint too.
        candidates = iter(sorted({*tx.base_view.node_ids_by_label(label), *tx.touched_nodes}))
    for node_id in candidates:
        if tx.is_deleted_node(node_id):
            continue
        if tx.guard is None or node_id in tx.touched_nodes:
            if label not in tx.node_labels(node_id):
                continue
            # Restricted: with the values the user cannot read, which must be unique too.
            props = (
                tx.node_properties(node_id)
                if tx.guard is None
                else tx.constraint_properties(node_id)
            )
        else:
            record = tx.base_view.node(node_id)
            if record is None:
                continue
            props = dict(record.properties)
        values = [props.get(key) for key in properties]
        if any(value is None for value in values):
            continue
        key = tuple(group_key(value) for value in values)
        other = seen.setdefault(key, node_id)
        if other != node_id:
            # A restricted user must not learn the ids of nodes they may not see.
            which = f"node {other} and node {node_id} both" if tx.guard is None else "two nodes"
            raise CypherError(
                f"unable to create constraint {name}: {which} "
                f"have label `{label}` and the same values for {list(properties)}",
                "ConstraintCreationFailed",
                kind="ConstraintCreationFailed",
            )


_PLAIN = frozenset((int, str, float, bool, type(None)))
"""Types of values that are their own public form (most of what a result holds)."""


def _public_rows(tx: TxState, rows: list[list[Any]]) -> list[list[Any]]:
    cache: dict[Any, Any] = {}
    plain = _PLAIN
    try:
        return [
            [value if type(value) in plain else _public(tx, value, cache) for value in row]
            for row in rows
        ]
    except RecursionError:
        # A value the statement nested in itself (reduce(x = [], i IN range(1, 100000) |
        # [x])): no face could send it anyway (their depth bound is 64).
        raise CypherError(
            "a returned value is nested too deeply", "NestingTooDeep", kind="ResourceLimit"
        ) from None


def _public(tx: TxState, value: Any, cache: dict[Any, Any]) -> Any:
    if isinstance(value, NodeRef):
        found = cache.get(value)
        if found is None:
            data = tx.nodes.get(value.id) or tx._node(value.id)
            labels = frozenset(data.labels) if data else frozenset()
            props = dict(data.properties) if data else {}
            if tx.is_deleted_node(value.id):
                labels, props = frozenset(), {}
            found = Node(value.id, labels, props)
            cache[value] = found
        return found
    if isinstance(value, RelRef):
        found = cache.get(value)
        if found is None:
            data = tx.rels.get(value.id) or tx._rel(value.id)
            assert data is not None
            props = {} if tx.is_deleted_rel(value.id) else dict(data.properties)
            found = Relationship(value.id, data.type, data.start, data.end, props)
            cache[value] = found
        return found
    if isinstance(value, PathValue):
        return Path(
            tuple(_public(tx, n, cache) for n in value.nodes),
            tuple(_public(tx, r, cache) for r in value.rels),
        )
    if isinstance(value, list):
        return [_public(tx, v, cache) for v in value]
    if isinstance(value, dict):
        return {k: _public(tx, v, cache) for k, v in value.items()}
    return value
