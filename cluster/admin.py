"""``quiver admin``: membership and leadership of a running cluster, online, through Raft.

Owns the client side of the Admin service's changes: find the leader, send it the change,
follow a ``NotALeader`` answer to the new leader (bounded attempts), and keep
``cluster.json`` in step (a removed member leaves it; ``quiver add-node`` adds one).

Actions: ``add-learner N`` (N prepared by ``quiver add-node`` and started with ``quiver
serve``), ``promote N`` (learner -> voter, once caught up), ``demote N`` (voter -> learner),
``remove N`` (refused for the leader: ``transfer-leader`` first), ``transfer-leader [--to
N]``, and ``roll``: a rolling restart of a ``quiver up`` cluster (after an upgrade of the
code), one node at a time, followers first; the leader hands leadership over as it stops.

Must never: retry a change that may have been applied without checking it (a change the
leader answered is done; one that failed in flight is reported, not blindly repeated).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import grpc

from cluster import errors
from cluster.client import Client, connect
from cluster.config import load_cluster
from cluster.errors import QuiverError
from proto import admin_pb2, admin_pb2_grpc

ACTIONS: Final = ("add-learner", "promote", "demote", "remove", "transfer-leader", "roll")
MAX_ATTEMPTS: Final = 10
RETRY_PAUSE_S: Final = 0.2
CHANGE_TIMEOUT_S: Final = 60.0
ROLL_NODE_DEADLINE_S: Final = 60.0
"""How long a node may take to stop, start again, and catch up, in a rolling restart."""
ROLL_POLL_S: Final = 0.1


def _leader_stub(client: Client) -> admin_pb2_grpc.AdminStub:
    leader = client.find_leader()
    if not leader:
        raise QuiverError(errors.UNAVAILABLE, "no leader is known (election running?)")
    return admin_pb2_grpc.AdminStub(client._channel(client._member(leader)))


def run_admin(directory: Path, action: str, node_id: int, catch_up_s: float) -> str:
    """Apply one change; a one-line description of the outcome."""
    if action not in ACTIONS:
        raise QuiverError(errors.INVALID_REQUEST, f"unknown action {action!r}")
    if action != "transfer-leader" and not node_id:
        raise QuiverError(errors.INVALID_REQUEST, f"'{action}' needs a node id")
    request = admin_pb2.MemberChangeRequest(
        node_id=node_id, catch_up_timeout_ms=int(catch_up_s * 1000)
    )
    if action == "add-learner":
        entry = load_cluster(directory).node(node_id)
        request.zone, request.grpc, request.peer = entry.zone, entry.grpc, entry.peer
        request.bolt = entry.bolt
    client = connect(directory)
    try:
        for attempt in range(MAX_ATTEMPTS):
            try:
                stub = _leader_stub(client)
                if action == "transfer-leader":
                    moved = stub.TransferLeader(
                        admin_pb2.TransferLeaderRequest(to=node_id), timeout=CHANGE_TIMEOUT_S
                    )
                    return f"n{moved.leader_id} leads"
                method = {
                    "add-learner": stub.AddLearner,
                    "promote": stub.Promote,
                    "demote": stub.Demote,
                    "remove": stub.RemoveMember,
                }[action]
                timeout_s = CHANGE_TIMEOUT_S + catch_up_s
                response = method(request, timeout=timeout_s)
            except grpc.RpcError as rpc_error:
                error = errors.from_rpc_error(rpc_error)
                # Only a change the leader refused before proposing is safe to resend.
                if error.code != errors.NOT_A_LEADER or attempt + 1 == MAX_ATTEMPTS:
                    raise error from None
                client.leader_id = 0
                time.sleep(RETRY_PAUSE_S)
                continue
            except QuiverError:
                if attempt + 1 == MAX_ATTEMPTS:
                    raise
                time.sleep(RETRY_PAUSE_S)
                continue
            if action == "remove":
                from cluster.init import forget_node

                forget_node(directory, node_id)
            return (
                f"{action} n{node_id} applied at {response.index}: voters "
                f"{list(response.voters)}, learners {list(response.learners)}"
            )
    finally:
        client.close()
    raise AssertionError("unreachable")


def roll(directory: Path, say: Callable[[str], None] = print) -> None:
    """Restart every node of the cluster ``quiver up`` supervises, one at a time: SIGTERM
    (a leader hands leadership over first), the supervisor starts it again, and the next
    waits until it answers, knows a leader and has applied what was committed before."""
    from cluster.supervisor import SUPERVISOR_PID, running_pid

    if running_pid(directory / SUPERVISOR_PID, "cluster.supervisor") is None:
        raise QuiverError(
            errors.INVALID_REQUEST,
            f"no 'quiver up' supervisor runs for {directory}: it starts each node again",
        )
    cluster = load_cluster(directory)
    client = connect(directory)
    try:
        statuses = {node.id: client.node_status(node.id) for node in cluster.nodes}
        leader = next((i for i, s in statuses.items() if s.role == admin_pb2.ROLE_LEADER), 0)
        if not leader:
            raise QuiverError(errors.UNAVAILABLE, "no leader: roll a cluster that serves")
        for node in sorted(cluster.nodes, key=lambda n: (n.id == leader, n.id)):
            pid_file = directory / "nodes" / str(node.id) / "node.pid"
            pid = running_pid(pid_file, node.config)
            if pid is None:
                raise QuiverError(errors.UNAVAILABLE, f"n{node.id} is not running")
            committed = max(client.node_status(n.id).commit_index for n in cluster.nodes)
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + ROLL_NODE_DEADLINE_S
            while True:
                back = running_pid(pid_file, node.config)
                status = None
                if back not in (None, pid):
                    try:
                        status = client.node_status(node.id, 1.0)
                    except QuiverError:
                        status = None
                if status is not None and status.leader_id and status.applied_index >= committed:
                    break
                if time.monotonic() > deadline:
                    raise QuiverError(
                        errors.UNAVAILABLE,
                        f"n{node.id} was not back and caught up in {ROLL_NODE_DEADLINE_S:.0f} s",
                    )
                time.sleep(ROLL_POLL_S)
            say(f"n{node.id} restarted (pid {pid} -> {back}), applied {status.applied_index}")
    finally:
        client.close()
