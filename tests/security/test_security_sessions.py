"""Logins and session tokens (cluster/security/sessions.py) with an injected clock: a token
is good until it expires, is refused once forged, and is revoked by a suspension, a drop or a
password change (the user's credential index moves); failed logins lock out per user and per
client host; an unknown user and a wrong password get the same answer."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from cluster.errors import QuiverError
from cluster.security.audit import AuditLog
from cluster.security.passwords import FailureTracker, hash_password
from cluster.security.sessions import Authenticator, client_host
from cluster.security.system import Command, SecurityState

UNAUTHORIZED = "Neo.ClientError.Security.Unauthorized"
LOCKED = "Neo.ClientError.Security.AuthenticationRateLimit"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1)
    yield pool
    pool.shutdown(wait=True)


def _state() -> SecurityState:
    state = SecurityState()
    state.apply(
        [Command("bootstrap_admin", {"name": "admin", "hash": hash_password("admin-pw")})], 2
    )
    state.apply(
        [
            Command(
                "create_user",
                {"name": "ann", "hash": hash_password("ann-pass-1"), "change_required": False},
            )
        ],
        3,
    )
    return state


def _code(coroutine: object) -> str:
    with pytest.raises(QuiverError) as raised:
        asyncio.run(coroutine)  # type: ignore[arg-type]
    return raised.value.code


def test_tokens_expire_are_unforgeable_and_are_revoked_by_credential_changes(
    executor: ThreadPoolExecutor, tmp_path: object
) -> None:
    holder = {"state": _state()}
    clock = Clock()
    auth = Authenticator(
        lambda: holder["state"], b"k" * 32, executor, session_ttl_s=60, clock=clock
    )
    session = asyncio.run(auth.login("ann", "ann-pass-1", "127.0.0.1:5000"))
    assert auth.check_token(session.token).user == "ann"
    other_key = Authenticator(lambda: holder["state"], b"x" * 32, executor, clock=clock)
    with pytest.raises(QuiverError):
        other_key.check_token(session.token)  # another cluster's key
    body, mac = session.token.split(".")
    with pytest.raises(QuiverError):
        auth.check_token(body[:-1] + ("A" if body[-1] != "A" else "B") + "." + mac)

    clock.now += 61
    with pytest.raises(QuiverError, match="expired"):
        auth.check_token(session.token)

    clock.now += 1
    for change in (
        Command("alter_user", {"name": "ann", "suspended": True}),
        Command("alter_user", {"name": "ann", "hash": hash_password("ann-pass-2")}),
        Command("drop_user", {"name": "ann"}),
    ):
        state = _state()
        holder["state"] = state
        token = auth.issue("ann", state.users["ann"].credential_index).token
        assert auth.check_token(token).user == "ann"
        state.apply([change], 10)
        with pytest.raises(QuiverError, match="revoked"):
            auth.check_token(token)
    # Changing only CHANGE REQUIRED does not revoke.
    state = _state()
    holder["state"] = state
    token = auth.issue("ann", state.users["ann"].credential_index).token
    state.apply([Command("alter_user", {"name": "ann", "change_required": True})], 11)
    assert auth.check_token(token).change_required


def test_failed_logins_lock_out_and_suspended_or_unknown_users_look_alike(
    executor: ThreadPoolExecutor, tmp_path: object
) -> None:
    from pathlib import Path

    state = _state()
    clock = Clock()
    audit = AuditLog(Path(str(tmp_path)) / "audit", "security")
    auth = Authenticator(
        lambda: state,
        b"k" * 32,
        executor,
        tracker=FailureTracker(3, 5.0, clock=clock),
        audit=audit,
        clock=clock,
    )
    assert _code(auth.login("nobody", "whatever-1", "10.0.0.1:1")) == UNAUTHORIZED
    assert _code(auth.login("ann", "wrong-pass", "10.0.0.2:1")) == UNAUTHORIZED
    assert _code(auth.login("ann", "wrong-pass", "10.0.0.3:1")) == UNAUTHORIZED
    assert _code(auth.login("ann", "wrong-pass", "10.0.0.4:1")) == UNAUTHORIZED
    # The user is locked now, from any host, whatever the password.
    assert _code(auth.login("ann", "ann-pass-1", "10.0.0.5:1")) == LOCKED
    clock.now += 5.1
    assert asyncio.run(auth.login("ann", "ann-pass-1", "10.0.0.5:1")).user == "ann"

    state.apply([Command("alter_user", {"name": "ann", "suspended": True})], 20)
    assert _code(auth.login("ann", "ann-pass-1", "10.0.0.6:1")) == UNAUTHORIZED
    audit.close()
    events = [line for line in (Path(str(tmp_path)) / "audit").glob("security.*.jsonl")]
    text = "".join(path.read_text() for path in events)
    assert '"event":"login_failed"' in text and '"event":"lockout"' in text
    assert '"event":"login"' in text and "ann-pass-1" not in text


def test_a_client_host_is_locked_out_across_users(executor: ThreadPoolExecutor) -> None:
    state = _state()
    clock = Clock()
    auth = Authenticator(
        lambda: state, b"k" * 32, executor, tracker=FailureTracker(3, 5.0, clock=clock)
    )
    for user in ("u1", "u2", "u3"):
        assert _code(auth.login(user, "bad-password", "10.1.1.1:4000")) == UNAUTHORIZED
    assert _code(auth.login("ann", "ann-pass-1", "10.1.1.1:4001")) == LOCKED
    assert asyncio.run(auth.login("ann", "ann-pass-1", "10.1.1.2:4001")).user == "ann"
    assert client_host("[::1]:5") == "::1" and client_host("10.0.0.1:80") == "10.0.0.1"


def test_the_initial_admin_logs_in_before_the_bootstrap_entry_is_applied(
    executor: ThreadPoolExecutor,
) -> None:
    empty = SecurityState()
    initial = ("admin", hash_password("first-pw-1"))
    auth = Authenticator(lambda: empty, b"k" * 32, executor, bootstrap=lambda: initial)
    session = asyncio.run(auth.login("admin", "first-pw-1", "127.0.0.1:1"))
    assert auth.check_token(session.token).user == "admin"
    assert _code(auth.login("admin", "wrong-pw-1", "127.0.0.1:1")) == UNAUTHORIZED
    assert _code(auth.login("other", "first-pw-1", "127.0.0.1:1")) == UNAUTHORIZED
    # Once the bootstrap entry is applied, the early token stays good until the password
    # changes.
    early = asyncio.run(auth.login("admin", "first-pw-1", "127.0.0.1:1")).token
    empty.apply([Command("bootstrap_admin", {"name": "admin", "hash": initial[1]})], 5)
    assert auth.check_token(early).user == "admin"
    empty.apply([Command("alter_user", {"name": "admin", "hash": hash_password("new-pw-12")})], 6)
    with pytest.raises(QuiverError, match="revoked"):
        auth.check_token(early)
