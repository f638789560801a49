"""The chaos harness's bookkeeping of node processes around membership churn, without
processes: fake ones that exit when a test says so, a watcher stepped by hand, and a heal
run "on another thread" at the worst moment of a retirement (inside its wait).

What must hold: an id taken out of the cluster is never restarted and its exit is never an
unexpected one (whether it stops by itself once removed, or when it is signalled); a heal
that runs while a node is being retired does not bring it back (nor leave a process of it
that nobody owns); a crashed member is still recorded and restarted; a retired id starts
again only once its last process is gone.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from chaos.harness import RESTART_HOLD_S, ChaosCluster


class FakeProcess:
    """A node process that exits when told to (``exit``), or on SIGTERM / SIGKILL as
    configured. Another thread's turn: ``on_terminate`` runs when it is signalled (still
    running), ``on_wait`` once it has exited inside ``wait``."""

    next_pid = 1000

    def __init__(self, node_id: int, obeys_sigterm: bool = True) -> None:
        FakeProcess.next_pid += 1
        self.pid = FakeProcess.next_pid
        self.node_id = node_id
        self.returncode: int | None = None
        self.obeys_sigterm = obeys_sigterm
        self.terminated = False
        self.on_terminate: Callable[[], None] | None = None
        self.on_wait: Callable[[], None] | None = None

    def exit(self, status: int) -> None:
        self.returncode = status

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        self.terminated = True
        hook, self.on_terminate = self.on_terminate, None
        if hook is not None:
            hook()

    def kill(self) -> None:
        if self.returncode is None:
            self.returncode = -9

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and self.terminated and self.obeys_sigterm:
            self.returncode = 0
        if self.returncode is None:
            raise subprocess.TimeoutExpired("quiver serve", timeout or 0.0)
        hook, self.on_wait = self.on_wait, None
        if hook is not None:
            hook()
        return self.returncode


class FakeCluster(ChaosCluster):
    """A ChaosCluster whose ``_start`` makes a fake process (and remembers every one)."""

    started: list[FakeProcess]

    def _start(self, node_id: int) -> None:
        self._check_not_running(node_id)
        with self._lock:
            process = FakeProcess(node_id)
            self.started.append(process)
            self.processes[node_id] = cast(Any, process)

    def _write_members(self, members: Any) -> None:
        pass  # no cluster.json here


def make_cluster(tmp_path: Path, members: int = 3) -> FakeCluster:
    cluster = FakeCluster(tmp_path, list(range(1, members + 1)), {})
    cluster.started = []
    cluster.all_ids = list(range(1, members + 2))
    for node_id in cluster.nodes:
        cluster._start(node_id)
    return cluster


def process_of(cluster: FakeCluster, node_id: int) -> FakeProcess:
    return cast(FakeProcess, cluster.processes[node_id])


def watch(cluster: FakeCluster, due: dict[int, float], start: float, seconds: float) -> None:
    """The watcher's polls over ``seconds`` of (fake) time."""
    steps = int(seconds / 0.1) + 1
    for step in range(steps):
        cluster._watch_once(due, start + step * 0.1)


def orphans(cluster: FakeCluster) -> list[FakeProcess]:
    """Processes still running that the cluster no longer owns (nobody would stop them)."""
    owned = {id(p) for p in cluster.processes.values()} | {
        id(p) for p in cluster._retiring.values()
    }
    return [p for p in cluster.started if p.returncode is None and id(p) not in owned]


def test_a_crashed_member_is_recorded_once_and_restarted_after_the_hold(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path)
    due: dict[int, float] = {}
    process_of(cluster, 2).exit(1)
    watch(cluster, due, 0.0, RESTART_HOLD_S / 2)
    assert len(cluster.started) == 3, "restarted before the hold"
    watch(cluster, due, RESTART_HOLD_S, RESTART_HOLD_S)
    assert [(e.node, e.status) for e in cluster.unexpected_exits()] == [(2, 1)]
    assert len(cluster.started) == 4 and process_of(cluster, 2).poll() is None


