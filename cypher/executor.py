"""The executor: clauses as streams of rows over the transaction state.

Reading clauses are generators; an updating clause first drains its input (so that a
statement never reads the writes of its own later rows, as in Neo4j's eager plans), then
applies its writes to `TxState`. Pattern matching starts from the cheapest node (a bound
variable, an index seek, the smallest label, or a scan) and expands outwards, keeping
relationships unique within a MATCH. Every loop is bounded by `Limits`.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from cypher import ast
from cypher.errors import CypherError, argument_error, resource_error, type_error
from cypher.expressions import AGGREGATES, evaluate, evaluate_predicate
from cypher.txstate import TxState
from cypher.values import (
    NodeRef,
    PathValue,
    RelRef,
    SortKey,
    equals,
    group_key,
    is_number,
    order_compare,
    type_name,
)
from store import values as sv
from store.view import Direction

Row = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Limits:
    max_rows: int = 2_000_000
    """Rows any one materialised intermediate result may hold."""
    max_expansions: int = 5_000_000
    """Relationship expansions one statement may make (variable-length and shortest path)."""
    max_var_length: int = 1_000


CHECK_EVERY_STEPS = 1024
"""How often a statement asks its guard (`statement_guard`) whether it may go on: every
1024 rows or expansions, often enough to stop within milliseconds, rarely enough to cost
nothing measurable (a counter per row)."""

_guard = threading.local()


@contextmanager
def statement_guard(check: Callable[[], None]) -> Iterator[None]:
    """Statements that begin in this thread inside the block call `check` every
    ``CHECK_EVERY_STEPS`` steps of work (rows produced, relationships expanded, list items
    built); `check` stops the statement by raising a `CypherError` (a deadline passed, or
    the graph's writer waits). Outside any block a statement runs unchecked."""
    previous = getattr(_guard, "check", None)
    _guard.check = check
    try:
        yield
    finally:
        _guard.check = previous


def current_guard() -> Callable[[], None] | None:
    """The check of the innermost `statement_guard` block of this thread (None: none)."""
    return getattr(_guard, "check", None)


@dataclass
class Procedure:
    name: str
    inputs: list[tuple[str, str]]
    outputs: list[tuple[str, str]]
    function: Callable[[Context, list[Any]], Iterable[dict[str, Any]]]


@dataclass
class Context:
    tx: TxState
    parameters: dict[str, Any]
    executor: Executor
    statement_time_ms: int = field(default_factory=lambda: int(time.time() * 1000))
    aggregates: dict[int, Any] | None = None


_ProjectionShape = tuple[list[tuple[str, ast.Expr]], list[str], list[ast.Expr]]
"""A projection's items (name, expression), its columns and its aggregate expressions."""

_DIRECTIONS = {"out": Direction.OUTGOING, "in": Direction.INCOMING, "both": Direction.BOTH}
_FLIP = {"out": "in", "in": "out", "both": "both"}


class Executor:
    def __init__(
        self,
        tx: TxState,
        parameters: dict[str, Any],
        procedures: dict[str, Procedure],
        star_columns: dict[int, list[str]],
        limits: Limits,
        projections: dict[int, _ProjectionShape] | None = None,
    ) -> None:
        self.tx = tx
        self.ctx = Context(tx, parameters, self)
        self.procedures = procedures
        self.star_columns = star_columns
        self.projections: dict[int, _ProjectionShape] = {} if projections is None else projections
        """id(projection) -> its items, columns and aggregates: the same for every run of
        one analysed statement (the engine passes its plan's, which keeps the AST alive)."""
        self.limits = limits
        self.expansions = 0
        self._label_counts: dict[str | None, int] = {}
        self._exact_seek = False
        """Set by _node_candidates when its nodes need no label or property check."""
        self.clause_rows: dict[Any, int] | None = None
        """PROFILE's row counts (None: not profiling), under cypher.plan's operator keys."""
        self._check: Callable[[], None] | None = getattr(_guard, "check", None)
        self._steps = 0

    def step(self) -> None:
        """One step of work: every ``CHECK_EVERY_STEPS``, the statement's guard decides
        whether it goes on (see `statement_guard`)."""
        self._steps += 1
        if not self._steps % CHECK_EVERY_STEPS and self._check is not None:
            self._check()

    def advance(self, steps: int) -> None:
        """`steps` steps of work done at once (a chunk of a list built in C): the guard is
        asked if they crossed a multiple of ``CHECK_EVERY_STEPS``."""
        before = self._steps
        self._steps += steps
        if self._check is not None and (
            self._steps // CHECK_EVERY_STEPS != before // CHECK_EVERY_STEPS
        ):
            self._check()

    # -- queries ------------------------------------------------------------------------------

    def run_query(self, query: ast.Query) -> tuple[list[str], list[list[Any]]]:
        columns: list[str] = []
        all_rows: list[list[Any]] = []
        distinct = False
        for index, part in enumerate(query.parts):
            part_columns, rows = self.run_single(part, [{}])
            if index == 0:
                columns = part_columns
            all_rows.extend([row.get(c) for c in part_columns] for row in rows)
            self._check_size(len(all_rows))
            if index > 0 and not query.union_all[index - 1]:
                distinct = True
        if distinct:
            seen = set()
            unique = []
            for row in all_rows:
                key = tuple(group_key(v) for v in row)
                if key not in seen:
                    seen.add(key)
                    unique.append(row)
            all_rows = unique
        return columns, all_rows

    def run_single(
        self, query: ast.SingleQuery, seed: Iterable[Row]
    ) -> tuple[list[str], list[Row]]:
        rows: Iterable[Row] = seed
        columns: list[str] = []
        for clause in query.clauses:
            if isinstance(clause, ast.Return):
                columns, rows = self._projection(clause.projection, rows, None)
            elif isinstance(clause, ast.Call) and clause is query.clauses[-1]:
                columns, rows = self._call(clause, rows, standalone=len(query.clauses) == 1)
            else:
                rows = self._clause(clause, rows)
            if self.clause_rows is not None:
                rows = self._counted(id(clause), rows)
        result = self._materialize(rows)
        final = query.clauses[-1]
        if not isinstance(final, (ast.Return, ast.Call)):
            return [], []
        return columns, result

    def _subquery_call(self, clause: ast.SubqueryCall, rows: list[Row]) -> list[Row]:
        """Each input row runs the subquery (imported by its leading WITH, if any); a
        returning subquery multiplies the row by its rows, a unit subquery passes it once."""
        query = clause.query
        importing = all(isinstance(part.clauses[0], ast.With) for part in query.parts)
        if clause.imports is not None:
            importing = clause.imports == ("*",)
        returns = isinstance(query.parts[0].clauses[-1], ast.Return)
        # Quiver commits the statement as one write set: a batch size is checked, not used.
        batch = clause.batch_size
        if batch is not None and self._count_argument(batch, "OF ... ROWS") < 1:
            raise CypherError(
                "OF ... ROWS must be a positive integer", "InvalidArgumentValue", kind="SyntaxError"
            )
        result: list[Row] = []
        for row in rows:
            if clause.imports is not None and not importing:
                seed = {name: row[name] for name in clause.imports}
            else:
                seed = dict(row) if importing else {}
            if not returns:
                for part in query.parts:
                    self.run_single(part, [dict(seed)])
                result.append(row)
                continue
            seen: set[Any] = set()
            for part in query.parts:
                columns, inner_rows = self.run_single(part, [dict(seed)])
                for inner in inner_rows:
                    if len(query.parts) > 1 and not all(query.union_all):
                        key = tuple(group_key(inner.get(c)) for c in columns)
                        if key in seen:
                            continue
                        seen.add(key)
                    out = dict(row)
                    for name in columns:
                        out[name] = inner.get(name)
                    result.append(out)
            self._check_size(len(result))
        return result

    def _count_hop(self, part: ast.PatternPart, index: int) -> None:
        counts = self.clause_rows
        assert counts is not None
        key = ("rel", id(part), index)
        counts[key] = counts.get(key, 0) + 1

    def _counted(self, key: int, rows: Iterable[Row]) -> Iterator[Row]:
        counts = self.clause_rows
        assert counts is not None
        counts.setdefault(key, 0)
        for row in rows:
            counts[key] += 1
            yield row

    def subquery_count(self, query: ast.Query, row: Row) -> int:
        count = 0
        seen: set[Any] = set()
        distinct = len(query.parts) > 1 and not all(query.union_all)
        for part in query.parts:
            if isinstance(part.clauses[-1], ast.Return):
                columns, rows = self.run_single(part, [dict(row)])
            else:
                # COUNT { MATCH ... } without RETURN counts the rows of its last clause.
                columns, rows = [], self._materialize(self._rows_of(part, row))
            for inner in rows:
                if distinct:
                    key = tuple(group_key(inner.get(c)) for c in columns)
                    if key in seen:
                        continue
                    seen.add(key)
                count += 1
        return count

    def subquery_collect(self, query: ast.Query, row: Row) -> list[Any]:
        """COLLECT { ... }: the values of the one column the subquery returns, in order."""
        values: list[Any] = []
        seen: set[Any] = set()
        distinct = len(query.parts) > 1 and not all(query.union_all)
        for part in query.parts:
            columns, rows = self.run_single(part, [dict(row)])
            for inner in rows:
                value = inner.get(columns[0])
                if distinct:
                    key = group_key(value)
                    if key in seen:
                        continue
                    seen.add(key)
                values.append(value)
            self._check_size(len(values))
        return values

    def _rows_of(self, part: ast.SingleQuery, row: Row) -> Iterable[Row]:
        rows: Iterable[Row] = [dict(row)]
        for clause in part.clauses:
            rows = self._clause(clause, rows)
        return rows

    def subquery_has_rows(self, query: ast.Query, row: Row) -> bool:
        for part in query.parts:
            rows: Iterable[Row] = [dict(row)]
            for clause in part.clauses:
                if isinstance(clause, ast.Return):
                    _, rows = self._projection(clause.projection, rows, None)
                else:
                    rows = self._clause(clause, rows)
            for _ in rows:
                return True
        return False

    def _check_size(self, size: int) -> None:
        if size > self.limits.max_rows:
            raise resource_error(f"an intermediate result exceeded {self.limits.max_rows} rows")

    def _materialize(self, rows: Iterable[Row]) -> list[Row]:
        result = []
        for row in rows:
            self.step()
            result.append(row)
            if len(result) > self.limits.max_rows:
                self._check_size(len(result))
        return result

    def _clause(self, clause: ast.Clause, rows: Iterable[Row]) -> Iterable[Row]:
        if isinstance(clause, ast.Match):
            return self._match(clause, rows)
        if isinstance(clause, ast.With):
            _, out = self._projection(clause.projection, rows, clause.where)
            return out
        if isinstance(clause, ast.Unwind):
            return self._unwind(clause, rows)
        if isinstance(clause, ast.Create):
            return self._create(clause, self._materialize(rows))
        if isinstance(clause, ast.Merge):
            return self._merge(clause, self._materialize(rows))
        if isinstance(clause, ast.SetClause):
            return self._set(clause.items, self._materialize(rows))
        if isinstance(clause, ast.Remove):
            return self._remove(clause, self._materialize(rows))
        if isinstance(clause, ast.Delete):
            return self._delete(clause, self._materialize(rows))
        if isinstance(clause, ast.Call):
            return self._call(clause, rows, standalone=False)[1]
        if isinstance(clause, ast.SubqueryCall):
            return self._subquery_call(clause, self._materialize(rows))
        if isinstance(clause, ast.Foreach):
            return self._foreach(clause, self._materialize(rows))
        raise CypherError(f"unsupported clause {type(clause).__name__}", "UnsupportedClause")

    # -- MATCH --------------------------------------------------------------------------------

    def _match(self, clause: ast.Match, rows: Iterable[Row]) -> Iterator[Row]:
        ctx = self.ctx
        new_vars = _pattern_variables(clause.patterns)
        for row in rows:
            found = False
            for out in self.patterns_rows(clause.patterns, row):
                self.step()
                if clause.where is None or evaluate_predicate(clause.where, out, ctx) is True:
                    found = True
                    yield out
            if clause.optional and not found:
                out = dict(row)
                for name in new_vars:
                    out.setdefault(name, None)
                yield out

    def patterns_rows(self, parts: tuple[ast.PatternPart, ...], row: Row) -> Iterator[Row]:
        def match_from(index: int, current: Row, used: frozenset[int]) -> Iterator[Row]:
            if index == len(parts):
                yield current
                return
            for out, now_used, _ in self._match_part(parts[index], current, used):
                yield from match_from(index + 1, out, now_used)

        if len(parts) == 1:
            for out, _, _ in self._match_part(parts[0], row, frozenset(), keep_used=False):
                yield out
            return
        yield from match_from(0, row, frozenset())

    def pattern_rows(self, part: ast.PatternPart, row: Row) -> Iterator[Row]:
        for out, _, _ in self._match_part(part, row, frozenset(), keep_used=False):
            yield out

    def pattern_paths(self, part: ast.PatternPart, row: Row, limit: int | None) -> list[Any]:
        paths = []
        for _, _, path in self._match_part(part, row, frozenset(), want_path=True):
            paths.append(path)
            if limit is not None and len(paths) >= limit:
                break
        if part.shortest == "shortest":
            return paths[0] if paths else None  # type: ignore[return-value]
        return paths

    def _match_part(
        self,
        part: ast.PatternPart,
        row: Row,
        used: frozenset[int],
        want_path: bool = False,
        keep_used: bool = True,
    ) -> Iterator[tuple[Row, frozenset[int], PathValue | None]]:
        """Each match of `part` extending `row`: the row, the relationships used so far
        (with `keep_used`; else `used` as given: a caller with no later part to match needs
        no set per match) and the path (when wanted or named)."""
        if part.shortest is not None:
            yield from self._shortest(part, row, used)
            return
        nodes = part.nodes
        start = self._choose_start(part, row)
        steps = [(i, 1) for i in range(start, len(part.rels))] + [
            (i, -1) for i in range(start - 1, -1, -1)
        ]
        need_path = want_path or part.variable is not None
        start_pattern = nodes[start]
        candidates = self._node_candidates(start_pattern, row)
        exact, self._exact_seek = self._exact_seek, False
        counts = self.clause_rows
        for node in candidates:
            self.step()
            if exact:
                bound = row
                if start_pattern.variable is not None:
                    bound = dict(row)
                    bound[start_pattern.variable] = node
            else:
                bound = self._bind_node(start_pattern, node, row)
                if bound is None:
                    continue
            if counts is not None:
                key = ("start", id(part))
                counts[key] = counts.get(key, 0) + 1
            node_vals: list[NodeRef | None] = [None] * len(nodes)
            node_vals[start] = node
            # Each hop's relationships, for the path alone: none kept when no path is built.
            segments: list[Any] | None = [None] * len(part.rels) if need_path else None
            if not steps:
                out = bound if bound is not row else dict(row)
                path = PathValue((node,), ()) if need_path else None
                if part.variable is not None:
                    out[part.variable] = path
                yield out, used, path
                continue
            walk = self._walk(part, steps, 0, bound, node_vals, segments, used, keep_used)
            for out, now_used in walk:
                path = None
                if segments is not None:
                    path = _build_path(node_vals, segments)
                    if part.variable is not None:
                        out[part.variable] = path
                yield out, now_used, path

    def _walk(
        self,
        part: ast.PatternPart,
        steps: list[tuple[int, int]],
        k: int,
        row: Row,
        node_vals: list[NodeRef | None],
        segments: list[Any] | None,
        used: frozenset[int],
        keep_used: bool = True,
    ) -> Iterator[tuple[Row, frozenset[int]]]:
        if k == len(steps):
            # Consumers read node_vals and segments before resuming this generator.
            yield dict(row), used
            return
        index, way = steps[k]
        rel_pattern = part.rels[index]
        source = node_vals[index] if way > 0 else node_vals[index + 1]
        target_index = index + 1 if way > 0 else index
        target_pattern = part.nodes[target_index]
        direction = rel_pattern.direction if way > 0 else _FLIP[rel_pattern.direction]
        assert source is not None
        if (
            rel_pattern.length is None
            and rel_pattern.properties is None
            and rel_pattern.where is None
        ):
            # The hot path (one typed hop, no property filter): no per-hop lists or generator.
            source_id = source.id
            plain_target = (
                target_pattern.variable is None
                and not target_pattern.labels
                and target_pattern.label_expression is None
                and target_pattern.properties is None
            )
            rel_variable = rel_pattern.variable
            last = k + 1 == len(steps)
            for rel in self.tx.relationships(
                source_id, _DIRECTIONS[direction], rel_pattern.types or None
            ):
                self.step()
                rel_id = rel.id
                if rel_id in used:
                    continue
                if direction == "in":
                    end = NodeRef(rel.start)
                else:
                    end = NodeRef(rel.end if rel.start == source_id else rel.start)
                bound = row if plain_target else self._bind_node(target_pattern, end, row)
                if bound is None:
                    continue
                if rel_variable is not None:
                    rel_ref = RelRef(rel_id)
                    existing = bound.get(rel_variable, _MISSING)
                    if existing is not _MISSING:
                        if existing != rel_ref:
                            continue
                    else:
                        bound = dict(bound)
                        bound[rel_variable] = rel_ref
                    if segments is not None:
                        segments[index] = ([rel_ref], _NO_NODES, way)
                elif segments is not None:
                    segments[index] = ([RelRef(rel_id)], _NO_NODES, way)
                node_vals[target_index] = end
                if self.clause_rows is not None:
                    self._count_hop(part, index)
                if last:
                    # Consumers read node_vals and segments before resuming this generator.
                    # A row bound here is the consumer's own; the input row is copied.
                    out = dict(row) if bound is row else bound
                    yield out, (used | {rel_id}) if keep_used else used
                else:
                    yield from self._walk(
                        part, steps, k + 1, bound, node_vals, segments, used | {rel_id}, keep_used
                    )
            node_vals[target_index] = None
            if segments is not None:
                segments[index] = None
            return
        for rels, inner_nodes, end in self._expand(rel_pattern, source, direction, row, used):
            self.step()
            bound = self._bind_node(target_pattern, end, row)
            if bound is None:
                continue
            if rel_pattern.variable is not None:
                ordered = rels if way > 0 else rels[::-1]
                value: Any = ordered[0] if rel_pattern.length is None else list(ordered)
                existing = bound.get(rel_pattern.variable, _MISSING)
                if existing is not _MISSING:
                    if existing is None or equals(existing, value) is not True:
                        continue
                else:
                    bound = dict(bound)
                    bound[rel_pattern.variable] = value
            now_used = used.union(r.id for r in rels)
            node_vals[target_index] = end
            if self.clause_rows is not None:
                self._count_hop(part, index)
            if segments is not None:
                segments[index] = (rels, inner_nodes, way)
            yield from self._walk(
                part, steps, k + 1, bound, node_vals, segments, now_used, keep_used
            )
            node_vals[target_index] = None
            if segments is not None:
                segments[index] = None

    def _choose_start(self, part: ast.PatternPart, row: Row) -> int:
        nodes = part.nodes
        if len(nodes) == 1:
            return 0
        seek = -1
        for index, node in enumerate(nodes):
            if node.variable is not None and isinstance(row.get(node.variable), NodeRef):
                return index
            if seek < 0 and node.labels and self._seekable(node):
                seek = index
        if seek >= 0:
            # An equality seek finds few nodes; counting labels would cost more than it saves.
            return seek
        best = 0
        best_cost = math.inf
        for index, node in enumerate(nodes):
            cost: float = self._start_count(None) + 1
            if node.labels:
                cost = min(self._start_count(label) for label in node.labels)
            if cost < best_cost:
                best, best_cost = index, cost
        return best

    def _seekable(self, node: ast.NodePattern) -> bool:
        if not isinstance(node.properties, ast.MapLiteral):
            return False
        view = self.tx.view
        return any(
            view.has_index(label, key) for key, _ in node.properties.items for label in node.labels
        )

    def _start_count(self, label: str | None) -> int:
        """``_count`` as the user sees it, to choose where a pattern starts: the start
        decides the order of the pattern's rows, and an order decided by nodes the user
        cannot see would tell of them (a restricted user's visible count costs a scan of
        the label, memoised by the filtered view for the statement)."""
        if self.tx.guard is None:
            return self._count(label)
        return self.tx.view.count_nodes(label)

    def _count(self, label: str | None) -> int:
        """Committed node count of a label, memoised for the statement (a planning estimate).

        Read from the unfiltered graph: it only picks which label of a node to scan, which
        changes neither the rows nor their order, and a restricted user's filtered count
        would cost a scan."""
        count = self._label_counts.get(label)
        if count is None:
            count = self.tx.base_view.count_nodes(label)
            self._label_counts[label] = count
        return count

    def _node_candidates(self, pattern: ast.NodePattern, row: Row) -> Iterable[NodeRef]:
        if pattern.variable is not None and pattern.variable in row:
            value = row[pattern.variable]
            if value is None:
                return ()
            if not isinstance(value, NodeRef):
                raise type_error(f"variable `{pattern.variable}` is a {type_name(value)}")
            return (value,) if not self.tx.is_deleted_node(value.id) else ()
        if pattern.labels:
            if isinstance(pattern.properties, ast.MapLiteral):
                for key, expr in pattern.properties.items:
                    for label in pattern.labels:
                        if self.tx.view.has_index(label, key):
                            value = evaluate(expr, row, self.ctx)
                            if value is None:
                                return ()
                            seek = self.tx.node_ids_by_property(label, key, value)
                            if seek is not None:
                                # The committed index decided label and equality itself:
                                # with nothing else to check, binding needs no record.
                                self._exact_seek = (
                                    not self.tx.operations
                                    and not self.tx.deleted_nodes
                                    and len(pattern.labels) == 1
                                    and len(pattern.properties.items) == 1
                                    and pattern.label_expression is None
                                    and pattern.where is None
                                )
                                return (NodeRef(i) for i in seek)
            label = min(pattern.labels, key=self._count)
            return (NodeRef(i) for i in self.tx.node_ids_by_label(label))
        if pattern.label_expression is not None:
            any_of = pattern.label_expression.any_of()
            if any_of is not None:
                # `:A|B`: the union of the label scans, ascending like any scan.
                found: set[int] = set()
                for label in any_of:
                    found.update(self.tx.node_ids_by_label(label))
                return (NodeRef(i) for i in sorted(found))
        return (NodeRef(i) for i in self.tx.node_ids())

    def _bind_node(self, pattern: ast.NodePattern, node: NodeRef, row: Row) -> Row | None:
        if pattern.variable is not None:
            existing = row.get(pattern.variable, _MISSING)
            if existing is not _MISSING and existing != node:
                return None
        if pattern.labels:
            labels = self.tx.node_labels(node.id)
            if not all(label in labels for label in pattern.labels):
                return None
        if pattern.label_expression is not None and not pattern.label_expression.matches(
            self.tx.node_labels(node.id)
        ):
            return None
        if pattern.properties is not None and not self._properties_match(
            pattern.properties, self.tx.node_properties(node.id), row
        ):
            return None
        if pattern.variable is not None and pattern.variable not in row:
            row = dict(row)
            row[pattern.variable] = node
        if (
            pattern.where is not None
            and evaluate_predicate(pattern.where, row, self.ctx) is not True
        ):
            return None
        return row

    def _properties_match(self, expr: ast.Expr, actual: dict[str, Any], row: Row) -> bool:
        wanted = evaluate(expr, row, self.ctx)
        if wanted is None:
            return True
        if not isinstance(wanted, dict):
            raise type_error("pattern properties must be a map")
        return all(equals(actual.get(key), value) is True for key, value in wanted.items())

    def _expand(
        self,
        pattern: ast.RelPattern,
        source: NodeRef,
        direction: str,
        row: Row,
        used: frozenset[int],
    ) -> Iterator[tuple[list[RelRef], list[NodeRef], NodeRef]]:
        tx = self.tx
        types = pattern.types or None
        wanted = None
        if pattern.properties is not None:
            wanted = evaluate(pattern.properties, row, self.ctx)

        def rel_ok(rel_id: int) -> bool:
            if pattern.where is not None:
                bound = row
                if pattern.variable is not None:
                    bound = {**row, pattern.variable: RelRef(rel_id)}
                if evaluate_predicate(pattern.where, bound, self.ctx) is not True:
                    return False
            if wanted is None:
                return True
            props = tx.rel_properties(rel_id)
            return all(equals(props.get(k), v) is True for k, v in wanted.items())

        if pattern.length is None:
            for rel in tx.relationships(source.id, _DIRECTIONS[direction], types):
                if rel.id in used or not rel_ok(rel.id):
                    continue
                other = rel.end if rel.start == source.id else rel.start
                if direction == "in":
                    other = rel.start
                yield [RelRef(rel.id)], [], NodeRef(other)
            return
        low, high = pattern.length
        low = 1 if low is None else low
        high = self.limits.max_var_length if high is None else high
        stack: list[tuple[NodeRef, list[RelRef], list[NodeRef], set[int]]] = [
            (source, [], [], set())
        ]
        results: list[tuple[list[RelRef], list[NodeRef], NodeRef]] = []
        while stack:
            node, rels, inner, seen = stack.pop()
            if low <= len(rels) <= high:
                results.append((rels, inner[:-1] if inner else [], node))
            if len(rels) >= high:
                continue
            expansions = []
            for rel in tx.relationships(node.id, _DIRECTIONS[direction], types):
                self.step()
                self.expansions += 1
                if self.expansions > self.limits.max_expansions:
                    raise resource_error(
                        f"more than {self.limits.max_expansions} relationship expansions"
                    )
                if rel.id in used or rel.id in seen or not rel_ok(rel.id):
                    continue
                other = rel.end if rel.start == node.id else rel.start
                if direction == "in":
                    other = rel.start
                nxt = NodeRef(other)
                expansions.append((nxt, [*rels, RelRef(rel.id)], [*inner, nxt], seen | {rel.id}))
            stack.extend(reversed(expansions))
        yield from results

    def _shortest(
        self, part: ast.PatternPart, row: Row, used: frozenset[int]
    ) -> Iterator[tuple[Row, frozenset[int], PathValue | None]]:
        if len(part.rels) != 1:
            raise CypherError("shortestPath needs exactly one relationship", "InvalidShortestPath")
        rel_pattern = part.rels[0]
        low, high = rel_pattern.length or (1, 1)
        low = 1 if low is None else low
        high = self.limits.max_var_length if high is None else high
        start_pattern, end_pattern = part.nodes
        for start in list(self._node_candidates(start_pattern, row)):
            bound = self._bind_node(start_pattern, start, row)
            if bound is None:
                continue
            for end in list(self._node_candidates(end_pattern, bound)):
                bound2 = self._bind_node(end_pattern, end, bound)
                if bound2 is None:
                    continue
                found = self._bfs(
                    rel_pattern, start, end, low, high, bound2, part.shortest == "all"
                )
                for rels, nodes in found:
                    out = dict(bound2)
                    path = PathValue(tuple(nodes), tuple(rels))
                    if rel_pattern.variable is not None:
                        out[rel_pattern.variable] = list(rels)
                    if part.variable is not None:
                        out[part.variable] = path
                    yield out, used, path

    def _bfs(
        self,
        pattern: ast.RelPattern,
        start: NodeRef,
        end: NodeRef,
        low: int,
        high: int,
        row: Row,
        all_paths: bool,
    ) -> list[tuple[list[RelRef], list[NodeRef]]]:
        frontier: list[tuple[list[RelRef], list[NodeRef]]] = [([], [start])]
        results: list[tuple[list[RelRef], list[NodeRef]]] = []
        depth = 0
        while frontier and depth <= high:
            if depth >= low:
                for rels, nodes in frontier:
                    if nodes[-1] == end:
                        results.append((rels, nodes))
                if results:
                    return results if all_paths else results[:1]
            if depth == high:
                break
            nxt = []
            visited_here = set()
            for rels, nodes in frontier:
                for step_rels, _, other in self._expand(
                    ast.RelPattern(
                        None, pattern.types, pattern.direction, pattern.properties, None
                    ),
                    nodes[-1],
                    pattern.direction,
                    row,
                    frozenset(r.id for r in rels),
                ):
                    self.expansions += 1
                    if self.expansions > self.limits.max_expansions:
                        raise resource_error("shortest path search exceeded its budget")
                    if other in nodes:
                        continue
                    if not all_paths and (other in visited_here):
                        continue
                    visited_here.add(other)
                    nxt.append(([*rels, *step_rels], [*nodes, other]))
            frontier = nxt
            depth += 1
        return results

    # -- projection ---------------------------------------------------------------------------

    def _projection(
        self, projection: ast.Projection, rows: Iterable[Row], where: ast.Expr | None
    ) -> tuple[list[str], Iterable[Row]]:
        ctx = self.ctx
        shape = self.projections.get(id(projection))
        if shape is None:
            shape = self.projections[id(projection)] = self._projection_shape(projection)
        items, columns, aggregates = shape
        columns = list(columns)  # the caller's to keep
        if aggregates:
            projected = self._aggregate(items, aggregates, rows)
        else:
            projected = self._simple_projection(items, rows)
        if projection.distinct:
            projected = _distinct(projected, columns)
        if projection.order:
            projected = self._order(projection, items, projected, bool(aggregates))
        if projection.skip is not None or projection.limit is not None:
            projected = self._skip_limit(projection, projected)
        if where is not None:
            projected = (
                pair
                for pair in projected
                if evaluate_predicate(where, {**pair[1], **pair[0]}, ctx) is True
            )
        out: Iterable[Row] = (pair[0] for pair in projected)
        return columns, out

    def _projection_shape(self, projection: ast.Projection) -> _ProjectionShape:
        items: list[tuple[str, ast.Expr]] = []
        if projection.star:
            for name in self.star_columns.get(id(projection), []):
                items.append((name, ast.Variable(name)))
        for item in projection.items:
            items.append((item.alias or item.text, item.expression))
        columns = [name for name, _ in items]
        aggregates: list[ast.Expr] = []
        for _, expr in items:
            _collect_aggregates(expr, aggregates)
        if aggregates:
            item_exprs = [expr for _, expr in items]
            for sort_item in projection.order:
                if sort_item.expression not in item_exprs:
                    _collect_aggregates(sort_item.expression, aggregates)
        return items, columns, aggregates

    def _simple_projection(
        self, items: list[tuple[str, ast.Expr]], rows: Iterable[Row]
    ) -> Iterator[tuple[Row, Row]]:
        ctx = self.ctx
        for row in rows:
            yield {name: evaluate(expr, row, ctx) for name, expr in items}, row

    def _aggregate(
        self, items: list[tuple[str, ast.Expr]], aggregates: list[ast.Expr], rows: Iterable[Row]
    ) -> Iterator[tuple[Row, Row]]:
        ctx = self.ctx
        keys = [(name, expr) for name, expr in items if not _contains_aggregate(expr)]
        groups: dict[Any, tuple[Row, dict[str, Any], list[_Accumulator]]] = {}
        if keys:
            for row in rows:
                key_values = {name: evaluate(expr, row, ctx) for name, expr in keys}
                group = tuple(group_key(v) for v in key_values.values())
                entry = groups.get(group)
                if entry is None:
                    entry = (row, key_values, [_Accumulator(a, ctx) for a in aggregates])
                    groups[group] = entry
                    self._check_size(len(groups))
                for accumulator in entry[2]:
                    accumulator.feed(row)
        else:
            # One group: no keys to evaluate per row.
            accumulators: list[_Accumulator] | None = None
            for row in rows:
                if accumulators is None:
                    accumulators = [_Accumulator(a, ctx) for a in aggregates]
                    groups[()] = (row, {}, accumulators)
                for accumulator in accumulators:
                    accumulator.feed(row)
        if not groups and not keys:
            groups[()] = ({}, {}, [_Accumulator(a, ctx) for a in aggregates])
        for first_row, key_values, accumulators in groups.values():
            saved = ctx.aggregates
            ctx.aggregates = {id(acc.expr): acc.result() for acc in accumulators}
            first_row = {**first_row, "\0agg": ctx.aggregates}
            try:
                out = {}
                for name, expr in items:
                    if name in key_values and not _contains_aggregate(expr):
                        out[name] = key_values[name]
                    else:
                        out[name] = evaluate(expr, first_row, ctx)
            finally:
                ctx.aggregates = saved
            yield out, first_row

    def _order(
        self,
        projection: ast.Projection,
        items: list[tuple[str, ast.Expr]],
        projected: Iterable[tuple[Row, Row]],
        aggregated: bool,
    ) -> Iterator[tuple[Row, Row]]:
        ctx = self.ctx
        materialized = list(projected)
        self._check_size(len(materialized))
        by_expr = {}
        for name, expr in items:
            by_expr.setdefault(expr, name)
        keyed = []
        for out, original in materialized:
            env = {**original, **out}
            key = []
            for sort_item in projection.order:
                name = by_expr.get(sort_item.expression)
                if name is not None:
                    value = out[name]
                else:
                    saved = ctx.aggregates
                    ctx.aggregates = original.get("\0agg", saved)
                    try:
                        value = evaluate(sort_item.expression, env, ctx)
                    finally:
                        ctx.aggregates = saved
                key.append(value)
            keyed.append((key, out, original))
        for position in range(len(projection.order) - 1, -1, -1):
            ascending = projection.order[position].ascending
            keyed.sort(key=lambda entry: SortKey(entry[0][position]), reverse=not ascending)
        for _, out, original in keyed:
            yield out, original

    def _skip_limit(
        self, projection: ast.Projection, projected: Iterable[tuple[Row, Row]]
    ) -> Iterator[tuple[Row, Row]]:
        skip = self._count_argument(projection.skip, "SKIP") if projection.skip else 0
        limit = self._count_argument(projection.limit, "LIMIT") if projection.limit else None
        if limit == 0:
            return
        for index, pair in enumerate(projected):
            if index < skip:
                continue
            yield pair
            if limit is not None and index + 1 >= skip + limit:
                return

    def _count_argument(self, expr: ast.Expr, clause: str) -> int:
        value = evaluate(expr, {}, self.ctx)
        if isinstance(value, float) and value.is_integer() is False:
            raise CypherError(
                f"{clause} must be a non-negative integer",
                "InvalidArgumentType",
                kind="SyntaxError",
            )
        if not isinstance(value, int) or isinstance(value, bool):
            raise CypherError(
                f"{clause} must be a non-negative integer",
                "InvalidArgumentType",
                kind="SyntaxError",
            )
        if value < 0:
            raise CypherError(
                f"{clause} must be a non-negative integer",
                "NegativeIntegerArgument",
                kind="SyntaxError",
            )
        return value

    # -- UNWIND -------------------------------------------------------------------------------

    def _unwind(self, clause: ast.Unwind, rows: Iterable[Row]) -> Iterator[Row]:
        for row in rows:
            value = evaluate(clause.expression, row, self.ctx)
            if value is None:
                continue
            items = value if isinstance(value, list) else [value]
            for item in items:
                self.step()
                out = dict(row)
                out[clause.variable] = item
                yield out

    # -- writes -------------------------------------------------------------------------------

    def _property_map(self, expr: ast.Expr | None, row: Row) -> dict[str, Any]:
        if expr is None:
            return {}
        value = evaluate(expr, row, self.ctx)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise type_error("properties must be a map")
        for item in value.values():
            _check_property(item)
        return value

    def _create(self, clause: ast.Create, rows: list[Row]) -> list[Row]:
        result = []
        for row in rows:
            out = dict(row)
            for part in clause.patterns:
                self._create_part(part, out)
            result.append(out)
        return result

    def _create_part(self, part: ast.PatternPart, row: Row) -> PathValue:
        nodes: list[NodeRef] = []
        for pattern in part.nodes:
            existing = row.get(pattern.variable) if pattern.variable else None
            if pattern.variable is not None and pattern.variable in row:
                if existing is None:
                    raise CypherError(
                        f"cannot create a relationship with a null node `{pattern.variable}`",
                        "CreateNullNode",
                        kind="SemanticError",
                    )
                if not isinstance(existing, NodeRef):
                    raise type_error(
                        f"expected to find a node at `{pattern.variable}` "
                        f"but found a value of type {type_name(existing)}"
                    )
                nodes.append(existing)
                continue
            props = self._property_map(pattern.properties, row)
            node = NodeRef(self.tx.create_node(pattern.labels, props))
            if pattern.variable is not None:
                row[pattern.variable] = node
            nodes.append(node)
        rels: list[RelRef] = []
        for index, pattern in enumerate(part.rels):
            props = self._property_map(pattern.properties, row)
            start, end = nodes[index], nodes[index + 1]
            if pattern.direction == "in":
                start, end = end, start
            rel = RelRef(self.tx.create_relationship(pattern.types[0], start.id, end.id, props))
            if pattern.variable is not None:
                row[pattern.variable] = rel
            rels.append(rel)
        path = PathValue(tuple(nodes), tuple(rels))
        if part.variable is not None:
            row[part.variable] = path
        return path

    def _foreach(self, clause: ast.Foreach, rows: list[Row]) -> list[Row]:
        """Each row runs the inner clauses once per item of its list, in order, each
        iteration reading the writes of the ones before; the row itself passes unchanged."""
        for row in rows:
            value = evaluate(clause.source, row, self.ctx)
            if value is None:
                continue
            if not isinstance(value, list):
                raise type_error(f"FOREACH expects a list, not a {type_name(value)}")
            for item in value:
                inner = dict(row)
                inner[clause.variable] = item
                current: Iterable[Row] = [inner]
                for sub in clause.clauses:
                    current = self._clause(sub, current)
                    if self.clause_rows is not None:
                        current = self._counted(id(sub), current)
                self._materialize(current)
        return rows

    def _merge(self, clause: ast.Merge, rows: list[Row]) -> list[Row]:
        result = []
        for row in rows:
            self._check_merge_nulls(clause.pattern, row)
            for node_pattern in clause.pattern.nodes:
                bound = row.get(node_pattern.variable) if node_pattern.variable else None
                if bound is not None and not isinstance(bound, NodeRef):
                    raise type_error(
                        f"expected to find a node at `{node_pattern.variable}` "
                        f"but found a value of type {type_name(bound)}"
                    )
            matched = [out for out, _, _ in self._match_part(clause.pattern, row, frozenset())]
            if matched:
                if clause.on_match:
                    self._set(clause.on_match, matched)
                result.extend(matched)
            else:
                out = dict(row)
                self._create_part(clause.pattern, out)
                if clause.on_create:
                    self._set(clause.on_create, [out])
                result.append(out)
            self._check_size(len(result))
        return result

    def _check_merge_nulls(self, part: ast.PatternPart, row: Row) -> None:
        patterns: list[Any] = [*part.nodes, *part.rels]
        for pattern in patterns:
            if pattern.properties is None:
                continue
            if isinstance(pattern, ast.NodePattern) and pattern.variable in row:
                continue
            value = evaluate(pattern.properties, row, self.ctx)
            if isinstance(value, dict):
                for key, item in value.items():
                    if item is None:
                        raise CypherError(
                            f"cannot merge using null property value for {key}",
                            "MergeReadOwnWrites",
                            kind="SemanticError",
                        )

    def _set(self, items: tuple[ast.SetItem, ...], rows: list[Row]) -> list[Row]:
        tx = self.tx
        for row in rows:
            for item in items:
                if item.kind == "prop":
                    target = item.target
                    assert isinstance(target, ast.Property)
                    subject = evaluate(target.subject, row, self.ctx)
                    value = evaluate(item.value, row, self.ctx) if item.value else None
                    self._set_property(subject, target.key, value)
                    continue
                if item.kind == "dynamic":
                    subject, key = self._dynamic_key(item.target, row)
                    value = evaluate(item.value, row, self.ctx) if item.value else None
                    self._set_property(subject, key, value)
                    continue
                subject = evaluate(item.target, row, self.ctx)
                if subject is None:
                    continue
                if item.kind == "labels":
                    if not isinstance(subject, NodeRef):
                        raise type_error("labels can only be set on nodes")
                    for label in item.labels:
                        tx.add_label(subject.id, label)
                    continue
                value = evaluate(item.value, row, self.ctx) if item.value else None
                if isinstance(value, NodeRef):
                    value = dict(tx.node_properties(value.id))
                elif isinstance(value, RelRef):
                    value = dict(tx.rel_properties(value.id))
                if value is None:
                    value = {}
                if not isinstance(value, dict):
                    raise type_error(f"cannot set properties from a {type_name(value)}")
                current = self._entity_properties(subject)
                if item.kind == "replace":
                    for key in list(current):
                        if key not in value or value[key] is None:
                            self._set_property(subject, key, None)
                for key, item_value in value.items():
                    self._set_property(subject, key, item_value)
        return rows

    def _dynamic_key(self, target: ast.Expr, row: Row) -> tuple[Any, str]:
        """`n[key]` in SET or REMOVE: the entity and the property key, which must be a
        string."""
        assert isinstance(target, ast.Subscript)
        subject = evaluate(target.subject, row, self.ctx)
        key = evaluate(target.index, row, self.ctx)
        if not isinstance(key, str):
            raise type_error(f"a dynamic property key must be a STRING, not {type_name(key)}")
        return subject, key

    def _entity_properties(self, subject: Any) -> dict[str, Any]:
        if isinstance(subject, NodeRef):
            return self.tx.node_properties(subject.id)
        if isinstance(subject, RelRef):
            return self.tx.rel_properties(subject.id)
        raise type_error(f"cannot set properties on a {type_name(subject)}")

    def _set_property(self, subject: Any, key: str, value: Any) -> None:
        if subject is None:
            return
        _check_property(value)
        if isinstance(subject, NodeRef):
            self.tx.set_node_property(subject.id, key, value)
        elif isinstance(subject, RelRef):
            self.tx.set_rel_property(subject.id, key, value)
        else:
            raise type_error(f"cannot set a property on a {type_name(subject)}")

    def _remove(self, clause: ast.Remove, rows: list[Row]) -> list[Row]:
        for row in rows:
            for item in clause.items:
                if item.kind == "prop":
                    target = item.target
                    assert isinstance(target, ast.Property)
                    subject = evaluate(target.subject, row, self.ctx)
                    self._set_property(subject, target.key, None)
                elif item.kind == "dynamic":
                    subject, key = self._dynamic_key(item.target, row)
                    self._set_property(subject, key, None)
                else:
                    subject = evaluate(item.target, row, self.ctx)
                    if subject is None:
                        continue
                    if not isinstance(subject, NodeRef):
                        raise type_error("labels can only be removed from nodes")
                    for label in item.labels:
                        self.tx.remove_label(subject.id, label)
        return rows

    def _delete(self, clause: ast.Delete, rows: list[Row]) -> list[Row]:
        for row in rows:
            for expr in clause.expressions:
                value = evaluate(expr, row, self.ctx)
                self._delete_value(value, clause.detach)
        return rows

    def _delete_value(self, value: Any, detach: bool) -> None:
        if value is None:
            return
        if isinstance(value, NodeRef):
            self.tx.delete_node(value.id, detach)
        elif isinstance(value, RelRef):
            self.tx.delete_relationship(value.id)
        elif isinstance(value, PathValue):
            for rel in value.rels:
                self.tx.delete_relationship(rel.id)
            for node in value.nodes:
                self.tx.delete_node(node.id, detach)
        elif isinstance(value, list):
            for item in value:
                self._delete_value(item, detach)
        else:
            raise type_error(f"cannot delete a {type_name(value)}", "InvalidArgumentType")

    # -- CALL ---------------------------------------------------------------------------------

    def _call(
        self, clause: ast.Call, rows: Iterable[Row], standalone: bool
    ) -> tuple[list[str], Iterable[Row]]:
        procedure = self.procedures.get(clause.procedure.lower())
        if procedure is None:
            raise CypherError(
                f"there is no procedure {clause.procedure}",
                "ProcedureNotFound",
                kind="ProcedureError",
            )
        if clause.yields is None:
            yields = [(name, name) for name, _ in procedure.outputs]
        else:
            yields = list(clause.yields)
        columns = [alias for _, alias in yields]

        def generate() -> Iterator[Row]:
            for row in rows:
                if clause.args is None:
                    missing = [n for n, _ in procedure.inputs if n not in self.ctx.parameters]
                    if missing:
                        raise CypherError(
                            f"expected parameter ${missing[0]}",
                            "MissingParameter",
                            kind="ParameterMissing",
                            phase="compile time",
                        )
                    args = [self.ctx.parameters[name] for name, _ in procedure.inputs]
                else:
                    args = [evaluate(arg, row, self.ctx) for arg in clause.args]
                args = [
                    _coerce_argument(a, t) for a, (_, t) in zip(args, procedure.inputs, strict=True)
                ]
                produced = False
                for record in procedure.function(self.ctx, args):
                    produced = True
                    out = dict(row)
                    for name, alias in yields:
                        out[alias] = record.get(name)
                    if (
                        clause.where is not None
                        and evaluate(clause.where, out, self.ctx) is not True
                    ):
                        continue
                    yield out
                if not procedure.outputs and not produced and not standalone:
                    yield dict(row)

        return columns, generate()


_MISSING = object()
_NO_NODES: list[NodeRef] = []


def _coerce_argument(value: Any, declared: str) -> Any:
    kind = declared.rstrip("?").upper()
    if value is None:
        return None
    if kind == "FLOAT" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if kind == "INTEGER" and not (isinstance(value, int) and not isinstance(value, bool)):
        raise CypherError(
            "procedure argument type mismatch", "InvalidArgumentType", kind="SyntaxError"
        )
    if kind == "STRING" and not isinstance(value, str):
        raise CypherError(
            "procedure argument type mismatch", "InvalidArgumentType", kind="SyntaxError"
        )
    if kind == "NUMBER" and not is_number(value):
        raise CypherError(
            "procedure argument type mismatch", "InvalidArgumentType", kind="SyntaxError"
        )
    return value


def _build_path(node_vals: list[NodeRef], segments: list[Any]) -> PathValue:
    nodes = [node_vals[0]]
    rels: list[RelRef] = []
    for index, segment in enumerate(segments):
        seg_rels, inner, way = segment
        if not seg_rels:
            continue
        if way < 0:
            seg_rels = seg_rels[::-1]
            inner = inner[::-1]
        rels.extend(seg_rels)
        nodes.extend(inner)
        nodes.append(node_vals[index + 1])
    return PathValue(tuple(nodes), tuple(rels))


def _check_property(value: Any) -> None:
    if value is None:
        return
    if isinstance(value, (dict, NodeRef, RelRef, PathValue)):
        raise type_error(
            f"a {type_name(value)} cannot be stored as a property", "InvalidPropertyType"
        )
    if isinstance(value, list):
        for item in value:
            if item is None or isinstance(item, (dict, list, NodeRef, RelRef, PathValue)):
                raise type_error("a property list must hold simple values", "InvalidPropertyType")
        try:
            sv.check_property_value(value)
        except sv.InvalidValueError as error:
            raise type_error(str(error), "InvalidPropertyType") from None


def _pattern_variables(parts: tuple[ast.PatternPart, ...]) -> list[str]:
    names: list[str] = []
    for part in parts:
        if part.variable:
            names.append(part.variable)
        for node in part.nodes:
            if node.variable:
                names.append(node.variable)
        for rel in part.rels:
            if rel.variable:
                names.append(rel.variable)
    return names


def _distinct(
    projected: Iterable[tuple[Row, Row]], columns: list[str]
) -> Iterator[tuple[Row, Row]]:
    seen = set()
    for out, original in projected:
        key = tuple(group_key(out[c]) for c in columns)
        if key in seen:
            continue
        seen.add(key)
        yield out, original


def is_aggregate(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.CountStar) or (
        isinstance(expr, ast.FunctionCall) and expr.name.lower() in AGGREGATES
    )


def _collect_aggregates(expr: Any, found: list[ast.Expr]) -> None:
    if is_aggregate(expr):
        found.append(expr)
        return
    if isinstance(expr, (ast.ListComprehension, ast.Quantifier, ast.PatternComprehension)):
        pass
    for child in children(expr):
        _collect_aggregates(child, found)


def _contains_aggregate(expr: Any) -> bool:
    found: list[ast.Expr] = []
    _collect_aggregates(expr, found)
    return bool(found)


def children(expr: Any) -> Iterator[Any]:
    """Direct sub-expressions of an expression node."""
    if isinstance(expr, (ast.Literal, ast.Parameter, ast.Variable, ast.CountStar)):
        return
    if isinstance(expr, ast.Expr):
        for name in expr.__slots__:  # type: ignore[attr-defined]
            value = getattr(expr, name)
            if isinstance(value, ast.Expr):
                yield value
            elif isinstance(value, tuple):
                for item in value:
                    if isinstance(item, ast.Expr):
                        yield item
                    elif isinstance(item, tuple):
                        for sub in item:
                            if isinstance(sub, ast.Expr):
                                yield sub


class _Accumulator:
    def __init__(self, expr: ast.Expr, ctx: Context) -> None:
        self.expr = expr
        self.ctx = ctx
        self.name = "count*" if isinstance(expr, ast.CountStar) else expr.name.lower()  # type: ignore[attr-defined]
        self.distinct = getattr(expr, "distinct", False)
        self.values: list[Any] = []
        self.seen: set[Any] = set()
        self.count = 0
        self.percentile: Any = None
        self.percentile_function = self.name in ("percentilecont", "percentiledisc")
        self.count_star = self.name == "count*"
        argument = None if self.count_star else expr.args[0]  # type: ignore[attr-defined]
        # A plain variable argument (`count(DISTINCT fof)`) is read from each row directly.
        self.variable = argument.name if type(argument) is ast.Variable else None

    def feed(self, row: Row) -> None:
        if self.count_star:
            self.count += 1
            return
        args = self.expr.args  # type: ignore[attr-defined]
        variable = self.variable
        if variable is not None and variable in row:
            value = row[variable]
        else:  # an expression, or a variable not bound (evaluate raises as it must)
            value = evaluate(args[0], row, self.ctx)
        if self.percentile_function:
            percentile = evaluate(args[1], row, self.ctx)
            if percentile is not None and (not is_number(percentile) or not 0 <= percentile <= 1):
                raise argument_error("percentile must be between 0.0 and 1.0", "NumberOutOfRange")
            self.percentile = percentile
        if value is None:
            return
        if self.distinct:
            seen = self.seen
            size = len(seen)
            seen.add(group_key(value))  # one hash of the key, not a lookup and then an add
            if len(seen) == size:
                return
        self.values.append(value)

    def result(self) -> Any:
        name = self.name
        values = self.values
        if name == "count*":
            return self.count
        if name == "count":
            return len(values)
        if name == "collect":
            return list(values)
        if name == "sum":
            if not values:
                return 0
            return _sum(values)
        if name == "avg":
            if not values:
                return None
            total = _sum(values)
            if not is_number(total):
                from cypher import temporal

                return temporal.divide(total, len(values))
            return total / len(values)
        if name == "min":
            return min(values, key=SortKey) if values else None
        if name == "max":
            return max(values, key=SortKey) if values else None
        if name in ("stdev", "stdevp"):
            count = len(values)
            if count < 2:
                return 0.0
            mean = sum(values) / count
            squares = sum((v - mean) ** 2 for v in values)
            return math.sqrt(squares / (count - 1 if name == "stdev" else count))
        if name in ("percentilecont", "percentiledisc"):
            if not values:
                return None
            ordered = sorted(values)
            percentile = self.percentile
            if name == "percentiledisc":
                index = max(0, math.ceil(percentile * len(ordered)) - 1) if percentile else 0
                return ordered[index]
            position = percentile * (len(ordered) - 1)
            low = math.floor(position)
            high = math.ceil(position)
            if low == high:
                return float(ordered[low])
            return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
        raise CypherError(f"unknown aggregate {name}", "UnknownFunction", kind="SyntaxError")


def _sum(values: list[Any]) -> Any:
    from cypher.expressions import add

    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        return sum(values)
    total: Any = values[0]
    for value in values[1:]:
        if not (is_number(value) or isinstance(value, sv.Duration)):
            raise type_error(f"sum() cannot add a {type_name(value)}")
        total = add(total, value)
    if not (is_number(total) or isinstance(total, sv.Duration)):
        raise type_error(f"sum() cannot add a {type_name(total)}")
    return total


__all__ = [
    "Context",
    "Executor",
    "Limits",
    "Procedure",
    "children",
    "current_guard",
    "is_aggregate",
    "order_compare",
    "statement_guard",
]
