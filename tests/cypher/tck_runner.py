"""Runs the openCypher TCK feature files against Quiver's Cypher engine.

Parses the Gherkin itself (features, scenarios, outlines with examples, doc strings and
tables), runs every scenario on a fresh graph — a `MemoryGraph`, or with `--store rocksdb`
an encrypted RocksDB `GraphStore` in a scratch directory — in a process pool with a
per-scenario timeout, and checks results (in order, in any order, ignoring list order),
errors (kind, phase, detail) and side effects (by diffing the graph before and after, as the
TCK does).
Prints a summary by feature folder; the last line is
`TCK: P passed, F failed, S skipped of N scenarios`.

    python tests/cypher/tck_runner.py [--filter TEXT] [--failures N] [--jobs N]
                                      [--store memory|rocksdb]
"""

from __future__ import annotations

import argparse
import collections
import math
import multiprocessing
import os
import re
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TCK_ROOT = Path(
    os.environ.get("QUIVER_TCK", Path(__file__).resolve().parents[3] / "shared" / "tck")
)
SCENARIO_TIMEOUT_S = 10
STORES = ("memory", "rocksdb")
_store = "memory"
"""The store every scenario runs on (set by main before the worker processes fork)."""


@dataclass
class Step:
    keyword: str
    text: str
    doc: str | None = None
    table: list[list[str]] | None = None


@dataclass
class Scenario:
    feature: str  # path relative to features/
    name: str
    steps: list[Step] = field(default_factory=list)

    @property
    def folder(self) -> str:
        return str(Path(self.feature).parent)


# -- Gherkin -------------------------------------------------------------------------------


def _cells(line: str) -> list[str]:
    text = line.strip()
    assert text.startswith("|") and text.endswith("|"), line
    cells: list[str] = []
    current = ""
    index = 1
    while index < len(text) - 1:
        ch = text[index]
        if ch == "\\" and index + 1 < len(text) - 1 and text[index + 1] in "|\\":
            current += text[index + 1]
            index += 2
            continue
        if ch == "|":
            cells.append(current.strip())
            current = ""
        else:
            current += ch
        index += 1
    cells.append(current.strip())
    return cells


def parse_feature(path: Path, root: Path) -> list[Scenario]:
    lines = path.read_text(encoding="utf-8").split("\n")
    relative = str(path.relative_to(root))
    scenarios: list[Scenario] = []
    background: list[Step] = []
    current: list[Step] | None = None
    name = ""
    outline = False
    examples: list[list[str]] = []
    in_examples = False
    index = 0

    def flush() -> None:
        if current is None:
            return
        if outline:
            if len(examples) < 2:
                return
            header = examples[0]
            for number, values in enumerate(examples[1:], 1):
                mapping = dict(zip(header, values, strict=True))
                steps = [_substitute(step, mapping) for step in background + current]
                scenarios.append(Scenario(relative, f"{name} #{number}", steps))
        else:
            scenarios.append(Scenario(relative, name, background + current))

    while index < len(lines):
        raw = lines[index]
        line = raw.strip()
        index += 1
        if not line or line.startswith("#") or line.startswith("@"):
            continue
        if line.startswith("Feature:"):
            continue
        if line.startswith("Background:"):
            current = background
            outline = False
            continue
        if line.startswith(("Scenario:", "Scenario Outline:", "Scenario Template:")):
            if current is not background:
                flush()
            current = []
            name = line.split(":", 1)[1].strip()
            outline = not line.startswith("Scenario:")
            examples = []
            in_examples = False
            continue
        if line.startswith(("Examples:", "Scenarios:")):
            in_examples = True
            continue
        if line.startswith("|"):
            if in_examples:
                examples.append(_cells(line))
            else:
                assert current is not None and current
                step = current[-1]
                if step.table is None:
                    step.table = []
                step.table.append(_cells(line))
            continue
        if line.startswith('"""'):
            indent = len(raw) - len(raw.lstrip())
            doc_lines = []
            while index < len(lines) and not lines[index].strip().startswith('"""'):
                doc_lines.append(
                    lines[index][indent:]
                    if lines[index][:indent].isspace()
                    else lines[index].strip()
                )
                index += 1
            index += 1
            assert current is not None and current
            current[-1].doc = "\n".join(doc_lines)
            continue
        keyword, _, text = line.partition(" ")
        if keyword in ("Given", "When", "Then", "And", "But") and current is not None:
            current.append(Step(keyword, text))
            continue
    if current is not background:
        flush()
    return scenarios


