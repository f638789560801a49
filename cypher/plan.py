"""Plan descriptions for EXPLAIN and PROFILE: an operator tree with estimated rows.

`describe(query, view, star_columns)` names, for each clause, the operators the executor
runs for it (the start of each pattern chosen as the executor chooses it: a bound variable,
an index seek, the smallest label scan or all nodes; then one expansion per relationship),
and estimates their rows from the view's counts: label counts, relationship counts per
type over node counts for an expansion, fixed selectivities where the store keeps no
statistics. PROFILE runs the statement and fills in the actual rows each clause, pattern
start and expansion produced.

Must never: execute anything, or read more of the view than its counts and schema.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cypher import ast
from store.view import GraphView

EQUALITY_SELECTIVITY = 0.1
"""Fraction of a label's nodes an equality seek or predicate is assumed to keep."""
PREDICATE_SELECTIVITY = 0.5
"""Fraction of rows a WHERE (other than an equality) is assumed to keep."""
UNWIND_ESTIMATE = 10
"""Items assumed per UNWIND of something other than a list literal."""


@dataclass(slots=True)
class PlanOperator:
    operator: str
    details: str
    estimated_rows: float
    children: list[PlanOperator] = field(default_factory=list)
    rows: int | None = None
    """Actual rows produced (PROFILE only): rows out of each clause, each pattern start and
    each expansion; None where the executor does not count (inside shortest paths)."""

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "operator": self.operator,
            "details": self.details,
            "estimatedRows": round(self.estimated_rows, 2),
        }
        if self.rows is not None:
            doc["rows"] = self.rows
        doc["children"] = [child.to_dict() for child in self.children]
        return doc

    def render(self) -> str:
        """The tree as text, root first, one operator per line."""
        lines: list[str] = []

        def walk(node: PlanOperator, depth: int) -> None:
            actual = "" if node.rows is None else f", rows {node.rows}"
            details = f" {node.details}" if node.details else ""
            lines.append(
                f"{'  ' * depth}+{node.operator}{details} "
                f"(estimated rows {node.estimated_rows:.1f}{actual})"
            )
            for child in node.children:
                walk(child, depth + 1)

        walk(self, 0)
        return "\n".join(lines)


