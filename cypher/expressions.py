"""Expression evaluation: one row at a time, with Cypher's null and type semantics.

`evaluate(expr, row, ctx)` walks the AST. Aggregate calls are not computed here: the
projection computes them per group and hands the results in through `ctx.aggregates`
(keyed by the AST node's identity). Pattern expressions call back into the executor.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cypher import ast
from cypher.errors import CypherError, arithmetic_error, resource_error, type_error
from cypher.values import (
    INT64_MAX,
    INT64_MIN,
    NodeRef,
    PathValue,
    RelRef,
    compare,
    equals,
    is_number,
    type_name,
)
from store import values as sv

if TYPE_CHECKING:
    from cypher.executor import Context

Row = dict[str, Any]

MAX_LIST_SIZE = 10_000_000
"""Items a list made by `+` or `||` may hold: the bound `range()` has
(functions.MAX_RANGE_SIZE), so that doubling a list (`reduce(s = [1], i IN range(1, 30) |
s + s)`) fails at once instead of growing a node's memory by gigabytes."""
MAX_STRING_CHARS = 64 << 20
"""Characters a string made by `+` or `||` may hold: no message a node sends holds more
(cluster.transport.MAX_MESSAGE_BYTES is 64 MiB), and doubling a string stops here."""


def _check_list_size(size: int) -> None:
    if size > MAX_LIST_SIZE:
        raise resource_error(f"a list of {size} items exceeds {MAX_LIST_SIZE}")


def _bounded_list(value: list[Any]) -> list[Any]:
    _check_list_size(len(value))
    return value


def _bounded_string(left: str, right: str) -> str:
    if len(left) + len(right) > MAX_STRING_CHARS:
        raise resource_error(
            f"a string of {len(left) + len(right)} characters exceeds {MAX_STRING_CHARS}"
        )
    return left + right


AGGREGATES = frozenset(
    {
        "count",
        "sum",
        "avg",
        "min",
        "max",
        "collect",
        "stdev",
        "stdevp",
        "percentilecont",
        "percentiledisc",
    }
)


def check_int(value: int) -> int:
    if value > INT64_MAX or value < INT64_MIN:
        raise arithmetic_error("integer overflow", "IntegerOverflow")
    return value


def evaluate(expr: ast.Expr, row: Row, ctx: Context) -> Any:
    return _DISPATCH[type(expr)](expr, row, ctx)


def _literal(expr: ast.Literal, row: Row, ctx: Context) -> Any:
    return expr.value


def _parameter(expr: ast.Parameter, row: Row, ctx: Context) -> Any:
    try:
        return ctx.parameters[expr.name]
    except KeyError:
        raise CypherError(
            f"expected parameter ${expr.name}", "MissingParameter", kind="ParameterMissing"
        ) from None


def _variable(expr: ast.Variable, row: Row, ctx: Context) -> Any:
    try:
        return row[expr.name]
    except KeyError:
        raise CypherError(
            f"variable `{expr.name}` not defined", "UndefinedVariable", kind="SyntaxError"
        ) from None


def get_property(subject: Any, key: str, ctx: Context) -> Any:
    if subject is None:
        return None
    if isinstance(subject, NodeRef):
        return ctx.tx.node_properties(subject.id).get(key)
    if isinstance(subject, RelRef):
        return ctx.tx.rel_properties(subject.id).get(key)
    if isinstance(subject, dict):
        return subject.get(key)
    if isinstance(subject, (*sv.TEMPORAL_TYPES, sv.Point)):
        from cypher.temporal import component

        return component(subject, key)
    raise type_error(f"cannot read property {key!r} of a {type_name(subject)}")


def _property(expr: ast.Property, row: Row, ctx: Context) -> Any:
    return get_property(evaluate(expr.subject, row, ctx), expr.key, ctx)


def _subscript(expr: ast.Subscript, row: Row, ctx: Context) -> Any:
    subject = evaluate(expr.subject, row, ctx)
    index = evaluate(expr.index, row, ctx)
    if subject is None or index is None:
        return None
    if isinstance(subject, list):
        if not isinstance(index, int) or isinstance(index, bool):
            raise type_error("list index must be an integer")
        if -len(subject) <= index < len(subject):
            return subject[index]
        return None
    if isinstance(subject, (dict, NodeRef, RelRef)):
        if not isinstance(index, str):
            raise type_error("map key must be a string", "MapElementAccessByNonString")
        return get_property(subject, index, ctx)
    raise type_error(f"cannot index a {type_name(subject)}")


