"""Test-only failpoints (store.failpoints): off unless the environment arms them; fsync
errors surface as errors, a torn write dies and replays to the last whole record, and the
planted drop-tail bug forgets acknowledged entries together with their graph state."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from raft.types import Entry, HardState
from store import failpoints
from store.crypto import write_key_file
from store.failpoints import FailpointError, parse
from store.node_store import NodeStore
from store.writeset import CreateNode, WriteSet

REPO = Path(__file__).resolve().parents[2]


def test_off_unless_the_environment_arms_them() -> None:
    assert parse(None) is None
    assert parse("") is None
    assert parse("1") == {}
    assert parse("drop-tail=3, clock-rate=0.5") == {"drop-tail": "3", "clock-rate": "0.5"}
    for bad in ("no-such-point", "drop-tail=x", "clock-rate=100", "fsync-error=0"):
        with pytest.raises(FailpointError):
            parse(bad)


def _entry(index: int) -> Entry:
    return Entry(term=1, index=index, data=f"entry-{index}".encode())


def test_an_fsync_error_is_raised_to_the_caller_not_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "kek"
    write_key_file(key_file)
    store = NodeStore.open(tmp_path / "node", key_file)
    monkeypatch.setattr(failpoints, "ACTIVE", {"fsync-error": "3"})
    monkeypatch.setattr(failpoints, "_SYNCS", failpoints._SyncCounter())
    store.log.save([_entry(1)])
    store.log.save([_entry(2)])
    with pytest.raises(OSError, match="fsync-error"):
        store.log.save([_entry(3)])
    with pytest.raises(OSError):
        store.log.save([_entry(4)])  # every fsync after the K-th fails too
    monkeypatch.setattr(failpoints, "ACTIVE", None)
    store.close()


def test_a_torn_write_kills_the_process_and_replay_keeps_the_whole_records(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "kek"
    write_key_file(key_file)
    child = textwrap.dedent(
        f"""
        from pathlib import Path
        from raft.types import Entry
        from store.node_store import NodeStore
        store = NodeStore.open(Path({str(tmp_path / "node")!r}), Path({str(key_file)!r}))
        for index in range(1, 10):
            store.log.save([Entry(term=1, index=index, data=b"x" * 50)])
            print(index, flush=True)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", child],
        cwd=REPO,
        env={**os.environ, failpoints.ENV: "torn-write=5"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == failpoints.TORN_EXIT_STATUS, done.stderr
    assert done.stdout.split() == ["1", "2", "3", "4"]  # the 5th save never returned
    store = NodeStore.open(tmp_path / "node", key_file)
    assert store.log.last_index() == 4  # the torn record is cut, the acknowledged kept
    store.close()


def test_drop_tail_forgets_acknowledged_entries_and_their_graph_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key_file = tmp_path / "kek"
    write_key_file(key_file)
    store = NodeStore.open(tmp_path / "node", key_file)
    store.log.save([_entry(i) for i in range(1, 11)], HardState(term=1, vote=1, commit=10))
    for index in range(1, 11):
        store.graph.apply(WriteSet((CreateNode(index, ("A",), ()),)), index)
    store.close()
    monkeypatch.setattr(failpoints, "ACTIVE", {"drop-tail": "4"})
    store = NodeStore.open(tmp_path / "node", key_file)
    assert failpoints.drop_tail(store) == 6
    assert store.log.last_index() == 6
    assert store.log.hard_state().commit == 6
    assert store.graph.applied_index() == 0  # rebuilt from the log by the node's replay
    assert store.graph.count_nodes("A") == 0
    store.close()