class _Describer:
    def __init__(self, view: GraphView, star_columns: dict[int, list[str]]) -> None:
        self.view = view
        self.star_columns = star_columns
        self.by_clause: dict[Any, PlanOperator] = {}
        """The operator ending each clause (by id of the clause) and, inside patterns, each
        start (("start", id of part)) and expansion (("rel", id of part, rel index))."""
        self._counts: dict[str | None, int] = {}

    def count(self, label: str | None) -> int:
        if label not in self._counts:
            self._counts[label] = self.view.count_nodes(label)
        return self._counts[label]

    def query(self, query: ast.Query) -> PlanOperator:
        parts = [self.single(part, None) for part in query.parts]
        plan = parts[0]
        for index, part in enumerate(parts[1:]):
            name = "Union" if query.union_all[index] else "Distinct(Union)"
            plan = PlanOperator(name, "", plan.estimated_rows + part.estimated_rows, [plan, part])
        return PlanOperator("ProduceResults", "", plan.estimated_rows, [plan])

    def single(self, query: ast.SingleQuery, source: PlanOperator | None) -> PlanOperator:
        plan = source or PlanOperator("Argument", "", 1.0)
        bound: set[str] = set()
        for clause in query.clauses:
            plan = self.clause(clause, plan, bound)
            self.by_clause[id(clause)] = plan
        return plan

    def clause(self, clause: ast.Clause, source: PlanOperator, bound: set[str]) -> PlanOperator:
        rows = source.estimated_rows
        if isinstance(clause, ast.Match):
            plan = source
            for part in clause.patterns:
                plan = self.pattern(part, plan, bound)
            if clause.where is not None:
                plan = PlanOperator(
                    "Filter", "WHERE", plan.estimated_rows * PREDICATE_SELECTIVITY, [plan]
                )
            if clause.optional:
                plan = PlanOperator("Optional", "", max(plan.estimated_rows, rows), [plan])
            return plan
        if isinstance(clause, ast.Unwind):
            items = (
                len(clause.expression.items)
                if isinstance(clause.expression, ast.ListLiteral)
                else UNWIND_ESTIMATE
            )
            bound.add(clause.variable)
            return PlanOperator("Unwind", clause.variable, rows * items, [source])
        if isinstance(clause, (ast.With, ast.Return)):
            plan = self.projection(clause.projection, source, bound)
            if isinstance(clause, ast.With) and clause.where is not None:
                plan = PlanOperator(
                    "Filter", "WHERE", plan.estimated_rows * PREDICATE_SELECTIVITY, [plan]
                )
            return plan
        if isinstance(clause, ast.Create):
            names = [_pattern_text(part) for part in clause.patterns]
            for part in clause.patterns:
                bound.update(_part_variables(part))
            return PlanOperator("Create", ", ".join(names), rows, [source])
        if isinstance(clause, ast.Merge):
            bound.update(_part_variables(clause.pattern))
            return PlanOperator("Merge", _pattern_text(clause.pattern), rows, [source])
        if isinstance(clause, ast.SetClause):
            return PlanOperator("SetProperties", "", rows, [source])
        if isinstance(clause, ast.Remove):
            return PlanOperator("Remove", "", rows, [source])
        if isinstance(clause, ast.Delete):
            name = "DetachDelete" if clause.detach else "Delete"
            return PlanOperator(name, "", rows, [source])
        if isinstance(clause, ast.Foreach):
            inner = PlanOperator("Argument", clause.variable, rows * UNWIND_ESTIMATE)
            inner_bound = {*bound, clause.variable}
            for sub in clause.clauses:
                inner = self.clause(sub, inner, inner_bound)
                self.by_clause[id(sub)] = inner
            return PlanOperator("Foreach", clause.variable, rows, [source, inner])
        if isinstance(clause, ast.Call):
            if clause.yields:
                bound.update(alias for _, alias in clause.yields)
            return PlanOperator("ProcedureCall", clause.procedure, rows, [source])
        return PlanOperator(type(clause).__name__, "", rows, [source])

    def projection(
        self, projection: ast.Projection, source: PlanOperator, bound: set[str]
    ) -> PlanOperator:
        from cypher.executor import _contains_aggregate

        names = [item.alias or item.text for item in projection.items]
        if projection.star:
            names = self.star_columns.get(id(projection), []) + names
        rows = source.estimated_rows
        grouping = [item for item in projection.items if not _contains_aggregate(item.expression)]
        if len(grouping) < len(projection.items):
            rows = max(1.0, rows**0.5) if grouping or projection.star else 1.0
            plan = PlanOperator("EagerAggregation", ", ".join(names), rows, [source])
        else:
            plan = PlanOperator("Projection", ", ".join(names), rows, [source])
        if projection.distinct:
            plan = PlanOperator("Distinct", "", rows, [plan])
        if projection.order:
            plan = PlanOperator("Sort", f"{len(projection.order)} key(s)", rows, [plan])
        if projection.skip is not None:
            plan = PlanOperator("Skip", "", rows, [plan])
        if projection.limit is not None:
            limit = projection.limit
            if isinstance(limit, ast.Literal) and isinstance(limit.value, int):
                rows = min(rows, float(limit.value))
            plan = PlanOperator("Limit", "", rows, [plan])
        bound.clear()
        bound.update(names)
        return plan

    def pattern(self, part: ast.PatternPart, source: PlanOperator, bound: set[str]) -> PlanOperator:
        nodes = part.nodes
        if part.shortest is not None:
            bound.update(_part_variables(part))
            name = "ShortestPath" if part.shortest == "shortest" else "AllShortestPaths"
            return PlanOperator(name, _pattern_text(part), source.estimated_rows, [source])
        start = self.start(nodes, bound)
        node = nodes[start]
        text = _node_text(node)
        if node.variable is not None and node.variable in bound:
            plan = PlanOperator("Argument", text, source.estimated_rows, [source])
        elif node.labels and self.seek_key(node) is not None:
            label, key = self.seek_key(node)  # type: ignore[misc]
            unique = any(
                c.label == label and c.properties == (key,) for c in self.view.constraints()
            )
            rows = 1.0 if unique else max(1.0, self.count(label) * EQUALITY_SELECTIVITY)
            name = "NodeUniqueIndexSeek" if unique else "NodeIndexSeek"
            plan = PlanOperator(
                name, f"{text} ON :{label}({key})", source.estimated_rows * rows, [source]
            )
        elif node.labels:
            label = min(node.labels, key=self.count)
            rows = float(self.count(label))
            plan = PlanOperator("NodeByLabelScan", text, source.estimated_rows * rows, [source])
        elif node.label_expression is not None and node.label_expression.any_of():
            any_of = node.label_expression.any_of() or ()
            rows = float(sum(self.count(label) for label in set(any_of)))
            plan = PlanOperator(
                "UnionNodeByLabelsScan", text, source.estimated_rows * rows, [source]
            )
        else:
            plan = PlanOperator(
                "AllNodesScan", text, source.estimated_rows * self.count(None), [source]
            )
        self.by_clause[("start", id(part))] = plan
        if node.variable is not None:
            bound.add(node.variable)
        steps = [(i, 1) for i in range(start, len(part.rels))] + [
            (i, -1) for i in range(start - 1, -1, -1)
        ]
        total_nodes = max(1, self.count(None))
        for index, way in steps:
            rel = part.rels[index]
            target = nodes[index + 1] if way > 0 else nodes[index]
            types = rel.types or (None,)
            degree = sum(self.view.count_relationships(t) for t in types) / total_nodes
            if rel.direction == "both":
                degree *= 2
            if rel.length is not None:
                low, high = rel.length
                hops = max(1, min(high if high is not None else 3, 3))
                degree = sum(degree**hop for hop in range(low or 1, hops + 1)) or 1.0
            into = target.variable is not None and target.variable in bound
            name = "VarLengthExpand" if rel.length is not None else "Expand"
            rows = plan.estimated_rows * (degree / total_nodes if into else degree)
            if target.labels and not into:
                rows *= min(1.0, min(self.count(label) for label in target.labels) / total_nodes)
            plan = PlanOperator(
                f"{name}({'Into' if into else 'All'})",
                _step_text(nodes[index], rel, nodes[index + 1]),
                rows,
                [plan],
            )
            self.by_clause[("rel", id(part), index)] = plan
            if target.variable is not None:
                bound.add(target.variable)
            if rel.variable is not None:
                bound.add(rel.variable)
        if part.variable is not None:
            bound.add(part.variable)
        return plan

    def start(self, nodes: tuple[ast.NodePattern, ...], bound: set[str]) -> int:
        for index, node in enumerate(nodes):
            if node.variable is not None and node.variable in bound:
                return index
        for index, node in enumerate(nodes):
            if node.labels and self.seek_key(node) is not None:
                return index
        costs = [
            min(self.count(label) for label in node.labels) if node.labels else self.count(None) + 1
            for node in nodes
        ]
        return costs.index(min(costs))

    def seek_key(self, node: ast.NodePattern) -> tuple[str, str] | None:
        if not isinstance(node.properties, ast.MapLiteral):
            return None
        for key, _ in node.properties.items:
            for label in node.labels:
                if self.view.has_index(label, key):
                    return label, key
        return None


