"""Password hashing (Argon2id, scrypt where Argon2id is unavailable) and login lockout.

Hashes are PHC-style strings carrying their parameters, so that they can be verified after
the defaults change and :func:`needs_rehash` can say when to upgrade one::

    $argon2id$v=19$m=19456,t=2,p=1$<salt, base64 without padding>$<hash, same>
    $scrypt$ln=15,r=8,p=1$<salt>$<hash>

Verification compares in constant time. :class:`FailureTracker` counts failed logins per
user and per client address: after ``max_failures`` (3) the key is locked for
``lock_seconds`` (5), whatever the password.
"""

from __future__ import annotations

import base64
import hmac
import os
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cryptography.exceptions import InvalidKey, UnsupportedAlgorithm
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

try:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id
except ImportError:  # cryptography < 44
    Argon2id = None  # type: ignore[assignment,misc]

MIN_LENGTH = 8
INVALID_ARGUMENTS = "Neo.ClientError.General.InvalidArguments"
_SALT_BYTES = 16
_HASH_BYTES = 32


class PasswordPolicyError(ValueError):
    """A password refused by the policy (``code`` is the Neo4j status code)."""

    code = INVALID_ARGUMENTS


@dataclass(frozen=True, slots=True)
class HashParameters:
    """Argon2id: ``memory_kib``, ``iterations``, ``lanes`` (OWASP's minimum by default).
    scrypt: ``scrypt_log_n``, ``scrypt_r``, ``scrypt_p``."""

    algorithm: str = "argon2id" if Argon2id is not None else "scrypt"
    memory_kib: int = 19_456
    iterations: int = 2
    lanes: int = 1
    scrypt_log_n: int = 15
    scrypt_r: int = 8
    scrypt_p: int = 1


DEFAULT_PARAMETERS = HashParameters()


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def check_policy(password: str) -> None:
    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(f"A password must be at least {MIN_LENGTH} characters")


def hash_password(password: str, parameters: HashParameters = DEFAULT_PARAMETERS) -> str:
    """The encoded hash of ``password`` under a fresh random salt (after the policy check)."""
    check_policy(password)
    salt = os.urandom(_SALT_BYTES)
    digest = _derive(password.encode(), salt, parameters, _HASH_BYTES)
    if parameters.algorithm == "argon2id":
        settings = f"v=19$m={parameters.memory_kib},t={parameters.iterations},p={parameters.lanes}"
    else:
        settings = f"ln={parameters.scrypt_log_n},r={parameters.scrypt_r},p={parameters.scrypt_p}"
    return f"${parameters.algorithm}${settings}${_b64(salt)}${_b64(digest)}"


def _derive(secret: bytes, salt: bytes, parameters: HashParameters, length: int) -> bytes:
    if parameters.algorithm == "argon2id":
        if Argon2id is None:
            raise UnsupportedAlgorithm("Argon2id needs cryptography >= 44")
        return Argon2id(
            salt=salt,
            length=length,
            iterations=parameters.iterations,
            lanes=parameters.lanes,
            memory_cost=parameters.memory_kib,
        ).derive(secret)
    if parameters.algorithm == "scrypt":
        return Scrypt(
            salt=salt,
            length=length,
            n=1 << parameters.scrypt_log_n,
            r=parameters.scrypt_r,
            p=parameters.scrypt_p,
        ).derive(secret)
    raise ValueError(f"unknown password hash algorithm {parameters.algorithm!r}")


def parse(encoded: str) -> tuple[HashParameters, bytes, bytes]:
    """``(parameters, salt, hash)`` of an encoded hash; ValueError if malformed."""
    parts = encoded.split("$")
    try:
        if len(parts) == 6 and parts[:3] == ["", "argon2id", "v=19"]:
            settings = dict(item.split("=", 1) for item in parts[3].split(","))
            parameters = HashParameters(
                algorithm="argon2id",
                memory_kib=int(settings["m"]),
                iterations=int(settings["t"]),
                lanes=int(settings["p"]),
            )
            salt, digest = parts[4], parts[5]
        elif len(parts) == 5 and parts[:2] == ["", "scrypt"]:
            settings = dict(item.split("=", 1) for item in parts[2].split(","))
            parameters = HashParameters(
                algorithm="scrypt",
                scrypt_log_n=int(settings["ln"]),
                scrypt_r=int(settings["r"]),
                scrypt_p=int(settings["p"]),
            )
            salt, digest = parts[3], parts[4]
        else:
            raise ValueError("not an argon2id or scrypt hash")
        return parameters, _unb64(salt), _unb64(digest)
    except (KeyError, ValueError) as error:
        raise ValueError(f"malformed password hash: {error}") from None


