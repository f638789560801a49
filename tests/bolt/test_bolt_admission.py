"""What the Bolt face remembers between a connection's statements: its token's session and
its graph access, through the node's shared admissions (``NodeSecurity.token_session`` and
``graph_restriction``, the ones the gRPC face uses). Remembered only while the applied
security state is the same object, so every change that would refuse a statement refuses the
connection's next one — a password change, a suspension, a drop, CHANGE REQUIRED, a DENY
ACCESS, a lost role, a new DENY — and so does the token's expiry; each statement still goes
to the query log with the same fields. No cluster: ``NodeBackend`` over a fake node, a
security state built by the administration commands the system database runs (fast fake
hash; tests/security/security_fakes.py, shared with the gRPC face's admission tests)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from cluster.bolt.backend import AccessMode, ConnectionInfo, Principal, TransactionOptions
from cluster.bolt.cluster_backend import NodeBackend, SessionPrincipal
from cluster.errors import QuiverError
from cluster.security import sessions
from cluster.security.node_security import NodeSecurity
from cluster.security.sessions import FORBIDDEN, UNAUTHORIZED
from proto import client_pb2
from tests.security.security_fakes import Cluster, fake_verify

CONNECTION = ConnectionInfo("127.0.0.1:5", "127.0.0.1:7687")
READ = TransactionOptions("neo4j", AccessMode.READ, ("quiver:1",))
CREDENTIALS_EXPIRED = "Neo.ClientError.Security.CredentialsExpired"


@dataclass
class FakeNode:
    """The read path of ``cluster.node.Node``: what each statement was restricted to."""

    cluster: Cluster
    id: int = 1
    privileges: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.config = SimpleNamespace(
            auth_max_failures=3,
            auth_lock_seconds=5.0,
            session_ttl_s=3600.0,
            query_log=False,
            query_log_literals=False,
        )
        self.sm = SimpleNamespace(security=lambda: self.cluster.state)

    def is_leader(self) -> bool:
        return False

    async def read(
        self,
        query: str,
        parameters: dict[str, Any],
        consistency: int,
        bookmarks: list[str],
        privileges: Any = None,
        deadline: float | None = None,
    ) -> Any:
        assert consistency == client_pb2.CONSISTENCY_CAUSAL and bookmarks == ["quiver:1"]
        self.privileges.append(privileges)
        return SimpleNamespace(columns=["one"], rows=[[1]], counters={}, bookmark="", query_type=0)


@dataclass
class Bolt:
    backend: NodeBackend
    node: FakeNode
    security: NodeSecurity
    logged: list[dict[str, Any]]

    def login(self, user: str = "ann", password: str = "ann-pass-1") -> Principal:
        return asyncio.run(self.backend.authenticate("basic", user, password, CONNECTION))

    def statement(self, principal: Principal, options: TransactionOptions = READ) -> str:
        """ "" when the statement answers, else its error's code."""

        async def run() -> None:
            await self.backend.run(principal, "RETURN 1 AS one", {"p": 1}, options, CONNECTION)

        try:
            asyncio.run(run())
        except QuiverError as error:
            return error.code
        return ""


@pytest.fixture
def cluster() -> Cluster:
    return Cluster()


@pytest.fixture
def bolt(tmp_path: Path, cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bolt]:
    monkeypatch.setattr(sessions, "verify_password", fake_verify)
    node = FakeNode(cluster)
    node.config.data_dir = tmp_path
    security = NodeSecurity(node)  # type: ignore[arg-type]
    logged: list[dict[str, Any]] = []

    async def log_query(**fields: Any) -> None:
        logged.append(fields)

    monkeypatch.setattr(security, "log_query", log_query)
    yield Bolt(NodeBackend(node, {}, security=security), node, security, logged)
    security.close()


@pytest.mark.parametrize(
    "change",
    [
        "ALTER USER ann SET PASSWORD 'ann-pass-2' CHANGE NOT REQUIRED",
        "ALTER USER ann SET STATUS SUSPENDED",
        "DROP USER ann",
    ],
)
def test_a_credential_change_refuses_the_connections_next_statement(
    bolt: Bolt, cluster: Cluster, change: str
) -> None:
    ann = bolt.login()
    assert [bolt.statement(ann) for _ in range(3)] == ["", "", ""]  # remembered now
    cluster.run(change)
    assert bolt.statement(ann) == UNAUTHORIZED


def test_change_required_refuses_the_connections_next_statement(
    bolt: Bolt, cluster: Cluster
) -> None:
    ann = bolt.login()
    assert bolt.statement(ann) == bolt.statement(ann) == ""
    cluster.run("ALTER USER ann SET PASSWORD CHANGE REQUIRED")
    assert bolt.statement(ann) == CREDENTIALS_EXPIRED


def test_deny_access_refuses_the_next_statement_and_a_revoke_restores_it(
    bolt: Bolt, cluster: Cluster
) -> None:
    ann = bolt.login()
    assert bolt.statement(ann) == bolt.statement(ann) == ""
    cluster.run("DENY ACCESS ON DATABASE * TO reader")
    assert bolt.statement(ann) == FORBIDDEN
    cluster.run("REVOKE DENY ACCESS ON DATABASE * FROM reader")
    assert bolt.statement(ann) == ""


def test_new_privileges_and_a_lost_role_reach_the_next_statement(
    bolt: Bolt, cluster: Cluster
) -> None:
    ann = bolt.login()
    assert bolt.statement(ann) == bolt.statement(ann) == ""
    assert bolt.node.privileges[-1].can_traverse_node({"Secret"})
    cluster.run("DENY TRAVERSE ON GRAPH * NODES Secret TO reader")
    assert bolt.statement(ann) == ""
    assert not bolt.node.privileges[-1].can_traverse_node({"Secret"})
    assert bolt.node.privileges[-1].can_traverse_node({"Person"})
    cluster.run("REVOKE ROLE reader FROM ann")
    assert bolt.statement(ann) == ""  # PUBLIC may still access the database...
    assert len(bolt.node.privileges) == 4
    assert not bolt.node.privileges[-1].can_traverse_node({"Person"})  # ...and sees nothing


def test_a_token_is_refused_once_it_expires(bolt: Bolt) -> None:
    now = [1_000_000.0]
    bolt.security.authenticator._clock = lambda: now[0]
    session = bolt.security.authenticator.issue(
        "ann", bolt.security.state().user("ann").credential_index
    )
    ann = SessionPrincipal("ann", ("reader",), session.token)
    assert bolt.statement(ann) == bolt.statement(ann) == ""
    now[0] = session.expires_at
    assert bolt.statement(ann) == UNAUTHORIZED


def test_every_statement_is_logged_with_its_user_database_and_outcome(
    bolt: Bolt, cluster: Cluster
) -> None:
    ann = bolt.login()
    assert bolt.statement(ann) == bolt.statement(ann) == ""
    cluster.run("DENY ACCESS ON DATABASE * TO reader")
    assert bolt.statement(ann) == FORBIDDEN
    assert [(r["user"], r["outcome"], r["rows"]) for r in bolt.logged] == [
        ("ann", "ok", 1),
        ("ann", "ok", 1),
        ("ann", FORBIDDEN, 0),
    ]
    for record in bolt.logged:
        assert record["impersonated"] == ""
        assert record["client"] == CONNECTION.client_address
        assert record["database"] == "neo4j"
        assert record["query"] == "RETURN 1 AS one"
        assert record["parameters"] == {"p": 1}
        assert isinstance(record["started"], float)
