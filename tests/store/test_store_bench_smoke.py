"""`quiver bench store` keeps working: a tiny run prints every figure the issue asks for."""

from __future__ import annotations

from pathlib import Path

from store.bench import BenchConfig, run


def test_store_benchmark_reports_every_figure(tmp_path: Path) -> None:
    lines: list[str] = []
    config = BenchConfig(
        nodes=60,
        relationships=120,
        single_appends=3,
        batch_appends=2,
        apply_write_sets=5,
        reads=20,
        expansions=20,
    )
    run(config, work_dir=tmp_path, out=lines.append)
    text = "\n".join(lines)
    for figure in ("100 B x 1/sync", "100 B x 100/sync", "4096 B x 1/sync", "4096 B x 100/sync"):
        assert figure in text
    for figure in ("raw rocksdict", "ratio", "write sets/s", "point reads", "one-hop expansions"):
        assert figure in text
    assert list(tmp_path.iterdir()) == [], "scratch directory left behind"
