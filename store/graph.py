"""The graph on RocksDB: records, adjacency, membership, indexes, constraints, tokens.

Owns the RocksDB database under ``<data>/graph/`` and its column families:

    graph       b"n" node id -> node record; b"r" rel id -> relationship record (sealed)
    adjacency   node id | direction | type token | rel id | other end's id -> b"" (a
                relationship's type and ends never change, so the key can carry them:
                an expansion needing only ids reads no record)
    membership  b"L" label token | node id, b"T" type token | rel id -> b""
    index       v | label token | key token | HMAC(value) | node id -> b"" (node indexes);
                v | 0x80 | type token | key token | HMAC(value) | rel id -> b"" (relationship
                indexes: tokens are below 2**31, so no node entry has 0x80 there), where
                v (u32) is the version of the index key that made the HMAC. Lookups use
                the version in meta; while ``rebuild_indexes`` moves the indexes to a new
                index key, applies keep entries under both versions, and the switch drops
                the old version's entries with one range deletion
    meta        tokens (name -> token keyed by HMAC(name); token -> sealed name), usage
                counts, schema (indexes, constraints), next ids, the applied index, and
                the application's own records under b"app/" (written by ``apply`` in the
                same batch as the write set, carried by snapshots)

Keys hold only ids, tokens and HMACs; every non-empty value is sealed by ``store.crypto``
with ``column family:key`` as associated data. Implements ``store.view.GraphView`` (reads go
straight to RocksDB, but for a byte-bounded cache of recently decoded node records that
every commit keeps in step, so that an index seek and the property read after it decrypt
a node once) and applies a ``WriteSet`` atomically: every mutation of one write set
plus the applied index go into ONE RocksDB write batch, so a crash leaves all or none of it.
Semantics are those of ``store.memory.MemoryGraph`` (the reference model), plus enforcement
of uniqueness constraints, checked when the whole write set has been applied.

Durability: the apply batch goes to RocksDB's WAL without fsync (a process crash loses
nothing; a power loss may lose a suffix of applied batches, never part of one). The Raft
log is the durable record: apply is idempotent by index, so the apply loop replays from
``applied_index()`` after a restart; snapshots (checkpoints) are synced, and the log is
compacted only up to a snapshot.

Must never: write a plaintext name or value to disk; apply part of a write set; import
``cypher``, ``cluster`` or ``chaos``.
"""

from __future__ import annotations

import json
import struct
import threading
import weakref
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

