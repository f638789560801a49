"""The files a cluster directory holds, and their shapes.

Owns ``DIR/cluster.json`` (what every client-side command reads: the nodes with their
zones and addresses, the CA and the credentials file, paths relative to DIR) and the node
configuration files ``DIR/nodes/<id>/node.json`` that ``quiver serve --config`` reads.

Must never: hold a secret. Keys live in their own files, mode 0600.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

CLUSTER_FILE: Final = "cluster.json"
NODE_FILE: Final = "node.json"
LOOPBACK: Final = "127.0.0.1"


@dataclass(slots=True, frozen=True)
class NodeEntry:
    """One member as the cluster file lists it."""

    id: int
    zone: str
    grpc: str
    """host:port of the client API (Query, Admin, health): TLS, server certificate only."""
    peer: str
    """host:port of the Raft transport: mutual TLS against the cluster CA."""
    config: str
    """The node's configuration file, relative to the cluster directory."""
    bolt: str = ""
    """host:port of the Bolt listener (Neo4j drivers): TLS, server certificate only; empty
    for a member whose Bolt address this process does not know (one added at run time)."""
    metrics: str = ""
    """host:port of its Prometheus endpoint (plain HTTP, ``GET /metrics``); empty: none."""


@dataclass(slots=True, frozen=True)
class ClusterFile:
    directory: Path
    cluster_id: int
    nodes: tuple[NodeEntry, ...]
    ca: str
    credentials: str

    def node(self, node_id: int) -> NodeEntry:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(f"no node {node_id} in {self.directory / CLUSTER_FILE}")

    @property
    def ca_path(self) -> Path:
        return self.directory / self.ca

    @property
    def credentials_path(self) -> Path:
        return self.directory / self.credentials

    def to_json(self) -> dict[str, Any]:
        return {
            "cluster_id": self.cluster_id,
            "nodes": [
                {
                    "id": n.id,
                    "zone": n.zone,
                    "grpc": n.grpc,
                    "peer": n.peer,
                    "config": n.config,
                    **({"bolt": n.bolt} if n.bolt else {}),
                    **({"metrics": n.metrics} if n.metrics else {}),
                }
                for n in self.nodes
            ],
            "ca": self.ca,
            "credentials": self.credentials,
        }


@dataclass(slots=True, frozen=True)
class NodeConfig:
    """Everything ``quiver serve`` needs; paths are absolute or relative to the file."""

    id: int
    zone: str
    cluster_id: int
    listen_grpc: str
    listen_peer: str
    data_dir: Path
    key_file: Path
    ca: Path
    cert: Path
    key: Path
    peers: dict[int, NodeEntry]
    """Every member, this node included, by id."""
    tick_ms: int = 50
    election_ticks: int = 10
    heartbeat_ticks: int = 1
    snapshot_entries: int = 10_000
    """Take a snapshot once this many entries were applied since the last one."""
    compact_keep_entries: int = 1_000
    """Entries kept below a snapshot when compacting, so that a follower only a little
    behind catches up from the log rather than by a whole snapshot."""
    listen_bolt: str = ""
    """Where the Bolt listener binds (``""``: none)."""
    listen_metrics: str = ""
    """Where the Prometheus endpoint binds (``cluster.metrics``; ``""``: none)."""
    credentials: Path | None = None
    """The credentials file (``{"user", "password"}``) the Bolt listener authenticates
    against, until the security issue's user store replaces it."""
    admin_user: str = ""
    admin_password_hash: str = ""
    """The initial admin (``quiver init``): the first leader of a cluster with no users
    proposes this user with this Argon2id hash (never a clear password in a node config)."""
    auth_max_failures: int = 3
    auth_lock_seconds: float = 5.0
    """Failed logins lock a user and a client host out after ``auth_max_failures``."""
    session_ttl_s: float = 3600.0
    """How long a session token (issued at login) stays good."""
    query_log: bool = True
    query_log_literals: bool = False
    """The query log (``data/audit/query.*.jsonl``) records every statement, its literals
    masked unless ``query_log_literals``."""
    query_log_keep_segments: int = 8
    security_log_keep_segments: int = 0
    """How many 16 MiB segments of each audit log are kept (0: all); older ones are deleted
    at a rotation, after a record of it that ``quiver audit verify`` checks."""
    join: bool = False
    """A node added at run time (``quiver add-node``): it starts with an empty log and no
    configuration and waits for the leader, instead of bootstrapping with ``peers``."""
    peer_routes: dict[int, str] = field(default_factory=dict)
    """Where this node connects to reach a peer's Raft port, by id, when that is not the
    address the peer advertises (its ``peers`` entry or the conf change that added it): a
    proxy or a NAT in between. Empty unless a config says so (the chaos harness routes every
    peer link, members added later included, through its own fault proxy)."""


