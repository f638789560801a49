"""A Run answer is cut into messages by size as well as by row count, so that no message
exceeds what gRPC sends (64 MiB) and none holds the event loop for long; a record that no
message can carry, or a value nested deeper than the wire allows, fails the statement with
a Neo4j status code. Before, 200 rows of 1 MiB strings made one 200 MB message: the leader
lost its leadership building it, then gRPC refused it and the client saw UnknownError."""

from __future__ import annotations

import pytest

from cluster import service
from cluster.errors import QuiverError
from cluster.node import Answer
from cluster.service import answer_responses
from proto import client_pb2


def _answer(rows: list[list[object]]) -> Answer:
    return Answer(["v"], rows, {}, "", 7, client_pb2.QUERY_TYPE_READ_ONLY)


def test_large_records_are_spread_over_messages_of_bounded_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(service, "MAX_RESPONSE_RECORD_BYTES", 10_000)
    rows: list[list[object]] = [["x" * 3000] for _ in range(10)]
    responses = list(answer_responses(_answer(rows), 1000))
    sizes = [len(r.records.records) for r in responses]
    assert sizes == [4, 4, 2]  # a message is closed once it reaches the bound
    assert all(r.ByteSize() < 10_000 + 3100 for r in responses)
    assert responses[0].HasField("header") and not responses[1].HasField("header")
    assert [r.HasField("summary") for r in responses] == [False, False, True]
    assert responses[-1].summary.applied_index == 7
    got = [rec.values[0].string for r in responses for rec in r.records.records]
    assert got == ["x" * 3000] * 10


def test_the_row_count_still_cuts_messages_and_an_empty_answer_is_one_message() -> None:
    responses = list(answer_responses(_answer([[i] for i in range(5)]), 2))
    assert [len(r.records.records) for r in responses] == [2, 2, 1]
    (empty,) = answer_responses(_answer([]), 2)
    assert empty.HasField("header") and empty.HasField("summary")
    assert not empty.records.records


def test_a_record_no_message_can_carry_is_a_typed_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(service, "MAX_RECORD_BYTES", 5000)
    with pytest.raises(QuiverError) as refused:
        list(answer_responses(_answer([["ok"], ["x" * 6000]]), 1000))
    assert refused.value.code == "Neo.ClientError.General.TransactionOutOfMemoryError"


def test_a_value_nested_deeper_than_the_wire_allows_is_a_typed_error() -> None:
    nested: list[object] = []
    for _ in range(100):
        nested = [nested]
    with pytest.raises(QuiverError) as refused:
        list(answer_responses(_answer([[nested]]), 1000))
    assert refused.value.code == "Neo.ClientError.General.MemoryPoolOutOfMemoryError"
