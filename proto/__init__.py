"""Generated protobuf/gRPC modules for quiver.v1, beside their .proto sources.

Owns the wire contracts: ``raft.proto`` (peer API: Raft messages and the transport
service) and ``client.proto`` (client API: Cypher queries and transactions).

The ``*_pb2.py``, ``*_pb2.pyi`` and ``*_pb2_grpc.py`` files are written by protoc; never
edit them by hand. Regenerate with ``make proto`` (protoc runs from the repository root,
so generated imports read ``from proto import raft_pb2``); ``tests/test_proto_generated.py``
fails when they are stale. ``raft/`` never imports this package: the transport converts
between these messages and the core's dataclasses at the edge.
"""