def _substitute(step: Step, mapping: dict[str, str]) -> Step:
    def sub(text: str) -> str:
        return re.sub(r"<([^<>\s]+)>", lambda m: mapping.get(m.group(1), m.group(0)), text)

    return Step(
        step.keyword,
        sub(step.text),
        sub(step.doc) if step.doc is not None else None,
        [[sub(cell) for cell in row] for row in step.table] if step.table is not None else None,
    )


def load_scenarios(root: Path) -> list[Scenario]:
    features = sorted((root / "features").rglob("*.feature"))
    scenarios = []
    for path in features:
        scenarios.extend(parse_feature(path, root / "features"))
    return scenarios


# -- TCK values ----------------------------------------------------------------------------


class _ValueParser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> Any:
        value = self.value()
        self.ws()
        if self.pos != len(self.text):
            raise ValueError(f"trailing text in {self.text!r} at {self.pos}")
        return value

    def ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def peek(self) -> str:
        self.ws()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def expect(self, token: str) -> None:
        self.ws()
        if not self.text.startswith(token, self.pos):
            raise ValueError(f"expected {token!r} in {self.text!r} at {self.pos}")
        self.pos += len(token)

    def value(self) -> Any:
        ch = self.peek()
        rest = self.text[self.pos :]
        if ch == "'":
            return ("s", self.string())
        if ch == "[":
            save = self.pos
            self.pos += 1
            if self.peek() == ":":
                self.pos = save
                return self.relationship()
            self.pos = save
            return self.list_()
        if ch == "{":
            return self.map_()
        if ch == "(":
            return self.node()
        if ch == "<":
            return self.path()
        for word, result in (("null", None), ("true", ("b", True)), ("false", ("b", False))):
            if rest.startswith(word):
                self.pos += len(word)
                return result
        m = re.match(r"-?(?:NaN|Infinity|Inf)", rest)
        if m:
            self.pos += m.end()
            text = m.group(0)
            if "NaN" in text:
                return ("f", "NaN")
            return ("f", -math.inf if text.startswith("-") else math.inf)
        m = re.match(
            r"-?(?:\d+\.\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\d+[eE][-+]?\d+)", rest
        )
        if m:
            self.pos += m.end()
            return normalize_float(float(m.group(0)))
        m = re.match(r"-?\d+", rest)
        if m:
            self.pos += m.end()
            return ("i", int(m.group(0)))
        raise ValueError(f"cannot parse value {self.text!r} at {self.pos}")

    def string(self) -> str:
        self.expect("'")
        out = []
        while self.pos < len(self.text):
            ch = self.text[self.pos]
            if ch == "\\" and self.pos + 1 < len(self.text):
                nxt = self.text[self.pos + 1]
                out.append({"n": "\n", "t": "\t", "r": "\r"}.get(nxt, nxt))
                self.pos += 2
                continue
            if ch == "'":
                self.pos += 1
                return "".join(out)
            out.append(ch)
            self.pos += 1
        raise ValueError("unterminated string")

    def list_(self) -> Any:
        self.expect("[")
        items = []
        if self.peek() == "]":
            self.pos += 1
            return ("l", tuple(items))
        while True:
            items.append(self.value())
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("]")
            return ("l", tuple(items))

    def key(self) -> str:
        self.ws()
        if self.peek() == "`":
            end = self.text.index("`", self.pos + 1)
            name = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return name
        m = re.match(r"[^\s:{}(),\[\]'<>|-]+", self.text[self.pos :])
        if not m:
            raise ValueError(f"bad name in {self.text!r} at {self.pos}")
        self.pos += m.end()
        return m.group(0)

    def map_(self) -> Any:
        self.expect("{")
        items = {}
        if self.peek() == "}":
            self.pos += 1
            return ("m", frozenset())
        while True:
            key = self.key()
            self.expect(":")
            items[key] = self.value()
            if self.peek() == ",":
                self.pos += 1
                continue
            self.expect("}")
            return ("m", frozenset(items.items()))

    def labels(self) -> frozenset[str]:
        labels = set()
        while self.peek() == ":":
            self.pos += 1
            labels.add(self.key())
        return frozenset(labels)

    def node(self) -> Any:
        self.expect("(")
        labels = self.labels()
        props: Any = ("m", frozenset())
        if self.peek() == "{":
            props = self.map_()
        self.expect(")")
        return ("node", labels, props[1])

    def relationship(self) -> Any:
        self.expect("[")
        self.expect(":")
        rel_type = self.key()
        props: Any = ("m", frozenset())
        if self.peek() == "{":
            props = self.map_()
        self.expect("]")
        return ("rel", rel_type, props[1])

    def path(self) -> Any:
        self.expect("<")
        elements: list[Any] = [self.node()]
        while self.peek() in ("-", "<"):
            if self.peek() == "<":
                self.expect("<-")
                rel = self.relationship()
                self.expect("-")
                elements.append(("<", rel))
            else:
                self.expect("-")
                rel = self.relationship()
                self.expect("->")
                elements.append((">", rel))
            elements.append(self.node())
        self.expect(">")
        return ("path", tuple(elements))


