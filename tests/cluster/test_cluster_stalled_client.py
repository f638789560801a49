"""A client that stops taking a Run call's responses (gRPC flow control holds the node's
write) no longer pins the answer in the node's memory for as long as its connection lives:
after STALLED_CLIENT_S the call ends with Neo.ClientError.Request.Invalid."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from cluster import service
from cluster.errors import ERROR_METADATA_KEY
from proto import client_pb2


class _Aborted(Exception):
    pass


class _StalledContext:
    """A call whose client reads nothing: every write waits for ever."""

    def __init__(self) -> None:
        self.aborted: list[tuple[Any, str]] = []

    async def write(self, data: bytes) -> None:
        await asyncio.Event().wait()

    async def abort(self, code: Any, message: str, metadata: Any = ()) -> None:
        self.aborted.append((code, message))
        assert any(key == ERROR_METADATA_KEY for key, _ in metadata)
        raise _Aborted


def test_a_response_the_client_never_takes_ends_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "STALLED_CLIENT_S", 0.05)
    context = _StalledContext()
    held = service._Held(context)  # type: ignore[arg-type]

    async def scenario() -> None:
        await held.hold(client_pb2.RunResponse())
        with pytest.raises(_Aborted):
            # The first response is written when the second comes: the client takes none.
            await asyncio.wait_for(held.hold(client_pb2.RunResponse()), 5.0)

    asyncio.run(scenario())
    ((_, message),) = context.aborted
    assert "took no response" in message
