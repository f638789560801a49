"""What a node remembers of a gRPC call's credentials and graph access between statements
(``NodeSecurity.authenticate_metadata`` and ``graph_restriction``): remembered only while the
applied security state is the same object, so every change that would refuse a statement
refuses the next one — a password change, a suspension, a drop, a DENY ACCESS — and so do a
lockout (kept outside that state) and a token's expiry. No cluster: a security state built by
the same administration commands the system database runs (with a fast fake hash)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cluster.errors import QuiverError
from cluster.security import sessions
from cluster.security.node_security import (
    AUTHORIZATION_METADATA,
    SESSION_METADATA,
    NodeSecurity,
    basic_value,
)
from cluster.security.sessions import FORBIDDEN, RATE_LIMIT, UNAUTHORIZED
from tests.security.security_fakes import Cluster, fake_hash

ADDRESS = "127.0.0.1:5"
WAIT_S = 10.0


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


@pytest.fixture
def security(
    tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[NodeSecurity, list[str]]]:
    """A node's security over `cluster`'s state, and the passwords it verified."""
    verified: list[str] = []

    def verify(password: str, hashed: str) -> bool:
        verified.append(password)
        return hashed == fake_hash(password)

    monkeypatch.setattr(sessions, "verify_password", verify)
    config = SimpleNamespace(
        auth_max_failures=3,
        auth_lock_seconds=5.0,
        session_ttl_s=3600.0,
        query_log=False,
        query_log_literals=False,
        data_dir=tmp_path,
    )
    node = SimpleNamespace(
        id=1,
        config=config,
        sm=SimpleNamespace(security=lambda: cluster.state),
        is_leader=lambda: False,
    )
    security = NodeSecurity(node)  # type: ignore[arg-type]
    yield security, verified
    security.close()


def _basic(user: str, password: str) -> tuple[tuple[str, str], ...]:
    return ((AUTHORIZATION_METADATA, basic_value(user, password)),)


def _call(security: NodeSecurity, metadata: Any) -> Any:
    async def call() -> Any:
        session, _ = await security.authenticate_metadata(metadata, ADDRESS)
        return session, await security.graph_restriction(session, ADDRESS)

    return asyncio.run(call())


def _refused(security: NodeSecurity, metadata: Any) -> str:
    with pytest.raises(QuiverError) as refused:
        _call(security, metadata)
    return refused.value.code


def test_a_password_is_verified_once_while_the_state_is_unchanged(
    security: tuple[NodeSecurity, list[str]],
) -> None:
    node, verified = security
    first, restriction = _call(node, _basic("ann", "ann-pass-1"))
    again, same = _call(node, _basic("ann", "ann-pass-1"))
    assert verified == ["ann-pass-1"]
    assert (again, same) == (first, restriction)
    assert restriction is not None and restriction.can_traverse_node({"Person"})


@pytest.mark.parametrize(
    "change",
    [
        "ALTER USER ann SET PASSWORD 'ann-pass-2' CHANGE NOT REQUIRED",
        "ALTER USER ann SET STATUS SUSPENDED",
        "DROP USER ann",
    ],
)
def test_a_credential_change_refuses_the_next_call_with_the_old_password_or_token(
    security: tuple[NodeSecurity, list[str]], cluster: Cluster, change: str
) -> None:
    node, _ = security
    session, _ = _call(node, _basic("ann", "ann-pass-1"))
    token = ((SESSION_METADATA, session.token),)
    assert _call(node, token)[0].user == "ann"
    cluster.run(change)
    assert _refused(node, _basic("ann", "ann-pass-1")) == UNAUTHORIZED
    assert _refused(node, token) == UNAUTHORIZED


def test_a_change_required_after_the_login_reaches_the_next_call(
    security: tuple[NodeSecurity, list[str]], cluster: Cluster
) -> None:
    node, verified = security
    _call(node, _basic("ann", "ann-pass-1"))
    cluster.run("ALTER USER ann SET PASSWORD CHANGE REQUIRED")
    assert (
        _refused(node, _basic("ann", "ann-pass-1")) == "Neo.ClientError.Security.CredentialsExpired"
    )
    assert verified == ["ann-pass-1"]  # the remembered login, its password state renewed


def test_deny_access_refuses_the_next_call_and_a_grant_restores_it(
    security: tuple[NodeSecurity, list[str]], cluster: Cluster
) -> None:
    node, _ = security
    _call(node, _basic("ann", "ann-pass-1"))
    cluster.run("DENY ACCESS ON DATABASE * TO reader")
    assert _refused(node, _basic("ann", "ann-pass-1")) == FORBIDDEN
    cluster.run("REVOKE DENY ACCESS ON DATABASE * FROM reader")
    assert _call(node, _basic("ann", "ann-pass-1"))[0].user == "ann"


def test_new_privileges_reach_the_next_call(
    security: tuple[NodeSecurity, list[str]], cluster: Cluster
) -> None:
    node, _ = security
    _, before = _call(node, _basic("ann", "ann-pass-1"))
    assert before.can_traverse_node({"Secret"})
    cluster.run("DENY TRAVERSE ON GRAPH * NODES Secret TO reader")
    _, after = _call(node, _basic("ann", "ann-pass-1"))
    assert not after.can_traverse_node({"Secret"})


def test_a_lockout_refuses_remembered_credentials(
    security: tuple[NodeSecurity, list[str]],
) -> None:
    node, _ = security
    _call(node, _basic("ann", "ann-pass-1"))
    for _ in range(3):
        assert _refused(node, _basic("ann", "wrong-pass")) == UNAUTHORIZED
    assert _refused(node, _basic("ann", "ann-pass-1")) == RATE_LIMIT


def _concurrently(security: NodeSecurity, metadata: Any, calls: int) -> list[Any]:
    async def all_at_once() -> list[Any]:
        return await asyncio.gather(
            *(security.authenticate_metadata(metadata, ADDRESS) for _ in range(calls)),
            return_exceptions=True,
        )

    return asyncio.run(all_at_once())


def test_a_pool_of_connections_logging_in_at_once_hashes_the_password_once(
    security: tuple[NodeSecurity, list[str]],
) -> None:
    node, verified = security
    answers = _concurrently(node, _basic("ann", "ann-pass-1"), 16)
    assert verified == ["ann-pass-1"]
    assert all(not isinstance(a, BaseException) and a[0].user == "ann" for a in answers)


def test_concurrent_wrong_passwords_each_count_towards_the_lockout(
    security: tuple[NodeSecurity, list[str]],
) -> None:
    node, verified = security
    answers = _concurrently(node, _basic("ann", "wrong-pass"), 3)
    assert all(isinstance(a, QuiverError) and a.code == UNAUTHORIZED for a in answers)
    assert verified == ["wrong-pass"] * 3
    assert _refused(node, _basic("ann", "ann-pass-1")) == RATE_LIMIT


def test_a_login_that_waited_for_anothers_hash_is_refused_if_locked_out_meanwhile(
    security: tuple[NodeSecurity, list[str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    node, _ = security
    release = threading.Event()

    def verify(password: str, hashed: str) -> bool:
        if password == "ann-pass-1":
            release.wait(WAIT_S)  # the first login's hash takes a while
        return hashed == fake_hash(password)

    monkeypatch.setattr(sessions, "verify_password", verify)

    async def scenario() -> BaseException | None:
        right = _basic("ann", "ann-pass-1")
        first = asyncio.create_task(node.authenticate_metadata(right, ADDRESS))
        for _ in range(10_000):  # bounded: until its hash is in flight
            if node._verifying:
                break
            await asyncio.sleep(0)
        waiter = asyncio.create_task(node.authenticate_metadata(right, ADDRESS))
        await asyncio.sleep(0)
        for _ in range(3):  # meanwhile, the user is locked out
            with pytest.raises(QuiverError):
                await node.authenticate_metadata(_basic("ann", "wrong-pass"), ADDRESS)
        release.set()
        await asyncio.wait_for(first, WAIT_S)
        try:
            await asyncio.wait_for(waiter, WAIT_S)
        except QuiverError as refused:
            return refused
        return None

    refused = asyncio.run(scenario())
    assert isinstance(refused, QuiverError) and refused.code == RATE_LIMIT


def test_a_token_is_refused_once_it_expires(
    security: tuple[NodeSecurity, list[str]],
) -> None:
    node, _ = security
    now = [1_000_000.0]
    node.authenticator._clock = lambda: now[0]
    session = node.authenticator.issue("ann", node.state().user("ann").credential_index)
    token = ((SESSION_METADATA, session.token),)
    assert _call(node, token)[0].user == "ann"
    now[0] = session.expires_at
    assert _refused(node, token) == UNAUTHORIZED


def test_a_forged_token_is_refused_after_a_good_one(
    security: tuple[NodeSecurity, list[str]],
) -> None:
    node, _ = security
    session, _ = _call(node, _basic("ann", "ann-pass-1"))
    body, _, mac = session.token.partition(".")
    forged = ((SESSION_METADATA, f"{body}.{'A' * len(mac)}"),)
    assert _call(node, ((SESSION_METADATA, session.token),))[0].user == "ann"
    assert _refused(node, forged) == UNAUTHORIZED
