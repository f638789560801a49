"""Parsing: Cypher text to the typed AST of `cypher.ast`, with lark's LALR(1) parser.

The grammar lives in `cypher.lark` beside this module; `cypher.lexer` tokenizes. Schema
commands (CREATE/DROP INDEX and CONSTRAINT, SHOW INDEXES/CONSTRAINTS) have a tiny fixed
syntax and are recognised here without the grammar. Every failure is a `CypherError` with
kind SyntaxError, a TCK detail code, and the line and column where it was found.
"""

from __future__ import annotations

import dataclasses
import re
from importlib import resources
from typing import Any

from lark import Lark, Token, Transformer, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError

from cypher import ast
from cypher.errors import CypherError, syntax_error
from cypher.lexer import CypherLexer

_GRAMMAR = resources.files("cypher").joinpath("cypher.lark").read_text(encoding="utf-8")
_PARSER = Lark(
    _GRAMMAR,
    parser="lalr",
    lexer=CypherLexer,
    propagate_positions=True,
    maybe_placeholders=False,
)

INT64_MAX = (1 << 63) - 1


def _pos(token: Any) -> ast.Pos | None:
    line = getattr(token, "line", None)
    column = getattr(token, "column", None)
    if line is None or column is None:
        return None
    return ast.Pos(line, column)


def _toks(items: list[Any]) -> list[Any]:
    """Children that are not tokens (lark keeps declared terminals)."""
    return [item for item in items if not isinstance(item, Token)]


def _has(items: list[Any], kind: str) -> bool:
    return any(isinstance(item, Token) and item.type == kind for item in items)


_IntLiteral = ast.OverflowInteger


