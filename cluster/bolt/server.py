"""The Bolt listener: handshake, chunked framing, and the message state machine of Bolt 5.

Owns one asyncio server, each connection's byte stream (``BoltStream``, a buffered
protocol) and task (joined at close), the version negotiation (Bolt 5.1 to 5.8; the 4-slot
range handshake and, when the client offers it, the 5.7+ manifest handshake), the chunked
framing (NOOP keep-alives both ways), and the states CONNECTED -> AUTHENTICATION -> READY
<-> STREAMING / TX_READY <-> TX_STREAMING, FAILED, DEFUNCT with Bolt's FAILURE / IGNORED /
RESET semantics. Errors go out with the fields the negotiated version needs:
``code``/``message`` before 5.7, the GQL fields from 5.7 on.

Every bound is explicit: message size, open connections, open result streams, received
bytes not yet read (the socket is then not read), the idle wait for a client's next
message, the handshake deadline, the outgoing batch before a drain.
Must never: execute a query itself (that is the ``BoltBackend``), listen beyond the address
it is given, or speak plaintext unless the caller passed ``insecure=True``.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import ssl
import struct
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol, TypeVar

from cluster.bolt import packstream as ps
from cluster.bolt.backend import (
    DATABASE_NOT_FOUND,
    DEFAULT_DATABASE,
    SYSTEM_DATABASE,
    UNAUTHORIZED,
    AccessMode,
    BoltBackend,
    ConnectionInfo,
    Principal,
    QueryResult,
    TransactionOptions,
)
from cluster.errors import QuiverError
from cypher import CypherError, Node, Path, Relationship

log = logging.getLogger("quiver.bolt")

MAGIC: Final = b"\x60\x60\xb0\x17"
MANIFEST_V1: Final = (0xFF, 0x01)
"""(major, minor) of the handshake slot by which a client offers the manifest handshake."""
MIN_VERSION: Final = (5, 1)
MAX_VERSION: Final = (5, 8)
GQL_ERRORS_FROM: Final = (5, 7)
SUPPORTED_VERSIONS: Final = tuple((5, minor) for minor in range(1, 9))

MAX_MESSAGE_BYTES: Final = 16 * 1024 * 1024
MAX_OVERSIZED_BYTES: Final = 256 * 1024 * 1024
"""A message over MAX_MESSAGE_BYTES is read on and dropped, up to this many bytes, so that
the client gets a FAILURE (Neo.ClientError.Request.Invalid, which drivers do not retry)
instead of a dropped connection (ServiceUnavailable, which they retry: a 20 MB parameter
was sent again and again). Reading costs only time (nothing is kept); past this the
connection ends."""
MAX_CHUNK_BYTES: Final = 0xFFFF
INLINE_UNPACK_BYTES: Final = 64 * 1024
"""Messages up to this size are unpacked on the event loop, larger ones in a thread: a
16 MiB message of small integers takes seconds to unpack, which on the event loop would
hold up every connection and, on a node, Raft's heartbeats."""
MAX_CONNECTIONS: Final = 1024
MAX_OPEN_STREAMS: Final = 256
HANDSHAKE_TIMEOUT_S: Final = 10.0
IDLE_TIMEOUT_S: Final = 600.0
KEEPALIVE_INTERVAL_S: Final = 10.0
WATCHDOG_FRACTION: Final = 0.25
"""A connection's watchdog runs this often, as a fraction of its shorter interval (keep-alive
or idle): a NOOP goes out at most 25 % late, an idle connection ends at most 25 % late."""
WATCHDOG_MIN_S: Final = 0.005
RECORDS_PER_DRAIN: Final = 1000
MAX_PACKED_ANSWERS: Final = 64
"""SUCCESS messages a connection keeps packed (those that follow from a few values: a
result's columns, its type and database) before it forgets them all."""
MAX_REPEATED_MESSAGES: Final = 8
MAX_REPEATED_BYTES: Final = 512
"""A connection remembers the fields of up to MAX_REPEATED_MESSAGES short (up to
MAX_REPEATED_BYTES) PULL, DISCARD and BEGIN messages: a driver sends the same ones again."""
FLUSH_BYTES: Final = 256 * 1024
"""Outgoing bytes buffered before a flush even while the client's next message waits."""
READ_BYTES: Final = 64 * 1024
READ_PAUSE_BYTES: Final = 4 * READ_BYTES
"""Bytes received and not yet read by the connection at which the socket stops being read
(until the connection has read them down under READ_BYTES)."""
SHUTDOWN_GRACE_S: Final = 2.0
SERVER_AGENT: Final = "Neo4j/5.26.0"
"""Drivers and tools parse the agent as Neo4j's, so Quiver answers as the 5.26 it mimics."""

# Message signatures.
HELLO: Final = 0x01
GOODBYE: Final = 0x02
RESET: Final = 0x0F
RUN: Final = 0x10
BEGIN: Final = 0x11
COMMIT: Final = 0x12
ROLLBACK: Final = 0x13
DISCARD: Final = 0x2F
PULL: Final = 0x3F
TELEMETRY: Final = 0x54
ROUTE: Final = 0x66
LOGON: Final = 0x6A
LOGOFF: Final = 0x6B
SUCCESS: Final = 0x70
RECORD: Final = 0x71
IGNORED: Final = 0x7E
FAILURE: Final = 0x7F
_REPEATING: Final = frozenset((PULL, DISCARD, BEGIN))

INVALID_REQUEST: Final = "Neo.ClientError.Request.Invalid"
INVALID_FORMAT: Final = "Neo.ClientError.Request.InvalidFormat"
UNKNOWN_ERROR: Final = "Neo.DatabaseError.General.UnknownError"
INVALID_PARAMETER: Final = "Neo.ClientError.Statement.TypeError"

T = TypeVar("T")


class State(enum.Enum):
    CONNECTED = "CONNECTED"
    AUTHENTICATION = "AUTHENTICATION"
    READY = "READY"
    STREAMING = "STREAMING"
    TX_READY = "TX_READY"
    TX_STREAMING = "TX_STREAMING"
    FAILED = "FAILED"
    DEFUNCT = "DEFUNCT"


