"""The tamper-evident audit log: JSON lines, each record chained to the previous by a hash.

A record is one line of canonical JSON::

    {"seq": 7, "ts": 1700000000.123, "kind": "security", "fields": {...},
     "prev": "<hash of record 6>", "hash": "<hash of this record>"}

``hash`` is SHA-256 (or HMAC-SHA-256 when the log has a key) over the canonical JSON of every
other member, ``prev`` included, so each record commits to the whole history before it. The
first record of a chain has ``prev`` = 64 zeros and ``seq`` = 1. Files rotate into numbered
segments (``<name>.000001.jsonl``, ``<name>.000002.jsonl``, ...); the next segment carries the
chain on (its first record's ``prev`` is the last hash of the one before).

:func:`verify` walks a file or a directory's segments and names the first bad line: an edited
record (hash mismatch), a removed one (sequence gap), an inserted or reordered one (sequence
or chain mismatch) and a truncated tail (a last line without its newline or not JSON).
Without a key a forger who rewrites every later record can rebuild a consistent chain, and
dropping whole records from the end at a line boundary leaves a valid prefix; a key, and an
anchor of the last hash kept elsewhere, close those gaps.

Retention (``keep_segments``): past that many segments the oldest are deleted at a rotation,
after a record (``audit_segments_retired``, with the last retired record's ``seq`` and
``hash``) is written and synced in the new one. A chain may then start mid-way, and
:func:`verify` accepts that only where such a record accounts for exactly the missing start:
segments deleted by hand are reported.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

GENESIS = "0" * 64
KINDS = ("security", "query")
_SEGMENT = re.compile(r"^(?P<name>.+)\.(?P<index>\d{6})\.jsonl$")


_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)
"""What ``json.dumps`` with these options builds anew on every call (a record's fields are
encoded once per record, on the query log once per statement)."""


def canonical(value: Any) -> bytes:
    """Canonical JSON: sorted keys, no spaces, UTF-8, no NaN."""
    return _CANONICAL.encode(value).encode()


def record_hash(body: Mapping[str, Any], key: bytes | None = None) -> str:
    """The hash of a record's members other than ``hash`` (``prev`` included)."""
    data = canonical({k: v for k, v in body.items() if k != "hash"})
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _query_fields(
    user: str,
    client: str,
    query: str,
    duration_ms: float,
    rows: int,
    outcome: str,
    parameters: Mapping[str, Any] | None = None,
    database: str = "",
    impersonated: str = "",
    literals: bool = False,
) -> dict[str, Any]:
    """The fields of a query-log record (see :meth:`AuditLog.query`)."""
    fields: dict[str, Any] = {
        "user": user,
        "client": client,
        "query": query if literals else masked(query),
        "parameters": sorted(parameters or {}),
        "duration_ms": duration_ms,
        "rows": rows,
        "outcome": outcome,
    }
    if database:
        fields["database"] = database
    if impersonated:
        fields["impersonated"] = impersonated
    return fields


def segment_path(directory: Path, name: str, index: int) -> Path:
    return directory / f"{name}.{index:06d}.jsonl"


