"""``quiver init``: a new cluster directory with everything its nodes and clients need.

Layout of DIR::

    cluster.json            nodes (id, zone, grpc, peer, bolt, metrics, config), ca,
                            credentials
    ca.pem, ca.key          the cluster CA (key 0600)
    key                     the key-encryption key for data at rest (0600), shared by the
                            nodes so that one node's snapshot streams open on another
    credentials.json        {"user", "password"} of the initial admin (0600); the node
                            configs carry only its Argon2id hash (``admin_password_hash``)
    nodes/<id>/node.json    the node's configuration (``quiver serve --config``)
    nodes/<id>/cert.pem, key.pem   the node's certificate (server and client use; key 0600)
    nodes/<id>/data/        the node's store

Ports are chosen free on 127.0.0.1 at init time and kept in the files. With ``hosts``
(``quiver init --hosts node1,node2,node3``, for containers such as docker-compose.yml's),
node N is reached at ``hosts[N-1]`` on ports ``CONTAINER_GRPC_PORT``/``CONTAINER_PEER_PORT``
(and ``CONTAINER_BOLT_PORT`` for Neo4j drivers),
listens on every interface of its container, keeps its data in ``CONTAINER_DATA_DIR``, and
its certificate also names its host.

Must never: overwrite an existing cluster directory's secrets.
"""

from __future__ import annotations

import dataclasses
import json
import re
import secrets
import socket
from collections.abc import Collection
from pathlib import Path
from typing import Final

from cluster import pki
from cluster.config import (
    CLUSTER_FILE,
    LOOPBACK,
    NODE_FILE,
    ClusterFile,
    NodeEntry,
    load_cluster,
    write_json,
)
from cluster.security.passwords import hash_password
from store.crypto import write_key_file

CA_CERT: Final = "ca.pem"
CA_KEY: Final = "ca.key"
KEY_FILE: Final = "key"
CREDENTIALS: Final = "credentials.json"
ADMIN_USER: Final = "admin"
MAX_NODES: Final = 15
CONTAINER_GRPC_PORT: Final = 7000
CONTAINER_PEER_PORT: Final = 7100
CONTAINER_BOLT_PORT: Final = 7687
CONTAINER_METRICS_PORT: Final = 2004
CONTAINER_DATA_DIR: Final = "/var/lib/quiver"
_HOST_NAME = re.compile(
    r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$"
)
MIN_SNAPSHOT_ENTRIES: Final = 10
MAX_SNAPSHOT_ENTRIES: Final = 10_000_000
MAX_COMPACT_KEEP_ENTRIES: Final = 1_000


class InitError(Exception):
    pass


EPHEMERAL_RANGE_FILE: Final = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_LISTEN_PORT: Final = 10_000
PORT_PICK_ATTEMPTS: Final = 200


