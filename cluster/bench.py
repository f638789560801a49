"""``quiver bench cluster``: figures of a real local cluster (3 nodes, default settings),
side by side with a bare gRPC echo service measured in the same run.

Starts a supervised cluster in a scratch directory with ``quiver up --detach`` and an echo
service (``cluster.echo``: grpc.aio, the same TLS certificate and channel options as a node's
client port, requests and responses of the sizes a write exchanges), then measures
single-client latency (echo, writes, reads per consistency), throughput of
``CONCURRENT_CLIENTS`` concurrent clients (writes, linearizable and causal reads, each beside
an echo window run just before it) for ``DURATION_S`` each, and failover (SIGKILL of the
leader to the first acknowledged write, over ``KILLS`` kills), after a full write load of
``STEADY_S`` seconds (``$QUIVER_BENCH_STEADY_S``) that must see no leader change, and stops
everything. Reports figures; asserts nothing (tests assert behaviour). Every client is a
thread of this process, for the echo as for Quiver.
"""

from __future__ import annotations

import contextlib
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

import grpc

from cluster import echo
from cluster.client import SYNC_CHANNEL_OPTIONS, Client, connect
from cluster.errors import QuiverError

WARMUP: Final = 50
SAMPLES: Final = 500
CONCURRENT_CLIENTS: Final = 64
DURATION_S: Final = 10.0
KILLS: Final = 20
STEADY_S: Final = float(os.environ.get("QUIVER_BENCH_STEADY_S", "300"))
"""The full-load run without faults that must see no leader change: five minutes, as the
issue asks (shorter with `$QUIVER_BENCH_STEADY_S` for a quick look)."""
SETTLE_S: Final = 30.0
ECHO_START_S: Final = 10.0
JOIN_TIMEOUT_S: Final = 60.0

ELECTION_EVIDENCE: Final = (
    " in term ",  # a role change: "n2 is candidate in term 5 (leader n0)"
    "stream to n",
    "inbox full",
    "snapshot",
)
"""Node log lines that tell why a leader changed."""
EVIDENCE_LINES: Final = 40

_Action = Callable[[], object]
_Factory = Callable[[], tuple[_Action, Callable[[], None]]]


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


def _throughput(factory: _Factory, clients: int, duration_s: float) -> tuple[float, int]:
    """Operations per second of `clients` threads, each running its own action in a loop
    for `duration_s`; and how many operations failed."""
    counts: list[int] = []
    failures: list[int] = []
    start = threading.Barrier(clients + 1)

    def worker() -> None:
        action, close = factory()
        done = failed = 0
        try:
            # Connected before the clock starts, as an application's client is: the TLS
            # handshakes (echo and Quiver alike) and Quiver's one login per client and node
            # (a password hash of tens of milliseconds) are not the throughput measured.
            with contextlib.suppress(QuiverError, grpc.RpcError):
                action()
            start.wait(JOIN_TIMEOUT_S)
            deadline = time.perf_counter() + duration_s
            while time.perf_counter() < deadline:
                try:
                    action()
                except (QuiverError, grpc.RpcError):
                    failed += 1
                else:
                    done += 1
        finally:
            close()
            counts.append(done)
            failures.append(failed)

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for thread in threads:
        thread.start()
    start.wait(JOIN_TIMEOUT_S)
    began = time.perf_counter()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S + duration_s)
    elapsed = time.perf_counter() - began
    return sum(counts) / elapsed, sum(failures)


def _election_evidence(directory: Path, since: float) -> list[str]:
    """The nodes' log lines about elections, broken peer streams and snapshots since
    `since` (``time.time()``), in time order. The bench deletes its cluster when it ends, so
    a leader change in the steady run is explained here or not at all."""
    start = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(since))
    lines: list[str] = []
    for log_file in sorted(directory.glob("nodes/*/node.log")):
        with log_file.open(errors="replace") as handle:
            lines += [
                line.rstrip()
                for line in handle
                if line[:19] >= start and any(mark in line for mark in ELECTION_EVIDENCE)
            ]
    return sorted(lines)[:EVIDENCE_LINES]


def _message_sizes(client: Client) -> tuple[int, list[int]]:
    """The bytes of a write's request and of each response message, as sent."""
    from proto import client_pb2, client_pb2_grpc

    request = client_pb2.RunRequest(
        query="CREATE (:Bench {i: 0})",
        access_mode=client_pb2.ACCESS_MODE_WRITE,
        bookmarks=sorted(client.bookmarks),
        client_id=f"{client.client_id}-size-probe",  # its own: the bench's ids stay fresh
        sequence=1,
    )
    leader = client._member(client.find_leader())
    stub = client_pb2_grpc.QueryStub(client._channel(leader))
    responses = [r.ByteSize() for r in stub.Run(request, timeout=10)]
    return request.ByteSize(), responses


