"""``quiver up`` / ``quiver down``: a supervised local cluster on loopback.

Owns the supervisor process: it starts one ``quiver serve`` per node of ``DIR/cluster.json``,
restarts a node that exits (with backoff, at most ``MAX_RESTARTS_PER_WINDOW`` within
``RESTART_WINDOW_S``), and on SIGTERM or SIGINT stops every node (SIGINT, then SIGKILL after
``STOP_GRACE_S``; a node's SIGTERM is for stopping it alone: a leader hands over first).
Files: ``DIR/supervisor.pid``, ``DIR/supervisor.log``, and per node ``DIR/nodes/<id>/node.pid``
and ``node.log``.

``up --detach`` starts the supervisor in its own session and returns once a leader is
elected (or fails after ``UP_DEADLINE_S``). ``down`` stops the supervisor, which stops the
nodes.

Must never: signal a process it did not start (a pid file is trusted only when that pid
still runs this supervisor or a ``quiver serve`` of this directory).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from cluster.config import CLUSTER_FILE, ClusterFile, load_cluster

SUPERVISOR_PID: Final = "supervisor.pid"
SUPERVISOR_LOG: Final = "supervisor.log"
POLL_S: Final = 0.1
STOP_GRACE_S: Final = 10.0
UP_DEADLINE_S: Final = 30.0
DOWN_DEADLINE_S: Final = 20.0
RESTART_MIN_S: Final = 0.2
RESTART_MAX_S: Final = 5.0
RESTART_WINDOW_S: Final = 60.0
MAX_RESTARTS_PER_WINDOW: Final = 20


def _log(directory: Path, text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    print(f"{stamp} supervisor {text}", flush=True)


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def running_pid(pid_file: Path, marker: str) -> int | None:
    """The pid in `pid_file` if that process runs and its command line holds `marker`."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if marker in _cmdline(pid) else None


@dataclass(slots=True)
class _Child:
    node_id: int
    config: Path
    log: Path
    pid_file: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    next_start: float = 0.0


