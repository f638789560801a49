"""The decisions both clients share (cluster.session), checked without a cluster: which node
a request goes to (leader, zone, failed replicas passed over), the retry budget, what a failure
teaches, request ids, the bookmark a session carries, typed errors, result assembly."""

from __future__ import annotations

import random

import grpc
import pytest

from cluster import errors
from cluster.errors import QuiverError
from cluster.session import (
    LEADER_TTL_S,
    RETRY_MAX_S,
    RETRY_MIN_S,
    ClientError,
    DatabaseError,
    Member,
    ResultBuilder,
    Session,
    TransientError,
    typed,
)
from cluster.values import to_proto
from proto import admin_pb2, client_pb2

MEMBERS = [Member(1, "zone-1", "n1:1"), Member(2, "zone-2", "n2:1"), Member(3, "zone-3", "n3:1")]


def _session(zone: str | None = None, **options: object) -> Session:
    members = [Member(m.id, m.zone, m.address) for m in MEMBERS]
    return Session(members, zone=zone, rng=random.Random(7), **options)  # type: ignore[arg-type]


def _picks(session: Session, to_leader: bool, now: float = 0.0, n: int = 50) -> set[int]:
    return {session.choose(to_leader, attempt, now).id for attempt in range(n)}


def test_reads_prefer_the_clients_zone_and_spread_without_one() -> None:
    assert _picks(_session("zone-2"), to_leader=False) == {2}
    assert _picks(_session(), to_leader=False) == {1, 2, 3}
    assert _picks(_session("zone-9"), to_leader=False) == {1, 2, 3}


def test_writes_go_to_the_known_leader_whatever_the_zone() -> None:
    session = _session("zone-2")
    session.leader_id = 3
    assert _picks(session, to_leader=True) == {3}


def test_a_failed_zone_replica_is_passed_over_for_a_while_then_preferred_again() -> None:
    session = _session("zone-2", suspect_s=3.0)
    call = session.prepare_run("RETURN 1", None, "read", "causal")
    retry = session.retry(10.0, now=0.0)
    error = QuiverError(errors.BOOKMARK_TIMEOUT, "not yet applied")
    assert session.failed(error, session._member(2), call.to_leader, retry, now=1.0) is not None
    assert _picks(session, to_leader=False, now=2.0) == {1, 3}
    assert _picks(session, to_leader=False, now=4.5) == {2}
    # A success clears it at once.
    session.failed(error, session._member(2), False, retry, now=5.0)
    session.succeeded(session._member(2), False, "")
    assert _picks(session, to_leader=False, now=5.0) == {2}


def test_when_every_replica_failed_lately_all_are_candidates_again() -> None:
    session = _session("zone-2")
    retry = session.retry(10.0, now=0.0)
    error = QuiverError(errors.SERVICE_UNAVAILABLE, "down")
    for member in session.members:
        session.failed(error, member, False, retry, now=1.0)
    assert _picks(session, to_leader=False, now=1.5) == {2}


def test_not_a_leader_names_the_next_leader_and_other_errors_forget_it() -> None:
    session = _session()
    session.leader_id = 1
    retry = session.retry(10.0, now=0.0)
    moved = QuiverError(errors.NOT_A_LEADER, "not the leader", leader="n3:1")
    assert session.failed(moved, session._member(1), True, retry, now=0.1) is not None
    assert session.leader_id == 3
    lost = QuiverError(errors.SERVICE_UNAVAILABLE, "connection reset")
    session.failed(lost, session._member(3), True, retry, now=0.2)
    assert session.leader_id == 0
    status = admin_pb2.NodeStatus(id=1, leader_id=2, leader_address="n2:1")
    assert session.observe_status(status, now=0.3) == 2 and session.leader_id == 2