def verify_password(password: str, encoded: str) -> bool:
    """Whether ``password`` matches ``encoded``; the comparison is constant-time."""
    parameters, salt, expected = parse(encoded)
    try:
        actual = _derive(password.encode(), salt, parameters, len(expected))
    except (InvalidKey, ValueError):
        return False
    return hmac.compare_digest(actual, expected)


def needs_rehash(encoded: str, parameters: HashParameters = DEFAULT_PARAMETERS) -> bool:
    """Whether ``encoded`` was made with other parameters than ``parameters``."""
    return parse(encoded)[0] != parameters


class AccountLocked(Exception):
    """A login refused because the user or the client address is locked out."""

    code = "Neo.ClientError.Security.AuthenticationRateLimit"

    def __init__(self, key: str, remaining: float) -> None:
        super().__init__(f"too many failed authentication attempts; try again in {remaining:.1f} s")
        self.key = key
        self.remaining = remaining


@dataclass(slots=True)
class _Failures:
    count: int = 0
    locked_until: float = 0.0


class FailureTracker:
    """Failed-login counting per user and per client address, bounded to ``capacity`` keys
    (the least recently failing are forgotten first; a locked key is kept while others can
    go). Not thread-safe: call it from the event loop.

    Use: :meth:`check` before verifying a password (raises :class:`AccountLocked`), then
    :meth:`failed` or :meth:`succeeded`. A lock expires after ``lock_seconds`` and the count
    starts over.
    """

    def __init__(
        self,
        max_failures: int = 3,
        lock_seconds: float = 5.0,
        *,
        capacity: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_failures < 1 or lock_seconds < 0 or capacity < 2:
            raise ValueError("max_failures >= 1, lock_seconds >= 0 and capacity >= 2")
        self.max_failures = max_failures
        self.lock_seconds = lock_seconds
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[str, _Failures] = OrderedDict()

    @staticmethod
    def _keys(user: str, address: str | None) -> list[str]:
        keys = [f"user:{user}"]
        if address is not None:
            keys.append(f"addr:{address}")
        return keys

    def _entry(self, key: str, now: float) -> _Failures | None:
        entry = self._entries.get(key)
        if entry is not None and entry.locked_until and now >= entry.locked_until:
            del self._entries[key]  # the lock expired: start over
            return None
        return entry

    def locked_for(self, user: str, address: str | None = None) -> float:
        """Seconds the user or the address stays locked (0: not locked)."""
        now = self._clock()
        remaining = 0.0
        for key in self._keys(user, address):
            entry = self._entry(key, now)
            if entry is not None and entry.locked_until > now:
                remaining = max(remaining, entry.locked_until - now)
        return remaining

    def check(self, user: str, address: str | None = None) -> None:
        now = self._clock()
        for key in self._keys(user, address):
            entry = self._entry(key, now)
            if entry is not None and entry.locked_until > now:
                raise AccountLocked(key, entry.locked_until - now)

    def failed(self, user: str, address: str | None = None) -> bool:
        """Count a failure; True if it locked the user or the address."""
        now = self._clock()
        locked = False
        for key in self._keys(user, address):
            entry = self._entry(key, now)
            if entry is None:
                entry = self._entries[key] = _Failures()
            self._entries.move_to_end(key)
            if entry.locked_until > now:
                continue
            entry.count += 1
            if entry.count >= self.max_failures:
                entry.locked_until = now + self.lock_seconds
                locked = True
        self._evict(now)
        return locked

    def succeeded(self, user: str, address: str | None = None) -> None:
        """A good login clears the user's count (and the address's, if not locked)."""
        now = self._clock()
        for key in self._keys(user, address):
            entry = self._entry(key, now)
            if entry is not None and entry.locked_until <= now:
                del self._entries[key]

    def _evict(self, now: float) -> None:
        while len(self._entries) > self._capacity:
            victim = next(
                (k for k, e in self._entries.items() if e.locked_until <= now),
                next(iter(self._entries)),
            )
            del self._entries[victim]

    def __len__(self) -> int:
        return len(self._entries)
