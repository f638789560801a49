"""``quiver bench store``: what durability and encryption cost, measured in one run.

Reports durable Raft-log appends per second (single entries and batches of 100, 100-byte
and 4 KiB entries) beside raw ``rocksdict`` synced writes of the same shape measured in
the same run, and their ratio; write-set apply rate; point reads and one-hop expansions per
second on a generated graph (100,000 nodes and 500,000 relationships by default) with
encryption on and with it off. A benchmark reports figures; it asserts nothing.

Must never: run as part of the tests, or leave its scratch directories behind.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rocksdict import Options, Rdict, WriteBatch, WriteOptions

from raft.types import Entry, HardState
from store.crypto import Cipher, Keyring, PlaintextCipher
from store.graph import GraphStore
from store.raftlog import DurableLog
from store.values import Value
from store.view import Direction
from store.writeset import CreateNode, CreateRelationship, Operation, WriteSet

BATCH_ENTRIES = 100
LABELS = ("Person", "Company", "City")
TYPES = ("KNOWS", "WORKS_AT", "LIVES_IN")
BUILD_OPERATIONS_PER_WRITE_SET = 5_000
BURST_ROUNDS = 6
READ_ROUNDS = 10


@dataclass(frozen=True, slots=True)
class BenchConfig:
    nodes: int = 100_000
    relationships: int = 500_000
    single_appends: int = 1_000
    batch_appends: int = 200
    apply_write_sets: int = 2_000
    reads: int = 40_000
    expansions: int = 10_000
    seed: int = 1


def _rate(count: int, run: Callable[[], None]) -> float:
    start = time.perf_counter()
    run()
    return count / (time.perf_counter() - start)


# -- the log against raw rocksdict -----------------------------------------------------------


class _DurableLogWriter:
    """Appends through DurableLog.save, one fdatasync per call (encrypted)."""

    def __init__(self, work: Path, name: str, size: int, batch: int) -> None:
        self._log = DurableLog(work / f"log-{name}", Keyring(work / f"keys-{name}", os.urandom(32)))
        self._payload = os.urandom(size)
        self._batch = batch
        self._index = 1
        self._calls: list[tuple[list[Entry], HardState]] = []

    def prepare(self, calls: int) -> None:
        """Build the next `calls` saves' inputs, outside the timed part: the Raft core hands
        the log ready-made entries, as the baseline gets its ready-made keys and values."""
        self._calls = []
        for _ in range(calls):
            first = self._index
            entries = [
                Entry(term=1, index=first + i, data=self._payload) for i in range(self._batch)
            ]
            self._calls.append((entries, HardState(term=1, vote=1, commit=first)))
            self._index += self._batch

    def burst(self) -> None:
        save = self._log.save
        for entries, hard_state in self._calls:
            save(entries, hard_state, sync=True)

    def close(self) -> None:
        self._log.close()


class _RawRocksWriter:
    """The baseline: raw rocksdict synced writes of the same shape (no encryption)."""

    def __init__(self, work: Path, name: str, size: int, batch: int, flush_wal: bool) -> None:
        options = Options(raw_mode=True)
        options.create_if_missing(True)
        self._db = Rdict(str(work / f"raw-{name}"), options)
        self._options = WriteOptions()
        self._options.sync = not flush_wal
        self._flush_wal = flush_wal
        self._payload = os.urandom(size)
        self._batch = batch
        self._key = 0
        self._calls: list[list[bytes]] = []

    def prepare(self, calls: int) -> None:
        """Build the next `calls` writes' keys, outside the timed part."""
        self._calls = []
        for _ in range(calls):
            keys = [(self._key + i).to_bytes(8, "big") for i in range(self._batch)]
            self._calls.append(keys)
            self._key += self._batch

    def burst(self) -> None:
        payload = self._payload
        for keys in self._calls:
            write_batch = WriteBatch(raw_mode=True)
            for key in keys:
                write_batch.put(key, payload)
            self._db.write(write_batch, self._options)
            if self._flush_wal:
                self._db.flush_wal(True)

    def close(self) -> None:
        self._db.close()


