"""Semantic analysis: variable scoping across clauses, aggregation rules, compile-time checks.

It runs once per query text (its result is cached with the plan) and raises compile-time
`CypherError`s with the TCK's detail codes. It also records, for every `*` projection, the
variables in scope at that point, which the executor needs to name its columns.
"""

from __future__ import annotations

from typing import Any

from cypher import ast
from cypher.errors import CypherError, syntax_error
from cypher.executor import children, is_aggregate
from cypher.functions import known_function

NODE, REL, PATH, ANY, LIST = "node", "rel", "path", "any", "list"
MAX_EXPRESSION_DEPTH = 500


def _err(message: str, detail: str) -> CypherError:
    return syntax_error(message, detail)


class Analysis:
    def __init__(self) -> None:
        self.star_columns: dict[int, list[str]] = {}
        self.updating = False
        self.in_transactions = False
        """Whether the statement holds CALL { ... } IN TRANSACTIONS."""


def analyze(statement: ast.Statement, procedures: dict[str, Any]) -> Analysis:
    analysis = Analysis()
    body = statement.body
    if isinstance(body, ast.Query):
        _Analyzer(analysis, procedures).query(body, {}, top_level=True)
    return analysis


class _Analyzer:
    def __init__(self, analysis: Analysis, procedures: dict[str, Any]) -> None:
        self.analysis = analysis
        self.procedures = procedures

    def query(self, query: ast.Query, outer: dict[str, str], top_level: bool) -> list[str]:
        if len(set(query.union_all)) > 1:
            raise _err("cannot mix UNION and UNION ALL", "InvalidClauseComposition")
        columns_seen: list[str] | None = None
        for part in query.parts:
            columns = self.single_query(part, dict(outer), top_level, len(query.parts) > 1)
            if columns_seen is None:
                columns_seen = columns
            elif columns != columns_seen:
                raise _err(
                    "all sub queries in a UNION must have the same columns",
                    "DifferentColumnsInUnion",
                )
        return columns_seen or []

    def single_query(
        self, query: ast.SingleQuery, scope: dict[str, str], top_level: bool, in_union: bool
    ) -> list[str]:
        clauses = query.clauses
        columns: list[str] = []
        for index, clause in enumerate(clauses):
            last = index == len(clauses) - 1
            if isinstance(clause, ast.Return):
                if not last:
                    raise _err(
                        "RETURN can only be used at the end of the query",
                        "InvalidClauseComposition",
                    )
                scope, columns = self.projection(clause.projection, scope, None, is_return=True)
            elif isinstance(clause, ast.With):
                scope, _ = self.projection(clause.projection, scope, clause.where, is_return=False)
            elif isinstance(clause, ast.Match):
                if (
                    clause.optional is False
                    and index > 0
                    and isinstance(clauses[index - 1], ast.Match)
                    and clauses[index - 1].optional  # type: ignore[attr-defined]
                ):
                    pass
                self.match(clause, scope)
            elif isinstance(clause, ast.Unwind):
                self.expr(clause.expression, scope)
                self.declare(scope, clause.variable, ANY, fresh=True)
            elif isinstance(clause, ast.Create):
                self.analysis.updating = True
                self.create(clause.patterns, scope, merge=False)
            elif isinstance(clause, ast.Merge):
                self.analysis.updating = True
                self.create((clause.pattern,), scope, merge=True)
                for item in (*clause.on_create, *clause.on_match):
                    self.set_item(item, scope)
            elif isinstance(clause, ast.SetClause):
                self.analysis.updating = True
                for item in clause.items:
                    self.set_item(item, scope)
            elif isinstance(clause, ast.Remove):
                self.analysis.updating = True
                for remove_item in clause.items:
                    self.expr(remove_item.target, scope)
            elif isinstance(clause, ast.Delete):
                self.analysis.updating = True
                for expr in clause.expressions:
                    if not isinstance(
                        expr, (ast.Variable, ast.Property, ast.Subscript, ast.FunctionCall)
                    ) and not isinstance(expr, ast.Case):
                        if isinstance(expr, ast.HasLabels):
                            raise _err("cannot DELETE a label", "InvalidDelete")
                        raise _err(
                            "DELETE expects a node, relationship or path", "InvalidArgumentType"
                        )
                    self.expr(expr, scope)
                    if isinstance(expr, ast.Variable) and scope.get(expr.name) not in (
                        NODE,
                        REL,
                        PATH,
                        ANY,
                        LIST,
                    ):
                        raise _err(
                            "DELETE expects a node, relationship or path", "InvalidArgumentType"
                        )
            elif isinstance(clause, ast.Foreach):
                self.analysis.updating = True
                self.foreach(clause, scope)
            elif isinstance(clause, ast.SubqueryCall):
                if clause.in_transactions:
                    if not top_level:
                        raise _err(
                            "CALL { ... } IN TRANSACTIONS must not be nested in a subquery,"
                            " FOREACH or UNION part",
                            "InvalidClauseComposition",
                        )
                    self.analysis.in_transactions = True
                    if clause.batch_size is not None:
                        self._check_count(clause.batch_size)
                returned = self.query(clause.query, self._subquery_scope(clause, scope), False)
                for name in returned:
                    self.declare(scope, name, ANY, fresh=True)
            elif isinstance(clause, ast.Call):
                self.call(clause, scope, standalone=len(clauses) == 1, last=last)
                if last:
                    columns = self._call_columns(clause)
            if not last and isinstance(clause, ast.Return):
                raise _err("RETURN must be last", "InvalidClauseComposition")
        final = clauses[-1]
        if (
            not isinstance(final, (ast.Return, ast.Call))
            and not self.analysis.updating
            and top_level
        ):
            raise _err("query cannot conclude with a reading clause", "InvalidClauseComposition")
        if in_union and not isinstance(final, ast.Return):
            raise _err("UNION parts must end with RETURN", "InvalidClauseComposition")
        return columns

    def _subquery_scope(self, clause: ast.SubqueryCall, scope: dict[str, str]) -> dict[str, str]:
        """What a CALL subquery sees: the variables of its scope clause `CALL (a, b)`
        (`(*)`: all), or, in the older form, all of them if a leading WITH imports."""
        if clause.imports is None:
            importing = all(isinstance(part.clauses[0], ast.With) for part in clause.query.parts)
            return dict(scope) if importing else {}
        if clause.imports == ("*",):
            return dict(scope)
        inner: dict[str, str] = {}
        for name in clause.imports:
            if name not in scope:
                raise _err(f"variable `{name}` not defined", "UndefinedVariable")
            if name in inner:
                raise _err(f"variable `{name}` imported twice", "VariableAlreadyBound")
            inner[name] = scope[name]
        return inner

    def foreach(self, clause: ast.Foreach, scope: dict[str, str]) -> None:
        """The list is read in the outer scope; the clauses run in an inner one where the
        variable may shadow an outer name, and whatever they bind stays inside."""
        if _contains_aggregate(clause.source):
            raise _err("aggregation is not allowed in FOREACH", "InvalidAggregation")
        self.expr(clause.source, scope)
        kind = _kind_of(clause.source, scope)
        if kind not in (ANY, LIST, "list_value"):
            raise _err(f"FOREACH expects a list, not a {kind}", "InvalidArgumentType")
        inner = dict(scope)
        inner[clause.variable] = _element_kind(clause.source)
        self.single_query(ast.SingleQuery(clause.clauses), inner, False, False)

    def _call_columns(self, clause: ast.Call) -> list[str]:
        if clause.yields is not None:
            return [alias for _, alias in clause.yields]
        procedure = self.procedures.get(clause.procedure.lower())
        return [name for name, _ in procedure.outputs] if procedure else []

    # -- clauses ------------------------------------------------------------------------------

    def declare(self, scope: dict[str, str], name: str, kind: str, fresh: bool = False) -> None:
        existing = scope.get(name)
        if existing is not None:
            if fresh:
                raise _err(f"variable `{name}` already declared", "VariableAlreadyBound")
            if existing != kind and ANY not in (existing, kind):
                raise _err(
                    f"variable `{name}` is a {existing}, not a {kind}", "VariableTypeConflict"
                )
            return
        scope[name] = kind

    def match(self, clause: ast.Match, scope: dict[str, str]) -> None:
        elements_so_far: set[str] = set()
        for part in clause.patterns:
            elements_so_far |= {e.variable for e in (*part.nodes, *part.rels) if e.variable}
            if part.variable is not None and part.variable in elements_so_far:
                raise _err("a path variable is also used for an element", "VariableAlreadyBound")
        seen_rels: set[str] = set()
        for part in clause.patterns:
            self.pattern_part(part, scope, seen_rels, in_match=True)
        if clause.where is not None:
            if isinstance(clause.where, ast.Variable) and scope.get(clause.where.name) in (
                NODE,
                REL,
                PATH,
            ):
                raise _err("WHERE expects a boolean", "InvalidArgumentType")
            self.expr(clause.where, scope, where=True)

    def pattern_part(
        self, part: ast.PatternPart, scope: dict[str, str], seen_rels: set[str], in_match: bool
    ) -> None:
        if part.variable is not None:
            self.declare(scope, part.variable, PATH, fresh=True)
        for node in part.nodes:
            if node.variable is not None:
                self.declare(scope, node.variable, NODE)
            if node.properties is not None:
                self.properties(node.properties, scope)
        for rel in part.rels:
            if rel.variable is not None:
                if rel.variable in seen_rels:
                    raise _err(
                        f"relationship `{rel.variable}` used twice in one pattern",
                        "RelationshipUniquenessViolation",
                    )
                seen_rels.add(rel.variable)
                kind = REL if rel.length is None else LIST
                existing = scope.get(rel.variable)
                allowed = (kind, ANY, "list_value") if kind == LIST else (kind, ANY)
                if existing is not None and existing not in allowed:
                    raise _err(f"variable `{rel.variable}` is a {existing}", "VariableTypeConflict")
                scope.setdefault(rel.variable, kind)
            if rel.properties is not None:
                self.properties(rel.properties, scope)
            if rel.length is not None:
                low, high = rel.length
                if low is not None and high is not None and low > high:
                    pass
                if rel.where is not None:
                    raise _err(
                        "a relationship pattern with a length cannot have an inline WHERE",
                        "InvalidRelationshipPattern",
                    )
        for element in (*part.nodes, *part.rels):
            if element.where is not None:
                if _contains_aggregate(element.where):
                    raise _err("aggregation in a pattern predicate", "InvalidAggregation")
                self.expr(element.where, scope, where=True)

    def properties(self, expr: ast.Expr, scope: dict[str, str]) -> None:
        if isinstance(expr, ast.Parameter):
            raise _err("parameter maps cannot be used in MATCH patterns", "InvalidParameterUse")
        self.expr(expr, scope)

    def create(
        self, patterns: tuple[ast.PatternPart, ...], scope: dict[str, str], merge: bool
    ) -> None:
        declared_here: set[str] = set()
        for part in patterns:
            if part.variable is not None:
                self.declare(scope, part.variable, PATH, fresh=True)
            for element in (*part.nodes, *part.rels):
                if element.where is not None:
                    raise _err(
                        "an inline WHERE cannot be used in CREATE or MERGE", "UnexpectedSyntax"
                    )
            for node in part.nodes:
                if node.label_expression is not None:
                    raise _err(
                        "label expressions with | or ! cannot be used in CREATE or MERGE",
                        "InvalidLabelExpression",
                    )
                if node.properties is not None:
                    if isinstance(node.properties, ast.Parameter) and merge:
                        raise _err(
                            "parameter maps cannot be used in MERGE patterns", "InvalidParameterUse"
                        )
                    self.expr(node.properties, scope)
                name = node.variable
                if name is None:
                    continue
                bound = name in scope
                if bound:
                    if scope[name] not in (NODE, ANY):
                        raise _err(f"variable `{name}` is not a node", "VariableTypeConflict")
                    if (
                        node.labels
                        or node.properties is not None
                        or (not part.rels and name not in declared_here and not merge)
                        or (merge and not part.rels)
                    ):
                        raise _err(f"variable `{name}` already declared", "VariableAlreadyBound")
                else:
                    scope[name] = NODE
                    declared_here.add(name)
            for rel in part.rels:
                if rel.variable is not None and rel.variable in scope:
                    raise _err(
                        f"variable `{rel.variable}` already declared", "VariableAlreadyBound"
                    )
                if len(rel.types) != 1:
                    raise _err(
                        "a relationship must have exactly one type to be created",
                        "NoSingleRelationshipType",
                    )
                if rel.direction == "both" and not merge:
                    raise _err(
                        "only directed relationships can be created", "RequiresDirectedRelationship"
                    )
                if rel.length is not None:
                    raise _err(
                        "variable length relationships cannot be created", "CreatingVarLength"
                    )
                if rel.properties is not None:
                    if isinstance(rel.properties, ast.Parameter) and merge:
                        raise _err(
                            "parameter maps cannot be used in MERGE patterns", "InvalidParameterUse"
                        )
                    self.expr(rel.properties, scope)
                if rel.variable is not None:
                    if rel.variable in scope:
                        raise _err(
                            f"variable `{rel.variable}` already declared", "VariableAlreadyBound"
                        )
                    scope[rel.variable] = REL

    def set_item(self, item: ast.SetItem, scope: dict[str, str]) -> None:
        if item.value is not None and any(
            isinstance(node, ast.PatternExpr) and node.pattern.shortest is None
            for node in _walk(item.value)
        ):
            raise _err("a pattern cannot be used as the value of SET", "UnexpectedSyntax")
        if isinstance(item.value, ast.PatternExpr):
            raise _err("a pattern cannot be used as a value", "UnexpectedSyntax")
        self.expr(item.target, scope)
        if item.value is not None:
            self.expr(item.value, scope)

    def call(self, clause: ast.Call, scope: dict[str, str], standalone: bool, last: bool) -> None:
        procedure = self.procedures.get(clause.procedure.lower())
        if procedure is None:
            raise CypherError(
                f"there is no procedure {clause.procedure}",
                "ProcedureNotFound",
                kind="ProcedureError",
                phase="compile time",
            )
        if clause.args is not None:
            for arg in clause.args:
                if _contains_aggregate(arg):
                    raise _err("aggregation in procedure arguments", "InvalidAggregation")
                self.expr(arg, scope)
            if len(clause.args) != len(procedure.inputs):
                raise _err("wrong number of procedure arguments", "InvalidNumberOfArguments")
        elif not standalone:
            raise _err(
                "procedure call inside a query needs arguments", "InvalidArgumentPassingMode"
            )
        if clause.yield_star and not standalone:
            raise _err("YIELD * is only allowed in a standalone CALL", "UnexpectedSyntax")
        if clause.args is not None:
            for arg, (_, declared) in zip(clause.args, procedure.inputs, strict=False):
                known = static_type(arg)
                wanted = declared.rstrip("?").upper()
                if known in (None, "NULL") or wanted in (
                    "ANY",
                    "NUMBER" if known in ("INTEGER", "FLOAT") else "",
                    "FLOAT" if known == "INTEGER" else "",
                ):
                    continue
                if known != wanted:
                    raise _err(f"procedure argument must be {wanted}", "InvalidArgumentType")
        if clause.yields is None:
            if not standalone and procedure.outputs:
                raise _err("procedure call inside a query needs YIELD", "UndefinedVariable")
            for name, _ in procedure.outputs:
                scope[name] = ANY
        else:
            outputs = {name for name, _ in procedure.outputs}
            for field, alias in clause.yields:
                if field not in outputs:
                    raise _err(f"procedure has no output {field}", "UndefinedVariable")
                self.declare(scope, alias, ANY, fresh=True)
        if clause.where is not None:
            self.expr(clause.where, scope)

    def projection(
        self,
        projection: ast.Projection,
        scope: dict[str, str],
        where: ast.Expr | None,
        is_return: bool,
    ) -> tuple[dict[str, str], list[str]]:
        new_scope: dict[str, str] = {}
        columns: list[str] = []
        if projection.star:
            if not scope and is_return:
                raise _err("RETURN * has no variables in scope", "NoVariablesInScope")
            names = sorted(scope)
            self.analysis.star_columns[id(projection)] = names
            for name in names:
                new_scope[name] = scope[name]
                columns.append(name)
        aggregating = False
        grouping: list[ast.Expr] = []
        self._items = [item.expression for item in projection.items]
        alias_error: CypherError | None = None
        for item in projection.items:
            if (
                isinstance(item.expression, ast.PatternExpr)
                and item.expression.pattern.shortest is None
            ):
                raise _err(
                    "a pattern cannot be projected; use a pattern comprehension", "UnexpectedSyntax"
                )
            self.expr(item.expression, scope, projection_item=True)
            if _contains_aggregate(item.expression):
                aggregating = True
            else:
                grouping.append(item.expression)
        for item in projection.items:
            name = item.alias or item.text
            if (
                item.alias is None
                and not is_return
                and not isinstance(item.expression, ast.Variable)
                and alias_error is None
            ):
                alias_error = _err("expression in WITH must be aliased", "NoExpressionAlias")
            if name in columns:
                raise _err(f"column `{name}` defined twice", "ColumnNameConflict")
            columns.append(name)
            new_scope[name] = _kind_of(item.expression, scope)
            if _contains_aggregate(item.expression):
                self._check_ambiguous(item.expression, grouping, scope)
        if projection.star:
            grouping.extend(ast.Variable(n) for n in scope)
        order_scope = dict(new_scope)
        if not aggregating and not projection.distinct:
            order_scope = {**scope, **new_scope}
        for sort_item in projection.order:
            if aggregating or projection.distinct:
                if _contains_aggregate(sort_item.expression):
                    if not any(sort_item.expression == i.expression for i in projection.items):
                        if aggregating:
                            self._check_order_aggregate(
                                sort_item.expression, new_scope, scope, grouping
                            )
                        else:
                            raise _err(
                                "aggregation in ORDER BY after DISTINCT", "InvalidAggregation"
                            )
                    continue
                if any(sort_item.expression == i.expression for i in projection.items):
                    continue
                self.expr(
                    sort_item.expression,
                    order_scope,
                    projection_item=True,
                    fallback=scope if projection.distinct or aggregating else None,
                    grouping=[i.expression for i in projection.items],
                )
            else:
                if _contains_aggregate(sort_item.expression):
                    raise _err(
                        "aggregation in ORDER BY of a non-aggregating projection",
                        "InvalidAggregation",
                    )
                self.expr(sort_item.expression, order_scope, projection_item=True)
        if alias_error is not None:
            raise alias_error
        for bound in (projection.skip, projection.limit):
            if bound is not None:
                self._check_count(bound)
        if where is not None:
            self.expr(where, {**scope, **new_scope} if not aggregating else new_scope, where=True)
        return new_scope, columns

    def _check_count(self, expr: ast.Expr) -> None:
        for node in _walk(expr):
            if isinstance(node, (ast.Variable, ast.PatternExpr, ast.PatternComprehension)):
                raise _err("SKIP and LIMIT take constants", "NonConstantExpression")
        if isinstance(expr, ast.OverflowInteger):
            # A literal beyond 64 bits (SKIP 99999999999999999999): Neo4j's SyntaxError,
            # not the engine failing on a node it cannot evaluate.
            raise _err("integer literal is too large", "IntegerOverflow")
        if isinstance(expr, ast.Literal):
            value = expr.value
            if isinstance(value, (float, bool)) or not isinstance(value, int):
                raise _err("SKIP and LIMIT take integers", "InvalidArgumentType")
            if value < 0:
                raise _err("SKIP and LIMIT take non-negative integers", "NegativeIntegerArgument")

    def _check_order_aggregate(
        self,
        expr: ast.Expr,
        new_scope: dict[str, str],
        old_scope: dict[str, str],
        grouping: list[ast.Expr],
    ) -> None:
        """ORDER BY with aggregates: outside them only aliases, constants and parameters."""
        if is_aggregate(expr):
            projected = any(expr == node for g in self._items for node in _walk(g))
            self.expr(expr, old_scope if projected else new_scope, projection_item=True)
            return
        if isinstance(expr, ast.Property) and any(expr == g for g in grouping):
            return
        if isinstance(expr, ast.Variable):
            if expr.name in new_scope:
                return
            used = any(
                isinstance(node, ast.Variable) and node.name == expr.name
                for g in grouping
                for node in _walk(g)
            )
            if used:
                raise _err(
                    f"`{expr.name}` is used inside an aggregating ORDER BY item",
                    "AmbiguousAggregationExpression",
                )
            raise _err(f"variable `{expr.name}` not defined", "UndefinedVariable")
        for child in children(expr):
            self._check_order_aggregate(child, new_scope, old_scope, grouping)

    def _check_ambiguous(
        self, expr: ast.Expr, grouping: list[ast.Expr], scope: dict[str, str]
    ) -> None:
        if any(expr == g for g in grouping) and isinstance(expr, (ast.Variable, ast.Property)):
            return
        if is_aggregate(expr):
            for child in children(expr):
                if _contains_aggregate(child):
                    raise _err("aggregations cannot be nested", "NestedAggregation")
            return
        if isinstance(expr, ast.Variable):
            raise _err(
                f"`{expr.name}` is neither aggregated nor a grouping key",
                "AmbiguousAggregationExpression",
            )
        if isinstance(expr, (ast.ListComprehension, ast.Quantifier, ast.Reduce)):
            bound = (
                {expr.variable}
                if not isinstance(expr, ast.Reduce)
                else {expr.variable, expr.accumulator}
            )
            for child in children(expr):
                self._check_ambiguous_inner(child, grouping, bound)
            return
        for child in children(expr):
            self._check_ambiguous(child, grouping, scope)

    def _check_ambiguous_inner(
        self, expr: ast.Expr, grouping: list[ast.Expr], bound: set[str]
    ) -> None:
        if any(expr == g for g in grouping) or is_aggregate(expr):
            return
        if isinstance(expr, ast.Variable):
            if expr.name in bound:
                return
            raise _err(
                f"`{expr.name}` is neither aggregated nor a grouping key",
                "AmbiguousAggregationExpression",
            )
        for child in children(expr):
            self._check_ambiguous_inner(child, grouping, bound)

    # -- expressions --------------------------------------------------------------------------

    def expr(
        self,
        expr: ast.Expr,
        scope: dict[str, str],
        where: bool = False,
        projection_item: bool = False,
        in_aggregate: bool = False,
        depth: int = 0,
        fallback: dict[str, str] | None = None,
        grouping: list[ast.Expr] | None = None,
    ) -> None:
        if depth > MAX_EXPRESSION_DEPTH:
            raise _err("expression nested too deeply", "NestingTooDeep")
        if grouping is not None and depth > 0 and any(expr == g for g in grouping):
            return  # a projected expression inside an ORDER BY item reads its value
        if isinstance(expr, ast.OverflowInteger):
            raise _err("integer literal is too large", "IntegerOverflow")
        if isinstance(expr, ast.Variable):
            if expr.name not in scope:
                if fallback is not None and expr.name in fallback:
                    raise _err(
                        f"variable `{expr.name}` is not projected",
                        "UndefinedVariable",
                    )
                raise _err(f"variable `{expr.name}` not defined", "UndefinedVariable")
            return
        if is_aggregate(expr):
            if where or not projection_item:
                raise _err("aggregation is not allowed here", "InvalidAggregation")
            if in_aggregate:
                raise _err("aggregations cannot be nested", "NestedAggregation")
            for child in children(expr):
                self.expr(child, scope, where, projection_item, True, depth + 1)
            if isinstance(expr, ast.FunctionCall):
                self._check_function(expr)
            return
        if isinstance(expr, ast.FunctionCall):
            self._check_function(expr)
        _check_static_types(expr)
        _check_arithmetic(expr, scope)
        if isinstance(expr, (ast.ListComprehension, ast.Quantifier)):
            self.expr(expr.source, scope, where, projection_item, in_aggregate, depth + 1)
            inner = {**scope, expr.variable: _element_kind(expr.source)}
            for sub in (expr.where, getattr(expr, "projection", None)):
                if sub is not None:
                    self.expr(sub, inner, where, projection_item, in_aggregate, depth + 1)
                    if _contains_aggregate(sub):
                        raise _err("aggregation inside a list predicate", "InvalidAggregation")
            return
        if isinstance(expr, ast.Reduce):
            self.expr(expr.initial, scope, where, projection_item, in_aggregate, depth + 1)
            self.expr(expr.source, scope, where, projection_item, in_aggregate, depth + 1)
            inner = {**scope, expr.variable: ANY, expr.accumulator: ANY}
            self.expr(expr.expression, inner, where, projection_item, in_aggregate, depth + 1)
            if _contains_aggregate(expr.expression):
                raise _err("aggregation inside reduce", "InvalidAggregation")
            return
        if isinstance(expr, ast.PatternExpr):
            for node in expr.pattern.nodes:
                if node.variable is not None and node.variable not in scope:
                    raise _err(f"variable `{node.variable}` not defined", "UndefinedVariable")
                if node.properties is not None:
                    self.expr(node.properties, scope, depth=depth + 1)
            for rel in expr.pattern.rels:
                if rel.variable is not None and rel.variable not in scope:
                    raise _err(f"variable `{rel.variable}` not defined", "UndefinedVariable")
            for element in (*expr.pattern.nodes, *expr.pattern.rels):
                if element.where is not None:
                    self.expr(element.where, scope, True, depth=depth + 1)
            return
        if isinstance(expr, ast.PatternComprehension):
            inner = dict(scope)
            self.pattern_part(expr.pattern, inner, set(), in_match=False)
            if expr.where is not None:
                self.expr(expr.where, inner, True, depth=depth + 1)
            self.expr(expr.projection, inner, where, projection_item, in_aggregate, depth + 1)
            return
        if isinstance(expr, ast.ExistsSubquery):
            inner = dict(scope)
            if expr.query is not None:
                for part in expr.query.parts:
                    for clause in part.clauses:
                        if isinstance(
                            clause,
                            (ast.Create, ast.Merge, ast.SetClause, ast.Remove, ast.Delete),
                        ):
                            raise _err(
                                "EXISTS subqueries cannot update", "InvalidClauseComposition"
                            )
                columns = self.query(expr.query, inner, top_level=False)
                if expr.collect and (
                    len(columns) != 1
                    or not all(isinstance(p.clauses[-1], ast.Return) for p in expr.query.parts)
                ):
                    raise _err(
                        "a COLLECT subquery must end with a RETURN of exactly one column",
                        "InvalidClauseComposition",
                    )
            else:
                seen: set[str] = set()
                for part in expr.patterns:
                    self.pattern_part(part, inner, seen, in_match=True)
                if expr.where is not None:
                    self.expr(expr.where, inner, True, depth=depth + 1)
            return
        if isinstance(expr, ast.MapProjection):
            self.expr(expr.variable, scope, depth=depth + 1)
        if isinstance(expr, ast.Property) and isinstance(expr.subject, ast.Variable):
            kind = scope.get(expr.subject.name)
            if kind in ("integer", "float", "boolean", "string", "list_value", LIST, PATH):
                raise CypherError(
                    f"cannot read a property of a {kind}",
                    "InvalidArgumentType",
                    kind="SyntaxError" if kind in (LIST, PATH) else "TypeError",
                    phase="compile time",
                )
        if isinstance(expr, ast.FunctionCall) and len(expr.args) == 1:
            arg = expr.args[0]
            if expr.name.lower() == "size" and isinstance(arg, ast.PatternExpr):
                raise _err("size() of a pattern is not supported", "UnexpectedSyntax")
            if isinstance(arg, ast.Variable):
                wanted = {
                    "type": (REL, ANY),
                    "labels": (NODE, ANY),
                    "length": (PATH, ANY),
                    "size": (ANY, LIST, "list_value", "string"),
                    "nodes": (PATH, ANY),
                    "relationships": (PATH, ANY),
                }.get(expr.name.lower())
                if wanted and scope.get(arg.name, ANY) not in wanted:
                    raise _err(f"{expr.name}() of a {scope[arg.name]}", "InvalidArgumentType")
        for child in children(expr):
            self.expr(
                child, scope, where, projection_item, in_aggregate, depth + 1, fallback, grouping
            )

    def _check_function(self, expr: ast.FunctionCall) -> None:
        from cypher.expressions import AGGREGATES

        name = expr.name.lower()
        if name in AGGREGATES:
            expected = (2, 2) if name.startswith("percentile") else (1, 1)
            if any(
                isinstance(node, ast.FunctionCall) and node.name.lower() == "rand"
                for arg in expr.args
                for node in _walk(arg)
            ):
                raise _err(
                    "an aggregation cannot take a non-deterministic argument (rand())",
                    "NonConstantExpression",
                )
        else:
            found = known_function(expr.name)
            if found is None:
                raise _err(f"unknown function {expr.name}", "UnknownFunction")
            expected = found
        if not expected[0] <= len(expr.args) <= expected[1]:
            raise _err(f"wrong number of arguments to {expr.name}", "InvalidNumberOfArguments")
        if name == "exists" and expr.args:
            arg = expr.args[0]
            if not isinstance(arg, (ast.Property, ast.PatternExpr, ast.Subscript)):
                raise _err("exists() expects a property or pattern", "InvalidArgumentType")


