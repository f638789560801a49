"""Impersonation (Neo4j's ``IMPERSONATE (user)``) rule by rule, and the query log a node keeps
of every statement: masked, parameters withheld, both names when impersonating, chained, and
bounded on its way to the audit thread. No cluster: a security state built by the same
administration commands the system database runs (with a fast fake hash)."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cluster.errors import QuiverError
from cluster.metrics import NodeMetrics
from cluster.security import node_security
from cluster.security.admin import execute_admin
from cluster.security.audit import AuditLog, verify
from cluster.security.node_security import NodeSecurity, check_impersonation
from cluster.security.sessions import CREDENTIALS_EXPIRED, FORBIDDEN, Session
from cluster.security.system import Command, SecurityState

ADMIN = "admin"


def _fake_hash(password: str) -> str:
    return "fake$" + password[::-1]


def _state(*commands: str) -> SecurityState:
    """The initial admin, users alice (reader), bob and carol, then `commands` as the admin."""
    state = SecurityState()
    state.apply([Command("bootstrap_admin", {"name": ADMIN, "hash": _fake_hash("adminpass")})], 1)
    setup = (
        "CREATE USER alice SET PASSWORD 'alice-pass' CHANGE NOT REQUIRED",
        "CREATE USER bob SET PASSWORD 'bob-pass-1' CHANGE NOT REQUIRED",
        "CREATE USER carol SET PASSWORD 'carol-pass' CHANGE NOT REQUIRED",
        "CREATE ROLE impersonators",
        "GRANT ROLE impersonators TO alice",
        "GRANT ROLE reader TO alice",
    )
    for index, query in enumerate((*setup, *commands), start=2):
        result = execute_admin(state, ADMIN, query, {}, hasher=_fake_hash)
        state.apply(result.commands, index)
    return state


def _code(state: SecurityState, user: str, target: str) -> str:
    try:
        check_impersonation(state, user, target)
    except QuiverError as error:
        return error.code
    return ""


def test_impersonate_granted_for_a_user_allows_exactly_that_user() -> None:
    state = _state("GRANT IMPERSONATE (bob) ON DBMS TO impersonators")
    assert _code(state, "alice", "bob") == ""
    assert _code(state, "alice", "carol") == FORBIDDEN


def test_without_the_privilege_impersonation_is_forbidden() -> None:
    assert _code(_state(), "alice", "bob") == FORBIDDEN


def test_deny_impersonate_beats_a_grant_on_every_user() -> None:
    state = _state(
        "GRANT IMPERSONATE (*) ON DBMS TO impersonators",
        "DENY IMPERSONATE (bob) ON DBMS TO impersonators",
    )
    assert _code(state, "alice", "carol") == ""
    assert _code(state, "alice", "bob") == FORBIDDEN


def test_the_admin_role_may_impersonate_anyone() -> None:
    assert _code(_state(), ADMIN, "bob") == ""


def test_impersonating_an_unknown_user_is_forbidden_and_tells_nothing_without_the_privilege() -> (
    None
):
    state = _state("GRANT IMPERSONATE (*) ON DBMS TO impersonators")
    assert _code(state, "alice", "nobody") == FORBIDDEN
    # Without the privilege, an unknown user and an existing one get the same answer.
    with pytest.raises(QuiverError) as unknown:
        check_impersonation(_state(), "alice", "nobody")
    with pytest.raises(QuiverError) as known:
        check_impersonation(_state(), "alice", "bob")
    assert "may not impersonate" in unknown.value.message
    assert "may not impersonate" in known.value.message


def test_impersonating_a_suspended_user_is_forbidden() -> None:
    state = _state(
        "GRANT IMPERSONATE (*) ON DBMS TO impersonators", "ALTER USER bob SET STATUS SUSPENDED"
    )
    assert _code(state, "alice", "bob") == FORBIDDEN
    assert _code(state, "alice", "carol") == ""


def test_a_suspended_user_cannot_impersonate() -> None:
    state = _state(
        "GRANT IMPERSONATE (*) ON DBMS TO impersonators", "ALTER USER alice SET STATUS SUSPENDED"
    )
    assert _code(state, "alice", "bob") == FORBIDDEN


def test_impersonation_needs_users() -> None:
    assert _code(SecurityState(), ADMIN, "bob") == FORBIDDEN


# -- NodeSecurity: acting and the query log ------------------------------------------------------


def _security(tmp_path: Path, state: SecurityState) -> NodeSecurity:
    config = SimpleNamespace(
        auth_max_failures=3,
        auth_lock_seconds=5.0,
        session_ttl_s=3600.0,
        query_log=True,
        query_log_literals=False,
        data_dir=tmp_path,
    )
    node = SimpleNamespace(id=1, config=config, sm=SimpleNamespace(security=lambda: state))
    node.metrics = NodeMetrics(node)  # type: ignore[arg-type]
    security = NodeSecurity(node)  # type: ignore[arg-type]
    security.query_audit = AuditLog(tmp_path / "audit", "query", sync_every=8)
    security.audit = security.authenticator.audit = AuditLog(tmp_path / "audit", "security")
    return security


def _session(user: str, change_required: bool = False) -> Session:
    return Session(user, f"token-of-{user}", 1e12, change_required)


def test_acting_runs_as_the_impersonated_user_with_the_callers_token(tmp_path: Path) -> None:
    security = _security(tmp_path, _state("GRANT IMPERSONATE (bob) ON DBMS TO impersonators"))
    try:
        alice = _session("alice")
        acting = asyncio.run(security.acting(alice, "bob", "127.0.0.1:5"))
        assert (acting.user, acting.token, acting.impersonator) == ("bob", alice.token, "alice")
        assert asyncio.run(security.acting(alice, "", "127.0.0.1:5")) is alice
        assert asyncio.run(security.acting(alice, "alice", "127.0.0.1:5")) is alice
        with pytest.raises(QuiverError) as refused:
            asyncio.run(security.acting(alice, "carol", "127.0.0.1:5"))
        assert refused.value.code == FORBIDDEN
        text = (tmp_path / "audit" / "security.000001.jsonl").read_text()
        failed = [json.loads(line)["fields"] for line in text.splitlines()]
        assert {
            "event": "impersonation_failed",
            "user": "alice",
            "impersonated": "carol",
        }.items() <= failed[-1].items()
        # Bob's privileges, not alice's: alice reads (reader), bob has only PUBLIC.
        bob_privileges = security.graph_privileges(acting)
        alice_privileges = security.graph_privileges(alice)
        assert bob_privileges is not None and alice_privileges is not None
        assert alice_privileges.can_traverse_node({"Person"})
        assert not bob_privileges.can_traverse_node({"Person"})
    finally:
        security.close()


def test_a_caller_who_must_change_the_password_cannot_impersonate(tmp_path: Path) -> None:
    security = _security(tmp_path, _state("GRANT IMPERSONATE (bob) ON DBMS TO impersonators"))
    try:
        with pytest.raises(QuiverError) as refused:
            asyncio.run(security.acting(_session("alice", True), "bob", "127.0.0.1:5"))
        assert refused.value.code == CREDENTIALS_EXPIRED
    finally:
        security.close()


def _records(directory: Path) -> list[dict[str, Any]]:
    text = "".join(p.read_text() for p in sorted(directory.glob("query.*.jsonl")))
    return [json.loads(line)["fields"] for line in text.splitlines()]


async def _log(security: NodeSecurity, query: str, **fields: Any) -> None:
    defaults: dict[str, Any] = {
        "user": "alice",
        "impersonated": "",
        "client": "127.0.0.1:9",
        "database": "neo4j",
        "parameters": {},
        "started": 0.0,
        "rows": 1,
        "outcome": "ok",
    }
    await security.log_query(query=query, **{**defaults, **fields})


def test_query_log_masks_literals_withholds_parameters_and_names_both_users(
    tmp_path: Path,
) -> None:
    security = _security(tmp_path, _state())

    async def scenario() -> None:
        await _log(
            security,
            "MATCH (n:Person {name: 'Secret Name'}) WHERE n.age > 42 RETURN n, $pin",
            parameters={"pin": "1234"},
            impersonated="bob",
            rows=3,
        )
        await _log(security, "RETURN 1", outcome=FORBIDDEN, rows=0)

    asyncio.run(scenario())
    security.close()
    first, second = _records(tmp_path / "audit")
    assert first["query"] == "MATCH (n:Person {name: '***'}) WHERE n.age > ? RETURN n, $pin"
    assert first["parameters"] == ["pin"]
    assert (first["user"], first["impersonated"], first["rows"]) == ("alice", "bob", 3)
    assert (first["client"], first["database"], first["outcome"]) == ("127.0.0.1:9", "neo4j", "ok")
    assert first["duration_ms"] >= 0
    assert "impersonated" not in second and second["outcome"] == FORBIDDEN
    # Every field but the duration, whose digits may contain "42" by chance.
    text = json.dumps([{k: v for k, v in r.items() if k != "duration_ms"} for r in (first, second)])
    assert "Secret Name" not in text and "1234" not in text and "42" not in text
    assert verify(tmp_path / "audit").ok


def test_query_log_waits_for_the_audit_thread_beyond_its_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(node_security, "QUERY_LOG_BATCH", 1)
    monkeypatch.setattr(node_security, "MAX_QUERY_LOG_BATCHES", 2)
    security = _security(tmp_path, _state())
    release = threading.Event()

    async def scenario() -> None:
        blocked = security._audit_thread.submit(release.wait, 30)
        await _log(security, "RETURN 1")
        await _log(security, "RETURN 2")  # two batches queued: the bound
        third = asyncio.create_task(_log(security, "RETURN 3"))
        for _ in range(20):
            await asyncio.sleep(0)
        assert not third.done()  # it waits while the thread is held
        release.set()
        await asyncio.wait_for(third, 30)
        blocked.result(timeout=30)

    try:
        asyncio.run(scenario())
    finally:
        release.set()
        security.close()
    assert [r["query"] for r in _records(tmp_path / "audit")] == [
        "RETURN ?",
        "RETURN ?",
        "RETURN ?",
    ]


def test_query_log_hands_a_partial_batch_over_after_its_delay(tmp_path: Path) -> None:
    security = _security(tmp_path, _state())

    async def scenario() -> None:
        await _log(security, "RETURN 'one'")
        assert _records(tmp_path / "audit") == []  # gathering on the loop
        deadline = asyncio.get_running_loop().time() + 30
        while not _records(tmp_path / "audit"):
            assert asyncio.get_running_loop().time() < deadline, "never handed over"
            await asyncio.sleep(0.01)

    try:
        asyncio.run(scenario())
    finally:
        security.close()
    assert [r["query"] for r in _records(tmp_path / "audit")] == ["RETURN '***'"]


def test_audit_verify_names_an_edited_query_record_beside_a_good_security_log(
    tmp_path: Path,
) -> None:
    with AuditLog(tmp_path, "security") as security_log:
        security_log.security("login", user="alice", client="127.0.0.1:1")
    with AuditLog(tmp_path, "query") as query_log:
        for rows in (1, 2, 3):
            query_log.query(
                user="alice", client="127.0.0.1:1", query="RETURN 1", duration_ms=0.1,
                rows=rows, outcome="ok",
            )  # fmt: skip
    assert verify(tmp_path).ok and verify(tmp_path).records == 4
    path = tmp_path / "query.000001.jsonl"
    path.write_text(path.read_text().replace('"rows":2', '"rows":0'))
    report = verify(tmp_path)
    assert report.problem is not None
    assert (report.problem.path, report.problem.line) == (path, 2)