def test_a_leader_that_did_not_answer_is_neither_picked_nor_believed_for_a_while() -> None:
    session = _session(suspect_s=3.0)
    session.leader_id = 1
    retry = session.retry(10.0, now=0.0)
    down = errors.from_rpc_error(_Unavailable())
    assert down.unanswered and typed(down).unanswered
    assert session.failed(typed(down), session._member(1), True, retry, now=0.1) is not None
    # Its peers may still name it for a moment: no leader then, and a replica that forwards
    # once they elect one.
    stale = admin_pb2.NodeStatus(id=2, leader_id=1, leader_address="n1:1")
    assert session.observe_status(stale, now=0.2) == 0
    assert _picks(session, to_leader=True, now=0.2) == {2, 3}
    assert session.observe_status(stale, now=3.5) == 1, "believed again once the time is up"
    # A node that answers again (restarted, and perhaps elected since) is believed at once.
    session.failed(typed(down), session._member(1), True, retry, now=3.6)
    assert session.observe_status(stale, now=3.7) == 0
    back = admin_pb2.NodeStatus(id=1, leader_id=1, leader_address="n1:1")
    assert session.observe_status(back, now=3.8) == 1
    # An error the node answered with (a forward that failed behind it) suspects nobody.
    answered = QuiverError(errors.SERVICE_UNAVAILABLE, "UNAVAILABLE: behind the follower")
    session.failed(answered, session._member(2), True, retry, now=4.0)
    assert _picks(session, to_leader=True, now=4.0) == {1, 2, 3}


class _Unavailable(grpc.RpcError):
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "failed to connect to all addresses"

    def trailing_metadata(self) -> tuple[()]:
        return ()


def test_a_leader_is_asked_about_again_once_its_confirmation_is_old() -> None:
    session = _session()
    assert session.needs_discovery(to_leader=True, now=0.0)
    assert not session.needs_discovery(to_leader=False, now=0.0)
    session.observe_status(admin_pb2.NodeStatus(id=3, leader_id=3, leader_address="n3:1"), 10.0)
    assert not session.needs_discovery(to_leader=True, now=10.0 + LEADER_TTL_S)
    # A follower forwards writes silently, so only a fresh status keeps the belief.
    assert session.needs_discovery(to_leader=True, now=10.1 + LEADER_TTL_S)
    assert session.discovery_order()[0].id == 3, "the believed leader is asked first"
    # An answer through an unconfirmed member is believed but asked about next time.
    fresh = _session()
    fresh.succeeded(fresh._member(1), True, "quiver:4")
    assert fresh.leader_id == 1 and fresh.needs_discovery(to_leader=True, now=0.0)


def test_the_retry_budget_backs_off_and_stops_at_the_deadline_or_a_final_error() -> None:
    session = _session()
    retry = session.retry(1.0, now=100.0)
    transient = QuiverError(errors.UNAVAILABLE, "no leader yet")
    pauses = []
    now = 100.0
    while (pause := retry.pause_after(transient, now)) is not None:
        pauses.append(pause)
        now += pause
        assert len(pauses) < 100, "a retry budget must end"
    assert now < 101.0 and 101.0 - now <= RETRY_MAX_S, "the budget is used, not crossed"
    assert RETRY_MIN_S * 0.5 <= pauses[0] <= RETRY_MIN_S * 1.5
    assert max(pauses) <= RETRY_MAX_S * 1.5
    assert retry.call_timeout_s(now) > 0
    syntax = QuiverError("Neo.ClientError.Statement.SyntaxError", "bad")
    assert session.retry(10.0, now=0.0).pause_after(syntax, 0.0) is None


def test_a_request_id_is_given_once_per_request_and_kept_by_its_retries() -> None:
    session = _session()
    first = session.prepare_run("CREATE ()", {"x": 1}, "write", "causal")
    session.finish(first)
    second = session.prepare_run("CREATE ()", None, "write", "causal")
    assert first.request.client_id == second.request.client_id == session.client_id
    assert second.request.sequence == first.request.sequence + 1
    assert first.to_leader and first.request.parameters["x"] == to_proto(1)
    assert session.prepare_run("RETURN 1", None, "read", "linearizable").to_leader
    assert not session.prepare_run("RETURN 1", None, "read", "stale").to_leader
    with pytest.raises(ValueError):
        session.prepare_run("RETURN 1", None, "read", "eventual")
    with pytest.raises(ValueError):
        session.prepare_run("RETURN 1", None, "admin", "causal")


