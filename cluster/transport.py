"""The Raft peer transport: core messages over long-lived gRPC streams with mutual TLS.

Owns the conversion between ``raft.types`` and ``proto.raft_pb2`` (the core never imports
``proto``), one outbound stream per peer that batches every queued message into one stream
write, and the receiving side, which admits a batch only from a peer whose certificate
(checked by TLS against the cluster CA) names a current member, the same member that the
messages claim as their sender, of the same cluster.

Snapshots go by ``InstallSnapshot``, one stream per snapshot: ``SnapshotSender`` (one per
peer, one snapshot at a time) reads the leader's snapshot file chunk by chunk off the event
loop and streams it; the receiving side checks every chunk's sender, target, metadata and
offset, hands the chunks to the node (which keeps them in a file and verifies the SHA-256 of
the whole stream) and acks only after that. How it ended is reported to the core
(``report_snapshot``) either way.

The core hears a peer is unreachable (``on_unreachable``; for a follower whose leader it
is, the failover hint of ``_leader_unreachable`` in ``raft/core.py``) when a new connection
to it fails, is refused or does not come up within ``UNREACHABLE_PROBE_S``, or when its queue
is full; never merely because a stream ended. A stream ends on a live peer too (a GOAWAY for
a connection's age or a ping policy, a listener restarted, a proxy), and usually towards
every follower at once: both followers taking it for the leader's death would elect a new
leader with no fault at all. So a stream that ends is followed at once by a new connection,
and a dead process, whose port refuses it, is still reported within milliseconds.

Bounds: each peer's outbound queue holds ``PEER_QUEUE_MESSAGES``; a full queue drops the
message and the core hears the peer is unreachable (Raft retransmits; a leader's progress
towards that peer goes back to probing). This stays a hint for a follower too: it sends its
leader only answers (at most one per append of the leader's in-flight window, one per
heartbeat, one read round at a time), so its queue fills only when a live leader has read
nothing from it for minutes; a leader that reads from neither follower is deposed by
check-quorum long before, and one follower's hint alone changes nothing (the other refuses
its pre-vote). Reconnects after a stream that served at least ``STREAM_SERVED_S`` are
immediate; repeated failures back off from ``RECONNECT_MIN_MS`` to ``RECONNECT_MAX_MS``.
One snapshot in flight per peer, each stream bounded by ``SNAPSHOT_TIMEOUT_S``; a snapshot
asked for while one is in flight fails at once (the core asks again later).

Must never: send snapshots inline (they go by InstallSnapshot), or block the event loop.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Executor
from typing import Final

import grpc

from cluster.pki import node_id_from_name
from proto import raft_pb2 as pb
from proto import raft_pb2_grpc
from raft.types import (
    ConfState,
    Entry,
    EntryType,
    Message,
    MessageType,
    Snapshot,
    SnapshotMetadata,
)

PEER_QUEUE_MESSAGES: Final = 4096
MAX_BATCH_MESSAGES: Final = 256
MAX_BATCH_BYTES: Final = 4 << 20
RECONNECT_MIN_MS: Final = 50
RECONNECT_MAX_MS: Final = 1000
UNREACHABLE_PROBE_S: Final = 0.2
"""How long a new connection to a peer whose stream ended may take before the peer counts
as unreachable. A dead process (its port closed) or a refused certificate answers within a
millisecond or two, so this bounds only a peer that answers nothing: 0.2 s is 40% of the
default election timeout (10 ticks of 50 ms), so the failover hint still saves most of one,
and far longer than a TCP and TLS handshake with a loaded node takes (its certificate
callback waits for the Python GIL)."""
STREAM_SERVED_S: Final = RECONNECT_MAX_MS / 1000
"""A stream open at least this long is followed by an immediate reconnect at the backoff's
start; a shorter one by the next step of the backoff."""
MAX_MESSAGE_BYTES: Final = 64 << 20
SOFTWARE_VERSION: Final = "0.1.0"
SNAPSHOT_TIMEOUT_S: Final = 300.0

log = logging.getLogger("quiver.transport")

_ENTRY_TO_PB = {
    EntryType.NORMAL: pb.ENTRY_TYPE_NORMAL,
    EntryType.CONF_CHANGE: pb.ENTRY_TYPE_CONF_CHANGE,
}
_ENTRY_FROM_PB = {v: k for k, v in _ENTRY_TO_PB.items()}

CHANNEL_OPTIONS: Final = (
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.initial_reconnect_backoff_ms", RECONNECT_MIN_MS),
    ("grpc.max_reconnect_backoff_ms", RECONNECT_MAX_MS),
)
SERVER_OPTIONS: Final = (
    *CHANNEL_OPTIONS,
    # Accept the keepalive pings CHANNEL_OPTIONS has every channel send. gRPC's default
    # (a ping at most every 5 minutes while the server sends no data, which a client
    # stream's receiver never does) answered them with GOAWAY "too_many_pings" after a few
    # minutes: both followers' streams to the leader broke at once, each took it for the
    # leader's death (Node._report_unreachable) and they elected a new leader under load.
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
)


def _conf_to_pb(conf: ConfState) -> pb.ConfState:
    return pb.ConfState(
        voters=conf.voters,
        learners=conf.learners,
        voters_outgoing=conf.voters_outgoing,
        learners_next=conf.learners_next,
        auto_leave=conf.auto_leave,
    )


def _conf_from_pb(conf: pb.ConfState) -> ConfState:
    return ConfState(
        voters=tuple(conf.voters),
        learners=tuple(conf.learners),
        voters_outgoing=tuple(conf.voters_outgoing),
        learners_next=tuple(conf.learners_next),
        auto_leave=conf.auto_leave,
    )


def message_to_pb(m: Message) -> pb.Message:
    out = pb.Message(
        type=int(m.type),
        to=m.to,
        sender=m.sender,
        term=m.term,
        log_term=m.log_term,
        index=m.index,
        entries=[
            pb.Entry(term=e.term, index=e.index, type=_ENTRY_TO_PB[e.type], data=e.data)
            for e in m.entries
        ],
        commit=m.commit,
        reject=m.reject,
        reject_hint=m.reject_hint,
        context=m.context,
        lease_tick=m.lease_tick,
    )
    if m.snapshot is not None:
        meta = m.snapshot.metadata
        out.snapshot.CopyFrom(
            pb.Snapshot(
                data=m.snapshot.data,
                metadata=pb.SnapshotMetadata(
                    conf_state=_conf_to_pb(meta.conf_state), index=meta.index, term=meta.term
                ),
            )
        )
    return out


def message_from_pb(m: pb.Message) -> Message:
    snapshot = None
    if m.HasField("snapshot"):
        meta = m.snapshot.metadata
        snapshot = Snapshot(
            data=m.snapshot.data,
            metadata=SnapshotMetadata(_conf_from_pb(meta.conf_state), meta.index, meta.term),
        )
    return Message(
        type=MessageType(m.type),
        to=m.to,
        sender=m.sender,
        term=m.term,
        log_term=m.log_term,
        index=m.index,
        entries=tuple(
            Entry(term=e.term, index=e.index, type=_ENTRY_FROM_PB[e.type], data=e.data)
            for e in m.entries
        ),
        commit=m.commit,
        snapshot=snapshot,
        reject=m.reject,
        reject_hint=m.reject_hint,
        context=m.context,
        lease_tick=m.lease_tick,
    )


def peer_identity(context: grpc.aio.ServicerContext) -> int | None:  # type: ignore[type-arg]
    """The node id the caller's verified certificate names (common name), or None."""
    auth = context.auth_context()
    if auth.get("transport_security_type") != [b"ssl"]:
        return None
    for name in auth.get("x509_common_name", []):
        node_id = node_id_from_name(name.decode(errors="replace"))
        if node_id is not None:
            return node_id
    return None


