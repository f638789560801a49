"""The query language: Cypher parser, planner and executor over a graph view.

Will own (issue #4): parsing Cypher (with ``lark``), planning (plans cached by query
text), and executing against ``store``'s committed graph plus the overlay of a leader's
pending writes, producing results, Neo4j counters and a deterministic write set.

Must never: touch RocksDB directly, propose to Raft, or import ``cluster`` or ``chaos``.

Nothing is implemented yet; this package arrives with issue #4.
"""
