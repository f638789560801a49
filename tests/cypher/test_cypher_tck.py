"""The openCypher TCK as a test: the pass count must never drop below the committed floor."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
FLOOR_FILE = HERE / "tck_floor.txt"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_cypher_tck_pass_count_stays_at_or_above_the_floor(repo_root: Path) -> None:
    runner = HERE / "tck_runner.py"
    if not (Path(__file__).resolve().parents[3] / "shared" / "tck" / "features").is_dir():
        pytest.skip("the openCypher TCK is not available beside the repository")
    completed = subprocess.run(
        [sys.executable, str(runner)],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=590,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-4000:]
    last = completed.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"TCK: (\d+) passed, (\d+) failed, (\d+) skipped of (\d+) scenarios", last)
    assert match, completed.stdout[-4000:]
    passed = int(match.group(1))
    floor = int(FLOOR_FILE.read_text().split()[0])
    assert passed >= floor, f"TCK regressed: {passed} passed < floor {floor}\n{completed.stdout}"