def _walk(expr: Any) -> list[Any]:
    found = [expr]
    for child in children(expr):
        found.extend(_walk(child))
    return found


def _contains_aggregate(expr: Any) -> bool:
    if is_aggregate(expr):
        return True
    return any(_contains_aggregate(child) for child in children(expr))


def _element_kind(source: ast.Expr) -> str:
    if isinstance(source, ast.ListLiteral) and source.items:
        kinds = {static_type(item) for item in source.items}
        if len(kinds) == 1:
            (only,) = kinds
            if only in ("STRING", "BOOLEAN"):
                return only.lower()
    return ANY


def _kind_of(expr: ast.Expr, scope: dict[str, str]) -> str:
    if isinstance(expr, ast.Variable):
        return scope.get(expr.name, ANY)
    known = static_type(expr)
    if known is None or known == "NULL":
        return ANY
    return "list_value" if known == "LIST" else known.lower()


_BOOLEAN_OK = (None, "BOOLEAN", "NULL")
_ENTITY_FUNCTIONS = {
    "labels": ("NODE",),
    "type": ("RELATIONSHIP",),
    "properties": ("NODE", "RELATIONSHIP", "MAP"),
    "keys": ("NODE", "RELATIONSHIP", "MAP"),
    "length": ("PATH",),
    "nodes": ("PATH",),
    "relationships": ("PATH",),
    "startnode": ("RELATIONSHIP",),
    "endnode": ("RELATIONSHIP",),
}


