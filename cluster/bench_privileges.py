"""``quiver bench privileges``: the restricted-read workload of issue #7 on a real cluster.

Starts a local three-node cluster in a scratch directory (``quiver up --detach``), loads
``PERSONS`` :Person nodes (indexed ``id``, a ``name`` and an ``email``) and ``KNOWS``
relationships, labels every hundredth person :Secret, and makes a user whose only role grants
MATCH on everything but denies TRAVERSE on :Secret nodes and READ {email} on :Person nodes.
Then it runs the same read workload (point lookups by id and friend-of-friend counts, causal
reads from any replica, ``CLIENTS`` concurrent clients) as the initial admin and as that
user, in ``ROUNDS`` alternating slices of ``SLICE_S`` seconds each (so that the machine's
noise lands on both alike), and prints each one's throughput and their ratio (issue #7's
target: the restricted run at least 0.85 of the admin's).

The engine-only version of the same comparison is ``quiver bench cypher`` (its privileges
section), without the network, TLS and login costs that both users pay here.

Reports figures; asserts nothing (tests assert behaviour). Must never: run in the tests, or
leave its cluster running.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

from cluster.client import Client, connect
from cluster.errors import QuiverError

PERSONS: Final = 2_000
KNOWS: Final = 10_000
LOAD_BATCH: Final = 500
CLIENTS: Final = 4
SLICE_S: Final = 2.0
ROUNDS: Final = 5
SETTLE_S: Final = 30.0
JOIN_TIMEOUT_S: Final = 60.0
USER: Final = "bench_restricted"
PASSWORD: Final = "bench-restricted-pass"
ROLE: Final = "bench_restricted_role"
GRANTS: Final = (
    f"GRANT MATCH {{*}} ON GRAPH * NODES * TO {ROLE}",
    f"GRANT MATCH {{*}} ON GRAPH * RELATIONSHIPS * TO {ROLE}",
    f"DENY TRAVERSE ON GRAPH * NODES Secret TO {ROLE}",
    f"DENY READ {{email}} ON GRAPH * NODES Person TO {ROLE}",
)
LOOKUP: Final = "MATCH (p:Person {id: $id}) RETURN p.name, p.email"
FRIEND_OF_FRIEND: Final = (
    "MATCH (p:Person {id: $id})-[:KNOWS]->()-[:KNOWS]->(fof) RETURN count(DISTINCT fof)"
)


def _load(admin: Client, rng: random.Random) -> None:
    admin.run("CREATE INDEX person_id FOR (p:Person) ON (p.id)")
    for start in range(0, PERSONS, LOAD_BATCH):
        rows = [
            {"id": i, "name": f"p{i}", "email": f"p{i}@example.org"}
            for i in range(start, min(PERSONS, start + LOAD_BATCH))
        ]
        admin.run(
            "UNWIND $rows AS row CREATE (:Person {id: row.id, name: row.name, email: row.email})",
            {"rows": rows},
        )
    for start in range(0, KNOWS, LOAD_BATCH):
        rows = [
            {"a": rng.randrange(PERSONS), "b": rng.randrange(PERSONS)}
            for _ in range(min(LOAD_BATCH, KNOWS - start))
        ]
        admin.run(
            "UNWIND $rows AS row MATCH (a:Person {id: row.a}), (b:Person {id: row.b}) "
            "CREATE (a)-[:KNOWS]->(b)",
            {"rows": rows},
        )
    admin.run("MATCH (p:Person) WHERE p.id % 100 = 0 SET p:Secret")


def _make_user(admin: Client) -> None:
    admin.system(f"CREATE USER {USER} SET PASSWORD '{PASSWORD}' CHANGE NOT REQUIRED")
    admin.system(f"CREATE ROLE {ROLE}")
    for grant in GRANTS:
        admin.system(grant)
    admin.system(f"GRANT ROLE {ROLE} TO {USER}")


def _settled(admin: Client) -> bool:
    try:
        statuses = [admin.node_status(member.id, 1.0) for member in admin.members]
    except QuiverError:
        return False
    commit = max(status.commit_index for status in statuses)
    return all(status.leader_id and status.applied_index >= commit for status in statuses)


def _slice(clients: list[Client], query: str, duration_s: float, seed: int) -> tuple[int, int]:
    """Operations done and failed by one thread per client running `query` for
    `duration_s` with random ids."""
    done = [0] * len(clients)
    failed = [0] * len(clients)
    start = threading.Barrier(len(clients) + 1)

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        client = clients[index]
        start.wait(JOIN_TIMEOUT_S)
        deadline = time.perf_counter() + duration_s
        while time.perf_counter() < deadline:
            try:
                client.run(query, {"id": rng.randrange(PERSONS)}, mode="read")
            except QuiverError:
                failed[index] += 1
            else:
                done[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(clients))]
    for thread in threads:
        thread.start()
    start.wait(JOIN_TIMEOUT_S)
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S + duration_s)
    return sum(done), sum(failed)


def _compare(
    name: str,
    query: str,
    admins: list[Client],
    restricted: list[Client],
    out: Callable[[str], None],
) -> float:
    """Alternating slices of the two users (the order swapped each round); the ratio of
    their throughputs."""
    totals = {"admin": [0, 0], "restricted": [0, 0]}
    for round_number in range(ROUNDS):
        order = [("admin", admins), ("restricted", restricted)]
        if round_number % 2:
            order.reverse()
        for label, clients in order:
            done, failed = _slice(clients, query, SLICE_S, round_number)
            totals[label][0] += done
            totals[label][1] += failed
    seconds = ROUNDS * SLICE_S
    admin_rate = totals["admin"][0] / seconds
    restricted_rate = totals["restricted"][0] / seconds
    ratio = restricted_rate / admin_rate if admin_rate else 0.0
    out(
        f"  {name:<18} admin {admin_rate:7.0f}/s  restricted {restricted_rate:7.0f}/s  "
        f"ratio {ratio:.2f}  (failed: {totals['admin'][1]} / {totals['restricted'][1]})"
    )
    return ratio


def run_bench(directory: Path, out: Callable[[str], None] = print) -> None:
    rng = random.Random(7)
    admin = connect(directory, timeout_s=60.0)
    admins = [connect(directory) for _ in range(CLIENTS)]
    restricted = [connect(directory, auth=(USER, PASSWORD)) for _ in range(CLIENTS)]
    try:
        _load(admin, rng)
        _make_user(admin)
        deadline = time.monotonic() + SETTLE_S
        while not _settled(admin):
            if time.monotonic() > deadline:
                raise TimeoutError("the cluster did not settle")
            time.sleep(0.1)
        count = "MATCH (p:Person) RETURN count(p), count(p.email)"
        seen = {
            "admin": admins[0].run(count, mode="read").rows[0],
            "restricted": restricted[0].run(count, mode="read").rows[0],
        }
        out("quiver bench privileges — the same reads as the admin and as a restricted user")
        out(
            f"  graph: {PERSONS:,} :Person, {KNOWS:,} :KNOWS, every 100th person :Secret; "
            f"3 nodes, TLS, encryption at rest"
        )
        out(f"  restricted user: {'; '.join(g.removesuffix(f' TO {ROLE}') for g in GRANTS)}")
        out(
            f"  persons / emails seen: admin {seen['admin'][0]} / {seen['admin'][1]}, "
            f"restricted {seen['restricted'][0]} / {seen['restricted'][1]}"
        )
        out(
            f"  {CLIENTS} clients each, causal reads, {ROUNDS} alternating slices of "
            f"{SLICE_S:.0f} s per user (target ratio >= 0.85)"
        )
        for query in (LOOKUP, FRIEND_OF_FRIEND):  # warm: plan caches, logins, block cache
            _slice(admins, query, 0.5, 99)
            _slice(restricted, query, 0.5, 99)
        _compare("point lookup", LOOKUP, admins, restricted, out)
        _compare("friend-of-friend", FRIEND_OF_FRIEND, admins, restricted, out)
        out(f"  machine load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    finally:
        for client in (admin, *admins, *restricted):
            client.close()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="quiver-bench-privileges-") as scratch:
        directory = Path(scratch) / "cluster"
        quiver = [sys.executable, "-m", "cluster.cli"]
        subprocess.run([*quiver, "up", "--dir", str(directory), "--detach"], check=True)
        try:
            run_bench(directory)
        finally:
            subprocess.run([*quiver, "down", "--dir", str(directory)], check=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
