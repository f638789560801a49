"""The audit log: a clean log verifies; each tampering (edit, delete, swap, forged insert,
torn tail) is caught at the right line; rotation carries the chain; masking leaks nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cluster.security.audit import (
    GENESIS,
    AuditLog,
    canonical,
    mask_query,
    record_hash,
    segments_of,
    verify,
)


class _Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        self.now += 0.5
        return self.now


def _write(directory: Path, count: int = 6, key: bytes | None = None) -> Path:
    with AuditLog(directory, "security", key=key, clock=_Clock()) as log:
        for i in range(count):
            log.security("login", user=f"user{i}", client="127.0.0.1:5000")
        return log.path


def _lines(path: Path) -> list[bytes]:
    return path.read_bytes().splitlines(keepends=True)


def test_a_clean_log_verifies(tmp_path: Path) -> None:
    path = _write(tmp_path)
    report = verify(path)
    assert report.ok and report.records == 6
    first = json.loads(_lines(path)[0])
    assert first["seq"] == 1 and first["prev"] == GENESIS and first["kind"] == "security"
    assert first["fields"] == {"event": "login", "user": "user0", "client": "127.0.0.1:5000"}
    assert verify(tmp_path).records == 6


def test_reopening_continues_the_chain(tmp_path: Path) -> None:
    _write(tmp_path, 3)
    path = _write(tmp_path, 2)
    assert verify(path).records == 5
    assert json.loads(_lines(path)[-1])["seq"] == 5


def _tampered(tmp_path: Path, change) -> tuple[Path, object]:
    path = _write(tmp_path)
    lines = _lines(path)
    path.write_bytes(b"".join(change(lines)))
    return path, verify(path)


def _edit(lines: list[bytes]) -> list[bytes]:
    record = json.loads(lines[2])
    record["fields"]["user"] = "mallory"
    return [*lines[:2], canonical(record) + b"\n", *lines[3:]]


def _edit_and_rehash(lines: list[bytes]) -> list[bytes]:
    record = json.loads(lines[2])
    record["fields"]["user"] = "mallory"
    record["hash"] = record_hash(record)
    return [*lines[:2], canonical(record) + b"\n", *lines[3:]]


def _forge_insert(lines: list[bytes]) -> list[bytes]:
    # A well-formed forgery: right seq, right prev, valid (unkeyed) hash.
    before = json.loads(lines[1])
    forged = {
        "seq": before["seq"] + 1,
        "ts": before["ts"],
        "kind": "security",
        "fields": {"event": "login", "user": "ghost"},
        "prev": before["hash"],
    }
    forged["hash"] = record_hash(forged)
    return [*lines[:2], canonical(forged) + b"\n", *lines[2:]]


@pytest.mark.parametrize(
    ("change", "line", "words"),
    [
        (_edit, 3, "edited"),
        (_edit_and_rehash, 4, "inserted or reordered"),  # the next record's prev no longer fits
        (lambda lines: [*lines[:3], *lines[4:]], 4, "removed"),
        (lambda lines: [lines[1], lines[0], *lines[2:]], 1, "does not start"),
        (lambda lines: [*lines[:2], lines[3], lines[2], *lines[4:]], 3, "removed"),
        (lambda lines: [*lines[:2], lines[1], *lines[2:]], 3, "inserted or reordered"),
        (_forge_insert, 4, "inserted or reordered"),
        (lambda lines: [*lines[:-1], lines[-1][:-10]], 6, "truncated"),
        (lambda lines: [*lines[:-1], lines[-1][:-1]], 6, "truncated"),
        (lambda lines: [*lines[:-1], lines[-1][:25] + b"\n"], 6, "not a JSON record"),
        (lambda lines: lines[1:], 1, "does not start"),
    ],
    ids=[
        "edit",
        "edit-rehash",
        "delete",
        "swap-first",
        "swap-middle",
        "duplicate",
        "forged-insert",
        "truncate-mid-line",
        "truncate-newline",
        "torn-line",
        "delete-first",
    ],
)
def test_each_tampering_is_caught_at_its_line(
    tmp_path: Path, change, line: int, words: str
) -> None:
    path, report = _tampered(tmp_path, change)
    assert not report.ok
    assert report.problem.line == line, report.problem
    assert words in report.problem.what
    assert str(report.problem).startswith(f"audit log {path} line {line}: ")


def test_a_keyed_chain_refuses_a_forgery_at_once(tmp_path: Path) -> None:
    key = b"k" * 32
    path = _write(tmp_path, key=key)
    assert verify(path, key=key).ok
    assert not verify(path).ok  # without the key the hashes do not match
    path.write_bytes(b"".join(_forge_insert(_lines(path))))
    report = verify(path, key=key)
    assert report.problem is not None and report.problem.line == 3
    assert "forged" in report.problem.what


def test_rotation_carries_the_chain_and_a_missing_segment_shows(tmp_path: Path) -> None:
    with AuditLog(tmp_path, "query", max_bytes=600, clock=_Clock()) as log:
        for i in range(20):
            log.query(
                user="alice",
                client="10.0.0.1:1",
                query=f"MATCH (n) WHERE n.x = {i} RETURN n",
                duration_ms=1.5,
                rows=i,
                outcome="success",
                parameters={"secret": "hunter22"},
            )
    segments = segments_of(tmp_path, "query")
    assert len(segments) > 3
    report = verify(tmp_path)
    assert report.ok and report.records == 20 and len(report.files) == len(segments)
    text = "".join(p.read_text() for _i, p in segments)
    assert "hunter22" not in text and '"parameters":["secret"]' in text
    segments[1][1].unlink()
    report = verify(tmp_path)
    assert report.problem is not None and report.problem.path == segments[2][1]
    assert "removed" in report.problem.what
    # The oldest segments deleted by hand: no retention record accounts for them.
    segments[0][1].unlink()
    report = verify(tmp_path)
    assert report.problem is not None and report.problem.path == segments[2][1]
    assert "no retention record" in report.problem.what


def test_retention_keeps_the_newest_segments_and_the_chain_verifies(tmp_path: Path) -> None:
    with AuditLog(tmp_path, "security", max_bytes=400, keep_segments=3, clock=_Clock()) as log:
        for i in range(40):
            log.security("login", user=f"user-{i}")
    segments = segments_of(tmp_path, "security")
    assert len(segments) == 3 and segments[0][0] > 1
    report = verify(tmp_path)
    assert report.ok, report.problem
    records = [json.loads(line) for _i, path in segments for line in _lines(path)]
    retirements = [r for r in records if r["fields"]["event"] == "audit_segments_retired"]
    assert retirements and retirements[-1]["fields"]["through_seq"] == records[0]["seq"] - 1
    # Reopened, the log carries the chain on and retention goes on.
    with AuditLog(tmp_path, "security", max_bytes=400, keep_segments=3, clock=_Clock()) as log:
        for i in range(10):
            log.security("login", user=f"again-{i}")
    assert len(segments_of(tmp_path, "security")) == 3 and verify(tmp_path).ok
    # One more segment deleted by hand is not retention.
    segments_of(tmp_path, "security")[0][1].unlink()
    assert not verify(tmp_path).ok


def test_a_crash_between_the_retirement_record_and_the_deletion_still_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with AuditLog(tmp_path, "security", max_bytes=400, clock=_Clock()) as log:
        for i in range(20):
            log.security("login", user=f"user-{i}")
    before = len(segments_of(tmp_path, "security"))

    class Crash(Exception):
        pass

    def crash(_path: Path, missing_ok: bool = False) -> None:
        raise Crash

    log = AuditLog(tmp_path, "security", max_bytes=400, keep_segments=2, clock=_Clock())
    monkeypatch.setattr(Path, "unlink", crash)
    with pytest.raises(Crash):
        for i in range(10):
            log.security("login", user=f"later-{i}")
    monkeypatch.undo()
    log.close()
    # The retirement record is on disk, the segments it names too: still a valid chain.
    assert len(segments_of(tmp_path, "security")) == before + 1 and verify(tmp_path).ok
    with AuditLog(tmp_path, "security", max_bytes=400, keep_segments=2, clock=_Clock()) as log:
        for i in range(6):
            log.security("login", user=f"after-{i}")
    assert len(segments_of(tmp_path, "security")) == 2 and verify(tmp_path).ok


def test_a_torn_tail_is_repaired_on_open_and_recorded(tmp_path: Path) -> None:
    path = _write(tmp_path, 3)
    path.write_bytes(path.read_bytes()[:-7])
    with AuditLog(tmp_path, "security") as log:
        log.security("login", user="x")
    report = verify(path)
    assert report.ok and report.records == 4
    repaired = json.loads(_lines(path)[2])
    assert repaired["fields"]["event"] == "audit_tail_repaired"
    assert repaired["fields"]["dropped_bytes"] > 0


def test_bounded_buffering_and_closed_log(tmp_path: Path) -> None:
    log = AuditLog(tmp_path, "security", sync_every=4)
    for _ in range(3):
        log.security("x")
    log.close()
    assert verify(log.path).records == 3
    with pytest.raises(ValueError):
        log.security("y")
    with pytest.raises(ValueError):
        AuditLog(tmp_path, "security").append("other", {})


@pytest.mark.parametrize(
    ("query", "masked"),
    [
        (
            "MATCH (n:Person {name: 'Alice'}) WHERE n.age > 42 RETURN n",
            "MATCH (n:Person {name: '***'}) WHERE n.age > ? RETURN n",
        ),
        ('RETURN "a\\"b", 1.5e-3, 0x1F, .5', "RETURN '***', ?, ?, ?"),
        ("MATCH p=(a)-[*1..3]->(b) RETURN p", "MATCH p=(a)-[*?..?]->(b) RETURN p"),
        (
            "MATCH (n1:`Weird 'L`) RETURN n1.p2, $param1",
            "MATCH (n1:`Weird 'L`) RETURN n1.p2, $param1",
        ),
        ("CREATE USER bob SET PASSWORD 'secret123'", "CREATE USER bob SET PASSWORD '***'"),
        ("RETURN 1 // 'gone' 99\n, 2 /* 7 */", "RETURN ?  \n, ?  "),
        ("RETURN 'unterminated 123", "RETURN '***'"),
        ("RETURN `open 5", "RETURN '***'"),
    ],
)
def test_mask_query_examples(query: str, masked: str) -> None:
    assert mask_query(query) == masked


_TEMPLATES = [
    "MATCH (n {{p: {lit}}}) RETURN n",
    "RETURN {lit} AS x, 'z'",
    "CREATE USER u SET PASSWORD {lit} CHANGE NOT REQUIRED",
    "RETURN [{lit}, {lit}] // {raw}\n",
    "RETURN 1 /* {raw} */ + {lit}",
]


def _string_literal(text: str, quote: str) -> str:
    return quote + text.replace("\\", "\\\\").replace(quote, "\\" + quote) + quote


@settings(max_examples=300, deadline=None)
@given(
    template=st.sampled_from(_TEMPLATES),
    text=st.text(max_size=30),
    other=st.text(max_size=30),
    quote=st.sampled_from("'\""),
    number=st.one_of(
        st.integers(min_value=0), st.floats(min_value=0, allow_nan=False, allow_infinity=False)
    ),
)
def test_masking_never_depends_on_a_literal(
    template: str, text: str, other: str, quote: str, number: float
) -> None:
    """Whatever the literal, the masked query is the same as with a fixed one: nothing of it
    can leak."""
    raw = text.replace("*/", "").replace("\n", "")
    fixed = mask_query(template.format(lit="'x'", raw=""))
    assert mask_query(template.format(lit=_string_literal(text, quote), raw=raw)) == fixed
    number_text = repr(number)
    fixed_number = mask_query(template.format(lit="0", raw=""))
    assert (
        mask_query(template.format(lit=number_text, raw=other.replace("*/", "").replace("\n", "")))
        == fixed_number
    )
