"""The Bolt listener's own stream (``BoltStream``, an asyncio buffered protocol in place of
asyncio's streams): statements over TLS on both event loops a node runs (uvloop's TLS
transport is not an ``asyncio.Transport``), reads stop while too much waits unread and
resume once it is read down, a lost connection ends reads and drains, and the server
forgets a connection its client cut."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
from pathlib import Path
from typing import Any

import neo4j
import pytest
import uvloop
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cluster.bolt import server as bolt
from cluster.bolt.embedded import EmbeddedBackend

USER, PASSWORD = "neo4j", "correct horse"
TIMEOUT_S = 10.0


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A self-signed certificate for 127.0.0.1 (its own CA)."""
    directory = tmp_path_factory.mktemp("stream-tls")
    now = dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, cert_path, key_path


async def _serve_and_query(tls_files: tuple[Path, Path, Path]) -> list[Any]:
    """Pipelined statements (RUN and PULL in one TLS record) and an answer of several TLS
    records, through the synchronous driver in a thread while the server runs on this loop."""
    ca, cert, key = tls_files

    def client(port: int) -> list[Any]:
        with (
            neo4j.GraphDatabase.driver(
                f"bolt://127.0.0.1:{port}",
                auth=(USER, PASSWORD),
                encrypted=True,
                trusted_certificates=neo4j.TrustCustomCAs(str(ca)),
                connection_timeout=TIMEOUT_S,
            ) as driver,
            driver.session() as session,
        ):
            answers = [session.run("RETURN $i AS i", i=i).single(strict=True)[0] for i in range(20)]
            big = session.run("RETURN $s AS s", s="x" * 300_000).single(strict=True)[0]
            return [*answers, len(big)]

    context = bolt.server_ssl_context(str(cert), str(key))
    backend = EmbeddedBackend({USER: PASSWORD})
    async with bolt.BoltServer(backend, "127.0.0.1", 0, ssl_context=context) as server:
        return await asyncio.wait_for(asyncio.to_thread(client, server.port), TIMEOUT_S)


@pytest.mark.parametrize("loop_name", ["uvloop", "asyncio"])
def test_statements_over_tls_are_answered_on_either_event_loop(
    tls_files: tuple[Path, Path, Path], loop_name: str
) -> None:
    factory = uvloop.new_event_loop if loop_name == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        answers = runner.run(_serve_and_query(tls_files))
    assert answers == [*range(20), 300_000]


class _Transport:
    """What a BoltStream asks of its transport, recorded."""

    def __init__(self) -> None:
        self.reading = True
        self.written: list[bytes] = []
        self.closed = False

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default


def _stream() -> tuple[bolt.BoltStream, _Transport, list[bolt.BoltStream]]:
    connected: list[bolt.BoltStream] = []
    stream = bolt.BoltStream(connected.append)
    transport = _Transport()
    stream.connection_made(transport)  # type: ignore[arg-type]
    return stream, transport, connected


def _receive(stream: bolt.BoltStream, data: bytes) -> None:
    buffer = stream.get_buffer(len(data))
    buffer[: len(data)] = data
    stream.buffer_updated(len(data))


async def test_reading_stops_while_too_much_waits_unread_and_resumes_once_read_down() -> None:
    stream, transport, connected = _stream()
    assert connected == [stream]
    block = b"y" * bolt.READ_BYTES
    sent = 0
    while transport.reading:
        _receive(stream, block)
        sent += len(block)
        assert sent <= bolt.READ_PAUSE_BYTES  # bounded: paused by then at the latest
    assert sent == bolt.READ_PAUSE_BYTES
    got = b""
    while not transport.reading:
        got += await asyncio.wait_for(stream.read(1000), TIMEOUT_S)
    rest = sent - len(got)
    assert bolt.READ_BYTES - 1000 <= rest < bolt.READ_BYTES  # resumed once under, not before
    assert await asyncio.wait_for(stream.readexactly(rest), TIMEOUT_S) == b"y" * rest


async def test_a_reader_waits_for_data_and_sees_the_end_of_the_stream() -> None:
    stream, _, _ = _stream()
    waiting = asyncio.ensure_future(stream.readexactly(6))
    await asyncio.sleep(0)
    _receive(stream, b"abc")
    await asyncio.sleep(0)
    assert not waiting.done()  # half of what it asked for
    _receive(stream, b"def")
    assert await asyncio.wait_for(waiting, TIMEOUT_S) == b"abcdef"
    _receive(stream, b"gh")
    stream.eof_received()
    with pytest.raises(asyncio.IncompleteReadError) as cut:
        await stream.readexactly(3)
    assert cut.value.partial == b"gh"
    assert await stream.read(10) == b""


async def test_a_lost_connection_ends_a_waiting_read_and_drains() -> None:
    stream, transport, _ = _stream()
    stream.pause_writing()
    draining = asyncio.ensure_future(stream.drain())
    reading = asyncio.ensure_future(stream.read(10))
    await asyncio.sleep(0)
    assert not draining.done() and not reading.done()
    stream.connection_lost(ConnectionResetError("cut"))
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(draining, TIMEOUT_S)
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reading, TIMEOUT_S)
    await asyncio.wait_for(stream.wait_closed(), TIMEOUT_S)
    stream.write(b"ignored")
    assert transport.written == [b"ignored"]  # the transport drops it; nothing raises here


async def test_drain_waits_while_writing_is_paused() -> None:
    stream, _, _ = _stream()
    await asyncio.wait_for(stream.drain(), TIMEOUT_S)  # not paused: at once
    stream.pause_writing()
    draining = asyncio.ensure_future(stream.drain())
    await asyncio.sleep(0)
    assert not draining.done()
    stream.resume_writing()
    await asyncio.wait_for(draining, TIMEOUT_S)


async def test_the_server_forgets_a_connection_its_client_cut() -> None:
    async with bolt.BoltServer(
        EmbeddedBackend({USER: PASSWORD}), "127.0.0.1", 0, insecure=True
    ) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(bolt.MAGIC + bytes((0, 8, 8, 5)) + bytes(12))
        assert await asyncio.wait_for(reader.readexactly(4), TIMEOUT_S) == bytes((0, 0, 8, 5))
        assert len(server._connections) == 1
        writer.close()
        await writer.wait_closed()
        async with asyncio.timeout(TIMEOUT_S):
            while server._connections:
                await asyncio.sleep(0.01)
