"""Workload adapters over ``cluster.connect``: registers, sets, bank accounts and a graph as
Cypher against a real Quiver cluster, and the bank and graph worker loops.

Owns how each abstract operation becomes Cypher and how its outcome is decided:

* register ``r`` is a node ``(:ChaosRegister {key})`` with a value property ``v`` (absent:
  the initial ``None``); a read is a ``linearizable`` read, a write ``SET``, a
  compare-and-set a conditional write ``MATCH ... WHERE n.v = $old SET n.v = $new`` decided by
  its ``properties_set`` counter (a retried request answered from the dedup table carries the
  original counters, never rows);
* set element ``e`` is a node ``(:ChaosElement {e})``; the final read is linearizable;
* bank account ``a`` is ``(:ChaosAccount {name, balance})``; a transfer is one explicit
  transaction (read both balances, refuse an overdraft, move the amount) and a read sees all
  accounts at once;
* the graph is ``(:ChaosVertex {id})`` nodes created up front, ``[:CHAOS_LINK {id}]``
  relationships created and deleted concurrently, and reads of every link and of two-step
  paths with their counts.

Outcomes: an operation that raised after it may have reached the leader is ``info``
(``chaos.workload``'s rule), except where the cluster says it certainly did not happen: a
transaction that never reached its commit, or a commit refused as outdated.

Must never: retry an operation with a new request id (``cluster.client`` retries with the
same one), or run without a bound (time, operations and per-call timeouts are all given).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.history import EventType, Operation, Recorder, Status
from chaos.workload import DefiniteFailure, WorkloadLimits, _outcome, _run_workers
from cluster import errors
from cluster.client import Client
from cluster.errors import QuiverError

REGISTER_LABEL = "ChaosRegister"
ELEMENT_LABEL = "ChaosElement"
ACCOUNT_LABEL = "ChaosAccount"
VERTEX_LABEL = "ChaosVertex"
LINK_TYPE = "CHAOS_LINK"
READ = "linearizable"


# --- registers ------------------------------------------------------------------------------


@dataclass(slots=True)
class ClusterRegister:
    """``chaos.workload.RegisterClient`` over a cluster: ``writer`` goes wherever the client
    library routes writes (the leader), ``reader`` may be pinned to one node so that reads
    exercise followers too."""

    writer: Client
    reader: Client

    def read(self, key: str) -> Any:
        result = self.reader.run(
            f"MATCH (r:{REGISTER_LABEL} {{key: $key}}) RETURN r.v AS v",
            {"key": key},
            mode="read",
            consistency=READ,
        )
        if not result.rows:
            raise DefiniteFailure(f"register {key} does not exist")
        return result.rows[0][0]

    def write(self, key: str, value: Any) -> None:
        result = self.writer.run(
            f"MATCH (r:{REGISTER_LABEL} {{key: $key}}) SET r.v = $value",
            {"key": key, "value": value},
        )
        if result.counters.get("properties_set", 0) < 1:
            raise DefiniteFailure(f"register {key} does not exist")

    def cas(self, key: str, expected: Any, new: Any) -> bool:
        condition = "r.v IS NULL" if expected is None else "r.v = $expected"
        result = self.writer.run(
            f"MATCH (r:{REGISTER_LABEL} {{key: $key}}) WHERE {condition} SET r.v = $new",
            {"key": key, "expected": expected, "new": new},
        )
        return result.counters.get("properties_set", 0) >= 1


def create_registers(client: Client, keys: Sequence[str]) -> None:
    for key in keys:
        client.run(f"CREATE (:{REGISTER_LABEL} {{key: $key}})", {"key": key})


# --- sets -----------------------------------------------------------------------------------


@dataclass(slots=True)
class ClusterSet:
    """``chaos.workload.SetClient`` over a cluster."""

    client: Client

    def add(self, element: int) -> None:
        result = self.client.run(f"CREATE (:{ELEMENT_LABEL} {{e: $e}})", {"e": element})
        if result.counters.get("nodes_created", 0) != 1:
            raise DefiniteFailure(f"adding {element} created {result.counters}")

    def read(self) -> list[int]:
        result = self.client.run(
            f"MATCH (x:{ELEMENT_LABEL}) RETURN x.e", mode="read", consistency=READ
        )
        return [int(row[0]) for row in result.rows]


def run_set_adds(
    make_client: Callable[[int], ClusterSet], recorder: Recorder, limits: WorkloadLimits
) -> None:
    """Unique adds from every worker (the final read is the runner's, after it healed)."""

    def body(slot: int, deadline: float, stop: threading.Event) -> None:
        client = make_client(slot)
        process = slot
        for counter in range(limits.ops_per_process):
            if stop.is_set() or time.monotonic() > deadline:
                return
            element = slot * 1_000_000 + counter
            recorder.invoke(process, "set", "add", element)
            try:
                client.add(element)
            except Exception as error:
                outcome = _outcome(error, False)
                recorder.complete(process, "set", "add", outcome, element)
                if outcome is EventType.INFO:
                    process += limits.processes
                continue
            recorder.complete(process, "set", "add", EventType.OK, element)

    _run_workers(limits, body)


def final_read(
    recorder: Recorder,
    key: str,
    read: Callable[[], Any],
    attempts: int = 20,
    backoff_s: float = 0.5,
) -> bool:
    """One completed read after healing, retried a bounded number of times."""
    process = -1
    for attempt in range(attempts):
        recorder.invoke(process, key, "read")
        try:
            value = read()
        except Exception:
            recorder.complete(process, key, "read", EventType.FAIL)
            time.sleep(min(2.0, backoff_s * (attempt + 1)))
            continue
        recorder.complete(process, key, "read", EventType.OK, value)
        return True
    return False


# --- bank -----------------------------------------------------------------------------------


def account_names(count: int) -> list[str]:
    return [f"a{i}" for i in range(count)]


def create_accounts(client: Client, names: Sequence[str], balance: int) -> None:
    client.run(
        f"UNWIND $names AS name CREATE (:{ACCOUNT_LABEL} {{name: name, balance: $balance}})",
        {"names": list(names), "balance": balance},
    )


@dataclass(slots=True)
class ClusterBank:
    client: Client

    def transfer(self, source: str, target: str, amount: int) -> bool:
        """True when moved, False when refused for want of funds (nothing written). A
        failure before the commit raises DefiniteFailure; a commit of unknown fate, the
        error itself."""
        try:
            transaction = self.client.begin()
        except QuiverError as error:
            raise DefiniteFailure(str(error)) from error
        try:
            result = transaction.run(
                f"MATCH (a:{ACCOUNT_LABEL} {{name: $name}}) RETURN a.balance",
                {"name": source},
            )
            if not result.rows or int(result.rows[0][0]) < amount:
                transaction.rollback()
                return False
            transaction.run(
                f"MATCH (a:{ACCOUNT_LABEL} {{name: $name}}) SET a.balance = a.balance - $amount",
                {"name": source, "amount": amount},
            )
            transaction.run(
                f"MATCH (a:{ACCOUNT_LABEL} {{name: $name}}) SET a.balance = a.balance + $amount",
                {"name": target, "amount": amount},
            )
        except QuiverError as error:
            with _quietly():
                transaction.rollback()
            raise DefiniteFailure(str(error)) from error
        try:
            transaction.commit()
        except QuiverError as error:
            if error.code == errors.OUTDATED:
                raise DefiniteFailure(str(error)) from error
            raise
        return True

    def read(self) -> dict[str, int]:
        result = self.client.run(
            f"MATCH (a:{ACCOUNT_LABEL}) RETURN a.name, a.balance", mode="read", consistency=READ
        )
        return {str(name): int(balance) for name, balance in result.rows}


class _quietly:
    """Suppress a cluster error during best-effort cleanup (a rollback after a failure)."""

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_rest: object) -> bool:
        return kind is not None and issubclass(kind, QuiverError)


