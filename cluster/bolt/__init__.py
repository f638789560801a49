"""The Bolt face of a node: Neo4j's wire protocol, so Neo4j's drivers and tools work.

``packstream`` encodes values; ``server`` speaks Bolt 5.1-5.8 over asyncio streams (TLS, or
plaintext when explicitly insecure); ``backend`` is the one small interface the server needs
from whatever executes queries (``BoltBackend``), implemented over the embedded engine by
``embedded`` (tests, single process) and over a cluster node by ``cluster.bolt.node``.

Must never: execute Cypher itself, or hold state that a backend's session and transaction
layer already holds.
"""
