"""``quiver query``: one statement (``-c``, an argument or stdin) or an interactive shell.

Owns parameter parsing (``-p name=value``: JSON when the value parses as JSON, else a
string) and the output formats: ``table``, ``csv`` and DESIGN's ``json``
(``{"columns", "rows", "bookmark", "counters"}``).
"""

from __future__ import annotations

import argparse
import csv
import getpass
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, Final

from cluster.cli import INVALID_REQUEST, CliError
from cluster.client import Client, Result, connect
from cluster.errors import QuiverError
from cluster.values import to_json

PASSWORD_ENV: Final = "QUIVER_PASSWORD"

HISTORY_FILE: Final = "history"
MAX_HISTORY_LINES: Final = 1000


def parse_parameters(items: list[str]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    for item in items:
        name, separator, text = item.partition("=")
        if not separator or not name:
            raise CliError(INVALID_REQUEST, f"a parameter is NAME=VALUE, not {item!r}")
        try:
            parameters[name] = json.loads(text)
        except json.JSONDecodeError:
            parameters[name] = text
    return parameters


def _cell(value: Any) -> str:
    shown = to_json(value)
    return shown if isinstance(shown, str) else json.dumps(shown, sort_keys=True)


def render(result: Result, output_format: str) -> str:
    if output_format == "json":
        return json.dumps(result.to_json(), sort_keys=False)
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(result.columns)
        for row in result.rows:
            writer.writerow([_cell(value) for value in row])
        return buffer.getvalue().rstrip("\n")
    lines: list[str] = []
    if result.columns:
        cells = [[_cell(value) for value in row] for row in result.rows]
        widths = [
            max([len(column)] + [len(row[i]) for row in cells])
            for i, column in enumerate(result.columns)
        ]
        rule = "+" + "+".join("-" * (width + 2) for width in widths) + "+"
        lines += [
            rule,
            "| "
            + " | ".join(c.ljust(w) for c, w in zip(result.columns, widths, strict=True))
            + " |",
            rule,
        ]
        lines += [
            "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
            for row in cells
        ]
        lines.append(rule)
    changes = ", ".join(f"{key}: {value}" for key, value in result.counters.items() if value)
    summary = f"{len(result.rows)} row{'s' if len(result.rows) != 1 else ''}"
    if changes:
        summary += f"; {changes}"
    if result.bookmark:
        summary += f"; bookmark {result.bookmark}"
    lines.append(summary)
    return "\n".join(lines)


def _run_one(client: Client, args: argparse.Namespace, query: str) -> None:
    parameters = parse_parameters(args.param)
    if getattr(args, "database", "neo4j") == "system":
        result = client.system(query, parameters)
    else:
        mode = "read" if args.consistency else "write"
        result = client.run(query, parameters, mode=mode, consistency=args.consistency or "causal")
    print(render(result, args.format))


def _interactive(client: Client, args: argparse.Namespace) -> None:
    import readline

    history = Path(args.dir) / HISTORY_FILE
    if history.exists():
        readline.read_history_file(history)
    readline.set_history_length(MAX_HISTORY_LINES)
    print("quiver shell: end a statement with ';', Ctrl-D to leave")
    buffer: list[str] = []
    try:
        while True:
            try:
                line = input("quiver> " if not buffer else "   ...> ")
            except EOFError:
                print()
                return
            buffer.append(line)
            if not line.rstrip().endswith(";"):
                continue
            statement = "\n".join(buffer).rstrip().rstrip(";")
            buffer = []
            try:
                _run_one(client, args, statement)
            except QuiverError as error:
                print(f"{error.code}: {error.message}", file=sys.stderr)
    finally:
        readline.write_history_file(history)


def _login(args: argparse.Namespace) -> tuple[str, str] | None:
    """``--user`` with ``$QUIVER_PASSWORD`` (or a prompt); None: the dir's credentials."""
    user = getattr(args, "user", None)
    if not user:
        return None
    password = os.environ.get(PASSWORD_ENV)
    if password is None:
        if not sys.stdin.isatty():
            raise CliError(INVALID_REQUEST, f"--user needs ${PASSWORD_ENV} or a terminal")
        password = getpass.getpass(f"password for {user}: ")
    return user, password


def run_query(args: argparse.Namespace) -> int:
    directory = Path(args.dir)
    if not (directory / "cluster.json").exists():
        raise CliError(
            "Neo.ClientError.General.DatabaseUnavailable",
            f"no cluster in {directory} (run 'quiver up' first)",
        )
    query = args.query or args.statement
    client = connect(
        directory, auth=_login(args), impersonate=getattr(args, "impersonate", "") or ""
    )
    try:
        if query is None and sys.stdin.isatty():
            _interactive(client, args)
            return 0
        if query is None:
            query = sys.stdin.read()
        if not query.strip():
            raise CliError(INVALID_REQUEST, "no statement given")
        _run_one(client, args, query)
    except QuiverError as error:
        raise CliError(error.code, error.message) from None
    finally:
        client.close()
    return 0
