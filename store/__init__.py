"""Storage: the RocksDB keyspace behind one Quiver node.

Will own (issue #3): column families per concern through ``rocksdict``; graph records
(nodes, relationships, adjacency by direction and type, label/type membership, property
indexes and uniqueness constraints, tokenised names); the durable implementations of
``raft``'s log, stable and snapshot storage protocols; encryption at rest with AES-256-GCM
(a fresh nonce per value, the record's key as associated data, versioned data keys wrapped
by a key-encryption key, keyed HMAC for index keys over property values); snapshots.

Must never: write a plaintext value or property to disk, or import ``cypher``,
``cluster`` or ``chaos``.

Nothing is implemented yet; this package arrives with issue #3.
"""
