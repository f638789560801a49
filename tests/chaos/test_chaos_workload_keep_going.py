"""A chaos run's workload goes on past its minimum time while the run asks it to (a fault
window still running), and stops at its time limit all the same."""

from __future__ import annotations

import threading
from typing import Any

from chaos.history import Recorder, operations
from chaos.workload import WorkloadLimits, run_register_workload

STOPPED_WITHIN_S = 30.0


class Registers:
    """A correct in-memory register per key (one lock), counting completed operations."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.done = 0

    def _count(self) -> None:
        self.done += 1

    def read(self, key: str) -> Any:
        with self.lock:
            self._count()
            return self.values.get(key)

    def write(self, key: str, value: Any) -> None:
        with self.lock:
            self._count()
            self.values[key] = value

    def cas(self, key: str, expected: Any, new: Any) -> bool:
        with self.lock:
            self._count()
            if self.values.get(key) != expected:
                return False
            self.values[key] = new
            return True


def _ok_ops(recorder: Recorder) -> int:
    return sum(1 for op in operations(recorder.events()) if op.status.value == "ok")


def test_the_workload_goes_on_past_its_minimum_time_until_told_to_stop() -> None:
    registers = Registers()
    recorder = Recorder()
    wanted = 400
    limits = WorkloadLimits(
        processes=3,
        ops_per_process=1_000_000,
        time_limit_s=120.0,
        min_time_s=0.0,
        keep_going=lambda: registers.done < wanted,
    )
    workload = threading.Thread(
        target=run_register_workload,
        args=(lambda _slot: registers, recorder, ["k"], limits),
        daemon=True,
    )
    workload.start()
    # It does not stop at its minimum time (0 s) but once keep_going says no, long before
    # its time limit of two minutes.
    workload.join(STOPPED_WITHIN_S)
    assert not workload.is_alive(), "the workload did not stop when keep_going said no"
    assert registers.done >= wanted
    assert _ok_ops(recorder) >= wanted


def test_the_workload_stops_at_its_time_limit_though_asked_to_keep_going() -> None:
    registers = Registers()
    recorder = Recorder()
    limits = WorkloadLimits(
        processes=2,
        ops_per_process=1_000_000,
        time_limit_s=0.5,
        min_time_s=0.1,
        keep_going=lambda: True,
    )
    run_register_workload(lambda _slot: registers, recorder, ["k"], limits)
    assert registers.done > 0