class MessageTooLarge(Exception):
    """A message over MAX_MESSAGE_BYTES, read and dropped: the connection goes on."""


class _Oversized(Exception):
    """`MessageReader._message_end` found a message over MAX_MESSAGE_BYTES."""


class ProtocolViolation(Exception):
    """The client broke the protocol; the connection ends."""


class ByteReader(Protocol):
    """What a connection reads through: an ``asyncio.StreamReader`` or a ``BoltStream``."""

    async def read(self, n: int) -> bytes: ...

    async def readexactly(self, n: int) -> bytes: ...


class ByteWriter(Protocol):
    """What a connection writes through: an ``asyncio.StreamWriter`` or a ``BoltStream``."""

    @property
    def transport(self) -> asyncio.WriteTransport: ...

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...

    def close(self) -> None: ...

    async def wait_closed(self) -> None: ...

    def get_extra_info(self, name: str, default: Any = None) -> Any: ...


class BoltStream(asyncio.BufferedProtocol):
    """A connection's socket (TLS or not) as a reader and a writer, without asyncio's
    streams: bytes come in through one buffer reused for every read — the streams' protocol
    has the TLS layer allocate a buffer per read (256 KiB) — and a waiting reader is woken
    directly. On a TLS echo (uvloop), server CPU per request/response 34-41 -> 17 us.

    Flow control both ways: the socket is no longer read while READ_PAUSE_BYTES wait
    unread, and ``drain`` waits while the transport's write buffer is over its high mark.
    ``connected`` is called with the stream once the transport is up."""

    def __init__(self, connected: Callable[[BoltStream], None]) -> None:
        self._connected = connected
        self._transport: asyncio.Transport | None = None
        self._receive = bytearray(READ_BYTES)
        self._receive_view = memoryview(self._receive)
        self._received = bytearray()
        self._eof = False
        self._lost = False
        self._error: BaseException | None = None
        self._reading_paused = False
        self._writing_paused = False
        self._data_waiter: asyncio.Future[None] | None = None
        self._drain_waiter: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None

    # -- asyncio.BufferedProtocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's TLS transport is not an asyncio.Transport subclass, only alike.
        self._transport = transport  # type: ignore[assignment]
        self._closed = asyncio.get_running_loop().create_future()
        self._connected(self)

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._receive_view

    def buffer_updated(self, nbytes: int) -> None:
        self._received += self._receive_view[:nbytes]
        if len(self._received) >= READ_PAUSE_BYTES and not self._reading_paused:
            assert self._transport is not None
            self._reading_paused = True
            self._transport.pause_reading()
        self._wake_reader()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake_reader()
        # Over TLS a half-close is not kept (asyncio closes); over TCP the answers queued
        # may still go out (the connection closes the transport itself).
        assert self._transport is not None
        return self._transport.get_extra_info("sslcontext") is None

    def connection_lost(self, exc: Exception | None) -> None:
        self._eof = self._lost = True
        self._error = exc
        self._wake_reader()
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)  # drain() raises: it sees the connection lost
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)

    def pause_writing(self) -> None:
        self._writing_paused = True

    def resume_writing(self) -> None:
        self._writing_paused = False
        drain = self._drain_waiter
        if drain is not None and not drain.done():
            drain.set_result(None)

    # -- reading ----------------------------------------------------------------------------

    def _wake_reader(self) -> None:
        waiter = self._data_waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait_for_data(self) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._data_waiter = waiter
        try:
            await waiter
        finally:
            self._data_waiter = None

    def _take(self, n: int) -> bytes:
        received = self._received
        data = bytes(received[:n])
        del received[:n]
        if self._reading_paused and len(received) < READ_BYTES:
            assert self._transport is not None
            self._reading_paused = False
            self._transport.resume_reading()
        return data

    async def read(self, n: int) -> bytes:
        """Up to `n` bytes once some are there; b"" at the end of the stream."""
        while not self._received:
            if self._eof:
                if self._error is not None:
                    raise self._error
                return b""
            await self._wait_for_data()
        return self._take(n)

    async def readexactly(self, n: int) -> bytes:
        while len(self._received) < n:
            if self._eof:
                partial = self._take(len(self._received))
                raise asyncio.IncompleteReadError(partial, n)
            await self._wait_for_data()
        return self._take(n)

    # -- writing ----------------------------------------------------------------------------

    @property
    def transport(self) -> asyncio.Transport:
        assert self._transport is not None
        return self._transport

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    async def drain(self) -> None:
        if self._lost:
            raise ConnectionResetError("Connection lost")
        while self._writing_paused:
            waiter = asyncio.get_running_loop().create_future()
            self._drain_waiter = waiter
            try:
                await waiter
            finally:
                self._drain_waiter = None
            if self._lost:
                raise ConnectionResetError("Connection lost")

    def close(self) -> None:
        self.transport.close()

    async def wait_closed(self) -> None:
        assert self._closed is not None
        await asyncio.shield(self._closed)

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self.transport.get_extra_info(name, default)


@dataclass(slots=True)
class _Stream:
    result: QueryResult
    database: str
    auto_commit: bool
    started: float
    done: bool = False
    position: int = 0
    """How many of ``result.rows`` were sent or discarded (materialized results only)."""


@dataclass(slots=True)
class _Session:
    """The per-connection state a Bolt connection keeps."""

    state: State = State.CONNECTED
    principal: Principal | None = None
    transaction: object | None = None
    database: str = DEFAULT_DATABASE
    streams: dict[int, _Stream] = field(default_factory=dict)
    next_qid: int = 0
    last_qid: int = -1


# -- handshake -------------------------------------------------------------------------------


def choose_version(proposals: Sequence[tuple[int, int, int]]) -> tuple[int, int] | None:
    """The version to speak for the client's (major, minor, range) proposals, in its order
    of preference, or None."""
    for major, minor, span in proposals:
        offered = [(major, m) for m in range(minor - span, minor + 1)]
        common = [v for v in offered if MIN_VERSION <= v <= MAX_VERSION]
        if common:
            return max(common)
    return None


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


async def _read_varint(reader: ByteReader) -> int:
    value = 0
    for shift in range(0, 35, 7):
        byte = (await reader.readexactly(1))[0]
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value
    raise ProtocolViolation("handshake varint too long")