def _slice(expr: ast.Slice, row: Row, ctx: Context) -> Any:
    subject = evaluate(expr.subject, row, ctx)
    start = evaluate(expr.start, row, ctx) if expr.start is not None else 0
    end = evaluate(expr.end, row, ctx) if expr.end is not None else None
    if subject is None or start is None or (expr.end is not None and end is None):
        return None
    if not isinstance(subject, list):
        raise type_error(f"cannot slice a {type_name(subject)}")
    for bound in (start, end):
        if bound is not None and (not isinstance(bound, int) or isinstance(bound, bool)):
            raise type_error("list slice bounds must be integers")
    return subject[start:end]


def _list(expr: ast.ListLiteral, row: Row, ctx: Context) -> Any:
    return [evaluate(item, row, ctx) for item in expr.items]


def _map(expr: ast.MapLiteral, row: Row, ctx: Context) -> Any:
    return {key: evaluate(value, row, ctx) for key, value in expr.items}


def _map_projection(expr: ast.MapProjection, row: Row, ctx: Context) -> Any:
    subject = _variable(expr.variable, row, ctx)
    if subject is None:
        return None
    result: dict[str, Any] = {}
    for kind, key, value in expr.items:
        if kind == "prop":
            result[key] = get_property(subject, key, ctx)
        elif kind == "all":
            if isinstance(subject, NodeRef):
                result.update(ctx.tx.node_properties(subject.id))
            elif isinstance(subject, RelRef):
                result.update(ctx.tx.rel_properties(subject.id))
            elif isinstance(subject, dict):
                result.update(subject)
            else:
                raise type_error(f"cannot project a {type_name(subject)}")
        elif kind == "var":
            result[key] = row.get(key)
        else:
            assert value is not None
            result[key] = evaluate(value, row, ctx)
    return result


def _function(expr: ast.FunctionCall, row: Row, ctx: Context) -> Any:
    aggregates = ctx.aggregates
    if aggregates is not None and id(expr) in aggregates:
        return aggregates[id(expr)]
    from cypher.functions import call_function

    return call_function(expr, row, ctx)


def _count_star(expr: ast.CountStar, row: Row, ctx: Context) -> Any:
    aggregates = ctx.aggregates
    if aggregates is not None and id(expr) in aggregates:
        return aggregates[id(expr)]
    raise CypherError("count(*) outside an aggregation", "InvalidAggregation", kind="SyntaxError")


# -- operators -----------------------------------------------------------------------------


