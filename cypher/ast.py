"""The typed syntax tree of a Cypher statement, as the parser builds it.

Plain frozen dataclasses: the parser produces them, the analyzer checks them, the planner
and executor read them. Nothing here evaluates or touches a graph.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Pos:
    line: int
    column: int


# -- expressions ---------------------------------------------------------------------------


class Expr:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Literal(Expr):
    value: Any


@dataclass(frozen=True, slots=True)
class OverflowInteger(Expr):
    """An integer literal beyond 64 bits; valid only as the operand of unary minus."""

    value: int


@dataclass(frozen=True, slots=True)
class Parameter(Expr):
    name: str


@dataclass(frozen=True, slots=True)
class Variable(Expr):
    name: str
    pos: Pos | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Property(Expr):
    subject: Expr
    key: str


@dataclass(frozen=True, slots=True)
class Subscript(Expr):
    subject: Expr
    index: Expr


@dataclass(frozen=True, slots=True)
class Slice(Expr):
    subject: Expr
    start: Expr | None
    end: Expr | None


@dataclass(frozen=True, slots=True)
class ListLiteral(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class MapLiteral(Expr):
    items: tuple[tuple[str, Expr], ...]


@dataclass(frozen=True, slots=True)
class MapProjection(Expr):
    variable: Variable
    # ("prop", key, None) | ("all", "", None) | ("var", name, None) | ("lit", key, expr)
    items: tuple[tuple[str, str, Expr | None], ...]


@dataclass(frozen=True, slots=True)
class FunctionCall(Expr):
    name: str
    args: tuple[Expr, ...]
    distinct: bool = False
    pos: Pos | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class CountStar(Expr):
    pass


@dataclass(frozen=True, slots=True)
class BinaryOp(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True, slots=True)
class Comparison(Expr):
    ops: tuple[str, ...]
    operands: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class UnaryOp(Expr):
    op: str  # "NOT", "-", "+"
    operand: Expr


@dataclass(frozen=True, slots=True)
class IsNull(Expr):
    operand: Expr
    negated: bool


@dataclass(frozen=True, slots=True)
class HasLabels(Expr):
    subject: Expr
    labels: tuple[str, ...]
    expression: LabelExpression | None = None
    """`n:A|B`, `n:!A`, `n:A&B` (then `labels` is empty)."""


@dataclass(frozen=True, slots=True)
class Case(Expr):
    subject: Expr | None
    whens: tuple[tuple[Expr, Expr], ...]
    default: Expr | None


@dataclass(frozen=True, slots=True)
class ListComprehension(Expr):
    variable: str
    source: Expr
    where: Expr | None
    projection: Expr | None


@dataclass(frozen=True, slots=True)
class Quantifier(Expr):
    kind: str  # ALL ANY NONE SINGLE
    variable: str
    source: Expr
    where: Expr | None


@dataclass(frozen=True, slots=True)
class Reduce(Expr):
    accumulator: str
    initial: Expr
    variable: str
    source: Expr
    expression: Expr


@dataclass(frozen=True, slots=True)
class PatternExpr(Expr):
    """A pattern used as an expression: a list of paths (or a predicate in WHERE)."""

    pattern: PatternPart


@dataclass(frozen=True, slots=True)
class PatternComprehension(Expr):
    pattern: PatternPart
    where: Expr | None
    projection: Expr


@dataclass(frozen=True, slots=True)
class ExistsSubquery(Expr):
    query: Query | None
    patterns: tuple[PatternPart, ...]
    where: Expr | None
    count: bool = False
    """COUNT { ... }: the number of rows rather than whether there is one."""
    collect: bool = False
    """COLLECT { ... }: the list of the values of its one returned column."""


@dataclass(frozen=True, slots=True)
class TypePredicate(Expr):
    """`operand IS [NOT] :: type`; `spec` is a `cypher.types.TypeSpec`."""

    operand: Expr
    spec: Any
    negated: bool = False


# -- patterns ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelExpression:
    """A label expression beyond a conjunction of names: `|`, `!`, and groups of them."""

    op: str  # "label", "and", "or", "not"
    name: str = ""
    operands: tuple[LabelExpression, ...] = ()

    def matches(self, labels: set[str] | frozenset[str]) -> bool:
        if self.op == "label":
            return self.name in labels
        if self.op == "not":
            return not self.operands[0].matches(labels)
        if self.op == "and":
            return all(operand.matches(labels) for operand in self.operands)
        return any(operand.matches(labels) for operand in self.operands)

    def any_of(self) -> tuple[str, ...] | None:
        """The labels of a plain disjunction `A|B|C` (whose union of scans finds it)."""
        if self.op == "label":
            return (self.name,)
        if self.op == "or":
            names: list[str] = []
            for operand in self.operands:
                found = operand.any_of()
                if found is None:
                    return None
                names.extend(found)
            return tuple(names)
        return None


@dataclass(frozen=True, slots=True)
class NodePattern:
    variable: str | None
    labels: tuple[str, ...]
    """Labels the node must all have (`:A:B`, `:A&B`)."""
    properties: Expr | None
    pos: Pos | None = field(default=None, compare=False)
    label_expression: LabelExpression | None = None
    """A further condition on the labels (`:A|B`, `:!A`): matching only, never CREATE."""
    where: Expr | None = None
    """An inline predicate `(n:A WHERE n.x > 1)`: matching only."""


@dataclass(frozen=True, slots=True)
class RelPattern:
    variable: str | None
    types: tuple[str, ...]
    direction: str  # "out", "in", "both"
    properties: Expr | None
    length: tuple[int | None, int | None] | None  # None: exactly one hop
    pos: Pos | None = field(default=None, compare=False)
    where: Expr | None = None
    """An inline predicate `-[r:T WHERE r.x > 1]-`: matching only, one hop only."""


@dataclass(frozen=True, slots=True)
class PatternPart:
    variable: str | None
    nodes: tuple[NodePattern, ...]
    rels: tuple[RelPattern, ...]
    shortest: str | None = None  # None, "shortest", "all"


# -- clauses -------------------------------------------------------------------------------


class Clause:
    __slots__ = ()


@dataclass(frozen=True, slots=True)
class Match(Clause):
    optional: bool
    patterns: tuple[PatternPart, ...]
    where: Expr | None


@dataclass(frozen=True, slots=True)
class Unwind(Clause):
    expression: Expr
    variable: str


@dataclass(frozen=True, slots=True)
class ProjectionItem:
    expression: Expr
    alias: str | None
    text: str


@dataclass(frozen=True, slots=True)
class SortItem:
    expression: Expr
    ascending: bool


@dataclass(frozen=True, slots=True)
class Projection:
    distinct: bool
    star: bool
    items: tuple[ProjectionItem, ...]
    order: tuple[SortItem, ...]
    skip: Expr | None
    limit: Expr | None


@dataclass(frozen=True, slots=True)
class With(Clause):
    projection: Projection
    where: Expr | None


@dataclass(frozen=True, slots=True)
class Return(Clause):
    projection: Projection


@dataclass(frozen=True, slots=True)
class Create(Clause):
    patterns: tuple[PatternPart, ...]


@dataclass(frozen=True, slots=True)
class SetItem:
    kind: str  # "prop", "replace", "merge", "labels"
    target: Expr  # Property for "prop", Variable otherwise
    value: Expr | None
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Merge(Clause):
    pattern: PatternPart
    on_create: tuple[SetItem, ...]
    on_match: tuple[SetItem, ...]


@dataclass(frozen=True, slots=True)
class SetClause(Clause):
    items: tuple[SetItem, ...]


@dataclass(frozen=True, slots=True)
class RemoveItem:
    kind: str  # "prop", "labels"
    target: Expr
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Remove(Clause):
    items: tuple[RemoveItem, ...]


@dataclass(frozen=True, slots=True)
class Delete(Clause):
    detach: bool
    expressions: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Foreach(Clause):
    """FOREACH (variable IN source | clauses): the updating clauses once per list item,
    the incoming row passed on unchanged (nothing bound inside is visible after)."""

    variable: str
    source: Expr
    clauses: tuple[Clause, ...]


@dataclass(frozen=True, slots=True)
class Call(Clause):
    procedure: str
    args: tuple[Expr, ...] | None  # None: implicit arguments (standalone CALL without parens)
    yields: tuple[tuple[str, str], ...] | None  # (field, alias); None: no YIELD
    yield_star: bool
    where: Expr | None
    pos: Pos | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class SubqueryCall(Clause):
    """CALL { query }: the query once per incoming row, its rows joined to that row."""

    query: Query
    imports: tuple[str, ...] | None = None
    """CALL (a, b) { ... }: the variables the subquery sees; ("*",) all; None: the old
    form, where a leading WITH imports."""
    in_transactions: bool = False
    """CALL { ... } IN TRANSACTIONS (only in an implicit transaction)."""
    batch_size: Expr | None = None


@dataclass(frozen=True, slots=True)
class SingleQuery:
    clauses: tuple[Clause, ...]


@dataclass(frozen=True, slots=True)
class Query:
    parts: tuple[SingleQuery, ...]
    union_all: tuple[bool, ...]  # one per UNION between parts


@dataclass(frozen=True, slots=True)
class SchemaCommand:
    action: str  # create_index, drop_index, create_constraint, drop_constraint, show_*
    name: str | None = None
    label: str = ""
    properties: tuple[str, ...] = ()
    on_relationships: bool = False
    if_not_exists: bool = False
    if_exists: bool = False


@dataclass(frozen=True, slots=True)
class Statement:
    body: Query | SchemaCommand
    mode: str | None = None  # None, "EXPLAIN", "PROFILE"
