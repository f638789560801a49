"""The `quiver` command line: help for every command, and honest one-line refusals."""

import os
import subprocess
import sys
import types
from pathlib import Path

import pytest

from cluster import cli

ALL_COMMANDS = [
    "up",
    "down",
    "status",
    "query",
    "init",
    "serve",
    "add-node",
    "admin",
    "sim",
    "bench",
    "chaos",
    "backup",
    "restore",
    "audit",
]


def _quiver(repo_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cluster.cli", *args],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_top_level_help_lists_every_command(repo_root: Path) -> None:
    result = _quiver(repo_root, "--help")
    assert result.returncode == 0, result.stderr
    for command in ALL_COMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize("command", ALL_COMMANDS)
def test_every_command_has_help_with_a_dir_option(repo_root: Path, command: str) -> None:
    result = _quiver(repo_root, command, "--help")
    assert result.returncode == 0, result.stderr
    assert f"usage: quiver {command}" in result.stdout
    assert "--dir" in result.stdout


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["bench"], "what to benchmark is one of store, cypher, cluster, bolt, privileges"),
        (["bench", "nothing"], "what to benchmark is one of store, cypher"),
        (["chaos", "netns"], "the actions are 'proxy' and 'run'"),
        (["audit", "rotate"], "'verify' checks the audit logs"),
    ],
    ids=["bench", "bench-unknown", "chaos-unknown", "audit-unknown"],
)
def test_a_missing_or_unknown_action_names_the_real_ones(
    repo_root: Path, argv: list[str], says: str
) -> None:
    result = _quiver(repo_root, *argv)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Neo.ClientError.Request.Invalid: ")
    assert says in lines[0], lines[0]


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["backup", "take", "--keep", "-2"], "--keep must be at least 1"),
        (["backup", "prune"], "prune needs --keep N"),
        (["backup", "schedule", "--keep", "1", "--rounds", "-3"], "--rounds must be 0"),
        (["backup", "schedule", "--keep", "1", "--every", "0"], "not a positive duration"),
        (["backup", "verify", "nothing"], "no backup 'nothing'"),
        (["restore", "nothing.qbackup"], "no backup file 'nothing.qbackup'"),
    ],
)
def test_backup_arguments_are_checked_before_anything_runs(
    repo_root: Path, tmp_path: Path, argv: list[str], says: str
) -> None:
    result = _quiver(repo_root, *argv, "--dir", str(tmp_path / "none"))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Neo.ClientError.Request.Invalid: "), lines
    assert says in lines[0], lines[0]


@pytest.mark.parametrize(
    "argv",
    [
        ["status"],
        ["backup", "take"],
        ["backup", "schedule", "--keep", "2", "--rounds", "1"],
        ["admin", "promote", "2"],
        ["certs", "rotate"],
    ],
)
def test_a_command_without_a_cluster_says_so_in_one_line(
    repo_root: Path, tmp_path: Path, argv: list[str]
) -> None:
    result = _quiver(repo_root, *argv, "--dir", str(tmp_path / "none"))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Neo.ClientError.Request.Invalid: "), lines
    assert "no cluster in" in lines[0] and "cluster.json is missing" in lines[0]
    assert not (tmp_path / "none").exists()


@pytest.mark.parametrize(
    "argv",
    [[], ["no-such-command"], ["up", "--no-such-option"], ["status", "--format", "xml"]],
    ids=["no-command", "unknown-command", "unknown-option", "bad-choice"],
)
def test_usage_error_is_one_status_coded_line_and_fails(repo_root: Path, argv: list[str]) -> None:
    result = _quiver(repo_root, *argv)
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Neo.ClientError.Request.Invalid: ")


