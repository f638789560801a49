"""The rows of SHOW FUNCTIONS and SHOW PROCEDURES: what the engine can call, named and
categorised as Neo4j 5 lists them.

Reads only the engine's own tables (its functions, aggregates and procedures); never a
graph, so listing needs no graph privilege (as in Neo4j, where PUBLIC may execute them).
"""

from __future__ import annotations

from typing import Any


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Neo4j's spelling of each function whose lower-case key differs from it.
_SPELLING = {
    name.lower(): name
    for name in _names(
        "elementId endNode isEmpty isNaN nullIf randomUUID startNode toBoolean toBooleanList "
        "toBooleanOrNull toFloat toFloatList toFloatOrNull toInteger toIntegerList "
        "toIntegerOrNull toLower toString toStringList toStringOrNull toUpper valueType "
        "percentileCont percentileDisc stDev stDevP datetime.fromEpoch datetime.fromEpochMillis "
        "duration.inDays duration.inMonths duration.inSeconds point.withinBBox"
    )
}

_CATEGORIES: dict[str, tuple[str, ...]] = {
    "Aggregating": _names(
        "avg collect count max min percentilecont percentiledisc stdev stdevp sum"
    ),
    "Numeric": _names("abs ceil floor isnan rand round sign"),
    "Logarithmic": _names("e exp log log10 sqrt"),
    "Trigonometric": _names("acos asin atan atan2 cos cot degrees haversin pi radians sin tan"),
    "String": _names(
        "btrim char_length character_length left lower ltrim normalize replace reverse right "
        "rtrim split substring tolower tostring tostringornull toupper trim upper"
    ),
    "List": _names(
        "keys labels nodes range reduce relationships tail tobooleanlist tofloatlist "
        "tointegerlist tostringlist"
    ),
    "Predicate": _names("exists isempty"),
    "Spatial": _names("point point.distance distance point.withinbbox"),
    "Vector": _names("vector.similarity.cosine vector.similarity.euclidean"),
}
_DEPRECATED = frozenset({"distance", "id"})


def _category(name: str) -> str:
    for category, names in _CATEGORIES.items():
        if name in names:
            return category
    head = name.split(".")[0]
    if head in ("date", "datetime", "localdatetime", "localtime", "time"):
        return "Temporal"
    if head == "duration":
        return "Temporal"
    return "Scalar"


def function_rows() -> list[dict[str, Any]]:
    from cypher import temporal
    from cypher.expressions import AGGREGATES
    from cypher.functions import FUNCTIONS

    names = {key for key in FUNCTIONS if " " not in key}  # "is normalized" is an operator
    names |= set(AGGREGATES) | set(temporal.FUNCTIONS) | {"exists", "reduce"}
    rows = []
    for key in names:
        name = _SPELLING.get(key, key)
        category = _category(key)
        rows.append(
            {
                "name": name,
                "category": category,
                "description": f"{category} function {name}().",
                "signature": f"{name}(...)",
                "isBuiltIn": True,
                "aggregating": key in AGGREGATES,
                "isDeprecated": key in _DEPRECATED,
            }
        )
    rows.sort(key=lambda row: str(row["name"]).lower())
    return rows


FUNCTION_COLUMNS = ["name", "category", "description"]
FUNCTION_YIELDABLE = [*FUNCTION_COLUMNS, "signature", "isBuiltIn", "aggregating", "isDeprecated"]

_DESCRIPTIONS = {
    "db.labels": "List all labels in the database.",
    "db.relationshiptypes": "List all relationship types in the database.",
    "db.propertykeys": "List all property keys in the database.",
    "dbms.components": "List DBMS components and their versions.",
}


def procedure_rows(procedures: dict[str, Any]) -> list[dict[str, Any]]:
    rows = []
    for key, procedure in procedures.items():
        inputs = ", ".join(f"{name} :: {kind}" for name, kind in procedure.inputs)
        outputs = ", ".join(f"{name} :: {kind}" for name, kind in procedure.outputs)
        rows.append(
            {
                "name": procedure.name,
                "description": _DESCRIPTIONS.get(key, ""),
                "mode": "DBMS" if key.startswith("dbms.") else "READ",
                "worksOnSystem": key.startswith("dbms."),
                "signature": f"{procedure.name}({inputs}) :: ({outputs})",
                "admin": False,
                "isDeprecated": False,
            }
        )
    rows.sort(key=lambda row: str(row["name"]).lower())
    return rows


PROCEDURE_COLUMNS = ["name", "description", "mode", "worksOnSystem"]
PROCEDURE_YIELDABLE = [*PROCEDURE_COLUMNS, "signature", "admin", "isDeprecated"]
