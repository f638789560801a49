"""A real local cluster for the tests in this folder: `quiver up --detach` in a temporary
directory (real processes, real TLS, real RocksDB, ports chosen free on 127.0.0.1), and a
teardown that stops it even when the test failed: `quiver down`, then SIGKILL by pid of any
process whose pid file still names a live `quiver serve` or supervisor of that directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cluster.client import Client, connect
from cluster.config import NodeConfig
from cluster.errors import QuiverError
from cluster.node import Node
from cluster.supervisor import SUPERVISOR_PID, running_pid
from proto import admin_pb2, admin_pb2_grpc

TICK_MS = 50
ELECTION_TICKS = 10
WAIT_S = 30.0


def quiver(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    # Failpoints on: the partition test cuts nodes off through Admin.Partition.
    return subprocess.run(
        [sys.executable, "-m", "cluster.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "QUIVER_FAILPOINTS": "1"},
    )


def wait_for(what: str, condition: Callable[[], Any], deadline_s: float = WAIT_S) -> Any:
    """Poll `condition` until it returns something truthy; fail after `deadline_s`."""
    deadline = time.monotonic() + deadline_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_s:.0f} s waiting for {what}")
        time.sleep(0.05)


@dataclass
class LocalCluster:
    directory: Path
    client: Client

    def node_pid(self, node_id: int) -> int | None:
        return running_pid(self.directory / "nodes" / str(node_id) / "node.pid", "serve")

    def statuses(self) -> dict[int, Any]:
        found = {}
        for member in self.client.members:
            try:
                found[member.id] = self.client.node_status(member.id, 1.0)
            except QuiverError:  # a node being down is what some tests want
                found[member.id] = None
        return found

    def leader(self) -> int:
        """The leader every live node agrees on (0 while there is none)."""
        leaders = {s.leader_id for s in self.statuses().values() if s is not None}
        return leaders.pop() if len(leaders) == 1 else 0

    def node_client(self, node_id: int, timeout_s: float = 30.0) -> Client:
        """A client that talks to one node only."""
        member = self.client._member(node_id)
        return Client(
            [type(member)(member.id, member.zone, member.address)],
            self.client.credentials,
            timeout_s=timeout_s,
            metadata=self.client.metadata,
        )

    def partition(self, groups: list[list[int]]) -> None:
        """Cut the cluster into `groups` (Raft traffic and forwarding); [] heals."""
        members = [member.id for member in self.client.members]
        for node_id in members:
            own = next((group for group in groups if node_id in group), members)
            others = [peer for peer in members if peer not in own]
            stub = admin_pb2_grpc.AdminStub(self.client._channel(self.client._member(node_id)))
            stub.Partition(admin_pb2.PartitionRequest(peers=others), timeout=5)


def start_cluster(
    tmp_path: Path, *extra_args: str, directory: Path | None = None
) -> Iterator[LocalCluster]:
    """`quiver up --detach` with the test timings (plus `extra_args`), stopped afterwards;
    in `directory` when given (a cluster made there already starts as it is)."""
    directory = directory if directory is not None else tmp_path / "q"
    result = quiver(
        "up",
        "--dir",
        str(directory),
        "--detach",
        "--tick-ms",
        str(TICK_MS),
        "--election-ticks",
        str(ELECTION_TICKS),
        *extra_args,
    )
    client: Client | None = None
    try:
        assert result.returncode == 0, result.stderr
        client = connect(directory)
        yield LocalCluster(directory, client)
    finally:
        if client is not None:
            client.close()
        quiver("down", "--dir", str(directory))
        pid_files = [directory / SUPERVISOR_PID, *directory.glob("nodes/*/node.pid")]
        for pid_file in pid_files:
            pid = running_pid(pid_file, str(directory))
            if pid is not None:
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def local_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    yield from start_cluster(tmp_path)


@pytest.fixture
def unstarted_node(tmp_path: Path) -> Node:
    """A node that was never started: no store, no servers, no Raft core (a test that needs
    one sets ``raw`` to a stand-in), for tests of its bookkeeping alone."""
    return Node(
        NodeConfig(
            id=1,
            zone="z1",
            cluster_id=1,
            listen_grpc="127.0.0.1:0",
            listen_peer="127.0.0.1:0",
            data_dir=tmp_path,
            key_file=tmp_path / "key",
            ca=tmp_path / "ca.pem",
            cert=tmp_path / "cert.pem",
            key=tmp_path / "key.pem",
            peers={},
        )
    )
