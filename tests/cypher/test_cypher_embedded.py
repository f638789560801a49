"""The embedded API: open a store, run statements, get columns, rows and counters."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cypher import CypherError
from cypher.embedded import EmbeddedDatabase


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "kek"
    path.write_bytes(os.urandom(32).hex().encode())
    path.chmod(0o600)
    return path


def test_writes_survive_reopening_an_encrypted_database(tmp_path: Path, key_file: Path) -> None:
    with EmbeddedDatabase.open(tmp_path / "db", key_file) as db:
        created = db.run("CREATE (:Person {name: $name})-[:KNOWS]->(:Person)", {"name": "Ada"})
        assert created.counters["nodes_created"] == 2
        assert created.counters["relationships_created"] == 1
    with EmbeddedDatabase.open(tmp_path / "db", key_file) as db:
        result = db.run("MATCH (p:Person)-[:KNOWS]->() RETURN p.name AS name")
        assert result.columns == ["name"]
        assert result.rows == [["Ada"]]
    raw = b"".join(p.read_bytes() for p in (tmp_path / "db").rglob("*") if p.is_file())
    assert b"Ada" not in raw


def test_a_transaction_sees_its_own_writes_and_an_exception_discards_them(
    tmp_path: Path, key_file: Path
) -> None:
    with EmbeddedDatabase.open(tmp_path / "db", key_file) as db:
        with db.transaction() as tx:
            tx.run("CREATE (:N {v: 1})")
            assert tx.run("MATCH (n:N) RETURN count(n) AS c").rows == [[1]]
        with pytest.raises(RuntimeError), db.transaction() as tx:
            tx.run("CREATE (:N {v: 2})")
            raise RuntimeError("the caller gave up")
        assert db.run("MATCH (n:N) RETURN n.v").rows == [[1]]


def test_a_bad_statement_is_a_typed_error_and_changes_nothing(
    tmp_path: Path, key_file: Path
) -> None:
    with EmbeddedDatabase.open(tmp_path / "db", key_file) as db:
        with pytest.raises(CypherError) as raised:
            db.run("CREATE (n) RETURN m")
        assert raised.value.status_code.startswith("Neo.ClientError.Statement.")
        assert db.run("MATCH (n) RETURN count(n)").rows == [[0]]
