"""``quiver bench cluster``: figures of a real local cluster (3 nodes, default settings).

Starts a supervised cluster in a scratch directory with ``quiver up --detach``, then
measures single-client write latency, read latency per consistency, the write rate of
concurrent clients, and failover (SIGKILL of the leader to the first acknowledged write),
and stops the cluster. Reports figures; asserts nothing (tests assert behaviour).
"""

from __future__ import annotations

import os
import signal
import statistics
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

WARMUP: Final = 50
SAMPLES: Final = 500
WRITERS: Final = 16
WRITES_PER_WRITER: Final = 50
KILLS: Final = 5
SETTLE_S: Final = 30.0


def _percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = ordered[len(ordered) // 2] * 1000
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000
    return f"p50 {p50:6.2f} ms  p99 {p99:6.2f} ms  ({len(ordered) / sum(ordered):6.0f}/s)"


def _timed(action: Callable[[], object], count: int) -> list[float]:
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return samples


def _settled(client: Client) -> bool:
    try:
        statuses = [client.node_status(member.id, 1.0) for member in client.members]
    except QuiverError:
        return False
    return all(s.leader_id for s in statuses) and len({s.applied_index for s in statuses}) == 1


def _wait(condition: Callable[[], bool], deadline_s: float) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the cluster did not settle")
        time.sleep(0.1)


def run_bench(directory: Path) -> None:
    client = connect(directory)
    try:
        for i in range(WARMUP):
            client.run("CREATE (:Bench {i: $i})", {"i": i})
        print(f"cluster bench: 3 nodes, 3 zones, TLS, encryption at rest, in {directory}")
        writes = _timed(lambda: client.run("CREATE (:Bench {i: 0})"), SAMPLES)
        print(f"  write, 1 client           {_percentiles(writes)}")
        for consistency in ("linearizable", "causal", "stale"):
            reads = _timed(
                lambda c=consistency: client.run("RETURN 1", mode="read", consistency=c),  # type: ignore[misc]
                SAMPLES,
            )
            print(f"  read {consistency + ',':<13} 1 client {_percentiles(reads)}")
        done: list[int] = []

        def writer() -> None:
            own = connect(directory)
            for i in range(WRITES_PER_WRITER):
                own.run("CREATE (:Bench {i: $i})", {"i": i})
            done.append(WRITES_PER_WRITER)
            own.close()

        threads = [threading.Thread(target=writer) for _ in range(WRITERS)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        print(f"  writes, {WRITERS} clients         {sum(done) / elapsed:6.0f}/s")
        failovers = []
        for _ in range(KILLS):
            _wait(lambda: _settled(client), SETTLE_S)
            leader = client.find_leader()
            os.kill(client.node_status(leader).pid, signal.SIGKILL)
            killed = time.perf_counter()
            client.run("CREATE (:Bench {failover: true})")
            failovers.append(time.perf_counter() - killed)
        failovers.sort()
        print(
            f"  failover over {KILLS} kills: median {statistics.median(failovers) * 1000:.0f} ms, "
            f"max {failovers[-1] * 1000:.0f} ms (SIGKILL of the leader to the first write)"
        )
    finally:
        client.close()


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="quiver-bench-") as scratch:
        directory = Path(scratch) / "cluster"
        quiver = [sys.executable, "-m", "cluster.cli"]
        subprocess.run([*quiver, "up", "--dir", str(directory), "--detach"], check=True)
        try:
            run_bench(directory)
        finally:
            subprocess.run([*quiver, "down", "--dir", str(directory)], check=False)
    return 0
