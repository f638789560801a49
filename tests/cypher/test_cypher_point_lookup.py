"""A point lookup (index seek on :Person(id), then a property read) on the encrypted store
decrypts the node's record once, as an admin and as a restricted user; a lookup after an
applied write sees the write, and a deleted node is not found."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cypher.bench import LOOKUP
from cypher.engine import Engine
from store.crypto import Keyring
from store.graph import GraphStore

KEK = bytes(range(32))


class CountingKeyring(Keyring):
    """Counts decryptions of node records."""

    node_opens = 0

    def open(self, sealed: bytes, aad: bytes, record: str | None = None) -> bytes:
        if aad.startswith(b"graph:n"):
            self.node_opens += 1
        return super().open(sealed, aad, record)


class _Graph:
    def __init__(self, path: Path) -> None:
        self.cipher = CountingKeyring(path, KEK)
        self.store = GraphStore(path / "graph", self.cipher)
        self.engine = Engine()
        self.index = 0
        self.write("CREATE INDEX person_id FOR (p:Person) ON (p.id)")
        self.write(
            "UNWIND range(0, 9) AS i CREATE (:Person {id: i, name: 'person-' + toString(i)})"
        )

    def write(self, query: str, parameters: dict[str, Any] | None = None) -> None:
        result = self.engine.run(self.store, query, parameters)
        self.index += 1
        self.store.apply(result.write_set, self.index)

    def lookup(self, person_id: int, privileges: Any = None) -> list[list[Any]]:
        return self.engine.run(self.store, LOOKUP, {"id": person_id}, privileges).rows


def test_a_point_lookup_decrypts_the_node_record_once(tmp_path: Path) -> None:
    from cluster.security.privileges import NODES, Action, deny, grant, resolve

    graph = _Graph(tmp_path)
    restricted = resolve(
        ["restricted"],
        {
            "restricted": [
                grant(Action.MATCH, NODES),
                deny(Action.READ, NODES, ["Person"], ["email"]),
            ]
        },
    )
    for person_id, privileges in ((3, None), (4, resolve(["admin"])), (5, restricted)):
        before = graph.cipher.node_opens
        assert graph.lookup(person_id, privileges) == [[f"person-{person_id}"]]
        assert graph.cipher.node_opens == before + 1


def test_a_lookup_after_a_write_sees_it_and_a_deleted_node_is_not_found(tmp_path: Path) -> None:
    graph = _Graph(tmp_path)
    assert graph.lookup(7) == [["person-7"]]
    graph.write("MATCH (p:Person {id: 7}) SET p.name = 'renamed'")
    assert graph.lookup(7) == [["renamed"]]
    graph.write("MATCH (p:Person {id: 7}) SET p.id = 70")
    assert graph.lookup(7) == []
    assert graph.lookup(70) == [["renamed"]]
    graph.write("MATCH (p:Person {id: 70}) DELETE p")
    assert graph.lookup(70) == []