class _Builder(Transformer[Token, Any]):
    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    # -- statement ----------------------------------------------------------------------------
    def start(self, items: list[Any]) -> ast.Statement:
        mode = None
        body = None
        for item in items:
            if isinstance(item, str) and not isinstance(item, Token):
                mode = item
            elif isinstance(item, ast.Query):
                body = item
        assert body is not None
        return ast.Statement(body, mode)

    def mode(self, items: list[Token]) -> str:
        return str(items[0].type)

    def query(self, items: list[Any]) -> ast.Query:
        parts = [i for i in items if isinstance(i, ast.SingleQuery)]
        unions = [i for i in items if isinstance(i, bool)]
        return ast.Query(tuple(parts), tuple(unions))

    def union(self, items: list[Token]) -> bool:
        return _has(items, "ALL")

    def single_query(self, items: list[Any]) -> ast.SingleQuery:
        return ast.SingleQuery(tuple(items))

    # -- clauses ------------------------------------------------------------------------------
    def match(self, items: list[Any]) -> ast.Match:
        rest = _toks(items)
        where = rest[1] if len(rest) > 1 else None
        return ast.Match(_has(items, "OPTIONAL"), rest[0], where)

    def where(self, items: list[Any]) -> ast.Expr:
        return items[1]

    def unwind(self, items: list[Any]) -> ast.Unwind:
        return ast.Unwind(items[1], items[3].name)

    def with_clause(self, items: list[Any]) -> ast.With:
        rest = _toks(items)
        return ast.With(rest[0], rest[1] if len(rest) > 1 else None)

    def return_clause(self, items: list[Any]) -> ast.Return:
        return ast.Return(items[1])

    def projection(self, items: list[Any]) -> ast.Projection:
        distinct = _has(items, "DISTINCT")
        star, proj_items = next(i for i in items if isinstance(i, tuple) and len(i) == 2)
        order: tuple[ast.SortItem, ...] = ()
        skip = limit = None
        for item in items:
            if isinstance(item, list):
                order = tuple(item)
            elif isinstance(item, _Limit):
                limit = item.expr
            elif isinstance(item, _Skip):
                skip = item.expr
        return ast.Projection(distinct, star, proj_items, order, skip, limit)

    def items_star(self, items: list[Any]) -> tuple[bool, tuple[ast.ProjectionItem, ...]]:
        return True, ()

    def items_star_plus(self, items: list[Any]) -> tuple[bool, tuple[ast.ProjectionItem, ...]]:
        return True, tuple(_toks(items))

    def items_list(self, items: list[Any]) -> tuple[bool, tuple[ast.ProjectionItem, ...]]:
        return False, tuple(_toks(items))

    @v_args(meta=True)
    def projection_item(self, meta: Any, items: list[Any]) -> ast.ProjectionItem:
        expr = items[0]
        alias = items[2].name if len(items) > 2 else None
        text = alias if alias is not None else self._text_of(meta, expr)
        return ast.ProjectionItem(expr, alias, text)

    def _text_of(self, meta: Any, expr: Any) -> str:
        if getattr(meta, "empty", True):
            return ""
        return self.text[meta.start_pos : meta.end_pos].strip()

    def order(self, items: list[Any]) -> list[ast.SortItem]:
        return _toks(items)

    def sort_item(self, items: list[Any]) -> ast.SortItem:
        ascending = True
        if len(items) > 1:
            ascending = items[1]
        return ast.SortItem(items[0], ascending)

    def sort_dir(self, items: list[Token]) -> bool:
        return items[0].type in ("ASC", "ASCENDING")

    def skip(self, items: list[Any]) -> _Skip:
        return _Skip(items[1])

    def limit(self, items: list[Any]) -> _Limit:
        return _Limit(items[1])

    def create(self, items: list[Any]) -> ast.Create:
        return ast.Create(items[1])

    def merge(self, items: list[Any]) -> ast.Merge:
        on_create: list[ast.SetItem] = []
        on_match: list[ast.SetItem] = []
        for item in items[2:]:
            kind, set_items = item
            (on_create if kind == "create" else on_match).extend(set_items)
        return ast.Merge(items[1], tuple(on_create), tuple(on_match))

    def on_match(self, items: list[Any]) -> tuple[str, list[ast.SetItem]]:
        return "match", _toks(items)

    def on_create(self, items: list[Any]) -> tuple[str, list[ast.SetItem]]:
        return "create", _toks(items)

    def set_clause(self, items: list[Any]) -> ast.SetClause:
        return ast.SetClause(tuple(_toks(items)))

    def set_prop(self, items: list[Any]) -> ast.SetItem:
        return ast.SetItem("prop", items[0], items[2])

    def set_replace(self, items: list[Any]) -> ast.SetItem:
        return ast.SetItem("replace", items[0], items[2])

    def set_merge(self, items: list[Any]) -> ast.SetItem:
        return ast.SetItem("merge", items[0], items[2])

    def set_dynamic(self, items: list[Any]) -> ast.SetItem:
        target = ast.Subscript(items[0], self._check_int(items[2]))
        return ast.SetItem("dynamic", target, self._check_int(items[5]))

    def remove_dynamic(self, items: list[Any]) -> ast.RemoveItem:
        return ast.RemoveItem("dynamic", ast.Subscript(items[0], self._check_int(items[2])))

    def set_labels(self, items: list[Any]) -> ast.SetItem:
        return ast.SetItem("labels", items[0], None, items[1])

    def property_target(self, items: list[Any]) -> ast.Expr:
        rest = _toks(items)
        subject = rest[0]
        for key in rest[1:]:
            subject = ast.Property(subject, key)
        return subject

    def remove(self, items: list[Any]) -> ast.Remove:
        return ast.Remove(tuple(_toks(items)))

    def remove_labels(self, items: list[Any]) -> ast.RemoveItem:
        return ast.RemoveItem("labels", items[0], items[1])

    def remove_prop(self, items: list[Any]) -> ast.RemoveItem:
        return ast.RemoveItem("prop", items[0])

    def delete(self, items: list[Any]) -> ast.Delete:
        return ast.Delete(_has(items, "DETACH"), tuple(_toks(items)))

    def foreach(self, items: list[Any]) -> ast.Foreach:
        rest = _toks(items)
        variable, source, clauses = rest[0], rest[1], rest[2:]
        return ast.Foreach(variable.name, self._check_int(source), tuple(clauses))

    def call_args(self, items: list[Any]) -> ast.Call:
        name_token = items[1]
        rest = _toks(items)
        yields = None
        star = False
        where = None
        if rest and isinstance(rest[-1], _Yield):
            y = rest.pop()
            yields, star, where = y.items, y.star, y.where
        return ast.Call(str(name_token), tuple(rest), yields, star, where, _pos(items[0]))

    def call_implicit(self, items: list[Any]) -> ast.Call:
        rest = _toks(items)
        yields = None
        star = False
        where = None
        if len(rest) > 1:
            y = rest[1]
            yields, star, where = y.items, y.star, y.where
        return ast.Call(rest[0], None, yields, star, where, _pos(items[0]))

    def qualified_name(self, items: list[Any]) -> str:
        return ".".join(str(i) for i in items if i.type == "NAME")

    def yield_star(self, items: list[Any]) -> _Yield:
        return _Yield(None, True, None)

    def yield_items(self, items: list[Any]) -> _Yield:
        rest = _toks(items)
        where = None
        if rest and not isinstance(rest[-1], tuple):
            where = rest.pop()
        return _Yield(tuple(rest), False, where)

    def yield_item(self, items: list[Any]) -> tuple[str, str]:
        field = str(items[0])
        alias = items[2].name if len(items) > 2 else field
        return field, alias

    # -- patterns -----------------------------------------------------------------------------
    def pattern(self, items: list[Any]) -> tuple[ast.PatternPart, ...]:
        return tuple(_toks(items))

    def pattern_part(self, items: list[Any]) -> ast.PatternPart:
        rest = _toks(items)
        part: ast.PatternPart = rest[-1]
        if len(rest) > 1:
            return ast.PatternPart(rest[0].name, part.nodes, part.rels, part.shortest)
        return part

    def chain(self, items: list[Any]) -> ast.PatternPart:
        nodes = tuple(i for i in items if isinstance(i, ast.NodePattern))
        rels = tuple(i for i in items if isinstance(i, ast.RelPattern))
        return ast.PatternPart(None, nodes, rels)

    def shortest(self, items: list[Any]) -> ast.PatternPart:
        part: ast.PatternPart = items[2]
        return ast.PatternPart(None, part.nodes, part.rels, "shortest")

    def all_shortest(self, items: list[Any]) -> ast.PatternPart:
        part: ast.PatternPart = items[2]
        return ast.PatternPart(None, part.nodes, part.rels, "all")

    def node_pattern(self, items: list[Any]) -> ast.NodePattern:
        inner: ast.NodePattern = items[1]
        return dataclasses.replace(inner, pos=_pos(items[0]))

    def node_inner(self, items: list[Any]) -> ast.NodePattern:
        variable = None
        labels: tuple[str, ...] = ()
        expression = None
        props = None
        where = None
        for item in items:
            if isinstance(item, ast.Variable):
                variable = item.name
            elif isinstance(item, tuple):
                labels, expression = item
            elif isinstance(item, _PatternWhere):
                where = item.expr
            else:
                props = item
        return ast.NodePattern(variable, labels, props, None, expression, where)

    def pattern_where(self, items: list[Any]) -> _PatternWhere:
        return _PatternWhere(self._check_int(items[1]))

    def node_label_expr(
        self, items: list[Any]
    ) -> tuple[tuple[str, ...], ast.LabelExpression | None]:
        conjuncts: list[ast.LabelExpression] = []
        for item in items:
            if isinstance(item, ast.LabelExpression):
                conjuncts.extend(item.operands if item.op == "and" else (item,))
        names = tuple(c.name for c in conjuncts if c.op == "label")
        rest = tuple(c for c in conjuncts if c.op != "label")
        if not rest:
            return names, None
        return names, rest[0] if len(rest) == 1 else ast.LabelExpression("and", operands=rest)

    def label_or(self, items: list[Any]) -> ast.LabelExpression:
        operands = tuple(i for i in items if isinstance(i, ast.LabelExpression))
        return operands[0] if len(operands) == 1 else ast.LabelExpression("or", operands=operands)

    def label_and(self, items: list[Any]) -> ast.LabelExpression:
        operands = tuple(i for i in items if isinstance(i, ast.LabelExpression))
        if len(operands) == 1:
            return operands[0]
        return ast.LabelExpression("and", operands=operands)

    def label_negation(self, items: list[Any]) -> ast.LabelExpression:
        return ast.LabelExpression("not", operands=(items[1],))

    def label_atom(self, items: list[Any]) -> ast.LabelExpression:
        return ast.LabelExpression("label", str(items[0]))

    def label_group(self, items: list[Any]) -> ast.LabelExpression:
        return items[1]  # type: ignore[no-any-return]

    def node_labels(self, items: list[Any]) -> tuple[str, ...]:
        return tuple(str(i) for i in items if not isinstance(i, Token) or i.type != "COLON")

    def label_name(self, items: list[Token]) -> str:
        return str(items[0])

    def properties(self, items: list[Any]) -> ast.Expr:
        return items[0]

    def param_properties(self, items: list[Token]) -> ast.Expr:
        return ast.Parameter(str(items[0]))

    def rel_pattern(self, items: list[Any]) -> ast.RelPattern:
        left = _has(items, "LT")
        right = _has(items, "GT")
        detail = next((i for i in items if isinstance(i, ast.RelPattern)), None)
        direction = "both"
        if left and not right:
            direction = "in"
        elif right and not left:
            direction = "out"
        pos = _pos(items[0])
        if detail is None:
            return ast.RelPattern(None, (), direction, None, None, pos)
        return dataclasses.replace(detail, direction=direction, pos=pos)

    def rel_detail(self, items: list[Any]) -> ast.RelPattern:
        variable = None
        types: tuple[str, ...] = ()
        length = None
        props = None
        where = None
        for item in _toks(items):
            if isinstance(item, ast.Variable):
                variable = item.name
            elif isinstance(item, _Types):
                types = item.names
            elif isinstance(item, _Length):
                length = item.bounds
            elif isinstance(item, _PatternWhere):
                where = item.expr
            else:
                props = item
        return ast.RelPattern(variable, types, "both", props, length, None, where)

    def rel_types(self, items: list[Any]) -> _Types:
        return _Types(tuple(i for i in items if isinstance(i, str) and not isinstance(i, Token)))

    def var_length(self, items: list[Any]) -> _Length:
        if len(items) == 1:
            return _Length((1, None))
        return _Length(items[1])

    def range_exact(self, items: list[Token]) -> tuple[int | None, int | None]:
        value = int(items[0].value)
        return value, value

    def range_bounds(self, items: list[Token]) -> tuple[int | None, int | None]:
        low: int | None = None
        high: int | None = None
        seen_dots = False
        for item in items:
            if item.type == "DOTDOT":
                seen_dots = True
            elif seen_dots:
                high = int(item.value)
            else:
                low = int(item.value)
        return (1 if low is None else low), high

    # -- expressions --------------------------------------------------------------------------
    def _binary(self, op: str, items: list[Any]) -> ast.Expr:
        left, right = items[0], items[-1]
        return ast.BinaryOp(op, self._check_int(left), self._check_int(right))

    def _check_int(self, expr: Any) -> Any:
        if isinstance(expr, _IntLiteral):
            if expr.value > INT64_MAX:
                raise syntax_error("integer literal is too large", "IntegerOverflow")
            return ast.Literal(expr.value)
        return expr

    def or_op(self, items: list[Any]) -> ast.Expr:
        return self._binary("OR", items)

    def xor_op(self, items: list[Any]) -> ast.Expr:
        return self._binary("XOR", items)

    def and_op(self, items: list[Any]) -> ast.Expr:
        return self._binary("AND", items)

    def not_op(self, items: list[Any]) -> ast.Expr:
        return ast.UnaryOp("NOT", self._check_int(items[1]))

    def compare(self, items: list[Any]) -> ast.Expr:
        operands = [self._check_int(items[0])]
        ops: list[str] = []
        rest = items[1:]
        for index in range(0, len(rest), 2):
            ops.append(rest[index])
            operands.append(self._check_int(rest[index + 1]))
        return ast.Comparison(tuple(ops), tuple(operands))

    def comp_op(self, items: list[Token]) -> str:
        return {"EQ": "=", "NE": "<>", "LT": "<", "GT": ">", "LE": "<=", "GE": ">="}[items[0].type]

    def in_op(self, items: list[Any]) -> ast.Expr:
        return self._binary("IN", items)

    def starts_with(self, items: list[Any]) -> ast.Expr:
        return self._binary("STARTS WITH", items)

    def ends_with(self, items: list[Any]) -> ast.Expr:
        return self._binary("ENDS WITH", items)

    def contains(self, items: list[Any]) -> ast.Expr:
        return self._binary("CONTAINS", items)

    def regex(self, items: list[Any]) -> ast.Expr:
        return self._binary("=~", items)

    def is_null(self, items: list[Any]) -> ast.Expr:
        return ast.IsNull(self._check_int(items[0]), False)

    def is_not_null(self, items: list[Any]) -> ast.Expr:
        return ast.IsNull(self._check_int(items[0]), True)

    def add(self, items: list[Any]) -> ast.Expr:
        return self._binary("+", items)

    def sub(self, items: list[Any]) -> ast.Expr:
        operator = items[1]
        if isinstance(operator, Token) and str(operator) != "-":
            raise syntax_error(
                f"invalid character {str(operator)!r} for subtraction",
                "InvalidUnicodeCharacter",
                operator.line,
                operator.column,
            )
        return self._binary("-", items)

    def mul(self, items: list[Any]) -> ast.Expr:
        return self._binary("*", items)

    def div(self, items: list[Any]) -> ast.Expr:
        return self._binary("/", items)

    def mod(self, items: list[Any]) -> ast.Expr:
        return self._binary("%", items)

    def pow(self, items: list[Any]) -> ast.Expr:
        return self._binary("^", items)

    def neg(self, items: list[Any]) -> ast.Expr:
        operand = items[1]
        if isinstance(operand, ast.Literal) and type(operand.value) is int:
            return ast.Literal(-operand.value)
        if isinstance(operand, _IntLiteral):
            if operand.value > INT64_MAX + 1:
                raise syntax_error("integer literal is too large", "IntegerOverflow")
            return ast.Literal(-operand.value)
        if isinstance(operand, ast.Literal) and isinstance(operand.value, float):
            return ast.Literal(-operand.value)
        return ast.UnaryOp("-", self._check_int(operand))

    def pos(self, items: list[Any]) -> ast.Expr:
        return ast.UnaryOp("+", self._check_int(items[1]))

    def prop(self, items: list[Any]) -> ast.Expr:
        return ast.Property(self._check_int(items[0]), items[2])

    def index(self, items: list[Any]) -> ast.Expr:
        return ast.Subscript(self._check_int(items[0]), self._check_int(items[2]))

    def slice(self, items: list[Any]) -> ast.Expr:
        subject = self._check_int(items[0])
        start = end = None
        seen = False
        for item in items[2:-1]:
            if isinstance(item, Token) and item.type == "DOTDOT":
                seen = True
            elif seen:
                end = self._check_int(item)
            else:
                start = self._check_int(item)
        return ast.Slice(subject, start, end)

    def has_labels(self, items: list[Any]) -> ast.Expr:
        return ast.HasLabels(self._check_int(items[0]), items[1])

    def has_label_expr(self, items: list[Any]) -> ast.Expr:
        return ast.HasLabels(self._check_int(items[0]), (), items[2])

    def _lx_combine(self, items: list[Any]) -> ast.LabelExpression:
        """Items split by `|` into conjunctions joined by `&`: their disjunction."""
        disjuncts: list[ast.LabelExpression] = []
        conjuncts: list[ast.LabelExpression] = []
        for item in [*items, None]:
            if isinstance(item, ast.LabelExpression):
                conjuncts.append(item)
            elif item is None or item.type == "LBAR":
                one = conjuncts[0] if len(conjuncts) == 1 else None
                disjuncts.append(one or ast.LabelExpression("and", operands=tuple(conjuncts)))
                conjuncts = []
        if len(disjuncts) == 1:
            return disjuncts[0]
        return ast.LabelExpression("or", operands=tuple(disjuncts))

    lx_or_head = lx_and_head = lx_prefix_head = lx_or = lx_and = _lx_combine

    def lx_not(self, items: list[Any]) -> ast.LabelExpression:
        return items[0]  # type: ignore[no-any-return]

    def lx_name(self, items: list[Token]) -> ast.LabelExpression:
        return ast.LabelExpression("label", str(items[0]))

    def lx_negation(self, items: list[Any]) -> ast.LabelExpression:
        return ast.LabelExpression("not", operands=(items[1],))

    def lx_group(self, items: list[Any]) -> ast.LabelExpression:
        return items[1]  # type: ignore[no-any-return]

    def param(self, items: list[Token]) -> ast.Expr:
        return ast.Parameter(str(items[0].value))

    def int_lit(self, items: list[Token]) -> ast.Expr:
        value = items[0].value
        if value > INT64_MAX:
            return _IntLiteral(value)
        return ast.Literal(value)

    def float_lit(self, items: list[Token]) -> ast.Expr:
        return ast.Literal(items[0].value)

    def string_lit(self, items: list[Token]) -> ast.Expr:
        return ast.Literal(items[0].value)

    def true_lit(self, items: list[Token]) -> ast.Expr:
        return ast.Literal(True)

    def false_lit(self, items: list[Token]) -> ast.Expr:
        return ast.Literal(False)

    def null_lit(self, items: list[Token]) -> ast.Expr:
        return ast.Literal(None)

    def variable(self, items: list[Token]) -> ast.Variable:
        return ast.Variable(str(items[0]), _pos(items[0]))

    def prop_key(self, items: list[Token]) -> str:
        return str(items[0])

    def atom(self, items: list[Any]) -> ast.Expr:  # LPAR expr RPAR
        return self._check_int(items[1])

    def list_literal(self, items: list[Any]) -> ast.Expr:
        return ast.ListLiteral(tuple(self._check_int(i) for i in _toks(items)))

    def map_literal(self, items: list[Any]) -> ast.Expr:
        rest = _toks(items)
        pairs = tuple((rest[i], self._check_int(rest[i + 1])) for i in range(0, len(rest), 2))
        return ast.MapLiteral(pairs)

    def map_projection(self, items: list[Any]) -> ast.Expr:
        rest = _toks(items)
        return ast.MapProjection(rest[0], tuple(rest[1:]))

    def proj_prop(self, items: list[Any]) -> tuple[str, str, None]:
        return "prop", items[1], None

    def proj_all(self, items: list[Any]) -> tuple[str, str, None]:
        return "all", "", None

    def proj_var(self, items: list[Any]) -> tuple[str, str, None]:
        return "var", items[0].name, None

    def proj_lit(self, items: list[Any]) -> tuple[str, str, ast.Expr]:
        return "lit", items[0], self._check_int(items[2])

    def case_expr(self, items: list[Any]) -> ast.Expr:
        subject = None
        whens = []
        default = None
        seen_else = False
        for item in items:
            if isinstance(item, Token):
                if item.type == "ELSE":
                    seen_else = True
                continue
            if isinstance(item, tuple):
                whens.append(item)
            elif seen_else:
                default = self._check_int(item)
            else:
                subject = self._check_int(item)
        return ast.Case(subject, tuple(whens), default)

    def case_when(self, items: list[Any]) -> tuple[ast.Expr, ast.Expr]:
        return self._check_int(items[1]), self._check_int(items[3])

    def list_comprehension(self, items: list[Any]) -> ast.Expr:
        variable = items[1].name
        source = self._check_int(items[3])
        where = projection = None
        index = 4
        while index < len(items) - 1:
            token = items[index]
            if token.type == "WHERE":
                where = self._check_int(items[index + 1])
            else:
                projection = self._check_int(items[index + 1])
            index += 2
        return ast.ListComprehension(variable, source, where, projection)

    def pattern_comprehension(self, items: list[Any]) -> ast.Expr:
        rest = _toks(items)
        path_var = None
        if isinstance(rest[0], ast.Variable):
            path_var = rest.pop(0).name
        part: ast.PatternPart = rest[0]
        part = ast.PatternPart(path_var, part.nodes, part.rels)
        where = rest[1] if len(rest) == 3 else None
        return ast.PatternComprehension(part, where, self._check_int(rest[-1]))

    def quantifier(self, items: list[Any]) -> ast.Expr:
        kind = items[0].type
        rest = _toks(items)
        where = self._check_int(rest[2]) if len(rest) > 2 else None
        return ast.Quantifier(kind, rest[0].name, self._check_int(rest[1]), where)

    def function_call(self, items: list[Any]) -> ast.Expr:
        name = str(items[0])
        args = tuple(self._check_int(i) for i in _toks(items))
        form = args[1] if name.lower() == "normalize" and len(args) == 2 else None
        if isinstance(form, ast.Variable) and form.name.upper() in ("NFC", "NFD", "NFKC", "NFKD"):
            # normalize(s, NFKC): the form is a keyword, not a variable.
            args = (args[0], ast.Literal(form.name.upper()))
        return ast.FunctionCall(name, args, _has(items, "DISTINCT"), _pos(items[0]))

    def count_star(self, items: list[Any]) -> ast.Expr:
        if str(items[0]).lower() != "count":
            line, column = items[0].line, items[0].column
            raise syntax_error("only count accepts *", "UnexpectedSyntax", line, column)
        return ast.CountStar()

    def reduce_expr(self, items: list[Any]) -> ast.Expr:
        rest = _toks(items)
        return ast.Reduce(
            rest[0].name,
            self._check_int(rest[1]),
            rest[2].name,
            self._check_int(rest[3]),
            self._check_int(rest[4]),
        )

    def exists_fn(self, items: list[Any]) -> ast.Expr:
        return ast.FunctionCall("exists", (self._check_int(items[2]),), False, _pos(items[0]))

    def exists_query(self, items: list[Any]) -> ast.Expr:
        return ast.ExistsSubquery(items[2], (), None)

    def count_query(self, items: list[Any]) -> ast.Expr:
        return ast.ExistsSubquery(items[2], (), None, count=True)

    def count_pattern(self, items: list[Any]) -> ast.Expr:
        rest = _toks(items)
        where = rest[1] if len(rest) > 1 else None
        return ast.ExistsSubquery(None, rest[0], where, count=True)

    def collect_query(self, items: list[Any]) -> ast.Expr:
        return ast.ExistsSubquery(items[2], (), None, collect=True)

    def is_type(self, items: list[Any]) -> ast.Expr:
        return ast.TypePredicate(self._check_int(items[0]), items[-1].value)

    def is_not_type(self, items: list[Any]) -> ast.Expr:
        return ast.TypePredicate(self._check_int(items[0]), items[-1].value, negated=True)

    def is_normalized(self, items: list[Any]) -> ast.Expr:
        return self._normalized(items, negated=False)

    def is_not_normalized(self, items: list[Any]) -> ast.Expr:
        return self._normalized(items, negated=True)

    def _normalized(self, items: list[Any], negated: bool) -> ast.Expr:
        words = [item for item in items[1:] if isinstance(item, Token) and item.type == "NAME"]
        last = words[-1]
        form = str(words[0]).upper() if len(words) == 2 else "NFC"
        if str(last).upper() != "NORMALIZED" or form not in ("NFC", "NFD", "NFKC", "NFKD"):
            raise syntax_error(
                f"unexpected {str(last)!r}: expected IS [NOT] [NFC|NFD|NFKC|NFKD] NORMALIZED",
                "UnexpectedSyntax",
                last.line,
                last.column,
            )
        test = ast.FunctionCall(
            "is normalized", (self._check_int(items[0]), ast.Literal(form)), False, _pos(last)
        )
        return ast.UnaryOp("NOT", test) if negated else test

    def concat(self, items: list[Any]) -> ast.Expr:
        return self._binary("||", items)

    def call_subquery(self, items: list[Any]) -> ast.Clause:
        imports = next((i for i in items if isinstance(i, _Scope)), None)
        query = next(i for i in items if isinstance(i, ast.Query))
        batch = next((i for i in items if isinstance(i, _InTransactions)), None)
        return ast.SubqueryCall(
            query,
            imports.names if imports is not None else None,
            batch is not None,
            batch.size if batch is not None else None,
        )

    def subquery_scope(self, items: list[Any]) -> _Scope:
        if _has(items, "STAR"):
            return _Scope(("*",))
        return _Scope(tuple(i.name for i in items if isinstance(i, ast.Variable)))

    def tx_word(self, items: list[Token]) -> Token:
        return items[0]

    def in_transactions(self, items: list[Any]) -> _InTransactions:
        words = list(items[1:])
        first = items[0]

        def fail(message: str, token: Token | None = None) -> CypherError:
            where = token if token is not None else first
            return syntax_error(message, "UnexpectedSyntax", where.line, where.column)

        def word(index: int) -> str:
            token = words[index] if index < len(words) else None
            return str(token).upper() if token is not None and token.type == "NAME" else ""

        index = 0
        if words and words[0].type in ("INTEGER", "PARAM") and word(1) == "CONCURRENT":
            index = 2  # run concurrently in Neo4j; one after another here, to the same end
        if word(index) != "TRANSACTIONS":
            raise fail("expected IN [n CONCURRENT] TRANSACTIONS")
        index += 1
        size: ast.Expr | None = None
        if word(index) == "OF":
            token = words[index + 1] if index + 1 < len(words) else None
            if token is None or token.type not in ("INTEGER", "PARAM"):
                raise fail("expected OF <number> ROWS", token)
            size = (
                ast.Literal(token.value) if token.type == "INTEGER" else ast.Parameter(token.value)
            )
            if word(index + 2) not in ("ROW", "ROWS"):
                raise fail("expected ROWS after the batch size", token)
            index += 3
        if [word(index), word(index + 1), word(index + 2)] == ["", "ERROR", "FAIL"] and (
            words[index].type == "ON"
        ):
            index += 3  # the default: a failing batch fails the statement
        if index < len(words):
            token = words[index]
            text = " ".join(str(w).upper() for w in words[index:])
            if text.startswith(("ON ERROR", "REPORT STATUS")):
                raise fail(
                    f"CALL {{ ... }} IN TRANSACTIONS {text.split(' AS ')[0]} is not supported:"
                    " Quiver commits the whole statement at once, so a failing batch fails it",
                    token,
                )
            raise fail(f"unexpected {str(token)!r} after IN TRANSACTIONS", token)
        return _InTransactions(size)

    def exists_pattern(self, items: list[Any]) -> ast.Expr:
        rest = _toks(items)
        where = rest[1] if len(rest) > 1 else None
        return ast.ExistsSubquery(None, rest[0], where)

    def expr_pattern(self, items: list[Any]) -> ast.PatternPart:
        first = items[1]
        start = dataclasses.replace(first, pos=_pos(items[0]))
        nodes = [start] + [i for i in items[3:] if isinstance(i, ast.NodePattern)]
        rels = [i for i in items[3:] if isinstance(i, ast.RelPattern)]
        return ast.PatternPart(None, tuple(nodes), tuple(rels))

    def pattern_expr(self, items: list[Any]) -> ast.Expr:
        return ast.PatternExpr(items[0])

    def shortest_expr(self, items: list[Any]) -> ast.Expr:
        part: ast.PatternPart = items[2]
        return ast.PatternExpr(ast.PatternPart(None, part.nodes, part.rels, "shortest"))

    def all_shortest_expr(self, items: list[Any]) -> ast.Expr:
        part: ast.PatternPart = items[2]
        return ast.PatternExpr(ast.PatternPart(None, part.nodes, part.rels, "all"))

    def __default__(self, data: Any, children: list[Any], meta: Any) -> Any:
        raise AssertionError(f"unhandled grammar rule {data}")