def static_type(expr: Any) -> str | None:
    """The type of an expression when it is known without running it (literals)."""
    from cypher.values import type_name

    if isinstance(expr, ast.Literal):
        return type_name(expr.value)
    if isinstance(expr, (ast.ListLiteral, ast.ListComprehension)):
        return "LIST"
    if isinstance(expr, (ast.MapLiteral, ast.MapProjection)):
        return "MAP"
    return None


def _check_arithmetic(expr: Any, scope: dict[str, str]) -> None:
    if isinstance(expr, ast.BinaryOp) and expr.op in ("%", "*", "/", "^", "-"):
        for operand in (expr.left, expr.right):
            if isinstance(operand, ast.Variable) and scope.get(operand.name) in (
                "string",
                "boolean",
            ):
                raise _err(f"{expr.op} cannot take a {scope[operand.name]}", "InvalidArgumentType")


def _check_static_types(expr: Any) -> None:
    def fail(message: str) -> CypherError:
        return _err(message, "InvalidArgumentType")

    if isinstance(expr, ast.BinaryOp) and expr.op in ("AND", "OR", "XOR"):
        for operand in (expr.left, expr.right):
            if static_type(operand) not in _BOOLEAN_OK:
                raise fail(f"{expr.op} expects booleans")
    elif isinstance(expr, ast.UnaryOp) and expr.op == "NOT":
        if static_type(expr.operand) not in _BOOLEAN_OK:
            raise fail("NOT expects a boolean")
    elif isinstance(expr, ast.BinaryOp) and expr.op == "IN":
        if static_type(expr.right) not in (None, "LIST", "NULL"):
            raise fail("IN expects a list")
    elif isinstance(expr, ast.FunctionCall) and len(expr.args) == 1:
        allowed = _ENTITY_FUNCTIONS.get(expr.name.lower())
        kind = static_type(expr.args[0])
        if allowed is not None and kind not in (None, "NULL", *allowed):
            raise fail(f"{expr.name}() cannot take a {kind}")
