"""Every listener speaks TLS: a peer whose certificate comes from another CA, a peer whose
certificate (from the cluster CA) names no member, a peer without a certificate and a
plaintext client are all refused; a real client negotiates TLS 1.3."""

from __future__ import annotations

import socket
import ssl

import grpc
import pytest
from conftest import LocalCluster, wait_for

from cluster import pki
from cluster.config import load_cluster
from cluster.transport import message_to_pb
from proto import client_pb2, client_pb2_grpc, raft_pb2, raft_pb2_grpc
from raft.types import Message, MessageType


def _send_as(address: str, ca: bytes, client: pki.Authority | None, sender: int) -> grpc.RpcError:
    if client is None:
        credentials = grpc.ssl_channel_credentials(root_certificates=ca)
    else:
        key, cert = client.pem()
        credentials = grpc.ssl_channel_credentials(ca, key, cert)
    heartbeat = Message(type=MessageType.HEARTBEAT, to=1, sender=sender, term=999)
    batch = raft_pb2.MessageBatch(messages=[message_to_pb(heartbeat)])
    with grpc.secure_channel(address, credentials) as channel:
        stub = raft_pb2_grpc.RaftTransportStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.Send(iter([batch]), timeout=5)
    return refused.value  # type: ignore[return-value]


def test_peers_without_a_member_certificate_of_the_cluster_ca_are_refused(
    local_cluster: LocalCluster,
) -> None:
    leader = wait_for("a leader", local_cluster.leader)
    cluster = load_cluster(local_cluster.directory)
    ca = cluster.ca_path.read_bytes()
    target = cluster.node(1).peer
    term_before = local_cluster.statuses()[1].term

    stranger_ca = pki.make_ca("Another CA")
    impostor = pki.issue_node(stranger_ca, 2)  # claims to be member n2
    refused = _send_as(target, ca, impostor, sender=2)
    assert refused.code() == grpc.StatusCode.UNAVAILABLE  # the TLS handshake fails

    cluster_ca = pki.load(cluster.ca_path, local_cluster.directory / "ca.key")
    outsider = pki.issue_node(cluster_ca, 99)
    refused = _send_as(target, ca, outsider, sender=99)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED

    refused = _send_as(target, ca, None, sender=2)  # no client certificate at all
    assert refused.code() == grpc.StatusCode.UNAVAILABLE

    # A real member cannot speak for another one either.
    member_three = pki.issue_node(cluster_ca, 3)
    refused = _send_as(target, ca, member_three, sender=2)
    assert refused.code() == grpc.StatusCode.PERMISSION_DENIED

    # None of it disturbed the cluster: the term-999 heartbeats never reached the core.
    assert local_cluster.leader() == leader
    assert local_cluster.statuses()[1].term == term_before


def test_plaintext_clients_are_refused_and_tls_13_is_negotiated(
    local_cluster: LocalCluster,
) -> None:
    wait_for("a leader", local_cluster.leader)
    cluster = load_cluster(local_cluster.directory)
    for node in cluster.nodes:
        for address in (node.grpc, node.peer):
            with grpc.insecure_channel(address) as channel:
                stub = client_pb2_grpc.QueryStub(channel)
                with pytest.raises(grpc.RpcError) as refused:
                    list(stub.Run(client_pb2.RunRequest(query="RETURN 1"), timeout=5))
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE  # type: ignore[attr-defined]
        host, port = node.grpc.split(":")
        context = ssl.create_default_context(cafile=str(cluster.ca_path))
        context.set_alpn_protocols(["h2"])
        with (
            socket.create_connection((host, int(port)), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            assert tls.version() == "TLSv1.3"
