"""The query language: Cypher parser, planner and executor over a graph view.

Public entry point::

    from cypher import Engine
    engine = Engine()
    result = engine.run(view, "MATCH (n:Person {id: $id}) RETURN n.name", {"id": 7})
    result.columns     # ["n.name"]
    result.rows        # [["Ada"]]; nodes/relationships/paths as cypher.Node/Relationship/Path
    result.counters    # Neo4j counters: nodes_created, properties_set, labels_added, ...
    result.write_set   # store.writeset.WriteSet: apply it (or propose it to Raft)
    result.plan        # EXPLAIN/PROFILE: cypher.PlanOperator tree (estimated, actual rows)

`cypher.embedded.EmbeddedDatabase.open(path, key_file)` is the embedded API for tests and
tools: an encrypted RocksDB store whose `run()` applies each statement's write set at once.

`engine.begin(view)` opens a `Transaction` whose statements read each other's pending writes;
`commit()` returns the combined write set. `engine.register_procedure(signature, fn)` adds a
procedure (`db.labels`, `db.relationshipTypes`, `db.propertyKeys`, `dbms.components` are
built in). Errors are `cypher.CypherError` with a Neo4j `status_code`.

Owns: parsing (lark LALR, grammar in ``cypher.lark``), semantic analysis, plans cached by
query text, execution over ``store``'s GraphView plus the overlay of pending writes
(``cypher.txstate``), and the deterministic write set.
Must never: touch RocksDB directly, propose to Raft, or import ``cluster`` or ``chaos``.
"""

from cypher.engine import Engine, Result, Transaction
from cypher.errors import CypherError
from cypher.executor import Limits
from cypher.plan import PlanOperator
from cypher.values import Node, Path, Relationship

__all__ = [
    "CypherError",
    "Engine",
    "Limits",
    "Node",
    "Path",
    "PlanOperator",
    "Relationship",
    "Result",
    "Transaction",
]