async def negotiate(reader: ByteReader, writer: ByteWriter) -> tuple[int, int]:
    if await reader.readexactly(4) != MAGIC:
        raise ProtocolViolation("not a Bolt client (wrong preamble)")
    raw = await reader.readexactly(16)
    proposals = [(raw[i + 3], raw[i + 2], raw[i + 1]) for i in range(0, 16, 4)]
    if any((major, minor) == MANIFEST_V1 for major, minor, _ in proposals):
        # Manifest v1: list what we speak; the client answers with its choice.
        span = MAX_VERSION[1] - MIN_VERSION[1]
        writer.write(
            bytes((0, 0, 1, 0xFF))
            + _encode_varint(1)
            + bytes((0, span, MAX_VERSION[1], MAX_VERSION[0]))
            + _encode_varint(0)
        )
        await writer.drain()
        chosen = await reader.readexactly(4)
        await _read_varint(reader)  # the client's capabilities: none are defined yet
        version = (chosen[3], chosen[2])
        if version not in SUPPORTED_VERSIONS:
            raise ProtocolViolation(f"client chose unsupported Bolt {version}")
        return version
    common = choose_version(proposals)
    if common is None:
        writer.write(b"\x00\x00\x00\x00")
        await writer.drain()
        raise ProtocolViolation(f"no common Bolt version in {proposals}")
    writer.write(bytes((0, 0, common[1], common[0])))
    await writer.drain()
    return common


# -- framing ---------------------------------------------------------------------------------


async def read_message(reader: ByteReader, idle_timeout_s: float) -> bytes | None:
    """The next message's bytes, skipping NOOP chunks; None at a clean end of stream."""
    message = bytearray()
    while True:
        try:
            header = await asyncio.wait_for(reader.readexactly(2), idle_timeout_s)
        except asyncio.IncompleteReadError as error:
            if not error.partial and not message:
                return None
            raise ProtocolViolation("connection closed inside a message") from None
        size = int.from_bytes(header, "big")
        if size == 0:
            if message:
                return bytes(message)
            continue  # NOOP keep-alive
        if len(message) + size > MAX_MESSAGE_BYTES:
            raise ProtocolViolation(f"message larger than {MAX_MESSAGE_BYTES} bytes")
        message += await asyncio.wait_for(reader.readexactly(size), idle_timeout_s)


class MessageReader:
    """Bolt messages from a stream through one bounded buffer, so that the connection can
    tell whether the client's next message is already here (a driver pipelines RUN and
    PULL, BEGIN and RUN...): answers are then flushed together, once the connection is
    about to wait for its client, instead of one socket write (and TLS record) each."""

    def __init__(self, reader: ByteReader) -> None:
        self.reader = reader
        self.buffer = bytearray()
        self._end: int | None = None
        """Where the first complete message ends in the buffer, once found (None: not yet);
        `has_message`/`ready` then `message` look for it once."""

    def _message_end(self) -> int | None:
        """Where the first complete message (after any NOOPs) ends in the buffer, or None."""
        if self._end is not None:
            return self._end
        position, size_so_far, buffer = 0, 0, self.buffer
        while position + 2 <= len(buffer):
            size = (buffer[position] << 8) | buffer[position + 1]
            if size == 0:
                position += 2
                if size_so_far:
                    self._end = position
                    return position
                continue  # NOOP keep-alive
            size_so_far += size
            if size_so_far > MAX_MESSAGE_BYTES:
                raise _Oversized
            if position + 2 + size > len(buffer):
                return None
            position += 2 + size
        return None

    def has_message(self) -> bool:
        try:
            return self._message_end() is not None
        except _Oversized:
            return False  # `message` drops it

    def ready(self) -> bytes | None:
        """The next message's bytes if it is all here already (no wait), else None."""
        buffer = self.buffer
        if len(buffer) >= 4:
            size = (buffer[0] << 8) | buffer[1]
            end = size + 4
            # One chunk then the end marker (nearly every message): no scan of chunks.
            if size and len(buffer) >= end and buffer[end - 2] == 0 and buffer[end - 1] == 0:
                self._end = None
                message = bytes(buffer[2 : end - 2])
                del buffer[:end]
                return message
        try:
            if self._message_end() is None:
                return None
        except _Oversized:
            return None  # `message` drops it
        return self._take_message()

    async def message(self, idle_timeout_s: float | None) -> bytes | None:
        """The next message's bytes, skipping NOOP chunks; None at a clean end of stream.
        Without `idle_timeout_s` the caller bounds the wait itself (a connection's
        watchdog: one timer per connection instead of one per read). A message over
        MAX_MESSAGE_BYTES is read to its end and dropped, then raises MessageTooLarge."""
        while True:
            try:
                if self._message_end() is not None:
                    break
            except _Oversized:
                await self._drop_message(idle_timeout_s)
                raise MessageTooLarge(
                    f"a Bolt message may take at most {MAX_MESSAGE_BYTES} bytes"
                ) from None
            if idle_timeout_s is None:
                data = await self.reader.read(READ_BYTES)
            else:
                async with asyncio.timeout(idle_timeout_s):
                    data = await self.reader.read(READ_BYTES)
            if not data:
                if any(self.buffer):  # only NOOPs may trail a clean end
                    raise ProtocolViolation("connection closed inside a message")
                return None
            self.buffer += data
        return self._take_message()

    async def _read(self, idle_timeout_s: float | None) -> bytes:
        if idle_timeout_s is None:
            return await self.reader.read(READ_BYTES)
        async with asyncio.timeout(idle_timeout_s):
            return await self.reader.read(READ_BYTES)

    async def _drop_message(self, idle_timeout_s: float | None) -> None:
        """Read the message at the buffer's start to its end marker, keeping none of it
        (at most MAX_OVERSIZED_BYTES, else ProtocolViolation)."""
        buffer = self.buffer
        self._end = None
        position = dropped = 0  # position: the next chunk header, from the buffer's start
        data_seen = False
        while True:
            while position + 2 <= len(buffer):
                size = (buffer[position] << 8) | buffer[position + 1]
                position += 2
                if size == 0:
                    if data_seen:
                        del buffer[:position]
                        return
                    continue  # NOOPs before the message
                data_seen = True
                position += size
                if dropped + position > MAX_OVERSIZED_BYTES:
                    raise ProtocolViolation(f"message larger than {MAX_OVERSIZED_BYTES} bytes")
            consumed = min(position, len(buffer))
            del buffer[:consumed]
            position -= consumed
            dropped += consumed
            data = await self._read(idle_timeout_s)
            if not data:
                raise ProtocolViolation("connection closed inside a message")
            buffer += data

    def _take_message(self) -> bytes:
        """The first complete message's bytes, out of the buffer (`_end` found)."""
        end = self._end
        assert end is not None
        buffer = self.buffer
        self._end = None
        if (buffer[0] << 8) | buffer[1] == end - 4:  # one chunk (nearly every message)
            message = bytes(buffer[2 : end - 2])
        else:
            parts = bytearray()
            position = 0
            while position < end:
                size = (buffer[position] << 8) | buffer[position + 1]
                parts += buffer[position + 2 : position + 2 + size]
                position += 2 + size
            message = bytes(parts)
        del buffer[:end]
        return message


