"""A member added at run time (`quiver add-node`, `quiver serve`, `quiver admin add-learner`)
carries its Bolt address through its Raft membership change: every old member's ROUTE lists
it as a reader and router (also after that old member restarts, from the replicated member
table), the new node serves Bolt itself, and `quiver status` shows its Bolt address."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import neo4j
import pytest
from bolt_cluster_helpers import helpers

from cluster.bolt import packstream as ps
from cluster.bolt import server as bolt

pytestmark = pytest.mark.slow

SOCKET_TIMEOUT_S = 5.0
STOP_TIMEOUT_S = 10.0


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    yield from helpers.start_cluster(tmp_path)


def _receive(sock: ssl.SSLSocket) -> tuple[int, list[Any]]:
    message = b""
    while True:
        size = int.from_bytes(_exactly(sock, 2), "big")
        if size == 0 and message:
            break
        message += _exactly(sock, size)
    unpacker = ps.Unpacker(message)
    count, tag = unpacker.unpack_structure_header()
    return tag, [unpacker.unpack() for _ in range(count)]


def _exactly(sock: ssl.SSLSocket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def _route(address: str, directory: Path) -> dict[str, list[str]] | None:
    """The ROUTE answer of the node at `address` (role -> addresses), None while it does not
    answer. Raw Bolt 5.4 over TLS: drivers keep their routing tables private."""
    credentials = json.loads((directory / "credentials.json").read_text())
    context = ssl.create_default_context(cafile=str(directory / "ca.pem"))
    host, _, port = address.rpartition(":")

    def send(sock: ssl.SSLSocket, tag: int, *fields: Any) -> None:
        packer = ps.Packer()
        packer.pack(ps.Structure(tag, fields))
        sock.sendall(bolt.frame(bytes(packer.buffer)))

    try:
        with (
            socket.create_connection((host, int(port)), SOCKET_TIMEOUT_S) as raw,
            context.wrap_socket(raw, server_hostname=host) as sock,
        ):
            sock.sendall(bolt.MAGIC + bytes((0, 0, 4, 5)) + bytes(12))
            assert _exactly(sock, 4) == bytes((0, 0, 4, 5))
            send(sock, bolt.HELLO, {"user_agent": "quiver-test/1", "routing": {}})
            assert _receive(sock)[0] == bolt.SUCCESS
            auth = {
                "scheme": "basic",
                "principal": credentials["user"],
                "credentials": credentials["password"],
            }
            send(sock, bolt.LOGON, auth)
            assert _receive(sock)[0] == bolt.SUCCESS
            send(sock, bolt.ROUTE, {"address": address}, [], {"db": "neo4j"})
            tag, fields = _receive(sock)
    except (OSError, ConnectionError):
        return None
    if tag != bolt.SUCCESS:
        return None
    return {server["role"]: list(server["addresses"]) for server in fields[0]["rt"]["servers"]}


def _lists(address: str, directory: Path, new_bolt: str) -> bool:
    table = _route(address, directory)
    return table is not None and new_bolt in table["READ"] and new_bolt in table["ROUTE"]


def test_a_node_added_at_run_time_is_routed_to_and_shown_by_status(cluster: Any) -> None:
    directory = cluster.directory
    helpers.wait_for("a leader", cluster.leader)
    added = helpers.quiver("add-node", "--dir", str(directory))
    assert added.returncode == 0, added.stderr
    nodes = {int(n["id"]): n for n in json.loads((directory / "cluster.json").read_text())["nodes"]}
    new_id = max(nodes)
    new_bolt = str(nodes[new_id]["bolt"])
    config = directory / "nodes" / str(new_id) / "node.json"
    with open(config.parent / "node.log", "ab") as log_file:
        joining = subprocess.Popen(
            [sys.executable, "-m", "cluster.cli", "serve", "--config", str(config)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    try:
        learner = helpers.quiver("admin", "add-learner", str(new_id), "--dir", str(directory))
        assert learner.returncode == 0, learner.stderr
        for node_id in sorted(nodes):
            if node_id != new_id:
                helpers.wait_for(
                    f"n{node_id}'s ROUTE to list n{new_id}",
                    lambda n=node_id: _lists(str(nodes[n]["bolt"]), directory, new_bolt),
                )

        # An old member restarted (SIGKILL; the supervisor restarts it) still lists it: the
        # address comes from the replicated member table, not its own configuration file.
        old = min(nodes)
        old_pid = cluster.node_pid(old)
        assert old_pid is not None
        os.kill(old_pid, signal.SIGKILL)
        helpers.wait_for(
            f"n{old} to be restarted",
            lambda: (pid := cluster.node_pid(old)) is not None and pid != old_pid,
        )
        helpers.wait_for(
            f"the restarted n{old}'s ROUTE to list n{new_id}",
            lambda: _lists(str(nodes[old]["bolt"]), directory, new_bolt),
        )

        # The new node serves Bolt itself.
        credentials = json.loads((directory / "credentials.json").read_text())
        with neo4j.GraphDatabase.driver(
            f"bolt://{new_bolt}",
            auth=(credentials["user"], credentials["password"]),
            encrypted=True,
            trusted_certificates=neo4j.TrustCustomCAs(str(directory / "ca.pem")),
            connection_timeout=SOCKET_TIMEOUT_S,
        ) as driver:
            driver.verify_connectivity()

        status = helpers.quiver("status", "--dir", str(directory), "--format", "json")
        assert status.returncode == 0, status.stderr
        shown = {node["id"]: node["bolt"] for node in json.loads(status.stdout)["nodes"]}
        assert shown[new_id] == new_bolt
    finally:
        joining.kill()
        joining.wait(STOP_TIMEOUT_S)