class Supervisor:
    def __init__(self, cluster: ClusterFile) -> None:
        self.cluster = cluster
        self.stopping = False
        self.children = [
            _Child(
                node.id,
                cluster.directory / node.config,
                cluster.directory / "nodes" / str(node.id) / "node.log",
                cluster.directory / "nodes" / str(node.id) / "node.pid",
            )
            for node in cluster.nodes
        ]

    def _start(self, child: _Child) -> None:
        with open(child.log, "ab") as log_file:
            child.process = subprocess.Popen(
                [sys.executable, "-m", "cluster.cli", "serve", "--config", str(child.config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        child.pid_file.write_text(f"{child.process.pid}\n")
        _log(self.cluster.directory, f"started n{child.node_id} (pid {child.process.pid})")

    def _stop(self, *_args: object) -> None:
        self.stopping = True

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        for child in self.children:
            self._start(child)
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                process = child.process
                if process is not None and process.poll() is None:
                    continue
                if process is not None:
                    _log(
                        self.cluster.directory,
                        f"n{child.node_id} exited with {process.returncode}; restarting",
                    )
                    child.process = None
                    child.restarts = [t for t in child.restarts if now - t < RESTART_WINDOW_S]
                    child.restarts.append(now)
                    delay = min(RESTART_MAX_S, RESTART_MIN_S * 2 ** (len(child.restarts) - 1))
                    child.next_start = now + delay
                if len(child.restarts) > MAX_RESTARTS_PER_WINDOW:
                    continue  # crash-looping: left down, `quiver status` shows it
                if now >= child.next_start:
                    self._start(child)
            time.sleep(POLL_S)
        self.stop_all()
        return 0

    def stop_all(self) -> None:
        live = [c for c in self.children if c.process is not None and c.process.poll() is None]
        for child in live:
            assert child.process is not None
            # SIGINT: the whole cluster stops, so no leader waits to hand leadership over.
            child.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_GRACE_S
        for child in live:
            assert child.process is not None
            try:
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait(timeout=STOP_GRACE_S)
        for child in self.children:
            child.pid_file.unlink(missing_ok=True)
        _log(self.cluster.directory, "stopped every node")


def supervise(directory: Path, announce: bool = False) -> int:
    cluster = load_cluster(directory)
    pid_file = directory / SUPERVISOR_PID
    pid_file.write_text(f"{os.getpid()}\n")
    announcer = None
    if announce:
        # In the foreground: say how to connect once a leader is elected (bounded wait).
        def say_how_to_connect() -> None:
            leader = _wait_for_leader(directory, UP_DEADLINE_S)
            if leader:
                print(_connect_help(directory, cluster, leader), flush=True)

        announcer = threading.Thread(target=say_how_to_connect, name="announce")
        announcer.start()
    try:
        return Supervisor(cluster).run()
    finally:
        pid_file.unlink(missing_ok=True)
        if announcer is not None:
            announcer.join(UP_DEADLINE_S)


def _wait_for_leader(directory: Path, deadline_s: float) -> int:
    from cluster.client import connect

    client = connect(directory)
    try:
        deadline = time.monotonic() + deadline_s
        while time.monotonic() < deadline:
            leader = client.find_leader()
            if leader:
                return leader
            time.sleep(POLL_S)
    finally:
        client.close()
    return 0


def _quiver_command() -> str:
    """How to call `quiver` from here: its name when PATH finds this one, else its path."""
    beside = Path(sys.executable).parent / "quiver"
    if shutil.which("quiver") == str(beside) or not beside.exists():
        return "quiver"
    try:
        return str(beside.relative_to(Path.cwd()))
    except ValueError:
        return str(beside)


def _connect_help(directory: Path, cluster: ClusterFile, leader: int) -> str:
    zones = len({node.zone for node in cluster.nodes})
    dir_flag = "" if str(directory) == ".quiver" else f" --dir {directory}"
    quiver = _quiver_command()
    return "\n".join(
        [
            f"Quiver is up: {len(cluster.nodes)} nodes in {zones} zones on 127.0.0.1, "
            f"leader n{leader}, TLS and encryption at rest on; data in {cluster.directory}",
            "Connect:",
            f"  {quiver} query{dir_flag} -c 'CREATE (p:Person {{name: $name}}) RETURN p' "
            "-p name=Ada",
            f"  {quiver} query{dir_flag} --consistency linearizable "
            "-c 'MATCH (p:Person) RETURN p.name'",
            f"  {quiver} status{dir_flag}",
            f'  python: import cluster; client = cluster.connect("{directory}"); '
            'client.run("RETURN 1")',
            f"  endpoints: {', '.join(node.grpc for node in cluster.nodes)} (CA {cluster.ca_path})",
            *(
                [
                    f"  Neo4j drivers: neo4j://{cluster.nodes[0].bolt} encrypted, trusting "
                    f"{cluster.ca_path} (Python: encrypted=True, trusted_certificates="
                    "TrustCustomCAs(CA); or neo4j+s:// with SSL_CERT_FILE=CA), user and "
                    f"password from {cluster.credentials_path}"
                ]
                if cluster.nodes and cluster.nodes[0].bolt
                else []
            ),
            f"Stop it with: {quiver} down{dir_flag}",
        ]
    )


def up(
    directory: Path,
    nodes: int,
    zones: int,
    detach: bool,
    tick_ms: int = 50,
    election_ticks: int = 10,
    snapshot_entries: int = 10_000,
) -> int:
    from cluster.cli import CliError
    from cluster.init import InitError, init_cluster

    if not (directory / CLUSTER_FILE).exists():
        try:
            init_cluster(
                directory,
                nodes=nodes,
                zones=zones,
                tick_ms=tick_ms,
                election_ticks=election_ticks,
                snapshot_entries=snapshot_entries,
            )
        except InitError as error:
            raise CliError("Neo.ClientError.Request.Invalid", str(error)) from None
    cluster = load_cluster(directory)
    if running_pid(directory / SUPERVISOR_PID, "cluster.supervisor") is not None:
        leader = _wait_for_leader(directory, UP_DEADLINE_S)
        print(_connect_help(directory, cluster, leader))
        return 0
    if not detach:
        print(f"starting {len(cluster.nodes)} nodes; Ctrl-C stops them", flush=True)
        # The supervisor module's own process, so that `quiver down` recognises it.
        os.execv(
            sys.executable,
            [sys.executable, "-m", "cluster.supervisor", str(directory), "--announce"],
        )
    with open(directory / SUPERVISOR_LOG, "ab") as log_file:
        process = subprocess.Popen(
            [sys.executable, "-m", "cluster.supervisor", str(directory)],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    leader = _wait_for_leader(directory, UP_DEADLINE_S)
    if not leader:
        if process.poll() is not None:
            detail = f"the supervisor exited with {process.returncode}"
        else:
            detail = "no leader was elected"
        raise CliError(
            "Neo.TransientError.General.DatabaseUnavailable",
            f"{detail} within {UP_DEADLINE_S:.0f} s; see {directory / SUPERVISOR_LOG}",
        )
    print(_connect_help(directory, cluster, leader))
    return 0


def down(directory: Path) -> int:
    from cluster.cli import CliError

    pid = running_pid(directory / SUPERVISOR_PID, "cluster.supervisor")
    if pid is None:
        print(f"no cluster is running from {directory}")
        return 0
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + DOWN_DEADLINE_S
    while time.monotonic() < deadline:
        if running_pid(directory / SUPERVISOR_PID, "cluster.supervisor") is None:
            print(f"stopped the cluster of {directory}")
            return 0
        time.sleep(POLL_S)
    raise CliError(
        "Neo.DatabaseError.General.UnknownError",
        f"the supervisor (pid {pid}) did not stop within {DOWN_DEADLINE_S:.0f} s",
    )


if __name__ == "__main__":
    raise SystemExit(supervise(Path(sys.argv[1]), announce="--announce" in sys.argv[2:]))