from rocksdict import (
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    RdictIter,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from store import failpoints
from store.codec import decode_value_at, encode_value, index_key_bytes
from store.crypto import Cipher, IntegrityError
from store.memory import WriteSetError, values_equal
from store.values import Value
from store.view import (
    ConstraintInfo,
    Direction,
    IndexInfo,
    IndexNotFoundError,
    NodeRecord,
    RelationshipEnds,
    RelationshipRecord,
)
from store.writeset import (
    AddLabel,
    CreateIndex,
    CreateNode,
    CreateRelationship,
    CreateUniqueConstraint,
    DeleteNode,
    DeleteRelationship,
    DropConstraint,
    DropIndex,
    Operation,
    RemoveLabel,
    SetNodeProperty,
    SetRelationshipProperty,
    WriteSet,
)

CF_GRAPH: Final = "graph"
CF_ADJACENCY: Final = "adjacency"
CF_MEMBERSHIP: Final = "membership"
CF_INDEX: Final = "index"
CF_META: Final = "meta"
COLUMN_FAMILIES: Final = (CF_GRAPH, CF_ADJACENCY, CF_MEMBERSHIP, CF_INDEX, CF_META)
SEALED_FAMILIES: Final = frozenset({CF_GRAPH, CF_META})
"""The families with values; the others hold everything in their (opaque) keys."""

LABEL: Final = b"L"
TYPE: Final = b"T"
PROPERTY_KEY: Final = b"P"
_TOKEN_KINDS: Final = (LABEL, TYPE, PROPERTY_KEY)

OUT: Final = 0
IN: Final = 1

META_APPLIED: Final = b"applied"
META_NEXT_IDS: Final = b"next-ids"
META_NODE_COUNT: Final = b"count/nodes"
META_REL_COUNT: Final = b"count/rels"
META_INSTALLING: Final = b"installing"
META_INDEX_VERSION: Final = b"index/version"
"""The index key version that property index entries are read under (u32)."""
META_INDEX_BUILD: Final = b"index/build"
"""Present while indexes are rebuilt under a new index key: _INDEX_BUILD's fields."""
_TOKEN_BY_NAME: Final = b"tn/"
_NAME_BY_TOKEN: Final = b"ti/"
_TOKEN_COUNTER: Final = b"tc/"
_USAGE: Final = b"use/"
_SCHEMA_INDEX: Final = b"schema/index/"
_SCHEMA_CONSTRAINT: Final = b"schema/constraint/"
_APP_META: Final = b"app/"
MAX_APP_META_KEY_BYTES: Final = 256

MAX_TOKENS_PER_KIND: Final = 1 << 31
MAX_ID: Final = (1 << 63) - 1
"""Node and relationship ids are non-negative 64-bit integers (keys sort by them)."""

_U32 = struct.Struct(">I")
_U64 = struct.Struct(">Q")
_U64X2 = struct.Struct(">QQ")
_INDEX_BUILD = struct.Struct(">IBQ")
"""The new index key version, the phase (0: nodes, 1: relationships), the next id to visit."""


class ConstraintViolationError(WriteSetError):
    """A write set that would break a uniqueness constraint; nothing of it is applied."""

    status_code = "Neo.ClientError.Schema.ConstraintValidationFailed"


class StoreWriteError(Exception):
    """A RocksDB write of the graph store failed: the batch (an applied entry, part of a
    snapshot) may or may not be in the store, and its caches no longer say what it holds.

    Carries Neo4j's ``Neo.DatabaseError.General.StorageDamageDetected``. The node must stop
    rather than apply on (its graph would part from the others'); its message names the
    store and RocksDB's reason, in one line, for the operator. Not an ``OSError``, so that no
    handler meant for a passing I/O problem takes it.
    """

    status_code = "Neo.DatabaseError.General.StorageDamageDetected"

    def __init__(self, path: Path, cause: Exception) -> None:
        super().__init__(
            f"{self.status_code}: RocksDB write to {path} failed ({cause}); "
            "stopping: the graph might not hold what was applied"
        )
        self.path = path


class StoreNotReadyError(Exception):
    """The store holds a snapshot installation that did not finish: install again."""

    status_code = "Neo.TransientError.General.DatabaseUnavailable"


def _id(value: int) -> bytes:
    return _U64.pack(value)


def node_key(node_id: int) -> bytes:
    return b"n" + _id(node_id)


def rel_key(rel_id: int) -> bytes:
    return b"r" + _id(rel_id)


_ADJACENCY_TAIL = struct.Struct(">BIQQ")
"""An adjacency key after its node id: direction, type token, rel id, the other end."""
_ADJACENCY_KEY = struct.Struct(">QBIQQ")
_ADJACENCY_DIRECTIONS: Final = {
    Direction.OUTGOING: (OUT,),
    Direction.INCOMING: (IN,),
    Direction.BOTH: (OUT, IN),
}


def _adjacency_key(node_id: int, direction: int, type_token: int, rel_id: int, other: int) -> bytes:
    return _ADJACENCY_KEY.pack(node_id, direction, type_token, rel_id, other)


def _label_member(label: int, node_id: int) -> bytes:
    return LABEL + _U32.pack(label) + _id(node_id)


def _type_member(type_token: int, rel_id: int) -> bytes:
    return TYPE + _U32.pack(type_token) + _id(rel_id)


def _index_prefix(version: int, label: int, key: int, mac: bytes) -> bytes:
    return _U32.pack(version) + _U32.pack(label) + _U32.pack(key) + mac


REL_INDEX: Final = b"\x80"
"""Leads every relationship index entry (node entries start with a label token < 2**31)."""


def _rel_index_prefix(version: int, type_token: int, key: int, mac: bytes) -> bytes:
    return _U32.pack(version) + REL_INDEX + _U32.pack(type_token) + _U32.pack(key) + mac


def _usage_key(kind: bytes, token: int) -> bytes:
    return _USAGE + kind + _U32.pack(token)


_AAD_PREFIX: Final = {family: family.encode() + b":" for family in COLUMN_FAMILIES}


def _aad(family: str, key: bytes) -> bytes:
    return _AAD_PREFIX[family] + key


# -- records ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Node:
    labels: set[int]
    properties: dict[int, Value]


@dataclass(slots=True)
class _Rel:
    type: int
    start: int
    end: int
    properties: dict[int, Value]


def _encode_properties(properties: dict[int, Value], out: bytearray) -> None:
    out += _U32.pack(len(properties))
    for token in sorted(properties):
        out += _U32.pack(token)
        out += encode_value(properties[token])


def _decode_properties(data: bytes, at: int) -> tuple[dict[int, Value], int]:
    (count,) = _U32.unpack_from(data, at)
    at += 4
    properties: dict[int, Value] = {}
    for _ in range(count):
        (token,) = _U32.unpack_from(data, at)
        properties[token], at = decode_value_at(data, at + 4)
    return properties, at


def _encode_node(node: _Node) -> bytes:
    out = bytearray(_U32.pack(len(node.labels)))
    for label in sorted(node.labels):
        out += _U32.pack(label)
    _encode_properties(node.properties, out)
    return bytes(out)


def _decode_node(data: bytes) -> _Node:
    (count,) = _U32.unpack_from(data, 0)
    labels = {_U32.unpack_from(data, 4 + 4 * i)[0] for i in range(count)}
    properties, _ = _decode_properties(data, 4 + 4 * count)
    return _Node(labels, properties)


def _encode_rel(rel: _Rel) -> bytes:
    out = bytearray(_U32.pack(rel.type) + _U64X2.pack(rel.start, rel.end))
    _encode_properties(rel.properties, out)
    return bytes(out)


def _decode_rel(data: bytes) -> _Rel:
    (type_token,) = _U32.unpack_from(data, 0)
    start, end = _U64X2.unpack_from(data, 4)
    properties, _ = _decode_properties(data, 20)
    return _Rel(type_token, start, end, properties)


def _encode_index(index: IndexInfo) -> bytes:
    doc = {
        "name": index.name,
        "label": index.label,
        "properties": list(index.properties),
        "on_relationships": index.on_relationships,
        "unique": index.unique,
    }
    return json.dumps(doc, sort_keys=True).encode()


def _decode_index(data: bytes) -> IndexInfo:
    doc = json.loads(data)
    return IndexInfo(
        doc["name"],
        doc["label"],
        tuple(doc["properties"]),
        on_relationships=doc["on_relationships"],
        unique=doc["unique"],
    )


def _encode_constraint(constraint: ConstraintInfo) -> bytes:
    doc = {
        "name": constraint.name,
        "label": constraint.label,
        "properties": list(constraint.properties),
        "kind": constraint.kind,
    }
    return json.dumps(doc, sort_keys=True).encode()


def _decode_constraint(data: bytes) -> ConstraintInfo:
    doc = json.loads(data)
    return ConstraintInfo(doc["name"], doc["label"], tuple(doc["properties"]), doc["kind"])


def sorted_properties(properties: dict[str, Value]) -> tuple[tuple[str, str], ...]:
    """The canonical dump's form of a property map (as ``store.memory`` prints it)."""
    return tuple((key, repr(properties[key])) for key in sorted(properties))


# -- the store -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class IndexRebuildProgress:
    """One ``rebuild_indexes`` step: records visited, and whether the switch is done."""

    visited: int
    complete: bool


@dataclass(slots=True, frozen=True)
class ReencryptProgress:
    resealed: int
    complete: bool
    """A whole pass found no value left under an older data key."""


@dataclass(slots=True)
class _ReencryptPass:
    version: int
    family: int = 0
    key: bytes = b""
    found: int = 0


DEFAULT_BLOCK_CACHE_BYTES: Final = 128 << 20
"""One block cache shared by all column families of a graph."""
DEFAULT_NODE_CACHE_BYTES: Final = 4 << 20
"""What the decoded node records kept by GraphStore.node may cost, counted as each record's
plaintext plus NODE_RECORD_OVERHEAD_BYTES (about what Python spends on one): a statement
that seeks a node and then reads its properties decrypts and decodes it once."""
NODE_RECORD_OVERHEAD_BYTES: Final = 512
BLOOM_BITS_PER_KEY: Final = 10


def _family_options(family: str, cache: Cache | None) -> Options:
    options = Options(raw_mode=True)
    table = BlockBasedOptions()
    if cache is None:
        table.disable_cache()
    else:
        table.set_block_cache(cache)
    # Point reads of records and tokens skip SST files that cannot hold the key.
    table.set_bloom_filter(BLOOM_BITS_PER_KEY, False)
    table.set_cache_index_and_filter_blocks(True)
    table.set_pin_l0_filter_and_index_blocks_in_cache(True)
    options.set_block_based_table_factory(table)
    if family in SEALED_FAMILIES:
        # Sealed values are random bytes: compressing them costs CPU and saves nothing.
        options.set_compression_type(DBCompressionType.none())
    return options


def open_rdict(path: Path, block_cache_bytes: int = DEFAULT_BLOCK_CACHE_BYTES) -> Rdict:
    """Open (or create) a graph database with all its column families."""
    cache = Cache(block_cache_bytes) if block_cache_bytes > 0 else None
    options = _family_options("default", cache)
    options.create_if_missing(True)
    options.create_missing_column_families(True)
    families = {name: _family_options(name, cache) for name in COLUMN_FAMILIES}
    return Rdict(str(path), options, column_families=families)


class _GraphReads:
    """The graph's read side (``store.view.GraphView``), over a few primitives that its two
    forms provide: the live store (``GraphStore``) and a snapshot of it (``GraphSnapshot``)."""

    cipher: Cipher
    _token_by_name: dict[tuple[bytes, str], int]
    _name_by_token: dict[tuple[bytes, int], str]
    _indexes: dict[str, IndexInfo]
    _constraints: dict[str, ConstraintInfo]
    _node_index_pairs: frozenset[tuple[str, str]]
    _rel_index_pairs: frozenset[tuple[str, str]]

    def _get_plain(self, family: str, key: bytes) -> bytes | None:
        """The plaintext value of `key` (b"" in a family without values), or None."""
        raise NotImplementedError

    def _keys(self, family: str, prefix: bytes, start: bytes | None = None) -> Iterator[bytes]:
        """Keys with `prefix`, ascending, from `start` (default: the first)."""
        raise NotImplementedError

    def node(self, node_id: int) -> NodeRecord | None:
        raise NotImplementedError

    def index_versions(self) -> tuple[int, ...]:
        """The index key versions property index entries are kept under: the one lookups
        use, then, during a rebuild, the one being built."""
        data = self._get_plain(CF_META, META_INDEX_VERSION)
        read = self.cipher.index_key_version() if data is None else _U32.unpack(data)[0]
        building = self._get_plain(CF_META, META_INDEX_BUILD)
        if building is None:
            return (read,)
        return (read, _INDEX_BUILD.unpack(building)[0])

    def _meta_u64(self, key: bytes) -> int:
        data = self._get_plain(CF_META, key)
        return 0 if data is None else _U64.unpack(data)[0]

    def _load_rel(self, rel_id: int) -> _Rel | None:
        data = self._get_plain(CF_GRAPH, rel_key(rel_id))
        return None if data is None else _decode_rel(data)

    def _name(self, kind: bytes, token: int) -> str:
        name = self._name_by_token.get((kind, token))
        if name is None:
            raise IntegrityError(f"token {kind.decode()}{token}", "names no known token")
        return name

    def _names(self, kind: bytes, properties: dict[int, Value]) -> dict[str, Value]:
        return {self._name(kind, token): value for token, value in properties.items()}

    def _node_record(self, node_id: int, node: _Node) -> NodeRecord:
        labels = frozenset(self._name(LABEL, label) for label in node.labels)
        return NodeRecord(node_id, labels, self._names(PROPERTY_KEY, node.properties))

    def _decode_node_record(self, node_id: int, data: bytes) -> NodeRecord:
        """``_node_record(node_id, _decode_node(data))`` in one pass: names looked up as
        the tokens are read, no token-keyed record in between."""
        names = self._name_by_token
        try:
            (count,) = _U32.unpack_from(data, 0)
            at = 4 + 4 * count
            labels = frozenset([names[(LABEL, token)] for (token,) in _U32.iter_unpack(data[4:at])])
            (count,) = _U32.unpack_from(data, at)
            at += 4
            properties: dict[str, Value] = {}
            for _ in range(count):
                (token,) = _U32.unpack_from(data, at)
                value, at = decode_value_at(data, at + 4)
                properties[names[(PROPERTY_KEY, token)]] = value
        except KeyError:  # a token without a name: the slow way says which, as IntegrityError
            return self._node_record(node_id, _decode_node(data))
        return NodeRecord(node_id, labels, properties)

    def _rel_record(self, rel_id: int, rel: _Rel) -> RelationshipRecord:
        return RelationshipRecord(
            rel_id,
            self._name(TYPE, rel.type),
            rel.start,
            rel.end,
            self._names(PROPERTY_KEY, rel.properties),
        )

    def relationship(self, rel_id: int) -> RelationshipRecord | None:
        rel = self._load_rel(rel_id)
        return None if rel is None else self._rel_record(rel_id, rel)

    def node_ids(self) -> Iterator[int]:
        for key in self._keys(CF_GRAPH, b"n"):
            yield _U64.unpack_from(key, 1)[0]

    def node_ids_by_label(self, label: str) -> Iterator[int]:
        token = self._token_by_name.get((LABEL, label))
        if token is None:
            return
        prefix = LABEL + _U32.pack(token)
        for key in self._keys(CF_MEMBERSHIP, prefix):
            yield _U64.unpack_from(key, len(prefix))[0]

    def has_index(self, label: str, key: str) -> bool:
        return (label, key) in self._node_index_pairs

    def node_has_label(self, node_id: int, label: str) -> bool:
        """Whether an existing node carries `label`: one membership key read, no record
        decrypted (the privilege-filtered view's check of a relationship's end node)."""
        token = self._token_by_name.get((LABEL, label))
        if token is None:
            return False
        return self._get_plain(CF_MEMBERSHIP, _label_member(token, node_id)) is not None

    def node_ids_by_property(self, label: str, key: str, value: Value) -> Iterator[int]:
        if not self.has_index(label, key):
            raise IndexNotFoundError(f"no index on :{label}({key})")
        label_token = self._token_by_name.get((LABEL, label))
        key_token = self._token_by_name.get((PROPERTY_KEY, key))
        if label_token is None or key_token is None or value is None:
            return
        version = self.index_versions()[0]
        mac = self.cipher.mac(index_key_bytes(value), version)
        prefix = _index_prefix(version, label_token, key_token, mac)
        for index_key in self._keys(CF_INDEX, prefix):
            node_id = _U64.unpack_from(index_key, len(prefix))[0]
            # The MAC only narrows the search; equality is decided on the record itself,
            # which then stays cached for the caller's next step (reading its properties).
            record = self.node(node_id)
            if record is None or label not in record.labels:
                continue
            stored = record.properties.get(key)
            if stored is not None and values_equal(stored, value):
                yield node_id

    def relationship_ids(self) -> Iterator[int]:
        for key in self._keys(CF_GRAPH, b"r"):
            yield _U64.unpack_from(key, 1)[0]

    def relationship_ids_by_type(self, type: str) -> Iterator[int]:
        token = self._token_by_name.get((TYPE, type))
        if token is None:
            return
        prefix = TYPE + _U32.pack(token)
        for key in self._keys(CF_MEMBERSHIP, prefix):
            yield _U64.unpack_from(key, len(prefix))[0]

    def has_relationship_index(self, type: str, key: str) -> bool:
        return (type, key) in self._rel_index_pairs

    def relationship_ids_by_property(self, type: str, key: str, value: Value) -> Iterator[int]:
        if not self.has_relationship_index(type, key):
            raise IndexNotFoundError(f"no index on [:{type}]({key})")
        type_token = self._token_by_name.get((TYPE, type))
        key_token = self._token_by_name.get((PROPERTY_KEY, key))
        if type_token is None or key_token is None or value is None:
            return
        version = self.index_versions()[0]
        mac = self.cipher.mac(index_key_bytes(value), version)
        prefix = _rel_index_prefix(version, type_token, key_token, mac)
        for index_key in self._keys(CF_INDEX, prefix):
            rel_id = _U64.unpack_from(index_key, len(prefix))[0]
            rel = self._load_rel(rel_id)
            # The MAC only narrows the search; equality is decided on the record itself.
            if rel is None or rel.type != type_token:
                continue
            stored = rel.properties.get(key_token)
            if stored is not None and values_equal(stored, value):
                yield rel_id

    def _adjacent(
        self, node_id: int, direction: Direction, types: Sequence[str] | None
    ) -> dict[int, tuple[int, int, int]]:
        """rel id -> (type token, start, end) of the relationships at `node_id`, read from
        the adjacency keys alone."""
        directions = _ADJACENCY_DIRECTIONS[direction]
        prefixes: list[bytes] = []
        for way in directions:
            base = _id(node_id) + bytes((way,))
            if types is None:
                prefixes.append(base)
                continue
            for type_name in dict.fromkeys(types):
                token = self._token_by_name.get((TYPE, type_name))
                if token is not None:
                    prefixes.append(base + _U32.pack(token))
        found: dict[int, tuple[int, int, int]] = {}
        unpack = _ADJACENCY_TAIL.unpack_from
        for prefix in prefixes:
            for key in self._keys(CF_ADJACENCY, prefix):
                way, type_token, rel_id, other = unpack(key, 8)
                if way == OUT:
                    found[rel_id] = (type_token, node_id, other)
                else:
                    found[rel_id] = (type_token, other, node_id)
        return found

    def relationship_ends(
        self, node_id: int, direction: Direction, types: Sequence[str] | None = None
    ) -> Iterator[RelationshipEnds]:
        found = self._adjacent(node_id, direction, types)
        for rel_id in sorted(found):
            type_token, start, end = found[rel_id]
            yield RelationshipEnds(rel_id, self._name(TYPE, type_token), start, end)

    def relationships(
        self, node_id: int, direction: Direction, types: Sequence[str] | None = None
    ) -> Iterator[RelationshipRecord]:
        for rel_id in sorted(self._adjacent(node_id, direction, types)):
            rel = self._load_rel(rel_id)
            if rel is None:
                continue  # deleted by a write set applied since the adjacency was read
            if node_id not in (rel.start, rel.end):
                raise IntegrityError(
                    f"adjacency of node {node_id}", f"lists relationship {rel_id} wrongly"
                )
            yield self._rel_record(rel_id, rel)

    def count_nodes(self, label: str | None = None) -> int:
        if label is None:
            return self._meta_u64(META_NODE_COUNT)
        token = self._token_by_name.get((LABEL, label))
        return 0 if token is None else self._meta_u64(_usage_key(LABEL, token))

    def count_relationships(self, type: str | None = None) -> int:
        if type is None:
            return self._meta_u64(META_REL_COUNT)
        token = self._token_by_name.get((TYPE, type))
        return 0 if token is None else self._meta_u64(_usage_key(TYPE, token))

    def _names_in_use(self, kind: bytes) -> list[str]:
        names = []
        for key in self._keys(CF_META, _USAGE + kind):
            (token,) = _U32.unpack_from(key, len(_USAGE) + 1)
            names.append(self._name(kind, token))
        return sorted(names)

    def labels(self) -> list[str]:
        return self._names_in_use(LABEL)

    def relationship_types(self) -> list[str]:
        return self._names_in_use(TYPE)

    def property_keys(self) -> list[str]:
        return self._names_in_use(PROPERTY_KEY)

    def indexes(self) -> list[IndexInfo]:
        indexes = self._indexes
        return [indexes[name] for name in sorted(indexes)]

    def constraints(self) -> list[ConstraintInfo]:
        constraints = self._constraints
        return [constraints[name] for name in sorted(constraints)]

    def next_ids(self) -> tuple[int, int]:
        data = self._get_plain(CF_META, META_NEXT_IDS)
        if data is None:
            return 0, 0
        node_id, rel_id = _U64X2.unpack(data)
        return node_id, rel_id

    # -- beyond the view ----------------------------------------------------------------------

    def applied_index(self) -> int:
        """The Raft index of the last write set applied (0 before any)."""
        return self._meta_u64(META_APPLIED)

    def canonical_dump(self) -> list[tuple[object, ...]]:
        """Logical content in a fixed order; equal to MemoryGraph's for the same write sets."""
        dump: list[tuple[object, ...]] = []
        for node_id in self.node_ids():
            record = self.node(node_id)
            assert record is not None
            props = sorted_properties(dict(record.properties))
            dump.append(("node", node_id, tuple(sorted(record.labels)), props))
        for rel_id in self.relationship_ids():
            rel = self.relationship(rel_id)
            assert rel is not None
            props = sorted_properties(dict(rel.properties))
            dump.append(("rel", rel_id, rel.type, rel.start, rel.end, props))
        for index in self.indexes():
            dump.append(("index", index.name, index.label, index.properties, index.unique))
        for constraint in self.constraints():
            dump.append(("constraint", constraint.name, constraint.label, constraint.properties))
        dump.append(("next", *self.next_ids()))
        return dump


class GraphStore(_GraphReads):
    """The graph on RocksDB. Reads are thread-safe; writes (apply) are serialised."""

    def __init__(
        self,
        directory: Path,
        cipher: Cipher,
        *,
        sync: bool = False,
        block_cache_bytes: int = DEFAULT_BLOCK_CACHE_BYTES,
        node_cache_bytes: int = DEFAULT_NODE_CACHE_BYTES,
    ) -> None:
        if node_cache_bytes < 0:
            raise ValueError("node_cache_bytes must not be negative")
        self._path = Path(directory)
        self._path.mkdir(parents=True, exist_ok=True)
        self.cipher = cipher
        self._db = open_rdict(self._path, block_cache_bytes)
        self._families = {name: self._db.get_column_family(name) for name in COLUMN_FAMILIES}
        self._handles = {name: self._db.get_column_family_handle(name) for name in COLUMN_FAMILIES}
        self._write_options = WriteOptions()
        self._write_options.sync = sync
        self._write_lock = threading.Lock()
        self._flush_lock = threading.Lock()
        """Held by ``flush_memtables`` (which runs beside writes) and by ``close``."""
        self._closed = False
        self._reencrypt_pass: _ReencryptPass | None = None
        # Decoded node records (with their cost) by id, oldest first. Reads look up without
        # the lock; only records read from RocksDB at the current generation go in (under
        # the lock), and a commit drops the nodes it wrote and moves the generation on.
        # An entry is (record, cost, the generation its read began in): a snapshot uses
        # one read at or before its own generation (see GraphSnapshot.node).
        self._node_cache: OrderedDict[int, tuple[NodeRecord, int, int]] = OrderedDict()
        self._node_cache_budget = node_cache_bytes
        self._node_cache_bytes = 0
        self._node_cache_lock = threading.Lock()
        self._node_generation = 0
        self._view_lock = threading.Lock()
        """Held while a commit writes RocksDB and brings the caches in step, and while a
        snapshot is taken: a snapshot sees all of a commit, caches included, or none."""
        self._snapshots: weakref.WeakSet[GraphSnapshot] = weakref.WeakSet()
        """The snapshots in use: closing the store closes them (their iterators would keep
        the database open under a read that goes on)."""
        self._index_keys_to_retire: set[int] = set()
        """Index key versions a finished rebuild left behind, retired once no open snapshot
        reads under them (``_retire_unread_index_keys``)."""
        self._retire_lock = threading.Lock()
        self._load_caches()
        if META_INDEX_VERSION not in self._meta:
            if META_APPLIED in self._meta or META_NEXT_IDS in self._meta:
                self.close()
                raise IntegrityError(
                    f"graph store {self._path.name}",
                    "written with an older key layout (index entries without an index key "
                    "version, adjacency without the other end): re-create it from a snapshot",
                )
            with self._write_lock:  # a new store: its indexes start under the current key
                txn = _Apply(self)
                txn.put(CF_META, META_INDEX_VERSION, _U32.pack(cipher.index_key_version()))
                self._commit(txn, _synced())
        if not self.installing():
            # Keys a finished rebuild left to retire when the process stopped before the
            # last snapshot reading under them closed: none is open now.
            needed = {*self.index_versions(), cipher.index_key_version()}
            self._index_keys_to_retire.update(set(cipher.index_key_versions()) - needed)
            self._retire_unread_index_keys()

    def _load_caches(self) -> None:
        # The meta family is small (tokens, counts, schema, ids): held decrypted in memory,
        # authenticated once here, and kept in step by _commit.
        self._forget_nodes(everything=True)
        self._meta: dict[bytes, bytes] = {}
        for key, sealed in self._families[CF_META].items():
            assert isinstance(key, bytes) and isinstance(sealed, bytes)
            self._meta[key] = self.cipher.open(sealed, _aad(CF_META, key))
        self._token_by_name: dict[tuple[bytes, str], int] = {}
        self._name_by_token: dict[tuple[bytes, int], str] = {}
        for key in self._keys(CF_META, _NAME_BY_TOKEN):
            kind = key[len(_NAME_BY_TOKEN) : len(_NAME_BY_TOKEN) + 1]
            (token,) = _U32.unpack_from(key, len(_NAME_BY_TOKEN) + 1)
            name = self._get_plain(CF_META, key)
            assert name is not None
            self._name_by_token[(kind, token)] = name.decode("utf-8")
            self._token_by_name[(kind, name.decode("utf-8"))] = token
        self._indexes: dict[str, IndexInfo] = {}
        for key in self._keys(CF_META, _SCHEMA_INDEX):
            data = self._get_plain(CF_META, key)
            assert data is not None
            index = _decode_index(data)
            self._indexes[index.name] = index
        self._constraints: dict[str, ConstraintInfo] = {}
        for key in self._keys(CF_META, _SCHEMA_CONSTRAINT):
            data = self._get_plain(CF_META, key)
            assert data is not None
            constraint = _decode_constraint(data)
            self._constraints[constraint.name] = constraint
        self._set_indexes(self._indexes)

    def _set_indexes(self, indexes: dict[str, IndexInfo]) -> None:
        self._indexes = indexes
        # What has_index asks on every seek, as sets: a lookup asks it several times.
        self._node_index_pairs = frozenset(
            (index.label, index.properties[0])
            for index in indexes.values()
            if not index.on_relationships and len(index.properties) == 1
        )
        self._rel_index_pairs = frozenset(
            (index.label, index.properties[0])
            for index in indexes.values()
            if index.on_relationships and len(index.properties) == 1
        )

    def _remember_node(self, record: NodeRecord, plain_bytes: int, generation: int) -> None:
        """Cache `record` (`plain_bytes` of plaintext), read from RocksDB since
        `generation` began, unless a commit came in between (it may have changed the node
        after the read); the oldest records leave to keep within the budget."""
        cost = plain_bytes + NODE_RECORD_OVERHEAD_BYTES
        with self._node_cache_lock:
            if generation != self._node_generation or cost > self._node_cache_budget:
                return
            cache = self._node_cache
            replaced = cache.pop(record.id, None)
            if replaced is not None:
                self._node_cache_bytes -= replaced[1]
            cache[record.id] = (record, cost, generation)
            self._node_cache_bytes += cost
            while self._node_cache_bytes > self._node_cache_budget:
                self._node_cache_bytes -= cache.popitem(last=False)[1][1]

    def _new_generation(self) -> None:
        """Called before a commit writes (``_forget_nodes`` begins another after it): no
        generation sees RocksDB change, so a record read within one generation is what the
        store held all through it (``GraphSnapshot.node`` relies on that)."""
        with self._node_cache_lock:
            self._node_generation += 1

    def _forget_nodes(self, keys: Iterable[bytes] = (), everything: bool = False) -> None:
        """Drop the cached records of the node `keys` (graph family keys; others are
        skipped), or of every node; called once the write that changed them is in RocksDB
        (or failed), so that a read after it decodes what RocksDB holds now."""
        with self._node_cache_lock:
            self._node_generation += 1
            cache = self._node_cache
            if everything:
                cache.clear()
                self._node_cache_bytes = 0
                return
            for key in keys:
                if key[:1] == b"n":
                    dropped = cache.pop(_U64.unpack_from(key, 1)[0], None)
                    if dropped is not None:
                        self._node_cache_bytes -= dropped[1]

    # -- low-level reads ----------------------------------------------------------------------

    def _get_plain(self, family: str, key: bytes) -> bytes | None:
        if family == CF_META:
            return self._meta.get(key)
        sealed = self._families[family].get(key)
        if sealed is None:
            return None
        if family not in SEALED_FAMILIES:
            return b""
        return self.cipher.open(sealed, _aad(family, key))

    def _keys(self, family: str, prefix: bytes, start: bytes | None = None) -> Iterator[bytes]:
        """Keys with `prefix`, ascending, from `start` (default: the first)."""
        options = ReadOptions()
        upper = _prefix_upper_bound(prefix)
        if upper is not None:
            options.set_iterate_upper_bound(upper)
        for key in self._families[family].keys(from_key=start or prefix, read_opt=options):
            assert isinstance(key, bytes)
            if not key.startswith(prefix):
                return
            yield key

    # -- GraphView ----------------------------------------------------------------------------

    def node(self, node_id: int) -> NodeRecord | None:
        """The node's record, shared with other readers (treat it as read-only): a recent
        one comes from the cache, which every commit keeps in step with RocksDB."""
        cached = self._node_cache.get(node_id)
        if cached is not None:
            return cached[0]
        generation = self._node_generation
        data = self._get_plain(CF_GRAPH, node_key(node_id))
        if data is None:
            return None
        record = self._decode_node_record(node_id, data)
        self._remember_node(record, len(data), generation)
        return record

    def snapshot(self) -> GraphSnapshot:
        """The graph as it is now, for reads that run while commits go on (a long query
        beside writes); close it when done (it is a context manager). Cheap to take: one
        RocksDB iterator per column family, no copy. Waits for a commit being written."""
        with self._view_lock:
            snapshot = self._snapshot_locked()
        if self._index_keys_to_retire:  # held back by a snapshot since closed or dropped
            self._retire_unread_index_keys()
        return snapshot

    def try_snapshot(self) -> GraphSnapshot | None:
        """``snapshot`` without waiting (for an event loop): None while a commit is being
        written, or index keys wait to be retired (which writes the key file)."""
        if self._index_keys_to_retire or not self._view_lock.acquire(blocking=False):
            return None
        try:
            return self._snapshot_locked()
        finally:
            self._view_lock.release()

    def _snapshot_locked(self) -> GraphSnapshot:
        self._check_open()
        if self.installing():
            raise StoreNotReadyError("a snapshot installation did not finish")
        snapshot = GraphSnapshot(self, frozenset(self.index_versions()))
        self._snapshots.add(snapshot)
        return snapshot

    def _retire_unread_index_keys(self) -> None:
        """Retire the index keys a finished rebuild left behind that no open snapshot reads
        under. A snapshot taken before the rebuild's last step still looks its indexes up
        under the old key (its entries are there for it): retiring that key at once failed
        its next lookup."""
        with self._retire_lock:
            with self._view_lock:  # where snapshots are added
                open_snapshots = list(self._snapshots)
            read = {v for snapshot in open_snapshots for v in snapshot.index_key_versions}
            for version in sorted(self._index_keys_to_retire - read):
                self._index_keys_to_retire.discard(version)
                if version in self.cipher.index_key_versions():
                    self.cipher.retire_index_key(version)

    def app_meta(self, key: bytes) -> bytes | None:
        """The application's record `key` (written through ``apply``'s `meta`), or None."""
        return self._meta.get(_APP_META + key)

    def app_meta_items(self) -> Iterator[tuple[bytes, bytes]]:
        """Every application record, by key."""
        for key in sorted(k for k in self._meta if k.startswith(_APP_META)):
            yield key[len(_APP_META) :], self._meta[key]

    def apply(
        self,
        write_set: WriteSet,
        index: int,
        meta: Mapping[bytes, bytes | None] | None = None,
        refused_meta: Mapping[bytes, bytes | None] | None = None,
    ) -> None:
        """Apply `write_set` as Raft entry `index`: all of it and the index, in one batch.

        `meta` are application records (key -> value, None deletes) written in the same
        batch, whether or not the write set fits: the state machine's own replicated state
        (request dedup, concurrency checks) is then exactly as atomic as the graph, and
        snapshots carry it. Read them back with ``app_meta``. `refused_meta`, when given,
        is written instead of `meta` if the write set is refused (so the application can
        record the refusal in the same batch).

        An index at or below the applied one was applied before: nothing happens (replay
        after a restart is idempotent). A write set that does not fit the graph raises
        WriteSetError (ConstraintViolationError for a uniqueness constraint) after recording
        the index (and `meta`) alone: every replica rejects it the same way, and the entry
        is consumed.
        """
        records = dict(meta or {})
        refused_records = records if refused_meta is None else dict(refused_meta)
        for key in (*records, *refused_records):
            if not 0 < len(key) <= MAX_APP_META_KEY_BYTES:
                raise ValueError(f"application record keys are 1-{MAX_APP_META_KEY_BYTES} bytes")
        with self._write_lock:
            self._check_open()
            if self.installing():
                raise StoreNotReadyError("a snapshot installation did not finish")
            applied = self.applied_index()
            if index <= applied:
                return
            txn = _Apply(self)
            try:
                for operation in write_set.operations:
                    txn.apply(operation)
                txn.check_constraints()
            except WriteSetError:
                rejected = _Apply(self)
                rejected.put_app_meta(refused_records)
                rejected.put(CF_META, META_APPLIED, _U64.pack(index))
                self._commit(rejected)
                raise
            txn.put_app_meta(records)
            txn.put(CF_META, META_APPLIED, _U64.pack(index))
            self._commit(txn)

    # -- snapshot installation (driven by store.snapshot) -------------------------------------

    def installing(self) -> bool:
        """True while (or after a crash during) a snapshot installation: contents partial."""
        return META_INSTALLING in self._meta

    def begin_install(self) -> None:
        """Empty the store, marked as installing, in one synced batch."""
        with self._write_lock:
            self._check_open()
            batch = WriteBatch(raw_mode=True)
            for family in COLUMN_FAMILIES:
                batch.delete_range(b"", _KEY_SPACE_END, self._handles[family])
            batch.put(
                META_INSTALLING,
                self.cipher.seal(b"1", _aad(CF_META, META_INSTALLING)),
                self._handles[CF_META],
            )
            version = _U32.pack(self.cipher.index_key_version())
            batch.put(
                META_INDEX_VERSION,
                self.cipher.seal(version, _aad(CF_META, META_INDEX_VERSION)),
                self._handles[CF_META],
            )
            with self._view_lock:
                self._new_generation()
                try:
                    self._write(batch, _synced())
                finally:
                    self._forget_nodes(everything=True)
                self._load_caches()

    def install_operations(self, operations: Sequence[Operation]) -> None:
        """Add part of an installing snapshot's content (one batch, not synced)."""
        with self._write_lock:
            self._check_open()
            if not self.installing():
                raise StoreNotReadyError("install_operations outside an installation")
            txn = _Apply(self)
            for operation in operations:
                txn.apply(operation)
            self._commit(txn)

    def install_app_meta(self, records: Sequence[tuple[bytes, bytes]]) -> None:
        """Add application records of an installing snapshot (one batch, not synced)."""
        with self._write_lock:
            self._check_open()
            if not self.installing():
                raise StoreNotReadyError("install_app_meta outside an installation")
            txn = _Apply(self)
            txn.put_app_meta(dict(records))
            self._commit(txn)

    def finish_install(self, applied_index: int, next_ids: tuple[int, int]) -> None:
        """Seal the installation: next ids, applied index, marker gone; one synced batch."""
        with self._write_lock:
            self._check_open()
            txn = _Apply(self)
            txn.check_constraints()
            txn.put(CF_META, META_NEXT_IDS, _U64X2.pack(*next_ids))
            txn.put(CF_META, META_APPLIED, _U64.pack(applied_index))
            txn.delete(CF_META, META_INSTALLING)
            self._commit(txn, _synced())

    def _write(self, batch: WriteBatch, options: WriteOptions) -> None:
        """One RocksDB write batch; its failure is a :class:`StoreWriteError`."""
        try:
            if failpoints.ACTIVE:
                failpoints.before_store_write()
            self._db.write(batch, options)
        except Exception as error:  # rocksdict raises Exception, with RocksDB's status text
            raise StoreWriteError(self._path, error) from error

    def _commit(self, txn: _Apply, options: WriteOptions | None = None) -> None:
        batch = WriteBatch(raw_mode=True)
        for family, begin, end in txn.range_deletes:
            batch.delete_range(begin, end, self._handles[family])
        for family, writes in txn.writes.items():
            handle = self._handles[family]
            sealed = family in SEALED_FAMILIES
            for key, plain in writes.items():
                if plain is None:
                    batch.delete(key, handle)
                elif sealed:
                    batch.put(key, self.cipher.seal(plain, _aad(family, key)), handle)
                else:
                    batch.put(key, b"", handle)
        with self._view_lock:
            self._new_generation()
            try:
                self._write(batch, options or self._write_options)
            finally:
                # Written or not (a failed write stops the node), a node written here is
                # read from RocksDB again.
                graph_ranges = any(family == CF_GRAPH for family, _, _ in txn.range_deletes)
                self._forget_nodes(txn.writes.get(CF_GRAPH, {}), everything=graph_ranges)
            # Caches change only after the batch is durable in RocksDB's WAL.
            for key, plain in txn.writes.get(CF_META, {}).items():
                if plain is None:
                    self._meta.pop(key, None)
                else:
                    self._meta[key] = plain
            if txn.new_tokens:
                for (kind, name), token in txn.new_tokens.items():
                    self._token_by_name[(kind, name)] = token
                    self._name_by_token[(kind, token)] = name
            if txn.schema_changed:
                self._set_indexes(dict(txn.indexes))
                self._constraints = dict(txn.constraints)

    def rotate_index_key(self) -> int:
        """Start moving every property index (and the name and schema keys) to a new
        index key; returns its version. Nothing changes for readers until the switch:
        call ``rebuild_indexes`` until it reports ``complete``. Resumable across restarts;
        a rotation already under way is continued, not restarted."""
        with self._write_lock:
            self._check_open()
            if self.installing():
                raise StoreNotReadyError("a snapshot installation did not finish")
            versions = self.index_versions()
            if len(versions) > 1:
                return versions[1]
            version = self.cipher.rotate_index_key()
            for _ in range(versions[0]):  # bounded: a plaintext cipher restarts its count
                if version > versions[0]:
                    break
                version = self.cipher.rotate_index_key()
            txn = _Apply(self)
            txn.put(CF_META, META_INDEX_BUILD, _INDEX_BUILD.pack(version, 0, 0))
            self._commit(txn, _synced())
            return version

    def rebuild_indexes(self, max_records: int = 10_000) -> IndexRebuildProgress:
        """One bounded step of the rotation ``rotate_index_key`` started: index entries
        under the new key for up to `max_records` nodes or relationships, in one batch
        with the position reached. The last step switches lookups to the new key, drops
        every entry under the old one, writes the name and schema keys again, and then
        retires the old index key (synced first: no crash leaves the store reading under
        a key it no longer has) once no open snapshot looks up under it (at the latest when
        the store is next opened). Applies go on between steps, under both keys."""
        if max_records <= 0:
            raise ValueError("max_records must be positive")
        with self._write_lock:
            self._check_open()
            if self.installing():
                raise StoreNotReadyError("a snapshot installation did not finish")
            building = self._meta.get(META_INDEX_BUILD)
            if building is None:
                return IndexRebuildProgress(0, complete=True)
            version, phase, next_id = _INDEX_BUILD.unpack(building)
            txn = _Apply(self)
            visited = 0
            while phase < 2 and visited < max_records:
                kind = b"n" if phase == 0 else b"r"
                exhausted = True
                for key in self._keys(CF_GRAPH, kind, start=kind + _id(next_id)):
                    entity_id = _U64.unpack_from(key, 1)[0]
                    if visited >= max_records:
                        next_id, exhausted = entity_id, False
                        break
                    if phase == 0:
                        entries = txn.index_entries(entity_id, txn.node(entity_id), (version,))
                    else:
                        entries = txn.rel_index_entries(entity_id, txn.rel(entity_id), (version,))
                    for entry in entries:
                        txn.put(CF_INDEX, entry, b"")
                    visited += 1
                if exhausted:
                    phase, next_id = phase + 1, 0
            if phase < 2:
                txn.put(CF_META, META_INDEX_BUILD, _INDEX_BUILD.pack(version, phase, next_id))
                self._commit(txn)
                return IndexRebuildProgress(visited, complete=False)
            old = self.index_versions()[0]
            txn.put(CF_META, META_INDEX_VERSION, _U32.pack(version))
            txn.delete(CF_META, META_INDEX_BUILD)
            txn.range_deletes.append((CF_INDEX, _U32.pack(old), _U32.pack(old + 1)))
            txn.rewrite_name_keys(version)
            txn.save_schema(version)
            self._commit(txn, _synced())
            current = self.cipher.index_key_version()
            stale = set(self.cipher.index_key_versions()) - {version, current}
            self._index_keys_to_retire.update(stale)
        self._retire_unread_index_keys()
        return IndexRebuildProgress(visited, complete=True)

    def reencrypt(self, max_values: int = 10_000) -> ReencryptProgress:
        """Visit up to `max_values` stored values, moving those under older data keys to
        the current one (so one call reads and writes a bounded amount, however much of
        the store is already current).

        Resumable: each call continues a pass over the sealed column families where the
        previous call stopped. Call until ``complete``: a whole pass (under one current
        key) found nothing left to move; then older keys protect no graph value.
        """
        if max_values <= 0:
            raise ValueError("max_values must be positive")
        current = self.cipher.current_version()
        families = sorted(SEALED_FAMILIES)
        with self._write_lock:
            self._check_open()
            progress = self._reencrypt_pass
            if progress is None or progress.version != current:
                progress = self._reencrypt_pass = _ReencryptPass(current)
            batch = WriteBatch(raw_mode=True)
            resealed = visited = 0
            while visited < max_values and progress.family < len(families):
                family = families[progress.family]
                handle = self._handles[family]
                items = self._families[family].items(from_key=progress.key)
                exhausted = True
                for key, sealed in items:
                    assert isinstance(key, bytes) and isinstance(sealed, bytes)
                    if visited >= max_values:
                        progress.key = key
                        exhausted = False
                        break
                    visited += 1
                    if self.cipher.key_version(sealed) != current:
                        aad = _aad(family, key)
                        plain = self.cipher.open(sealed, aad)
                        batch.put(key, self.cipher.seal(plain, aad), handle)
                        resealed += 1
                if exhausted:
                    progress.family += 1
                    progress.key = b""
            if resealed:
                self._write(batch, self._write_options)
            progress.found += resealed
            if progress.family < len(families):
                return ReencryptProgress(resealed, complete=False)
            self._reencrypt_pass = None
            return ReencryptProgress(resealed, complete=progress.found == 0)

    def key_versions(self) -> set[int]:
        """Data key versions that sealed any value this store holds."""
        versions: set[int] = set()
        for family in sorted(SEALED_FAMILIES):
            for sealed in self._families[family].values():
                assert isinstance(sealed, bytes)
                versions.add(self.cipher.key_version(sealed))
        return versions

    def warm_up(self) -> None:
        """Read every stored byte once (no decryption): fills the block and page caches,
        so that timings measure the steady state rather than the first touch of a block."""
        for family in self._families.values():
            for _ in family.items():
                pass

    def flush(self) -> None:
        """Flush memtables and the WAL to disk (tests and shutdown)."""
        self._db.flush_wal(True)
        for family in self._families.values():
            family.flush()

    def flush_memtables(self) -> None:
        """Write the memtables out to SST files, beside writes (RocksDB flushes without the
        GIL): a checkpoint taken after it has little left to flush while it holds the GIL.
        Does nothing on a closed store."""
        with self._flush_lock:
            if self._closed:
                return
            for family in list(self._families.values()):
                family.flush(True)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError("the graph store is closed")

    def close(self) -> None:
        with self._flush_lock, self._write_lock:
            if self._closed:
                return
            self._closed = True
            self._forget_nodes(everything=True)
            for snapshot in list(self._snapshots):
                snapshot.close()  # its reader fails at its next step
            # Column family objects keep the database (and its LOCK) alive: drop them first.
            self._families = {}
            self._handles = {}
            self._db.close()

    @property
    def db(self) -> Rdict:
        """The underlying database (for snapshots and checkpoints within ``store``)."""
        return self._db

    @property
    def path(self) -> Path:
        return self._path


class GraphSnapshot(_GraphReads):
    """The graph as one moment left it: reads see every commit before it and nothing after.

    A long query reads a snapshot instead of holding writes back until it is done. RocksDB
    iterators see the database as it was when they were created; a snapshot creates one per
    column family at once, under the store's view lock (so between two commits), and reads
    only through them: a point read seeks, a scan steps. A scan whose iterator something
    else moved (a nested scan, a point read) seeks back to where it was before its next step.
    (rocksdict's own ``Snapshot`` applies to point reads only: its iterators read the live
    database.) The store's in-memory state is taken as of that moment too: the decoded
    schema, the token maps (which commits only add to), and node records from the shared
    cache only where they were read before the snapshot's generation ended.

    For one thread at a time (a statement's); closing it releases the iterators, which pin
    the files and memtables they read from.
    """

    def __init__(self, store: GraphStore, index_key_versions: frozenset[int]) -> None:
        self.cipher = store.cipher
        self._store = store
        self.index_key_versions = index_key_versions
        """The index keys its lookups use: kept until it is closed."""
        self._token_by_name = store._token_by_name
        self._name_by_token = store._name_by_token
        self._indexes = store._indexes
        self._constraints = store._constraints
        self._node_index_pairs = store._node_index_pairs
        self._rel_index_pairs = store._rel_index_pairs
        self._generation = store._node_generation
        families = store._families
        self._iterators: dict[str, RdictIter] = {
            family: families[family].iter(ReadOptions()) for family in COLUMN_FAMILIES
        }
        self._moves = dict.fromkeys(COLUMN_FAMILIES, 0)
        """How often each iterator was moved: a scan that finds its count changed after
        a step it yielded seeks back to the key it yielded."""
        self._meta: dict[bytes, bytes | None] = {}
        """Meta records read so far, decrypted (counts, index versions: asked again and
        again, and the snapshot never changes)."""

    def __enter__(self) -> GraphSnapshot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release the iterators. An index key only this snapshot still read under is
        retired at the store's next snapshot or rebuild step (retiring writes the key file
        with fsyncs: not here, which may be an event loop)."""
        self._iterators = {}
        self.index_key_versions = frozenset()

    def _iterator(self, family: str) -> RdictIter:
        iterator = self._iterators.get(family)
        if iterator is None:
            raise ValueError("the graph snapshot is closed")
        return iterator

    def _get_plain(self, family: str, key: bytes) -> bytes | None:
        if family == CF_META:
            if key not in self._meta:
                # While no commit began since the snapshot, the store's decrypted meta is
                # this moment's: taken from there (read first, then the generation checked:
                # a commit moves it on before it changes the meta), else read and decrypted.
                # A short transaction (a driver's managed read) reads the counts and index
                # versions of a fresh snapshot each time.
                store = self._store
                value = store._meta.get(key)
                if store._node_generation != self._generation:
                    value = self._read(family, key)
                self._meta[key] = value
            return self._meta[key]
        return self._read(family, key)

    def _read(self, family: str, key: bytes) -> bytes | None:
        iterator = self._iterator(family)
        self._moves[family] += 1
        iterator.seek(key)
        if not iterator.valid():
            iterator.status()
            return None
        if iterator.key() != key:
            return None
        if family not in SEALED_FAMILIES:
            return b""
        return self.cipher.open(iterator.value(), _aad(family, key))

    def _keys(self, family: str, prefix: bytes, start: bytes | None = None) -> Iterator[bytes]:
        iterator = self._iterator(family)
        moves = self._moves
        moves[family] += 1
        mine = moves[family]
        iterator.seek(start or prefix)
        while iterator.valid():
            key = iterator.key()
            if not key.startswith(prefix):
                return
            yield key
            if moves[family] != mine:
                moves[family] += 1
                mine = moves[family]
                iterator.seek(key)  # the iterator still sees the key: it is pinned
            iterator.next()
        iterator.status()

    def node(self, node_id: int) -> NodeRecord | None:
        store = self._store
        cached = store._node_cache.get(node_id)
        # An entry read in an earlier generation than the snapshot's is what the snapshot
        # holds: a commit drops the entries of the nodes it changes (and only records
        # read wholly within one generation go in).
        if cached is not None and cached[2] <= self._generation:
            return cached[0]
        data = self._get_plain(CF_GRAPH, node_key(node_id))
        if data is None:
            return None
        record = self._decode_node_record(node_id, data)
        # Into the cache only while no commit has ended since the snapshot (the record is
        # then also what the store holds).
        store._remember_node(record, len(data), self._generation)
        return record


_KEY_SPACE_END: Final = b"\xff" * 64
"""Above every key the store writes (ids are below 2**63, tokens below 2**31)."""


def _synced() -> WriteOptions:
    options = WriteOptions()
    options.sync = True
    return options


def _prefix_upper_bound(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key with `prefix` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes((trimmed[-1] + 1,))


# -- applying a write set --------------------------------------------------------------------


@dataclass
class _Apply:
    """One write set in progress: its writes, read back before they reach RocksDB."""

    store: GraphStore
    writes: dict[str, dict[bytes, bytes | None]] = field(default_factory=dict)
    new_tokens: dict[tuple[bytes, str], int] = field(default_factory=dict)
    indexes: dict[str, IndexInfo] = field(default_factory=dict)
    constraints: dict[str, ConstraintInfo] = field(default_factory=dict)
    schema_changed: bool = False
    dirty_nodes: set[int] = field(default_factory=set)
    range_deletes: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    index_versions: tuple[int, ...] = ()
    """The index key versions entries are kept under (see GraphStore.index_versions)."""

    def __post_init__(self) -> None:
        self.indexes = dict(self.store._indexes)
        self.constraints = dict(self.store._constraints)
        self.index_versions = self.store.index_versions()

    # -- pending reads and writes -------------------------------------------------------------

    def get(self, family: str, key: bytes) -> bytes | None:
        pending = self.writes.get(family)
        if pending is not None and key in pending:
            return pending[key]
        return self.store._get_plain(family, key)

    def put(self, family: str, key: bytes, plain: bytes) -> None:
        self.writes.setdefault(family, {})[key] = plain

    def delete(self, family: str, key: bytes) -> None:
        self.writes.setdefault(family, {})[key] = None

    def put_app_meta(self, records: Mapping[bytes, bytes | None]) -> None:
        for key, value in records.items():
            if value is None:
                self.delete(CF_META, _APP_META + key)
            else:
                self.put(CF_META, _APP_META + key, value)

    def keys(self, family: str, prefix: bytes) -> list[bytes]:
        found = set(self.store._keys(family, prefix))
        for key, plain in self.writes.get(family, {}).items():
            if key.startswith(prefix):
                if plain is None:
                    found.discard(key)
                else:
                    found.add(key)
        return sorted(found)

    def u64(self, key: bytes) -> int:
        data = self.get(CF_META, key)
        return 0 if data is None else _U64.unpack(data)[0]

    def add_count(self, key: bytes, delta: int) -> None:
        count = self.u64(key) + delta
        assert count >= 0, "a usage count went negative"
        if count:
            self.put(CF_META, key, _U64.pack(count))
        else:
            self.delete(CF_META, key)

    def token(self, kind: bytes, name: str) -> int:
        token = self.store._token_by_name.get((kind, name))
        if token is None:
            token = self.new_tokens.get((kind, name))
        if token is not None:
            return token
        token = self.u64(_TOKEN_COUNTER + kind) + 1
        if token >= MAX_TOKENS_PER_KIND:
            raise WriteSetError("too many distinct names")
        self.put(CF_META, _TOKEN_COUNTER + kind, _U64.pack(token))
        mac = self.store.cipher.mac(kind + b"\x00" + name.encode("utf-8"))
        self.put(CF_META, _TOKEN_BY_NAME + kind + mac, _U32.pack(token))
        self.put(CF_META, _NAME_BY_TOKEN + kind + _U32.pack(token), name.encode("utf-8"))
        self.new_tokens[(kind, name)] = token
        return token

    def node(self, node_id: int) -> _Node | None:
        data = self.get(CF_GRAPH, node_key(node_id))
        return None if data is None else _decode_node(data)

    def must_node(self, node_id: int) -> _Node:
        node = self.node(node_id)
        if node is None:
            raise WriteSetError(f"node {node_id} does not exist")
        return node

    def rel(self, rel_id: int) -> _Rel | None:
        data = self.get(CF_GRAPH, rel_key(rel_id))
        return None if data is None else _decode_rel(data)

    def must_rel(self, rel_id: int) -> _Rel:
        rel = self.rel(rel_id)
        if rel is None:
            raise WriteSetError(f"relationship {rel_id} does not exist")
        return rel

    def set_next(self, node_id: int | None = None, rel_id: int | None = None) -> None:
        data = self.get(CF_META, META_NEXT_IDS)
        next_node, next_rel = (0, 0) if data is None else _U64X2.unpack(data)
        if node_id is not None:
            next_node = max(next_node, node_id + 1)
        if rel_id is not None:
            next_rel = max(next_rel, rel_id + 1)
        self.put(CF_META, META_NEXT_IDS, _U64X2.pack(next_node, next_rel))

    # -- index maintenance --------------------------------------------------------------------

    def indexed_pairs(self) -> set[tuple[str, str]]:
        return {
            (index.label, index.properties[0])
            for index in self.indexes.values()
            if not index.on_relationships and len(index.properties) == 1
        }

    def index_entries(
        self, node_id: int, node: _Node | None, versions: tuple[int, ...] | None = None
    ) -> set[bytes]:
        if node is None:
            return set()
        entries = set()
        for label_name, key_name in self.indexed_pairs():
            label = self.token(LABEL, label_name)
            key = self.token(PROPERTY_KEY, key_name)
            value = node.properties.get(key)
            if label in node.labels and value is not None:
                data = index_key_bytes(value)
                for version in versions or self.index_versions:
                    mac = self.store.cipher.mac(data, version)
                    entries.add(_index_prefix(version, label, key, mac) + _id(node_id))
        return entries

    def write_node(self, node_id: int, before: _Node | None, after: _Node | None) -> None:
        """Store `after` (None: delete) over `before`, with membership, counts, indexes."""
        old_labels = before.labels if before else set()
        new_labels = after.labels if after else set()
        old_keys = set(before.properties) if before else set()
        new_keys = set(after.properties) if after else set()
        for label in new_labels - old_labels:
            self.put(CF_MEMBERSHIP, _label_member(label, node_id), b"")
            self.add_count(_usage_key(LABEL, label), 1)
        for label in old_labels - new_labels:
            self.delete(CF_MEMBERSHIP, _label_member(label, node_id))
            self.add_count(_usage_key(LABEL, label), -1)
        for key in new_keys - old_keys:
            self.add_count(_usage_key(PROPERTY_KEY, key), 1)
        for key in old_keys - new_keys:
            self.add_count(_usage_key(PROPERTY_KEY, key), -1)
        old_entries = self.index_entries(node_id, before)
        new_entries = self.index_entries(node_id, after)
        for entry in old_entries - new_entries:
            self.delete(CF_INDEX, entry)
        for entry in new_entries - old_entries:
            self.put(CF_INDEX, entry, b"")
        if after is None:
            self.delete(CF_GRAPH, node_key(node_id))
            self.add_count(META_NODE_COUNT, -1)
        else:
            self.put(CF_GRAPH, node_key(node_id), _encode_node(after))
            if before is None:
                self.add_count(META_NODE_COUNT, 1)
            self.dirty_nodes.add(node_id)

    def indexed_rel_pairs(self) -> set[tuple[str, str]]:
        return {
            (index.label, index.properties[0])
            for index in self.indexes.values()
            if index.on_relationships and len(index.properties) == 1
        }

    def rel_index_entries(
        self, rel_id: int, rel: _Rel | None, versions: tuple[int, ...] | None = None
    ) -> set[bytes]:
        if rel is None:
            return set()
        entries = set()
        for type_name, key_name in self.indexed_rel_pairs():
            if self.token(TYPE, type_name) != rel.type:
                continue
            key = self.token(PROPERTY_KEY, key_name)
            value = rel.properties.get(key)
            if value is not None:
                data = index_key_bytes(value)
                for version in versions or self.index_versions:
                    mac = self.store.cipher.mac(data, version)
                    entries.add(_rel_index_prefix(version, rel.type, key, mac) + _id(rel_id))
        return entries

    def write_rel(self, rel_id: int, before: _Rel | None, after: _Rel | None) -> None:
        old_keys = set(before.properties) if before else set()
        new_keys = set(after.properties) if after else set()
        for key in new_keys - old_keys:
            self.add_count(_usage_key(PROPERTY_KEY, key), 1)
        for key in old_keys - new_keys:
            self.add_count(_usage_key(PROPERTY_KEY, key), -1)
        old_entries = self.rel_index_entries(rel_id, before)
        new_entries = self.rel_index_entries(rel_id, after)
        for entry in old_entries - new_entries:
            self.delete(CF_INDEX, entry)
        for entry in new_entries - old_entries:
            self.put(CF_INDEX, entry, b"")
        if after is None:
            assert before is not None
            self.delete(CF_GRAPH, rel_key(rel_id))
            start, end = before.start, before.end
            self.delete(CF_ADJACENCY, _adjacency_key(start, OUT, before.type, rel_id, end))
            self.delete(CF_ADJACENCY, _adjacency_key(end, IN, before.type, rel_id, start))
            self.delete(CF_MEMBERSHIP, _type_member(before.type, rel_id))
            self.add_count(_usage_key(TYPE, before.type), -1)
            self.add_count(META_REL_COUNT, -1)
            return
        self.put(CF_GRAPH, rel_key(rel_id), _encode_rel(after))
        if before is None:
            start, end = after.start, after.end
            self.put(CF_ADJACENCY, _adjacency_key(start, OUT, after.type, rel_id, end), b"")
            self.put(CF_ADJACENCY, _adjacency_key(end, IN, after.type, rel_id, start), b"")
            self.put(CF_MEMBERSHIP, _type_member(after.type, rel_id), b"")
            self.add_count(_usage_key(TYPE, after.type), 1)
            self.add_count(META_REL_COUNT, 1)

    def reindex(
        self, before_pairs: set[tuple[str, str]], before_rel_pairs: set[tuple[str, str]]
    ) -> None:
        """Bring index entries in line with the schema after an index came or went."""
        after_rel_pairs = self.indexed_rel_pairs()
        for type_name, key_name in before_rel_pairs - after_rel_pairs:
            type_token = self.token(TYPE, type_name)
            key = self.token(PROPERTY_KEY, key_name)
            for version in self.index_versions:
                pair = _U32.pack(version) + REL_INDEX + _U32.pack(type_token) + _U32.pack(key)
                for entry in self.keys(CF_INDEX, pair):
                    self.delete(CF_INDEX, entry)
        for type_name, key_name in after_rel_pairs - before_rel_pairs:
            type_token = self.token(TYPE, type_name)
            key = self.token(PROPERTY_KEY, key_name)
            prefix = TYPE + _U32.pack(type_token)
            for member in self.keys(CF_MEMBERSHIP, prefix):
                rel_id = _U64.unpack_from(member, len(prefix))[0]
                rel = self.rel(rel_id)
                assert rel is not None
                value = rel.properties.get(key)
                if value is not None:
                    data = index_key_bytes(value)
                    for version in self.index_versions:
                        mac = self.store.cipher.mac(data, version)
                        entry = _rel_index_prefix(version, type_token, key, mac) + _id(rel_id)
                        self.put(CF_INDEX, entry, b"")
        after_pairs = self.indexed_pairs()
        for label_name, key_name in before_pairs - after_pairs:
            label = self.token(LABEL, label_name)
            key = self.token(PROPERTY_KEY, key_name)
            for version in self.index_versions:
                pair = _U32.pack(version) + _U32.pack(label) + _U32.pack(key)
                for entry in self.keys(CF_INDEX, pair):
                    self.delete(CF_INDEX, entry)
        for label_name, key_name in after_pairs - before_pairs:
            label = self.token(LABEL, label_name)
            key = self.token(PROPERTY_KEY, key_name)
            prefix = LABEL + _U32.pack(label)
            for member in self.keys(CF_MEMBERSHIP, prefix):
                node_id = _U64.unpack_from(member, len(prefix))[0]
                node = self.node(node_id)
                assert node is not None
                value = node.properties.get(key)
                if value is not None:
                    data = index_key_bytes(value)
                    for version in self.index_versions:
                        mac = self.store.cipher.mac(data, version)
                        entry = _index_prefix(version, label, key, mac) + _id(node_id)
                        self.put(CF_INDEX, entry, b"")

    def save_schema(self, mac_version: int | None = None) -> None:
        self.schema_changed = True
        cipher = self.store.cipher
        for key in self.keys(CF_META, _SCHEMA_INDEX):
            self.delete(CF_META, key)
        for key in self.keys(CF_META, _SCHEMA_CONSTRAINT):
            self.delete(CF_META, key)
        for name, index in self.indexes.items():
            mac = cipher.mac(b"index\x00" + name.encode("utf-8"), mac_version)
            self.put(CF_META, _SCHEMA_INDEX + mac, _encode_index(index))
        for name, constraint in self.constraints.items():
            mac = cipher.mac(b"constraint\x00" + name.encode("utf-8"), mac_version)
            self.put(CF_META, _SCHEMA_CONSTRAINT + mac, _encode_constraint(constraint))

    def rewrite_name_keys(self, mac_version: int) -> None:
        """Every name's token key again, its HMAC under index key `mac_version`."""
        for key in self.keys(CF_META, _TOKEN_BY_NAME):
            self.delete(CF_META, key)
        names = {**self.store._token_by_name, **self.new_tokens}
        for (kind, name), token in names.items():
            mac = self.store.cipher.mac(kind + b"\x00" + name.encode("utf-8"), mac_version)
            self.put(CF_META, _TOKEN_BY_NAME + kind + mac, _U32.pack(token))

    def change_schema(self, change: Operation) -> None:
        before_pairs = self.indexed_pairs()
        before_rel_pairs = self.indexed_rel_pairs()
        if isinstance(change, CreateIndex):
            self.indexes[change.name] = IndexInfo(
                change.name, change.label, change.properties, change.on_relationships
            )
        elif isinstance(change, DropIndex):
            self.indexes.pop(change.name, None)
        elif isinstance(change, CreateUniqueConstraint):
            self.constraints[change.name] = ConstraintInfo(
                change.name, change.label, change.properties
            )
            self.indexes[change.name] = IndexInfo(
                change.name, change.label, change.properties, unique=True
            )
            label = self.token(LABEL, change.label)
            prefix = LABEL + _U32.pack(label)
            for member in self.keys(CF_MEMBERSHIP, prefix):
                self.dirty_nodes.add(_U64.unpack_from(member, len(prefix))[0])
        elif isinstance(change, DropConstraint):
            self.constraints.pop(change.name, None)
            self.indexes.pop(change.name, None)
        self.reindex(before_pairs, before_rel_pairs)
        self.save_schema()

    # -- operations ---------------------------------------------------------------------------

    def apply(self, op: Operation) -> None:
        for attribute in ("node_id", "rel_id", "start", "end"):
            entity_id = getattr(op, attribute, 0)
            if not 0 <= entity_id <= MAX_ID:
                raise WriteSetError(f"{attribute} {entity_id} is outside [0, {MAX_ID}]")
        if isinstance(op, CreateNode):
            if self.node(op.node_id) is not None:
                raise WriteSetError(f"node {op.node_id} exists")
            labels = {self.token(LABEL, label) for label in op.labels}
            properties = {self.token(PROPERTY_KEY, key): value for key, value in op.properties}
            self.write_node(op.node_id, None, _Node(labels, properties))
            self.set_next(node_id=op.node_id)
        elif isinstance(op, DeleteNode):
            node = self.must_node(op.node_id)
            if self.keys(CF_ADJACENCY, _id(op.node_id)):
                raise WriteSetError(f"node {op.node_id} still has relationships")
            self.write_node(op.node_id, node, None)
        elif isinstance(op, CreateRelationship):
            if self.rel(op.rel_id) is not None:
                raise WriteSetError(f"relationship {op.rel_id} exists")
            self.must_node(op.start)
            self.must_node(op.end)
            properties = {self.token(PROPERTY_KEY, key): value for key, value in op.properties}
            rel = _Rel(self.token(TYPE, op.type), op.start, op.end, properties)
            self.write_rel(op.rel_id, None, rel)
            self.set_next(rel_id=op.rel_id)
        elif isinstance(op, DeleteRelationship):
            self.write_rel(op.rel_id, self.must_rel(op.rel_id), None)
        elif isinstance(op, SetNodeProperty):
            before = self.must_node(op.node_id)
            after = _Node(set(before.labels), dict(before.properties))
            _set(after.properties, self.token(PROPERTY_KEY, op.key), op.value)
            self.write_node(op.node_id, before, after)
        elif isinstance(op, SetRelationshipProperty):
            rel_before = self.must_rel(op.rel_id)
            rel_after = _Rel(
                rel_before.type, rel_before.start, rel_before.end, dict(rel_before.properties)
            )
            _set(rel_after.properties, self.token(PROPERTY_KEY, op.key), op.value)
            self.write_rel(op.rel_id, rel_before, rel_after)
        elif isinstance(op, AddLabel):
            before = self.must_node(op.node_id)
            after = _Node(before.labels | {self.token(LABEL, op.label)}, dict(before.properties))
            self.write_node(op.node_id, before, after)
        elif isinstance(op, RemoveLabel):
            before = self.must_node(op.node_id)
            token = self.store._token_by_name.get((LABEL, op.label))
            token = self.new_tokens.get((LABEL, op.label), token)
            after = _Node(
                before.labels - {token} if token else set(before.labels), before.properties
            )
            self.write_node(op.node_id, before, after)
        elif isinstance(op, CreateIndex | DropIndex | CreateUniqueConstraint | DropConstraint):
            self.change_schema(op)
        else:  # pragma: no cover - the Operation union is closed
            raise WriteSetError(f"unknown operation {op!r}")

    def check_constraints(self) -> None:
        """Uniqueness, checked once the whole write set is in (as at Neo4j's commit)."""
        if not self.constraints or not self.dirty_nodes:
            return
        for constraint in self.constraints.values():
            label = self.token(LABEL, constraint.label)
            keys = [self.token(PROPERTY_KEY, key) for key in constraint.properties]
            for node_id in sorted(self.dirty_nodes):
                node = self.node(node_id)
                if node is None or label not in node.labels:
                    continue
                values = [node.properties.get(key) for key in keys]
                if any(value is None for value in values):
                    continue
                for other in self._candidates(label, keys, values):
                    if other == node_id:
                        continue
                    other_node = self.node(other)
                    if other_node is None or label not in other_node.labels:
                        continue
                    other_values = [other_node.properties.get(key) for key in keys]
                    if all(
                        b is not None and values_equal(a, b)
                        for a, b in zip(values, other_values, strict=True)
                    ):
                        raise ConstraintViolationError(
                            f"Node({other}) already exists with label `{constraint.label}` "
                            f"and the properties of constraint `{constraint.name}`"
                        )

    def _candidates(self, label: int, keys: list[int], values: list[Value]) -> list[int]:
        if len(keys) == 1:
            version = self.index_versions[0]
            mac = self.store.cipher.mac(index_key_bytes(values[0]), version)
            prefix = _index_prefix(version, label, keys[0], mac)
            return [_U64.unpack_from(key, len(prefix))[0] for key in self.keys(CF_INDEX, prefix)]
        prefix = LABEL + _U32.pack(label)
        return [_U64.unpack_from(key, len(prefix))[0] for key in self.keys(CF_MEMBERSHIP, prefix)]


def _set(properties: dict[int, Value], key: int, value: Value) -> None:
    if value is None:
        properties.pop(key, None)
    else:
        properties[key] = value


if TYPE_CHECKING:
    from store.view import GraphView

    def _is_graph_view(graph: GraphStore) -> GraphView:
        return graph  # mypy proves GraphStore satisfies the query engine's GraphView
