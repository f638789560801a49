"""A real Quiver cluster under a chaos harness: every link through the fault proxy.

Owns a cluster directory made by ``quiver init`` and then rewired so that every directed peer
link and every client link passes through its own proxy of a Toxiproxy-compatible server
(``quiver chaos proxy``, a child process): node ``a`` reaches node ``b``'s Raft port at the
listen port of proxy ``na_to_nb`` and every client port (clients, and followers forwarding
writes) at the proxy ``client_to_nb``. mTLS passes through: the proxies are TCP and the
certificates name ``127.0.0.1``. The node processes (``quiver serve``) are this harness's
children, started with the failpoints the caller arms (``QUIVER_FAILPOINTS``, never a
file) and watched: a node that exits when nobody killed it is recorded (with its status)
and restarted after ``RESTART_HOLD_S``; a node a nemesis killed stays down until the
nemesis restarts it. An id taken out of the cluster is forgotten before it is signalled, so
it is never restarted nor its exit counted, and it rejoins only once its last process is
gone, on fresh ports.

Faults: SIGKILL (one node, a minority, a zone, every node), SIGSTOP with a guaranteed SIGCONT,
graceful restarts, partitions as toxics on the link proxies (``chaos.nemesis.ProxyNetwork``),
latency on every peer link, leadership transfer through the admin API, membership churn
(:meth:`ChaosCluster.replace_member`: a fresh node joins as a learner through ``quiver
admin``, is promoted, and a member is removed; the ids a cluster may ever hold, spares
included, get their proxies and every node its ``peer_routes`` when the cluster is made, so
a member added at run time is reached through its own proxies too), and the wait for a
node cut off until the others compacted their logs past it (:meth:`wait_compacted_past`),
so that healing makes it catch up by snapshot install.
:meth:`ChaosCluster.heal` undoes all of them; :meth:`ChaosCluster.close` stops everything,
whatever happened.

In netns mode (root) there is no proxy: each node runs in its own network namespace
(``chaos.netns``), a veth link per pair of nodes carries Raft traffic and forwarded writes,
partitions are nftables drops (:class:`NetnsNetwork`) and packet loss iptables rules inside
the namespaces, and clients reach each node through relays (``chaos.relay``).

Must never: signal a process it did not start, listen or connect anywhere but 127.0.0.1 and
its own namespaces, or leave a process running or stopped, or a namespace, after ``close``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import grpc

from chaos import nemesis
from chaos.nemesis import Link, ProcessGone, ProcessTarget, ProxyNetwork, ToxiproxyClient
from chaos.netns import NetnsLab
from chaos.netns import available as netns_available
from cluster import pki
from cluster.admin import run_admin
from cluster.client import Client, connect
from cluster.config import CLUSTER_FILE, LOOPBACK, NODE_FILE, NodeEntry, load_cluster, write_json
from cluster.errors import QuiverError
from cluster.init import add_node, cluster_ports, free_ports, init_cluster
from proto import admin_pb2, admin_pb2_grpc
from store.failpoints import ENV as FAILPOINTS_ENV
from store.failpoints import parse as parse_failpoints

log = logging.getLogger("quiver.chaos")

PROXY_START_S: Final = 15.0
LEADER_WAIT_S: Final = 30.0
RESTART_HOLD_S: Final = 1.0
WATCH_POLL_S: Final = 0.1
STOP_GRACE_S: Final = 10.0
STATUS_TIMEOUT_S: Final = 1.0
TRANSFER_TIMEOUT_S: Final = 5.0
LATENCY_TOXIC: Final = "quiver-latency"
MAX_EXITS_RECORDED: Final = 1000
MAX_SPARE_MEMBERS: Final = 4
STATUS_POLL_S: Final = 0.2
CUT_SETTLE_S: Final = 1.0
"""After a node is cut off, the time within which what the leader had sent it commits."""
LEADER_MOVE_ATTEMPTS: Final = 3


def name(node_id: int) -> str:
    return f"n{node_id}"


def proxy_name(sender: str, receiver: str) -> str:
    return f"{sender}_to_{receiver}"


def client_proxy(node: str) -> str:
    return f"client_to_{node}"


@dataclass(slots=True)
class NodeExit:
    node: int
    status: int
    at_ns: int
    killed: bool
    """True when a nemesis killed it; False when it stopped by itself (a crash, a failpoint)."""


class NetnsNetwork:
    """Partitions as nftables drops inside the nodes' network namespaces (``chaos.netns``):
    "b no longer hears a" drops, inside b's namespace, every packet from a's address on
    their link. The same shape as :class:`chaos.nemesis.ProxyNetwork`."""

    def __init__(self, lab: NetnsLab, namespaces: dict[str, str], sources: dict[Link, str]):
        self.lab = lab
        self.namespaces = namespaces
        self.sources = sources
        """(sender, receiver) -> the sender's address on their link."""
        self.cut: set[Link] = set()
        self.lossy = False

    def partition(self, links: Collection[Link]) -> None:
        for sender, receiver in links:
            self.lab.nft_drop(self.namespaces[receiver], source=self.sources[(sender, receiver)])
            self.cut.add((sender, receiver))

    def heal(self) -> None:
        for namespace in self.namespaces.values():
            self.lab.nft_heal(namespace)
        self.cut.clear()

    def add_loss(self, probability: float) -> None:
        for namespace in self.namespaces.values():
            self.lab.iptables_loss(namespace, probability)
        self.lossy = True

    def remove_loss(self) -> None:
        for namespace in self.namespaces.values():
            self.lab.iptables_heal(namespace)
        self.lossy = False