def describe(
    query: ast.Query, view: GraphView, star_columns: dict[int, list[str]]
) -> tuple[PlanOperator, dict[Any, PlanOperator]]:
    """The plan of `query` and its operators by the keys the executor counts rows under."""
    describer = _Describer(view, star_columns)
    plan = describer.query(query)
    return plan, describer.by_clause


def _node_text(node: ast.NodePattern) -> str:
    labels = "".join(f":{label}" for label in node.labels)
    if node.label_expression is not None:
        labels += ":" + _label_text(node.label_expression)
    return f"({node.variable or ''}{labels})"


def _label_text(expression: ast.LabelExpression) -> str:
    if expression.op == "label":
        return expression.name
    if expression.op == "not":
        return "!" + _label_text(expression.operands[0])
    joiner = "&" if expression.op == "and" else "|"
    return "(" + joiner.join(_label_text(o) for o in expression.operands) + ")"


def _step_text(left: ast.NodePattern, rel: ast.RelPattern, right: ast.NodePattern) -> str:
    types = "|".join(rel.types)
    inner = f"{rel.variable or ''}{':' + types if types else ''}{'*' if rel.length else ''}"
    arrow_left = "<-" if rel.direction == "in" else "-"
    arrow_right = "->" if rel.direction == "out" else "-"
    return f"{_node_text(left)}{arrow_left}[{inner}]{arrow_right}{_node_text(right)}"


def _pattern_text(part: ast.PatternPart) -> str:
    text = _node_text(part.nodes[0])
    for index, rel in enumerate(part.rels):
        step = _step_text(part.nodes[index], rel, part.nodes[index + 1])
        text += step[len(_node_text(part.nodes[index])) :]
    return text


def _part_variables(part: ast.PatternPart) -> list[str]:
    names = [node.variable for node in part.nodes if node.variable]
    names += [rel.variable for rel in part.rels if rel.variable]
    if part.variable:
        names.append(part.variable)
    return names
