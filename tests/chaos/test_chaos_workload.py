"""Workloads end to end against in-memory systems: a correct one passes the checkers, and
each planted bug (stale replica reads, a cas that ignores its comparison, lost adds) is
caught from the recorded history alone."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path
from typing import Any

from chaos.checkers import check_set
from chaos.history import Recorder, Status, dump_jsonl, load_jsonl, operations
from chaos.linearizability import Verdict, check
from chaos.workload import (
    DefiniteFailure,
    WorkloadLimits,
    run_register_workload,
    run_set_workload,
)

LIMITS = WorkloadLimits(processes=6, ops_per_process=150, time_limit_s=30.0)
KEYS = ["k1", "k2", "k3"]


def jitter(rng: random.Random) -> None:
    # Spreads calls across threads so that operations overlap; not a wait for a condition.
    time.sleep(rng.uniform(0, 0.0005))


class AtomicRegisters:
    """A correct system: one lock, each operation atomic at one instant."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.lock = threading.Lock()

    def client(self, slot: int) -> AtomicClient:
        return AtomicClient(self, random.Random(slot))


class AtomicClient:
    def __init__(self, system: AtomicRegisters, rng: random.Random) -> None:
        self.system, self.rng = system, rng

    def read(self, key: str) -> Any:
        jitter(self.rng)
        with self.system.lock:
            value = self.system.values.get(key)
        jitter(self.rng)
        return value

    def write(self, key: str, value: Any) -> None:
        jitter(self.rng)
        with self.system.lock:
            self.system.values[key] = value
        jitter(self.rng)

    def cas(self, key: str, expected: Any, new: Any) -> bool:
        jitter(self.rng)
        with self.system.lock:
            swapped = self.system.values.get(key) == expected
            if swapped:
                self.system.values[key] = new
        jitter(self.rng)
        return swapped


class TimingOutClient(AtomicClient):
    """Correct, but some calls time out — before or after taking effect."""

    def write(self, key: str, value: Any) -> None:
        roll = self.rng.random()
        if roll < 0.05:
            raise TimeoutError("timed out before the write reached the leader")
        if roll < 0.07:
            raise DefiniteFailure("refused before it was proposed")
        super().write(key, value)
        if roll < 0.12:
            raise TimeoutError("timed out after the write committed")


class StaleReplicaClient(AtomicClient):
    """The planted bug: a follower answers reads from its own, lagging state."""

    def read(self, key: str) -> Any:
        with self.system.lock:
            history = getattr(self.system, "log", {}).get(key, [None])
            # Serve a value a few writes old, as a follower that missed the latest would.
            return history[max(0, len(history) - 1 - self.rng.randint(0, 3))]

    def write(self, key: str, value: Any) -> None:
        super().write(key, value)
        with self.system.lock:
            log: dict[str, list[Any]] = self.system.__dict__.setdefault("log", {})
            log.setdefault(key, [None]).append(value)


class BlindCasClient(AtomicClient):
    """The planted bug: a compare-and-set that swaps without comparing."""

    def cas(self, key: str, expected: Any, new: Any) -> bool:
        with self.system.lock:
            self.system.values[key] = new
        return True


def register_history(client_type: type[AtomicClient], seed: int = 1) -> Recorder:
    system = AtomicRegisters()
    recorder = Recorder()
    run_register_workload(
        lambda slot: client_type(system, random.Random(seed * 100 + slot)),
        recorder,
        KEYS,
        LIMITS,
        seed=seed,
    )
    return recorder


def test_correct_registers_are_judged_linearizable(tmp_path: Path) -> None:
    recorder = register_history(AtomicClient)
    ops = operations(recorder.events())
    assert len(ops) == LIMITS.processes * LIMITS.ops_per_process
    assert check(ops).verdict is Verdict.LINEARIZABLE
    # The history survives the trip through JSON lines with the same verdict.
    path = tmp_path / "history.jsonl"
    dump_jsonl(recorder.events(), path)
    assert check(operations(load_jsonl(path))).verdict is Verdict.LINEARIZABLE


def test_timeouts_before_or_after_taking_effect_are_still_linearizable() -> None:
    ops = operations(register_history(TimingOutClient).events())
    assert any(op.status is Status.INFO for op in ops)
    assert check(ops).verdict is Verdict.LINEARIZABLE


def test_stale_follower_reads_are_caught() -> None:
    result = check(operations(register_history(StaleReplicaClient).events()))
    assert result.verdict is Verdict.NOT_LINEARIZABLE
    assert result.failures()[0].stuck_at is not None


def test_cas_without_comparison_is_caught() -> None:
    assert check(operations(register_history(BlindCasClient).events())).verdict is (
        Verdict.NOT_LINEARIZABLE
    )


class MemorySet:
    def __init__(self, lose_every: int = 0) -> None:
        self.elements: set[int] = set()
        self.lock = threading.Lock()
        self.lose_every = lose_every
        self.added = 0

    def add(self, element: int) -> None:
        with self.lock:
            self.added += 1
            if self.lose_every and self.added % self.lose_every == 0:
                return  # the planted bug: acknowledged, never stored
            self.elements.add(element)

    def read(self) -> list[int]:
        with self.lock:
            return sorted(self.elements)


def test_set_workload_on_a_correct_set_loses_nothing() -> None:
    system = MemorySet()
    recorder = Recorder()
    run_set_workload(lambda _slot: system, recorder, LIMITS)
    result = check_set(operations(recorder.events()))
    assert result.valid is True
    assert result.acknowledged == LIMITS.processes * LIMITS.ops_per_process


def test_set_workload_catches_acknowledged_adds_that_were_lost() -> None:
    system = MemorySet(lose_every=97)
    recorder = Recorder()
    run_set_workload(lambda _slot: system, recorder, LIMITS)
    result = check_set(operations(recorder.events()))
    assert result.valid is False
    assert len(result.lost) == (LIMITS.processes * LIMITS.ops_per_process) // 97
