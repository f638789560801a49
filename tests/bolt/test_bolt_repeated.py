"""What a Bolt connection remembers of the messages a driver repeats — the fields of a short
PULL, DISCARD or BEGIN by its bytes, a RUN's extra by its bytes, the options built from an
extra, a read's SUCCESS messages packed once — never answers a message other than the way
it answers it the first time: a changed extra (database, access mode, bookmarks), a changed
PULL size or BEGIN mode takes effect at once, and a remembered SUCCESS is byte for byte the
one packed afresh. A ``Connection`` is driven message by message (no socket)."""

from __future__ import annotations

import asyncio
import struct
from typing import Any

import pytest

from cluster.bolt import packstream as ps
from cluster.bolt import server as bolt
from cluster.bolt.backend import ACCESS_MODE_ERROR, DATABASE_NOT_FOUND
from cluster.bolt.embedded import EmbeddedBackend

READ = {"db": "neo4j", "mode": "r"}
WRITE = {"db": "neo4j"}


class Writer:
    """The connection's transport: what it wrote."""

    def __init__(self) -> None:
        self.written = bytearray()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 7687)

    def write(self, data: bytes) -> None:
        self.written += data

    async def drain(self) -> None:
        pass


def _message(tag: int, *fields: Any) -> bytes:
    out = bytearray()
    ps.Packer(True, out).pack_structure(tag, list(fields))
    return bytes(out)


def _answers(connection: bolt.Connection) -> list[tuple[int, list[Any], bytes]]:
    """(tag, fields, framed bytes) of each message the connection queued since last asked."""
    data = bytes(connection.outbox)
    connection.outbox.clear()
    answers = []
    position = 0
    while position < len(data):
        start = position
        body = bytearray()
        while True:
            (size,) = struct.unpack_from(">H", data, position)
            position += 2
            if size == 0:
                break
            body += data[position : position + size]
            position += size
        unpacker = ps.Unpacker(bytes(body))
        count, tag = unpacker.unpack_structure_header()
        answers.append((tag, [unpacker.unpack() for _ in range(count)], data[start:position]))
    return answers


class Session:
    def __init__(self) -> None:
        self.connection = bolt.Connection(
            EmbeddedBackend({"neo4j": "secret"}),
            None,  # type: ignore[arg-type]  # not read: messages are handed over
            Writer(),
            60.0,
            30.0,
        )
        self.connection.version = (5, 8)
        self.connection.session.state = bolt.State.AUTHENTICATION
        login = {"scheme": "basic", "principal": "neo4j", "credentials": "secret"}
        assert self.send(bolt.LOGON, login) == [(bolt.SUCCESS, {})]

    def send(self, tag: int, *fields: Any) -> list[tuple[int, Any]]:
        asyncio.run(self.connection._handle(_message(tag, *fields)))
        return [(t, f[0] if f else None) for t, f, _ in _answers(self.connection)]

    def statement(
        self, query: str, extra: dict[str, Any], pull: dict[str, Any] | None = None
    ) -> list[tuple[int, Any]]:
        answers = self.send(bolt.RUN, query, {}, extra)
        if answers[-1][0] == bolt.FAILURE:
            assert self.send(bolt.RESET) == [(bolt.SUCCESS, {})]
            return answers
        return answers + self.send(bolt.PULL, pull or {"n": -1})


def _code(answers: list[tuple[int, Any]]) -> str:
    tag, metadata = answers[-1]
    return str(metadata["neo4j_code"]) if tag == bolt.FAILURE else ""


def test_a_changed_run_extra_takes_effect_at_once() -> None:
    session = Session()
    create = "CREATE (:Thing) RETURN 1 AS one"
    assert _code(session.statement("RETURN 1 AS one", READ)) == ""
    assert _code(session.statement("RETURN 1 AS one", READ)) == ""
    assert _code(session.statement(create, READ)) == ACCESS_MODE_ERROR
    assert _code(session.statement(create, WRITE)) == ""
    assert _code(session.statement(create, READ)) == ACCESS_MODE_ERROR
    assert _code(session.statement("RETURN 1", {"db": "nope"})) == DATABASE_NOT_FOUND
    assert _code(session.statement("RETURN 1", {**READ, "bookmarks": ["x"]})) != ""
    assert _code(session.statement("RETURN 1", READ)) == ""


def test_a_changed_pull_size_takes_effect_at_once() -> None:
    session = Session()
    query = "UNWIND range(1, 5) AS i RETURN i"
    for _ in range(2):
        answers = session.statement(query, READ, {"n": 2})
        assert [f for t, f in answers if t == bolt.RECORD] == [[1], [2]]
        assert answers[-1] == (bolt.SUCCESS, {"has_more": True})
        answers = session.send(bolt.PULL, {"n": -1})
        assert [f for t, f in answers if t == bolt.RECORD] == [[3], [4], [5]]
        assert "has_more" not in answers[-1][1]
    answers = session.statement(query, READ, {"n": 2})
    assert session.send(bolt.DISCARD, {"n": -1})[-1][1]["type"] == "r"
    assert session.statement(query, READ)[-2] == (bolt.RECORD, [5])


def test_a_changed_begin_takes_effect_at_once() -> None:
    session = Session()
    create = "CREATE (:Thing) RETURN 1 AS one"
    for mode, expected in (("w", ""), ("w", ""), ("r", ACCESS_MODE_ERROR), ("w", "")):
        assert session.send(bolt.BEGIN, {"db": "neo4j", "mode": mode}) == [(bolt.SUCCESS, {})]
        answers = session.send(bolt.RUN, create, {}, {})
        if _code(answers) == "":
            answers += session.send(bolt.PULL, {"n": -1})
        if _code(answers) == "":
            assert session.send(bolt.COMMIT)[0][0] == bolt.SUCCESS
        else:
            assert session.send(bolt.RESET) == [(bolt.SUCCESS, {})]
        assert _code(answers) == expected


def test_a_remembered_success_is_the_one_packed_afresh(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bolt, "_ms_since", lambda started: 0)  # t_first, t_last: one value
    session = Session()
    connection = session.connection

    def framed() -> list[bytes]:
        asyncio.run(connection._handle(_message(bolt.RUN, "RETURN 7 AS seven", {}, READ)))
        asyncio.run(connection._handle(_message(bolt.PULL, {"n": -1})))
        return [raw for _, _, raw in _answers(connection)]

    first = framed()
    assert connection._packed  # kept for the next statement
    again = framed()
    connection._packed.clear()
    connection._repeated.clear()
    connection._extra_bytes = None
    fresh = framed()
    assert first == again == fresh
    assert [raw[3] for raw in fresh] == [bolt.SUCCESS, bolt.RECORD, bolt.SUCCESS]  # tags
