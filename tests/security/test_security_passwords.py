"""Password hashing (Argon2id and scrypt, PHC-style strings) and the login lockout with an
injected clock."""

from __future__ import annotations

import pytest

from cluster.security.passwords import (
    AccountLocked,
    FailureTracker,
    HashParameters,
    PasswordPolicyError,
    hash_password,
    needs_rehash,
    parse,
    verify_password,
)

# Small work factors: the tests are about behaviour, not strength.
FAST_ARGON = HashParameters(algorithm="argon2id", memory_kib=64, iterations=1, lanes=1)
FAST_SCRYPT = HashParameters(algorithm="scrypt", scrypt_log_n=4, scrypt_r=8, scrypt_p=1)


@pytest.mark.parametrize("parameters", [FAST_ARGON, FAST_SCRYPT], ids=["argon2id", "scrypt"])
def test_hash_verifies_the_password_and_refuses_others(parameters: HashParameters) -> None:
    encoded = hash_password("correct horse", parameters)
    assert encoded.startswith(f"${parameters.algorithm}$")
    assert "correct horse" not in encoded
    assert verify_password("correct horse", encoded)
    for wrong in ("correct hors", "correct horse ", "Correct horse", ""):
        assert not verify_password(wrong, encoded)
    assert parse(encoded)[0] == parameters
    assert not needs_rehash(encoded, parameters)
    assert needs_rehash(encoded, FAST_SCRYPT if parameters is FAST_ARGON else FAST_ARGON)


def test_each_hash_has_its_own_salt() -> None:
    first = hash_password("password", FAST_ARGON)
    second = hash_password("password", FAST_ARGON)
    assert first != second
    assert verify_password("password", first) and verify_password("password", second)


def test_default_parameters_are_argon2id() -> None:
    encoded = hash_password("a longer password")
    assert encoded.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert verify_password("a longer password", encoded)


def test_minimum_length_is_eight() -> None:
    with pytest.raises(PasswordPolicyError, match="at least 8"):
        hash_password("1234567", FAST_ARGON)
    assert verify_password("12345678", hash_password("12345678", FAST_ARGON))


@pytest.mark.parametrize(
    "encoded",
    ["", "plain", "$argon2id$v=19$m=64,t=1$AAAA$AAAA", "$scrypt$ln=4,r=8,p=1$@@@$AAAA", "$md5$x$y"],
)
def test_a_malformed_hash_is_refused(encoded: str) -> None:
    with pytest.raises(ValueError, match="malformed"):
        verify_password("whatever1", encoded)


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_three_failures_lock_the_user_for_five_seconds() -> None:
    clock = _Clock()
    tracker = FailureTracker(clock=clock)
    assert not tracker.failed("alice", "10.0.0.1")
    assert not tracker.failed("alice", "10.0.0.2")
    tracker.check("alice", "10.0.0.3")
    assert tracker.failed("alice", "10.0.0.3")
    with pytest.raises(AccountLocked) as locked:
        tracker.check("alice", "10.0.0.9")  # the user is locked from any address
    assert locked.value.key == "user:alice"
    assert locked.value.code == "Neo.ClientError.Security.AuthenticationRateLimit"
    assert tracker.locked_for("alice") == pytest.approx(5.0)
    clock.now += 4.9
    with pytest.raises(AccountLocked):
        tracker.check("alice")
    tracker.failed("alice")  # failing while locked does not extend the lock
    clock.now += 0.1
    tracker.check("alice")
    assert tracker.locked_for("alice") == 0.0
    # The count started over.
    assert not tracker.failed("alice")
    assert not tracker.failed("alice")
    assert tracker.failed("alice")


def test_three_failures_from_one_address_lock_that_address() -> None:
    clock = _Clock()
    tracker = FailureTracker(clock=clock)
    for user in ("a", "b", "c"):
        tracker.failed(user, "10.0.0.1")
    with pytest.raises(AccountLocked) as locked:
        tracker.check("d", "10.0.0.1")
    assert locked.value.key == "addr:10.0.0.1"
    tracker.check("d", "10.0.0.2")
    tracker.check("a", "10.0.0.2")


def test_a_success_clears_the_count_and_settings_are_configurable() -> None:
    clock = _Clock()
    tracker = FailureTracker(max_failures=2, lock_seconds=30, clock=clock)
    tracker.failed("bob", "h")
    tracker.succeeded("bob", "h")
    assert not tracker.failed("bob", "h")
    assert tracker.failed("bob", "h")
    assert tracker.locked_for("bob", "h") == pytest.approx(30)
    tracker.succeeded("bob", "h")  # a success does not lift a lock
    clock.now += 29
    assert tracker.locked_for("bob") == pytest.approx(1)


def test_the_tracker_is_bounded_and_keeps_locks_over_counts() -> None:
    clock = _Clock()
    tracker = FailureTracker(capacity=10, clock=clock)
    for _ in range(3):
        tracker.failed("victim")
    for i in range(1000):
        tracker.failed(f"user{i}", f"addr{i}")
        assert len(tracker) <= 10
    with pytest.raises(AccountLocked):
        tracker.check("victim")  # a flood of other failures did not push the lock out
    with pytest.raises(ValueError):
        FailureTracker(max_failures=0)