def run_bank_workload(
    make_client: Callable[[int], ClusterBank],
    recorder: Recorder,
    accounts: Sequence[str],
    limits: WorkloadLimits,
    max_amount: int = 5,
    seed: int = 0,
) -> None:
    """Transfers between random accounts and reads of all of them."""

    def body(slot: int, deadline: float, stop: threading.Event) -> None:
        rng = random.Random(seed * 7919 + slot)
        bank = make_client(slot)
        process = slot
        for _ in range(limits.ops_per_process):
            if stop.is_set() or time.monotonic() > deadline:
                return
            if rng.random() < 0.4:
                recorder.invoke(process, "bank", "read")
                try:
                    balances = bank.read()
                except Exception:
                    recorder.complete(process, "bank", "read", EventType.FAIL)
                    continue
                recorder.complete(process, "bank", "read", EventType.OK, balances)
                continue
            source, target = rng.sample(list(accounts), 2)
            argument = [source, target, rng.randint(1, max_amount)]
            recorder.invoke(process, "bank", "transfer", argument)
            try:
                moved = bank.transfer(source, target, argument[2])
            except Exception as error:
                outcome = _outcome(error, False)
                recorder.complete(process, "bank", "transfer", outcome, argument)
                if outcome is EventType.INFO:
                    process += limits.processes
                continue
            kind = EventType.OK if moved else EventType.FAIL
            recorder.complete(process, "bank", "transfer", kind, argument)

    _run_workers(limits, body)


