"""`quiver bench cluster` deletes its cluster when it ends, so on a leader change in the
steady run it prints what the nodes logged about it: election, stream and snapshot lines
from the run's start on, from every node, in time order."""

from __future__ import annotations

import time
from pathlib import Path

from cluster.bench import _election_evidence


def _log(directory: Path, node: int, lines: list[str]) -> None:
    path = directory / "nodes" / str(node) / "node.log"
    path.parent.mkdir(parents=True)
    path.write_text("".join(f"{line}\n" for line in lines))


def test_the_evidence_is_the_runs_election_lines_of_every_node_in_time_order(
    tmp_path: Path,
) -> None:
    since = time.mktime((2026, 11, 29, 12, 0, 0, 0, 0, -1))
    _log(
        tmp_path,
        1,
        [
            "2026-11-29 11:59:59,999 n1 quiver.node INFO n1 is leader in term 1 (leader n1)",
            "2026-11-29 12:00:05,100 n1 quiver.node INFO n1 is follower in term 2 (leader n3)",
            "2026-11-29 12:00:05,200 n1 quiver.node INFO n1 installed the snapshot at 9",
        ],
    )
    _log(
        tmp_path,
        3,
        [
            "2026-11-29 12:00:01,000 n3 quiver.transport INFO stream to n1 ended: UNAVAILABLE",
            "2026-11-29 12:00:04,000 n3 quiver.node INFO n3 is pre-candidate in term 1 (leader n1)",
            "2026-11-29 12:00:04,900 n3 quiver.node INFO n3 is leader in term 2 (leader n3)",
            "2026-11-29 12:00:04,950 n3 quiver.cypher INFO an unrelated line",
        ],
    )
    evidence = _election_evidence(tmp_path, since)
    assert [line[:23] for line in evidence] == [
        "2026-11-29 12:00:01,000",
        "2026-11-29 12:00:04,000",
        "2026-11-29 12:00:04,900",
        "2026-11-29 12:00:05,100",
        "2026-11-29 12:00:05,200",
    ]