def test_a_member_that_stops_by_itself_once_removed_is_neither_counted_nor_restarted(
    tmp_path: Path,
) -> None:
    cluster = make_cluster(tmp_path)
    due: dict[int, float] = {}
    cluster.leaving.add(2)  # _remove marks it before asking for the removal
    process_of(cluster, 2).exit(0)  # it applied its removal and stopped cleanly
    watch(cluster, due, 0.0, 3 * RESTART_HOLD_S)
    assert len(cluster.started) == 3, "a member being removed was restarted"
    cluster._retire(2)
    watch(cluster, due, 10.0, 3 * RESTART_HOLD_S)
    assert cluster.unexpected_exits() == []
    assert len(cluster.started) == 3
    assert 2 not in cluster.processes and 2 not in cluster.nodes and not cluster.leaving


def test_a_removed_member_that_crashes_is_still_an_unexpected_exit(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path)
    due: dict[int, float] = {}
    cluster.leaving.add(2)
    process_of(cluster, 2).exit(1)
    watch(cluster, due, 0.0, 3 * RESTART_HOLD_S)
    cluster._retire(2)
    assert [(e.node, e.status) for e in cluster.unexpected_exits()] == [(2, 1)]
    assert len(cluster.started) == 3


def test_a_heal_during_a_retirement_neither_restarts_the_node_nor_leaves_it_running(
    tmp_path: Path,
) -> None:
    """The heal (the runner's, after the nemesis thread's join timed out, or a failed
    nemesis's) and the watcher run while _retire waits for the node to stop."""
    cluster = make_cluster(tmp_path)
    due: dict[int, float] = {}
    retiring = process_of(cluster, 2)

    def other_threads() -> None:
        cluster.heal()
        watch(cluster, due, 0.0, 3 * RESTART_HOLD_S)

    retiring.on_wait = other_threads
    cluster._retire(2)
    watch(cluster, due, 10.0, 3 * RESTART_HOLD_S)
    assert retiring.returncode == 0 and retiring.terminated
    assert len(cluster.started) == 3, "the retired node was started again"
    assert orphans(cluster) == []
    assert cluster.unexpected_exits() == []
    assert 2 not in cluster.processes and 2 not in cluster.held


def test_a_heal_while_a_member_stops_gracefully_leaves_it_to_its_stopper(
    tmp_path: Path,
) -> None:
    """rolling-restart: stop, then restart. A heal while the node shuts down must not
    un-hold it, or the watcher would count its stop as a crash and start it meanwhile."""
    cluster = make_cluster(tmp_path)
    due: dict[int, float] = {}

    def heal_while_it_shuts_down() -> None:
        cluster.heal()
        watch(cluster, due, 0.0, 3 * RESTART_HOLD_S)

    process_of(cluster, 3).on_terminate = heal_while_it_shuts_down
    cluster.stop_gracefully(3)
    assert 3 in cluster.held, "a heal un-held a node while it stopped"
    watch(cluster, due, 10.0, 3 * RESTART_HOLD_S)
    assert cluster.unexpected_exits() == [] and len(cluster.started) == 3
    cluster.restart([3])  # the stopper's restart
    assert len(cluster.started) == 4 and 3 not in cluster.held
    assert process_of(cluster, 3).poll() is None and orphans(cluster) == []


def test_a_retired_id_starts_again_only_once_its_last_process_is_gone(tmp_path: Path) -> None:
    cluster = make_cluster(tmp_path)
    stubborn = process_of(cluster, 2)
    stubborn.obeys_sigterm = False
    stubborn.kill = lambda: None  # type: ignore[method-assign]  # not even SIGKILL, yet
    with pytest.raises(subprocess.TimeoutExpired):
        cluster._retire(2)
    assert cluster._retiring[2] is cast(Any, stubborn)
    with pytest.raises(RuntimeError, match="n2 is running"):
        cluster._start(2)
    del stubborn.kill  # SIGKILL works again
    cluster._wait_gone(2)
    assert stubborn.returncode == -9 and 2 not in cluster._retiring
    cluster._start(2)
    assert process_of(cluster, 2) is not stubborn and orphans(cluster) == []