# --- graph ----------------------------------------------------------------------------------


def create_vertices(client: Client, count: int) -> None:
    client.run(
        f"UNWIND range(0, $last) AS i CREATE (:{VERTEX_LABEL} {{id: i}})", {"last": count - 1}
    )


@dataclass(slots=True)
class ClusterGraph:
    client: Client

    def link(self, link_id: int, source: int, target: int) -> None:
        result = self.client.run(
            f"MATCH (a:{VERTEX_LABEL} {{id: $a}}), (b:{VERTEX_LABEL} {{id: $b}}) "
            f"CREATE (a)-[:{LINK_TYPE} {{id: $id}}]->(b)",
            {"a": source, "b": target, "id": link_id},
        )
        if result.counters.get("relationships_created", 0) != 1:
            raise DefiniteFailure(f"link {link_id} created {result.counters}")

    def unlink(self, link_id: int) -> bool:
        result = self.client.run(
            f"MATCH ()-[r:{LINK_TYPE} {{id: $id}}]->() DELETE r", {"id": link_id}
        )
        return result.counters.get("relationships_deleted", 0) >= 1

    def read(self) -> dict[str, Any]:
        """Every link with its end vertices, the link count and the two-step path count."""
        links = self.client.run(
            f"MATCH (a)-[r:{LINK_TYPE}]->(b) RETURN r.id, a.id, b.id, "
            f"'{VERTEX_LABEL}' IN labels(a) AND '{VERTEX_LABEL}' IN labels(b)",
            mode="read",
            consistency=READ,
        )
        counts = self.client.run(
            f"MATCH ()-[r:{LINK_TYPE}]->() WITH count(r) AS links "
            f"OPTIONAL MATCH (:{VERTEX_LABEL})-[:{LINK_TYPE}]->(:{VERTEX_LABEL})"
            f"-[:{LINK_TYPE}]->(:{VERTEX_LABEL}) RETURN links, count(*) AS paths",
            mode="read",
            consistency=READ,
        )
        links_count, paths = counts.rows[0] if counts.rows else (None, None)
        return {
            "links": [[r, a, b, bool(ok)] for r, a, b, ok in links.rows],
            "count": links_count,
            "paths": paths,
        }


