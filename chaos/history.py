"""Recorded client histories: the events a workload saw, and the operations they pair into.

Owns the history format that every checker reads. A workload appends one ``invoke`` event
before it sends a request and exactly one completion after: ``ok`` (it happened, with the
observed value), ``fail`` (it certainly did not happen) or ``info`` (the outcome is unknown:
a timeout, a dropped connection). Histories are stored as JSON lines, one event a line::

    {"type": "invoke", "process": 3, "key": "r1", "op": "write", "value": 7, "time_ns": 12}

Times are nanoseconds from one clock per history (``time.monotonic_ns`` by default): only
their order matters to the checkers, never their absolute value.

Must never: talk to a cluster, or decide anything about correctness (that is the checkers').
"""

from __future__ import annotations

import enum
import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# A history larger than this is a runaway workload, not a test.
MAX_HISTORY_EVENTS = 2_000_000


class EventType(enum.Enum):
    INVOKE = "invoke"
    OK = "ok"
    FAIL = "fail"
    INFO = "info"


class HistoryError(ValueError):
    """A history that breaks the format: a completion without an invoke, overlapping calls."""


@dataclass(slots=True, frozen=True)
class Event:
    """One line of a history."""

    type: EventType
    process: int
    key: str
    op: str
    value: Any
    time_ns: int

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.type.value,
            "process": self.process,
            "key": self.key,
            "op": self.op,
            "value": self.value,
            "time_ns": self.time_ns,
        }

    @staticmethod
    def from_json(data: dict[str, Any]) -> Event:
        try:
            return Event(
                type=EventType(data["type"]),
                process=int(data["process"]),
                key=str(data["key"]),
                op=str(data["op"]),
                value=data.get("value"),
                time_ns=int(data["time_ns"]),
            )
        except (KeyError, ValueError, TypeError) as error:
            raise HistoryError(f"bad history event {data!r}: {error}") from error


class Status(enum.Enum):
    OK = "ok"
    FAIL = "fail"
    # The outcome is unknown: it may have taken effect at any time after its call.
    INFO = "info"


@dataclass(slots=True, frozen=True)
class Operation:
    """An invoke paired with its completion.

    ``input`` is what the client asked (the written value; ``[expected, new]`` for a
    compare-and-set), ``output`` what it observed (the value a read returned). An ``INFO``
    operation has ``return_ns`` of ``None``: it may take effect at any time after its call,
    or never.
    """

    process: int
    key: str
    op: str
    input: Any
    output: Any
    call_ns: int
    return_ns: int | None
    status: Status
    index: int = 0

    def __post_init__(self) -> None:
        if (self.return_ns is None) != (self.status is Status.INFO):
            raise HistoryError(f"only an info operation has no return time: {self}")


def operations(events: Iterable[Event]) -> list[Operation]:
    """Pair each invoke with its process's next completion, in invoke order.

    An invoke that never completes (the history ended first) is an ``INFO`` operation.
    A process may have at most one operation outstanding.
    """
    pending: dict[int, tuple[int, Event]] = {}
    paired: dict[int, Operation] = {}
    invoke_count = 0
    for event in events:
        if event.type is EventType.INVOKE:
            if event.process in pending:
                raise HistoryError(f"process {event.process} invoked twice without completing")
            pending[event.process] = (invoke_count, event)
            invoke_count += 1
            continue
        if event.process not in pending:
            raise HistoryError(f"process {event.process} completed {event.op} without invoking")
        order, invoke = pending.pop(event.process)
        if (event.key, event.op) != (invoke.key, invoke.op):
            raise HistoryError(
                f"process {event.process} invoked {invoke.op} on {invoke.key!r} but completed "
                f"{event.op} on {event.key!r}"
            )
        if event.time_ns < invoke.time_ns:
            raise HistoryError(f"process {event.process} completed before it invoked")
        status = Status(event.type.value)
        paired[order] = Operation(
            process=invoke.process,
            key=invoke.key,
            op=invoke.op,
            input=invoke.value,
            output=event.value if status is Status.OK else None,
            call_ns=invoke.time_ns,
            return_ns=None if status is Status.INFO else event.time_ns,
            status=status,
            index=order,
        )
    for order, invoke in pending.values():
        paired[order] = Operation(
            process=invoke.process,
            key=invoke.key,
            op=invoke.op,
            input=invoke.value,
            output=None,
            call_ns=invoke.time_ns,
            return_ns=None,
            status=Status.INFO,
            index=order,
        )
    return [paired[order] for order in sorted(paired)]