class _Skip:
    __slots__ = ("expr",)

    def __init__(self, expr: ast.Expr) -> None:
        self.expr = expr


class _Limit(_Skip):
    __slots__ = ()


class _Types:
    __slots__ = ("names",)

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names


class _Length:
    __slots__ = ("bounds",)

    def __init__(self, bounds: tuple[int | None, int | None]) -> None:
        self.bounds = bounds


class _PatternWhere(_Skip):
    __slots__ = ()


class _Scope:
    __slots__ = ("names",)

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names = names


class _InTransactions:
    __slots__ = ("size",)

    def __init__(self, size: ast.Expr | None) -> None:
        self.size = size


class _Yield:
    __slots__ = ("items", "star", "where")

    def __init__(self, items: Any, star: bool, where: Any) -> None:
        self.items = items
        self.star = star
        self.where = where


_SCHEMA = re.compile(r"^\s*(?P<verb>CREATE|DROP|SHOW)\s+(?P<rest>.*?)\s*;?\s*$", re.I | re.S)
_CREATE_INDEX = re.compile(
    r"^INDEX\s*(?P<name>`[^`]+`|\w+)?\s*(?P<ine>IF\s+NOT\s+EXISTS\s+)?FOR\s*"
    r"(?:\(\s*(?P<v>\w+)\s*:\s*(?P<label>`[^`]+`|\w+)\s*\)|"
    r"\(\s*\)\s*-\s*\[\s*(?P<rv>\w+)\s*:\s*(?P<type>`[^`]+`|\w+)\s*\]\s*-\s*>?\s*\(\s*\))\s*"
    r"ON\s*\((?P<props>[^)]*)\)$",
    re.I | re.S,
)
_CREATE_CONSTRAINT = re.compile(
    r"^CONSTRAINT\s*(?P<name>`[^`]+`|\w+)?\s*(?P<ine>IF\s+NOT\s+EXISTS\s+)?"
    r"(?:FOR|ON)\s*\(\s*(?P<v>\w+)\s*:\s*(?P<label>`[^`]+`|\w+)\s*\)\s*"
    r"(?:REQUIRE|ASSERT)\s*(?P<props>\(?[^)]*\)?|\S+)\s+IS\s+UNIQUE$",
    re.I | re.S,
)
_DROP = re.compile(
    r"^(?P<what>INDEX|CONSTRAINT)\s+(?P<name>`[^`]+`|\w+)(?P<ie>\s+IF\s+EXISTS)?$", re.I | re.S
)


