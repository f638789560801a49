"""Rotating the index key (the HMAC key of index entries over values): the property indexes
are rebuilt under the new key in bounded, resumable steps while lookups and applies go on;
at the switch, every entry under the old key goes and the old key is retired. A reopen or a
SIGKILL anywhere in between leaves a store whose lookups are right."""

from __future__ import annotations

import os
import random
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from graph_strategies import views_agree
from store_index_rotation_child import KEK, write_set

from store.codec import index_key_bytes
from store.crypto import Keyring, PlaintextCipher
from store.graph import LABEL, GraphStore
from store.memory import MemoryGraph
from store.writeset import (
    CreateIndex,
    CreateNode,
    CreateRelationship,
    CreateUniqueConstraint,
    DeleteNode,
    DeleteRelationship,
    DropIndex,
    SetNodeProperty,
    SetRelationshipProperty,
    WriteSet,
)

CHILD = Path(__file__).with_name("store_index_rotation_child.py")
KILLS = 6
READY_DEADLINE_S = 20.0


def _ws(*operations: object) -> WriteSet:
    return WriteSet(tuple(operations))  # type: ignore[arg-type]


def _initial() -> WriteSet:
    return _ws(
        CreateIndex("i1", "Person", ("k",)),
        CreateIndex("r1", "KNOWS", ("k",), on_relationships=True),
        CreateUniqueConstraint("u1", "Person", ("name",)),
        *(CreateNode(i, ("Person",), (("k", i % 3), ("name", f"p{i}"))) for i in range(30)),
        *(CreateRelationship(i, "KNOWS", i, (i * 7) % 30, (("k", i % 2),)) for i in range(30)),
    )


def _changes(step: int) -> WriteSet:
    """A write set applied between rebuild steps: moves values the rebuild has or has not
    visited yet, creates and deletes indexed records, and drops and re-creates an index."""
    ops: list[object] = [
        SetNodeProperty(step % 30, "k", step),
        SetNodeProperty((step * 11) % 30, "k", 1.0),
        SetRelationshipProperty((step * 5) % 30, "k", True),
        CreateNode(100 + step, ("Person",), (("k", 1), ("name", f"new{step}"))),
        CreateRelationship(100 + step, "KNOWS", 100 + step, 0, (("k", 0),)),
    ]
    if step > 1:
        ops += [DeleteRelationship(100 + step - 1), DeleteNode(100 + step - 1)]
    if step == 3:
        ops.append(DropIndex("i1"))
    if step == 4:
        ops.append(CreateIndex("i1", "Person", ("k",)))
    return _ws(*ops)


def _keys(graph: GraphStore, family: str) -> list[bytes]:
    return [key for key, _ in graph.db.get_column_family(family).items()]


def _index_key_versions(graph: GraphStore) -> set[int]:
    return {int.from_bytes(key[:4], "big") for key in _keys(graph, "index")}


def _meta_keys(graph: GraphStore) -> list[bytes]:
    return _keys(graph, "meta")


def test_lookups_work_before_during_and_after_an_index_key_rotation(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK)
    graph = GraphStore(tmp_path / "graph", ring)
    model = MemoryGraph()
    graph.apply(_initial(), 1)
    model.apply(_initial())
    views_agree(graph, model)
    (old,) = graph.index_versions()
    old_value_mac = ring.mac(index_key_bytes(1), old)
    old_name_mac = ring.mac(LABEL + b"\x00Person", old)
    assert any(old_value_mac in key for key in _keys(graph, "index"))
    assert any(old_name_mac in key for key in _meta_keys(graph))

    new = graph.rotate_index_key()
    assert new > old and graph.index_versions() == (old, new)
    assert graph.rotate_index_key() == new, "a rotation under way restarted"
    step, index = 0, 1
    while not (progress := graph.rebuild_indexes(max_records=7)).complete:
        assert progress.visited <= 7
        step, index = step + 1, index + 1
        change = _changes(step)
        graph.apply(change, index)
        model.apply(change)
        views_agree(graph, model)  # lookups still read under the old key
        assert step < 50
    assert step >= 5, "the rebuild took too few steps to interleave with writes"

    assert graph.index_versions() == (new,)
    assert ring.index_key_versions() == [new], "the old index key was not retired"
    assert _index_key_versions(graph) == {new}, "entries under the old key remain"
    assert not any(old_value_mac in key for key in _keys(graph, "index"))
    assert not any(old_name_mac in key for key in _meta_keys(graph))
    views_agree(graph, model)
    graph.apply(_changes(step + 1), index + 1)
    model.apply(_changes(step + 1))
    views_agree(graph, model)
    graph.close()

    reopened = GraphStore(tmp_path / "graph", Keyring(tmp_path, KEK))
    views_agree(reopened, model)
    reopened.close()