def normalize_float(value: float) -> Any:
    if math.isnan(value):
        return ("f", "NaN")
    if math.isinf(value):
        return ("f", value)
    return ("f", float(f"{value:.12g}"))


def parse_value(text: str) -> Any:
    return _ValueParser(text).parse()


def normalize(value: Any) -> Any:
    """An engine value in the same shape as `parse_value` gives for its TCK text."""
    from cypher.values import Node, Path, Relationship
    from store import values as sv

    if value is None:
        return None
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, float):
        return normalize_float(value)
    if isinstance(value, str):
        return ("s", value)
    if isinstance(value, list):
        return ("l", tuple(normalize(v) for v in value))
    if isinstance(value, dict):
        return ("m", frozenset((k, normalize(v)) for k, v in value.items()))
    if isinstance(value, Node):
        return (
            "node",
            frozenset(value.labels),
            frozenset((k, normalize(v)) for k, v in value.properties.items()),
        )
    if isinstance(value, Relationship):
        return (
            "rel",
            value.type,
            frozenset((k, normalize(v)) for k, v in value.properties.items()),
        )
    if isinstance(value, Path):
        elements: list[Any] = [normalize(value.nodes[0])]
        for index, rel in enumerate(value.relationships):
            forward = rel.start == value.nodes[index].id
            elements.append((">" if forward else "<", normalize(rel)))
            elements.append(normalize(value.nodes[index + 1]))
        return ("path", tuple(elements))
    if isinstance(value, (*sv.TEMPORAL_TYPES, sv.Point)):
        from cypher.functions import to_string

        return ("s", to_string(value))
    return ("?", repr(value))


def sort_lists(value: Any) -> Any:
    if isinstance(value, tuple) and value and value[0] == "l":
        return ("l", tuple(sorted((sort_lists(v) for v in value[1]), key=repr)))
    if isinstance(value, tuple) and value and value[0] == "m":
        return ("m", frozenset((k, sort_lists(v)) for k, v in value[1]))
    return value


# -- running scenarios ---------------------------------------------------------------------


class ScenarioFailure(Exception):
    pass


class ScenarioSkipped(Exception):
    pass


class _Timeout(BaseException):
    pass


def _graph_state(graph: Any) -> dict[str, set[Any]]:
    """What the TCK's side effects count, read through the GraphView (any store)."""
    nodes = [graph.node(node_id) for node_id in graph.node_ids()]
    rels = [graph.relationship(rel_id) for rel_id in graph.relationship_ids()]
    labels = {label for node in nodes for label in node.labels}
    props = {("n", node.id, k, repr(v)) for node in nodes for k, v in node.properties.items()}
    props |= {("r", rel.id, k, repr(v)) for rel in rels for k, v in rel.properties.items()}
    return {
        "nodes": {node.id for node in nodes},
        "relationships": {rel.id for rel in rels},
        "labels": labels,
        "properties": props,
    }


class _Graph:
    """A fresh graph for one scenario on the chosen store; `apply` as the apply loop does."""

    def __init__(self, store: str) -> None:
        self.scratch: tempfile.TemporaryDirectory[str] | None = None
        self.index = 0
        if store == "memory":
            from store.memory import MemoryGraph

            self.view: Any = MemoryGraph()
            return
        from store.crypto import Keyring
        from store.graph import GraphStore

        self.scratch = tempfile.TemporaryDirectory(prefix="quiver-tck-")
        work = Path(self.scratch.name)
        self.view = GraphStore(work / "graph", Keyring(work / "keys", os.urandom(32)))

    def apply(self, write_set: Any) -> None:
        if self.scratch is None:
            self.view.apply(write_set)
            return
        self.index += 1
        self.view.apply(write_set, self.index)

    def close(self) -> None:
        if self.scratch is not None:
            self.view.close()
            self.scratch.cleanup()


