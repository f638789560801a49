"""quiver chaos run's pure parts: nemesis groups, per-node failpoint specs, option bounds, and
the judgement of a history (a node that stopped by itself is an anomaly unless a fault
failpoint was armed on it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.history import Operation, Status
from chaos.linearizability import Verdict
from chaos.runner import GROUPS, NEMESES, RunOptions, expand_nemeses, judge, parse_failpoints


def test_groups_expand_in_order_without_repeats() -> None:
    assert expand_nemeses("kill,kill-leader,latency") == (*GROUPS["kill"], "latency")
    assert expand_nemeses("all") == tuple(n for n in NEMESES if n != "loss")  # netns only
    assert expand_nemeses("none") == ()


def test_failpoints_arm_every_node_or_one() -> None:
    armed = parse_failpoints(["follower-local-read", "2:fsync-error=5"], nodes=3)
    assert armed == {
        1: "follower-local-read",
        2: "follower-local-read,fsync-error=5",
        3: "follower-local-read",
    }


@pytest.mark.parametrize(
    "bad",
    [
        {"workload": "queue"},
        {"nemeses": ("meteor",)},
        {"clients": 0},
        {"time_limit_s": 0},
        {"nodes": 3, "zones": 4},
    ],
)
def test_options_out_of_bounds_are_refused(tmp_path: Path, bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RunOptions(out=tmp_path, **bad)  # type: ignore[arg-type]


def _add(index: int, element: int, status: Status = Status.OK) -> Operation:
    return Operation(
        0, "set", "add", element, None, index * 10,
        None if status is Status.INFO else index * 10 + 5, status, index,
    )  # fmt: skip


def _read(index: int, elements: list[int]) -> Operation:
    return Operation(
        -1, "set", "read", None, elements, index * 10, index * 10 + 5, Status.OK, index
    )


def test_a_set_run_reports_lost_adds() -> None:
    options = RunOptions(out=Path("unused"), workload="set")
    summary, verdicts = judge(options, [_add(0, 1), _add(1, 2), _read(2, [1])], [])
    assert summary.lost == 1 and not summary.ok
    assert verdicts["set"]["lost"] == [2]


def test_a_node_that_stops_by_itself_is_an_anomaly_unless_a_fault_was_armed() -> None:
    ops = [_add(0, 1), _read(1, [1])]
    exits = [{"node": 2, "status": 1}]
    plain = RunOptions(out=Path("unused"), workload="set")
    summary, _ = judge(plain, ops, exits)
    assert summary.anomalies == 1 and not summary.ok
    armed = RunOptions(out=Path("unused"), workload="set", failpoints={2: "fsync-error=3"})
    summary, _ = judge(armed, ops, exits)
    assert summary.ok and summary.linearizable is Verdict.LINEARIZABLE


def test_a_node_compacted_past_that_installs_no_snapshot_is_an_anomaly() -> None:
    ops = [_add(0, 1), _read(1, [1])]
    options = RunOptions(out=Path("unused"), workload="set")
    by_snapshot = {"node": 2, "compacted_past": True, "caught_up_by": "snapshot"}
    never_behind = {"node": 3, "compacted_past": False, "caught_up_by": "log"}
    summary, _ = judge(options, ops, [], [by_snapshot, never_behind])
    assert summary.ok
    for record in (
        {"node": 2, "compacted_past": True, "caught_up_by": "log"},
        {"node": 2, "compacted_past": True, "caught_up_by": None},
        {"node": 2, "compacted_past": False, "caught_up_by": None},
    ):
        summary, verdicts = judge(options, ops, [], [record])
        assert summary.anomalies == 1 and not summary.ok, record
        assert verdicts["snapshot_not_installed"] == [record]
    # In network namespaces TCP retransmits what the cut held back: the log may do.
    netns = RunOptions(out=Path("unused"), workload="set", netns=True)
    from_log = {"node": 2, "compacted_past": True, "caught_up_by": "log"}
    assert judge(netns, ops, [], [from_log])[0].ok
    assert not judge(netns, ops, [], [{**from_log, "caught_up_by": None}])[0].ok
