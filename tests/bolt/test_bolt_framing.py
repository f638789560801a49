"""The connection's MessageReader: pipelined messages come out one by one and it knows when
the next is already buffered (so answers are flushed together only when the client waits);
NOOPs are skipped; a stream cut inside a message or a message over the limit is a protocol
violation, a clean end is None."""

from __future__ import annotations

import asyncio

import pytest

from cluster.bolt import server as bolt

TIMEOUT_S = 5.0


def _reader(data: bytes) -> bolt.MessageReader:
    stream = asyncio.StreamReader()
    stream.feed_data(data)
    stream.feed_eof()
    return bolt.MessageReader(stream)


async def test_pipelined_messages_come_out_in_order_and_the_next_is_known_to_be_there() -> None:
    big = bytes(range(256)) * 300  # spans two chunks and more than one read
    pipelined = bolt.frame(b"RUN") + b"\x00\x00" + bolt.frame(b"PULL")
    reader = _reader(b"\x00\x00" + pipelined + bolt.frame(big))
    assert await reader.message(TIMEOUT_S) == b"RUN"
    assert reader.has_message()
    assert await reader.message(TIMEOUT_S) == b"PULL"
    assert await reader.message(TIMEOUT_S) == big
    assert not reader.has_message()
    assert await reader.message(TIMEOUT_S) is None


async def test_a_stream_cut_inside_a_message_is_a_protocol_violation() -> None:
    reader = _reader(bolt.frame(b"PULL")[:-3])
    with pytest.raises(bolt.ProtocolViolation):
        await reader.message(TIMEOUT_S)


async def test_a_message_over_the_limit_is_refused_before_it_is_buffered() -> None:
    chunk = b"\xff\xff" + b"x" * 0xFFFF
    count = bolt.MAX_MESSAGE_BYTES // 0xFFFF + 1
    stream = asyncio.StreamReader()
    reader = bolt.MessageReader(stream)
    with pytest.raises(bolt.ProtocolViolation):
        for _ in range(count + 1):
            stream.feed_data(chunk)
            reader.buffer += await stream.read(len(chunk))
            reader.has_message()
    assert len(reader.buffer) <= bolt.MAX_MESSAGE_BYTES + 2 * 0xFFFF


async def test_a_materialized_result_also_streams_its_rows_as_records() -> None:
    from cluster.bolt.backend import QueryResult, Summary

    result = QueryResult.of(["n"], [[1], [2]], Summary())
    assert [row async for row in result.records] == [[1], [2]]
    again = QueryResult.of(["n"], iter([[3]]), Summary())
    await again.records.aclose()  # type: ignore[attr-defined]
    assert [row async for row in again.records] == []
    assert again.rows == [[3]]