class AuditLog:
    """Appends chained records to ``<directory>/<name>.<n>.jsonl``, rotating past
    ``max_bytes``.

    At most ``sync_every`` records are written but not yet fsynced (1: every append is
    durable before it returns); every record is handed to the kernel before ``append``
    returns (a batch of :meth:`queries`, before it returns), so only a machine crash can
    lose the unsynced ones. Thread-safe. On open the
    chain is picked up from the newest segment; a torn last line (a crash mid-write) is cut
    off and the repair itself recorded.
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        name: str = "audit",
        *,
        key: bytes | None = None,
        max_bytes: int = 16 * 1024 * 1024,
        sync_every: int = 1,
        keep_segments: int = 0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if sync_every < 1:
            raise ValueError("sync_every must be at least 1")
        if keep_segments < 0:
            raise ValueError("keep_segments must be 0 (keep every segment) or more")
        self.directory = Path(directory)
        self.name = name
        self._key = key
        self._max_bytes = max_bytes
        self._sync_every = sync_every
        self._keep = keep_segments
        self._clock = clock
        self._lock = threading.Lock()
        self._unsynced = 0
        self.directory.mkdir(parents=True, exist_ok=True)
        segments = segments_of(self.directory, name)
        self._index = segments[-1][0] if segments else 1
        self._seq = 0
        self._prev = GENESIS
        repaired = 0
        if segments:
            repaired = self._recover(segment_path(self.directory, name, self._index))
        self._file = open(  # noqa: SIM115 - held open for the log's lifetime
            segment_path(self.directory, name, self._index), "ab"
        )
        self._size = self._file.tell()
        if repaired:
            self.append("security", {"event": "audit_tail_repaired", "dropped_bytes": repaired})

    def _recover(self, path: Path) -> int:
        """Pick the chain up from ``path`` (or an earlier segment if it is empty); cut a torn
        tail. Returns the bytes cut."""
        data = path.read_bytes()
        cut = 0
        if data and not data.endswith(b"\n"):
            keep = data.rfind(b"\n") + 1
            cut = len(data) - keep
            with open(path, "r+b") as handle:
                handle.truncate(keep)
                handle.flush()
                os.fsync(handle.fileno())
            data = data[:keep]
        last = _last_line(data)
        index = self._index
        while last is None and index > 1:
            index -= 1
            earlier = segment_path(self.directory, self.name, index)
            if not earlier.exists():
                break  # retired: the chain starts in the (empty) newest segment's record
            last = _last_line(earlier.read_bytes())
        if last is not None:
            record = json.loads(last)
            self._seq = int(record["seq"])
            self._prev = str(record["hash"])
        return cut

    @property
    def path(self) -> Path:
        return segment_path(self.directory, self.name, self._index)

    @property
    def last_hash(self) -> str:
        """The newest record's hash: keep it elsewhere to anchor the tail."""
        return self._prev

    def append(self, kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Append one record; returns it. Durable on return unless ``sync_every`` > 1."""
        if kind not in KINDS:
            raise ValueError(f"unknown audit record kind {kind!r}")
        with self._lock:
            if self._file.closed:
                raise ValueError("the audit log is closed")
            record = self._append(kind, fields)
            if self._unsynced:
                self._file.flush()  # in the kernel at once: a killed process loses nothing
            return record

    def _append(self, kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Append one record under the lock, synced when ``sync_every`` is reached, else
        maybe still in the file's buffer (the caller flushes)."""
        record, line = self._build(kind, fields)
        if self._size > 0 and self._size + len(line) > self._max_bytes:
            self._rotate()  # may write a retirement record first: build again
            record, line = self._build(kind, fields)
        self._write(record, line)
        return record

    def _build(self, kind: str, fields: Mapping[str, Any]) -> tuple[dict[str, Any], bytes]:
        """The next record and its line (changes nothing)."""
        record: dict[str, Any] = {
            "seq": self._seq + 1,
            "ts": round(self._clock(), 6),
            "kind": kind,
            "fields": dict(fields),
            "prev": self._prev,
        }
        # canonical(record) without and then with "hash", the fields encoded once: the
        # other members are a known kind, a hex hash, an int and a float (whose JSON is
        # their repr), in sorted order.
        head = b'{"fields":' + canonical(record["fields"])
        tail = (
            f',"kind":"{kind}","prev":"{self._prev}","seq":{record["seq"]!r},'
            f'"ts":{record["ts"]!r}}}'
        ).encode()
        body = head + tail
        if self._key is None:
            digest = hashlib.sha256(body).hexdigest()
        else:
            digest = hmac.new(self._key, body, hashlib.sha256).hexdigest()
        record["hash"] = digest
        line = head + b',"hash":"' + digest.encode() + b'"' + tail + b"\n"
        assert self._seq > 0 or line == canonical(record) + b"\n", "not canonical JSON"
        return record, line

    def _write(self, record: dict[str, Any], line: bytes) -> None:
        self._file.write(line)
        self._size += len(line)
        self._seq += 1
        self._prev = record["hash"]
        self._unsynced += 1
        if self._unsynced >= self._sync_every:
            self._sync()

    def security(self, event: str, **fields: Any) -> dict[str, Any]:
        """A security-log record: ``event`` (login, login_failed, lockout, ...) and details."""
        return self.append("security", {"event": event, **fields})

    def query(
        self,
        *,
        user: str,
        client: str,
        query: str,
        duration_ms: float,
        rows: int,
        outcome: str,
        parameters: Mapping[str, Any] | None = None,
        database: str = "",
        impersonated: str = "",
        literals: bool = False,
    ) -> dict[str, Any]:
        """A query-log record: the query with its literals masked (kept only with
        ``literals``); parameter values withheld (only their names are kept). ``user`` is
        who logged in, ``impersonated`` who the statement ran as when that is someone else."""
        return self.append(
            "query",
            _query_fields(
                user, client, query, duration_ms, rows, outcome, parameters, database,
                impersonated, literals,
            ),
        )  # fmt: skip

    def queries(self, records: Iterable[Mapping[str, Any]], *, literals: bool = False) -> None:
        """Query-log records, each the keyword arguments of :meth:`query`, appended in
        order and handed to the kernel together when the last is appended: one write for
        a batch instead of one per record (each write lets go of the GIL, and taking it
        back is a thread hand-off while the event loop holds it)."""
        with self._lock:
            if self._file.closed:
                raise ValueError("the audit log is closed")
            appended = False
            try:
                for fields in records:
                    self._append("query", _query_fields(**fields, literals=literals))
                    appended = True
            finally:
                if appended and self._unsynced:
                    self._file.flush()

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.fileno())
        self._unsynced = 0

    def _rotate(self) -> None:
        self._sync()
        self._file.close()
        self._index += 1
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._size = 0
        _fsync_dir(self.directory)
        self._retire()

    def _retire(self) -> None:
        """Past ``keep_segments``, delete the oldest segments: first a record of what goes
        (synced, in the new segment), then the files. A crash in between leaves them, to
        be deleted at the next rotation; the chain verifies either way."""
        if not self._keep:
            return
        segments = segments_of(self.directory, self.name)
        old = segments[: max(0, len(segments) - self._keep)]
        last = None
        for _index, path in reversed(old):
            last = _last_line(path.read_bytes())
            if last is not None:
                break
        if last is not None:
            retired = json.loads(last)
            fields = {
                "event": "audit_segments_retired",
                "segments": [index for index, _path in old],
                "through_seq": retired["seq"],
                "through_hash": retired["hash"],
            }
            self._write(*self._build("security", fields))
            self._sync()
        for _index, path in old:
            path.unlink()
        if old:
            _fsync_dir(self.directory)

    def flush(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._sync()

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._sync()
                self._file.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _last_line(data: bytes) -> bytes | None:
    lines = data.rstrip(b"\n").rsplit(b"\n", 1)
    return lines[-1] if lines[-1] else None


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def segments_of(directory: Path, name: str | None = None) -> list[tuple[int, Path]]:
    """The numbered segments in ``directory`` (of one log, or of all), oldest first."""
    found = []
    for path in directory.iterdir():
        match = _SEGMENT.match(path.name)
        if match and (name is None or match["name"] == name):
            found.append((int(match["index"]), path))
    return sorted(found)


@dataclass(frozen=True, slots=True)
class Problem:
    """The first bad line: the file, its 1-based line number, and what is wrong."""

    path: Path
    line: int
    what: str

    def __str__(self) -> str:
        return f"audit log {self.path} line {self.line}: {self.what}"


@dataclass(slots=True)
class Report:
    """What :func:`verify` found: how many records checked out, and the first problem."""

    records: int = 0
    files: list[Path] = field(default_factory=list)
    problem: Problem | None = None

    @property
    def ok(self) -> bool:
        return self.problem is None


def verify(path: str | os.PathLike[str], key: bytes | None = None) -> Report:
    """Verify a log file, or every log in a directory (each log's segments in order, the
    chain carried across them). Stops at the first bad line."""
    target = Path(path)
    report = Report()
    if target.is_dir():
        logs: dict[str, list[Path]] = {}
        for path_ in sorted(target.iterdir()):
            match = _SEGMENT.match(path_.name)
            if match:
                logs.setdefault(match["name"], [])
        for name in sorted(logs):
            chain = [p for _i, p in segments_of(target, name)]
            _verify_chain(chain, key, report)
            if report.problem:
                break
        return report
    _verify_chain([target], key, report)
    return report


def _verify_chain(files: Iterable[Path], key: bytes | None, report: Report) -> None:
    expected_seq: int | None = None
    prev: str | None = None
    first: tuple[Path, int, str] | None = None  # where the chain starts: file, seq, prev
    retired: dict[int, str] = {}  # through_seq -> through_hash, from retirement records
    for path in files:
        report.files.append(path)
        data = path.read_bytes()
        lines = data.split(b"\n")
        complete = lines[:-1]  # the piece after the last newline is b"" unless torn
        torn = lines[-1]
        for number, raw in enumerate(complete, start=1):
            must_start = expected_seq is None and not _is_later_segment(path)
            what, record = _check_line(raw, key, expected_seq, prev, must_start)
            if what:
                report.problem = Problem(path, number, what)
                return
            assert record is not None
            if first is None:
                first = (path, record["seq"], record["prev"])
            fields = record["fields"]
            if isinstance(fields, dict) and fields.get("event") == "audit_segments_retired":
                retired[fields.get("through_seq")] = fields.get("through_hash")
            expected_seq = record["seq"] + 1
            prev = record["hash"]
            report.records += 1
        if torn:
            report.problem = Problem(
                path, len(complete) + 1, "truncated record (the last line has no end)"
            )
            return
    if first is not None and first[1] != 1 and retired.get(first[1] - 1) != first[2]:
        report.problem = Problem(
            first[0],
            1,
            f"the log starts at seq {first[1]}: records before it are missing, and no "
            "retention record (audit_segments_retired) accounts for them",
        )


def _is_later_segment(path: Path) -> bool:
    match = _SEGMENT.match(path.name)
    return bool(match) and int(match["index"]) > 1


def _check_line(
    raw: bytes, key: bytes | None, expected_seq: int | None, prev: str | None, must_start: bool
) -> tuple[str | None, dict[str, Any] | None]:
    try:
        record = json.loads(raw)
    except ValueError:
        return "not a JSON record (corrupted or truncated)", None
    members = {"seq", "ts", "kind", "fields", "prev", "hash"}
    if not isinstance(record, dict) or set(record) != members:
        return "not an audit record (wrong members)", None
    if not isinstance(record["seq"], int) or not isinstance(record["hash"], str):
        return "not an audit record (wrong member types)", None
    try:
        digest = record_hash(record, key)
    except ValueError:
        return "not an audit record (unencodable)", None
    if not hmac.compare_digest(digest, record["hash"]):
        return "record edited or forged (hash mismatch)", None
    seq = record["seq"]
    if expected_seq is None:
        # The first record seen: a chain's start, or (after retention) a later segment.
        # Only a segment after the first may start mid-chain (older ones retired).
        if (seq == 1 or must_start) and (seq != 1 or record["prev"] != GENESIS):
            return f"the log does not start at its first record (seq {seq})", None
        return None, record
    if seq > expected_seq:
        missing = seq - expected_seq
        return (
            f"{missing} record(s) missing before this one, removed or reordered "
            f"(seq {seq}, expected {expected_seq})",
            None,
        )
    if seq < expected_seq:
        return f"record inserted or reordered (seq {seq}, expected {expected_seq})", None
    if record["prev"] != prev:
        return "record inserted or reordered (previous hash does not match)", None
    return None, record


# --- query masking -----------------------------------------------------------------------

MASK_CACHE_ENTRIES = 1024
MASK_CACHE_MAX_CHARS = 4096
"""Queries up to this long keep their masked form in a cache: a statement sent again (the
usual case, with parameters) costs a lookup instead of a tokenizer pass per record."""


@functools.lru_cache(maxsize=MASK_CACHE_ENTRIES)
def _masked_cached(query: str) -> str:
    return mask_query(query)


def masked(query: str) -> str:
    """:func:`mask_query`, remembered for short queries."""
    return _masked_cached(query) if len(query) <= MASK_CACHE_MAX_CHARS else mask_query(query)


MASKED_STRING = "'***'"
MASKED_NUMBER = "?"


def _is_ident_start(char: str) -> bool:
    return char.isalpha() or char == "_"


def _is_ident_part(char: str) -> bool:
    return char.isalnum() or char == "_"


def mask_query(query: str) -> str:
    """``query`` with every string literal replaced by ``'***'``, every number by ``?`` and
    every comment dropped (comments can hold anything). Identifiers (also `quoted` ones) and
    ``$parameters`` are kept. Not a parser: a tokenizer that respects quotes, backslash
    escapes and comments, masking too much rather than too little (an unterminated string
    or comment swallows the rest)."""
    out: list[str] = []
    i = 0
    n = len(query)
    while i < n:
        char = query[i]
        if char in "'\"":
            i = _skip_string(query, i + 1, char)
            out.append(MASKED_STRING)
        elif char == "`":
            end = i + 1
            while end < n:
                if query[end] == "`":
                    if end + 1 < n and query[end + 1] == "`":
                        end += 2
                        continue
                    break
                end += 1
            if end >= n:  # unterminated: mask it all
                out.append(MASKED_STRING)
                i = n
            else:
                out.append(query[i : end + 1])
                i = end + 1
        elif query.startswith("//", i):
            end = query.find("\n", i)
            i = n if end < 0 else end
            out.append(" ")
        elif query.startswith("/*", i):
            end = query.find("*/", i + 2)
            i = n if end < 0 else end + 2
            out.append(" ")
        elif char == "$" or _is_ident_start(char):
            end = i + 1
            while end < n and _is_ident_part(query[end]):
                end += 1
            out.append(query[i:end])
            i = end
        elif char.isdigit() or (
            char == "." and i + 1 < n and query[i + 1].isdigit() and query[i - 1 : i] != "."
        ):
            i = _skip_number(query, i)
            out.append(MASKED_NUMBER)
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _skip_string(query: str, i: int, quote: str) -> int:
    n = len(query)
    while i < n:
        if query[i] == "\\":
            i += 2
        elif query[i] == quote:
            return i + 1
        else:
            i += 1
    return n


def _skip_number(query: str, i: int) -> int:
    n = len(query)
    while i < n:
        char = query[i]
        if _is_ident_part(char):
            if char in "eE" and i + 1 < n and query[i + 1] in "+-":
                i += 2
            else:
                i += 1
        elif char == "." and i + 1 < n and query[i + 1].isdigit():
            i += 1
        else:
            break
    return i
