"""``quiver chaos run``: one workload against a real cluster under a nemesis schedule, checked.

Owns a run from end to end: a fresh cluster whose every link goes through the fault proxy
(``chaos.harness``), the workload's set-up data, concurrent clients recording a history
(``chaos.adapters`` over ``cluster.connect``, as a user connects: the directory's CA and
addresses), a seeded schedule of bounded fault windows applied beside them, healing, a final
read, the checkers, and the report in ``--out``:

    history.jsonl   every invoke and completion (``chaos.history``)
    verdicts.json   the checkers' verdicts, with the lost elements and anomalies named
    report.html     timeline with fault windows, latencies (``chaos.report``)
    cluster/        the cluster directory: node logs, data; proxy.log beside it

The clients run for ``--time-limit``, and on while a fault window is still running (one that
took long, or started late behind one that did; ``SCHEDULE_OVERRUN_S`` more at most), so
every window of the schedule runs, under load.

The last line printed is ``linearizable: yes|no|unknown, lost: N, anomalies: N, ops: N``
(for a set, bank or graph run the first field carries that workload's verdict); the exit
status is 0 only when every verdict is valid.

Nemeses (``--nemesis``, comma-separated; groups ``kill``, ``pause``, ``partition``, ``zone``,
``all``):
kill-leader, kill-random, kill-minority, kill-all, kill-zone (SIGKILL; restarted when the
window ends), pause-leader, pause-random (SIGSTOP/SIGCONT), partition-halves (symmetric),
partition-one-way (the leader's messages are lost, it hears the others), partition-bridge,
isolate-leader, isolate-follower, latency (every peer link), transfer-leader (admin API),
rolling-restart (each node in turn: leadership moved off it, SIGTERM, restarted, serving),
member-churn (``quiver admin``: a fresh node — a spare id, or a removed one wiped — joins as a
learner through its own proxies and is promoted, then a follower is removed and stopped),
snapshot-install (a follower cut off until the leader compacted its log past it, then healed:
it must catch up by snapshot install; ``verdicts.json`` says whether it did), loss (with
``--netns``: 20% of the packets into every node dropped; not in ``all``). Groups:
``membership`` (member-churn), ``snapshot`` (snapshot-install).

``--netns`` (root): each node in its own network namespace, a veth link per pair, partitions
as nftables drops, loss with iptables' statistic match; there is no proxy then (and no
latency or member-churn: this kernel has no netem, and added members need proxies), clients
reach the nodes through Unix-socket relays.

``--leader N`` keeps leadership on node N (moved back after every window), so that a
failpoint armed on it acts on the leader: ``--failpoint 1:clock-rate=0.5 --failpoint
2:clock-rate=2 --leader 1`` runs a slow-clock leader beside a fast-clock follower, the case
that breaks lease reads (Quiver's linearizable reads use ReadIndex, so the history must stay
linearizable).

Must never: run unbounded (the schedule, the clients and every call have limits), or leave a
process or a fault behind (the harness heals and stops everything, whatever happens).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from chaos import adapters, nemesis
from chaos.checkers import check_bank, check_set
from chaos.harness import ChaosCluster, name
from chaos.history import Operation, Recorder, dump_jsonl, operations
from chaos.linearizability import Verdict, check
from chaos.nemesis import FaultKind, FaultWindow, ScheduleLimits
from chaos.report import FaultSpan, RunSummary, render_html
from chaos.workload import WorkloadLimits, run_register_workload
from cluster.client import Client

log = logging.getLogger("quiver.chaos")

WORKLOADS: Final = ("register", "set", "bank", "graph")
NEMESES: Final = (
    "kill-leader",
    "kill-random",
    "kill-minority",
    "kill-all",
    "kill-zone",
    "pause-leader",
    "pause-random",
    "partition-halves",
    "partition-one-way",
    "partition-bridge",
    "isolate-leader",
    "isolate-follower",
    "latency",
    "transfer-leader",
    "rolling-restart",
    "member-churn",
    "snapshot-install",
    "loss",
)
GROUPS: Final = {
    "kill": ("kill-leader", "kill-random", "kill-minority", "kill-zone"),
    "pause": ("pause-leader", "pause-random"),
    "zone": ("kill-zone",),
    "partition": ("partition-halves", "partition-one-way", "partition-bridge", "isolate-leader"),
    "membership": ("member-churn",),
    "snapshot": ("snapshot-install",),
    "all": tuple(n for n in NEMESES if n != "loss"),
    "none": (),
}
FAULT_FAILPOINTS: Final = ("fsync-error", "torn-write")
"""Failpoints that make a node stop by design: its exits are expected, not anomalies."""
MAX_CLIENTS: Final = 64
MAX_TIME_LIMIT_S: Final = 24 * 3600.0
CLIENT_TIMEOUT_S: Final = 5.0
SETUP_TIMEOUT_S: Final = 30.0
HEAL_LEADER_S: Final = 30.0
ROLLING_WAIT_S: Final = 30.0
LEADER_TARGET_WAIT_S: Final = 3.0
CHECK_TIME_LIMIT_S: Final = 120.0
LATENCY_MS: Final = 100
LATENCY_JITTER_MS: Final = 50
LOSS_PROBABILITY: Final = 0.2
INITIAL_BALANCE: Final = 100
REPORTED_ITEMS: Final = 100
CHURN_CATCH_UP_S: Final = 30.0
SNAPSHOT_WAIT_S: Final = 60.0
"""How long snapshot-install keeps a follower cut off waiting for the leader to compact past
it, and then waits for it to install a snapshot once healed."""
SCHEDULE_OVERRUN_S: Final = 120.0
"""How long the workload goes on past ``--time-limit`` at most while the fault schedule still
runs: a window that takes long (a joining member catching up, a follower cut off until the
leader compacts past it, then catching up) must neither run without load nor push the next
windows out of the run."""
SPARE_MEMBERS: Final = 1
LEADER_MOVE_S: Final = 10.0
"""Ids prepared for member-churn beyond the initial members (a removed id is reused)."""


@dataclass(slots=True, frozen=True)
class RunOptions:
    out: Path
    workload: str = "register"
    nemeses: tuple[str, ...] = ("kill-leader", "isolate-leader")
    time_limit_s: float = 30.0
    clients: int = 5
    seed: int = 0
    nodes: int = 3
    zones: int = 3
    netns: bool = False
    """Nodes in network namespaces, linked by veth pairs; partitions with nftables, loss with
    iptables (root only); clients still reach them from the host's namespace, by relays."""
    snapshot_entries: int = 10_000
    """Small values make nodes snapshot and compact often, so that one cut off for a while
    catches up by snapshot install."""
    failpoints: dict[int, str] = field(default_factory=dict)
    leader: int = 0
    """Keep leadership on this node (0: wherever elections put it): moved there before the
    workload and after each fault window (best effort), so that its failpoints (a skewed
    clock) act on the leader."""
    fault_s: tuple[float, float] = (2.0, 6.0)
    gap_s: tuple[float, float] = (1.0, 3.0)
    keys: int = 3
    accounts: int = 5
    vertices: int = 8

    def __post_init__(self) -> None:
        if self.workload not in WORKLOADS:
            raise ValueError(f"--workload is one of {', '.join(WORKLOADS)}")
        for nemesis_name in self.nemeses:
            if nemesis_name not in NEMESES:
                raise ValueError(f"unknown nemesis {nemesis_name!r} (known: {', '.join(NEMESES)})")
        if not 1 <= self.clients <= MAX_CLIENTS:
            raise ValueError(f"--clients must be within 1..{MAX_CLIENTS}")
        if not 0 < self.time_limit_s <= MAX_TIME_LIMIT_S:
            raise ValueError(f"--time-limit must be within 0..{MAX_TIME_LIMIT_S:.0f} s")
        if not 1 <= self.nodes <= 7:
            raise ValueError("--nodes must be within 1..7")
        if not 1 <= self.zones <= self.nodes:
            raise ValueError("--zones must be within 1..--nodes")
        if not 0 <= self.leader <= self.nodes:
            raise ValueError("--leader must be within 0..--nodes")
        if not 1 <= self.keys <= 1000:
            raise ValueError("--keys must be within 1..1000")


