"""The Bolt server at the byte level: handshakes, framing, and the message state machine."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cluster.bolt import packstream as ps
from cluster.bolt import server as bolt
from cluster.bolt.embedded import EmbeddedBackend

LEGACY = bytes.fromhex("00080805 00020404 00000003 00000000")
TIMEOUT_S = 5.0


@pytest.fixture
async def server() -> AsyncIterator[bolt.BoltServer]:
    backend = EmbeddedBackend({"neo4j": "secret"})
    async with bolt.BoltServer(backend, "127.0.0.1", 0, insecure=True) as running:
        yield running


class RawClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @staticmethod
    async def open(server: bolt.BoltServer) -> RawClient:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        return RawClient(reader, writer)

    async def handshake(self, proposals: bytes = LEGACY) -> bytes:
        self.writer.write(bolt.MAGIC + proposals)
        return await asyncio.wait_for(self.reader.readexactly(4), TIMEOUT_S)

    def send(self, tag: int, *fields: Any, chunk: int = bolt.MAX_CHUNK_BYTES) -> None:
        data = ps.pack(ps.Structure(tag, fields))
        for start in range(0, len(data), chunk):
            piece = data[start : start + chunk]
            self.writer.write(len(piece).to_bytes(2, "big") + piece)
        self.writer.write(b"\x00\x00")

    async def receive(self) -> tuple[int, list[Any]]:
        data = await asyncio.wait_for(bolt.read_message(self.reader, TIMEOUT_S), TIMEOUT_S)
        assert data is not None
        unpacker = ps.Unpacker(data)
        size, tag = unpacker.unpack_structure_header()
        return tag, [unpacker.unpack() for _ in range(size)]

    async def login(self) -> None:
        assert await self.handshake() == b"\x00\x00\x08\x05"
        self.send(bolt.HELLO, {"user_agent": "raw/1"})
        self.send(bolt.LOGON, {"scheme": "basic", "principal": "neo4j", "credentials": "secret"})
        assert (await self.receive())[0] == bolt.SUCCESS
        assert (await self.receive())[0] == bolt.SUCCESS

    async def closed(self) -> bool:
        return await asyncio.wait_for(self.reader.read(1), TIMEOUT_S) == b""

    def close(self) -> None:
        self.writer.close()


def test_range_handshake_picks_the_highest_common_version_in_client_order() -> None:
    assert bolt.choose_version([(5, 8, 8), (4, 4, 2)]) == (5, 8)
    assert bolt.choose_version([(5, 4, 0), (5, 8, 7)]) == (5, 4)
    assert bolt.choose_version([(6, 0, 0), (5, 2, 2)]) == (5, 2)
    assert bolt.choose_version([(5, 0, 0), (4, 4, 4)]) is None


async def test_legacy_handshake_answers_a_version_and_refuses_an_unknown_one(
    server: bolt.BoltServer,
) -> None:
    client = await RawClient.open(server)
    assert await client.handshake(bytes.fromhex("00000305" + "00" * 12)) == b"\x00\x00\x03\x05"
    client.close()
    client = await RawClient.open(server)
    assert await client.handshake(bytes.fromhex("00000004" + "00" * 12)) == b"\x00\x00\x00\x00"
    assert await client.closed()


async def test_manifest_handshake_offers_5_1_to_5_8_and_takes_the_clients_choice(
    server: bolt.BoltServer,
) -> None:
    client = await RawClient.open(server)
    answer = await client.handshake(bytes.fromhex("000001FF 00080805 00000000 00000000"))
    assert answer == b"\x00\x00\x01\xff"
    offers = await client.reader.readexactly(1 + 4 + 1)
    assert offers == bytes([1, 0, 7, 8, 5, 0])
    client.writer.write(b"\x00\x00\x07\x05\x00")
    client.send(bolt.HELLO, {"user_agent": "raw/1"})
    tag, fields = await client.receive()
    assert tag == bolt.SUCCESS and fields[0]["server"].startswith("Neo4j/")
    client.close()


async def test_wrong_preamble_closes_the_connection(server: bolt.BoltServer) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"GET / HTTP/1.1\r\n\r\n" + b"\x00" * 16)
    assert await asyncio.wait_for(reader.read(1), TIMEOUT_S) == b""


async def test_noops_and_messages_split_into_small_chunks_are_understood(
    server: bolt.BoltServer,
) -> None:
    client = await RawClient.open(server)
    await client.login()
    client.writer.write(b"\x00\x00\x00\x00")  # two NOOPs between messages
    client.send(bolt.RUN, "RETURN $x AS x", {"x": "y" * 300}, {}, chunk=7)
    client.send(bolt.PULL, {"n": -1})
    tag, fields = await client.receive()
    assert tag == bolt.SUCCESS and fields[0]["fields"] == ["x"]
    assert await client.receive() == (bolt.RECORD, [["y" * 300]])
    tag, fields = await client.receive()
    assert tag == bolt.SUCCESS and fields[0]["type"] == "r"
    client.close()


async def test_after_a_failure_messages_are_ignored_until_reset(server: bolt.BoltServer) -> None:
    client = await RawClient.open(server)
    await client.login()
    client.send(bolt.RUN, "RETURN nonsense(", {}, {})
    client.send(bolt.PULL, {"n": -1})
    client.send(bolt.RESET)
    client.send(bolt.RUN, "RETURN 1 AS one", {}, {})
    client.send(bolt.PULL, {"n": -1})
    tag, fields = await client.receive()
    assert tag == bolt.FAILURE
    assert fields[0]["neo4j_code"] == "Neo.ClientError.Statement.SyntaxError"
    assert (await client.receive())[0] == bolt.IGNORED
    assert (await client.receive())[0] == bolt.SUCCESS  # RESET
    assert (await client.receive())[0] == bolt.SUCCESS  # RUN
    assert await client.receive() == (bolt.RECORD, [[1]])
    client.close()


async def test_pull_in_batches_reports_has_more_until_the_last_record(
    server: bolt.BoltServer,
) -> None:
    client = await RawClient.open(server)
    await client.login()
    client.send(bolt.RUN, "UNWIND range(1, 5) AS i RETURN i", {}, {})
    client.send(bolt.PULL, {"n": 2})
    client.send(bolt.PULL, {"n": 3})
    assert (await client.receive())[0] == bolt.SUCCESS
    assert [await client.receive() for _ in range(2)] == [
        (bolt.RECORD, [[1]]),
        (bolt.RECORD, [[2]]),
    ]
    assert await client.receive() == (bolt.SUCCESS, [{"has_more": True}])
    assert [(await client.receive())[1] for _ in range(3)] == [[[3]], [[4]], [[5]]]
    tag, fields = await client.receive()
    assert tag == bolt.SUCCESS and "has_more" not in fields[0] and "bookmark" in fields[0]
    client.close()


async def test_two_results_in_one_transaction_are_pulled_by_qid(server: bolt.BoltServer) -> None:
    client = await RawClient.open(server)
    await client.login()
    client.send(bolt.BEGIN, {})
    client.send(bolt.RUN, "RETURN 1 AS a", {}, {})
    client.send(bolt.RUN, "RETURN 2 AS b", {}, {})
    client.send(bolt.PULL, {"n": -1, "qid": 0})
    client.send(bolt.DISCARD, {"n": -1})
    client.send(bolt.COMMIT)
    assert (await client.receive())[0] == bolt.SUCCESS
    assert (await client.receive())[1][0]["qid"] == 0
    assert (await client.receive())[1][0]["qid"] == 1
    assert await client.receive() == (bolt.RECORD, [[1]])
    assert (await client.receive())[0] == bolt.SUCCESS
    assert (await client.receive())[0] == bolt.SUCCESS  # DISCARD
    tag, fields = await client.receive()
    assert tag == bolt.SUCCESS and fields[0]["bookmark"].startswith("quiver:")
    client.close()


async def test_gql_error_fields_only_from_5_7(server: bolt.BoltServer) -> None:
    old = bolt.failure_metadata("Neo.ClientError.Statement.SyntaxError", "bad", (5, 6))
    assert old == {"code": "Neo.ClientError.Statement.SyntaxError", "message": "bad"}
    new = bolt.failure_metadata("Neo.ClientError.Statement.SyntaxError", "bad", (5, 7))
    assert new["neo4j_code"] == "Neo.ClientError.Statement.SyntaxError"
    assert new["gql_status"] == "42001" and new["message"] == "bad"
    assert new["diagnostic_record"]["_classification"] == "CLIENT_ERROR"
    client = await RawClient.open(server)
    assert await client.handshake(bytes.fromhex("00000405" + "00" * 12)) == b"\x00\x00\x04\x05"
    client.send(bolt.HELLO, {"user_agent": "raw/1"})
    client.send(bolt.LOGON, {"scheme": "basic", "principal": "neo4j", "credentials": "wrong"})
    assert (await client.receive())[0] == bolt.SUCCESS
    tag, fields = await client.receive()
    assert tag == bolt.FAILURE
    assert fields[0]["code"] == "Neo.ClientError.Security.Unauthorized"
    assert await client.closed()


async def test_a_message_over_the_size_limit_is_a_failure_and_the_connection_goes_on(
    server: bolt.BoltServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A FAILURE drivers do not retry; a dropped connection (as before) is ServiceUnavailable,
    # which they do: the same oversized parameter was sent again and again.
    monkeypatch.setattr(bolt, "MAX_MESSAGE_BYTES", 1000)
    client = await RawClient.open(server)
    await client.login()
    client.send(bolt.RUN, "RETURN $x", {"x": "z" * 5000}, {}, chunk=700)
    client.send(bolt.PULL, {"n": -1})
    client.send(bolt.RESET)
    client.send(bolt.RUN, "RETURN 1 AS one", {}, {})
    client.send(bolt.PULL, {"n": -1})
    tag, fields = await client.receive()
    assert tag == bolt.FAILURE
    assert fields[0]["neo4j_code"] == "Neo.ClientError.Request.Invalid"
    assert "1000 bytes" in fields[0]["message"]
    assert (await client.receive())[0] == bolt.IGNORED
    assert (await client.receive())[0] == bolt.SUCCESS  # RESET
    assert (await client.receive())[0] == bolt.SUCCESS  # RUN
    assert await client.receive() == (bolt.RECORD, [[1]])
    client.close()


async def test_a_message_over_the_dropping_limit_ends_the_connection(
    server: bolt.BoltServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bolt, "MAX_MESSAGE_BYTES", 1000)
    monkeypatch.setattr(bolt, "MAX_OVERSIZED_BYTES", 4000)
    client = await RawClient.open(server)
    await client.login()
    client.send(bolt.RUN, "RETURN $x", {"x": "z" * 50_000}, {})
    assert await client.closed()


async def test_idle_connection_is_closed_after_the_idle_timeout() -> None:
    backend = EmbeddedBackend({"neo4j": "secret"})
    async with bolt.BoltServer(
        backend, "127.0.0.1", 0, insecure=True, idle_timeout_s=0.2
    ) as running:
        client = await RawClient.open(running)
        await client.login()
        assert await client.closed()


def test_plaintext_needs_an_explicit_insecure_flag() -> None:
    with pytest.raises(ValueError, match="insecure"):
        bolt.BoltServer(EmbeddedBackend({}), "127.0.0.1", 0)


async def test_slow_query_sends_noop_keepalives_before_its_answer() -> None:
    class SlowBackend(EmbeddedBackend):
        async def run(self, *args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0.3)
            return await super().run(*args, **kwargs)

    backend = SlowBackend({"neo4j": "secret"})
    async with bolt.BoltServer(
        backend, "127.0.0.1", 0, insecure=True, keepalive_interval_s=0.05
    ) as running:
        client = await RawClient.open(running)
        await client.login()
        client.send(bolt.RUN, "RETURN 1 AS one", {}, {})
        noops = 0
        while (header := await client.reader.readexactly(2)) == b"\x00\x00":
            noops += 1
        assert noops >= 2
        body = await client.reader.readexactly(int.from_bytes(header, "big"))
        assert body[1] == bolt.SUCCESS
        client.close()


async def test_logoff_then_logon_again_and_telemetry_and_goodbye(
    server: bolt.BoltServer,
) -> None:
    client = await RawClient.open(server)
    await client.login()
    client.send(bolt.TELEMETRY, 2)
    assert (await client.receive())[0] == bolt.SUCCESS
    client.send(bolt.LOGOFF)
    assert (await client.receive())[0] == bolt.SUCCESS
    client.send(bolt.RUN, "RETURN 1", {}, {})
    tag, fields = await client.receive()
    assert tag == bolt.FAILURE  # logged off: nothing runs, and the connection ends
    assert fields[0]["neo4j_code"] == "Neo.ClientError.Request.Invalid"
    assert await client.closed()
    client = await RawClient.open(server)
    await client.login()
    client.send(bolt.LOGOFF)
    client.send(bolt.LOGON, {"scheme": "basic", "principal": "neo4j", "credentials": "secret"})
    client.send(bolt.RUN, "RETURN 7 AS seven", {}, {})
    client.send(bolt.PULL, {"n": -1})
    assert [(await client.receive())[0] for _ in range(3)] == [bolt.SUCCESS] * 3
    assert await client.receive() == (bolt.RECORD, [[7]])
    assert (await client.receive())[0] == bolt.SUCCESS
    client.send(bolt.GOODBYE)
    assert await client.closed()


async def test_route_answers_writer_reader_and_router_roles(server: bolt.BoltServer) -> None:
    client = await RawClient.open(server)
    await client.login()
    client.send(bolt.ROUTE, {"address": server.address}, [], {"db": None})
    tag, fields = await client.receive()
    assert tag == bolt.SUCCESS
    table = fields[0]["rt"]
    assert table["db"] == "neo4j" and table["ttl"] > 0
    roles = {entry["role"]: entry["addresses"] for entry in table["servers"]}
    assert roles == {"WRITE": [server.address], "READ": [server.address], "ROUTE": [server.address]}
    client.send(bolt.ROUTE, {}, [], {"db": "elsewhere"})
    tag, fields = await client.receive()
    assert tag == bolt.FAILURE
    assert fields[0]["neo4j_code"] == "Neo.ClientError.Database.DatabaseNotFound"
    client.close()