class PeerSender:
    """The outbound side towards one peer: a bounded queue drained into one stream, and
    the judge of whether the peer is reachable (see the module docstring)."""

    def __init__(
        self,
        self_id: int,
        peer_id: int,
        address: str,
        credentials: grpc.ChannelCredentials,
        cluster_id: int,
        on_unreachable: Callable[[int], None],
    ) -> None:
        self.self_id = self_id
        self.peer_id = peer_id
        self.address = address
        self._credentials = credentials
        self._cluster_id = cluster_id
        self._on_unreachable = on_unreachable
        # A deque and an event rather than an asyncio.Queue: gRPC may leave the request
        # iterator of a failed stream waiting, and a stale waiter on a queue would take (and
        # lose) the next message, such as the vote of a leadership transfer.
        self._pending: collections.deque[Message] = collections.deque()
        self._wakeup = asyncio.Event()
        self._stream = 0
        self.dropped = 0

    def use_credentials(self, credentials: grpc.ChannelCredentials) -> None:
        """Reconnect with these credentials (a rotated certificate): the current stream ends
        once its batch is written and the next one opens a new channel."""
        self._credentials = credentials
        self._stream += 1
        self._wakeup.set()

    def send(self, message: Message) -> None:
        if len(self._pending) >= PEER_QUEUE_MESSAGES:
            self.dropped += 1
            self._on_unreachable(self.peer_id)
            return
        self._pending.append(message)
        self._wakeup.set()

    async def _batches(self, stream: int) -> AsyncIterator[pb.MessageBatch]:
        while True:
            while not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                if stream != self._stream:
                    return  # a stream that ended: leave the messages to the current one
            if stream != self._stream:
                return
            messages = [message_to_pb(self._pending.popleft())]
            size = messages[0].ByteSize()
            while len(messages) < MAX_BATCH_MESSAGES and size < MAX_BATCH_BYTES and self._pending:
                converted = message_to_pb(self._pending.popleft())
                size += converted.ByteSize()
                messages.append(converted)
            yield pb.MessageBatch(
                messages=messages, cluster_id=self._cluster_id, sender_version=SOFTWARE_VERSION
            )

    async def _connects(self, channel: grpc.aio.Channel) -> str | None:
        """Connect `channel` afresh; None once it is ready (TCP and TLS handshakes done), or
        why the peer counts as unreachable: it refused, the handshake failed, or no answer
        came within ``UNREACHABLE_PROBE_S``."""
        try:
            async with asyncio.timeout(UNREACHABLE_PROBE_S):
                state = channel.get_state(try_to_connect=True)
                # Bounded by the timeout: each turn waits for the state to move on.
                while state is not grpc.ChannelConnectivity.READY:
                    if state in (
                        grpc.ChannelConnectivity.TRANSIENT_FAILURE,
                        grpc.ChannelConnectivity.SHUTDOWN,
                    ):
                        return "connection failed"
                    await channel.wait_for_state_change(state)
                    state = channel.get_state(try_to_connect=True)
        except TimeoutError:
            return f"no connection within {UNREACHABLE_PROBE_S} s"
        return None

    async def run(self) -> None:
        """Connect, stream, and when the stream ends connect again.

        The peer is reported unreachable only when a new connection fails, never because
        a stream ended: a live peer's server may end streams on its own (GOAWAY for a
        connection's age, a listener restart, a proxy), and both followers told at once
        that their leader is gone would elect a new one under no fault at all (see
        ``_leader_unreachable`` in ``raft/core.py``). A dead process refuses the new
        connection at once, so the report is as fast as the broken stream would have been.
        """
        loop = asyncio.get_running_loop()
        backoff_ms = RECONNECT_MIN_MS
        while True:
            at_once = False
            async with grpc.aio.secure_channel(
                self.address, self._credentials, options=CHANNEL_OPTIONS
            ) as channel:
                failure = await self._connects(channel)
                if failure is not None:
                    if backoff_ms in (RECONNECT_MIN_MS, RECONNECT_MAX_MS):
                        log.info("n%d unreachable: %s", self.peer_id, failure)
                    self._on_unreachable(self.peer_id)
                else:
                    stub = raft_pb2_grpc.RaftTransportStub(channel)
                    self._stream += 1
                    stream = self._stream
                    opened = loop.time()
                    try:
                        await stub.Send(self._batches(stream), wait_for_ready=False)
                    except grpc.aio.AioRpcError as error:
                        log.info(
                            "stream to n%d ended: %s %s",
                            self.peer_id,
                            error.code().name,
                            error.details(),
                        )
                    finally:
                        rotated = stream != self._stream  # use_credentials ended it
                        self._stream += 1  # its request iterator, if still waiting, returns
                        self._wakeup.set()
                    # Reconnect at once after a stream that served a while (or was ended
                    # for new credentials); one that ends as soon as it opens (a peer that
                    # refuses us) is retried with the backoff, not in a tight loop.
                    at_once = rotated or loop.time() - opened >= STREAM_SERVED_S
            if at_once:
                backoff_ms = RECONNECT_MIN_MS
                continue
            await asyncio.sleep(backoff_ms / 1000)
            backoff_ms = min(RECONNECT_MAX_MS, backoff_ms * 2)


