"""Authentication cases on a real three-node cluster whose session tokens live only a few
seconds (``session_ttl_s`` in every node.json): a token expires on every node and the client
logs in again; a password change (by an admin, or by the user) revokes the tokens issued
before it on every node; a plaintext client is refused on every listener, Bolt included."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import neo4j
import pytest
from conftest import ELECTION_TICKS, TICK_MS, LocalCluster, quiver, start_cluster, wait_for

from cluster.client import connect
from cluster.config import load_cluster
from cluster.errors import QuiverError, from_rpc_error
from proto import client_pb2, client_pb2_grpc

UNAUTHORIZED = "Neo.ClientError.Security.Unauthorized"
SESSION_TTL_S = 3.0
SESSION_METADATA = "quiver-session"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    base = tmp_path_factory.mktemp("tokens")
    directory = base / "q"
    made = quiver(
        "init",
        "--dir",
        str(directory),
        "--tick-ms",
        str(TICK_MS),
        "--election-ticks",
        str(ELECTION_TICKS),
    )
    assert made.returncode == 0, made.stderr
    for config in directory.glob("nodes/*/node.json"):
        doc = json.loads(config.read_text())
        doc["session_ttl_s"] = SESSION_TTL_S
        config.write_text(json.dumps(doc))
    yield from start_cluster(base)


def _basic(user: str, password: str) -> tuple[str, str]:
    return ("authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())


def _run(directory: Path, node_id: int, metadata: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    """One Run with exactly this metadata on one node; its trailing metadata."""
    address = load_cluster(directory).node(node_id).grpc
    credentials = grpc.ssl_channel_credentials((directory / "ca.pem").read_bytes())
    with grpc.secure_channel(address, credentials) as channel:
        request = client_pb2.RunRequest(
            query="RETURN 1",
            access_mode=client_pb2.ACCESS_MODE_READ,
            consistency=client_pb2.CONSISTENCY_STALE,
        )
        call = client_pb2_grpc.QueryStub(channel).Run(request, metadata=metadata, timeout=10)
        list(call)
        return dict(call.trailing_metadata() or ())


def _refusal(directory: Path, node_id: int, token: str) -> str:
    """The refusal's message for a call with this token on this node ("" when accepted)."""
    try:
        _run(directory, node_id, ((SESSION_METADATA, token),))
    except grpc.RpcError as error:
        quiver_error = from_rpc_error(error)  # type: ignore[arg-type]
        assert quiver_error.code == UNAUTHORIZED, quiver_error
        return str(quiver_error)
    return ""


def _login(cluster: LocalCluster, user: str, password: str) -> str:
    """A session token for `user`, once every node knows the user."""
    for node_id in (1, 2, 3):
        wait_for(
            f"{user} on n{node_id}",
            lambda n=node_id: _can_log_in(cluster.directory, n, user, password),
        )
    return str(_run(cluster.directory, 1, (_basic(user, password),))[SESSION_METADATA])


def _can_log_in(directory: Path, node_id: int, user: str, password: str) -> bool:
    try:
        _run(directory, node_id, (_basic(user, password),))
    except grpc.RpcError:
        return False
    return True


def test_tokens_expire_on_every_node_and_the_client_logs_in_again(cluster: LocalCluster) -> None:
    wait_for("a leader", cluster.leader)
    cluster.client.system("CREATE USER tess SET PASSWORD 'tess-pass-1' CHANGE NOT REQUIRED")
    token = _login(cluster, "tess", "tess-pass-1")
    issued = time.monotonic()
    for node_id in (1, 2, 3):
        assert _refusal(cluster.directory, node_id, token) == ""
    with connect(cluster.directory, auth=("tess", "tess-pass-1"), timeout_s=5.0) as tess:
        assert tess.run("RETURN 1", mode="read", consistency="stale").rows == [[1]]
        for node_id in (1, 2, 3):
            wait_for(
                f"the token to expire on n{node_id}",
                lambda n=node_id: "expired" in _refusal(cluster.directory, n, token),
                deadline_s=SESSION_TTL_S + 10,
            )
        assert time.monotonic() - issued >= SESSION_TTL_S - 0.5  # not refused before its time
        # The client's credentials still work past the token's lifetime.
        assert tess.run("RETURN 2", mode="read", consistency="linearizable").rows == [[2]]


def test_a_password_change_revokes_earlier_tokens_on_every_node(cluster: LocalCluster) -> None:
    wait_for("a leader", cluster.leader)
    admin = cluster.client
    admin.system("CREATE USER rex SET PASSWORD 'rex-pass-1' CHANGE NOT REQUIRED")
    by_admin = _login(cluster, "rex", "rex-pass-1")
    admin.system("ALTER USER rex SET PASSWORD 'rex-pass-2' CHANGE NOT REQUIRED")
    for node_id in (1, 2, 3):
        wait_for(
            f"the revocation on n{node_id}",
            lambda n=node_id: "revoked" in _refusal(cluster.directory, n, by_admin),
        )
    assert not _can_log_in(cluster.directory, 2, "rex", "rex-pass-1")
    by_user = _login(cluster, "rex", "rex-pass-2")
    with connect(cluster.directory, auth=("rex", "rex-pass-2"), timeout_s=5.0) as rex:
        rex.system("ALTER CURRENT USER SET PASSWORD FROM 'rex-pass-2' TO 'rex-pass-3'")
    for node_id in (1, 2, 3):
        wait_for(
            f"the revocation on n{node_id}",
            lambda n=node_id: "revoked" in _refusal(cluster.directory, n, by_user),
        )
    with connect(cluster.directory, auth=("rex", "rex-pass-3"), timeout_s=5.0) as rex:
        assert rex.run("RETURN 3", mode="read", consistency="linearizable").rows == [[3]]
    with (
        connect(cluster.directory, auth=("rex", "rex-pass-2"), timeout_s=5.0) as old,
        pytest.raises(QuiverError) as refused,
    ):
        old.run("RETURN 4", mode="read", consistency="linearizable")
    assert refused.value.code == UNAUTHORIZED


def test_plaintext_clients_are_refused_on_every_listener(cluster: LocalCluster) -> None:
    wait_for("a leader", cluster.leader)
    creds = json.loads((cluster.directory / "credentials.json").read_text())
    for node in load_cluster(cluster.directory).nodes:
        for address in (node.grpc, node.peer):
            with grpc.insecure_channel(address) as channel:
                stub = client_pb2_grpc.QueryStub(channel)
                with pytest.raises(grpc.RpcError) as refused:
                    list(stub.Run(client_pb2.RunRequest(query="RETURN 1"), timeout=5))
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        with (
            neo4j.GraphDatabase.driver(
                f"bolt://{node.bolt}",
                auth=(creds["user"], creds["password"]),
                encrypted=False,
                connection_timeout=3,
            ) as plaintext,
            pytest.raises(neo4j.exceptions.DriverError),
        ):
            plaintext.verify_connectivity()
