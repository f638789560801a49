"""``quiver bench bolt``: the Cypher issue's point-lookup and friend-of-friend workload through
Neo4j's official Python driver over Bolt against a real local cluster, beside the same
workload through Quiver's own gRPC client (``cluster.connect``) in the same run.

Starts a 3-node cluster in a scratch directory (``quiver up --detach``; TLS and encryption at
rest on, as always), loads ``--persons`` :Person nodes with an index on ``id`` and ``--knows``
:KNOWS relationships through the gRPC client, then times each query four ways, interleaved
call by call so that a noisy neighbour lands on all alike:

- ``bolt auto``: ``neo4j://`` routing, one READ session, ``session.run`` (RUN + PULL);
- ``bolt managed``: the same session's ``execute_read`` (BEGIN, RUN, PULL, COMMIT);
- ``bolt direct``: ``bolt://`` to one node, one session, ``session.run``;
- ``grpc``: ``Client.run(..., mode="read")`` (a causal read, as the drivers' reads are).

Prints mean, p50 and p95 per call and the p50 ratio of each Bolt way to gRPC, for both
queries and for a floor (``RETURN $id``: every cost of a statement but the graph work). Answers are
checked against the gRPC ones; a benchmark otherwise asserts nothing (tests assert
behaviour). Must never: run as part of the tests at full size, or leave its cluster running.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import neo4j

from cluster.client import Client, connect
from cypher.bench import FRIEND_OF_FRIEND, LOAD_KNOWS, LOAD_PERSONS, LOOKUP, Timings

FLOOR: Final = "RETURN $id AS id"
"""No graph work: each way's cost of a statement itself (client, wire, TLS, session, security
checks, query log), under which no query on that way can go."""
CONNECTION_TIMEOUT_S: Final = 10.0
WARMUP_CALLS: Final = 100
UP_TIMEOUT_S: Final = 120.0


@dataclass(frozen=True, slots=True)
class BoltBenchConfig:
    persons: int = 10_000
    knows: int = 50_000
    batch: int = 1_000
    lookups: int = 1_000
    friend_of_friend: int = 1_000
    seed: int = 1


def _load(client: Client, config: BoltBenchConfig, rng: random.Random) -> None:
    client.run("CREATE INDEX person_id FOR (p:Person) ON (p.id)")
    for first in range(0, config.persons, config.batch):
        rows = [
            {"id": i, "name": f"person-{i}"}
            for i in range(first, min(first + config.batch, config.persons))
        ]
        client.run(LOAD_PERSONS, {"rows": rows})
    for first in range(0, config.knows, config.batch):
        count = min(config.batch, config.knows - first)
        rows = [
            {"a": rng.randrange(config.persons), "b": rng.randrange(config.persons)}
            for _ in range(count)
        ]
        client.run(LOAD_KNOWS, {"rows": rows})


def _driver(uri: str, directory: Path) -> neo4j.Driver:
    credentials = json.loads((directory / "credentials.json").read_text())
    return neo4j.GraphDatabase.driver(
        uri,
        auth=(credentials["user"], credentials["password"]),
        encrypted=True,
        trusted_certificates=neo4j.TrustCustomCAs(str(directory / "ca.pem")),
        connection_timeout=CONNECTION_TIMEOUT_S,
    )


def _bolt_addresses(directory: Path) -> dict[int, str]:
    doc = json.loads((directory / "cluster.json").read_text())
    return {int(node["id"]): str(node["bolt"]) for node in doc["nodes"] if node.get("bolt")}


_Query = Callable[[int], Any]


def _time_interleaved(
    arguments: Sequence[int], ways: Sequence[tuple[str, _Query]]
) -> tuple[dict[str, Timings], dict[str, int]]:
    """Each way on each argument in turn; per way its timings and answers that differ from
    the first way's (the reference)."""
    samples: dict[str, list[float]] = {name: [] for name, _ in ways}
    wrong = dict.fromkeys(samples, 0)
    clock = time.perf_counter
    for argument in arguments:
        reference: Any = None
        for position, (name, query) in enumerate(ways):
            start = clock()
            answer = query(argument)
            samples[name].append((clock() - start) * 1000)
            if position == 0:
                reference = answer
            elif answer != reference:
                wrong[name] += 1
    return {name: Timings(times) for name, times in samples.items()}, wrong


