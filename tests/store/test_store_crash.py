"""Crash safety with real processes: SIGKILL a writer at random moments, many times.

After every kill the store opens, every acknowledged entry is there with its exact data,
nothing is half-there (no partial entry, no partially applied write set), and the graph's
applied index never runs ahead of the log.
"""

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
from store_crash_child import KEK, payload

from raft.storage import NO_LIMIT
from store.node_store import NodeStore

CHILD = Path(__file__).with_name("store_crash_child.py")
KILLS = 55
READY_DEADLINE_S = 20.0


def _wait_for_line(process: subprocess.Popen[bytes], prefix: bytes, deadline_s: float) -> None:
    assert process.stdout is not None
    deadline = time.monotonic() + deadline_s
    buffered = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            continue
        line = process.stdout.readline()
        if not line:
            raise AssertionError(f"child exited before {prefix!r}: {buffered!r}")
        buffered += line
        if line.startswith(prefix):
            return
    raise AssertionError(f"child did not print {prefix!r} within {deadline_s}s")


def _verify(data_dir: Path, acknowledged: int) -> int:
    store = NodeStore(data_dir, KEK, max_segment_bytes=64 << 10)
    try:
        log, graph = store.log, store.graph
        last = log.last_index()
        assert last >= acknowledged, f"acknowledged {acknowledged} but log ends at {last}"
        # The hard state went out with the entries, in the same synced write.
        assert log.hard_state().commit >= acknowledged
        assert log.hard_state().commit <= last
        lo = max(log.first_index(), last - 300)
        if lo <= last:
            for entry in log.entries(lo, last + 1, NO_LIMIT):
                assert entry.data == payload(entry.index), f"entry {entry.index} damaged"
        applied = graph.applied_index()
        assert applied <= last
        assert graph.count_nodes() == applied
        for node_id in range(max(1, applied - 50), applied + 1):
            node = graph.node(node_id)
            assert node is not None and node.properties.get("index") == node_id
            # Each write set is all-or-nothing: the previous node got its "next" with it.
            previous = graph.node(node_id - 1)
            assert previous is None or previous.properties.get("next") == node_id
        assert graph.node(applied + 1) is None
        return last
    finally:
        store.close()


@pytest.mark.slow
def test_every_acknowledged_entry_survives_sigkill(tmp_path: Path) -> None:
    rng = random.Random(os.environ.get("QUIVER_CRASH_SEED", "crash"))
    data_dir = tmp_path / "node"
    acknowledged = 0
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(CHILD.parent.parent.parent), *sys.path]),
    }
    for kill in range(KILLS):
        process = subprocess.Popen(
            [sys.executable, str(CHILD), str(data_dir), str(kill)],
            stdout=subprocess.PIPE,
            env=env,
        )
        try:
            _wait_for_line(process, b"ready", READY_DEADLINE_S)
            # The random moment: anywhere from mid-append to mid-apply to mid-snapshot.
            time.sleep(rng.uniform(0.0, 0.12))
        finally:
            process.send_signal(signal.SIGKILL)
            output, _ = process.communicate(timeout=10)
        for line in output.splitlines():
            if line.startswith(b"ack "):
                acknowledged = max(acknowledged, int(line.split()[1]))
        last = _verify(data_dir, acknowledged)
        assert last >= acknowledged, f"kill {kill}"
    assert acknowledged > KILLS, "the child acknowledged too little to mean anything"