class SnapshotSender:
    """Streams snapshots to one peer, one at a time, and reports how each ended."""

    def __init__(
        self,
        self_id: int,
        peer_id: int,
        address: str,
        credentials: grpc.ChannelCredentials,
        open_chunks: Callable[[Snapshot], Iterator[bytes]],
        files: Executor,
        on_status: Callable[[int, bool], None],
    ) -> None:
        self.self_id = self_id
        self.peer_id = peer_id
        self.address = address
        self._credentials = credentials
        self._open_chunks = open_chunks
        self._files = files
        self._on_status = on_status
        self._queue: asyncio.Queue[Message] = asyncio.Queue(maxsize=1)
        self.sent = 0

    def use_credentials(self, credentials: grpc.ChannelCredentials) -> None:
        """The next snapshot goes over a channel with these credentials."""
        self._credentials = credentials

    def send(self, message: Message) -> None:
        assert message.type is MessageType.SNAPSHOT and message.snapshot is not None
        try:
            self._queue.put_nowait(message)
        except asyncio.QueueFull:
            self._on_status(self.peer_id, True)

    async def _chunks(self, message: Message) -> AsyncIterator[pb.SnapshotChunk]:
        assert message.snapshot is not None
        loop = asyncio.get_running_loop()
        chunks = await loop.run_in_executor(self._files, self._open_chunks, message.snapshot)
        meta = message.snapshot.metadata
        metadata = pb.SnapshotMetadata(
            conf_state=_conf_to_pb(meta.conf_state), index=meta.index, term=meta.term
        )
        digest = hashlib.sha256()
        offset = 0
        data = await loop.run_in_executor(self._files, next, chunks, None)
        if data is None:
            # The bootstrap snapshot (an empty graph): one empty final chunk carries it.
            data = b""
        while data is not None:
            following = await loop.run_in_executor(self._files, next, chunks, None)
            digest.update(data)
            last = following is None
            yield pb.SnapshotChunk(
                to=self.peer_id,
                sender=self.self_id,
                term=message.term,
                metadata=metadata,
                offset=offset,
                data=data,
                last=last,
                checksum=digest.digest() if last else b"",
            )
            offset += len(data)
            data = following

    async def run(self) -> None:
        while True:
            message = await self._queue.get()
            assert message.snapshot is not None
            index = message.snapshot.metadata.index
            failed = True
            try:
                async with grpc.aio.secure_channel(
                    self.address, self._credentials, options=CHANNEL_OPTIONS
                ) as channel:
                    stub = raft_pb2_grpc.RaftTransportStub(channel)
                    ack = await stub.InstallSnapshot(
                        self._chunks(message), timeout=SNAPSHOT_TIMEOUT_S
                    )
                failed = False
                self.sent += 1
                log.info(
                    "snapshot at %d sent to n%d (%d bytes)", index, self.peer_id, ack.received_bytes
                )
            except grpc.aio.AioRpcError as error:
                log.warning(
                    "snapshot at %d to n%d failed: %s %s",
                    index,
                    self.peer_id,
                    error.code().name,
                    error.details(),
                )
            except OSError as error:
                log.warning("snapshot at %d to n%d not readable: %s", index, self.peer_id, error)
            finally:
                self._on_status(self.peer_id, failed)