@dataclass
class ChaosCluster:
    directory: Path
    """The cluster directory (``cluster.json``, certificates, node configs and data)."""
    nodes: list[int]
    failpoints: Mapping[int, str]
    api: ToxiproxyClient | None = None
    """The fault proxy's API (None in netns mode)."""
    network: ProxyNetwork | NetnsNetwork | None = None
    proxy_process: subprocess.Popen[bytes] | None = None
    lab: NetnsLab | None = None
    """In netns mode: the nodes' namespaces, their links, the relays to their client ports."""
    sockets: Path | None = None
    relays: list[subprocess.Popen[bytes]] = field(default_factory=list)
    """netns mode: the relays in the host's namespace (127.0.0.1 to a Unix socket)."""
    processes: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    held: set[int] = field(default_factory=set)
    paused: dict[int, ProcessTarget] = field(default_factory=dict)
    exits: list[NodeExit] = field(default_factory=list)
    leaving: set[int] = field(default_factory=set)
    """Members being removed: the watcher never restarts them, and one that stops by itself
    with status 0 (a node may stop once it learns it is out) is not an unexpected exit."""
    latency_on: bool = False
    all_ids: list[int] = field(default_factory=list)
    """Every id this cluster may hold: the initial members and the spares that membership
    churn adds (each with its proxies, made at start)."""
    entries: dict[int, NodeEntry] = field(default_factory=dict)
    """Every id's cluster.json entry (client address through its proxy, real peer address)."""
    churned: list[str] = field(default_factory=list)
    """The membership changes made, as they were made."""
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _stop: threading.Event = field(default_factory=threading.Event)
    _watcher: threading.Thread | None = None
    _status_client: Client | None = None
    _retired_clients: list[Client] = field(default_factory=list)
    _retiring: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    """Processes of ids taken out of the cluster, until they are seen gone: nobody watches
    or restarts them, a joiner of the same id waits for them, ``close`` reaps them."""
    _peer_listen: dict[tuple[int, int], str] = field(default_factory=dict)
    """(sender, receiver) -> the listen address of the proxy of that peer link."""
    _taken_ports: set[int] = field(default_factory=set)
    """Every port this cluster assigned (nodes, proxies, relays, the proxy's API): a new
    one is none of them, even one free now because its node is down or not yet started.
    Before, the proxies' ports were taken while the nodes' were assigned but not yet bound,
    and a joiner's while a removed node's stood unbound: two listeners, one port."""

    def _ports(self, count: int) -> list[int]:
        ports = free_ports(count, self._taken_ports)
        self._taken_ports.update(ports)
        return ports

    # -- building --------------------------------------------------------------------------

    @staticmethod
    def create(
        out: Path,
        nodes: int = 3,
        failpoints: Mapping[int, str] | None = None,
        seed: int = 0,
        zones: int = 3,
        snapshot_entries: int = 10_000,
        tick_ms: int = 50,
        election_ticks: int = 10,
        netns: bool = False,
        spare_members: int = 0,
    ) -> ChaosCluster:
        """Initialise a fresh cluster under ``out/cluster``, wire it (through the fault
        proxy, or in netns mode through veth links between namespaces), start the nodes and
        wait for a leader. ``spare_members`` more ids are prepared (``quiver add-node``) and
        wired for :meth:`replace_member`, not started. The caller closes it (or uses
        ``with``)."""
        failpoints = dict(failpoints or {})
        for spec in failpoints.values():
            parse_failpoints(spec)  # a bad spec fails here, not inside a node
        if netns and not netns_available():
            raise RuntimeError("netns mode needs root, iproute2 and nftables")
        directory = out / "cluster"
        init_cluster(
            directory,
            nodes=nodes,
            zones=min(zones, nodes),
            snapshot_entries=snapshot_entries,
            tick_ms=tick_ms,
            election_ticks=election_ticks,
        )
        if not 0 <= spare_members <= MAX_SPARE_MEMBERS:
            raise ValueError(f"spare_members must be within 0..{MAX_SPARE_MEMBERS}")
        if netns and spare_members:
            raise ValueError("membership churn needs the fault proxy (not netns mode)")
        for _ in range(spare_members):
            add_node(directory)  # certificate, config (join), ports; a member once added
        ids = list(range(1, nodes + 1))
        cluster = ChaosCluster(directory, ids, failpoints)
        cluster.all_ids = list(range(1, nodes + spare_members + 1))
        cluster._taken_ports = cluster_ports(load_cluster(directory))
        try:
            if netns:
                cluster._wire_namespaces()
            else:
                cluster._start_proxy(out, seed)
                cluster._rewire()
            for node_id in ids:
                cluster._start(node_id)
            cluster._watcher = threading.Thread(
                target=cluster._watch, name="chaos-watch", daemon=True
            )
            cluster._watcher.start()
            if not cluster.wait_for_leader(LEADER_WAIT_S):
                raise RuntimeError(f"no leader within {LEADER_WAIT_S:.0f} s; see {directory}")
        except BaseException:
            cluster.close()
            raise
        return cluster

    def _start_proxy(self, out: Path, seed: int) -> None:
        (api_port,) = self._ports(1)
        with open(out / "proxy.log", "ab") as proxy_log:
            self.proxy_process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "cluster.cli",
                    "chaos",
                    "proxy",
                    "--host",
                    LOOPBACK,
                    "--port",
                    str(api_port),
                    "--seed",
                    str(seed),
                ],
                stdout=proxy_log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.api = ToxiproxyClient(f"{LOOPBACK}:{api_port}")
        self.network = ProxyNetwork(
            self.api, [name(n) for n in self.all_ids], proxy_name=proxy_name
        )
        self._wait_for_proxy()

    def _wire_namespaces(self) -> None:
        """Each node in its own namespace, a veth link per pair of nodes (Raft traffic and
        forwarded writes; partitions as nftables drops on it, loss with iptables), clients
        through two relays per node: 127.0.0.1:P in the host's namespace to a Unix socket,
        and that socket inside the node's namespace to its client port."""
        lab = NetnsLab()
        lab.__enter__()
        self.lab = lab
        self.sockets = Path(tempfile.mkdtemp(prefix="qvc-"))
        namespaces = {name(n): lab.namespace(name(n)) for n in self.nodes}
        reach: dict[tuple[int, int], str] = {}  # (a, b) -> b's address as a reaches it
        for position, a in enumerate(self.nodes):
            for b in self.nodes[position + 1 :]:
                link = lab.link(namespaces[name(a)], namespaces[name(b)])
                reach[(a, b)], reach[(b, a)] = link.b, link.a
        self.network = NetnsNetwork(
            lab,
            namespaces,
            {(name(a), name(b)): reach[(b, a)] for (a, b) in reach},
        )
        cluster = load_cluster(self.directory)
        authority = pki.load(self.directory / "ca.pem", self.directory / "ca.key")
        paths = {n: f"unix:{self.sockets / f'{name(n)}.sock'}" for n in self.nodes}
        relay_ports = dict(zip(self.nodes, self._ports(len(self.nodes)), strict=True))
        clients = {n: f"{LOOPBACK}:{relay_ports[n]}" for n in self.nodes}
        grpc_ports: dict[int, int] = {}
        for entry in cluster.nodes:
            grpc_ports[entry.id] = int(entry.grpc.rpartition(":")[2])
        for node_id in self.nodes:
            node_dir = self.directory / "nodes" / str(node_id)
            own = tuple(reach[(a, node_id)] for a in self.nodes if a != node_id)
            pki.save(
                pki.issue_node(authority, node_id, ip_addresses=own),
                node_dir / "cert.pem",
                node_dir / "key.pem",
            )
            path = node_dir / NODE_FILE
            doc: dict[str, Any] = json.loads(path.read_text())
            ports = {int(p["id"]): int(str(p["peer"]).rpartition(":")[2]) for p in doc["peers"]}
            doc["listen_peer"] = f"0.0.0.0:{ports[node_id]}"
            doc["listen_grpc"] = f"0.0.0.0:{grpc_ports[node_id]}"
            for peer in doc["peers"]:
                peer_id = int(peer["id"])
                if peer_id == node_id:
                    peer["grpc"] = clients[node_id]
                else:
                    # Forwarded writes go over the veth link too: partitions cut them.
                    peer["grpc"] = f"{reach[(node_id, peer_id)]}:{grpc_ports[peer_id]}"
                    peer["peer"] = f"{reach[(node_id, peer_id)]}:{ports[peer_id]}"
            write_json(path, doc)
            relay = [sys.executable, "-m", "chaos.relay"]
            lab.popen(
                namespaces[name(node_id)],
                [*relay, paths[node_id], f"{LOOPBACK}:{grpc_ports[node_id]}"],
            )
            self.relays.append(
                subprocess.Popen(
                    [*relay, clients[node_id], paths[node_id]],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    stdin=subprocess.DEVNULL,
                )
            )
        rewired = dataclasses.replace(
            cluster,
            nodes=tuple(dataclasses.replace(e, grpc=clients[e.id]) for e in cluster.nodes),
        )
        write_json(self.directory / CLUSTER_FILE, rewired.to_json())

    def _wait_for_proxy(self) -> None:
        assert self.api is not None and self.proxy_process is not None
        deadline = time.monotonic() + PROXY_START_S
        while True:
            if self.proxy_process.poll() is not None:
                raise RuntimeError(f"the fault proxy exited with {self.proxy_process.returncode}")
            try:
                self.api.proxies()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("the fault proxy did not answer in time") from None
                time.sleep(0.1)

    def _rewire(self) -> None:
        """One proxy per directed peer link and per client link, for every id the cluster
        may hold (spares too); configs point at them (``peers`` and ``peer_routes``), and
        ``cluster.json`` lists the members, each at its client proxy."""
        assert self.api is not None
        cluster = load_cluster(self.directory)
        real = {entry.id: entry for entry in cluster.nodes}
        ids = self.all_ids
        links = [(a, b) for a in ids for b in ids if a != b]
        ports = self._ports(len(links) + len(ids))
        peer_listen: dict[tuple[int, int], str] = {}
        for (a, b), port in zip(links, ports, strict=False):
            listen = f"{LOOPBACK}:{port}"
            self.api.create_proxy(proxy_name(name(a), name(b)), listen, real[b].peer)
            peer_listen[(a, b)] = listen
        client_listen: dict[int, str] = {}
        for node_id, port in zip(ids, ports[len(links) :], strict=True):
            listen = f"{LOOPBACK}:{port}"
            self.api.create_proxy(client_proxy(name(node_id)), listen, real[node_id].grpc)
            client_listen[node_id] = listen
        for node_id in ids:
            path = self.directory / "nodes" / str(node_id) / NODE_FILE
            doc: dict[str, Any] = json.loads(path.read_text())
            for peer in doc["peers"]:
                peer_id = int(peer["id"])
                peer["grpc"] = client_listen[peer_id]
                if peer_id != node_id:
                    peer["peer"] = peer_listen[(node_id, peer_id)]
            # A member added at run time announces its real peer address in its conf
            # change; the routes keep every link to it on its proxy all the same.
            doc["peer_routes"] = {str(b): peer_listen[(node_id, b)] for b in ids if b != node_id}
            write_json(path, doc)
        self.entries = {
            node_id: dataclasses.replace(real[node_id], grpc=client_listen[node_id])
            for node_id in ids
        }
        self._peer_listen = peer_listen
        self._write_members(self.nodes)

    def _write_members(self, members: Collection[int]) -> None:
        """``cluster.json`` lists ``members`` (as clients and ``quiver admin`` see them)."""
        cluster = load_cluster(self.directory)
        rewired = dataclasses.replace(
            cluster, nodes=tuple(self.entries[node_id] for node_id in sorted(members))
        )
        write_json(self.directory / CLUSTER_FILE, rewired.to_json())

    # -- processes -------------------------------------------------------------------------

    def _check_not_running(self, node_id: int) -> None:
        """Never two processes of one id: the one running holds the node's ports and data,
        and a second would fail to bind (status 1), be restarted, fail again, ..."""
        with self._lock:
            for running in (self.processes.get(node_id), self._retiring.get(node_id)):
                if running is not None and running.poll() is None:
                    raise RuntimeError(f"n{node_id} is running (pid {running.pid})")

    def _start(self, node_id: int) -> None:
        self._check_not_running(node_id)
        node_dir = self.directory / "nodes" / str(node_id)
        env = {**os.environ, FAILPOINTS_ENV: self.failpoints.get(node_id) or "1"}
        argv = [sys.executable, "-m", "cluster.cli", "serve", "--config", str(node_dir / NODE_FILE)]
        if self.lab is not None:
            # `ip netns exec` enters the namespace and execs: the pid is the node's.
            argv = self.lab.exec_args(self.lab.prefix + name(node_id), argv)
        with open(node_dir / "node.log", "ab") as node_log:
            process = subprocess.Popen(
                argv,
                stdout=node_log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
            )
        with self._lock:
            self.processes[node_id] = process
        log.info("started n%d (pid %d)", node_id, process.pid)

    def _watch(self) -> None:
        due: dict[int, float] = {}
        while not self._stop.wait(WATCH_POLL_S):
            self._watch_once(due, time.monotonic())

    def _watch_once(self, due: dict[int, float], now: float) -> None:
        """Record why a watched node stopped by itself and restart it after a hold (``due``:
        id -> when, for exits already recorded). Only the ids in ``processes`` are watched:
        an id taken out of the cluster (:meth:`_retire`) leaves it before it is signalled,
        so its exit is neither recorded nor followed by a restart; a member being removed
        (``leaving``) is not restarted either, and a clean stop of it is no anomaly."""
        with self._lock:
            for node_id in [n for n in due if n not in self.processes]:
                del due[node_id]
            for node_id, process in list(self.processes.items()):
                if node_id in self.held or process.poll() is None:
                    due.pop(node_id, None)
                    continue
                if node_id not in due:
                    if not (node_id in self.leaving and process.returncode == 0):
                        self._record_exit(node_id, process, killed=False)
                    due[node_id] = now + RESTART_HOLD_S
                elif now >= due[node_id] and node_id not in self.leaving:
                    del due[node_id]
                    self._start(node_id)

    def _record_exit(self, node_id: int, process: subprocess.Popen[bytes], killed: bool) -> None:
        if len(self.exits) < MAX_EXITS_RECORDED:
            status = process.returncode if process.returncode is not None else -1
            self.exits.append(NodeExit(node_id, status, time.monotonic_ns(), killed))

    def zones(self) -> dict[str, list[int]]:
        """The members of each zone, as ``cluster.json`` lists them."""
        found: dict[str, list[int]] = {}
        for entry in load_cluster(self.directory).nodes:
            found.setdefault(entry.zone, []).append(entry.id)
        return found

    def pid(self, node_id: int) -> int | None:
        with self._lock:
            process = self.processes.get(node_id)
            return None if process is None or process.poll() is not None else process.pid

    def kill(self, node_ids: list[int]) -> None:
        """SIGKILL; each stays down until :meth:`restart`."""
        with self._lock:
            for node_id in node_ids:
                self.held.add(node_id)
                process = self.processes.get(node_id)
                if process is None or process.poll() is not None:
                    continue
                self._resume(node_id)
                process.kill()
                process.wait(STOP_GRACE_S)
                self._record_exit(node_id, process, killed=True)

    def stop_gracefully(self, node_id: int) -> None:
        """SIGTERM (the node closes its listeners and its store), SIGKILL after a grace;
        it stays down until :meth:`restart`."""
        with self._lock:
            self.held.add(node_id)
            self._resume(node_id)
            process = self.processes.get(node_id)
        if process is not None:
            _stop_process(process)

    def wait_serving(self, node_id: int, deadline_s: float) -> bool:
        """Until the node answers its status with a leader it knows (bounded)."""
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            status = self._statuses().get(node_id)
            if status is not None and status.leader_id:
                return True
            time.sleep(0.2)
        return False

    def restart(self, node_ids: list[int]) -> None:
        """Start again the nodes a nemesis took down. Only members, and not one being
        removed (it may be another thread's churn); one still stopping (a graceful stop
        running on another thread) stays held, and whoever stops it restarts it."""
        with self._lock:
            for node_id in node_ids:
                if node_id not in self.nodes:
                    self.held.discard(node_id)
                    continue
                if node_id in self.leaving:
                    continue
                process = self.processes.get(node_id)
                if process is not None and process.poll() is None:
                    continue  # up, or held while it stops: left as it is
                if node_id in self.held:
                    self._start(node_id)
                    self.held.discard(node_id)

    def pause(self, node_id: int) -> None:
        with self._lock:
            pid = self.pid(node_id)
            if pid is None or node_id in self.paused:
                return
            with contextlib.suppress(ProcessGone):
                target = ProcessTarget.of(pid)
                nemesis.stop(target)
                self.paused[node_id] = target

    def _resume(self, node_id: int) -> None:
        target = self.paused.pop(node_id, None)
        if target is not None:
            nemesis.resume(target)

    def resume_all(self) -> None:
        with self._lock:
            for node_id in list(self.paused):
                self._resume(node_id)

    # -- network ---------------------------------------------------------------------------

    def partition(self, links: frozenset[tuple[str, str]]) -> None:
        assert self.network is not None
        self.network.partition(links)

    def add_loss(self, probability: float) -> None:
        """Each packet into every node dropped with ``probability`` (netns mode only)."""
        if not isinstance(self.network, NetnsNetwork):
            raise RuntimeError("packet loss needs netns mode (the proxies cut whole links)")
        self.network.add_loss(probability)

    def add_latency(self, latency_ms: int, jitter_ms: int) -> None:
        if self.api is None:
            raise RuntimeError("latency needs the fault proxy (this kernel has no netem)")
        for a in self.nodes:
            for b in self.nodes:
                if a != b:
                    for stream in ("upstream", "downstream"):
                        self.api.add_toxic(
                            proxy_name(name(a), name(b)),
                            f"{LATENCY_TOXIC}-{stream}",
                            "latency",
                            stream,
                            {"latency": latency_ms, "jitter": jitter_ms},
                        )
        self.latency_on = True

    def remove_latency(self) -> None:
        if self.api is None:
            return
        ids = self.all_ids or self.nodes
        for a in ids:
            for b in ids:
                if a != b:
                    for stream in ("upstream", "downstream"):
                        self.api.remove_toxic(
                            proxy_name(name(a), name(b)), f"{LATENCY_TOXIC}-{stream}"
                        )
        self.latency_on = False

    # -- the cluster -----------------------------------------------------------------------

    def client(self, timeout_s: float = 5.0) -> Client:
        """A client of the whole cluster, as a user makes one: the dir's CA and addresses."""
        client = connect(self.directory, timeout_s=timeout_s)
        if self.lab is not None:
            # Followers name the leader by its address on their veth link, which the host's
            # namespace cannot reach: follow only the members of cluster.json.
            client.discover_members = False
        return client

    def pinned_client(self, node_id: int, timeout_s: float = 5.0) -> Client:
        """A client of one node only (reads are served there; writes are forwarded)."""
        client = connect(self.directory, timeout_s=timeout_s)
        client.members = [client._member(node_id)]
        client.discover_members = False
        return client

    def _statuses(self) -> dict[int, admin_pb2.NodeStatus]:
        if self._status_client is None:
            self._status_client = self.client()
        found = {}
        for node_id in self.nodes:
            if node_id in self.held or node_id in self.paused:
                continue
            with contextlib.suppress(QuiverError):
                found[node_id] = self._status_client.node_status(node_id, STATUS_TIMEOUT_S)
        return found

    def leader(self) -> int:
        """The leader a majority of the live nodes name (0 when there is none)."""
        votes: dict[int, int] = {}
        for status in self._statuses().values():
            if status.leader_id:
                votes[status.leader_id] = votes.get(status.leader_id, 0) + 1
        for leader, count in votes.items():
            if count * 2 > len(self.nodes) and leader not in self.held:
                return leader
        return 0

    def wait_for_leader(self, deadline_s: float) -> int:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader:
                return leader
            time.sleep(0.1)
        return 0

    def transfer_leader(self, to: int = 0) -> int:
        leader = self.leader()
        if not leader:
            return 0
        client = self._status_client or self.client()
        self._status_client = client
        stub = admin_pb2_grpc.AdminStub(client._channel(client._member(leader)))
        try:
            moved = stub.TransferLeader(
                admin_pb2.TransferLeaderRequest(to=to), timeout=TRANSFER_TIMEOUT_S
            )
        except grpc.RpcError as error:  # a transfer may fail under faults: no harm
            log.info("transfer from n%d failed: %s", leader, error)
            return 0
        return int(moved.leader_id)

    # -- membership churn -----------------------------------------------------------------

    def replace_member(self, leaving: int, catch_up_s: float) -> int:
        """Membership churn through the admin API (``cluster.admin``, as ``quiver admin``
        does it): a fresh node — a spare id never used, or a removed one with its data
        wiped — is started, added as a learner, caught up (by snapshot install: it starts
        empty) and promoted; then ``leaving`` is removed (leadership moved off it first) and
        stopped. Every link of the new member goes through its own proxies, made at start.
        Returns the new member's id. Raises when a step fails; a learner that could not be
        promoted is removed again, so the voters stay as they were."""
        with self._lock:
            free = [n for n in self.all_ids if n not in self.nodes and n not in self.processes]
        if not free:
            raise RuntimeError("no spare id to add (ChaosCluster.create(spare_members=...))")
        if leaving not in self.nodes:
            raise ValueError(f"n{leaving} is not a member")
        joining = free[0]
        self._wait_gone(joining)
        self._prepare_joiner(joining)
        self._write_members([*self.nodes, joining])
        self._start(joining)
        try:
            self.churned.append(run_admin(self.directory, "add-learner", joining, 0.0))
        except BaseException:
            self._retire(joining)
            self._write_members(self.nodes)
            raise
        with self._lock:
            self.nodes.append(joining)
        self._refresh_status_client()
        try:
            self.churned.append(run_admin(self.directory, "promote", joining, catch_up_s))
        except BaseException:
            self._remove(joining)
            raise
        self._remove(leaving)
        return joining

    def _prepare_joiner(self, node_id: int) -> None:
        """A node that joins from nothing: its data wiped (a removed member's), ``join`` on,
        and, as ``quiver add-node`` writes them, the current members and itself as its peers
        (through its proxies): a joining node takes Raft messages only from nodes it knows,
        and the leader may be a member added after this node's config was first written."""
        node_dir = self.directory / "nodes" / str(node_id)
        shutil.rmtree(node_dir / "data", ignore_errors=True)
        path = node_dir / NODE_FILE
        doc: dict[str, Any] = json.loads(path.read_text())
        doc["join"] = True
        # Fresh ports, taken now: the ones it had stood unused since it was made or removed,
        # and on a busy machine anything may have taken them meanwhile (a port another
        # process listens on, or a connection's local port, even one in TIME_WAIT, fails
        # the bind: the node would exit with status 1 on every restart). Its proxies follow.
        grpc_port, peer_port, bolt_port = self._ports(3)
        entry = dataclasses.replace(
            self.entries[node_id],
            peer=f"{LOOPBACK}:{peer_port}",
            bolt=f"{LOOPBACK}:{bolt_port}" if self.entries[node_id].bolt else "",
        )
        self.entries[node_id] = entry
        doc["listen_grpc"] = f"{LOOPBACK}:{grpc_port}"
        doc["listen_peer"] = entry.peer
        if entry.bolt:
            doc["listen_bolt"] = entry.bolt
        assert self.api is not None, "membership churn needs the fault proxy"
        self.api.set_upstream(client_proxy(name(node_id)), doc["listen_grpc"])
        for other in self.all_ids:
            if other != node_id:
                self.api.set_upstream(proxy_name(name(other), name(node_id)), entry.peer)
        peers = []
        for member in sorted({*self.nodes, node_id}):
            entry = self.entries[member]
            peer: dict[str, Any] = {
                "id": member,
                "zone": entry.zone,
                "grpc": entry.grpc,
                "peer": entry.peer if member == node_id else self._peer_listen[(node_id, member)],
            }
            if entry.bolt:
                peer["bolt"] = entry.bolt
            peers.append(peer)
        doc["peers"] = peers
        write_json(path, doc)

    def _remove(self, node_id: int) -> None:
        """``quiver admin remove`` (after moving leadership off the node), then stop it.
        From the moment the removal is asked for the node is ``leaving``: it may stop by
        itself once it applies its removal, and nobody restarts it."""
        for _ in range(LEADER_MOVE_ATTEMPTS):
            if self.wait_for_leader(LEADER_WAIT_S) != node_id:
                break
            self.transfer_leader(0)
        with self._lock:
            self.leaving.add(node_id)
        try:
            self.churned.append(run_admin(self.directory, "remove", node_id, 0.0))
        except BaseException:
            with self._lock:
                self.leaving.discard(node_id)  # still a member: watched and restarted again
            raise
        self._retire(node_id)
        self._refresh_status_client()

    def _retire(self, node_id: int) -> None:
        """Take a node out of the cluster and stop it (SIGTERM, SIGKILL after a grace). It
        leaves ``processes``, ``held`` and ``nodes`` at once, under the lock and before it
        is signalled, so that neither the watcher nor a heal on another thread restarts it
        (or counts its exit) while it stops; ``_retiring`` keeps it until it is gone."""
        with self._lock:
            self._resume(node_id)
            process = self.processes.pop(node_id, None)
            self.held.discard(node_id)
            self.leaving.discard(node_id)
            if node_id in self.nodes:
                self.nodes.remove(node_id)
            if process is not None:
                self._retiring[node_id] = process
        self._write_members(self.nodes)
        if process is not None:
            _stop_process(process)
            with self._lock:
                if process.poll() is not None and self._retiring.get(node_id) is process:
                    del self._retiring[node_id]

    def _wait_gone(self, node_id: int) -> None:
        """Until the last process of a retired id is gone (bounded: SIGKILL after a grace),
        so that a new one never meets it on the id's data or ports."""
        with self._lock:
            process = self._retiring.get(node_id)
        if process is not None:
            _stop_process(process)
            with self._lock:
                if process.poll() is not None and self._retiring.get(node_id) is process:
                    del self._retiring[node_id]

    def _refresh_status_client(self) -> None:
        """The status client reads the members from cluster.json when made: make a new one.
        The old one is closed with the cluster (another thread may be using it)."""
        with self._lock:
            if self._status_client is not None:
                self._retired_clients.append(self._status_client)
            self._status_client = None

    # -- snapshot install -----------------------------------------------------------------

    def snapshots_installed(self, node_id: int) -> int | None:
        """How many snapshots the node's process received and installed (None: no answer)."""
        status = self._statuses().get(node_id)
        return None if status is None else int(status.snapshots_installed)

    def wait_compacted_past(self, node_id: int, deadline_s: float) -> bool:
        """Until the leader's log starts past anything ``node_id`` may hold, so that it can
        only catch up by snapshot install. Call it right after cutting the node off: what it
        holds was sent before the cut, so it is at most what the leader had then, which
        commits within moments; the mark is the leader's commit index ``CUT_SETTLE_S``
        after the cut (and at least the node's own commit index and the leader's match index
        for it — its applied index alone is not enough: a follower may apply behind what its
        log holds). Bounded; False when the leader did not compact that far in time."""
        deadline = time.monotonic() + deadline_s
        settled = time.monotonic() + CUT_SETTLE_S
        mark = 0
        while time.monotonic() < deadline:
            statuses = self._statuses()
            leader = self._leader_status(statuses, besides=node_id)
            behind = statuses.get(node_id)
            if leader is not None and time.monotonic() >= settled:
                if not mark:
                    mark = max(1, leader.commit_index)
                floor = max(
                    mark,
                    leader.match_index.get(node_id, 0),
                    0 if behind is None else behind.commit_index,
                )
                if leader.first_index > floor + 1:
                    return True
            time.sleep(STATUS_POLL_S)
        return False

    def wait_caught_up(self, node_id: int, before: int, deadline_s: float) -> str | None:
        """Until ``node_id`` caught up with the leader's commit index as it is when called:
        "snapshot" when it installed more snapshots than ``before`` (meanwhile), "log" when
        it got there without one; None when neither happened in time (bounded)."""
        deadline = time.monotonic() + deadline_s
        target = 0
        while time.monotonic() < deadline:
            statuses = self._statuses()
            status = statuses.get(node_id)
            if not target:
                leader = self._leader_status(statuses, besides=node_id)
                target = 0 if leader is None else leader.commit_index
            if status is not None and status.snapshots_installed > before:
                return "snapshot"
            if status is not None and target and status.applied_index >= target:
                return "log"
            time.sleep(STATUS_POLL_S)
        return None

    @staticmethod
    def _leader_status(
        statuses: Mapping[int, admin_pb2.NodeStatus], besides: int
    ) -> admin_pb2.NodeStatus | None:
        return next(
            (s for s in statuses.values() if s.role == admin_pb2.ROLE_LEADER and s.id != besides),
            None,
        )

    def heal(self) -> None:
        """Undo every fault: resume, restart, reconnect, remove latency."""
        self.resume_all()
        if self.network is not None:
            self.network.heal()
            if isinstance(self.network, NetnsNetwork) and self.network.lossy:
                self.network.remove_loss()
        if self.latency_on:
            self.remove_latency()
        self.restart(sorted(self.held))

    def unexpected_exits(self) -> list[NodeExit]:
        with self._lock:
            return [e for e in self.exits if not e.killed]

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(5.0)
        if self._status_client is not None:
            self._status_client.close()
        for retired in self._retired_clients:
            retired.close()
        with self._lock:
            for node_id in list(self.paused):
                self._resume(node_id)
            live = [
                p for p in (*self.processes.values(), *self._retiring.values()) if p.poll() is None
            ]
            for process in live:
                process.send_signal(signal.SIGINT)  # all at once: no leader hands over
            deadline = time.monotonic() + STOP_GRACE_S
            for process in live:
                try:
                    process.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(STOP_GRACE_S)
        if self.proxy_process is not None and self.proxy_process.poll() is None:
            self.proxy_process.terminate()
            try:
                self.proxy_process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self.proxy_process.kill()
                self.proxy_process.wait(STOP_GRACE_S)
        for relay in self.relays:
            relay.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                relay.wait(STOP_GRACE_S)
            if relay.poll() is None:
                relay.kill()
                relay.wait(STOP_GRACE_S)
        if self.lab is not None:
            self.lab.teardown()  # the relays inside, the links, the rules, the namespaces
        if self.sockets is not None:
            shutil.rmtree(self.sockets, ignore_errors=True)

    def __enter__(self) -> ChaosCluster:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, and SIGKILL when it has not stopped within ``STOP_GRACE_S`` (bounded)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(STOP_GRACE_S)


@contextlib.contextmanager
def chaos_cluster(out: Path, **options: Any) -> Iterator[ChaosCluster]:
    cluster = ChaosCluster.create(out, **options)
    try:
        yield cluster
    finally:
        cluster.close()
