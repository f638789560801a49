from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Role(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLE_UNSPECIFIED: _ClassVar[Role]
    ROLE_FOLLOWER: _ClassVar[Role]
    ROLE_CANDIDATE: _ClassVar[Role]
    ROLE_LEADER: _ClassVar[Role]
    ROLE_LEARNER: _ClassVar[Role]
ROLE_UNSPECIFIED: Role
ROLE_FOLLOWER: Role
ROLE_CANDIDATE: Role
ROLE_LEADER: Role
ROLE_LEARNER: Role

class StatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class NodeStatus(_message.Message):
    __slots__ = ("id", "zone", "role", "term", "commit_index", "applied_index", "leader_id", "leader_address", "pid", "voters", "learners", "match_index", "snapshot_index", "first_index", "snapshots_installed", "snapshots_taken")
    class MatchIndexEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: int
        value: int
        def __init__(self, key: _Optional[int] = ..., value: _Optional[int] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    TERM_FIELD_NUMBER: _ClassVar[int]
    COMMIT_INDEX_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    LEADER_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    LEARNERS_FIELD_NUMBER: _ClassVar[int]
    MATCH_INDEX_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_INDEX_FIELD_NUMBER: _ClassVar[int]
    FIRST_INDEX_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_INSTALLED_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOTS_TAKEN_FIELD_NUMBER: _ClassVar[int]
    id: int
    zone: str
    role: Role
    term: int
    commit_index: int
    applied_index: int
    leader_id: int
    leader_address: str
    pid: int
    voters: _containers.RepeatedScalarFieldContainer[int]
    learners: _containers.RepeatedScalarFieldContainer[int]
    match_index: _containers.ScalarMap[int, int]
    snapshot_index: int
    first_index: int
    snapshots_installed: int
    snapshots_taken: int
    def __init__(self, id: _Optional[int] = ..., zone: _Optional[str] = ..., role: _Optional[_Union[Role, str]] = ..., term: _Optional[int] = ..., commit_index: _Optional[int] = ..., applied_index: _Optional[int] = ..., leader_id: _Optional[int] = ..., leader_address: _Optional[str] = ..., pid: _Optional[int] = ..., voters: _Optional[_Iterable[int]] = ..., learners: _Optional[_Iterable[int]] = ..., match_index: _Optional[_Mapping[int, int]] = ..., snapshot_index: _Optional[int] = ..., first_index: _Optional[int] = ..., snapshots_installed: _Optional[int] = ..., snapshots_taken: _Optional[int] = ...) -> None: ...

class TransferLeaderRequest(_message.Message):
    __slots__ = ("to",)
    TO_FIELD_NUMBER: _ClassVar[int]
    to: int
    def __init__(self, to: _Optional[int] = ...) -> None: ...

class TransferLeaderResponse(_message.Message):
    __slots__ = ("leader_id",)
    LEADER_ID_FIELD_NUMBER: _ClassVar[int]
    leader_id: int
    def __init__(self, leader_id: _Optional[int] = ...) -> None: ...

class PartitionRequest(_message.Message):
    __slots__ = ("peers",)
    PEERS_FIELD_NUMBER: _ClassVar[int]
    peers: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, peers: _Optional[_Iterable[int]] = ...) -> None: ...

class PartitionResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class MemberChangeRequest(_message.Message):
    __slots__ = ("node_id", "zone", "grpc", "peer", "bolt", "catch_up_timeout_ms")
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    ZONE_FIELD_NUMBER: _ClassVar[int]
    GRPC_FIELD_NUMBER: _ClassVar[int]
    PEER_FIELD_NUMBER: _ClassVar[int]
    BOLT_FIELD_NUMBER: _ClassVar[int]
    CATCH_UP_TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    node_id: int
    zone: str
    grpc: str
    peer: str
    bolt: str
    catch_up_timeout_ms: int
    def __init__(self, node_id: _Optional[int] = ..., zone: _Optional[str] = ..., grpc: _Optional[str] = ..., peer: _Optional[str] = ..., bolt: _Optional[str] = ..., catch_up_timeout_ms: _Optional[int] = ...) -> None: ...

class MemberChangeResponse(_message.Message):
    __slots__ = ("voters", "learners", "index")
    VOTERS_FIELD_NUMBER: _ClassVar[int]
    LEARNERS_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    voters: _containers.RepeatedScalarFieldContainer[int]
    learners: _containers.RepeatedScalarFieldContainer[int]
    index: int
    def __init__(self, voters: _Optional[_Iterable[int]] = ..., learners: _Optional[_Iterable[int]] = ..., index: _Optional[int] = ...) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ("min_index", "wait_ms")
    MIN_INDEX_FIELD_NUMBER: _ClassVar[int]
    WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    min_index: int
    wait_ms: int
    def __init__(self, min_index: _Optional[int] = ..., wait_ms: _Optional[int] = ...) -> None: ...

class BackupChunk(_message.Message):
    __slots__ = ("applied_index", "node_id", "data", "last")
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    NODE_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    LAST_FIELD_NUMBER: _ClassVar[int]
    applied_index: int
    node_id: int
    data: bytes
    last: bool
    def __init__(self, applied_index: _Optional[int] = ..., node_id: _Optional[int] = ..., data: _Optional[bytes] = ..., last: _Optional[bool] = ...) -> None: ...