_SHOW_CALLABLES = re.compile(
    r"^(?:ALL\s+|BUILT\s+IN\s+)?(?P<kind>PROCEDURES?|FUNCTIONS?)"
    r"(?:\s+YIELD\s+(?P<yield>\w+(?:\s*,\s*\w+)*))?$",
    re.I | re.S,
)
_SHOWABLE = {
    "ALL",
    "BUILT",
    "USER",
    "PROCEDURE",
    "PROCEDURES",
    "FUNCTION",
    "FUNCTIONS",
    "DATABASE",
    "DATABASES",
    "DEFAULT",
    "HOME",
    "TRANSACTION",
    "TRANSACTIONS",
    "SETTINGS",
    "SERVERS",
    "ALIASES",
    "RANGE",
    "TEXT",
    "POINT",
    "FULLTEXT",
    "VECTOR",
    "LOOKUP",
    "UNIQUE",
    "EXISTENCE",
    "NODE",
    "RELATIONSHIP",
    "KEY",
}
"""SHOW commands of Neo4j 5 that reach the engine (users, roles and privileges are the
cluster's own): refused with a message naming them, not a bare syntax error."""


def _unquote(name: str) -> str:
    return name[1:-1] if name.startswith("`") else name


def _props(text: str, variable: str) -> tuple[str, ...]:
    names = []
    for part in text.strip().strip("()").split(","):
        part = part.strip()
        if not part.startswith(variable + "."):
            raise syntax_error(f"invalid property {part!r}", "UnexpectedSyntax", 1, 1)
        names.append(_unquote(part[len(variable) + 1 :].strip()))
    return tuple(names)