@dataclass(slots=True)
class RunResult:
    summary: RunSummary
    verdicts: dict[str, Any]
    out: Path

    @property
    def ok(self) -> bool:
        return self.summary.ok


def expand_nemeses(spec: str) -> tuple[str, ...]:
    chosen: list[str] = []
    for item in (part.strip() for part in spec.split(",")):
        if not item:
            continue
        for nemesis_name in GROUPS.get(item, (item,)):
            if nemesis_name not in chosen:
                chosen.append(nemesis_name)
    return tuple(chosen)


# --- the nemesis ----------------------------------------------------------------------------


class Nemesis:
    """Applies one fault per window on a :class:`ChaosCluster`; records its span."""

    def __init__(self, cluster: ChaosCluster, names: Sequence[str], leader: int = 0) -> None:
        self.cluster = cluster
        self.names = list(names)
        self.leader = leader
        """Leadership goes back to this node after each window (0: wherever it lands)."""
        self.spans: list[FaultSpan] = []
        self.snapshot_installs: list[dict[str, Any]] = []
        """Each snapshot-install window: the node, whether the leader compacted past it
        while it was cut off, and whether it then installed a snapshot."""
        self._lock = threading.Lock()

    def apply(self, window: FaultWindow) -> Callable[[], None]:
        rng = random.Random(window.seed)
        which = rng.choice(self.names)
        started = time.monotonic_ns()
        try:
            label, heal = self._start(which, rng)
        except Exception as error:  # a fault that could not be applied is logged, not fatal
            log.warning("nemesis %s failed to start: %s", which, error)
            label, heal = f"{which} (not applied)", self.cluster.heal
        log.info("nemesis: %s", label)

        def healed() -> None:
            try:
                heal()
                if self.leader:
                    move_leadership(self.cluster, self.leader)
            finally:
                with self._lock:
                    self.spans.append(FaultSpan(started, time.monotonic_ns(), label))

        return healed

    def _target(self, rng: random.Random, leader: bool) -> int:
        """The leader (waited for, briefly: an election may be running) or a random node."""
        if leader:
            found = self.cluster.wait_for_leader(LEADER_TARGET_WAIT_S)
            if found:
                return found
        return rng.choice(self.cluster.nodes)

    def _start(self, which: str, rng: random.Random) -> tuple[str, Callable[[], None]]:
        cluster = self.cluster
        nodes = cluster.nodes
        names = [name(n) for n in nodes]
        if which.startswith("kill-"):
            if which == "kill-all":
                victims = list(nodes)
            elif which == "kill-zone":
                zones = cluster.zones()
                victims = zones[rng.choice(sorted(zones))]
            elif which == "kill-minority":
                victims = rng.sample(nodes, max(1, (len(nodes) - 1) // 2))
            else:
                victims = [self._target(rng, which == "kill-leader")]
            cluster.kill(victims)
            return f"{which} {victims}", lambda: cluster.restart(victims)
        if which.startswith("pause-"):
            victim = self._target(rng, which == "pause-leader")
            cluster.pause(victim)
            return f"{which} n{victim}", cluster.resume_all
        if which == "loss":
            cluster.add_loss(LOSS_PROBABILITY)
            return f"loss {LOSS_PROBABILITY:.0%} into every node", cluster.heal
        if which == "latency":
            cluster.add_latency(LATENCY_MS, LATENCY_JITTER_MS)
            return f"latency {LATENCY_MS}±{LATENCY_JITTER_MS} ms", cluster.remove_latency
        if which == "rolling-restart":
            for node_id in nodes:
                if cluster.leader() == node_id:
                    cluster.transfer_leader(0)
                cluster.stop_gracefully(node_id)
                cluster.restart([node_id])
                cluster.wait_serving(node_id, ROLLING_WAIT_S)
            return "rolling-restart", lambda: None
        if which == "transfer-leader":
            moved = cluster.transfer_leader(0)
            return f"transfer-leader to n{moved}", lambda: None
        if which == "member-churn":
            leader = cluster.wait_for_leader(LEADER_TARGET_WAIT_S)
            leaving = rng.choice([n for n in nodes if n != leader] or list(nodes))
            joined = cluster.replace_member(leaving, CHURN_CATCH_UP_S)
            return f"member-churn n{leaving} out, n{joined} in", lambda: None
        if which == "snapshot-install":
            return self._force_snapshot_install(rng)
        if which == "partition-halves":
            links = nemesis.halves(names, rng)
        elif which == "partition-one-way":
            leader = name(self._target(rng, True))
            links = nemesis.one_way([leader], [n for n in names if n != leader])
        elif which == "partition-bridge":
            shuffled = list(names)
            rng.shuffle(shuffled)
            links = nemesis.bridge(shuffled)
        elif which == "isolate-leader":
            links = nemesis.isolate(name(self._target(rng, True)), names)
        elif which == "isolate-follower":
            leader = cluster.wait_for_leader(LEADER_TARGET_WAIT_S)
            followers = [n for n in nodes if n != leader] or list(nodes)
            links = nemesis.isolate(name(rng.choice(followers)), names)
        else:
            raise ValueError(f"unknown nemesis {which}")
        cluster.partition(links)
        cut = sorted(f"{a}-x->{b}" for a, b in links)
        return f"{which} {' '.join(cut)}", cluster.network.heal

    def _force_snapshot_install(self, rng: random.Random) -> tuple[str, Callable[[], None]]:
        """Cut a follower off until the leader's log starts past what it holds (the
        workload writes meanwhile; bounded), then heal and wait until it caught up, and
        record how: by snapshot install, or from the log. Through the proxies the bytes
        sent during the cut are dropped, so only a snapshot can bring it back; with network
        namespaces packets are dropped and TCP retransmits them once healed, so appends the
        leader sent while the entries still existed may arrive late and it may catch up
        from the log."""
        cluster = self.cluster
        leader = cluster.wait_for_leader(LEADER_TARGET_WAIT_S)
        victim = rng.choice([n for n in cluster.nodes if n != leader] or list(cluster.nodes))
        before = cluster.snapshots_installed(victim) or 0
        cluster.partition(nemesis.isolate(name(victim), [name(n) for n in cluster.nodes]))
        compacted = cluster.wait_compacted_past(victim, SNAPSHOT_WAIT_S)
        record: dict[str, Any] = {"node": victim, "compacted_past": compacted}

        def heal() -> None:
            assert cluster.network is not None
            cluster.network.heal()
            record["caught_up_by"] = cluster.wait_caught_up(victim, before, SNAPSHOT_WAIT_S)
            record["installed"] = record["caught_up_by"] == "snapshot"
            with self._lock:
                self.snapshot_installs.append(record)
            log.info("snapshot-install: %s", record)

        state = "log compacted past it" if compacted else "log NOT compacted past it in time"
        return f"snapshot-install n{victim} cut off ({state})", heal


def move_leadership(cluster: ChaosCluster, to: int) -> bool:
    """Best effort, bounded: leadership to node ``to`` (it may be down, or no member)."""
    if to not in cluster.nodes:
        return False
    deadline = time.monotonic() + LEADER_MOVE_S
    while time.monotonic() < deadline:
        leader = cluster.wait_for_leader(LEADER_TARGET_WAIT_S)
        if leader == to:
            return True
        if leader:
            cluster.transfer_leader(to)
        time.sleep(0.2)
    log.info("leadership did not move to n%d within %.0f s", to, LEADER_MOVE_S)
    return False


def fault_windows(options: RunOptions) -> tuple[FaultWindow, ...]:
    if not options.nemeses:
        return ()
    limits = ScheduleLimits(
        total_s=options.time_limit_s,
        min_fault_s=options.fault_s[0],
        max_fault_s=options.fault_s[1],
        min_gap_s=options.gap_s[0],
        max_gap_s=options.gap_s[1],
    )
    # The schedule gives the timing; each window's seed picks which nemesis runs in it.
    return nemesis.schedule(limits, [FaultKind.KILL], options.seed)


# --- the run --------------------------------------------------------------------------------


def _set_up(options: RunOptions, client: Client) -> None:
    if options.workload == "register":
        adapters.create_registers(client, register_keys(options))
    elif options.workload == "bank":
        adapters.create_accounts(client, adapters.account_names(options.accounts), INITIAL_BALANCE)
    elif options.workload == "graph":
        adapters.create_vertices(client, options.vertices)


def register_keys(options: RunOptions) -> list[str]:
    return [f"r{i}" for i in range(options.keys)]


def _run_workload(
    options: RunOptions,
    cluster: ChaosCluster,
    recorder: Recorder,
    keep_going: Callable[[], bool] | None = None,
) -> None:
    """The workload for ``--time-limit``, and on while ``keep_going()`` (a fault window that
    started late or takes long is still running), ``SCHEDULE_OVERRUN_S`` more at most."""
    limits = WorkloadLimits(
        options.clients,
        1_000_000,
        options.time_limit_s + (SCHEDULE_OVERRUN_S if keep_going else 0.0),
        min_time_s=options.time_limit_s,
        keep_going=keep_going,
    )
    clients: list[Client] = []
    lock = threading.Lock()

    def made(client: Client) -> Client:
        with lock:
            clients.append(client)
        return client

    def whole() -> Client:
        return made(cluster.client(CLIENT_TIMEOUT_S))

    try:
        if options.workload == "register":
            run_register_workload(
                lambda slot: adapters.ClusterRegister(
                    whole(),
                    made(cluster.pinned_client(cluster.nodes[slot % len(cluster.nodes)])),
                ),
                recorder,
                register_keys(options),
                limits,
                options.seed,
            )
        elif options.workload == "set":
            adapters.run_set_adds(lambda _slot: adapters.ClusterSet(whole()), recorder, limits)
        elif options.workload == "bank":
            adapters.run_bank_workload(
                lambda _slot: adapters.ClusterBank(whole()),
                recorder,
                adapters.account_names(options.accounts),
                limits,
                seed=options.seed,
            )
        else:
            adapters.run_graph_workload(
                lambda _slot: adapters.ClusterGraph(whole()),
                recorder,
                options.vertices,
                limits,
                seed=options.seed,
            )
    finally:
        for client in clients:
            client.close()


def _final_read(options: RunOptions, cluster: ChaosCluster, recorder: Recorder) -> bool:
    if options.workload == "register":
        return True
    client = cluster.client(CLIENT_TIMEOUT_S)
    try:
        if options.workload == "set":
            return adapters.final_read(recorder, "set", adapters.ClusterSet(client).read)
        if options.workload == "bank":
            return adapters.final_read(recorder, "bank", adapters.ClusterBank(client).read)
        return adapters.final_read(recorder, "graph", adapters.ClusterGraph(client).read)
    finally:
        client.close()


def _verdict_of(valid: bool | None) -> Verdict:
    if valid is None:
        return Verdict.UNKNOWN
    return Verdict.LINEARIZABLE if valid else Verdict.NOT_LINEARIZABLE


def judge(
    options: RunOptions,
    ops: list[Operation],
    unexpected_exits: list[dict[str, int]],
    snapshot_installs: Sequence[dict[str, Any]] = (),
) -> tuple[RunSummary, dict[str, Any]]:
    """The checkers' verdicts on a history, and the summary line's numbers. A node that
    stopped by itself (no fault armed on it) is an anomaly, and so is one that the leader
    compacted past while it was cut off and that did not catch up by a snapshot install
    once healed (in netns mode: that did not catch up at all)."""
    verdicts: dict[str, Any] = {"workload": options.workload}
    lost = 0
    anomalies = 0
    if options.workload == "register":
        result = check(ops, time_limit_s=CHECK_TIME_LIMIT_S)
        verdict = result.verdict
        failures = result.failures()
        anomalies = len(failures)
        verdicts["linearizable"] = verdict.value
        verdicts["keys"] = {key: r.verdict.value for key, r in result.keys.items()}
        verdicts["not_linearizable_at"] = [
            {
                "key": r.key,
                "stuck_at": None
                if r.stuck_at is None
                else {
                    "process": r.stuck_at.process,
                    "op": r.stuck_at.op,
                    "input": r.stuck_at.input,
                    "output": r.stuck_at.output,
                },
            }
            for r in failures
        ]
    elif options.workload == "set":
        set_result = check_set(ops)
        verdict = _verdict_of(set_result.valid)
        lost = len(set_result.lost)
        anomalies = len(set_result.unexpected) + len(set_result.failed_present)
        verdicts["set"] = {
            "valid": set_result.valid,
            "attempted": set_result.attempted,
            "acknowledged": set_result.acknowledged,
            "lost": sorted(set_result.lost)[:REPORTED_ITEMS],
            "unexpected": sorted(set_result.unexpected)[:REPORTED_ITEMS],
            "failed_present": len(set_result.failed_present),
            "recovered": len(set_result.recovered),
            "reason": set_result.reason,
        }
    elif options.workload == "bank":
        names = adapters.account_names(options.accounts)
        bank_result = check_bank(ops, names, INITIAL_BALANCE * len(names))
        has_final = any(op.op == "read" and op.process == -1 and op.output for op in ops)
        verdict = _verdict_of(bank_result.valid if has_final else None)
        anomalies = len(bank_result.anomalies)
        verdicts["bank"] = {
            "valid": bank_result.valid,
            "reads": bank_result.reads,
            "anomalies": [f"{a.kind}: {a.detail}" for a in bank_result.anomalies[:REPORTED_ITEMS]],
        }
    else:
        graph_result = adapters.check_graph(ops, options.vertices)
        verdict = _verdict_of(graph_result.valid)
        lost = len(graph_result.lost)
        anomalies = len(graph_result.anomalies) - lost
        verdicts["graph"] = {
            "valid": graph_result.valid,
            "reads": graph_result.reads,
            "anomalies": [f"{a.kind}: {a.detail}" for a in graph_result.anomalies[:REPORTED_ITEMS]],
        }
    verdicts["unexpected_node_exits"] = unexpected_exits
    fault_nodes = {
        node
        for node, spec in options.failpoints.items()
        if any(point in spec for point in FAULT_FAILPOINTS)
    }
    crashes = [e for e in unexpected_exits if e["node"] not in fault_nodes]
    anomalies += len(crashes)
    verdicts["snapshot_installs"] = list(snapshot_installs)
    # A node that never caught up is stuck; through the proxies, one compacted past must
    # have caught up by snapshot (see Nemesis._force_snapshot_install).
    stuck = [
        r
        for r in snapshot_installs
        if r.get("caught_up_by") is None
        or (r["compacted_past"] and not options.netns and r.get("caught_up_by") != "snapshot")
    ]
    verdicts["snapshot_not_installed"] = stuck
    anomalies += len(stuck)
    summary = RunSummary(verdict, lost, anomalies, len(ops))
    verdicts["summary"] = summary.line()
    verdicts["valid"] = summary.ok
    return summary, verdicts


def run(options: RunOptions, say: Callable[[str], None] = print) -> RunResult:
    out = options.out
    out.mkdir(parents=True, exist_ok=True)
    if (out / "cluster").exists():
        raise FileExistsError(f"{out / 'cluster'} exists: give a fresh --out")
    windows = fault_windows(options)
    recorder = Recorder()
    cluster = ChaosCluster.create(
        out,
        nodes=options.nodes,
        zones=options.zones,
        snapshot_entries=options.snapshot_entries,
        netns=options.netns,
        failpoints=options.failpoints,
        seed=options.seed,
        # Members added at run time need their proxies made at start (none in netns mode).
        spare_members=SPARE_MEMBERS
        if "member-churn" in options.nemeses and not options.netns
        else 0,
    )
    nemesis_runner = Nemesis(cluster, options.nemeses, options.leader)
    try:
        say(
            f"cluster of {options.nodes} nodes up in {cluster.directory} (leader "
            f"n{cluster.leader()}); every link through the fault proxy"
        )
        setup = cluster.client(SETUP_TIMEOUT_S)
        try:
            _set_up(options, setup)
        finally:
            setup.close()
        if options.leader:
            moved = move_leadership(cluster, options.leader)
            say(f"leadership {'moved' if moved else 'NOT moved'} to n{options.leader}")
        say(
            f"{options.workload}: {options.clients} clients for {options.time_limit_s:.0f} s, "
            f"{len(windows)} fault windows from {', '.join(options.nemeses) or 'none'}"
        )
        stop = threading.Event()
        schedule_thread = threading.Thread(
            target=nemesis.run_schedule,
            args=(windows, nemesis_runner.apply, stop),
            name="chaos-nemesis",
            daemon=True,
        )
        schedule_thread.start()
        try:
            _run_workload(options, cluster, recorder, keep_going=schedule_thread.is_alive)
        finally:
            stop.set()
            schedule_thread.join(options.fault_s[1] + 60.0)
            cluster.heal()
        leader = cluster.wait_for_leader(HEAL_LEADER_S)
        say(f"healed; leader n{leader}; final read")
        _final_read(options, cluster, recorder)
        exits = [{"node": e.node, "status": e.status} for e in cluster.unexpected_exits()]
    finally:
        cluster.close()
    events = recorder.events()
    dump_jsonl(events, out / "history.jsonl")
    ops = operations(events)
    summary, verdicts = judge(options, ops, exits, nemesis_runner.snapshot_installs)
    verdicts["faults"] = [span.label for span in nemesis_runner.spans]
    verdicts["membership_changes"] = list(cluster.churned)
    verdicts["options"] = {
        "workload": options.workload,
        "nemeses": list(options.nemeses),
        "time_limit_s": options.time_limit_s,
        "clients": options.clients,
        "seed": options.seed,
        "nodes": options.nodes,
        "zones": options.zones,
        "snapshot_entries": options.snapshot_entries,
        "netns": options.netns,
        "failpoints": {str(k): v for k, v in options.failpoints.items()},
        "leader": options.leader,
    }
    (out / "verdicts.json").write_text(json.dumps(verdicts, indent=2, default=str) + "\n")
    table = {
        key: json.dumps(value, default=str)[:300]
        for key, value in verdicts.items()
        if key not in ("options", "faults", "summary")
    }
    (out / "report.html").write_text(
        render_html(
            f"quiver chaos run: {options.workload}, seed {options.seed}",
            ops,
            summary,
            nemesis_runner.spans,
            table,
        )
    )
    say(f"faults: {len(nemesis_runner.spans)}; report in {out / 'report.html'}")
    say(summary.line())
    return RunResult(summary, verdicts, out)


# --- the command line -----------------------------------------------------------------------


def parse_failpoints(items: Sequence[str], nodes: int) -> dict[int, str]:
    """``SPEC`` arms every node; ``N:SPEC`` arms node N. Specs for one node are joined."""
    armed: dict[int, list[str]] = {}
    for item in items:
        target, sep, spec = item.partition(":")
        if sep and target.isdigit():
            targets = [int(target)]
        else:
            targets, spec = list(range(1, nodes + 1)), item
        for node_id in targets:
            armed.setdefault(node_id, []).append(spec)
    return {node: ",".join(specs) for node, specs in armed.items()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="quiver chaos run",
        description=(
            "Run a workload against a fresh real cluster (every link through the fault "
            "proxy) under a nemesis schedule, check the history, write a report."
        ),
    )
    parser.add_argument("--workload", choices=WORKLOADS, default="register")
    parser.add_argument(
        "--nemesis",
        default="kill-leader,isolate-leader",
        help=f"comma-separated: {', '.join(NEMESES)}; groups {', '.join(GROUPS)}",
    )
    parser.add_argument("--time-limit", "--time", type=float, default=30.0, dest="time_limit")
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--zones", type=int, default=3, help="zones the nodes are spread over")
    parser.add_argument("--keys", type=int, default=3, help="register: how many registers")
    parser.add_argument(
        "--netns",
        action="store_true",
        help="root: nodes in network namespaces, partitions by nftables, 'loss' by iptables",
    )
    parser.add_argument(
        "--snapshot-entries",
        type=int,
        default=10_000,
        help="snapshot every N applied entries (small: isolated nodes catch up by snapshot)",
    )
    parser.add_argument("--out", default=None, help="report directory (default chaos-out/...)")
    parser.add_argument(
        "--failpoint",
        action="append",
        default=[],
        metavar="[N:]SPEC",
        help="test-only: arm a failpoint (store.failpoints) on node N or on every node",
    )
    parser.add_argument(
        "--leader",
        type=int,
        default=0,
        metavar="N",
        help="keep leadership on node N (moved back after each fault window); 0: anywhere",
    )
    parser.add_argument(
        "--fault-s", type=float, nargs=2, default=(2.0, 6.0), metavar=("MIN", "MAX")
    )
    parser.add_argument("--gap-s", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    seed = args.seed if args.seed is not None else random.randrange(1 << 31)
    out = Path(args.out or f"chaos-out/{args.workload}-{seed}-{time.strftime('%Y%m%dT%H%M%S')}")
    try:
        options = RunOptions(
            out=out,
            workload=args.workload,
            nemeses=expand_nemeses(args.nemesis),
            time_limit_s=args.time_limit,
            clients=args.clients,
            seed=seed,
            nodes=args.nodes,
            zones=args.zones,
            keys=args.keys,
            snapshot_entries=args.snapshot_entries,
            netns=args.netns,
            failpoints=parse_failpoints(args.failpoint, args.nodes),
            leader=args.leader,
            fault_s=(args.fault_s[0], args.fault_s[1]),
            gap_s=(args.gap_s[0], args.gap_s[1]),
        )
    except ValueError as error:
        print(f"Neo.ClientError.Request.Invalid: quiver chaos run: {error}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    log.setLevel(logging.INFO)  # the faults as they happen
    result = run(options)
    return 0 if result.ok else 1
