"""Typed Cypher errors, each carrying a Neo4j status code and the TCK's error kind.

A `CypherError` names its *kind* (the TCK's error class: SyntaxError, SemanticError,
TypeError, ArgumentError, ArithmeticError, EntityNotFound, ConstraintVerificationFailed,
ProcedureError, ParameterMissing), its *detail* (the TCK's detail code, e.g.
UndefinedVariable), its *phase* (compile time or runtime) and, for compile-time errors, the
line and column of the offending text. It must never carry secrets or row data beyond what
the query itself contained.
"""

from __future__ import annotations

_STATUS_BY_KIND = {
    "SyntaxError": "Neo.ClientError.Statement.SyntaxError",
    "SemanticError": "Neo.ClientError.Statement.SemanticError",
    "TypeError": "Neo.ClientError.Statement.TypeError",
    "ArgumentError": "Neo.ClientError.Statement.ArgumentError",
    "ArithmeticError": "Neo.ClientError.Statement.ArithmeticError",
    "EntityNotFound": "Neo.ClientError.Statement.EntityNotFound",
    "ConstraintVerificationFailed": "Neo.ClientError.Schema.ConstraintValidationFailed",
    "ConstraintValidationFailed": "Neo.ClientError.Schema.ConstraintValidationFailed",
    "ConstraintCreationFailed": "Neo.ClientError.Schema.ConstraintCreationFailed",
    "ProcedureError": "Neo.ClientError.Procedure.ProcedureNotFound",
    "ParameterMissing": "Neo.ClientError.Statement.ParameterMissing",
    "ResourceLimit": "Neo.ClientError.General.MemoryPoolOutOfMemoryError",
    "Unsupported": "Neo.ClientError.Statement.FeatureDeprecationWarning",
    "ExecutionFailed": "Neo.DatabaseError.Statement.ExecutionFailed",
    "Forbidden": "Neo.ClientError.Security.Forbidden",
    "TransactionTimedOut": "Neo.ClientError.Transaction.TransactionTimedOut",
    "Outdated": "Neo.TransientError.Transaction.Outdated",
}

COMPILE_TIME = "compile time"
RUNTIME = "runtime"


class CypherError(Exception):
    """Base of every error the engine raises on purpose."""

    kind = "SemanticError"

    def __init__(
        self,
        message: str,
        detail: str = "",
        *,
        kind: str | None = None,
        phase: str = RUNTIME,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        if kind is not None:
            self.kind = kind
        self.detail = detail
        self.phase = phase
        self.line = line
        self.column = column
        where = f" (line {line}, column {column})" if line is not None else ""
        super().__init__(f"{message}{where}")

    @property
    def status_code(self) -> str:
        return _STATUS_BY_KIND.get(self.kind, "Neo.ClientError.Statement.SemanticError")

    def __str__(self) -> str:
        return f"{self.status_code}: {self.args[0]}"


def syntax_error(message: str, detail: str, line: int | None = None, column: int | None = None):
    return CypherError(
        message, detail, kind="SyntaxError", phase=COMPILE_TIME, line=line, column=column
    )


def semantic_error(message: str, detail: str) -> CypherError:
    return CypherError(message, detail, kind="SemanticError", phase=RUNTIME)


def type_error(message: str, detail: str = "InvalidArgumentType", compile_time: bool = False):
    return CypherError(
        message, detail, kind="TypeError", phase=COMPILE_TIME if compile_time else RUNTIME
    )


def argument_error(message: str, detail: str = "InvalidArgumentValue") -> CypherError:
    return CypherError(message, detail, kind="ArgumentError", phase=RUNTIME)


def arithmetic_error(message: str, detail: str = "") -> CypherError:
    return CypherError(message, detail, kind="ArithmeticError", phase=RUNTIME)


def resource_error(message: str) -> CypherError:
    return CypherError(message, "ResourceLimit", kind="ResourceLimit", phase=RUNTIME)
