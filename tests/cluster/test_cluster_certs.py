"""`quiver certs rotate` on a running three-node cluster, without restarts: new connections on
every listener (clients, peers, Bolt) present the new certificate, connections opened before
keep working, writes flow throughout, and the peers accept each other's new certificates,
also after a new CA replaced the old one and the old one stopped being trusted."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import neo4j
import pytest
from conftest import LocalCluster, quiver, start_cluster, wait_for
from cryptography import x509

from cluster import pki
from cluster.certs import CertificateReloader
from cluster.client import connect
from cluster.config import load_cluster
from cluster.errors import QuiverError

ROTATION_WAIT_S = 20.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    yield from start_cluster(tmp_path_factory.mktemp("certs"))


def _presented(address: str, client_cert: Path | None = None) -> x509.Certificate:
    """The certificate a listener presents to a new TLS connection (not verified here)."""
    host, port = address.rsplit(":", 1)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    if client_cert is not None:
        context.load_cert_chain(client_cert, client_cert.with_name("key.pem"))
    with (
        socket.create_connection((host, int(port)), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der)


def _node_serial(directory: Path, node_id: int) -> int:
    cert = directory / "nodes" / str(node_id) / "cert.pem"
    return x509.load_pem_x509_certificate(cert.read_bytes()).serial_number


def _listeners(directory: Path) -> list[tuple[int, str, Path | None]]:
    """(node, address, client certificate to present) for every listener of every node."""
    found: list[tuple[int, str, Path | None]] = []
    for node in load_cluster(directory).nodes:
        own_cert = directory / "nodes" / str(node.id) / "cert.pem"
        found += [(node.id, node.grpc, None), (node.id, node.bolt, None)]
        found.append((node.id, node.peer, own_cert))
    return found


def _all_present_the_files(directory: Path) -> bool:
    return all(
        _presented(address, cert).serial_number == _node_serial(directory, node_id)
        for node_id, address, cert in _listeners(directory)
    )


def _replicated_everywhere(directory: Path, tag: str) -> bool:
    """Whether every node answers a stale read with the node tagged `tag` (each through a new
    connection, verified with the current trust bundle)."""
    creds = json.loads((directory / "credentials.json").read_text())
    for node in load_cluster(directory).nodes:
        with connect(
            addresses=[node.grpc],
            ca=directory / "ca.pem",
            auth=(creds["user"], creds["password"]),
            timeout_s=5.0,
        ) as client:
            rows = client.run(
                "MATCH (w:Written {tag: $tag}) RETURN count(w) AS n",
                {"tag": tag},
                mode="read",
                consistency="stale",
            ).rows
            if rows != [[1]]:
                return False
    return True


class _Writer(threading.Thread):
    """Writes one node after another through a connection opened before the rotation."""

    def __init__(self, cluster: LocalCluster) -> None:
        super().__init__(daemon=True)
        self._client = cluster.node_client(1, timeout_s=10.0)
        self._finished = threading.Event()
        self.written = 0
        self.failures: list[str] = []

    def run(self) -> None:
        with self._client:
            while not self._finished.is_set() and len(self.failures) < 10:
                try:
                    self._client.run("CREATE (:Flow {n: $n})", {"n": self.written})
                    self.written += 1
                except QuiverError as error:
                    self.failures.append(f"{error.code}: {error}")

    def finish(self) -> None:
        self._finished.set()
        self.join(timeout=30)
        assert not self.is_alive()


def test_rotation_reaches_new_connections_while_old_ones_and_writes_go_on(
    cluster: LocalCluster,
) -> None:
    directory = cluster.directory
    wait_for("a leader", cluster.leader)
    before = {node_id: _node_serial(directory, node_id) for node_id in (1, 2, 3)}
    assert _all_present_the_files(directory)
    creds = json.loads((directory / "credentials.json").read_text())
    bolt_address = load_cluster(directory).node(2).bolt
    old_bolt = neo4j.GraphDatabase.driver(
        f"bolt://{bolt_address}",
        auth=(creds["user"], creds["password"]),
        encrypted=True,
        trusted_certificates=neo4j.TrustCustomCAs(str(directory / "ca.pem")),
        connection_timeout=10,
    )
    old_session = old_bolt.session(database="neo4j")
    assert old_session.run("RETURN 1 AS one").single()["one"] == 1  # type: ignore[index]
    old_client = cluster.node_client(3, timeout_s=10.0)
    assert old_client.run("RETURN 1", mode="read", consistency="stale").rows == [[1]]
    writer = _Writer(cluster)
    writer.start()
    try:
        wait_for("writes before the rotation", lambda: writer.written >= 5)

        # A new CA, trusted beside the old one, signs every node's new certificate.
        rotated = quiver("certs", "rotate", "--dir", str(directory), "--new-ca")
        assert rotated.returncode == 0, rotated.stderr
        after = {node_id: _node_serial(directory, node_id) for node_id in (1, 2, 3)}
        assert all(after[n] != before[n] for n in after)
        wait_for(
            "every listener to present its new certificate",
            lambda: _all_present_the_files(directory),
            ROTATION_WAIT_S,
        )
        # Old connections keep working; a new client verifies with the two-CA bundle.
        assert old_session.run("RETURN 2 AS two").single()["two"] == 2  # type: ignore[index]
        assert old_client.run("RETURN 2", mode="read", consistency="stale").rows == [[2]]
        with connect(directory) as fresh:
            fresh.run("CREATE (:Written {tag: 'new-ca'})")
        wait_for("the write on every node", lambda: _replicated_everywhere(directory, "new-ca"))

        # The old CA retired: the peers only trust the new one now, and still replicate.
        written = writer.written
        retired = quiver("certs", "rotate", "--dir", str(directory), "--retire-old-ca")
        assert retired.returncode == 0, retired.stderr
        assert "trusted CAs: 1" in retired.stdout
        wait_for("the second rotation", lambda: _all_present_the_files(directory), ROTATION_WAIT_S)
        with connect(directory) as fresh:
            fresh.run("CREATE (:Written {tag: 'retired'})")
        wait_for("the write on every node", lambda: _replicated_everywhere(directory, "retired"))
        wait_for("writes after the rotations", lambda: writer.written >= written + 5)
    finally:
        writer.finish()
        old_session.close()
        old_bolt.close()
        old_client.close()
    assert writer.failures == []
    assert writer.written >= 10


def test_rotate_refuses_a_directory_without_a_cluster(tmp_path: Path) -> None:
    result = quiver("certs", "rotate", "--dir", str(tmp_path))
    assert result.returncode != 0
    assert "Neo.ClientError" in result.stderr


def test_a_half_written_rotation_is_not_taken_up_until_the_pair_matches(tmp_path: Path) -> None:
    authority = pki.make_ca()
    pki.save(authority, tmp_path / "ca.pem", tmp_path / "ca.key")
    first = pki.issue_node(authority, 1)
    pki.save(first, tmp_path / "cert.pem", tmp_path / "key.pem")
    reloader = CertificateReloader(tmp_path / "ca.pem", tmp_path / "cert.pem", tmp_path / "key.pem")
    assert reloader.current.serial == first.cert.serial_number
    assert reloader.check() is None  # nothing changed
    second = pki.issue_node(authority, 1)
    # The rotation renamed the new key in, not yet the certificate: keep the old pair.
    pki.save(second, tmp_path / "unused.pem", tmp_path / "key.pem")
    assert reloader.check() is None
    assert reloader.current.serial == first.cert.serial_number
    (tmp_path / "key.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\ntorn")  # a torn write
    assert reloader.check() is None
    pki.save(second, tmp_path / "cert.pem", tmp_path / "key.pem")
    taken = reloader.check()
    assert taken is not None and taken.serial == second.cert.serial_number
    assert reloader.current.generation == taken.generation == 2
