"""A node serves ``Query.Run`` with grpc's unary handler (``cluster.service.add_query_service``:
the last message goes out with the status). What a streaming client receives must be what
the streaming handler sent: every message in order, then the status with its trailing
metadata; an error after some messages comes after all of them. In process, on 127.0.0.1,
with a stand-in node (the service's own code runs: authentication, forwarding, answers, the
query log) and a scripted leader to forward to."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from cluster import errors
from cluster.errors import QuiverError
from cluster.node import Answer
from cluster.security.sessions import Session
from cluster.service import QueryService, add_query_service
from proto import client_pb2, client_pb2_grpc

SESSION = Session("ann", "token-of-ann", 2e9, False)
WAIT_S = 10.0


def _batch(first: int, count: int) -> client_pb2.RunResponse:
    response = client_pb2.RunResponse()
    for i in range(first, first + count):
        response.records.records.add().values.add().integer = i
    return response


@dataclass
class ScriptedLeader(client_pb2_grpc.QueryServicer):
    """Answers a forwarded Run with `batches` streamed messages, then `fail` if set."""

    batches: int = 3
    fail: QuiverError | None = None

    async def Run(self, request: Any, context: Any) -> AsyncIterator[client_pb2.RunResponse]:
        for i in range(self.batches):
            yield _batch(10 * i, 2)
        if self.fail is not None:
            error = self.fail
            await context.abort(
                errors.grpc_status(error.code), error.message, errors.trailing_metadata(error)
            )


@dataclass
class StandInSecurity:
    logged: list[dict[str, Any]] = field(default_factory=list)

    async def authenticate_metadata(self, metadata: Any, address: str) -> tuple[Session, bool]:
        return SESSION, True  # "by password": the token goes back in the trailing metadata

    def transaction_user(self, tx_id: str) -> str:
        return ""

    async def acting(self, session: Session, target: str, address: str) -> Session:
        return session

    async def graph_restriction(self, session: Session, address: str) -> None:
        return None

    async def log_query(self, **record: Any) -> None:
        self.logged.append(record)

    async def authorization_failed(self, session: Session, address: str, query: str) -> None:
        raise AssertionError("not expected")


@dataclass
class StandInNode:
    """A follower (writes are forwarded) whose reads answer `rows` rows."""

    leader_channel: grpc.aio.Channel
    rows: int = 5
    security: StandInSecurity = field(default_factory=StandInSecurity)

    def is_leader(self) -> bool:
        return False

    async def forward_channel(self) -> grpc.aio.Channel:
        return self.leader_channel

    async def read(self, query: str, parameters: Any, *_args: Any) -> Answer:
        if query == "FAIL":
            raise QuiverError("Neo.ClientError.Statement.SyntaxError", "bad statement")
        rows = [[i] for i in range(self.rows)]
        return Answer(["i"], rows, {"nodes_created": 0}, "", 42, client_pb2.QUERY_TYPE_READ_ONLY)


async def _serve(servicer: Any, unary: bool) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    if unary:
        add_query_service(servicer, server)
    else:
        client_pb2_grpc.add_QueryServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


async def _call(address: str, request: client_pb2.RunRequest) -> dict[str, Any]:
    """Everything a streaming client sees of one Run: messages, status, trailing metadata."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = client_pb2_grpc.QueryStub(channel).Run(request, timeout=WAIT_S)
        messages = []
        try:
            async for response in call:
                messages.append(response.SerializeToString())
        except grpc.aio.AioRpcError:
            pass
        trailing = await call.trailing_metadata()
        return {
            "messages": messages,
            "code": await call.code(),
            "details": await call.details(),
            "trailing": sorted((key, value) for key, value in trailing or ()),
        }


def _requests() -> list[client_pb2.RunRequest]:
    read = client_pb2.ACCESS_MODE_READ
    write = client_pb2.ACCESS_MODE_WRITE
    return [
        client_pb2.RunRequest(query="RETURN 1", access_mode=read),  # one message
        client_pb2.RunRequest(query="RETURN 1", access_mode=read, fetch_size=2),  # three
        client_pb2.RunRequest(query="FAIL", access_mode=read),  # an error, no message
        client_pb2.RunRequest(query="CREATE ()", access_mode=write),  # forwarded
    ]


