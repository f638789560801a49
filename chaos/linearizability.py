"""A linearizability checker for register histories (Wing & Gong, Lowe; Porcupine's shape).

Owns the verdict on whether a history of reads, writes and compare-and-sets on registers could
have come from one register per key that takes each operation atomically at some instant
between its call and its return.

The search is Wing & Gong's backtracking over the calls and returns in time order, with the
improvements Porcupine (Athalye) takes from Lowe:

* Per-key partitioning: registers are independent, so each key is checked alone and the
  search is exponential only in the concurrency of one key.
* Memoisation: a configuration is the set of operations linearized so far (a bitmask) and
  the model state they lead to; a configuration already explored is never explored again.
* Just-linearized cache: the model step of an operation from a state is computed once and
  remembered, so backtracking over the same (operation, state) pairs costs a dictionary hit.

Operations with an unknown outcome (``info``: timed out) may have happened at any time after
their call, or never: their return is at infinity, after every other return, so the search
may linearize them anywhere after their call or leave them for the end, where they change
nothing that was observed. Failed operations (``fail``) certainly did not happen and are
left out, as Knossos does; so are reads with an unknown outcome, which observed nothing.

A search that exceeds its step or time limit answers ``UNKNOWN`` rather than hanging.

Must never: import a cluster, or treat "unknown" as "linearizable".
"""

from __future__ import annotations

import enum
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from chaos.history import Operation, Status

# The default search budget per key. A history from a few minutes of a few clients on a few
# keys needs a small fraction of it; a pathological one hits it and answers UNKNOWN.
DEFAULT_MAX_STEPS_PER_KEY = 2_000_000
DEFAULT_TIME_LIMIT_S = 30.0
# How often (in search steps) the clock is read.
_DEADLINE_CHECK_STEPS = 1024


class Verdict(enum.Enum):
    LINEARIZABLE = "yes"
    NOT_LINEARIZABLE = "no"
    UNKNOWN = "unknown"


@dataclass(slots=True, frozen=True)
class KeyResult:
    key: str
    verdict: Verdict
    operations: int
    steps: int
    # When not linearizable: the operations of the longest linearizable prefix the search
    # found, in linearization order, and the operation that could not follow it.
    longest_prefix: tuple[Operation, ...] = ()
    stuck_at: Operation | None = None


@dataclass(slots=True, frozen=True)
class CheckResult:
    verdict: Verdict
    keys: dict[str, KeyResult] = field(default_factory=dict)

    def failures(self) -> list[KeyResult]:
        return [r for r in self.keys.values() if r.verdict is Verdict.NOT_LINEARIZABLE]


class RegisterModel:
    """A register holding any hashable value, with read, write and compare-and-set.

    ``write``: input is the value. ``read``: output is the value read.
    ``cas``: input is ``[expected, new]``; an ``ok`` cas swapped, so the register held
    ``expected``. A cas that did not swap is reported ``fail`` and is left out.
    """

    OPS = frozenset({"read", "write", "cas"})

    def __init__(self, initial: Any = None) -> None:
        self.initial = initial

    def step(self, state: Any, op: str, input_: Any, output: Any, known: bool) -> tuple[bool, Any]:
        """Whether ``op`` may take effect in ``state``, and the state after it.

        ``known`` is false for an operation whose outcome is unknown: its output is not
        an observation.
        """
        if op == "write":
            return True, input_
        if op == "read":
            return (not known) or output == state, state
        if op == "cas":
            expected, new = input_
            if state != expected:
                # An unknown cas that found another value failed: it happened as a no-op.
                return not known, state
            return True, new
        raise ValueError(f"register has no operation {op!r}")


@dataclass(slots=True)
class _Entry:
    """A call or return in the doubly linked list the search walks and lifts entries from."""

    op_id: int
    is_call: bool
    match: _Entry | None = None  # a call's return entry
    prev: _Entry | None = None
    next: _Entry | None = None


def _relevant(op: Operation) -> bool:
    if op.status is Status.FAIL:
        return False
    return not (op.status is Status.INFO and op.op == "read")


def _build_list(ops: Sequence[Operation]) -> _Entry:
    """The sentinel head of the call/return list in time order.

    At one instant calls come before returns: operations that touch are treated as
    concurrent, which can only make the checker more lenient, never wrongly strict.
    """
    infinity = max((op.call_ns for op in ops), default=0) + 1
    timed: list[tuple[int, int, int, _Entry]] = []
    for op_id, op in enumerate(ops):
        call = _Entry(op_id, True)
        ret = _Entry(op_id, False)
        call.match = ret
        return_ns = infinity if op.return_ns is None else op.return_ns
        timed.append((op.call_ns, 0, op_id, call))
        timed.append((return_ns, 1, op_id, ret))
    timed.sort(key=lambda item: (item[0], item[1], item[2]))
    head = _Entry(-1, False)
    last = head
    for _, _, _, entry in timed:
        last.next = entry
        entry.prev = last
        last = entry
    return head