def events_of(ops: Iterable[Operation]) -> list[Event]:
    """The events that pair into ``ops`` (inverse of :func:`operations`), in time order.

    An ``INFO`` operation's completion is written at the end of the history.
    """
    timed: list[tuple[int, int, Event]] = []
    end_ns = 0
    for op in ops:
        timed.append(
            (
                op.call_ns,
                0,
                Event(EventType.INVOKE, op.process, op.key, op.op, op.input, op.call_ns),
            )
        )
        end_ns = max(end_ns, op.call_ns)
        if op.return_ns is not None:
            value = op.output if op.status is Status.OK else op.input
            kind = EventType.OK if op.status is Status.OK else EventType.FAIL
            timed.append((op.return_ns, 1, Event(kind, op.process, op.key, op.op, value, 0)))
            end_ns = max(end_ns, op.return_ns)
    for op in ops:
        if op.return_ns is None:
            info = Event(EventType.INFO, op.process, op.key, op.op, op.input, end_ns + 1)
            timed.append((end_ns + 1, 2, info))
    # Completions sort after invokes at the same instant; their own time is restored here.
    timed.sort(key=lambda item: (item[0], item[1]))
    out: list[Event] = []
    for at_ns, _, event in timed:
        if event.time_ns != at_ns:
            event = Event(event.type, event.process, event.key, event.op, event.value, at_ns)
        out.append(event)
    return out


def dump_jsonl(events: Iterable[Event], path: Path) -> None:
    with path.open("w", encoding="utf-8") as out:
        for event in events:
            out.write(json.dumps(event.to_json(), separators=(",", ":")) + "\n")


def load_jsonl(path: Path) -> list[Event]:
    events: list[Event] = []
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            if len(events) >= MAX_HISTORY_EVENTS:
                raise HistoryError(f"{path}: more than {MAX_HISTORY_EVENTS} events")
            try:
                data = json.loads(line)
            except json.JSONDecodeError as error:
                raise HistoryError(f"{path}:{number}: {error}") from error
            events.append(Event.from_json(data))
    return events


class Recorder:
    """A thread-safe, bounded history that workers append to as they call and complete.

    >>> history = Recorder()
    >>> history.invoke(0, "r1", "write", 5)
    >>> history.complete(0, "r1", "write", EventType.OK, 5)
    """

    def __init__(
        self,
        clock_ns: Callable[[], int] = time.monotonic_ns,
        max_events: int = MAX_HISTORY_EVENTS,
    ) -> None:
        self._clock_ns = clock_ns
        self._max_events = max_events
        self._events: list[Event] = []
        self._lock = threading.Lock()

    def _append(self, kind: EventType, process: int, key: str, op: str, value: Any) -> None:
        with self._lock:
            if len(self._events) >= self._max_events:
                raise HistoryError(f"history is full ({self._max_events} events)")
            # The clock is read under the lock so that file order is time order.
            event = Event(kind, process, key, op, value, self._clock_ns())
            self._events.append(event)

    def invoke(self, process: int, key: str, op: str, value: Any = None) -> None:
        self._append(EventType.INVOKE, process, key, op, value)

    def complete(self, process: int, key: str, op: str, kind: EventType, value: Any = None) -> None:
        if kind is EventType.INVOKE:
            raise ValueError("complete() takes ok, fail or info")
        self._append(kind, process, key, op, value)

    def events(self) -> list[Event]:
        with self._lock:
            return list(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events())

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)