@pytest.mark.parametrize("encrypted", [True, False])
def test_a_rotation_resumes_after_reopening(tmp_path: Path, encrypted: bool) -> None:
    def cipher() -> Keyring | PlaintextCipher:
        return Keyring(tmp_path, KEK) if encrypted else PlaintextCipher()

    graph = GraphStore(tmp_path / "graph", cipher())
    model = MemoryGraph()
    graph.apply(_initial(), 1)
    model.apply(_initial())
    (old,) = graph.index_versions()
    new = graph.rotate_index_key()
    assert not graph.rebuild_indexes(max_records=20).complete
    graph.close()

    graph = GraphStore(tmp_path / "graph", cipher())
    assert graph.index_versions() == (old, new)
    views_agree(graph, model)
    graph.apply(_changes(1), 2)
    model.apply(_changes(1))
    assert graph.rotate_index_key() == new
    for _ in range(20):
        if graph.rebuild_indexes(max_records=20).complete:
            break
    assert graph.index_versions() == (new,)
    assert _index_key_versions(graph) == {new}
    views_agree(graph, model)
    graph.close()
    # A second rotation after a reopen (a plaintext cipher restarts its version count).
    graph = GraphStore(tmp_path / "graph", cipher())
    newer = graph.rotate_index_key()
    assert newer > new
    while not graph.rebuild_indexes().complete:
        pass
    assert _index_key_versions(graph) == {newer}
    views_agree(graph, model)
    graph.close()


def _wait_for_line(process: subprocess.Popen[bytes], prefix: bytes) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + READY_DEADLINE_S
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            continue
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"child exited before {prefix!r}")
        if line.startswith(prefix):
            return
    raise AssertionError(f"child did not print {prefix!r} within {READY_DEADLINE_S}s")


@pytest.mark.slow
def test_a_sigkill_anywhere_in_a_rotation_leaves_working_lookups(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("QUIVER_CRASH_SEED", "index-rotation"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(CHILD.parent.parent.parent), *sys.path]),
    }
    rotations_seen: set[tuple[int, ...]] = set()
    for _ in range(KILLS):
        process = subprocess.Popen(
            [sys.executable, str(CHILD), str(tmp_path)], stdout=subprocess.PIPE, env=env
        )
        try:
            _wait_for_line(process, b"ready")
            time.sleep(rng.uniform(0.0, 0.3))
        finally:
            process.send_signal(signal.SIGKILL)
            process.communicate(timeout=10)
        ring = Keyring(tmp_path, KEK)
        graph = GraphStore(tmp_path / "graph", ring)
        try:
            model = MemoryGraph()
            for index in range(1, graph.applied_index() + 1):
                model.apply(write_set(index))
            versions = graph.index_versions()
            rotations_seen.add(versions)
            assert set(versions) <= set(ring.index_key_versions())
            assert _index_key_versions(graph) <= set(versions)
            views_agree(graph, model)
        finally:
            graph.close()
    assert len(rotations_seen) > 1, "every kill landed in the same rotation state"


def test_a_snapshot_taken_before_the_switch_keeps_the_old_key_until_it_is_closed(
    tmp_path: Path,
) -> None:
    """A snapshot looks its indexes up under the key it began with; the rebuild's last
    step retires that key only once no open snapshot reads under it. Before, it retired it
    at once, and the snapshot's next index lookup failed (no such key)."""
    ring = Keyring(tmp_path, KEK)
    graph = GraphStore(tmp_path / "graph", ring)
    graph.apply(_initial(), 1)
    model = MemoryGraph()
    model.apply(_initial())
    (old,) = graph.index_versions()
    new = graph.rotate_index_key()
    before = graph.snapshot()
    dropped = graph.snapshot()
    while not graph.rebuild_indexes(max_records=7).complete:
        pass
    assert graph.index_versions() == (new,)
    assert ring.index_key_versions() == [old, new]  # the snapshots still read under `old`
    views_agree(before, model)
    assert sorted(before.node_ids_by_property("Person", "k", 1)) == list(range(1, 30, 3))
    dropped.close()
    with graph.snapshot():
        assert ring.index_key_versions() == [old, new]
    before.close()
    with graph.snapshot() as after:  # the next snapshot retires it (closing cannot fsync)
        assert ring.index_key_versions() == [new], "the old index key was not retired"
        views_agree(after, model)
    graph.close()


def test_a_key_left_to_retire_when_the_process_stopped_is_retired_at_the_next_open(
    tmp_path: Path,
) -> None:
    graph = GraphStore(tmp_path / "graph", Keyring(tmp_path, KEK))
    graph.apply(_initial(), 1)
    (old,) = graph.index_versions()
    new = graph.rotate_index_key()
    holding = graph.snapshot()
    while not graph.rebuild_indexes().complete:
        pass
    assert Keyring(tmp_path, KEK).index_key_versions() == [old, new]  # saved as it is
    del holding
    graph.close()  # as if the process stopped here
    ring = Keyring(tmp_path, KEK)
    reopened = GraphStore(tmp_path / "graph", ring)
    assert ring.index_key_versions() == [new]
    model = MemoryGraph()
    model.apply(_initial())
    views_agree(reopened, model)
    reopened.close()
