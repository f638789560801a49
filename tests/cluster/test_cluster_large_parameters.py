"""Large parameters are converted off the event loop: a list of 5M integers took 5-10 s to
convert, all that time holding the node's event loop (and so Raft's heartbeats). Small ones
stay on the loop, where a thread trip would cost more than they do."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from cluster import service
from cluster.values import to_proto
from proto import client_pb2


def test_large_parameters_are_converted_in_a_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    threads: list[str] = []
    convert = service._parameters

    def recording(request: client_pb2.RunRequest) -> dict[str, Any]:
        threads.append(threading.current_thread().name)
        return convert(request)

    monkeypatch.setattr(service, "_parameters", recording)
    items = list(range(service.INLINE_PARAMETER_BYTES))
    large = client_pb2.RunRequest(query="RETURN $x", parameters={"x": to_proto(items)})
    small = client_pb2.RunRequest(query="RETURN $x", parameters={"x": to_proto([1, 2])})

    async def scenario() -> tuple[str, dict[str, Any], dict[str, Any]]:
        loop = threading.current_thread().name
        return loop, await service._parameters_of(large), await service._parameters_of(small)

    loop, converted, small_converted = asyncio.run(scenario())
    assert converted == {"x": items} and small_converted == {"x": [1, 2]}
    assert threads[0] != loop and threads[1] == loop
