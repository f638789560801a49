"""``quiver status``: every member's view of itself, and whether the voters survive a zone.

Owns the JSON shape of the issue: ``{"nodes": [{"id", "zone", "role", "term",
"commit_index", "applied_index", "lag", "pid", "health", "bolt", "metrics"}],
"survives_zone_loss"}`` (``bolt``: the node's Bolt address from ``cluster.json``, for Neo4j
drivers, or null; ``metrics``: its Prometheus endpoint, ``http://ADDRESS/metrics``); a node
that does not answer is ``"down"``. ``lag`` is how far its applied index trails the
highest commit index any member reports.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Final

from cluster.client import connect
from cluster.config import load_cluster
from cluster.errors import QuiverError
from proto import admin_pb2

LAG_WARNING_ENTRIES: Final = 1000
_ROLES: Final = {
    admin_pb2.ROLE_LEADER: "leader",
    admin_pb2.ROLE_FOLLOWER: "follower",
    admin_pb2.ROLE_CANDIDATE: "candidate",
    admin_pb2.ROLE_LEARNER: "learner",
}


def survives_zone_loss(voters: list[int], zone_of: dict[int, str]) -> bool:
    """True when, whichever one zone is lost, a majority of the voters remains."""
    if not voters:
        return False
    per_zone = Counter(zone_of.get(voter, "?") for voter in voters)
    majority = len(voters) // 2 + 1
    return all(len(voters) - lost >= majority for lost in per_zone.values())


def collect(directory: Path, timeout_s: float = 1.0) -> dict[str, Any]:
    client = connect(directory)
    try:
        answers: dict[int, admin_pb2.NodeStatus | None] = {}
        for member in client.members:
            try:
                answers[member.id] = client.node_status(member.id, timeout_s)
            except QuiverError:
                answers[member.id] = None
        zone_of = {member.id: member.zone for member in client.members}
    finally:
        client.close()
    listed = load_cluster(directory).nodes
    bolt_of = {node.id: node.bolt or None for node in listed}
    metrics_of = {node.id: node.metrics or None for node in listed}
    commit = max((s.commit_index for s in answers.values() if s is not None), default=0)
    leaders = {s.leader_id for s in answers.values() if s is not None and s.leader_id}
    voters: list[int] = []
    for status in answers.values():
        if status is not None and status.role == admin_pb2.ROLE_LEADER:
            voters = list(status.voters)
    if not voters:
        voters = next((list(s.voters) for s in answers.values() if s is not None), [])
    nodes = []
    for node_id, status in sorted(answers.items()):
        if status is None:
            nodes.append(
                {
                    "id": node_id,
                    "zone": zone_of[node_id],
                    "role": "down",
                    "term": None,
                    "commit_index": None,
                    "applied_index": None,
                    "lag": None,
                    "pid": None,
                    "health": "unreachable",
                    "bolt": bolt_of.get(node_id),
                    "metrics": metrics_of.get(node_id),
                }
            )
            continue
        lag = max(0, commit - status.applied_index)
        if not status.leader_id:
            health = "no leader known"
        elif lag > LAG_WARNING_ENTRIES:
            health = f"lagging by {lag} entries"
        else:
            health = "ok"
        nodes.append(
            {
                "id": node_id,
                "zone": status.zone,
                "role": _ROLES.get(status.role, "follower"),
                "term": status.term,
                "commit_index": status.commit_index,
                "applied_index": status.applied_index,
                "lag": lag,
                "pid": status.pid,
                "health": health,
                "bolt": bolt_of.get(node_id),
                "metrics": metrics_of.get(node_id),
            }
        )
    return {
        "nodes": nodes,
        "leader": next(iter(leaders)) if len(leaders) == 1 else None,
        "survives_zone_loss": survives_zone_loss(voters, zone_of),
    }


def print_status(directory: Path, output_format: str) -> int:
    doc = collect(directory)
    if output_format == "json":
        print(json.dumps(doc, indent=2))
        return 0
    header = ("id", "zone", "role", "term", "commit", "applied", "lag", "pid", "bolt", "health")
    rows = [
        tuple(
            "-" if node[key] is None else str(node[key])
            for key in (
                "id",
                "zone",
                "role",
                "term",
                "commit_index",
                "applied_index",
                "lag",
                "pid",
                "bolt",
                "health",
            )
        )
        for node in doc["nodes"]
    ]
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
    verdict = "yes" if doc["survives_zone_loss"] else "no"
    print(f"survives the loss of any one zone: {verdict}")
    return 0 if any(node["role"] == "leader" for node in doc["nodes"]) else 1