def parse_schema_command(text: str) -> ast.SchemaCommand | None:
    m = _SCHEMA.match(text)
    if not m:
        return None
    verb = m.group("verb").upper()
    rest = m.group("rest")
    if verb == "SHOW":
        word = rest.split()[0].upper() if rest.split() else ""
        if rest.upper().endswith("INDEXES") or word == "INDEXES":
            return ast.SchemaCommand("show_indexes")
        if rest.upper().endswith("CONSTRAINTS") or word == "CONSTRAINTS":
            return ast.SchemaCommand("show_constraints")
        listing = _SHOW_CALLABLES.match(rest)
        if listing is not None:
            kind = (
                "show_functions"
                if listing.group("kind").upper().startswith("F")
                else "show_procedures"
            )
            columns = tuple(
                c.strip() for c in (listing.group("yield") or "").split(",") if c.strip()
            )
            return ast.SchemaCommand(kind, properties=columns)
        if word in _SHOWABLE:
            raise syntax_error(
                f"SHOW {rest.strip()} is not supported: Quiver's Cypher lists INDEXES,"
                " CONSTRAINTS, PROCEDURES [YIELD ...] and FUNCTIONS [YIELD ...]",
                "UnsupportedFeature",
                1,
                1,
            )
        return None
    if verb == "CREATE":
        ci = _CREATE_INDEX.match(rest)
        if ci:
            on_rels = ci.group("type") is not None
            variable = ci.group("rv") if on_rels else ci.group("v")
            label = ci.group("type") if on_rels else ci.group("label")
            return ast.SchemaCommand(
                "create_index",
                _unquote(ci.group("name")) if ci.group("name") else None,
                _unquote(label),
                _props(ci.group("props"), variable),
                on_relationships=on_rels,
                if_not_exists=bool(ci.group("ine")),
            )
        cc = _CREATE_CONSTRAINT.match(rest)
        if cc:
            return ast.SchemaCommand(
                "create_constraint",
                _unquote(cc.group("name")) if cc.group("name") else None,
                _unquote(cc.group("label")),
                _props(cc.group("props"), cc.group("v")),
                if_not_exists=bool(cc.group("ine")),
            )
        return None
    dm = _DROP.match(rest)
    if dm:
        return ast.SchemaCommand(
            "drop_" + dm.group("what").lower(),
            _unquote(dm.group("name")),
            if_exists=bool(dm.group("ie")),
        )
    return None


