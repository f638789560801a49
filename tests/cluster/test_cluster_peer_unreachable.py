"""A peer stream that ends is not taken for a dead peer: `PeerSender` reports a peer
unreachable (the failover hint when the peer is the leader) only when a new connection to it
fails, and carries on delivering over a new stream otherwise. Real gRPC over mutual TLS on
127.0.0.1, one sender (n1) towards one receiver (n2)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import grpc
import pytest
from cryptography.hazmat.primitives import serialization

from cluster import pki
from cluster.transport import (
    RECONNECT_MIN_MS,
    SERVER_OPTIONS,
    STREAM_SERVED_S,
    UNREACHABLE_PROBE_S,
    PeerSender,
    RaftTransportService,
)
from proto import raft_pb2 as pb
from proto import raft_pb2_grpc
from raft.types import Message, MessageType

CLUSTER_ID = 7
DEADLINE_S = 15.0
GOAWAYS = 3
"""Streams the receiver ends (each with a GOAWAY) before the test looks at the reports."""
REPORT_DEADLINE_S = UNREACHABLE_PROBE_S + RECONNECT_MIN_MS / 1000 + 0.5
"""A broken stream to a peer that is gone is reported by the first reconnect's probe (plus
time for the event loops of a loaded machine), not after rounds of the backoff."""


@dataclass
class Pki:
    ca: bytes
    sender: tuple[bytes, bytes]  # key, certificate
    receiver: tuple[bytes, bytes]


@pytest.fixture(scope="module")
def certificates() -> Pki:
    authority = pki.make_ca()
    return Pki(
        ca=authority.cert.public_bytes(serialization.Encoding.PEM),
        sender=pki.issue_node(authority, 1).pem(),
        receiver=pki.issue_node(authority, 2).pem(),
    )


@dataclass
class Receiver:
    """n2's peer server, counting the streams it served and keeping what they delivered."""

    server: grpc.aio.Server
    address: str
    delivered: list[Message] = field(default_factory=list)
    streams: int = 0


class _CountingService(RaftTransportService):
    def __init__(self, receiver: Receiver) -> None:
        super().__init__(2, CLUSTER_ID, lambda node: node == 1, receiver.delivered.append, None)  # type: ignore[arg-type]
        self._receiver = receiver

    async def Send(
        self,
        request_iterator: AsyncIterator[pb.MessageBatch],
        context: grpc.aio.ServicerContext,  # type: ignore[type-arg]
    ) -> pb.SendAck:
        self._receiver.streams += 1
        return await super().Send(request_iterator, context)


async def _serve(certificates: Pki, *options: tuple[str, int]) -> Receiver:
    server = grpc.aio.server(options=(*SERVER_OPTIONS, *options))
    credentials = grpc.ssl_server_credentials(
        [certificates.receiver], root_certificates=certificates.ca, require_client_auth=True
    )
    port = server.add_secure_port("127.0.0.1:0", credentials)
    receiver = Receiver(server, f"127.0.0.1:{port}")
    raft_pb2_grpc.add_RaftTransportServicer_to_server(_CountingService(receiver), server)
    await server.start()
    return receiver


@dataclass
class Sender:
    peer: PeerSender
    reports: list[float]  # loop time of each report that n2 is unreachable
    sent: int = 0

    def send(self) -> int:
        """A heartbeat whose term numbers it; the number."""
        self.sent += 1
        self.peer.send(Message(type=MessageType.HEARTBEAT, to=2, sender=1, term=self.sent))
        return self.sent


@pytest.fixture
async def sender_to(certificates: Pki) -> AsyncIterator[Callable[[str], Sender]]:
    """Starts a `PeerSender` from n1 to an address; all of them stop after the test."""
    tasks: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()

    def start(address: str) -> Sender:
        reports: list[float] = []
        key, cert = certificates.sender
        peer = PeerSender(
            1,
            2,
            address,
            grpc.ssl_channel_credentials(certificates.ca, key, cert),
            CLUSTER_ID,
            lambda _peer: reports.append(loop.time()),
        )
        tasks.append(asyncio.create_task(peer.run()))
        return Sender(peer, reports)

    yield start
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _wait_for(
    what: str, condition: Callable[[], object], deadline_s: float = DEADLINE_S
) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + deadline_s
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {deadline_s} s waiting for {what}")
        await asyncio.sleep(0.01)


def _arrived(receiver: Receiver, term: int) -> bool:
    return any(m.term == term for m in receiver.delivered)


async def test_a_live_peer_that_ends_its_streams_is_not_reported_unreachable(
    certificates: Pki, sender_to: Callable[[str], Sender]
) -> None:
    # gRPC ends every connection after its age with a GOAWAY, as a restart of a listener, a
    # proxy or a ping policy would; the peer itself stays up and accepts the next one.
    receiver = await _serve(
        certificates,
        ("grpc.max_connection_age_ms", 200),
        ("grpc.max_connection_age_grace_ms", 50),
    )
    try:
        sender = sender_to(receiver.address)

        def ended_enough() -> bool:
            sender.send()
            return receiver.streams > GOAWAYS

        await _wait_for(f"{GOAWAYS} streams ended by the peer", ended_enough)
        assert sender.reports == []
        last = sender.send()
        await _wait_for("a message sent after the GOAWAYs", lambda: _arrived(receiver, last))
        assert sender.reports == []
    finally:
        await receiver.server.stop(None)


async def test_a_peer_whose_server_is_gone_is_reported_unreachable_at_once(
    certificates: Pki, sender_to: Callable[[str], Sender]
) -> None:
    receiver = await _serve(certificates)
    sender = sender_to(receiver.address)
    first = sender.send()
    await _wait_for("the first message", lambda: _arrived(receiver, first))
    # A stream that has served a while is followed by a reconnect without backoff.
    await asyncio.sleep(STREAM_SERVED_S)
    assert sender.reports == []
    await receiver.server.stop(None)  # the port closes: connections are refused
    stopped = asyncio.get_running_loop().time()
    await _wait_for("the report", lambda: sender.reports, deadline_s=REPORT_DEADLINE_S)
    assert sender.reports[0] > stopped


async def test_a_peer_that_accepts_no_handshake_is_reported_after_the_probe(
    sender_to: Callable[[str], Sender],
) -> None:
    # A listening socket nobody accepts from: the kernel completes TCP connections into the
    # backlog and the TLS handshake waits forever, as with a peer that answers nothing.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        loop = asyncio.get_running_loop()
        started = loop.time()
        sender = sender_to(f"127.0.0.1:{port}")
        await _wait_for("the report", lambda: sender.reports, deadline_s=REPORT_DEADLINE_S)
        assert sender.reports[0] - started >= UNREACHABLE_PROBE_S
