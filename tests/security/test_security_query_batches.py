"""The query log's batches (``AuditLog.queries``): the same records, in the same chain, as
one ``query`` call per record, handed to the kernel together when the batch is written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cluster.security.audit import AuditLog, segments_of, verify


class _Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


def _records(count: int) -> list[dict[str, Any]]:
    return [
        {
            "user": f"user{i % 3}",
            "client": "127.0.0.1:5000",
            "query": f"MATCH (n {{name: 'secret{i}'}}) RETURN n LIMIT {i}",
            "duration_ms": 0.125 * i,
            "rows": i,
            "outcome": "ok" if i % 4 else "Neo.ClientError.Statement.SyntaxError",
            "parameters": dict.fromkeys(("b", "a") if i % 2 else ()),
            "database": "neo4j" if i % 5 else "",
            "impersonated": "ivy" if i % 7 == 3 else "",
        }
        for i in range(count)
    ]


def _contents(directory: Path) -> list[bytes]:
    return [path.read_bytes() for _index, path in segments_of(directory, "query")]


def test_a_batch_writes_the_records_one_call_per_record_would(tmp_path: Path) -> None:
    """Byte for byte, across rotations and fsyncs, with literals masked or kept."""
    records = _records(40)
    for literals in (False, True):
        one, batched = tmp_path / f"one-{literals}", tmp_path / f"batched-{literals}"
        options: dict[str, Any] = {"max_bytes": 4096, "sync_every": 7}
        with AuditLog(one, "query", clock=_Clock(), **options) as log:
            for fields in records:
                log.query(**fields, literals=literals)
        with AuditLog(batched, "query", clock=_Clock(), **options) as log:
            log.queries(records[:25], literals=literals)
            log.queries(records[25:], literals=literals)
        assert _contents(batched) == _contents(one)
        assert len(_contents(one)) > 1  # the batches crossed a rotation
        report = verify(batched)
        assert report.ok and report.records == 40
    assert b"secret" not in b"".join(_contents(tmp_path / "batched-False"))
    assert b"secret7" in b"".join(_contents(tmp_path / "batched-True"))


class _CountingFile:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.flushes = 0

    def flush(self) -> None:
        self.flushes += 1
        self.inner.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_batch_reaches_the_kernel_at_once_and_in_one_hand_off(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, "query", sync_every=1000)
    counting = _CountingFile(log._file)
    log._file = counting  # type: ignore[assignment]
    log.queries(_records(10))
    # Readable through another handle before anything closes or syncs the log.
    assert log.path.read_bytes().count(b"\n") == 10
    assert counting.flushes == 1
    log.queries([])
    assert counting.flushes == 1  # an empty batch writes nothing
    log._file = counting.inner
    log.close()
    assert verify(log.path).records == 10