def _lift(call: _Entry) -> None:
    """Take a call and its return out of the list (the operation is linearized)."""
    assert call.prev is not None and call.match is not None
    call.prev.next = call.next
    if call.next is not None:
        call.next.prev = call.prev
    ret = call.match
    assert ret.prev is not None
    ret.prev.next = ret.next
    if ret.next is not None:
        ret.next.prev = ret.prev


def _unlift(call: _Entry) -> None:
    """Put back a call and its return, exactly where they were (undoing :func:`_lift`)."""
    ret = call.match
    assert ret is not None and ret.prev is not None and call.prev is not None
    ret.prev.next = ret
    if ret.next is not None:
        ret.next.prev = ret
    call.prev.next = call
    if call.next is not None:
        call.next.prev = call


def check_key(
    key: str,
    ops: Sequence[Operation],
    model: RegisterModel | None = None,
    max_steps: int = DEFAULT_MAX_STEPS_PER_KEY,
    deadline: float | None = None,
) -> KeyResult:
    """Decide whether the operations on one register are linearizable."""
    model = model or RegisterModel()
    ops = [op for op in ops if _relevant(op)]
    for op in ops:
        if op.op not in RegisterModel.OPS:
            raise ValueError(f"register has no operation {op.op!r}")
    head = _build_list(ops)

    # (linearized bitmask, state) configurations already explored from.
    explored: set[tuple[int, Any]] = set()
    # (op id, state) -> (ok, new state): the just-linearized cache of model steps.
    stepped: dict[tuple[int, Any], tuple[bool, Any]] = {}
    # The stack of linearized calls and the state before each.
    calls: list[tuple[_Entry, Any]] = []
    linearized = 0
    state = model.initial
    longest: list[int] = []
    stuck: int | None = None
    steps = 0

    entry = head.next
    while head.next is not None:
        steps += 1
        if steps > max_steps:
            return KeyResult(key, Verdict.UNKNOWN, len(ops), steps)
        if (
            deadline is not None
            and steps % _DEADLINE_CHECK_STEPS == 0
            and time.monotonic() > deadline
        ):
            return KeyResult(key, Verdict.UNKNOWN, len(ops), steps)
        assert entry is not None, "a return entry always ends the list while calls remain"
        if entry.is_call:
            op = ops[entry.op_id]
            memo_key = (entry.op_id, state)
            outcome = stepped.get(memo_key)
            if outcome is None:
                outcome = model.step(
                    state, op.op, op.input, op.output, known=op.status is Status.OK
                )
                stepped[memo_key] = outcome
            ok, new_state = outcome
            if ok:
                new_linearized = linearized | (1 << entry.op_id)
                configuration = (new_linearized, new_state)
                if configuration not in explored:
                    explored.add(configuration)
                    calls.append((entry, state))
                    state = new_state
                    linearized = new_linearized
                    _lift(entry)
                    entry = head.next
                    continue
            entry = entry.next
            continue
        # A return whose operation is not yet linearized: backtrack.
        if len(calls) >= len(longest):
            longest = [call.op_id for call, _ in calls]
            stuck = entry.op_id
        if not calls:
            return KeyResult(
                key,
                Verdict.NOT_LINEARIZABLE,
                len(ops),
                steps,
                longest_prefix=tuple(ops[i] for i in longest),
                stuck_at=None if stuck is None else ops[stuck],
            )
        call, state = calls.pop()
        linearized &= ~(1 << call.op_id)
        _unlift(call)
        entry = call.next
    return KeyResult(key, Verdict.LINEARIZABLE, len(ops), steps)


def check(
    ops: Iterable[Operation],
    model: RegisterModel | None = None,
    max_steps_per_key: int = DEFAULT_MAX_STEPS_PER_KEY,
    time_limit_s: float = DEFAULT_TIME_LIMIT_S,
) -> CheckResult:
    """Check every key's register on its own; the history is linearizable iff each key is.

    The verdict is ``NOT_LINEARIZABLE`` if any key is, else ``UNKNOWN`` if any key ran out of
    budget (steps, or the shared time limit), else ``LINEARIZABLE``.
    """
    by_key: dict[str, list[Operation]] = {}
    for op in ops:
        by_key.setdefault(op.key, []).append(op)
    deadline = time.monotonic() + time_limit_s
    results: dict[str, KeyResult] = {}
    for key in sorted(by_key):
        if time.monotonic() > deadline:
            results[key] = KeyResult(key, Verdict.UNKNOWN, len(by_key[key]), 0)
            continue
        results[key] = check_key(key, by_key[key], model, max_steps_per_key, deadline)
    verdicts = {result.verdict for result in results.values()}
    if Verdict.NOT_LINEARIZABLE in verdicts:
        verdict = Verdict.NOT_LINEARIZABLE
    elif Verdict.UNKNOWN in verdicts:
        verdict = Verdict.UNKNOWN
    else:
        verdict = Verdict.LINEARIZABLE
    return CheckResult(verdict, results)