def run_bench(directory: Path, config: BoltBenchConfig, out: Callable[[str], None] = print) -> None:
    """The bench against the running cluster of ``directory`` (its cluster.json)."""
    rng = random.Random(config.seed)
    bolt = _bolt_addresses(directory)
    with connect(directory) as client:
        leader = client.find_leader()
        out(f"quiver bench bolt — {len(bolt)} nodes, TLS, encryption at rest, in {directory}")
        start = time.perf_counter()
        _load(client, config, rng)
        out(
            f"Load (gRPC): {config.persons:,} :Person and {config.knows:,} :KNOWS in UNWIND "
            f"batches of {config.batch:,}: {time.perf_counter() - start:.2f} s"
        )
        # Every replica has applied the load before timing starts (causal reads wait).
        client.run("MATCH (p:Person) RETURN count(p)", mode="read", consistency="linearizable")
        direct_to = leader if leader in bolt else min(bolt)
        routing = _driver(f"neo4j://{bolt[min(bolt)]}", directory)
        direct = _driver(f"bolt://{bolt[direct_to]}", directory)
        try:
            bookmarks = neo4j.Bookmarks.from_raw_values(*client.bookmarks)
            with (
                routing.session(
                    database="neo4j", default_access_mode=neo4j.READ_ACCESS, bookmarks=bookmarks
                ) as routed,
                direct.session(
                    database="neo4j", default_access_mode=neo4j.READ_ACCESS, bookmarks=bookmarks
                ) as one,
            ):
                _time_queries(client, routed, one, config, rng, out)
                out(f"  bolt direct: bolt:// to n{direct_to} (the leader when known: n{leader})")
        finally:
            routing.close()
            direct.close()
    out("  bolt auto / managed: neo4j:// routing (reads to followers), one READ session")
    out("  grpc: Quiver's client, causal reads; ratio = p50 of the way / p50 of grpc")
    out("  floor: a statement without graph work, the part of each figure that is not the query")
    out(f"  machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


def _time_queries(
    client: Client,
    routed: neo4j.Session,
    one: neo4j.Session,
    config: BoltBenchConfig,
    rng: random.Random,
    out: Callable[[str], None],
) -> None:
    def grpc_way(query: str) -> _Query:
        return lambda i: client.run(query, {"id": i}, mode="read").rows[0][0]

    def auto_way(session: neo4j.Session, query: str) -> _Query:
        return lambda i: session.run(query, id=i).single(strict=True)[0]

    def managed_way(query: str) -> _Query:
        def work(tx: neo4j.ManagedTransaction, i: int) -> Any:
            return tx.run(query, id=i).single(strict=True)[0]

        return lambda i: routed.execute_read(work, i)

    out("")
    out(f"  {'query (ms per call)':<36}{'mean':>8}{'p50':>8}{'p95':>8}{'p50 ratio':>11}")
    for name, query, count in (
        ("floor (RETURN $id)", FLOOR, config.lookups),
        ("point lookup", LOOKUP, config.lookups),
        ("friend-of-friend", FRIEND_OF_FRIEND, config.friend_of_friend),
    ):
        ways = [
            ("grpc", grpc_way(query)),
            ("bolt auto", auto_way(routed, query)),
            ("bolt managed", managed_way(query)),
            ("bolt direct", auto_way(one, query)),
        ]
        ids = [rng.randrange(config.persons) for _ in range(count)]
        _time_interleaved(ids[:WARMUP_CALLS], ways)  # untimed: caches and connections warm
        timings, wrong = _time_interleaved(ids, ways)
        base = timings["grpc"].percentile(0.5)
        for way, _ in ways:
            t = timings[way]
            p50 = t.percentile(0.5)
            out(
                f"  {name + ', ' + way:<36}{t.mean:>8.3f}{p50:>8.3f}{t.percentile(0.95):>8.3f}"
                f"{p50 / base:>11.2f}"
            )
            if wrong[way]:
                out(f"  !! {wrong[way]} of {len(ids)} {name} answers ({way}) differ from gRPC's")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="quiver bench bolt", description=__doc__)
    defaults = BoltBenchConfig()
    parser.add_argument("--persons", type=int, default=defaults.persons)
    parser.add_argument("--knows", type=int, default=defaults.knows)
    parser.add_argument("--batch", type=int, default=defaults.batch)
    parser.add_argument("--lookups", type=int, default=defaults.lookups)
    parser.add_argument("--friend-of-friend", type=int, default=defaults.friend_of_friend)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    args = parser.parse_args(argv)
    config = BoltBenchConfig(
        args.persons, args.knows, args.batch, args.lookups, args.friend_of_friend, args.seed
    )
    with tempfile.TemporaryDirectory(prefix="quiver-bench-bolt-") as scratch:
        directory = Path(scratch) / "cluster"
        quiver = [sys.executable, "-m", "cluster.cli"]
        subprocess.run(
            [*quiver, "up", "--dir", str(directory), "--detach"], check=True, timeout=UP_TIMEOUT_S
        )
        try:
            run_bench(directory, config)
        finally:
            subprocess.run([*quiver, "down", "--dir", str(directory)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
