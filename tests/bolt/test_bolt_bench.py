"""`quiver bench bolt` at a tiny size against a real cluster: it runs end to end, times every
way (gRPC, Bolt auto-commit, managed and direct) and the driver's answers equal gRPC's."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bolt_cluster_helpers import helpers

from cluster.bolt.bench import BoltBenchConfig, run_bench

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    yield from helpers.start_cluster(tmp_path)


def test_bolt_bench_runs_small_and_bolt_answers_match_grpc(cluster: Any) -> None:
    helpers.wait_for("a leader", cluster.leader)
    lines: list[str] = []
    config = BoltBenchConfig(persons=120, knows=400, batch=100, lookups=10, friend_of_friend=10)
    run_bench(cluster.directory, config, out=lines.append)
    text = "\n".join(lines)
    assert "Load (gRPC): 120 :Person and 400 :KNOWS" in text
    for query in ("floor (RETURN $id)", "point lookup", "friend-of-friend"):
        for way in ("grpc", "bolt auto", "bolt managed", "bolt direct"):
            assert f"{query}, {way} " in text, text
    assert "!!" not in text, text


def test_quiver_bench_bolt_hands_its_own_options_to_the_bench() -> None:
    import subprocess

    def quiver(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "cluster.cli", "bench", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    # The bench's own parser answers (before any cluster starts): the option reached it.
    refused = quiver("bolt", "--persons", "not-a-number")
    assert refused.returncode == 2
    assert "quiver bench bolt: error: argument --persons" in refused.stderr
    other = quiver("cypher", "--persons", "5")
    assert other.returncode != 0 and "unrecognized arguments: --persons 5" in other.stderr