class SnapshotRejectedError(Exception):
    """A snapshot stream the receiver refuses; the message goes back to the sender."""


SnapshotReceiver = Callable[[int, AsyncIterator[pb.SnapshotChunk]], Awaitable[int]]
"""The node's side of a snapshot stream from a peer: keep it, verify it, hand it to the
core; the bytes received, or SnapshotRejectedError."""


class RaftTransportService(raft_pb2_grpc.RaftTransportServicer):
    """The receiving side: authenticate the peer, then hand its messages to the node."""

    def __init__(
        self,
        self_id: int,
        cluster_id: int,
        is_member: Callable[[int], bool],
        deliver: Callable[[Message], None],
        receive_snapshot: SnapshotReceiver,
    ) -> None:
        self._self_id = self_id
        self._cluster_id = cluster_id
        self._is_member = is_member
        self._deliver = deliver
        self._receive_snapshot = receive_snapshot

    async def _authenticate(self, context: grpc.aio.ServicerContext) -> int:  # type: ignore[type-arg]
        peer = peer_identity(context)
        if peer is None or peer == self._self_id or not self._is_member(peer):
            log.warning(
                "refused a peer stream from %s (certificate names %s)", context.peer(), peer
            )
            await context.abort(
                grpc.StatusCode.PERMISSION_DENIED, "the certificate names no current member"
            )
            raise AssertionError("unreachable")
        return peer

    async def Send(
        self,
        request_iterator: AsyncIterator[pb.MessageBatch],
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> pb.SendAck:
        peer = await self._authenticate(context)
        async for batch in request_iterator:
            if batch.cluster_id != self._cluster_id:
                log.warning("refused a batch of cluster %d from n%s", batch.cluster_id, peer)
                await context.abort(grpc.StatusCode.PERMISSION_DENIED, "another cluster")
            for message in batch.messages:
                if message.sender != peer or message.to != self._self_id:
                    await context.abort(
                        grpc.StatusCode.PERMISSION_DENIED, "a message not from its sender"
                    )
                self._deliver(message_from_pb(message))
        return pb.SendAck()

    async def InstallSnapshot(
        self,
        request_iterator: AsyncIterator[pb.SnapshotChunk],
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> pb.SnapshotAck:
        peer = await self._authenticate(context)
        try:
            received = await self._receive_snapshot(peer, request_iterator)
        except SnapshotRejectedError as error:
            log.warning("refused a snapshot from n%d: %s", peer, error)
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(error))
            raise AssertionError("unreachable") from None
        return pb.SnapshotAck(received_bytes=received)


def snapshot_message(chunk: pb.SnapshotChunk, data: bytes) -> Message:
    """The core's snapshot message for a stream whose first chunk is `chunk`, with `data`
    (the receiver's descriptor of where it kept the stream)."""
    meta = chunk.metadata
    return Message(
        type=MessageType.SNAPSHOT,
        to=chunk.to,
        sender=chunk.sender,
        term=chunk.term,
        snapshot=Snapshot(
            data=data,
            metadata=SnapshotMetadata(_conf_from_pb(meta.conf_state), meta.index, meta.term),
        ),
    )
