"""``quiver bench cypher``: the embedded engine over the encrypted RocksDB store.

Loads ``--persons`` :Person nodes (10,000) and ``--knows`` :KNOWS relationships (50,000)
with ``UNWIND`` batches of ``--batch`` (1,000) rows, applying each statement's write set to
the store; then times point lookups by an indexed id and friend-of-friend
``count(DISTINCT)`` queries from random start nodes, and prints mean, p50 and p95 per
query. Beside each query it times the same work done by hand through the store's
``GraphView`` (index seek and record read; two typed expansions and a set), so the
engine's own cost is the difference. The engine's answers are checked against the
baseline's; a benchmark otherwise asserts nothing.

Then it runs both queries three ways, interleaved: unrestricted (``privileges=None``), as a
user whose ``PrivilegeSet`` grants everything (admin), and as a restricted user (every
hundredth person carries a denied label, and a property is unreadable), and prints each
one's throughput relative to the unrestricted run: the cost of the filtered view (#7).

Must never: run as part of the tests, or leave its scratch directory behind.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cypher.engine import Engine
from store.crypto import Keyring, PlaintextCipher
from store.graph import GraphStore
from store.view import Direction

LOOKUP = "MATCH (p:Person {id: $id}) RETURN p.name"
FRIEND_OF_FRIEND = (
    "MATCH (p:Person {id: $id})-[:KNOWS]->()-[:KNOWS]->(fof) RETURN count(DISTINCT fof)"
)
LOAD_PERSONS = "UNWIND $rows AS row CREATE (:Person {id: row.id, name: row.name})"
LOAD_KNOWS = (
    "UNWIND $rows AS row MATCH (a:Person {id: row.a}), (b:Person {id: row.b}) "
    "CREATE (a)-[:KNOWS]->(b)"
)


@dataclass(frozen=True, slots=True)
class CypherBenchConfig:
    persons: int = 10_000
    knows: int = 50_000
    batch: int = 1_000
    lookups: int = 1_000
    friend_of_friend: int = 1_000
    seed: int = 1
    encrypt: bool = True


@dataclass(frozen=True, slots=True)
class Timings:
    """Per-call latencies of one query, in milliseconds."""

    samples_ms: list[float]

    @property
    def mean(self) -> float:
        return statistics.fmean(self.samples_ms)

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.samples_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _time_interleaved(
    arguments: Sequence[int], query: Callable[[int], Any], baseline: Callable[[int], Any]
) -> tuple[Timings, Timings, int]:
    """Time `query` and `baseline` on each argument in turn, so that a noisy neighbour
    (another process on the machine) lands on both alike; also count differing answers."""
    query_ms, baseline_ms, wrong = [], [], 0
    clock = time.perf_counter
    for argument in arguments:
        start = clock()
        answer = query(argument)
        middle = clock()
        expected = baseline(argument)
        end = clock()
        query_ms.append((middle - start) * 1000)
        baseline_ms.append((end - middle) * 1000)
        wrong += answer != expected
    return Timings(query_ms), Timings(baseline_ms), wrong


class _Loader:
    """Runs writing statements and applies each write set as the next Raft index would."""

    def __init__(self, engine: Engine, graph: GraphStore) -> None:
        self.engine = engine
        self.graph = graph
        self.index = graph.applied_index()
        self.engine_s = 0.0
        self.apply_s = 0.0

    def run(self, query: str, parameters: dict[str, Any] | None = None) -> None:
        start = time.perf_counter()
        result = self.engine.run(self.graph, query, parameters)
        middle = time.perf_counter()
        self.index += 1
        self.graph.apply(result.write_set, self.index)
        self.engine_s += middle - start
        self.apply_s += time.perf_counter() - middle


def _load(loader: _Loader, config: CypherBenchConfig, rng: random.Random) -> None:
    loader.run("CREATE INDEX person_id FOR (p:Person) ON (p.id)")
    for first in range(0, config.persons, config.batch):
        rows = [
            {"id": i, "name": f"person-{i}"}
            for i in range(first, min(first + config.batch, config.persons))
        ]
        loader.run(LOAD_PERSONS, {"rows": rows})
    for first in range(0, config.knows, config.batch):
        count = min(config.batch, config.knows - first)
        rows = [
            {"a": rng.randrange(config.persons), "b": rng.randrange(config.persons)}
            for _ in range(count)
        ]
        loader.run(LOAD_KNOWS, {"rows": rows})


def _baseline_lookup(graph: GraphStore, person_id: int) -> Any:
    for node_id in graph.node_ids_by_property("Person", "id", person_id):
        record = graph.node(node_id)
        assert record is not None
        return record.properties.get("name")
    return None


def _baseline_friend_of_friend(graph: GraphStore, person_id: int) -> int:
    found: set[int] = set()
    for node_id in graph.node_ids_by_property("Person", "id", person_id):
        for first in graph.relationships(node_id, Direction.OUTGOING, ("KNOWS",)):
            for second in graph.relationships(first.end, Direction.OUTGOING, ("KNOWS",)):
                if second.id != first.id:
                    found.add(second.end)
    return len(found)


def _privilege_sets() -> list[tuple[str, Any]]:
    from cluster.security.privileges import NODES, RELATIONSHIPS, Action, deny, grant, resolve

    restricted = resolve(
        ["restricted"],
        {
            "restricted": [
                grant(Action.MATCH, NODES),
                grant(Action.MATCH, RELATIONSHIPS),
                deny(Action.TRAVERSE, NODES, ["Secret"]),
                deny(Action.READ, NODES, ["Person"], ["email"]),
            ]
        },
    )
    return [("none", None), ("admin", resolve(["admin"])), ("restricted", restricted)]


def _time_privileges(
    engine: Engine, graph: GraphStore, name: str, query: str, ids: Sequence[int], out
) -> None:
    """Each argument runs under every privilege set in turn (a noisy neighbour lands on all
    alike); reports the median per call and throughput (its inverse) relative to the
    unrestricted run."""
    sets = _privilege_sets()
    samples: dict[str, list[float]] = {label: [] for label, _ in sets}
    clock = time.perf_counter
    for argument in ids[:100]:  # untimed warm-up
        for _, privileges in sets:
            engine.run(graph, query, {"id": argument}, privileges)
    for argument in ids:
        for label, privileges in sets:
            start = clock()
            engine.run(graph, query, {"id": argument}, privileges)
            samples[label].append((clock() - start) * 1000)
    base = statistics.median(samples["none"])
    cells = "".join(
        f"{label} {statistics.median(s):.3f} ms ({base / statistics.median(s):.2f})  "
        for label, s in samples.items()
    )
    ratio = statistics.median(samples["admin"]) / statistics.median(samples["restricted"])
    out(f"  {name:<22}{cells}restricted/admin {ratio:.2f} (target >= 0.85)")


def run(config: CypherBenchConfig, out: Callable[[str], None] = print) -> None:
    rng = random.Random(config.seed)
    with tempfile.TemporaryDirectory(prefix="quiver-bench-cypher-") as scratch:
        work = Path(scratch)
        cipher = Keyring(work / "keys", os.urandom(32)) if config.encrypt else PlaintextCipher()
        graph = GraphStore(work / "graph", cipher)
        try:
            engine = Engine()
            out("quiver bench cypher — the embedded engine over the RocksDB store")
            out(f"  encryption: {'on (AES-256-GCM)' if config.encrypt else 'OFF'}")
            out("")
            loader = _Loader(engine, graph)
            start = time.perf_counter()
            _load(loader, config, rng)
            load_s = time.perf_counter() - start
            out(
                f"Load: {config.persons:,} :Person and {config.knows:,} :KNOWS in UNWIND "
                f"batches of {config.batch:,}: {load_s:.2f} s "
                f"(engine {loader.engine_s:.2f} s, store apply {loader.apply_s:.2f} s)"
            )
            graph.flush()
            graph.warm_up()
            lookup_ids = [rng.randrange(config.persons) for _ in range(config.lookups)]
            fof_ids = [rng.randrange(config.persons) for _ in range(config.friend_of_friend)]

            def lookup(person_id: int) -> Any:
                return engine.run(graph, LOOKUP, {"id": person_id}).rows[0][0]

            def friend_of_friend(person_id: int) -> Any:
                return engine.run(graph, FRIEND_OF_FRIEND, {"id": person_id}).rows[0][0]

            queries = (
                ("point lookup", lookup, lambda i: _baseline_lookup(graph, i), lookup_ids),
                (
                    "friend-of-friend",
                    friend_of_friend,
                    lambda i: _baseline_friend_of_friend(graph, i),
                    fof_ids,
                ),
            )
            out("")
            out(
                f"  {'query (ms per call)':<22}{'mean':>8}{'p50':>8}{'p95':>8}"
                f"{'view mean':>11}{'view p50':>10}{'p50 ratio':>13}"
            )
            for name, query, baseline, ids in queries:
                for argument in ids[:100]:  # untimed: plan cache and block cache warm
                    query(argument)
                    baseline(argument)
                timings, base, wrong = _time_interleaved(ids, query, baseline)
                out(
                    f"  {name:<22}{timings.mean:>8.3f}{timings.percentile(0.5):>8.3f}"
                    f"{timings.percentile(0.95):>8.3f}{base.mean:>11.3f}"
                    f"{base.percentile(0.5):>10.3f}"
                    f"{timings.percentile(0.5) / base.percentile(0.5):>13.1f}"
                )
                if wrong:
                    out(f"  !! {wrong} of {len(ids)} {name} answers differ from the baseline")
            out("")
            out("  view: the same work by hand through the store's GraphView (no Cypher),")
            out("  timed alternately with the engine; p50 ratio = engine p50 / view p50")
            out("")
            loader.run("MATCH (p:Person) WHERE p.id % 100 = 0 SET p:Secret")
            out("Privileges: p50 per call (throughput relative to privileges=None)")
            _time_privileges(engine, graph, "point lookup", LOOKUP, lookup_ids, out)
            _time_privileges(engine, graph, "friend-of-friend", FRIEND_OF_FRIEND, fof_ids, out)
            out("  admin: a PrivilegeSet granting everything; restricted: DENY TRAVERSE on")
            out("  the 1% of persons labelled :Secret and DENY READ {email} ON NODES Person")
            load = os.getloadavg()[0]
            out(f"  machine load average during the run: {load:.1f} on {os.cpu_count()} cores")
        finally:
            graph.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quiver bench cypher", description=__doc__)
    defaults = CypherBenchConfig()
    parser.add_argument("--persons", type=int, default=defaults.persons)
    parser.add_argument("--knows", type=int, default=defaults.knows)
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--lookups", type=int, default=defaults.lookups)
    parser.add_argument("--friend-of-friend", type=int, default=defaults.friend_of_friend)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument(
        "--no-encryption", action="store_true", help="plaintext store (for comparison only)"
    )
    args = parser.parse_args(argv)
    run(
        CypherBenchConfig(
            persons=args.persons,
            knows=args.knows,
            batch=args.batch,
            lookups=args.lookups,
            friend_of_friend=args.friend_of_friend,
            seed=args.seed,
            encrypt=not args.no_encryption,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