def _ephemeral_range() -> tuple[int, int]:
    """The kernel's range for the source ports of outgoing connections (Linux's default
    when it cannot be read)."""
    try:
        low, high = (int(part) for part in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def free_ports(count: int, avoid: Collection[int] = ()) -> list[int]:
    """`count` distinct ports free on 127.0.0.1 right now, none of `avoid` (the ports the
    cluster already assigned: one whose node is down is free, yet taken), for a node to
    listen on for its whole life, across restarts.

    They are taken below the kernel's ephemeral range. A port from that range (what binding
    to port 0 hands out) is the source port of any outgoing connection: once a node that
    listened on one was killed, a client or a peer connection could take it, and the
    restarted node failed to bind it for as long as that connection lived (a chaos test
    saw a node restarted 30 times in a minute)."""
    low, _ = _ephemeral_range()
    if low - LOWEST_LISTEN_PORT < 1000:
        raise InitError(
            f"the ephemeral port range starts at {low}: no room below it for listening ports"
        )
    chosen: list[int] = []
    for _ in range(PORT_PICK_ATTEMPTS):
        port = LOWEST_LISTEN_PORT + secrets.randbelow(low - LOWEST_LISTEN_PORT)
        if port not in chosen and port not in avoid and _bindable(port):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise InitError(f"found {len(chosen)} of {count} free ports below {low}")


def cluster_ports(cluster: ClusterFile) -> set[int]:
    """The loopback ports `cluster.json` assigns to its nodes."""
    ports = set()
    for node in cluster.nodes:
        for address in (node.grpc, node.peer, node.bolt, node.metrics):
            host, _, port = address.rpartition(":")
            if host == LOOPBACK and port.isdigit():
                ports.add(int(port))
    return ports


def init_cluster(
    directory: Path,
    nodes: int = 3,
    zones: int = 3,
    tick_ms: int = 50,
    election_ticks: int = 10,
    snapshot_entries: int = 10_000,
    hosts: tuple[str, ...] | None = None,
) -> ClusterFile:
    if not 1 <= nodes <= MAX_NODES:
        raise InitError(f"--nodes must be between 1 and {MAX_NODES}")
    if not 10 <= tick_ms <= 10_000 or not 2 <= election_ticks <= 1000:
        raise InitError("--tick-ms must be in [10, 10000] and --election-ticks in [2, 1000]")
    if not MIN_SNAPSHOT_ENTRIES <= snapshot_entries <= MAX_SNAPSHOT_ENTRIES:
        raise InitError(
            f"--snapshot-entries must be in [{MIN_SNAPSHOT_ENTRIES}, {MAX_SNAPSHOT_ENTRIES}]"
        )
    if hosts is not None:
        if len(hosts) != nodes or len(set(hosts)) != nodes:
            raise InitError(f"--hosts needs {nodes} distinct host names, one per node")
        for host in hosts:
            if not _HOST_NAME.match(host):
                raise InitError(f"--hosts: {host!r} is not a host name")
    if not 1 <= zones <= nodes:
        raise InitError("--zones must be between 1 and --nodes")
    if (directory / CLUSTER_FILE).exists():
        raise InitError(f"{directory / CLUSTER_FILE} exists: the cluster is initialised")
    directory.mkdir(parents=True, exist_ok=True)
    directory = directory.resolve()

    authority = pki.make_ca()
    pki.save(authority, directory / CA_CERT, directory / CA_KEY)
    key_path = directory / KEY_FILE
    if not key_path.exists():
        write_key_file(key_path)
    credentials = {"user": ADMIN_USER, "password": secrets.token_urlsafe(18)}
    write_json(directory / CREDENTIALS, credentials, mode=0o600)
    # The nodes know the initial admin by its hash only; the first leader creates it.
    admin_hash = hash_password(credentials["password"])

    if hosts is None:
        ports = free_ports(4 * nodes)
        grpc_addresses = [f"{LOOPBACK}:{ports[4 * i]}" for i in range(nodes)]
        peer_addresses = [f"{LOOPBACK}:{ports[4 * i + 1]}" for i in range(nodes)]
        bolt_addresses = [f"{LOOPBACK}:{ports[4 * i + 2]}" for i in range(nodes)]
        metrics_addresses = [f"{LOOPBACK}:{ports[4 * i + 3]}" for i in range(nodes)]
    else:
        grpc_addresses = [f"{host}:{CONTAINER_GRPC_PORT}" for host in hosts]
        peer_addresses = [f"{host}:{CONTAINER_PEER_PORT}" for host in hosts]
        bolt_addresses = [f"{host}:{CONTAINER_BOLT_PORT}" for host in hosts]
        metrics_addresses = [f"{host}:{CONTAINER_METRICS_PORT}" for host in hosts]
    entries = tuple(
        NodeEntry(
            id=node_id,
            zone=f"zone-{(node_id - 1) % zones + 1}",
            grpc=grpc_addresses[node_id - 1],
            peer=peer_addresses[node_id - 1],
            config=f"nodes/{node_id}/{NODE_FILE}",
            bolt=bolt_addresses[node_id - 1],
            metrics=metrics_addresses[node_id - 1],
        )
        for node_id in range(1, nodes + 1)
    )
    cluster = ClusterFile(
        directory=directory,
        cluster_id=secrets.randbits(63),
        nodes=entries,
        ca=CA_CERT,
        credentials=CREDENTIALS,
    )
    for entry in entries:
        node_dir = directory / "nodes" / str(entry.id)
        node_dir.mkdir(parents=True, exist_ok=True)
        own_hosts = () if hosts is None else (hosts[entry.id - 1],)
        pki.save(
            pki.issue_node(authority, entry.id, own_hosts),
            node_dir / "cert.pem",
            node_dir / "key.pem",
        )
        doc = {
            "id": entry.id,
            "zone": entry.zone,
            "cluster_id": cluster.cluster_id,
            "listen_grpc": entry.grpc if hosts is None else f"0.0.0.0:{CONTAINER_GRPC_PORT}",
            "listen_peer": entry.peer if hosts is None else f"0.0.0.0:{CONTAINER_PEER_PORT}",
            "listen_bolt": entry.bolt if hosts is None else f"0.0.0.0:{CONTAINER_BOLT_PORT}",
            "listen_metrics": (
                entry.metrics if hosts is None else f"0.0.0.0:{CONTAINER_METRICS_PORT}"
            ),
            "credentials": f"../../{CREDENTIALS}",
            "admin_user": ADMIN_USER,
            "admin_password_hash": admin_hash,
            "data_dir": "data" if hosts is None else CONTAINER_DATA_DIR,
            "key_file": f"../../{KEY_FILE}",
            "ca": f"../../{CA_CERT}",
            "cert": "cert.pem",
            "key": "key.pem",
            "tick_ms": tick_ms,
            "election_ticks": election_ticks,
            "heartbeat_ticks": 1,
            "snapshot_entries": snapshot_entries,
            "compact_keep_entries": min(MAX_COMPACT_KEEP_ENTRIES, snapshot_entries // 4),
            "peers": [_peer_doc(p) for p in entries],
        }
        write_json(node_dir / NODE_FILE, doc)
    write_json(directory / CLUSTER_FILE, cluster.to_json())
    return cluster


def _peer_doc(entry: NodeEntry) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": entry.id,
        "zone": entry.zone,
        "grpc": entry.grpc,
        "peer": entry.peer,
    }
    if entry.bolt:
        doc["bolt"] = entry.bolt
    return doc


def add_node(directory: Path, zone: str | None = None) -> NodeEntry:
    """Prepare one more node for a running cluster: its certificate (from the CA in the dir),
    its configuration (``join``: it waits for the leader instead of bootstrapping) and its
    entry in ``cluster.json``. It becomes a member with ``quiver admin add-learner``."""
    cluster = load_cluster(directory)
    directory = cluster.directory.resolve()
    if len(cluster.nodes) >= MAX_NODES:
        raise InitError(f"a cluster directory holds at most {MAX_NODES} nodes")
    node_id = max(node.id for node in cluster.nodes) + 1
    zones = sorted({node.zone for node in cluster.nodes})
    if zone is None:
        # The zone with the fewest nodes, so that the cluster stays spread.
        zone = min(zones, key=lambda z: (sum(n.zone == z for n in cluster.nodes), z))
    grpc_port, peer_port, bolt_port, metrics_port = free_ports(4, cluster_ports(cluster))
    entry = NodeEntry(
        id=node_id,
        zone=zone,
        grpc=f"{LOOPBACK}:{grpc_port}",
        peer=f"{LOOPBACK}:{peer_port}",
        config=f"nodes/{node_id}/{NODE_FILE}",
        bolt=f"{LOOPBACK}:{bolt_port}",
        metrics=f"{LOOPBACK}:{metrics_port}",
    )
    template = json.loads((directory / cluster.nodes[0].config).read_text())
    authority = pki.load(directory / CA_CERT, directory / CA_KEY)
    node_dir = directory / "nodes" / str(node_id)
    node_dir.mkdir(parents=True, exist_ok=False)
    pki.save(pki.issue_node(authority, node_id), node_dir / "cert.pem", node_dir / "key.pem")
    members = (*cluster.nodes, entry)
    doc = {
        **template,
        "id": node_id,
        "zone": zone,
        "listen_grpc": entry.grpc,
        "listen_peer": entry.peer,
        "listen_bolt": entry.bolt,
        "listen_metrics": entry.metrics,
        "credentials": f"../../{CREDENTIALS}",
        "join": True,
        "peers": [_peer_doc(p) for p in members],
    }
    write_json(node_dir / NODE_FILE, doc)
    updated = dataclasses.replace(cluster, nodes=members)
    write_json(directory / CLUSTER_FILE, updated.to_json())
    return entry


def forget_node(directory: Path, node_id: int) -> None:
    """Drop a removed member from ``cluster.json`` (its files stay, for inspection)."""
    cluster = load_cluster(directory)
    remaining = tuple(node for node in cluster.nodes if node.id != node_id)
    write_json(directory / CLUSTER_FILE, dataclasses.replace(cluster, nodes=remaining).to_json())
