"""Test-only failpoints: planted faults and bugs that a chaos harness switches on.

Owns the registry: ``QUIVER_FAILPOINTS`` in the environment of a node process, read once at
import, as a comma-separated list of ``name`` or ``name=value``. ``1`` alone switches the
admin failpoints on (``Admin.Partition``) and arms nothing. The harness (``quiver chaos
run``, the tests) sets it when it spawns node processes; no configuration file can.

When the variable is absent, :data:`ACTIVE` is ``None`` and every hook in production code is
one falsy module-attribute check (``if failpoints.ACTIVE and ...``): nothing else runs.

Names (the hook that reads each is named in :data:`KNOWN`):

* ``follower-local-read`` — planted bug: a follower answers a linearizable read from its own
  applied state instead of asking the leader for a read index (stale reads).
* ``ack-before-commit`` — planted bug: the leader answers a write as soon as it proposed it,
  before a quorum (or even its own disk) has the entry (lost writes when it loses power or
  leadership).
* ``drop-tail=N`` — planted bug: a node that restarts drops the last ``N`` entries of its
  log, though it acknowledged them, and rebuilds its graph from what is left (a disk that
  lied about fsync). Lost writes when the whole cluster restarts.
* ``fsync-error=K`` — the ``K``-th log fdatasync of the process (1-based) fails with EIO, and
  every one after it; the node must stop, not carry on.
* ``store-write-error=K`` — the ``K``-th write batch of the graph store (RocksDB) in the
  process fails as RocksDB reports it (a plain ``Exception``), and every one after it; the
  node must stop with one line, not carry on or die with a traceback.
* ``torn-write=K`` — at the ``K``-th log fdatasync, the last write is torn (its last bytes
  never reach the disk) and the process dies at once, as in a power cut mid-write.
* ``clock-rate=R`` — this node's clock runs ``R`` times as fast (``0.5``: half as fast); its
  ticks (elections, heartbeats, check-quorum, leases) follow it.

Must never: be switched on by anything but the environment of a test harness, or cost more
than an attribute check when off.
"""

from __future__ import annotations

import errno
import os
import shutil
import threading
from typing import TYPE_CHECKING, Final

from raft.types import HardState

if TYPE_CHECKING:
    from store.node_store import NodeStore

ENV: Final = "QUIVER_FAILPOINTS"

KNOWN: Final = {
    "follower-local-read": "cluster.node.Node.read",
    "ack-before-commit": "cluster.node.Node.write",
    "drop-tail": "cluster.node.Node._open_store",
    "fsync-error": "store.raftlog.DurableLog._sync_to",
    "store-write-error": "store.graph.GraphStore._write",
    "torn-write": "store.raftlog.DurableLog._sync_to",
    "clock-rate": "cluster.node.Node._ticker",
}
MAX_DROP_TAIL: Final = 100_000
MIN_CLOCK_RATE: Final = 0.1
MAX_CLOCK_RATE: Final = 10.0
TORN_BYTES: Final = 7
"""How many bytes a torn write loses (fewer than a record frame, so the tail is partial)."""
TORN_EXIT_STATUS: Final = 86


class FailpointError(ValueError):
    """A failpoint specification that names an unknown failpoint or a bad value."""


def parse(spec: str | None) -> dict[str, str] | None:
    """``None`` when off; otherwise the armed failpoints by name (``{}``: enabled, none)."""
    if spec is None or not spec.strip():
        return None
    armed: dict[str, str] = {}
    for item in spec.split(","):
        item = item.strip()
        if not item or item == "1":
            continue
        name, _, value = item.partition("=")
        if name not in KNOWN:
            raise FailpointError(f"unknown failpoint {name!r} (known: {', '.join(KNOWN)})")
        armed[name] = value
    _check(armed)
    return armed


def _check(armed: dict[str, str]) -> None:
    for name in ("drop-tail", "fsync-error", "store-write-error", "torn-write"):
        if name in armed:
            try:
                count = int(armed[name] or "1")
            except ValueError:
                raise FailpointError(f"{name} takes a whole number, not {armed[name]!r}") from None
            if not 1 <= count <= MAX_DROP_TAIL:
                raise FailpointError(f"{name} must be within 1..{MAX_DROP_TAIL}")
    if "clock-rate" in armed:
        try:
            rate = float(armed["clock-rate"])
        except ValueError:
            raise FailpointError(
                f"clock-rate takes a number, not {armed['clock-rate']!r}"
            ) from None
        if not MIN_CLOCK_RATE <= rate <= MAX_CLOCK_RATE:
            raise FailpointError(f"clock-rate must be within {MIN_CLOCK_RATE}..{MAX_CLOCK_RATE}")


ACTIVE: dict[str, str] | None = parse(os.environ.get(ENV))
"""The armed failpoints of this process; ``None`` (the production case) when switched off."""


def enabled() -> bool:
    return ACTIVE is not None


def value(name: str, default: str = "") -> str | None:
    """The armed value of ``name`` (``default`` when armed without one); ``None`` if not armed."""
    if ACTIVE is None or name not in ACTIVE:
        return None
    return ACTIVE[name] or default


def clock_rate() -> float:
    rate = value("clock-rate")
    return 1.0 if rate is None else float(rate)


class _SyncCounter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def next(self) -> int:
        with self._lock:
            self.count += 1
            return self.count


_SYNCS = _SyncCounter()
_STORE_WRITES = _SyncCounter()


def before_log_sync(fd: int, size: int) -> None:
    """Hook in the log's fdatasync path (``size``: the segment's written length)."""
    fail_at = value("fsync-error", "1")
    tear_at = value("torn-write", "1")
    if fail_at is None and tear_at is None:
        return
    count = _SYNCS.next()
    if tear_at is not None and count >= int(tear_at):
        # The write reached the page cache only in part, then the power went.
        os.ftruncate(fd, max(0, size - TORN_BYTES))
        os.fsync(fd)
        os._exit(TORN_EXIT_STATUS)
    if fail_at is not None and count >= int(fail_at):
        raise OSError(errno.EIO, "fdatasync failed (failpoint fsync-error)")


def before_store_write() -> None:
    """Hook before each RocksDB write batch of the graph store."""
    fail_at = value("store-write-error", "1")
    if fail_at is not None and _STORE_WRITES.next() >= int(fail_at):
        # What rocksdict raises for a failed write: a plain Exception with RocksDB's status.
        raise Exception("IO error: No space left on device (failpoint store-write-error)")


def drop_tail(store: NodeStore) -> int:
    """Planted bug (c), at a node's start: forget the last ``drop-tail`` log entries although
    they were acknowledged, and rebuild the graph from what the log still holds (from the
    last snapshot file, or from empty when no snapshot was taken). The new last index."""
    from store.graph import GraphStore
    from store.raftlog import DurableLog

    count = int(value("drop-tail", "1") or 1)
    log: DurableLog = store.log
    snapshot = log.snapshot()
    with log._write_lock, log._state_lock:
        floor = max(log._dummy_index, snapshot.metadata.index)
        keep_to = max(floor, log._last() - count)
        cut = keep_to - log._dummy_index
        del log._terms[cut:]
        del log._entry_records[cut:]
        hard = log._hard_state
        log._hard_state = HardState(hard.term, hard.vote, min(hard.commit, keep_to))
    if snapshot.data:
        store.install_snapshot_file(store.snapshot_path(snapshot))
    else:
        path = store.data_dir / "graph"
        store.graph.close()
        shutil.rmtree(path)
        store.graph = GraphStore(path, store.cipher)
    return keep_to
