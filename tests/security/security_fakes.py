"""A cluster's applied security state without a cluster, for the admission tests of the gRPC
face (tests/security/test_security_admission.py) and the Bolt face
(tests/bolt/test_bolt_admission.py): built by the administration commands the system
database runs, with a fast fake password hash. Each change is a new object, as an applied
SECURITY entry makes one."""

from __future__ import annotations

from cluster.security.admin import execute_admin
from cluster.security.system import Command, SecurityState


def fake_hash(password: str) -> str:
    return "fake$" + password[::-1]


def fake_verify(password: str, hashed: str) -> bool:
    return hashed == fake_hash(password)


class Cluster:
    """The applied security state: an admin (password ``admin-pw``) and ``ann``
    (``ann-pass-1``, role reader)."""

    def __init__(self) -> None:
        self.state = SecurityState()
        self.state.apply(
            [Command("bootstrap_admin", {"name": "admin", "hash": fake_hash("admin-pw")})], 1
        )
        self.index = 1
        self.run(
            "CREATE USER ann SET PASSWORD 'ann-pass-1' CHANGE NOT REQUIRED",
            "GRANT ROLE reader TO ann",
        )

    def run(self, *queries: str) -> None:
        for query in queries:
            state = self.state.copy()
            result = execute_admin(
                state, "admin", query, {}, hasher=fake_hash, verifier=fake_verify
            )
            self.index += 1
            state.apply(result.commands, self.index)
            self.state = state
