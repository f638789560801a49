"""The filtered view shares which nodes carry a denied label between statements that read the
same store at the same applied index: a write set applied (a label set or removed) must show
in the very next statement, and another store must never see the first one's answers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cluster.security.privileges import NODES, RELATIONSHIPS, Action, deny, grant, resolve
from cypher import Engine
from store.crypto import Keyring
from store.graph import GraphStore

KEK = bytes(range(32))
ENGINE = Engine()
RESTRICTED = resolve(
    ["r"],
    {
        "r": [
            grant(Action.MATCH, NODES),
            grant(Action.MATCH, RELATIONSHIPS),
            deny(Action.TRAVERSE, NODES, ["Secret"]),
        ]
    },
)
FRIENDS = "MATCH (:Person {name: 'hub'})-[:KNOWS]->(f) RETURN f.name ORDER BY f.name"


class Store:
    def __init__(self, path: Path) -> None:
        self.graph = GraphStore(path / "graph", Keyring(path, KEK))
        self.index = 0

    def run(self, query: str, privileges: Any = None) -> list[list[Any]]:
        result = ENGINE.run(self.graph, query, None, privileges)
        if result.write_set.operations:
            self.index += 1
            self.graph.apply(result.write_set, self.index)
        return result.rows


@pytest.fixture
def stores(tmp_path: Path) -> Iterator[tuple[Store, Store]]:
    first, second = Store(tmp_path / "a"), Store(tmp_path / "b")
    for store in (first, second):
        store.run(
            "CREATE (h:Person {name: 'hub'}), (h)-[:KNOWS]->(:Person {name: 'ann'}),"
            " (h)-[:KNOWS]->(:Person {name: 'bo'})"
        )
    try:
        yield first, second
    finally:
        first.graph.close()
        second.graph.close()


def test_an_applied_label_change_shows_in_the_next_statement(stores: tuple[Store, Store]) -> None:
    store, _ = stores
    assert store.run(FRIENDS, RESTRICTED) == [["ann"], ["bo"]]
    store.run("MATCH (n {name: 'bo'}) SET n:Secret")
    assert store.run(FRIENDS, RESTRICTED) == [["ann"]]
    assert store.run(FRIENDS, RESTRICTED) == [["ann"]]  # from the shared answers now
    store.run("MATCH (n {name: 'bo'}) REMOVE n:Secret")
    store.run("MATCH (n {name: 'ann'}) SET n:Secret")
    assert store.run(FRIENDS, RESTRICTED) == [["bo"]]


def test_stores_at_the_same_index_do_not_share_answers(stores: tuple[Store, Store]) -> None:
    first, second = stores
    first.run("MATCH (n {name: 'bo'}) SET n:Secret")
    second.run("MATCH (n {name: 'ann'}) SET n:Secret")
    assert first.index == second.index
    for _ in range(2):
        assert first.run(FRIENDS, RESTRICTED) == [["ann"]]
        assert second.run(FRIENDS, RESTRICTED) == [["bo"]]