class NoClusterError(FileNotFoundError):
    """The directory holds no cluster file: never initialised, or another directory meant."""


def load_cluster(directory: Path) -> ClusterFile:
    path = directory / CLUSTER_FILE
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise NoClusterError(
            f"no cluster in {directory} ({CLUSTER_FILE} is missing): make one with "
            "'quiver up' or 'quiver init', or name its directory with --dir"
        ) from None
    nodes = tuple(
        NodeEntry(
            id=int(n["id"]),
            zone=str(n["zone"]),
            grpc=str(n["grpc"]),
            peer=str(n["peer"]),
            config=str(n["config"]),
            bolt=str(n.get("bolt", "")),
            metrics=str(n.get("metrics", "")),
        )
        for n in doc["nodes"]
    )
    return ClusterFile(
        directory=directory,
        cluster_id=int(doc["cluster_id"]),
        nodes=nodes,
        ca=str(doc["ca"]),
        credentials=str(doc["credentials"]),
    )


def write_json(path: Path, doc: dict[str, Any], mode: int = 0o644) -> None:
    """Write `doc` to `path` atomically (a temporary file renamed over it)."""
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as handle:
        json.dump(doc, handle, indent=2, sort_keys=True)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def load_node_config(path: Path) -> NodeConfig:
    doc = json.loads(path.read_text())
    base = path.parent

    def resolve(value: str) -> Path:
        candidate = Path(value)
        return candidate if candidate.is_absolute() else (base / candidate).resolve()

    peers = {
        int(p["id"]): NodeEntry(
            id=int(p["id"]),
            zone=str(p["zone"]),
            grpc=str(p["grpc"]),
            peer=str(p["peer"]),
            config=str(p.get("config", "")),
            bolt=str(p.get("bolt", "")),
        )
        for p in doc["peers"]
    }
    return NodeConfig(
        id=int(doc["id"]),
        zone=str(doc["zone"]),
        cluster_id=int(doc["cluster_id"]),
        listen_grpc=str(doc["listen_grpc"]),
        listen_peer=str(doc["listen_peer"]),
        data_dir=resolve(doc["data_dir"]),
        key_file=resolve(doc["key_file"]),
        ca=resolve(doc["ca"]),
        cert=resolve(doc["cert"]),
        key=resolve(doc["key"]),
        peers=peers,
        tick_ms=int(doc.get("tick_ms", 50)),
        election_ticks=int(doc.get("election_ticks", 10)),
        heartbeat_ticks=int(doc.get("heartbeat_ticks", 1)),
        snapshot_entries=int(doc.get("snapshot_entries", 10_000)),
        compact_keep_entries=int(doc.get("compact_keep_entries", 1_000)),
        listen_bolt=str(doc.get("listen_bolt", "")),
        listen_metrics=str(doc.get("listen_metrics", "")),
        credentials=resolve(doc["credentials"]) if doc.get("credentials") else None,
        admin_user=str(doc.get("admin_user", "")),
        admin_password_hash=str(doc.get("admin_password_hash", "")),
        auth_max_failures=int(doc.get("auth_max_failures", 3)),
        auth_lock_seconds=float(doc.get("auth_lock_seconds", 5.0)),
        session_ttl_s=float(doc.get("session_ttl_s", 3600.0)),
        query_log=bool(doc.get("query_log", True)),
        query_log_literals=bool(doc.get("query_log_literals", False)),
        query_log_keep_segments=int(doc.get("query_log_keep_segments", 8)),
        security_log_keep_segments=int(doc.get("security_log_keep_segments", 0)),
        join=bool(doc.get("join", False)),
        peer_routes={int(k): str(v) for k, v in dict(doc.get("peer_routes", {})).items()},
    )