def _truth(value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise type_error(f"expected a boolean, got {type_name(value)}")


def _and(left: Any, right: Callable[[], Any]) -> Any:
    a = _truth(left)
    if a is False:
        b = _truth(right())
        return False
    b = _truth(right())
    if b is False:
        return False
    if a is None or b is None:
        return None
    return True


def _or(left: Any, right: Callable[[], Any]) -> Any:
    a = _truth(left)
    b = _truth(right())
    if a is True or b is True:
        return True
    if a is None or b is None:
        return None
    return False


def _xor(left: Any, right: Any) -> Any:
    a = _truth(left)
    b = _truth(right)
    if a is None or b is None:
        return None
    return a != b


def add(left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if is_number(left) and is_number(right):
        if isinstance(left, int) and isinstance(right, int):
            return check_int(left + right)
        return left + right
    if isinstance(left, list):
        if isinstance(right, list):
            _check_list_size(len(left) + len(right))
            return left + right
        return _bounded_list([*left, right])
    if isinstance(right, list):
        return _bounded_list([left, *right])
    if (
        isinstance(left, str)
        and isinstance(right, (str, int, float))
        and not isinstance(right, bool)
    ):
        return _bounded_string(left, right if isinstance(right, str) else _num_str(right))
    if isinstance(right, str) and is_number(left):
        return _bounded_string(_num_str(left), right)
    from cypher import temporal

    result = temporal.add(left, right)
    if result is not NotImplemented:
        return result
    raise type_error(f"cannot add {type_name(left)} and {type_name(right)}")


def _concat(left: Any, right: Any) -> Any:
    """`||` (Neo4j 5.19): two strings or two lists; null if either is null."""
    if left is None or right is None:
        return None
    if isinstance(left, str) and isinstance(right, str):
        return _bounded_string(left, right)
    if isinstance(left, list) and isinstance(right, list):
        _check_list_size(len(left) + len(right))
        return left + right
    raise type_error(f"|| cannot concatenate {type_name(left)} and {type_name(right)}")


def _num_str(value: Any) -> str:
    from cypher.functions import to_string

    return str(to_string(value))


def subtract(left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if is_number(left) and is_number(right):
        if isinstance(left, int) and isinstance(right, int):
            return check_int(left - right)
        return left - right
    from cypher import temporal

    result = temporal.subtract(left, right)
    if result is not NotImplemented:
        return result
    raise type_error(f"cannot subtract {type_name(right)} from {type_name(left)}")


def multiply(left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if is_number(left) and is_number(right):
        if isinstance(left, int) and isinstance(right, int):
            return check_int(left * right)
        return left * right
    from cypher import temporal

    result = temporal.multiply(left, right)
    if result is not NotImplemented:
        return result
    raise type_error(f"cannot multiply {type_name(left)} and {type_name(right)}")


def divide(left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if is_number(left) and is_number(right):
        if isinstance(left, int) and isinstance(right, int):
            if right == 0:
                raise arithmetic_error("/ by zero", "DivisionByZero")
            quotient = abs(left) // abs(right)
            return check_int(quotient if (left >= 0) == (right >= 0) else -quotient)
        try:
            return left / right
        except ZeroDivisionError:
            if left == 0 or (isinstance(left, float) and math.isnan(left)):
                return math.nan
            return math.copysign(math.inf, left) * math.copysign(1.0, right)
    from cypher import temporal

    result = temporal.divide(left, right)
    if result is not NotImplemented:
        return result
    raise type_error(f"cannot divide {type_name(left)} by {type_name(right)}")


def modulo(left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if is_number(left) and is_number(right):
        if isinstance(left, int) and isinstance(right, int):
            if right == 0:
                raise arithmetic_error("/ by zero", "DivisionByZero")
            remainder = abs(left) % abs(right)
            return -remainder if left < 0 else remainder
        if right == 0:
            return math.nan
        return math.fmod(left, right)
    raise type_error(f"cannot take {type_name(left)} modulo {type_name(right)}")


def power(left: Any, right: Any) -> Any:
    if left is None or right is None:
        return None
    if is_number(left) and is_number(right):
        try:
            return float(left) ** float(right)
        except ZeroDivisionError:
            return math.inf
        except OverflowError:
            return math.inf
    raise type_error(f"cannot raise {type_name(left)} to {type_name(right)}")


def _in(left: Any, right: Any) -> Any:
    if right is None:
        return None
    if not isinstance(right, list):
        raise type_error(f"IN expects a list, got {type_name(right)}")
    unknown = False
    for item in right:
        result = equals(left, item)
        if result is True:
            return True
        if result is None:
            unknown = True
    return None if unknown else False


def _string_op(op: str, left: Any, right: Any) -> Any:
    if not isinstance(left, str) or not isinstance(right, str):
        return None
    if op == "STARTS WITH":
        return left.startswith(right)
    if op == "ENDS WITH":
        return left.endswith(right)
    return right in left


def _regex(left: Any, right: Any) -> Any:
    if not isinstance(left, str) or not isinstance(right, str):
        return None
    try:
        return re.fullmatch(right, left, re.S) is not None
    except re.error as error:
        raise CypherError(f"invalid regular expression: {error}", "InvalidRegex") from None


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": add,
    "-": subtract,
    "*": multiply,
    "/": divide,
    "%": modulo,
    "^": power,
    "XOR": _xor,
    "IN": _in,
    "STARTS WITH": lambda a, b: _string_op("STARTS WITH", a, b),
    "ENDS WITH": lambda a, b: _string_op("ENDS WITH", a, b),
    "CONTAINS": lambda a, b: _string_op("CONTAINS", a, b),
    "=~": _regex,
    "||": _concat,
}


def evaluate_predicate(expr: ast.Expr, row: Row, ctx: Context) -> Any:
    """Evaluate in a boolean position, where a bare pattern means "such a path exists"."""
    if isinstance(expr, ast.PatternExpr) and expr.pattern.shortest is None:
        return bool(ctx.executor.pattern_paths(expr.pattern, row, 1))
    return evaluate(expr, row, ctx)


def _binary(expr: ast.BinaryOp, row: Row, ctx: Context) -> Any:
    op = expr.op
    if op in ("AND", "OR", "XOR"):
        left = evaluate_predicate(expr.left, row, ctx)
        if op == "AND":
            return _and(left, lambda: evaluate_predicate(expr.right, row, ctx))
        if op == "OR":
            return _or(left, lambda: evaluate_predicate(expr.right, row, ctx))
        return _xor(left, evaluate_predicate(expr.right, row, ctx))
    left = evaluate(expr.left, row, ctx)
    return _BINARY[op](left, evaluate(expr.right, row, ctx))


def compare_op(op: str, left: Any, right: Any) -> bool | None:
    if op == "=":
        return equals(left, right)
    if op == "<>":
        result = equals(left, right)
        return None if result is None else not result
    cmp = compare(left, right)
    if cmp is None:
        if _is_nan(left) or _is_nan(right):
            other = right if _is_nan(left) else left
            return False if is_number(other) else None
        return None
    if op == "<":
        return cmp < 0
    if op == ">":
        return cmp > 0
    if op == "<=":
        return cmp <= 0
    return cmp >= 0


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _comparison(expr: ast.Comparison, row: Row, ctx: Context) -> Any:
    values = [evaluate(operand, row, ctx) for operand in expr.operands]
    result: bool | None = True
    for index, op in enumerate(expr.ops):
        part = compare_op(op, values[index], values[index + 1])
        if part is False:
            return False
        if part is None:
            result = None
    return result


def _unary(expr: ast.UnaryOp, row: Row, ctx: Context) -> Any:
    if expr.op == "NOT":
        value = evaluate_predicate(expr.operand, row, ctx)
        truth = _truth(value)
        return None if truth is None else not truth
    value = evaluate(expr.operand, row, ctx)
    if value is None:
        return None
    if expr.op == "-":
        if is_number(value):
            return check_int(-value) if isinstance(value, int) else -value
        from cypher import temporal

        result = temporal.negate(value)
        if result is not NotImplemented:
            return result
        raise type_error(f"cannot negate a {type_name(value)}")
    if not is_number(value):
        raise type_error(f"unary plus on a {type_name(value)}")
    return value


def _is_null(expr: ast.IsNull, row: Row, ctx: Context) -> Any:
    value = evaluate(expr.operand, row, ctx)
    return (value is not None) if expr.negated else (value is None)


def _has_labels(expr: ast.HasLabels, row: Row, ctx: Context) -> Any:
    subject = evaluate(expr.subject, row, ctx)
    if subject is None:
        return None
    if isinstance(subject, NodeRef):
        labels = ctx.tx.node_labels(subject.id)
        if expr.expression is not None:
            return expr.expression.matches(labels)
        return all(label in labels for label in expr.labels)
    if isinstance(subject, RelRef):
        rel_type = ctx.tx.rel_type(subject.id)
        if expr.expression is not None:
            return expr.expression.matches({rel_type})
        return all(label == rel_type for label in expr.labels)
    raise type_error(f"cannot check labels of a {type_name(subject)}")


def _case(expr: ast.Case, row: Row, ctx: Context) -> Any:
    if expr.subject is not None:
        subject = evaluate(expr.subject, row, ctx)
        for when, then in expr.whens:
            if equals(subject, evaluate(when, row, ctx)) is True:
                return evaluate(then, row, ctx)
    else:
        for when, then in expr.whens:
            if evaluate(when, row, ctx) is True:
                return evaluate(then, row, ctx)
    return evaluate(expr.default, row, ctx) if expr.default is not None else None


def _source_list(source: ast.Expr, row: Row, ctx: Context) -> list[Any] | None:
    value = evaluate(source, row, ctx)
    if value is None:
        return None
    if not isinstance(value, list):
        raise type_error(f"expected a list, got {type_name(value)}")
    return value


def _list_comprehension(expr: ast.ListComprehension, row: Row, ctx: Context) -> Any:
    items = _source_list(expr.source, row, ctx)
    if items is None:
        return None
    result = []
    inner = dict(row)
    step = ctx.executor.step
    for item in items:
        step()
        inner[expr.variable] = item
        if expr.where is not None and evaluate(expr.where, inner, ctx) is not True:
            continue
        result.append(evaluate(expr.projection, inner, ctx) if expr.projection else item)
    return result


def _quantifier(expr: ast.Quantifier, row: Row, ctx: Context) -> Any:
    items = _source_list(expr.source, row, ctx)
    if items is None:
        return None
    inner = dict(row)
    trues = 0
    unknown = 0
    step = ctx.executor.step
    for item in items:
        step()
        inner[expr.variable] = item
        value = True if expr.where is None else evaluate(expr.where, inner, ctx)
        if value is True:
            trues += 1
        elif value is None:
            unknown += 1
        elif value is not False:
            raise type_error("quantifier predicate must be a boolean")
    total = len(items)
    falses = total - trues - unknown
    if expr.kind == "ALL":
        if falses:
            return False
        return None if unknown else True
    if expr.kind == "ANY":
        if trues:
            return True
        return None if unknown else False
    if expr.kind == "NONE":
        if trues:
            return False
        return None if unknown else True
    # SINGLE
    if trues > 1:
        return False
    if unknown:
        return None
    return trues == 1


def _reduce(expr: ast.Reduce, row: Row, ctx: Context) -> Any:
    items = _source_list(expr.source, row, ctx)
    accumulator = evaluate(expr.initial, row, ctx)
    if items is None:
        return None
    inner = dict(row)
    step = ctx.executor.step
    for item in items:
        step()
        inner[expr.accumulator] = accumulator
        inner[expr.variable] = item
        accumulator = evaluate(expr.expression, inner, ctx)
    return accumulator


def _pattern_expr(expr: ast.PatternExpr, row: Row, ctx: Context) -> Any:
    return ctx.executor.pattern_paths(expr.pattern, row, None)


def _pattern_comprehension(expr: ast.PatternComprehension, row: Row, ctx: Context) -> Any:
    result = []
    for inner in ctx.executor.pattern_rows(expr.pattern, row):
        if expr.where is not None and evaluate_predicate(expr.where, inner, ctx) is not True:
            continue
        result.append(evaluate(expr.projection, inner, ctx))
    return result


def _type_predicate(expr: ast.TypePredicate, row: Row, ctx: Context) -> Any:
    from cypher.types import matches

    return matches(evaluate(expr.operand, row, ctx), expr.spec) is not expr.negated


def _exists(expr: ast.ExistsSubquery, row: Row, ctx: Context) -> Any:
    if expr.collect:
        assert expr.query is not None
        return ctx.executor.subquery_collect(expr.query, row)
    if expr.count:
        if expr.query is not None:
            return ctx.executor.subquery_count(expr.query, row)
        return sum(
            1
            for inner in ctx.executor.patterns_rows(expr.patterns, row)
            if expr.where is None or evaluate_predicate(expr.where, inner, ctx) is True
        )
    if expr.query is not None:
        return ctx.executor.subquery_has_rows(expr.query, row)
    for inner in ctx.executor.patterns_rows(expr.patterns, row):
        if expr.where is None or evaluate_predicate(expr.where, inner, ctx) is True:
            return True
    return False


_DISPATCH: dict[type, Callable[[Any, Row, Context], Any]] = {
    ast.Literal: _literal,
    ast.Parameter: _parameter,
    ast.Variable: _variable,
    ast.Property: _property,
    ast.Subscript: _subscript,
    ast.Slice: _slice,
    ast.ListLiteral: _list,
    ast.MapLiteral: _map,
    ast.MapProjection: _map_projection,
    ast.FunctionCall: _function,
    ast.CountStar: _count_star,
    ast.BinaryOp: _binary,
    ast.Comparison: _comparison,
    ast.UnaryOp: _unary,
    ast.IsNull: _is_null,
    ast.HasLabels: _has_labels,
    ast.Case: _case,
    ast.ListComprehension: _list_comprehension,
    ast.Quantifier: _quantifier,
    ast.Reduce: _reduce,
    ast.PatternExpr: _pattern_expr,
    ast.PatternComprehension: _pattern_comprehension,
    ast.ExistsSubquery: _exists,
    ast.TypePredicate: _type_predicate,
}


def register(kind: type, handler: Callable[[Any, Row, Context], Any]) -> None:
    _DISPATCH[kind] = handler


def path_of(value: Any) -> PathValue | None:
    return value if isinstance(value, PathValue) else None
