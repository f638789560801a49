"""A large message is unpacked off the event loop: a 16 MiB message of small integers takes
seconds to unpack, which on the loop would hold up every connection and a node's Raft
heartbeats. Small messages stay on the loop (a thread trip costs more than they do)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from test_bolt_protocol import RawClient

from cluster.bolt import server as bolt
from cluster.bolt.embedded import EmbeddedBackend


@pytest.fixture
async def server() -> AsyncIterator[bolt.BoltServer]:
    backend = EmbeddedBackend({"neo4j": "secret"})
    async with bolt.BoltServer(backend, "127.0.0.1", 0, insecure=True) as running:
        yield running


async def test_a_large_message_is_unpacked_in_a_thread(
    server: bolt.BoltServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    unpack = bolt.Connection._unpack

    def recording(self: bolt.Connection, data: bytes) -> tuple[int, list[Any]]:
        threads.append(threading.current_thread().name)
        return unpack(self, data)

    monkeypatch.setattr(bolt.Connection, "_unpack", recording)
    loop = threading.current_thread().name
    client = await RawClient.open(server)
    await client.login()
    items = list(range(bolt.INLINE_UNPACK_BYTES // 2))  # well over the bound, packed
    client.send(bolt.RUN, "RETURN size($x) AS n", {"x": items}, {})
    client.send(bolt.PULL, {"n": -1})
    assert (await client.receive())[0] == bolt.SUCCESS
    assert await client.receive() == (bolt.RECORD, [[len(items)]])
    client.send(bolt.RUN, "RETURN 1 AS one", {}, {})
    assert (await client.receive())[0] == bolt.SUCCESS
    client.close()
    big_run, small_run = threads[-3], threads[-1]  # [-2]: the PULL
    assert big_run != loop and small_run == loop