_SCHEMA_MODE = re.compile(r"\s*(EXPLAIN|PROFILE)\b", re.IGNORECASE)


def parse(text: str) -> ast.Statement:
    """Parse one statement; raise CypherError(kind SyntaxError) on any failure."""
    mode_match = _SCHEMA_MODE.match(text)
    mode = mode_match.group(1).upper() if mode_match else None
    schema = parse_schema_command(text[mode_match.end() :] if mode_match else text)
    if schema is not None:
        return ast.Statement(schema, mode)
    try:
        tree = _PARSER.parse(text)
        return _Builder(text).transform(tree)
    except CypherError:
        raise
    except VisitError as error:
        if isinstance(error.orig_exc, CypherError):
            raise error.orig_exc from None
        raise
    except UnexpectedToken as error:
        token = error.token
        found = "end of input" if token.type == "$END" else repr(str(token))
        line = getattr(error, "line", None)
        column = getattr(error, "column", None)
        if line is None or line < 0:
            line, column = _end_position(text)
        unsupported = _unsupported_feature(text, getattr(token, "start_pos", None), token)
        if unsupported is not None:
            raise syntax_error(unsupported, "UnsupportedFeature", line, column) from None
        detail = "UnexpectedSyntax"
        if token.type in ("DOTDOT", "MINUS", "INTEGER") and _in_relationship_detail(
            text, getattr(token, "start_pos", None)
        ):
            detail = "InvalidRelationshipPattern"  # `[:T 1..2]` (no `*`), `[:T*-2]`
        raise syntax_error(f"unexpected {found}", detail, line, column) from None
    except (UnexpectedCharacters, UnexpectedInput) as error:
        raise syntax_error(
            "invalid input",
            "UnexpectedSyntax",
            getattr(error, "line", 1),
            getattr(error, "column", 1),
        ) from None
    except RecursionError:
        raise syntax_error("query nested too deeply", "NestingTooDeep") from None