def _side_effects(before: dict[str, set[Any]], after: dict[str, set[Any]]) -> dict[str, int]:
    effects = {}
    for key in before:
        effects["+" + key] = len(after[key] - before[key])
        effects["-" + key] = len(before[key] - after[key])
    return effects


def run_scenario(scenario: Scenario) -> tuple[str, str]:
    """Returns (status, message): status is passed, failed or skipped."""
    graph = _Graph(_store)
    try:
        return _run_scenario_on(scenario, graph)
    finally:
        graph.close()


def _run_scenario_on(scenario: Scenario, store: _Graph) -> tuple[str, str]:
    from cypher import CypherError, Engine

    graph = store.view
    engine = Engine()
    parameters: dict[str, Any] = {}
    result: Any = None
    error: CypherError | None = None
    before: dict[str, set[Any]] | None = None
    after: dict[str, set[Any]] | None = None
    executed = False

    def execute(query: str) -> Any:
        res = engine.run(graph, query, parameters)
        store.apply(res.write_set)
        return res

    for step in scenario.steps:
        text = step.text
        if text in ("an empty graph", "any graph"):
            continue
        m = re.fullmatch(r"the (\S+) graph", text)
        if m:
            path = TCK_ROOT / "graphs" / m.group(1) / f"{m.group(1)}.cypher"
            execute(path.read_text(encoding="utf-8"))
            continue
        if text.startswith("having executed"):
            assert step.doc is not None
            try:
                execute(step.doc)
            except CypherError as exc:
                raise ScenarioFailure(f"setup query failed: {exc}") from None
            continue
        if text.startswith("parameters are"):
            for row in step.table or []:
                parameters[row[0]] = to_engine_value(parse_value(row[1]))
            continue
        if text.startswith("there exists a procedure"):
            _register_procedure(engine, text, step.table or [])
            continue
        if text.startswith("executing query") or text.startswith("executing control query"):
            assert step.doc is not None
            before = _graph_state(graph)
            try:
                result = execute(step.doc)
                error = None
            except CypherError as exc:
                error = exc
                result = None
            after = _graph_state(graph)
            executed = True
            continue
        if text.startswith("the result should be"):
            if error is not None:
                raise ScenarioFailure(f"unexpected error {error!r} ({error.kind}/{error.detail})")
            _check_result(text, step.table or [], result)
            continue
        m = re.fullmatch(
            r"an? (\w+) should be raised at (compile time|runtime|any time): (\S+)", text
        )
        if m:
            kind, phase, detail = m.groups()
            if error is None:
                raise ScenarioFailure(f"expected {kind} {detail}, got a result")
            if error.kind != kind:
                raise ScenarioFailure(
                    f"expected {kind}/{detail}, got {error.kind}/{error.detail}: {error}"
                )
            if detail != "*" and error.detail != detail:
                raise ScenarioFailure(f"expected detail {detail}, got {error.detail}: {error}")
            if phase != "any time" and error.phase != phase:
                raise ScenarioFailure(f"expected phase {phase}, got {error.phase}: {error}")
            continue
        if text.startswith("no side effects") or text.startswith("the side effects should be"):
            if error is not None:
                raise ScenarioFailure(f"unexpected error {error!r} ({error.kind}/{error.detail})")
            assert before is not None and after is not None
            effects = _side_effects(before, after)
            expected = {key: 0 for key in effects}
            for row in step.table or []:
                expected[row[0]] = int(row[1])
            if effects != expected:
                diff = {k: (expected[k], effects[k]) for k in effects if effects[k] != expected[k]}
                raise ScenarioFailure(f"side effects differ (expected, actual): {diff}")
            continue
        raise ScenarioSkipped(f"unknown step: {step.keyword} {text}")
    if not executed:
        raise ScenarioSkipped("no query executed")
    return "passed", ""


def to_engine_value(value: Any) -> Any:
    if value is None:
        return None
    tag = value[0]
    if tag in ("b", "i", "s"):
        return value[1]
    if tag == "f":
        return math.nan if value[1] == "NaN" else value[1]
    if tag == "l":
        return [to_engine_value(v) for v in value[1]]
    if tag == "m":
        return {k: to_engine_value(v) for k, v in value[1]}
    raise ValueError(f"cannot use {value!r} as a parameter")