def test_concurrent_writes_take_separate_lanes_so_none_looks_like_a_retry() -> None:
    # The cluster drops a write whose sequence is not above its id's last applied one: two
    # writes in flight under one id could overtake each other and one would be lost.
    session = _session()
    in_flight = [session.prepare_run("CREATE ()", None, "write", "causal") for _ in range(3)]
    ids = [(c.request.client_id, c.request.sequence) for c in in_flight]
    assert len({client_id for client_id, _ in ids}) == 3
    assert all(client_id.startswith(session.client_id) for client_id, _ in ids)
    session.finish(in_flight[1])
    reused = session.prepare_run("CREATE ()", None, "write", "causal")
    assert reused.request.client_id == in_flight[1].request.client_id
    assert reused.request.sequence == in_flight[1].request.sequence + 1
    for call in (in_flight[0], in_flight[2], reused):
        session.finish(call)
    assert session.prepare_run("RETURN 1", None, "read", "causal").lane is None


def test_a_client_refuses_more_writes_in_flight_than_it_has_lanes() -> None:
    session = _session()
    calls = [session.prepare_run("CREATE ()", None, "write", "causal") for _ in range(256)]
    with pytest.raises(TransientError):
        session.prepare_run("CREATE ()", None, "write", "causal")
    session.finish(calls[0])
    session.finish(session.prepare_run("CREATE ()", None, "write", "causal"))


def test_the_session_carries_its_newest_bookmark_even_when_answers_arrive_out_of_order() -> None:
    session = _session()
    session.observe_bookmark("quiver:12")
    session.observe_bookmark("quiver:9")
    session.observe_bookmark("")
    assert session.bookmarks == {"quiver:12"}
    session.observe_bookmark("quiver:13")
    assert session.bookmarks == {"quiver:13"}
    assert session.prepare_run("RETURN 1", None, "read", "causal").request.bookmarks == [
        "quiver:13"
    ]


def test_errors_are_typed_by_their_neo4j_classification() -> None:
    cases = {
        "Neo.ClientError.Statement.SyntaxError": ClientError,
        errors.NOT_A_LEADER: ClientError,
        errors.OUTDATED: TransientError,
        errors.UNKNOWN: DatabaseError,
    }
    for code, kind in cases.items():
        error = typed(QuiverError(code, "m", leader="n1:1"))
        assert type(error) is kind and isinstance(error, QuiverError)
        assert (error.code, error.message, error.leader) == (code, "m", "n1:1")
        assert error.retryable == QuiverError(code, "m").retryable


def test_a_run_stream_assembles_into_a_result() -> None:
    builder = ResultBuilder()
    builder.add(client_pb2.RunResponse(header=client_pb2.Header(columns=["n", "s"])))
    for batch in ([1, "a"], [2, "b"]):
        record = client_pb2.Record(values=[to_proto(v) for v in batch])
        builder.add(client_pb2.RunResponse(records=client_pb2.RecordBatch(records=[record])))
    summary = client_pb2.Summary(
        counters=client_pb2.Counters(nodes_created=2, contains_updates=True),
        bookmark="quiver:5",
        applied_index=5,
    )
    builder.add(client_pb2.RunResponse(summary=summary))
    result = builder.result(served_by=2)
    assert result.columns == ["n", "s"] and result.rows == [[1, "a"], [2, "b"]]
    assert result.counters == {"nodes_created": 2}
    assert (result.bookmark, result.applied_index, result.served_by) == ("quiver:5", 5, 2)
    assert result.records()[1]["s"] == "b"

    streaming = ResultBuilder(keep_rows=False)
    record = client_pb2.Record(values=[to_proto(3)])
    batch = client_pb2.RunResponse(records=client_pb2.RecordBatch(records=[record]))
    assert streaming.add(batch) == [[3]] and streaming.rows == []


def test_impersonation_is_named_in_every_run_and_begin_request() -> None:
    plain = _session()
    assert plain.prepare_run("RETURN 1", None, "read", "stale").request.impersonated_user == ""
    session = _session(impersonate="bob")
    for mode in ("read", "write"):
        call = session.prepare_run("RETURN 1", None, mode, "causal")
        assert call.request.impersonated_user == "bob"
        session.finish(call)
    assert session.prepare_begin(None).impersonated_user == "bob"