_QUANTIFIER = re.compile(r"\{\s*\d*\s*,?\s*\d*\s*\}")
_FEATURES = {
    "LOAD": "LOAD CSV is not supported: Quiver reads no files; pass the rows as a list"
    " parameter and UNWIND it",
    "USE": "USE is not supported: a Quiver cluster holds one graph",
    "FINISH": "FINISH is not supported: end the query with its last updating clause, or RETURN",
    "NEXT": "NEXT (linear composition of queries) is not supported: use WITH",
    "OFFSET": "OFFSET is not supported: use SKIP",
    "INSERT": "INSERT is not supported: use CREATE",
    "LET": "LET is not supported: use WITH ... AS",
    "FILTER": "FILTER is not supported: use WITH ... WHERE",
    "SHORTEST": "path selectors (SHORTEST k, ANY, ALL SHORTEST) are not supported:"
    " use shortestPath() or allShortestPaths()",
}


def _unsupported_feature(text: str, position: int | None, token: Any) -> str | None:
    """A clear message for Neo4j syntax that Quiver does not implement, instead of a bare
    'unexpected token'."""
    if position is None:
        return None
    word = str(token).upper() if token.type in ("NAME", "FUNCNAME") else ""
    if word in _FEATURES:
        return _FEATURES[word]
    if word == "NULLS" or re.match(r"\s*NULLS\s+(FIRST|LAST)\b", text[position:], re.I):
        return (
            "NULLS FIRST / NULLS LAST is not supported: nulls sort last ascending, first descending"
        )
    if re.search(r"\btrim\s*\(\s*(BOTH|LEADING|TRAILING)\b|\btrim\s*\([^()]*\bFROM\b", text, re.I):
        return (
            "trim([BOTH|LEADING|TRAILING] [chars] FROM s) is not supported:"
            " use btrim(s, chars), ltrim(s, chars) or rtrim(s, chars)"
        )
    if token.type in ("ANY", "ALL") and re.match(
        r"\s*(SHORTEST\b|\d+\s*\()", text[position + len(str(token)) :], re.I
    ):
        return _FEATURES["SHORTEST"]
    before = text[:position].rstrip()
    quantified = (
        "quantified and parenthesised path patterns ((...){m,n}, +, *) are not supported:"
        " use a variable-length relationship such as -[:T*1..3]->"
    )
    if (
        token.type == "LBRACE"
        and _QUANTIFIER.match(text, position)
        and before.endswith((")", "-", ">"))
    ):
        return quantified
    if token.type in ("PLUS", "STAR") and before.endswith((")", "-", ">")):
        after = text[position + 1 :].lstrip()
        if after.startswith(("(", ",")) or not after or after[:1].isalpha():
            return quantified
    if token.type in ("LPAR", "NODE_LPAR") and before.endswith("("):
        return quantified
    return None


def _in_relationship_detail(text: str, position: int | None) -> bool:
    """Whether `position` lies inside the brackets of a relationship pattern `-[...]-`."""
    if position is None:
        return False
    opening = text.rfind("[", 0, position)
    if opening < 0 or "]" in text[opening:position]:
        return False
    return text[:opening].rstrip().endswith(("-", "<"))


def _end_position(text: str) -> tuple[int, int]:
    lines = text.split("\n")
    return len(lines), len(lines[-1]) + 1
