"""Raft scenario scripts: each tests/raft/scenarios/*.txt drives a few real nodes step by step
and must produce exactly the transcript written in it.

Set QUIVER_REWRITE=1 to write this run's transcripts back into the scripts instead; then read
every changed transcript (git diff) and keep it only if it shows the protocol doing the right
thing.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

HERE = Path(__file__).resolve().parent
SCENARIOS = sorted((HERE / "scenarios").glob("*.txt"))


def _load_interpreter() -> ModuleType:
    # tests/ has no __init__.py, so the helper is loaded from its path under a unique name.
    name = "quiver_tests_raft_scenario"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "raft_scenario.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


scenario = _load_interpreter()


def test_raft_scenario_directory_holds_scripts() -> None:
    assert len(SCENARIOS) >= 10, f"expected the scenario scripts in {HERE / 'scenarios'}"


@pytest.mark.parametrize("path", SCENARIOS, ids=[path.stem for path in SCENARIOS])
def test_raft_scenario_transcript_matches_script(path: Path) -> None:
    expected, actual = scenario.run_script(path)
    if os.environ.get("QUIVER_REWRITE") == "1":
        if actual != expected:
            path.write_text(actual)
        return
    assert actual == expected, (
        "transcript differs from the script (QUIVER_REWRITE=1 rewrites it; review the diff):\n"
        + scenario.transcript_diff(path, expected, actual)
    )


def test_raft_scenario_parser_round_trips_a_script() -> None:
    text = "# a comment\n\ncmd 1 a=(1,2)\n----\nline one\nline two\n\n# tail\n"
    parsed = scenario.parse_script(text)
    assert [block.command for block in parsed.blocks] == ["cmd 1 a=(1,2)"]
    assert parsed.blocks[0].expected == "line one\nline two"
    assert scenario.render_script(parsed, ["line one\nline two"]) == text


def test_raft_scenario_unknown_command_is_an_error_not_a_transcript() -> None:
    env = scenario.ScenarioEnv()
    with pytest.raises(scenario.ScenarioError, match="unknown command"):
        env.run("no-such-command 1")


def test_raft_scenario_command_without_separator_is_rejected() -> None:
    with pytest.raises(scenario.ScenarioError, match="expected '----'"):
        scenario.parse_script("campaign 1\nok\n")


# The scripts must be able to fail: each of the core's planted defects (raft/defects.py)
# breaks a rule a script documents, and that script must then no longer reproduce its
# transcript (or must crash on the broken invariant).
DEFECT_WITNESSES = [
    ("figure8", "COMMIT_PREVIOUS_TERM_BY_COUNTING"),
    ("election_log_check", "VOTE_WITHOUT_LOG_CHECK"),
    ("lease_read", "LEASE_READ_WITHOUT_QUORUM"),
]


@pytest.mark.parametrize(("script", "defect_name"), DEFECT_WITNESSES)
def test_raft_scenario_fails_when_its_rule_is_broken_by_a_planted_defect(
    script: str, defect_name: str
) -> None:
    from raft import defects
    from raft.errors import RaftError

    path = HERE / "scenarios" / f"{script}.txt"
    with defects.planted(defects.Defect[defect_name]):
        try:
            expected, actual = scenario.run_script(path)
        except (AssertionError, RaftError):
            return  # the broken rule tripped an invariant: caught
    assert actual != expected, f"{script}.txt does not notice {defect_name}"