def run_graph_workload(
    make_client: Callable[[int], ClusterGraph],
    recorder: Recorder,
    vertices: int,
    limits: WorkloadLimits,
    seed: int = 0,
) -> None:
    """Links created between existing vertices, some deleted again, and reads of them all."""

    def body(slot: int, deadline: float, stop: threading.Event) -> None:
        rng = random.Random(seed * 104_729 + slot)
        graph = make_client(slot)
        process = slot
        mine: list[int] = []
        for counter in range(limits.ops_per_process):
            if stop.is_set() or time.monotonic() > deadline:
                return
            roll = rng.random()
            if roll < 0.3:
                recorder.invoke(process, "graph", "read")
                try:
                    seen = graph.read()
                except Exception:
                    recorder.complete(process, "graph", "read", EventType.FAIL)
                    continue
                recorder.complete(process, "graph", "read", EventType.OK, seen)
                continue
            if roll < 0.4 and mine:
                link_id = mine.pop(rng.randrange(len(mine)))
                recorder.invoke(process, "graph", "unlink", link_id)
                try:
                    deleted = graph.unlink(link_id)
                except Exception as error:
                    outcome = _outcome(error, False)
                    recorder.complete(process, "graph", "unlink", outcome, link_id)
                    if outcome is EventType.INFO:
                        process += limits.processes
                    continue
                kind = EventType.OK if deleted else EventType.FAIL
                recorder.complete(process, "graph", "unlink", kind, link_id)
                continue
            link_id = slot * 1_000_000 + counter
            argument = [link_id, rng.randrange(vertices), rng.randrange(vertices)]
            recorder.invoke(process, "graph", "link", argument)
            try:
                graph.link(*argument)
            except Exception as error:
                outcome = _outcome(error, False)
                recorder.complete(process, "graph", "link", outcome, argument)
                if outcome is EventType.INFO:
                    process += limits.processes
                continue
            mine.append(link_id)
            recorder.complete(process, "graph", "link", EventType.OK, argument)

    _run_workers(limits, body)


@dataclass(slots=True, frozen=True)
class GraphAnomaly:
    read: Operation
    kind: str  # "dangling", "phantom", "negative-count", "count-mismatch", "lost"
    detail: str


@dataclass(slots=True, frozen=True)
class GraphResult:
    valid: bool | None
    reads: int
    lost: frozenset[int] = frozenset()
    anomalies: tuple[GraphAnomaly, ...] = field(default_factory=tuple)


def check_graph(ops: Iterable[Operation], vertices: int) -> GraphResult:
    """No read sees a link whose ends are not existing vertices (dangling), a link nobody
    created (phantom), a negative count, or a count that disagrees with the links it read
    with; the last read sees every acknowledged link that nobody tried to delete."""
    ops = list(ops)
    attempted: dict[int, list[int]] = {}
    acknowledged: set[int] = set()
    unlinked: set[int] = set()
    for op in ops:
        if op.op == "link":
            attempted[int(op.input[0])] = op.input
            if op.status is Status.OK:
                acknowledged.add(int(op.input[0]))
        elif op.op == "unlink" and op.status is not Status.FAIL:
            unlinked.add(int(op.input))
    anomalies: list[GraphAnomaly] = []
    reads = [op for op in ops if op.op == "read" and op.status is Status.OK]
    for read in reads:
        seen = read.output
        links = seen["links"]
        for link_id, source, target, labelled in links:
            if link_id not in attempted:
                anomalies.append(GraphAnomaly(read, "phantom", f"link {link_id}"))
                continue
            _, want_source, want_target = attempted[link_id]
            if not labelled or (source, target) != (want_source, want_target):
                anomalies.append(
                    GraphAnomaly(read, "dangling", f"link {link_id}: {source} -> {target}")
                )
            elif not (0 <= source < vertices and 0 <= target < vertices):
                anomalies.append(GraphAnomaly(read, "dangling", f"link {link_id} ends outside"))
        for name in ("count", "paths"):
            if seen[name] is None or seen[name] < 0:
                anomalies.append(GraphAnomaly(read, "negative-count", f"{name} = {seen[name]}"))
    lost: set[int] = set()
    if reads:
        # Two statements read at two instants; only the final, quiescent read must agree.
        last = reads[-1]
        present = {int(link[0]) for link in last.output["links"]}
        if last.output["count"] != len(last.output["links"]):
            anomalies.append(
                GraphAnomaly(
                    last,
                    "count-mismatch",
                    f"count {last.output['count']} but {len(last.output['links'])} links",
                )
            )
        lost = (acknowledged - unlinked) - present
        for link_id in sorted(lost):
            anomalies.append(GraphAnomaly(last, "lost", f"link {link_id}"))
    valid = None if not reads else not anomalies
    return GraphResult(valid, len(reads), frozenset(lost), tuple(anomalies))
