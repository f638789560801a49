"""Checkers for the set and bank workloads: lost writes, phantoms, and conserved totals.

Owns the verdicts that need no search: a set's final read against the adds that were
attempted, and a bank's reads against the total that transfers must conserve.

Must never: talk to a cluster, or count an add whose outcome is unknown as lost.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chaos.history import Operation, Status


@dataclass(slots=True, frozen=True)
class SetResult:
    """The set workload's verdict.

    ``lost``: acknowledged adds missing from the final read. ``unexpected``: elements in the
    final read that no add ever attempted. ``failed_present``: elements whose add certainly
    failed, yet present. ``recovered``: adds of unknown outcome that turned out present.
    """

    valid: bool | None
    attempted: int
    acknowledged: int
    lost: frozenset[Hashable] = frozenset()
    unexpected: frozenset[Hashable] = frozenset()
    failed_present: frozenset[Hashable] = frozenset()
    recovered: frozenset[Hashable] = frozenset()
    reason: str = ""

    @property
    def anomalies(self) -> int:
        return len(self.lost) + len(self.unexpected) + len(self.failed_present)


def check_set(ops: Iterable[Operation], add_op: str = "add", read_op: str = "read") -> SetResult:
    """Judge unique adds against the last completed read of the whole set.

    ``valid`` is ``None`` (unknown) when no read completed: nothing can be said then.
    """
    attempted: set[Hashable] = set()
    acknowledged: set[Hashable] = set()
    failed: set[Hashable] = set()
    final_read: Operation | None = None
    for op in ops:
        if op.op == add_op:
            element = op.input
            if element in attempted:
                raise ValueError(f"set workload added {element!r} twice; adds must be unique")
            attempted.add(element)
            if op.status is Status.OK:
                acknowledged.add(element)
            elif op.status is Status.FAIL:
                failed.add(element)
        elif op.op == read_op and op.status is Status.OK:
            assert op.return_ns is not None
            if final_read is None or (final_read.return_ns or 0) < op.return_ns:
                final_read = op
    if final_read is None:
        return SetResult(None, len(attempted), len(acknowledged), reason="no read completed")
    present = set(final_read.output)
    lost = acknowledged - present
    unexpected = present - attempted
    failed_present = present & failed
    recovered = (present & attempted) - acknowledged - failed
    return SetResult(
        valid=not (lost or unexpected or failed_present),
        attempted=len(attempted),
        acknowledged=len(acknowledged),
        lost=frozenset(lost),
        unexpected=frozenset(unexpected),
        failed_present=frozenset(failed_present),
        recovered=frozenset(recovered),
    )


@dataclass(slots=True, frozen=True)
class BankAnomaly:
    read: Operation
    kind: str  # "wrong-total", "negative", "missing-accounts", "unknown-accounts"
    detail: str


@dataclass(slots=True, frozen=True)
class BankResult:
    valid: bool
    reads: int
    anomalies: tuple[BankAnomaly, ...] = field(default_factory=tuple)


def check_bank(
    ops: Iterable[Operation],
    accounts: Iterable[Hashable],
    total: int,
    read_op: str = "read",
    allow_negative: bool = False,
) -> BankResult:
    """Every completed read of all accounts sees exactly ``total`` and only known accounts.

    Transfers themselves are not judged here: whatever their outcomes, a serializable
    history's snapshots all conserve the total, so one read that does not is an anomaly.
    """
    account_set = set(accounts)
    anomalies: list[BankAnomaly] = []
    reads = 0
    for op in ops:
        if op.op != read_op or op.status is not Status.OK:
            continue
        reads += 1
        balances: Mapping[Any, int] = op.output
        seen = set(balances)
        if seen - account_set:
            anomalies.append(
                BankAnomaly(op, "unknown-accounts", f"{sorted(map(str, seen - account_set))}")
            )
        if account_set - seen:
            anomalies.append(
                BankAnomaly(op, "missing-accounts", f"{sorted(map(str, account_set - seen))}")
            )
        observed = sum(balances.values())
        if observed != total:
            anomalies.append(BankAnomaly(op, "wrong-total", f"{observed} != {total}"))
        if not allow_negative:
            negative = {str(a): b for a, b in balances.items() if b < 0}
            if negative:
                anomalies.append(BankAnomaly(op, "negative", f"{negative}"))
    return BankResult(not anomalies, reads, tuple(anomalies))
