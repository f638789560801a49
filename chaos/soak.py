"""``make chaos``: the long run — every workload under every nemesis, one after another.

Owns the split of a time budget over the scenarios (register, set, bank, graph, then register
with the leader's clock slow and a follower's fast, set with torn writes and, as root, set in
network namespaces; each a ``quiver chaos run`` of its own: a fresh cluster, all nemeses —
membership churn and forced snapshot installs among them — its own report directory) and one
summary over them: ``OUT/summary.txt`` (each run's last line) and ``OUT/index.html``
linking the reports. Exits 0 only when every run's verdicts are valid.

Must never: run past its budget by more than each run's start-up, late fault windows
(``chaos.runner.SCHEDULE_OVERRUN_S`` at most), healing and checking.
"""

from __future__ import annotations

import argparse
import html
import logging
import time
from collections.abc import Sequence
from pathlib import Path

from chaos import netns
from chaos.runner import GROUPS, WORKLOADS, RunOptions, run

DEFAULT_MINUTES = 30.0
MIN_RUN_S = 10.0
SNAPSHOT_ENTRIES = 300
"""Snapshots and compaction every few hundred writes, so that a node cut off or down for a
while catches up by snapshot install, under the same faults."""
SCENARIOS: tuple[tuple[str, str, dict[int, str]], ...] = (
    *((workload, workload, {}) for workload in WORKLOADS),
    # Faults a correct cluster must survive too: the leader's clock slow and a follower's
    # fast (see LEADERS), and one node whose writes tear at a power cut every 300 log syncs
    # (it dies, restarts and repairs its log, again and again).
    ("register-clock-skew", "register", {1: "clock-rate=0.5", 2: "clock-rate=2"}),
    ("set-torn-writes", "set", {3: "torn-write=300"}),
)
LEADERS: dict[str, int] = {"register-clock-skew": 1}
"""Scenarios whose leadership is kept on one node (moved back after every fault window).
With the leader's clock at half speed and a follower's at double, a leader trusting a
time lease would serve reads after the follower, its election timer running out twice as
fast, was elected in its place: stale reads. Quiver confirms every linearizable read with
a ReadIndex round instead (no lease reads), so the history must stay linearizable; the
clocks only disturb timers (elections, heartbeats, check-quorum)."""
NETNS_SCENARIO = "set-netns"
"""As root: a set run with the nodes in network namespaces (nftables partitions, iptables
loss) instead of behind the proxy."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m chaos.soak", description="Every workload under every nemesis."
    )
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES)
    parser.add_argument("--out", default=f"chaos-out/soak-{time.strftime('%Y%m%dT%H%M%S')}")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clients", type=int, default=5)
    args = parser.parse_args(argv)
    out = Path(args.out)
    logging.basicConfig(level=logging.WARNING, format="   %(asctime)s %(message)s")
    logging.getLogger("quiver.chaos").setLevel(logging.INFO)
    scenarios = list(SCENARIOS)
    with_netns = netns.available() and netns.have("nft") and netns.have("iptables")
    if with_netns:
        scenarios.append((NETNS_SCENARIO, "set", {}))
    else:
        print(f"(no {NETNS_SCENARIO}: network namespaces need root, nftables and iptables)")
    per_run_s = max(MIN_RUN_S, args.minutes * 60 / len(scenarios))
    lines: list[tuple[str, str, bool]] = []
    for number, (label, workload, failpoints) in enumerate(scenarios):
        in_netns = label == NETNS_SCENARIO
        options = RunOptions(
            out=out / label,
            workload=workload,
            nemeses=(*GROUPS["all"], "loss") if in_netns else GROUPS["all"],
            netns=in_netns,
            time_limit_s=per_run_s,
            clients=args.clients,
            seed=args.seed + number,
            failpoints=dict(failpoints),
            leader=LEADERS.get(label, 0),
            fault_s=(2.0, 8.0),
            gap_s=(3.0, 8.0),
            keys=max(3, int(per_run_s // 30)),
            snapshot_entries=SNAPSHOT_ENTRIES,
        )
        armed = f", failpoints {failpoints}" if failpoints else ""
        if options.leader:
            armed += f", leadership kept on n{options.leader}"
        print(
            f"== {label}: {per_run_s:.0f} s, every nemesis, seed {options.seed}{armed}", flush=True
        )
        result = run(options, say=lambda line: print(f"   {line}", flush=True))
        lines.append((label, result.summary.line(), result.ok))
    summary = "\n".join(f"{w}: {'ok' if ok else 'FAILED'} — {line}" for w, line, ok in lines)
    (out / "summary.txt").write_text(summary + "\n")
    rows = "".join(
        f'<tr><td><a href="{w}/report.html">{w}</a></td><td>{"ok" if ok else "FAILED"}</td>'
        f"<td><code>{html.escape(line)}</code></td></tr>"
        for w, line, ok in lines
    )
    (out / "index.html").write_text(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>quiver chaos'
        f"</title></head><body><h1>quiver chaos soak</h1><table>{rows}</table></body></html>\n"
    )
    print(summary)
    return 0 if all(ok for _, _, ok in lines) else 1


if __name__ == "__main__":
    raise SystemExit(main())
