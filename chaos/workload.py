"""Client workloads that record histories: registers (read/write/cas) and sets (unique adds).

Owns the worker loops: many concurrent processes, each with at most one operation
outstanding, each operation recorded as an invoke before the call and exactly one
completion after it. A workload talks to the system through a small client protocol
(:class:`RegisterClient`, :class:`SetClient`), so the same loop drives an in-memory model in
tests and a real cluster in chaos runs.

How an exception is recorded: :class:`DefiniteFailure` means the operation certainly did not
take effect (``fail``); anything else (a timeout, a dropped connection, an unknown error) means
it may or may not have (``info``). A read that raises is ``fail`` — it changed nothing. A
process whose operation ended ``info`` is retired and replaced by a fresh process id, since its
operation may still be in flight.

Must never: run unbounded — every run has an operation budget and a deadline.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from chaos.history import EventType, Recorder

MAX_PROCESSES = 1024
JOIN_GRACE_S = 30.0
KEEP_GOING_POLL_S = 0.1


class DefiniteFailure(Exception):
    """The operation certainly did not take effect (e.g. refused before it was proposed)."""


class RegisterClient(Protocol):
    def read(self, key: str) -> Any: ...
    def write(self, key: str, value: Any) -> None: ...
    def cas(self, key: str, expected: Any, new: Any) -> bool: ...


class SetClient(Protocol):
    def add(self, element: int) -> None: ...
    def read(self) -> Iterable[int]: ...


@dataclass(slots=True, frozen=True)
class WorkloadLimits:
    processes: int = 5
    ops_per_process: int = 100
    time_limit_s: float = 60.0
    """The longest the workload runs."""
    min_time_s: float = 0.0
    keep_going: Callable[[], bool] | None = None
    """When given, the workload stops after ``min_time_s`` once ``keep_going()`` answers
    false (asked every ``KEEP_GOING_POLL_S``), and at ``time_limit_s`` at the latest: a
    chaos run's workload goes on while a fault window is still running."""

    def __post_init__(self) -> None:
        if not 0 < self.processes <= MAX_PROCESSES:
            raise ValueError(f"processes must be within 1..{MAX_PROCESSES}")


def _outcome(error: BaseException, is_read: bool) -> EventType:
    if is_read or isinstance(error, DefiniteFailure):
        return EventType.FAIL
    return EventType.INFO


def _run_workers(
    limits: WorkloadLimits, body: Callable[[int, float, threading.Event], None]
) -> None:
    deadline = time.monotonic() + limits.time_limit_s
    stop = threading.Event()
    errors: list[BaseException] = []

    def worker(slot: int) -> None:
        try:
            body(slot, deadline, stop)
        except BaseException as error:  # recorded and re-raised by the caller's thread
            errors.append(error)
            stop.set()

    threads = [
        threading.Thread(target=worker, args=(slot,), name=f"chaos-worker-{slot}", daemon=True)
        for slot in range(limits.processes)
    ]
    for thread in threads:
        thread.start()
    if limits.keep_going is not None:
        soonest = deadline - limits.time_limit_s + limits.min_time_s
        while time.monotonic() < deadline and any(thread.is_alive() for thread in threads):
            if time.monotonic() >= soonest and not limits.keep_going():
                break
            if stop.wait(KEEP_GOING_POLL_S):
                break
        stop.set()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + JOIN_GRACE_S)
    stop.set()
    if any(thread.is_alive() for thread in threads):
        raise TimeoutError("workload workers did not finish within their deadline")
    if errors:
        raise errors[0]


def run_register_workload(
    make_client: Callable[[int], RegisterClient],
    recorder: Recorder,
    keys: Sequence[str],
    limits: WorkloadLimits,
    seed: int = 0,
) -> None:
    """Random reads, writes of unique values and compare-and-sets over ``keys``.

    ``make_client(slot)`` gives each worker its own client.
    """

    def body(slot: int, deadline: float, stop: threading.Event) -> None:
        rng = random.Random(seed * MAX_PROCESSES + slot)
        client = make_client(slot)
        process = slot
        counter = 0
        last_seen: dict[str, Any] = {}
        for _ in range(limits.ops_per_process):
            if stop.is_set() or time.monotonic() > deadline:
                return
            key = rng.choice(keys)
            kind = rng.choices(["read", "write", "cas"], weights=[2, 1, 1])[0]
            counter += 1
            value = slot * 1_000_000 + counter  # unique across the whole run
            if kind == "read":
                recorder.invoke(process, key, "read")
                try:
                    observed = client.read(key)
                except Exception as error:
                    recorder.complete(process, key, "read", _outcome(error, True))
                    continue
                last_seen[key] = observed
                recorder.complete(process, key, "read", EventType.OK, observed)
                continue
            argument: Any = value if kind == "write" else [last_seen.get(key), value]
            recorder.invoke(process, key, kind, argument)
            try:
                if kind == "write":
                    client.write(key, value)
                    swapped = True
                else:
                    swapped = client.cas(key, argument[0], value)
            except Exception as error:
                outcome = _outcome(error, False)
                recorder.complete(process, key, kind, outcome, argument)
                if outcome is EventType.INFO:
                    process += limits.processes  # retire: the call may still be in flight
                continue
            if swapped:
                last_seen[key] = value
            recorder.complete(
                process, key, kind, EventType.OK if swapped else EventType.FAIL, argument
            )

    _run_workers(limits, body)


def run_set_workload(
    make_client: Callable[[int], SetClient],
    recorder: Recorder,
    limits: WorkloadLimits,
    final_read_attempts: int = 10,
    final_read_backoff_s: float = 0.2,
) -> None:
    """Unique adds from every worker, then one final read of the whole set.

    The final read is retried a bounded number of times (a cluster may still be healing).
    """

    def body(slot: int, deadline: float, stop: threading.Event) -> None:
        client = make_client(slot)
        process = slot
        for counter in range(limits.ops_per_process):
            if stop.is_set() or time.monotonic() > deadline:
                return
            element = slot * 1_000_000 + counter
            recorder.invoke(process, "set", "add", element)
            try:
                client.add(element)
            except Exception as error:
                outcome = _outcome(error, False)
                recorder.complete(process, "set", "add", outcome, element)
                if outcome is EventType.INFO:
                    process += limits.processes
                continue
            recorder.complete(process, "set", "add", EventType.OK, element)

    _run_workers(limits, body)
    reader = make_client(limits.processes)
    process = -1
    for attempt in range(final_read_attempts):
        recorder.invoke(process, "set", "read")
        try:
            elements = sorted(reader.read())
        except Exception:
            recorder.complete(process, "set", "read", EventType.FAIL)
            time.sleep(final_read_backoff_s * (attempt + 1))
            continue
        recorder.complete(process, "set", "read", EventType.OK, elements)
        return
