"""Storage: the RocksDB keyspace, the Raft log and encryption at rest of one Quiver node.

Modules, each with one job:
- ``values``, ``writeset``, ``view``, ``memory``: the contract with ``cypher`` (value shapes,
  write sets, the graph read view, and the in-memory reference model);
- ``crypto``: the key-encryption key, versioned wrapped data keys, AES-256-GCM sealing with
  the record key as associated data, per-key encryption counting and rotation, index HMACs;
- ``codec``: deterministic bytes for every value type;
- ``raftlog``: the durable Raft log and hard state (``raft.storage.Storage``), segmented
  CRC-framed files with group commit and torn-tail repair;
- ``graph``: the graph on RocksDB (column families per concern, tokenised names, HMAC-keyed
  property indexes, uniqueness constraints), a ``GraphView``, one-batch write-set apply;
- ``snapshot``: checkpoint-backed, chunked, sealed and checksummed snapshot streams;
- ``node_store``: one node's data directory, opened together;
- ``bench``: ``quiver bench store``.

Must never: write a plaintext value, name or property to disk, or import ``cypher``,
``cluster`` or ``chaos``.
"""
