"""The simulator: many seeds stay clean, a seed replays exactly, and the checks catch bugs.

Each planted defect is a real Raft bug switched on inside this process only; the simulator
must report it within a bounded number of seeds, through the safety property it breaks.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from raft import defects
from raft.defects import Defect, planted
from raft.sim import SimOptions, Simulation, Violation, main, run_seed, run_seeds

SEEDS_IN_MAKE_TEST = 510


def test_simulator_reports_no_violation_over_510_seeds_of_3_5_and_7_nodes() -> None:
    results = list(run_seeds(SEEDS_IN_MAKE_TEST, start=0, jobs=2))
    assert len(results) == SEEDS_IN_MAKE_TEST
    assert {result.nodes for result in results} == {3, 5, 7}
    failures = [f"seed {r.seed}: {r.violation}" for r in results if r.violation]
    assert not failures, "\n".join(failures)
    # The runs did real work: writes were acknowledged and reads were checked.
    assert sum(r.acked_writes for r in results) > 10 * SEEDS_IN_MAKE_TEST
    assert sum(r.reads_checked for r in results) > SEEDS_IN_MAKE_TEST


def test_a_seed_replays_exactly() -> None:
    first = Simulation(SimOptions(seed=42, nodes=5, steps=200))
    second = Simulation(SimOptions(seed=42, nodes=5, steps=200))
    first.run()
    second.run()
    assert list(first.trace) == list(second.trace)
    assert first.acked_writes == second.acked_writes > 0
    assert first.max_committed == second.max_committed


# (defect, the properties it may break, the bound on seeds scanned from seed 0)
PLANTED = [
    (Defect.COMMIT_PREVIOUS_TERM_BY_COUNTING, {"committed-entry-durability"}, 200),
    (Defect.VOTE_WITHOUT_LOG_CHECK, {"leader-completeness", "state-machine-safety"}, 100),
    (Defect.LEASE_READ_WITHOUT_QUORUM, {"linearizable-read"}, 400),
    (Defect.APPEND_WITHOUT_LOG_MATCH, {"log-matching", "state-machine-safety"}, 100),
    (Defect.READ_INDEX_WITHOUT_QUORUM, {"linearizable-read"}, 200),
]


@pytest.mark.parametrize(("defect", "properties", "bound"), PLANTED, ids=lambda p: str(p))
def test_planted_defect_is_reported_within_a_bounded_number_of_seeds(
    defect: Defect, properties: set[str], bound: int
) -> None:
    with planted(defect):
        found = next((r for r in run_seeds(bound, start=0, jobs=2) if r.violation), None)
    assert found is not None, f"{defect.name} not reported within {bound} seeds"
    assert found.violation is not None
    assert found.violation.split(":")[0] in properties, found.violation
    assert found.trace, "a violation comes with the events that led to it"
    # The reported seed replays to the same violation.
    with planted(defect):
        again = run_seed(found.seed, found.nodes, found.steps)
    assert again.violation == found.violation
    assert again.trace == found.trace


def test_every_planted_defect_has_a_test() -> None:
    assert {defect for defect, _, _ in PLANTED} == set(Defect)


def test_defects_are_off_unless_a_test_plants_them() -> None:
    assert not any(defects.active(defect) for defect in Defect)
    with planted(Defect.VOTE_WITHOUT_LOG_CHECK):
        assert defects.active(Defect.VOTE_WITHOUT_LOG_CHECK)
    assert not defects.active(Defect.VOTE_WITHOUT_LOG_CHECK)


def test_the_command_line_cannot_switch_a_defect_on() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "raft.sim", "--help"], capture_output=True, text=True, check=True
    )
    assert "defect" not in completed.stdout.lower()
    refused = subprocess.run(
        [sys.executable, "-m", "raft.sim", "--defect", "vote-without-log-check"],
        capture_output=True,
        text=True,
    )
    assert refused.returncode != 0


def test_the_liveness_check_fails_when_faults_never_heal(monkeypatch: pytest.MonkeyPatch) -> None:
    def heal_nothing(self: Simulation) -> None:
        self.faults_on = False
        for node_id in sorted(self.nodes):
            for other in sorted(self.nodes):
                if node_id != other:
                    self.blocked.add((node_id, other))

    monkeypatch.setattr(Simulation, "heal", heal_nothing)
    simulation = Simulation(SimOptions(seed=3, nodes=3, steps=50, recovery_ticks=100))
    with pytest.raises(Violation) as raised:
        simulation.run()
    assert raised.value.prop == "liveness"


def test_sim_command_ends_with_the_seed_count_and_zero_violations(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--seeds", "4", "--start", "7", "--nodes", "5", "--steps", "100"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1] == "4 seeds, 0 violations"


def test_sim_command_prints_seed_property_trace_and_replay_on_a_violation(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with planted(Defect.VOTE_WITHOUT_LOG_CHECK):
        assert main(["--seeds", "50", "--nodes", "3"]) == 1
    out = capsys.readouterr().out
    assert "VIOLATION seed" in out
    assert "leader-completeness" in out or "state-machine-safety" in out
    assert "last events:" in out
    replay = next(line for line in out.splitlines() if "replay:" in line)
    command = replay.split("replay:", 1)[1].split()
    assert command[:2] == ["quiver", "sim"]
    with planted(Defect.VOTE_WITHOUT_LOG_CHECK):
        assert main(command[2:]) == 1
    assert out.splitlines()[0] == capsys.readouterr().out.splitlines()[0]
    assert out.strip().splitlines()[-1].endswith("1 violations")


def test_quiver_sim_runs_through_the_installed_command(repo_root: object) -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "sim", "--seeds", "2", "--steps", "60"],
        capture_output=True,
        text=True,
        cwd=str(repo_root),
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.strip().splitlines()[-1] == "2 seeds, 0 violations"
