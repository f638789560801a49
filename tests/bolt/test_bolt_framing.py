"""The connection's MessageReader: pipelined messages come out one by one and it knows when
the next is already buffered (so answers are flushed together only when the client waits);
NOOPs are skipped; a stream cut inside a message is a protocol violation, a message over
the limit is dropped and refused (MessageTooLarge), a clean end is None."""

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


async def test_a_message_over_the_limit_is_dropped_unbuffered_and_the_next_one_read() -> None:
    # Dropped as it is read (the reader's buffer never holds it), then refused with
    # MessageTooLarge, for which the connection sends a FAILURE and goes on: a dropped
    # connection is ServiceUnavailable, which drivers retry (a 20 MB parameter, sent again
    # and again). Before, the connection ended.
    chunk = b"\xff\xff" + b"x" * 0xFFFF
    count = bolt.MAX_MESSAGE_BYTES // 0xFFFF + 1
    stream = asyncio.StreamReader()
    reader = bolt.MessageReader(stream)
    most = 0

    async def feed() -> None:
        nonlocal most
        for _ in range(count + 1):
            stream.feed_data(chunk)
            await asyncio.sleep(0)
            most = max(most, len(reader.buffer))
        stream.feed_data(b"\x00\x00" + bolt.frame(b"RUN"))
        stream.feed_eof()

    feeder = asyncio.create_task(feed())
    with pytest.raises(bolt.MessageTooLarge):
        await reader.message(TIMEOUT_S)
    await feeder
    assert most <= bolt.MAX_MESSAGE_BYTES + 2 * 0xFFFF
    assert await reader.message(TIMEOUT_S) == b"RUN"
    assert await reader.message(TIMEOUT_S) is None


async def test_a_message_over_the_dropping_limit_ends_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bolt, "MAX_MESSAGE_BYTES", 0xFFFF)
    monkeypatch.setattr(bolt, "MAX_OVERSIZED_BYTES", 4 * 0xFFFF)
    chunk = b"\xff\xff" + b"x" * 0xFFFF
    reader = _reader(chunk * 10 + b"\x00\x00")
    with pytest.raises(bolt.ProtocolViolation):
        await reader.message(TIMEOUT_S)


async def test_a_materialized_result_also_streams_its_rows_as_records() -> None:
    from cluster.bolt.backend import QueryResult, Summary

    result = QueryResult.of(["n"], [[1], [2]], Summary())
    assert [row async for row in result.records] == [[1], [2]]
    again = QueryResult.of(["n"], iter([[3]]), Summary())
    await again.records.aclose()  # type: ignore[attr-defined]
    assert [row async for row in again.records] == []
    assert again.rows == [[3]]