_CHUNK_HEADER: Final = struct.Struct(">H")
_RECORD_HEAD: Final = bytes((0, 0, 0xB1, RECORD))
"""A RECORD message's start: the chunk header to fill in, a one-field structure, its tag."""


def frame(message: bytes) -> bytes:
    out = bytearray()
    for start in range(0, len(message), MAX_CHUNK_BYTES):
        chunk = message[start : start + MAX_CHUNK_BYTES]
        out += _CHUNK_HEADER.pack(len(chunk))
        out += chunk
    out += b"\x00\x00"
    return bytes(out)


# -- errors ----------------------------------------------------------------------------------

_ACCESS = "error: syntax error or access rule violation"
_GQL_STATUS_BY_CODE: Final = {
    UNAUTHORIZED: ("42NFF", f"{_ACCESS} - permission/access denied"),
    DATABASE_NOT_FOUND: ("22N51", "error: data exception - graph reference not found"),
    "Neo.ClientError.Statement.SyntaxError": ("42001", f"{_ACCESS} - invalid syntax"),
    "Neo.ClientError.Statement.ParameterMissing": ("42N51", f"{_ACCESS} - invalid parameter"),
}


def failure_metadata(code: str, message: str, version: tuple[int, int]) -> dict[str, Any]:
    if version < GQL_ERRORS_FROM:
        return {"code": code, "message": message}
    if code in _GQL_STATUS_BY_CODE:
        gql_status, description = _GQL_STATUS_BY_CODE[code]
    elif code.startswith("Neo.ClientError."):
        gql_status, description = "22N00", "error: data exception"
    elif code.startswith("Neo.TransientError."):
        gql_status, description = "50N00", "error: general processing exception - transient"
    else:
        gql_status, description = "50N42", "error: general processing exception - unexpected"
    classification = code.split(".")[1] if code.count(".") == 3 else "DatabaseError"
    return {
        "neo4j_code": code,
        "message": message,
        "gql_status": gql_status,
        "description": f"{description}. {message}",
        "diagnostic_record": {
            "OPERATION": "",
            "OPERATION_CODE": "0",
            "CURRENT_SCHEMA": "/",
            "_classification": _GQL_CLASSIFICATION.get(classification, "DATABASE_ERROR"),
        },
    }


_GQL_CLASSIFICATION: Final = {
    "ClientError": "CLIENT_ERROR",
    "TransientError": "TRANSIENT_ERROR",
    "DatabaseError": "DATABASE_ERROR",
}


def _as_quiver_error(error: Exception) -> QuiverError:
    if isinstance(error, QuiverError):
        return error
    if isinstance(error, CypherError):
        return QuiverError(error.status_code, str(error.args[0]) if error.args else "")
    if isinstance(error, ps.PackStreamError):
        return QuiverError(INVALID_FORMAT, str(error))
    log.exception("bolt: unexpected error", exc_info=error)
    return QuiverError(UNKNOWN_ERROR, f"{type(error).__name__}: {error}")


# -- the connection --------------------------------------------------------------------------


def _resolve_database(name: Any) -> str:
    if name is None or name == "":
        return DEFAULT_DATABASE
    if not isinstance(name, str):
        raise QuiverError(INVALID_REQUEST, "a database name is a string")
    lowered = name.lower()
    if lowered not in (DEFAULT_DATABASE, SYSTEM_DATABASE):
        raise QuiverError(DATABASE_NOT_FOUND, f"Database does not exist. Database name: '{name}'.")
    return lowered


_SCALARS: Final = frozenset((str, int, float, bool, type(None), bytes))


def _has_entity(value: Any) -> bool:
    """Whether a value holds a node, relationship or path (never a parameter). Parameters
    are nearly always scalars, each passed over on its exact type alone."""
    if isinstance(value, Node | Relationship | Path | ps.UnboundRelationship):
        return True
    if isinstance(value, list | dict):
        for item in value.values() if isinstance(value, dict) else value:
            if type(item) not in _SCALARS and _has_entity(item):
                return True
    return False