def test_sim_passes_its_own_options_through_to_the_simulator(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The simulator is replaced here: this checks the CLI's hand-off, not raft.sim.
    received: list[list[str]] = []

    def fake_sim_main(argv: list[str]) -> int:
        received.append(argv)
        return 3

    fake_module = types.ModuleType("raft.sim")
    fake_module.main = fake_sim_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "raft.sim", fake_module)
    if "raft" not in sys.modules:
        monkeypatch.setitem(sys.modules, "raft", types.ModuleType("raft"))

    status = cli.main(["sim", "--seeds", "20", "--dir", "x", "--nodes", "5", "--start=7"])
    assert status == 3
    assert received == [["--seeds", "20", "--nodes", "5", "--start=7"]]


def test_chaos_proxy_passes_its_options_through_to_the_fault_proxy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The proxy is replaced here: this checks the CLI's hand-off, not chaos.toxiproxy.
    received: list[list[str]] = []

    def fake_proxy_main(argv: list[str]) -> int:
        received.append(argv)
        return 4

    fake_module = types.ModuleType("chaos.toxiproxy")
    fake_module.main = fake_proxy_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "chaos.toxiproxy", fake_module)

    status = cli.main(["chaos", "proxy", "--port", "8475", "--seed", "3", "--host=127.0.0.1"])
    assert status == 4
    assert received == [["--port", "8475", "--seed", "3", "--host=127.0.0.1"]]


def test_chaos_run_refuses_an_unknown_nemesis_in_one_status_coded_line(repo_root: Path) -> None:
    result = _quiver(repo_root, "chaos", "run", "--nemesis", "meteor", "--out", "unused-dir")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Neo.ClientError.Request.Invalid: quiver chaos run: ")
    assert not (repo_root / "unused-dir").exists()


def test_chaos_run_help_is_the_run_options(repo_root: Path) -> None:
    result = _quiver(repo_root, "chaos", "run", "--help")
    assert result.returncode == 0, result.stderr
    assert "usage: quiver chaos run" in result.stdout
    assert "--nemesis" in result.stdout


def test_a_closed_stdout_pipe_is_not_a_traceback(repo_root: Path, tmp_path: Path) -> None:
    # `quiver status | head -1`: the reader goes away before the output is written.
    path = _audit_log(tmp_path, 2)
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "cluster.cli", "audit", "verify", str(path)],
            cwd=repo_root,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write_end)
    assert result.returncode == 0
    assert result.stderr == ""


def _audit_log(directory: Path, records: int) -> Path:
    from cluster.security.audit import AuditLog

    with AuditLog(directory, "security") as log:
        for i in range(records):
            log.security("login", user=f"user{i}", client="127.0.0.1:1")
        return log.path


def test_audit_verify_reports_a_clean_log(repo_root: Path, tmp_path: Path) -> None:
    path = _audit_log(tmp_path / "node-1" / "audit", 4)
    _audit_log(tmp_path / "node-2" / "audit", 3)
    result = _quiver(repo_root, "audit", "verify", "--dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok: 7 records\n"
    result = _quiver(repo_root, "audit", "verify", str(path))
    assert (result.returncode, result.stdout) == (0, "ok: 4 records\n")


def test_audit_verify_names_the_first_bad_line(repo_root: Path, tmp_path: Path) -> None:
    path = _audit_log(tmp_path / "audit", 4)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[0], lines[2], lines[1], lines[3]]))
    for argv in (["--dir", str(tmp_path)], [str(path)]):
        result = _quiver(repo_root, "audit", "verify", *argv)
        assert result.returncode == 1
        assert result.stdout == ""
        stderr = result.stderr.splitlines()
        assert len(stderr) == 1, result.stderr
        assert stderr[0].startswith(
            f"Neo.DatabaseError.General.StorageDamageDetected: audit log {path} line 2: "
        )


def test_audit_verify_without_a_log_fails_in_one_line(repo_root: Path, tmp_path: Path) -> None:
    result = _quiver(repo_root, "audit", "verify", "--dir", str(tmp_path))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"Neo.ClientError.Request.Invalid: quiver audit verify: no audit log under {tmp_path}"
    ]