def _register_procedure(engine: Any, text: str, table: list[list[str]]) -> None:
    m = re.fullmatch(r"there exists a procedure (.*):", text.strip())
    assert m
    signature = m.group(1)
    from cypher.engine import parse_signature

    _, inputs, outputs = parse_signature(signature)
    header = table[0] if table else []
    rows = [[to_engine_value(parse_value(cell)) for cell in row] for row in table[1:]]
    input_names = [name for name, _ in inputs]

    def procedure(ctx: Any, args: list[Any]) -> list[dict[str, Any]]:
        from cypher.values import equals

        found = []
        for row in rows:
            record = dict(zip(header, row, strict=True))
            if all(
                equals(record.get(name), arg) is True or (record.get(name) is None and arg is None)
                for name, arg in zip(input_names, args, strict=True)
            ):
                found.append({name: record.get(name) for name, _ in outputs})
        return found

    engine.register_procedure(signature, procedure)


def _check_result(text: str, table: list[list[str]], result: Any) -> None:
    if text.startswith("the result should be empty"):
        if result.rows:
            raise ScenarioFailure(f"expected no rows, got {result.rows[:5]}")
        return
    header = table[0]
    if list(result.columns) != header:
        raise ScenarioFailure(f"columns {result.columns} != {header}")
    expected = [tuple(parse_value(cell) for cell in row) for row in table[1:]]
    actual = [tuple(normalize(v) for v in row) for row in result.rows]
    if "ignoring element order for lists" in text:
        expected = [tuple(sort_lists(v) for v in row) for row in expected]
        actual = [tuple(sort_lists(v) for v in row) for row in actual]
    if "in order" in text:
        if expected != actual:
            raise ScenarioFailure(
                f"rows differ (in order):\n  expected {expected[:6]}\n  actual   {actual[:6]}"
            )
        return
    if collections.Counter(map(repr_key, expected)) != collections.Counter(map(repr_key, actual)):
        raise ScenarioFailure(
            f"rows differ (any order):\n  expected {expected[:6]}\n  actual   {actual[:6]}"
        )


def repr_key(row: Any) -> Any:
    return row


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout()


def _worker(index_scenario: tuple[int, Scenario]) -> tuple[int, str, str, float]:
    index, scenario = index_scenario
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, SCENARIO_TIMEOUT_S)
    started = time.monotonic()
    try:
        status, message = run_scenario(scenario)
    except ScenarioFailure as exc:
        status, message = "failed", str(exc)
    except ScenarioSkipped as exc:
        status, message = "skipped", str(exc)
    except _Timeout:
        status, message = "failed", f"timed out after {SCENARIO_TIMEOUT_S}s"
    except Exception as exc:  # a crash is a failure of that scenario, reported in full
        status, message = "failed", f"crash: {exc!r}\n{traceback.format_exc(limit=6)}"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    return index, status, message, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--filter", default="", help="run scenarios whose feature path or name contains this"
    )
    parser.add_argument("--failures", type=int, default=0, help="print this many failures")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--tck", default=str(TCK_ROOT))
    parser.add_argument(
        "--store", choices=STORES, default="memory", help="the graph each scenario runs on"
    )
    args = parser.parse_args(argv)
    global _store
    _store = args.store
    root = Path(args.tck)
    scenarios = [
        s for s in load_scenarios(root) if args.filter in s.feature or args.filter in s.name
    ]
    started = time.monotonic()
    if args.jobs > 1:
        with multiprocessing.get_context("fork").Pool(args.jobs) as pool:
            outcomes = list(pool.imap_unordered(_worker, enumerate(scenarios), chunksize=8))
    else:
        outcomes = [_worker(item) for item in enumerate(scenarios)]
    outcomes.sort()
    by_folder: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    failures = []
    for index, status, message, _ in outcomes:
        scenario = scenarios[index]
        by_folder[scenario.folder][status] += 1
        if status != "passed":
            failures.append((scenario, status, message))
    for scenario, status, message in failures[: args.failures]:
        print(f"--- {status}: {scenario.feature}: {scenario.name}\n{message}\n")
    print(f"{'folder':40} {'passed':>7} {'failed':>7} {'skipped':>7} {'total':>7}")
    totals: collections.Counter[str] = collections.Counter()
    for folder in sorted(by_folder):
        counts = by_folder[folder]
        totals.update(counts)
        total = sum(counts.values())
        print(
            f"{folder:40} {counts['passed']:7} {counts['failed']:7} {counts['skipped']:7} {total:7}"
        )
    print(f"store: {args.store}, elapsed {time.monotonic() - started:.1f}s")
    total = sum(totals.values())
    print(
        f"TCK: {totals['passed']} passed, {totals['failed']} failed, "
        f"{totals['skipped']} skipped of {total} scenarios"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