def _map(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise QuiverError(INVALID_REQUEST, f"{what} must be a map")
    return value


def _options(extra: dict[str, Any], session_db: str | None = None) -> TransactionOptions:
    bookmarks = extra.get("bookmarks") or []
    if not isinstance(bookmarks, list) or not all(isinstance(b, str) for b in bookmarks):
        raise QuiverError(INVALID_REQUEST, "bookmarks must be a list of strings")
    timeout = extra.get("tx_timeout")
    if timeout is not None and (not isinstance(timeout, int) or timeout < 0):
        raise QuiverError(INVALID_REQUEST, "tx_timeout must be a non-negative integer")
    imp_user = extra.get("imp_user")
    if imp_user is not None and not isinstance(imp_user, str):
        raise QuiverError(INVALID_REQUEST, "imp_user must be a string")
    mode = extra.get("mode", "w")
    return TransactionOptions(
        database=session_db if session_db is not None else _resolve_database(extra.get("db")),
        access_mode=AccessMode.READ if mode == "r" else AccessMode.WRITE,
        bookmarks=tuple(bookmarks),
        metadata=_map(extra.get("tx_metadata"), "tx_metadata"),
        timeout_ms=timeout or None,
        imp_user=imp_user or None,
    )


def _stats(counters: dict[str, int] | Any) -> dict[str, Any]:
    stats: dict[str, Any] = {}
    for key, count in counters.items():
        # Most statements change nothing: a zero counter is passed over before any test.
        if not count or key == "contains_updates" or type(count) is not int:
            continue
        stats[key.replace("_", "-")] = count
    if any(k != "system-updates" for k in stats):
        stats["contains-updates"] = True
    if stats.get("system-updates"):
        stats["contains-system-updates"] = True
    return stats


class Connection:
    """One client connection: reads messages in order, answers each, in order."""

    _ids = itertools.count(1)

    def __init__(
        self,
        backend: BoltBackend,
        reader: ByteReader,
        writer: ByteWriter,
        idle_timeout_s: float,
        keepalive_interval_s: float,
    ) -> None:
        self.backend = backend
        self.reader = reader
        self.writer = writer
        self.idle_timeout_s = idle_timeout_s
        self.keepalive_interval_s = keepalive_interval_s
        self.version: tuple[int, int] = MIN_VERSION
        self.session = _Session()
        self.id = f"bolt-{next(self._ids)}"
        peer = writer.get_extra_info("peername") or ("?", 0)
        local = writer.get_extra_info("sockname") or ("?", 0)
        self.info = ConnectionInfo(f"{peer[0]}:{peer[1]}", f"{local[0]}:{local[1]}")
        self.inbox = MessageReader(reader)
        self.outbox = bytearray()
        self._busy_since: float | None = None
        """When the awaited backend call began (None: not waiting for the backend)."""
        self._noop_at = 0.0
        self._waiting_since: float | None = None
        """When the connection began to wait for its client's next message."""
        self._watch_every_s = max(
            WATCHDOG_MIN_S, min(keepalive_interval_s, idle_timeout_s) * WATCHDOG_FRACTION
        )
        self._watchdog: asyncio.TimerHandle | None = None
        self._last_extra: dict[str, Any] | None = None
        self._last_options = TransactionOptions(DEFAULT_DATABASE)
        self._extra_bytes: bytes | None = None
        """The packed extra of the last RUN whose extra was unpacked, and that extra: a
        session's driver sends the same one with each statement, read once while it does."""
        self._extra_value: dict[str, Any] = {}
        self._repeated: dict[bytes, tuple[int, list[Any]]] = {}
        """Short PULL, DISCARD and BEGIN messages -> their tag and fields: a driver sends
        the same PULL after every RUN, the same BEGIN for each transaction of a session."""
        self._last_begin: dict[str, Any] | None = None
        self._last_begin_options = TransactionOptions(DEFAULT_DATABASE)
        self._packed: dict[tuple[Any, ...], bytes] = {}
        """SUCCESS messages already packed and framed, by what their metadata holds."""

    # -- output ---------------------------------------------------------------------------

    def _send(self, tag: int, *fields: Any) -> None:
        """Queue a message; it goes out at the next flush (before the connection waits for
        its client, or once FLUSH_BYTES are queued). Packed straight into the outgoing
        buffer after a 2-byte chunk header filled in afterwards: one chunk for any message
        that fits one (nearly all), re-framed into several only when it does not."""
        outbox = self.outbox
        start = len(outbox)
        outbox += b"\x00\x00"
        try:
            ps.Packer(True, outbox).pack_structure(tag, fields)
        except BaseException:
            del outbox[start:]  # nothing of a message that could not be packed goes out
            raise
        self._frame_from(start)

    def _send_record(self, packer: ps.Packer, row: Sequence[Any]) -> None:
        """Queue a RECORD of `row` through `packer` (one per PULL, packing into the
        outbox): the bytes of ``_send(RECORD, list(row))``, without a structure's tuple of
        fields or a Packer per record."""
        outbox = self.outbox
        start = len(outbox)
        outbox += _RECORD_HEAD
        try:
            packer.pack(row if type(row) is list or type(row) is tuple else list(row), 1)
        except BaseException:
            del outbox[start:]  # nothing of a message that could not be packed goes out
            raise
        self._frame_from(start)

    def _frame_from(self, start: int) -> None:
        """Frame the message packed into the outbox from `start` (after a 2-byte chunk
        header left for it)."""
        outbox = self.outbox
        size = len(outbox) - start - 2
        if size <= MAX_CHUNK_BYTES:
            outbox[start : start + 2] = _CHUNK_HEADER.pack(size)
            outbox += b"\x00\x00"
        else:
            message = bytes(outbox[start + 2 :])
            del outbox[start:]
            outbox += frame(message)

    async def _flush(self) -> None:
        if self.outbox:
            self.writer.write(bytes(self.outbox))
            self.outbox.clear()
        await self.writer.drain()

    def _success_packed(self, key: tuple[Any, ...]) -> bool:
        """Queue the SUCCESS packed before for ``key`` (what its metadata holds, all of it),
        if there is one."""
        packed = self._packed.get(key)
        if packed is None:
            return False
        self.outbox += packed
        return True

    def _success_keep(self, key: tuple[Any, ...], metadata: dict[str, Any]) -> None:
        """Queue a SUCCESS and keep it packed for ``key``."""
        start = len(self.outbox)
        self._send(SUCCESS, metadata)
        if len(self._packed) >= MAX_PACKED_ANSWERS:
            self._packed.clear()
        self._packed[key] = bytes(self.outbox[start:])

    def _success(self, metadata: dict[str, Any] | None = None) -> None:
        """Queued: the serve loop flushes after any message that filled the outbox, and
        before it waits for the client (no coroutine per answer)."""
        self._send(SUCCESS, metadata or {})

    def _failure(self, error: QuiverError) -> None:
        self._send(FAILURE, failure_metadata(error.code, error.message, self.version))

    async def _keepalive(self, work: Awaitable[T]) -> T:
        """Await `work`, NOOP chunks going out while it takes long (the client's read timeout
        must not fire on a slow query): the watchdog sends them, this only marks the
        connection busy — most work is quick, and a timer per call cost more than it."""
        self._busy_since = time.monotonic()
        try:
            return await work
        finally:
            self._busy_since = None

    def _watch(self) -> None:
        """The connection's one timer, every WATCHDOG_FRACTION of its shortest interval:
        a NOOP after each ``keepalive_interval_s`` of one awaited call (after whatever
        complete answers are queued), and the end of a connection whose client sent no
        message for ``idle_timeout_s``."""
        now = time.monotonic()
        busy_since = self._busy_since
        if busy_since is not None and now - max(busy_since, self._noop_at) >= (
            self.keepalive_interval_s
        ):
            self._noop_at = now
            self.outbox += b"\x00\x00"
            self.writer.write(bytes(self.outbox))
            self.outbox.clear()
        waiting_since = self._waiting_since
        if waiting_since is not None and now - waiting_since >= self.idle_timeout_s:
            log.debug("bolt %s: idle for %.1f s, closing", self.id, now - waiting_since)
            self.writer.transport.abort()  # the reader sees the end of its stream
            return
        self._watchdog = asyncio.get_running_loop().call_later(self._watch_every_s, self._watch)

    # -- the loop -------------------------------------------------------------------------

    async def serve(self) -> None:
        try:
            self.version = await asyncio.wait_for(
                negotiate(self.reader, self.writer), HANDSHAKE_TIMEOUT_S
            )
            self._watchdog = asyncio.get_running_loop().call_later(self._watch_every_s, self._watch)
            inbox, outbox = self.inbox, self.outbox
            while self.session.state is not State.DEFUNCT:
                data = inbox.ready()
                if data is None:
                    await self._flush()  # the client waits for these answers
                    self._waiting_since = time.monotonic()
                    try:
                        data = await inbox.message(None)  # bounded by the watchdog
                    except MessageTooLarge as error:
                        self._fail(QuiverError(INVALID_REQUEST, str(error)))
                        continue
                    finally:
                        self._waiting_since = None
                    if data is None:
                        break
                await self._handle(data)
                if len(outbox) >= FLUSH_BYTES:
                    await self._flush()
            await self._flush()
        except (
            ProtocolViolation,
            asyncio.IncompleteReadError,
            TimeoutError,
            ConnectionError,
            ssl.SSLError,
        ) as error:
            log.debug("bolt %s ended: %s", self.id, error)
        finally:
            if self._watchdog is not None:
                self._watchdog.cancel()
            await self._end_transaction()
            self.writer.close()
            with contextlib.suppress(ConnectionError, ssl.SSLError, TimeoutError):
                await asyncio.wait_for(self.writer.wait_closed(), SHUTDOWN_GRACE_S)

    async def _handle(self, data: bytes) -> None:
        repeated = (
            self._repeated.get(data)
            if len(data) <= MAX_REPEATED_BYTES and data[1:2] and data[1] in _REPEATING
            else None
        )
        if repeated is not None:
            tag, fields = repeated
        else:
            try:
                if len(data) <= INLINE_UNPACK_BYTES:
                    tag, fields = self._unpack(data)
                else:
                    tag, fields = await asyncio.to_thread(self._unpack, data)
            except ps.PackStreamError as error:
                self._fail(QuiverError(INVALID_FORMAT, str(error)))
                return
        session = self.session
        if tag == GOODBYE:
            session.state = State.DEFUNCT
            return
        if tag == RESET:
            await self._end_transaction()
            session.state = State.READY if session.principal is not None else session.state
            if session.state is State.FAILED:
                session.state = State.AUTHENTICATION
            self._success()
            return
        if session.state is State.FAILED:
            self._send(IGNORED)
            return
        handler = _HANDLERS.get(tag)
        if handler is None:
            raise ProtocolViolation(f"unknown message 0x{tag:02X}")
        try:
            await handler(self, fields)
        except (QuiverError, CypherError, ps.PackStreamError) as error:
            self._fail(_as_quiver_error(error))
        except ProtocolViolation:
            raise
        except Exception as error:
            self._fail(_as_quiver_error(error))

    def _unpack(self, data: bytes) -> tuple[int, list[Any]]:
        """A message's tag and fields. No handler changes its fields, so those of a repeated
        PULL/DISCARD and a RUN's repeated extra are the very ones read before."""
        unpacker = ps.Unpacker(data, utc_datetime=True)
        size, tag = unpacker.unpack_structure_header()
        if tag == RUN and size == 3:
            query = unpacker.unpack()
            parameters = unpacker.unpack()
            rest = data[unpacker.position :]
            if rest == self._extra_bytes:
                return tag, [query, parameters, self._extra_value]
            extra = unpacker.unpack()
            if not unpacker.at_end():
                raise ps.PackStreamError("trailing bytes after a message")
            self._extra_bytes, self._extra_value = rest, extra
            return tag, [query, parameters, extra]
        fields = [unpacker.unpack() for _ in range(size)]
        if not unpacker.at_end():
            raise ps.PackStreamError("trailing bytes after a message")
        if tag in _REPEATING and len(data) <= MAX_REPEATED_BYTES:
            if len(self._repeated) >= MAX_REPEATED_MESSAGES:
                self._repeated.clear()
            self._repeated[data] = (tag, fields)
        return tag, fields

    def _fail(self, error: QuiverError) -> None:
        session = self.session
        self._failure(error)
        if session.state in (State.CONNECTED, State.AUTHENTICATION):
            # A failed HELLO or LOGON ends the connection, as Neo4j does.
            session.state = State.DEFUNCT
            return
        session.streams.clear()
        session.state = State.FAILED

    async def _end_transaction(self) -> None:
        session = self.session
        session.streams.clear()
        transaction, session.transaction = session.transaction, None
        if transaction is not None:
            try:
                await self.backend.rollback(transaction)
            except Exception as error:  # rollback of a broken transaction: log, go on
                log.warning("bolt %s: rollback failed: %s", self.id, error)

    def _expect(self, fields: list[Any], count: int, *states: State) -> None:
        if len(fields) != count:
            raise ProtocolViolation(f"expected {count} fields, got {len(fields)}")
        if self.session.state not in states:
            raise QuiverError(
                INVALID_REQUEST, f"message not allowed in state {self.session.state.value}"
            )

    # -- messages -------------------------------------------------------------------------

    async def hello(self, fields: list[Any]) -> None:
        if self.session.state is not State.CONNECTED or len(fields) != 1:
            raise ProtocolViolation("HELLO must be the first message, with one map")
        _map(fields[0], "HELLO's extra")
        self.session.state = State.AUTHENTICATION
        self._success(
            {
                "server": SERVER_AGENT,
                "connection_id": self.id,
                "hints": {"connection.recv_timeout_seconds": int(self.idle_timeout_s)},
            }
        )

    async def logon(self, fields: list[Any]) -> None:
        self._expect(fields, 1, State.AUTHENTICATION)
        auth = _map(fields[0], "LOGON's auth")
        scheme = auth.get("scheme", "none")
        principal = auth.get("principal", "")
        credentials = auth.get("credentials", "")
        if not all(isinstance(v, str) for v in (scheme, principal, credentials)):
            raise QuiverError(UNAUTHORIZED, "malformed authentication token")
        self.session.principal = await self.backend.authenticate(
            scheme, principal, credentials, self.info
        )
        self.session.state = State.READY
        self._success()

    async def logoff(self, fields: list[Any]) -> None:
        self._expect(fields, 0, State.READY)
        self.session.principal = None
        self.session.state = State.AUTHENTICATION
        self._success()

    async def telemetry(self, fields: list[Any]) -> None:
        self._expect(fields, 1, State.READY)
        self._success()

    async def route(self, fields: list[Any]) -> None:
        self._expect(fields, 3, State.READY)
        _map(fields[0], "routing context")
        bookmarks = fields[1] or []
        db_context = _map(fields[2], "ROUTE's db context")
        if not isinstance(bookmarks, list) or not all(isinstance(b, str) for b in bookmarks):
            raise QuiverError(INVALID_REQUEST, "bookmarks must be a list of strings")
        database = _resolve_database(db_context.get("db"))
        table = await self.backend.route(
            self.session.principal, database, tuple(bookmarks), self.info
        )
        servers = [
            {"addresses": list(table.writers), "role": "WRITE"},
            {"addresses": list(table.readers), "role": "READ"},
            {"addresses": list(table.routers), "role": "ROUTE"},
        ]
        self._success({"rt": {"ttl": table.ttl_s, "db": database, "servers": servers}})

    def _run_fields(self, fields: list[Any]) -> tuple[str, dict[str, Any], dict[str, Any]]:
        if len(fields) != 3 or not isinstance(fields[0], str):
            raise ProtocolViolation("RUN carries a query, parameters and extra")
        parameters = _map(fields[1], "parameters")
        if _has_entity(parameters):
            raise QuiverError(
                INVALID_PARAMETER, "nodes, relationships and paths cannot be parameters"
            )
        return fields[0], parameters, _map(fields[2], "RUN's extra")

    async def run(self, fields: list[Any]) -> None:
        session = self.session
        query, parameters, extra = self._run_fields(fields)
        started = time.monotonic()
        if session.state is State.READY:
            # A session's driver sends the same extra with each statement (its bookmarks
            # change only after a write): checked and built once while it does not change.
            if extra is self._last_extra or extra == self._last_extra:
                options = self._last_options
            else:
                options = _options(extra)
                self._last_extra, self._last_options = extra, options
            principal = self._principal()
            self._busy_since = started  # as _keepalive, without a coroutine per statement
            try:
                result = await self.backend.run(principal, query, parameters, options, self.info)
            finally:
                self._busy_since = None
            session.streams = {-1: _Stream(result, options.database, True, started)}
            session.last_qid = -1
            session.state = State.STREAMING
            t_first = _ms_since(started)
            key = ("run", t_first, *result.columns)
            if not self._success_packed(key):
                self._success_keep(key, {"fields": result.columns, "t_first": t_first})
            return
        if session.state in (State.TX_READY, State.TX_STREAMING):
            if len(session.streams) >= MAX_OPEN_STREAMS:
                raise QuiverError(INVALID_REQUEST, "too many open results in this transaction")
            self._busy_since = started
            try:
                result = await self.backend.run_in_transaction(
                    session.transaction, query, parameters
                )
            finally:
                self._busy_since = None
            qid = session.next_qid
            session.next_qid += 1
            session.streams[qid] = _Stream(result, session.database, False, started)
            session.last_qid = qid
            session.state = State.TX_STREAMING
            t_first = _ms_since(started)
            key = ("tx run", t_first, qid, *result.columns)
            if not self._success_packed(key):
                self._success_keep(key, {"fields": result.columns, "t_first": t_first, "qid": qid})
            return
        raise QuiverError(INVALID_REQUEST, f"RUN not allowed in state {session.state.value}")

    def _principal(self) -> Principal:
        principal = self.session.principal
        if principal is None:
            raise QuiverError(UNAUTHORIZED, "not logged on")
        return principal

    def _stream_for(self, extra: dict[str, Any]) -> tuple[int, _Stream]:
        session = self.session
        qid = extra.get("qid", -1)
        if not isinstance(qid, int):
            raise QuiverError(INVALID_REQUEST, "qid must be an integer")
        if qid == -1:
            qid = session.last_qid
        stream = session.streams.get(qid)
        if stream is None:
            raise QuiverError(INVALID_REQUEST, f"no open result with qid {qid}")
        return qid, stream

    def pull(self, fields: list[Any]) -> Awaitable[None]:
        return self._consume(fields, discard=False)

    def discard(self, fields: list[Any]) -> Awaitable[None]:
        return self._consume(fields, discard=True)

    async def _consume(self, fields: list[Any], *, discard: bool) -> None:
        self._expect(fields, 1, State.STREAMING, State.TX_STREAMING)
        extra = _map(fields[0], "PULL's extra")
        n = extra.get("n", -1)
        if not isinstance(n, int) or n == 0 or n < -1:
            raise QuiverError(INVALID_REQUEST, "n must be a positive integer or -1")
        qid, stream = self._stream_for(extra)
        rows = stream.result.rows
        if rows is not None:  # materialized: no event-loop trip per record
            end = len(rows) if n == -1 else min(len(rows), stream.position + n)
            if not discard:
                outbox = self.outbox  # the same buffer after a flush (cleared, not replaced)
                packer = ps.Packer(True, outbox)
                for row in rows[stream.position : end]:
                    self._send_record(packer, row)
                    if len(outbox) >= FLUSH_BYTES:
                        await self._flush()
            stream.position = end
            if end < len(rows):
                self._success({"has_more": True})
            else:
                self._finish_stream(qid, stream)
            return
        sent = 0
        records = stream.result.records
        has_more = True
        while n == -1 or sent < n:
            try:
                row = await self._keepalive(anext(records))
            except StopAsyncIteration:
                has_more = False
                break
            if not discard:
                self._send(RECORD, list(row))
                if (sent + 1) % RECORDS_PER_DRAIN == 0 or len(self.outbox) >= FLUSH_BYTES:
                    await self._flush()
            sent += 1
        if has_more and discard and n == -1:
            has_more = False
        if has_more:
            # One row ahead tells "exactly n left" from "more than n".
            try:
                row = await self._keepalive(anext(records))
            except StopAsyncIteration:
                has_more = False
            else:
                stream.result.records = _prepend(row, records)
        if has_more:
            self._success({"has_more": True})
            return
        with contextlib.suppress(Exception):
            await records.aclose()  # type: ignore[attr-defined]
        self._finish_stream(qid, stream)

    def _finish_stream(self, qid: int, stream: _Stream) -> None:
        """The summary of a stream whose records are all sent or discarded."""
        session = self.session
        summary = stream.result.summary()
        del session.streams[qid]
        if stream.auto_commit:
            session.state = State.READY
        elif not session.streams:
            session.state = State.TX_READY
        t_last = _ms_since(stream.started)
        counters = summary.counters
        stats = _stats(counters) if counters else {}
        bookmark = summary.bookmark if stream.auto_commit else None
        if not stats and not bookmark:  # a read's summary: the same for most statements
            key = ("end", summary.query_type, t_last, stream.database)
            if not self._success_packed(key):
                self._success_keep(
                    key, {"type": summary.query_type, "t_last": t_last, "db": stream.database}
                )
            return
        metadata: dict[str, Any] = {
            "type": summary.query_type,
            "t_last": t_last,
            "db": stream.database,
        }
        if stats:
            metadata["stats"] = stats
        if bookmark:
            metadata["bookmark"] = bookmark
        self._success(metadata)

    async def begin(self, fields: list[Any]) -> None:
        self._expect(fields, 1, State.READY)
        session = self.session
        extra = fields[0]
        if extra is not None and extra is self._last_begin:  # a repeated BEGIN
            options = self._last_begin_options
        else:
            options = _options(_map(extra, "BEGIN's extra"))
            self._last_begin, self._last_begin_options = extra, options
        session.transaction = await self._keepalive(
            self.backend.begin(self._principal(), options, self.info)
        )
        session.database = options.database
        session.next_qid = 0
        session.last_qid = -1
        session.streams = {}
        session.state = State.TX_READY
        self._success()

    async def commit(self, fields: list[Any]) -> None:
        self._expect(fields, 0, State.TX_READY, State.TX_STREAMING)
        session = self.session
        transaction, session.transaction = session.transaction, None
        session.streams.clear()
        session.state = State.READY
        bookmark = await self._keepalive(self.backend.commit(transaction))
        self._success({"bookmark": bookmark} if bookmark else {})

    async def rollback(self, fields: list[Any]) -> None:
        self._expect(fields, 0, State.TX_READY, State.TX_STREAMING)
        await self._end_transaction()
        self.session.state = State.READY
        self._success()


async def _prepend(row: Sequence[Any], rest: AsyncIterator[Sequence[Any]]) -> AsyncIterator[Any]:
    yield row
    async for item in rest:
        yield item


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


_HANDLERS: Final = {
    HELLO: Connection.hello,
    LOGON: Connection.logon,
    LOGOFF: Connection.logoff,
    TELEMETRY: Connection.telemetry,
    ROUTE: Connection.route,
    RUN: Connection.run,
    PULL: Connection.pull,
    DISCARD: Connection.discard,
    BEGIN: Connection.begin,
    COMMIT: Connection.commit,
    ROLLBACK: Connection.rollback,
}


# -- the server ------------------------------------------------------------------------------


def server_ssl_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """TLS 1.3 with the node's certificate and key (PEM files)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(cert_file, key_file)
    return context


class BoltServer:
    """Listens on one address; ``start`` binds, ``close`` stops listening and joins every
    connection."""

    def __init__(
        self,
        backend: BoltBackend,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        insecure: bool = False,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        keepalive_interval_s: float = KEEPALIVE_INTERVAL_S,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        if ssl_context is None and not insecure:
            raise ValueError("Bolt without TLS needs insecure=True")
        self.backend = backend
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.idle_timeout_s = idle_timeout_s
        self.keepalive_interval_s = keepalive_interval_s
        self.max_connections = max_connections
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.get_running_loop().create_server(
            lambda: BoltStream(self._accept),
            self.host,
            self.port,
            ssl=self.ssl_context,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT_S if self.ssl_context else None,
        )
        sockets = self._server.sockets
        if self.port == 0 and sockets:
            self.port = sockets[0].getsockname()[1]
        if self.ssl_context is None:
            log.warning("Bolt on %s WITHOUT TLS (insecure mode, development only)", self.address)
        else:
            log.info("Bolt on %s (TLS)", self.address)

    def _accept(self, stream: BoltStream) -> None:
        """A new connection: served by a task of its own, which ``close`` joins."""
        if len(self._connections) >= self.max_connections:
            log.warning("bolt: refusing a connection, %d open", len(self._connections))
            stream.close()
            return
        connection = Connection(
            self.backend, stream, stream, self.idle_timeout_s, self.keepalive_interval_s
        )
        task = asyncio.get_running_loop().create_task(connection.serve())
        self._connections.add(task)
        task.add_done_callback(self._connections.discard)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections), timeout=SHUTDOWN_GRACE_S)
        if self._server is not None:
            await self._server.wait_closed()

    async def __aenter__(self) -> BoltServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