def _start_echo(
    directory: Path, ca: bytes
) -> tuple[subprocess.Popen[bytes], Callable[[bytes], _Factory]]:
    from cluster.init import free_ports

    address = f"127.0.0.1:{free_ports(1)[0]}"
    node_dir = directory / "nodes" / "1"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cluster.echo",
            "--cert",
            str(node_dir / "cert.pem"),
            "--key",
            str(node_dir / "key.pem"),
            "--listen",
            address,
        ]
    )
    credentials = grpc.ssl_channel_credentials(root_certificates=ca)

    def factory_for(payload: bytes) -> _Factory:
        def factory() -> tuple[_Action, Callable[[], None]]:
            # The same channel options as the client's: the echo is read as Quiver's is.
            channel = grpc.secure_channel(address, credentials, options=SYNC_CHANNEL_OPTIONS)
            call = channel.unary_stream(echo.METHOD)

            def action() -> object:
                return list(call(payload, timeout=10))

            return action, channel.close

        return factory

    return process, factory_for


def _wait_echo(factory: _Factory) -> None:
    action, close = factory()
    try:
        deadline = time.monotonic() + ECHO_START_S
        while True:
            try:
                action()
                return
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    finally:
        close()


def run_bench(directory: Path) -> None:
    client = connect(directory)
    echo_process: subprocess.Popen[bytes] | None = None
    try:
        for i in range(WARMUP):
            client.run("CREATE (:Bench {i: $i})", {"i": i})
        request_bytes, response_bytes = _message_sizes(client)
        ca = (directory / "ca.pem").read_bytes()
        echo_process, factory_for = _start_echo(directory, ca)
        echo_factory = factory_for(echo.request(request_bytes, response_bytes))
        _wait_echo(echo_factory)
        print(f"cluster bench: 3 nodes, 3 zones, TLS, encryption at rest, in {directory}")
        print(
            f"  messages: request {request_bytes} B, responses {response_bytes} B "
            "(the echo service exchanges the same)"
        )
        echo_action, echo_close = echo_factory()
        echo_latency = _timed(echo_action, SAMPLES)
        echo_close()
        print(f"  echo, 1 client            {_percentiles(echo_latency)}")
        writes = _timed(lambda: client.run("CREATE (:Bench {i: 0})"), SAMPLES)
        print(f"  write, 1 client           {_percentiles(writes)}")
        for consistency in ("linearizable", "causal", "stale"):
            reads = _timed(
                lambda c=consistency: client.run("RETURN 1", mode="read", consistency=c),  # type: ignore[misc]
                SAMPLES,
            )
            print(f"  read {consistency + ',':<13} 1 client {_percentiles(reads)}")

        def quiver_factory(action: Callable[[Client], object]) -> _Factory:
            def factory() -> tuple[_Action, Callable[[], None]]:
                own = connect(directory)
                return (lambda: action(own)), own.close

            return factory

        # Each workload is set against an echo window run just before it: on a shared
        # machine the load drifts between windows, and one echo figure for all three moved
        # every ratio with it (two runs an hour apart saw the echo at 2012/s and 3790/s).
        for name, action in (
            ("writes", lambda c: c.run("CREATE (:Bench {i: 0})")),
            (
                "linearizable reads",
                lambda c: c.run("RETURN 1", mode="read", consistency="linearizable"),
            ),
            ("causal reads", lambda c: c.run("RETURN 1", mode="read", consistency="causal")),
        ):
            echo_rate, _ = _throughput(echo_factory, CONCURRENT_CLIENTS, DURATION_S)
            rate, failed = _throughput(quiver_factory(action), CONCURRENT_CLIENTS, DURATION_S)
            print(
                f"  {name + ',':<19} {CONCURRENT_CLIENTS} clients {rate:7.0f}/s "
                f"({rate / echo_rate:.2f} of the echo's {echo_rate:.0f}/s just before, "
                f"{failed} failed)"
            )
        before = {m.id: client.node_status(m.id) for m in client.members}
        steady_since = time.time()
        rate, failed = _throughput(
            quiver_factory(lambda c: c.run("CREATE (:Bench {i: 0})")), CONCURRENT_CLIENTS, STEADY_S
        )
        after = {m.id: client.node_status(m.id) for m in client.members}
        changes = max(after[n].term - before[n].term for n in after)
        leaders = {s.leader_id for s in (*before.values(), *after.values())}
        print(
            f"  steady: {CONCURRENT_CLIENTS} writers for {STEADY_S:.0f} s, {rate:.0f}/s, "
            f"{failed} failed, term changes {changes}, leaders seen {sorted(leaders)}"
        )
        if changes:
            for line in _election_evidence(directory, steady_since):
                print(f"    {line}")
        failovers = []
        for _ in range(KILLS):
            _wait(lambda: _settled(client), SETTLE_S)
            leader = client.find_leader()
            os.kill(client.node_status(leader).pid, signal.SIGKILL)
            killed = time.perf_counter()
            client.run("CREATE (:Bench {failover: true})")
            failovers.append(time.perf_counter() - killed)
        failovers.sort()
        p99 = failovers[min(len(failovers) - 1, int(len(failovers) * 0.99))]
        print(
            f"  failover over {KILLS} kills: median {statistics.median(failovers) * 1000:.0f} ms, "
            f"p99 {p99 * 1000:.0f} ms, max {failovers[-1] * 1000:.0f} ms "
            "(SIGKILL of the leader to the first acknowledged write)"
        )
    finally:
        client.close()
        if echo_process is not None:
            echo_process.terminate()
            echo_process.wait(JOIN_TIMEOUT_S)


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