@pytest.mark.parametrize("leader_fails", [False, True])
def test_a_unary_run_sends_what_a_streaming_run_sends(leader_fails: bool) -> None:
    async def scenario() -> None:
        failure = QuiverError("Neo.TransientError.General.DatabaseUnavailable", "leader lost")
        leader = ScriptedLeader(fail=failure if leader_fails else None)
        leader_server, leader_address = await _serve(leader, unary=False)
        channel = grpc.aio.insecure_channel(leader_address)
        seen: dict[bool, list[dict[str, Any]]] = {}
        logs: dict[bool, list[dict[str, Any]]] = {}
        try:
            for unary in (False, True):
                node = StandInNode(channel)
                server, address = await _serve(QueryService(node), unary)  # type: ignore[arg-type]
                try:
                    seen[unary] = [await _call(address, r) for r in _requests()]
                finally:
                    await server.stop(0)
                logs[unary] = [
                    {k: v for k, v in record.items() if k not in ("started", "client")}
                    for record in node.security.logged
                ]
        finally:
            await channel.close()
            await leader_server.stop(0)
        assert seen[True] == seen[False]
        assert logs[True] == logs[False]
        one, three, failed, forwarded = seen[True]
        assert len(one["messages"]) == 1 and len(three["messages"]) == 3
        assert one["code"] == three["code"] == grpc.StatusCode.OK
        assert ("quiver-session", SESSION.token) in one["trailing"]
        assert failed["messages"] == [] and failed["code"] == grpc.StatusCode.INVALID_ARGUMENT
        # Forwarded: every message the leader sent, then its error if it failed.
        assert len(forwarded["messages"]) == 3
        if leader_fails:
            assert forwarded["code"] == grpc.StatusCode.UNAVAILABLE
            assert forwarded["details"] == "leader lost"
            assert logs[True][-1]["outcome"] == failure.code
        else:
            assert forwarded["code"] == grpc.StatusCode.OK
            assert logs[True][-1]["rows"] == 6

    asyncio.run(scenario())


def test_an_answer_streams_its_counters_bookmark_and_batches_as_fields_say() -> None:
    """``answer_responses``: zero counters are the fields' defaults (not set, the same
    bytes); a count sets its field and contains_updates; the summary rides the last
    batch."""
    from cluster.service import answer_responses

    zeros = dict.fromkeys(("nodes_created", "properties_set", "labels_added"), 0)
    read = Answer(["i"], [[1], [2], [3]], zeros, "", 9, client_pb2.QUERY_TYPE_READ_ONLY)
    got = [r.SerializeToString() for r in answer_responses(read, 2)]
    first = client_pb2.RunResponse(header=client_pb2.Header(columns=["i"]))
    for i in (1, 2):
        first.records.records.add().values.add().integer = i
    last = client_pb2.RunResponse(
        summary=client_pb2.Summary(
            counters=client_pb2.Counters(),
            applied_index=9,
            query_type=client_pb2.QUERY_TYPE_READ_ONLY,
        )
    )
    last.records.records.add().values.add().integer = 3
    assert got == [first.SerializeToString(), last.SerializeToString()]
    counts = {"nodes_created": 2, "properties_set": 0, "not_a_counter": 5}
    write = Answer([], [], counts, "quiver:7", 7, client_pb2.QUERY_TYPE_WRITE_ONLY)
    (only,) = answer_responses(write, 0)
    expected = client_pb2.RunResponse(
        header=client_pb2.Header(),
        summary=client_pb2.Summary(
            counters=client_pb2.Counters(nodes_created=2, contains_updates=True),
            bookmark="quiver:7",
            applied_index=7,
            query_type=client_pb2.QUERY_TYPE_WRITE_ONLY,
        ),
    )
    assert only.SerializeToString() == expected.SerializeToString()
    assert only.HasField("header") and only.summary.HasField("counters")
