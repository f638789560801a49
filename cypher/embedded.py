"""The embedded database: open a store, run Cypher, get columns, rows and counters.

For tests, tools and benchmarks that want Quiver's engine and storage without a cluster:
statements run against the store and their write sets are applied at once, each as the
next index (the single-node equivalent of proposing them to Raft). Encrypted by default,
with the key-encryption key from a 0600 key file or ``$QUIVER_KEK``, as a node does.

Owns nothing but the wiring; must never be used by the cluster, which applies write sets
only once Raft committed them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cypher.engine import Engine, Result, Transaction
from store.crypto import Keyring, PlaintextCipher, load_kek
from store.graph import GraphStore


class EmbeddedDatabase:
    def __init__(self, graph: GraphStore, engine: Engine | None = None) -> None:
        self.graph = graph
        self.engine = engine or Engine()

    @classmethod
    def open(
        cls,
        path: Path | str,
        key_file: Path | str | None = None,
        *,
        encrypt: bool = True,
        environ: Mapping[str, str] | None = None,
    ) -> EmbeddedDatabase:
        """Open (or create) a database in directory `path`."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        if encrypt:
            kek = load_kek(Path(key_file) if key_file is not None else None, environ)
            cipher: Keyring | PlaintextCipher = Keyring(root / "keys", kek)
        else:
            cipher = PlaintextCipher()
        return cls(GraphStore(root / "graph", cipher))

    def run(self, query: str, parameters: dict[str, Any] | None = None) -> Result:
        """Run one statement; its writes are durable in the store when this returns."""
        result = self.engine.run(self.graph, query, parameters)
        if result.write_set:
            self.graph.apply(result.write_set, self.graph.applied_index() + 1)
        return result

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Statements that see each other's writes, applied together on success; an
        exception inside the block discards them all."""
        transaction = self.engine.begin(self.graph)
        yield transaction
        write_set = transaction.commit()
        if write_set:
            self.graph.apply(write_set, self.graph.applied_index() + 1)

    def close(self) -> None:
        self.graph.close()

    def __enter__(self) -> EmbeddedDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