def _append_rates(work: Path, size: int, batch: int, calls: int) -> tuple[float, float, float]:
    """Best entries/s of (durable log, raw rocksdict sync, rocksdict + flush_wal), measured
    in interleaved bursts so that a noisy disk hits all three alike."""
    name = f"{size}-{batch}"
    writers: tuple[_DurableLogWriter | _RawRocksWriter, ...] = (
        _DurableLogWriter(work, name, size, batch),
        _RawRocksWriter(work, name + "-sync", size, batch, flush_wal=False),
        _RawRocksWriter(work, name + "-wal", size, batch, flush_wal=True),
    )
    per_burst = max(1, calls // BURST_ROUNDS)
    best = [0.0, 0.0, 0.0]
    try:
        for round_number in range(BURST_ROUNDS):
            order = list(enumerate(writers))
            if round_number % 2:
                order.reverse()
            for position, writer in order:
                writer.prepare(per_burst)
                start = time.perf_counter()
                writer.burst()
                rate = per_burst * batch / (time.perf_counter() - start)
                best[position] = max(best[position], rate)
    finally:
        for writer in writers:
            writer.close()
    return best[0], best[1], best[2]


# -- the graph -------------------------------------------------------------------------------


def _build(graph: GraphStore, config: BenchConfig) -> float:
    """Generate the graph; returns operations applied per second."""
    rng = random.Random(config.seed)
    operations: list[Operation] = []
    index = graph.applied_index()
    applied = 0

    def flush() -> None:
        nonlocal index, operations, applied
        if operations:
            index += 1
            graph.apply(WriteSet(tuple(operations)), index)
            applied += len(operations)
            operations = []

    start = time.perf_counter()
    for node_id in range(config.nodes):
        node_props: tuple[tuple[str, Value], ...] = (
            ("name", f"person-{node_id}"),
            ("age", rng.randint(0, 99)),
        )
        operations.append(CreateNode(node_id, (LABELS[node_id % 3],), node_props))
        if len(operations) >= BUILD_OPERATIONS_PER_WRITE_SET:
            flush()
    flush()
    for rel_id in range(config.relationships):
        start_node = rel_id % config.nodes
        end_node = rng.randrange(config.nodes)
        props = (("since", 2000 + rel_id % 25),)
        operations.append(
            CreateRelationship(rel_id, TYPES[rel_id % 3], start_node, end_node, props)
        )
        if len(operations) >= BUILD_OPERATIONS_PER_WRITE_SET:
            flush()
    flush()
    return applied / (time.perf_counter() - start)


def _apply_rate(work: Path, cipher: Cipher, config: BenchConfig) -> tuple[float, float]:
    """Small write sets (a node, a relationship, a property update) applied per second."""
    graph = GraphStore(work / f"apply-{cipher.encrypts}", cipher)
    graph.apply(WriteSet((CreateNode(0, ("Person",), ()),)), 1)
    count = config.apply_write_sets

    def run() -> None:
        for i in range(1, count + 1):
            ops: tuple[Operation, ...] = (
                CreateNode(i, ("Person",), (("name", f"p{i}"), ("age", i % 90))),
                CreateRelationship(i, "KNOWS", i, i - 1, (("since", 2020),)),
            )
            graph.apply(WriteSet(ops), i + 1)

    rate = _rate(count, run)
    graph.close()
    return rate, rate * 2


def _read_rates(
    graphs: list[GraphStore], config: BenchConfig, rounds: int = READ_ROUNDS
) -> list[tuple[float, float, float]]:
    """Best (point reads/s, expansions/s, ids-only expansions/s) per graph over `rounds`
    interleaved bursts.

    Interleaving and taking the best burst keeps a noisy neighbour (other processes on the
    machine) from landing on one configuration only, which would fake a ratio.
    """
    for graph in graphs:
        graph.warm_up()
    rng = random.Random(config.seed + 1)
    per_round_reads = max(1, config.reads // rounds)
    per_round_hops = max(1, config.expansions // rounds)
    best = [(0.0, 0.0, 0.0) for _ in graphs]
    for round_number in range(rounds):
        read_ids = [rng.randrange(config.nodes) for _ in range(per_round_reads)]
        hop_ids = [rng.randrange(config.nodes) for _ in range(per_round_hops)]
        # Alternate who goes first: neither configuration always inherits the other's
        # warm (or trashed) caches.
        order = list(enumerate(graphs))
        if round_number % 2:
            order.reverse()
        for position, graph in order:

            def reads(graph: GraphStore = graph, read_ids: list[int] = read_ids) -> None:
                for node_id in read_ids:
                    graph.node(node_id)

            def hops(graph: GraphStore = graph, hop_ids: list[int] = hop_ids) -> None:
                for node_id in hop_ids:
                    for _ in graph.relationships(node_id, Direction.OUTGOING):
                        pass

            def id_hops(graph: GraphStore = graph, hop_ids: list[int] = hop_ids) -> None:
                for node_id in hop_ids:
                    for _ in graph.relationship_ends(node_id, Direction.OUTGOING):
                        pass

            rates = (
                _rate(len(read_ids), reads),
                _rate(len(hop_ids), hops),
                _rate(len(hop_ids), id_hops),
            )
            best[position] = (
                max(best[position][0], rates[0]),
                max(best[position][1], rates[1]),
                max(best[position][2], rates[2]),
            )
    return best


# -- the report ------------------------------------------------------------------------------


PARTS = ("log", "apply", "reads")
"""What a run measures: log appends, write-set apply, reads on the generated graph."""


def run(
    config: BenchConfig,
    work_dir: Path | None = None,
    out: Callable[[str], None] = print,
    parts: tuple[str, ...] = PARTS,
) -> None:
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError(f"unknown bench parts {sorted(unknown)}; known: {', '.join(PARTS)}")
    with tempfile.TemporaryDirectory(prefix="quiver-bench-store-", dir=work_dir) as scratch:
        work = Path(scratch)
        out("quiver bench store — one run, same machine, same disk")
        out(f"  scratch directory: {work}")
        if "log" in parts:
            _report_log(work, config, out)
        if "apply" in parts:
            _report_apply(work, config, out)
        if "reads" in parts:
            _report_reads(work, config, out)


def _report_log(work: Path, config: BenchConfig, out: Callable[[str], None]) -> None:
    out("")
    out(
        "Durable Raft log appends (entries/s, best of interleaved bursts; "
        "one fdatasync per call; the log encrypts, the baseline does not)"
    )
    out(
        f"  {'shape':<22}{'durable log':>14}{'raw rocksdict':>16}{'ratio':>8}"
        f"{'rocksdict+flush_wal':>22}"
    )
    for size in (100, 4096):
        for batch, rounds in (
            (1, config.single_appends),
            (BATCH_ENTRIES, config.batch_appends),
        ):
            durable, raw, wal = _append_rates(work, size, batch, rounds)
            shape = f"{size} B x {batch}/sync"
            out(f"  {shape:<22}{durable:>14,.0f}{raw:>16,.0f}{durable / raw:>8.2f}{wal:>22,.0f}")


def _report_apply(work: Path, config: BenchConfig, out: Callable[[str], None]) -> None:
    out("")
    out("Write-set apply (one RocksDB batch each: a node, a relationship, their index)")
    for cipher in (_keyring(work), PlaintextCipher()):
        sets, ops = _apply_rate(work, cipher, config)
        label = "encrypted" if cipher.encrypts else "plaintext"
        out(f"  {label:<12}{sets:>12,.0f} write sets/s {ops:>12,.0f} operations/s")


def _report_reads(work: Path, config: BenchConfig, out: Callable[[str], None]) -> None:
    out("")
    out(
        f"Reads on a graph of {config.nodes:,} nodes and {config.relationships:,} "
        "relationships (per second)"
    )
    graphs: list[GraphStore] = []
    builds: list[float] = []
    for cipher in (_keyring(work), PlaintextCipher()):
        graph = GraphStore(work / f"graph-{cipher.encrypts}", cipher)
        builds.append(_build(graph, config))
        graph.flush()
        graphs.append(graph)
    rates = _read_rates(graphs, config)
    for graph in graphs:
        graph.close()
    results = {
        encrypts: (builds[position], *rates[position])
        for position, encrypts in enumerate((True, False))
    }
    out(f"  {'':<22}{'encrypted':>14}{'plaintext':>14}{'enc/plain':>11}")
    out("  (an expansion: every outgoing relationship of one node, with its record; ids only:")
    out("  relationship_ends, from the adjacency keys alone)")
    names = (
        "build (operations)",
        "point reads",
        "one-hop expansions",
        "one-hop, ids only",
    )
    for position, name in enumerate(names):
        encrypted, plain = results[True][position], results[False][position]
        out(f"  {name:<22}{encrypted:>14,.0f}{plain:>14,.0f}{encrypted / plain:>11.2f}")


def _keyring(work: Path) -> Keyring:
    return Keyring(work / f"keys-{os.urandom(4).hex()}", os.urandom(32))


def main(argv: list[str] | None = None) -> int:
    """``python -m store.bench [--only log,apply,reads] [--nodes N] [--relationships N]``:
    the same report as ``quiver bench store``, or just some of its parts."""
    parser = argparse.ArgumentParser(prog="python -m store.bench", description=__doc__)
    parser.add_argument(
        "--only",
        default=",".join(PARTS),
        help=f"comma-separated parts to run (default all: {','.join(PARTS)})",
    )
    parser.add_argument("--nodes", type=int, default=BenchConfig().nodes)
    parser.add_argument("--relationships", type=int, default=BenchConfig().relationships)
    args = parser.parse_args(argv)
    parts = tuple(part.strip() for part in args.only.split(",") if part.strip())
    run(BenchConfig(nodes=args.nodes, relationships=args.relationships), parts=parts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
