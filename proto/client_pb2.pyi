from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NullValue(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NULL_VALUE: _ClassVar[NullValue]

class AccessMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ACCESS_MODE_WRITE: _ClassVar[AccessMode]
    ACCESS_MODE_READ: _ClassVar[AccessMode]

class Consistency(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONSISTENCY_UNSPECIFIED: _ClassVar[Consistency]
    CONSISTENCY_LINEARIZABLE: _ClassVar[Consistency]
    CONSISTENCY_CAUSAL: _ClassVar[Consistency]
    CONSISTENCY_STALE: _ClassVar[Consistency]

class QueryType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUERY_TYPE_UNSPECIFIED: _ClassVar[QueryType]
    QUERY_TYPE_READ_ONLY: _ClassVar[QueryType]
    QUERY_TYPE_READ_WRITE: _ClassVar[QueryType]
    QUERY_TYPE_WRITE_ONLY: _ClassVar[QueryType]
    QUERY_TYPE_SCHEMA_WRITE: _ClassVar[QueryType]
NULL_VALUE: NullValue
ACCESS_MODE_WRITE: AccessMode
ACCESS_MODE_READ: AccessMode
CONSISTENCY_UNSPECIFIED: Consistency
CONSISTENCY_LINEARIZABLE: Consistency
CONSISTENCY_CAUSAL: Consistency
CONSISTENCY_STALE: Consistency
QUERY_TYPE_UNSPECIFIED: QueryType
QUERY_TYPE_READ_ONLY: QueryType
QUERY_TYPE_READ_WRITE: QueryType
QUERY_TYPE_WRITE_ONLY: QueryType
QUERY_TYPE_SCHEMA_WRITE: QueryType

class Value(_message.Message):
    __slots__ = ("null", "boolean", "integer", "float", "string", "bytes", "list", "map", "node", "relationship", "path", "date", "local_time", "time", "local_date_time", "date_time", "duration", "point")
    NULL_FIELD_NUMBER: _ClassVar[int]
    BOOLEAN_FIELD_NUMBER: _ClassVar[int]
    INTEGER_FIELD_NUMBER: _ClassVar[int]
    FLOAT_FIELD_NUMBER: _ClassVar[int]
    STRING_FIELD_NUMBER: _ClassVar[int]
    BYTES_FIELD_NUMBER: _ClassVar[int]
    LIST_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    NODE_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIP_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    DATE_FIELD_NUMBER: _ClassVar[int]
    LOCAL_TIME_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    LOCAL_DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DATE_TIME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    POINT_FIELD_NUMBER: _ClassVar[int]
    null: NullValue
    boolean: bool
    integer: int
    float: float
    string: str
    bytes: bytes
    list: ValueList
    map: ValueMap
    node: Node
    relationship: Relationship
    path: Path
    date: Date
    local_time: LocalTime
    time: Time
    local_date_time: LocalDateTime
    date_time: DateTime
    duration: Duration
    point: Point
    def __init__(self, null: _Optional[_Union[NullValue, str]] = ..., boolean: _Optional[bool] = ..., integer: _Optional[int] = ..., float: _Optional[float] = ..., string: _Optional[str] = ..., bytes: _Optional[bytes] = ..., list: _Optional[_Union[ValueList, _Mapping]] = ..., map: _Optional[_Union[ValueMap, _Mapping]] = ..., node: _Optional[_Union[Node, _Mapping]] = ..., relationship: _Optional[_Union[Relationship, _Mapping]] = ..., path: _Optional[_Union[Path, _Mapping]] = ..., date: _Optional[_Union[Date, _Mapping]] = ..., local_time: _Optional[_Union[LocalTime, _Mapping]] = ..., time: _Optional[_Union[Time, _Mapping]] = ..., local_date_time: _Optional[_Union[LocalDateTime, _Mapping]] = ..., date_time: _Optional[_Union[DateTime, _Mapping]] = ..., duration: _Optional[_Union[Duration, _Mapping]] = ..., point: _Optional[_Union[Point, _Mapping]] = ...) -> None: ...

class ValueList(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class ValueMap(_message.Message):
    __slots__ = ("entries",)
    class EntriesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.MessageMap[str, Value]
    def __init__(self, entries: _Optional[_Mapping[str, Value]] = ...) -> None: ...

class Node(_message.Message):
    __slots__ = ("id", "labels", "properties")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    id: int
    labels: _containers.RepeatedScalarFieldContainer[str]
    properties: _containers.MessageMap[str, Value]
    def __init__(self, id: _Optional[int] = ..., labels: _Optional[_Iterable[str]] = ..., properties: _Optional[_Mapping[str, Value]] = ...) -> None: ...

class Relationship(_message.Message):
    __slots__ = ("id", "type", "start", "end", "properties")
    class PropertiesEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    ID_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    START_FIELD_NUMBER: _ClassVar[int]
    END_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_FIELD_NUMBER: _ClassVar[int]
    id: int
    type: str
    start: int
    end: int
    properties: _containers.MessageMap[str, Value]
    def __init__(self, id: _Optional[int] = ..., type: _Optional[str] = ..., start: _Optional[int] = ..., end: _Optional[int] = ..., properties: _Optional[_Mapping[str, Value]] = ...) -> None: ...

class Path(_message.Message):
    __slots__ = ("nodes", "relationships")
    NODES_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIPS_FIELD_NUMBER: _ClassVar[int]
    nodes: _containers.RepeatedCompositeFieldContainer[Node]
    relationships: _containers.RepeatedCompositeFieldContainer[Relationship]
    def __init__(self, nodes: _Optional[_Iterable[_Union[Node, _Mapping]]] = ..., relationships: _Optional[_Iterable[_Union[Relationship, _Mapping]]] = ...) -> None: ...

class Date(_message.Message):
    __slots__ = ("epoch_days",)
    EPOCH_DAYS_FIELD_NUMBER: _ClassVar[int]
    epoch_days: int
    def __init__(self, epoch_days: _Optional[int] = ...) -> None: ...

class LocalTime(_message.Message):
    __slots__ = ("nanoseconds_of_day",)
    NANOSECONDS_OF_DAY_FIELD_NUMBER: _ClassVar[int]
    nanoseconds_of_day: int
    def __init__(self, nanoseconds_of_day: _Optional[int] = ...) -> None: ...

class Time(_message.Message):
    __slots__ = ("nanoseconds_of_day", "offset_seconds")
    NANOSECONDS_OF_DAY_FIELD_NUMBER: _ClassVar[int]
    OFFSET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    nanoseconds_of_day: int
    offset_seconds: int
    def __init__(self, nanoseconds_of_day: _Optional[int] = ..., offset_seconds: _Optional[int] = ...) -> None: ...

class LocalDateTime(_message.Message):
    __slots__ = ("seconds", "nanoseconds")
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    NANOSECONDS_FIELD_NUMBER: _ClassVar[int]
    seconds: int
    nanoseconds: int
    def __init__(self, seconds: _Optional[int] = ..., nanoseconds: _Optional[int] = ...) -> None: ...

class DateTime(_message.Message):
    __slots__ = ("seconds", "nanoseconds", "offset_seconds", "zone_id")
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    NANOSECONDS_FIELD_NUMBER: _ClassVar[int]
    OFFSET_SECONDS_FIELD_NUMBER: _ClassVar[int]
    ZONE_ID_FIELD_NUMBER: _ClassVar[int]
    seconds: int
    nanoseconds: int
    offset_seconds: int
    zone_id: str
    def __init__(self, seconds: _Optional[int] = ..., nanoseconds: _Optional[int] = ..., offset_seconds: _Optional[int] = ..., zone_id: _Optional[str] = ...) -> None: ...

class Duration(_message.Message):
    __slots__ = ("months", "days", "seconds", "nanoseconds")
    MONTHS_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    NANOSECONDS_FIELD_NUMBER: _ClassVar[int]
    months: int
    days: int
    seconds: int
    nanoseconds: int
    def __init__(self, months: _Optional[int] = ..., days: _Optional[int] = ..., seconds: _Optional[int] = ..., nanoseconds: _Optional[int] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("srid", "x", "y", "z")
    SRID_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    Z_FIELD_NUMBER: _ClassVar[int]
    srid: int
    x: float
    y: float
    z: float
    def __init__(self, srid: _Optional[int] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., z: _Optional[float] = ...) -> None: ...

class RunRequest(_message.Message):
    __slots__ = ("query", "parameters", "access_mode", "consistency", "bookmarks", "transaction_id", "client_id", "sequence", "fetch_size", "timeout_ms", "database", "impersonated_user")
    class ParametersEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: Value
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[Value, _Mapping]] = ...) -> None: ...
    QUERY_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    ACCESS_MODE_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    BOOKMARKS_FIELD_NUMBER: _ClassVar[int]
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    FETCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    DATABASE_FIELD_NUMBER: _ClassVar[int]
    IMPERSONATED_USER_FIELD_NUMBER: _ClassVar[int]
    query: str
    parameters: _containers.MessageMap[str, Value]
    access_mode: AccessMode
    consistency: Consistency
    bookmarks: _containers.RepeatedScalarFieldContainer[str]
    transaction_id: str
    client_id: str
    sequence: int
    fetch_size: int
    timeout_ms: int
    database: str
    impersonated_user: str
    def __init__(self, query: _Optional[str] = ..., parameters: _Optional[_Mapping[str, Value]] = ..., access_mode: _Optional[_Union[AccessMode, str]] = ..., consistency: _Optional[_Union[Consistency, str]] = ..., bookmarks: _Optional[_Iterable[str]] = ..., transaction_id: _Optional[str] = ..., client_id: _Optional[str] = ..., sequence: _Optional[int] = ..., fetch_size: _Optional[int] = ..., timeout_ms: _Optional[int] = ..., database: _Optional[str] = ..., impersonated_user: _Optional[str] = ...) -> None: ...

class RunResponse(_message.Message):
    __slots__ = ("header", "records", "summary")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    header: Header
    records: RecordBatch
    summary: Summary
    def __init__(self, header: _Optional[_Union[Header, _Mapping]] = ..., records: _Optional[_Union[RecordBatch, _Mapping]] = ..., summary: _Optional[_Union[Summary, _Mapping]] = ...) -> None: ...

class Header(_message.Message):
    __slots__ = ("columns",)
    COLUMNS_FIELD_NUMBER: _ClassVar[int]
    columns: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, columns: _Optional[_Iterable[str]] = ...) -> None: ...

class Record(_message.Message):
    __slots__ = ("values",)
    VALUES_FIELD_NUMBER: _ClassVar[int]
    values: _containers.RepeatedCompositeFieldContainer[Value]
    def __init__(self, values: _Optional[_Iterable[_Union[Value, _Mapping]]] = ...) -> None: ...

class RecordBatch(_message.Message):
    __slots__ = ("records",)
    RECORDS_FIELD_NUMBER: _ClassVar[int]
    records: _containers.RepeatedCompositeFieldContainer[Record]
    def __init__(self, records: _Optional[_Iterable[_Union[Record, _Mapping]]] = ...) -> None: ...

class Summary(_message.Message):
    __slots__ = ("counters", "bookmark", "applied_index", "query_type", "plan", "result_available_after_ms", "result_consumed_after_ms")
    COUNTERS_FIELD_NUMBER: _ClassVar[int]
    BOOKMARK_FIELD_NUMBER: _ClassVar[int]
    APPLIED_INDEX_FIELD_NUMBER: _ClassVar[int]
    QUERY_TYPE_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    RESULT_AVAILABLE_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    RESULT_CONSUMED_AFTER_MS_FIELD_NUMBER: _ClassVar[int]
    counters: Counters
    bookmark: str
    applied_index: int
    query_type: QueryType
    plan: str
    result_available_after_ms: int
    result_consumed_after_ms: int
    def __init__(self, counters: _Optional[_Union[Counters, _Mapping]] = ..., bookmark: _Optional[str] = ..., applied_index: _Optional[int] = ..., query_type: _Optional[_Union[QueryType, str]] = ..., plan: _Optional[str] = ..., result_available_after_ms: _Optional[int] = ..., result_consumed_after_ms: _Optional[int] = ...) -> None: ...

class Counters(_message.Message):
    __slots__ = ("nodes_created", "nodes_deleted", "relationships_created", "relationships_deleted", "properties_set", "labels_added", "labels_removed", "indexes_added", "indexes_removed", "constraints_added", "constraints_removed", "contains_updates")
    NODES_CREATED_FIELD_NUMBER: _ClassVar[int]
    NODES_DELETED_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIPS_CREATED_FIELD_NUMBER: _ClassVar[int]
    RELATIONSHIPS_DELETED_FIELD_NUMBER: _ClassVar[int]
    PROPERTIES_SET_FIELD_NUMBER: _ClassVar[int]
    LABELS_ADDED_FIELD_NUMBER: _ClassVar[int]
    LABELS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    INDEXES_ADDED_FIELD_NUMBER: _ClassVar[int]
    INDEXES_REMOVED_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_ADDED_FIELD_NUMBER: _ClassVar[int]
    CONSTRAINTS_REMOVED_FIELD_NUMBER: _ClassVar[int]
    CONTAINS_UPDATES_FIELD_NUMBER: _ClassVar[int]
    nodes_created: int
    nodes_deleted: int
    relationships_created: int
    relationships_deleted: int
    properties_set: int
    labels_added: int
    labels_removed: int
    indexes_added: int
    indexes_removed: int
    constraints_added: int
    constraints_removed: int
    contains_updates: bool
    def __init__(self, nodes_created: _Optional[int] = ..., nodes_deleted: _Optional[int] = ..., relationships_created: _Optional[int] = ..., relationships_deleted: _Optional[int] = ..., properties_set: _Optional[int] = ..., labels_added: _Optional[int] = ..., labels_removed: _Optional[int] = ..., indexes_added: _Optional[int] = ..., indexes_removed: _Optional[int] = ..., constraints_added: _Optional[int] = ..., constraints_removed: _Optional[int] = ..., contains_updates: _Optional[bool] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class BeginRequest(_message.Message):
    __slots__ = ("access_mode", "bookmarks", "timeout_ms", "metadata", "client_id", "consistency", "impersonated_user")
    class MetadataEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ACCESS_MODE_FIELD_NUMBER: _ClassVar[int]
    BOOKMARKS_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_MS_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    CONSISTENCY_FIELD_NUMBER: _ClassVar[int]
    IMPERSONATED_USER_FIELD_NUMBER: _ClassVar[int]
    access_mode: AccessMode
    bookmarks: _containers.RepeatedScalarFieldContainer[str]
    timeout_ms: int
    metadata: _containers.ScalarMap[str, str]
    client_id: str
    consistency: Consistency
    impersonated_user: str
    def __init__(self, access_mode: _Optional[_Union[AccessMode, str]] = ..., bookmarks: _Optional[_Iterable[str]] = ..., timeout_ms: _Optional[int] = ..., metadata: _Optional[_Mapping[str, str]] = ..., client_id: _Optional[str] = ..., consistency: _Optional[_Union[Consistency, str]] = ..., impersonated_user: _Optional[str] = ...) -> None: ...

class BeginResponse(_message.Message):
    __slots__ = ("transaction_id",)
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    def __init__(self, transaction_id: _Optional[str] = ...) -> None: ...

class CommitRequest(_message.Message):
    __slots__ = ("transaction_id",)
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    def __init__(self, transaction_id: _Optional[str] = ...) -> None: ...

class CommitResponse(_message.Message):
    __slots__ = ("bookmark",)
    BOOKMARK_FIELD_NUMBER: _ClassVar[int]
    bookmark: str
    def __init__(self, bookmark: _Optional[str] = ...) -> None: ...

class RollbackRequest(_message.Message):
    __slots__ = ("transaction_id",)
    TRANSACTION_ID_FIELD_NUMBER: _ClassVar[int]
    transaction_id: str
    def __init__(self, transaction_id: _Optional[str] = ...) -> None: ...

class RollbackResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
