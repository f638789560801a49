"""The ports a cluster listens on come from below the kernel's ephemeral range, so no
outgoing connection can hold one while its node restarts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from cluster import init
from cluster.init import InitError, free_ports


def test_listening_ports_are_distinct_free_and_below_the_ephemeral_range() -> None:
    low, _ = init._ephemeral_range()
    ports = free_ports(12)
    assert len(set(ports)) == 12
    assert all(init.LOWEST_LISTEN_PORT <= port < low for port in ports)
    for port in ports:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", port))


def test_an_outgoing_connection_never_takes_a_listening_port() -> None:
    """What failed before: a port handed out by binding to 0 is an ephemeral one, the kind
    the kernel gives an outgoing connection as its source port."""
    low, high = init._ephemeral_range()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", free_ports(1)[0]))
        server.listen()
        with socket.create_connection(server.getsockname()) as client:
            assert low <= client.getsockname()[1] <= high
            assert client.getsockname()[1] not in range(init.LOWEST_LISTEN_PORT, low)


def test_no_room_below_the_ephemeral_range_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    squeezed = tmp_path / "ip_local_port_range"
    squeezed.write_text("10500\t60999\n")
    monkeypatch.setattr(init, "EPHEMERAL_RANGE_FILE", squeezed)
    with pytest.raises(InitError, match="ephemeral port range starts at 10500"):
        free_ports(3)


def test_a_port_the_cluster_assigned_is_not_handed_out_again_while_unbound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A node that is down (or not started yet) leaves its port free but taken: a node added
    meanwhile, or a chaos proxy, must not get it. Before, the chaos harness picked its
    proxies' ports while the nodes' were assigned but unbound, and a soak saw a restarted
    node fail to bind its port 4 times, a proxy on it."""
    cluster = init.init_cluster(tmp_path / "q", nodes=3, zones=3)
    assigned = init.cluster_ports(cluster)
    assert len(assigned) == 12  # gRPC, peer, Bolt and metrics, each
    first = min(assigned)
    offsets = iter([first - init.LOWEST_LISTEN_PORT, *range(1, 12)])
    monkeypatch.setattr(init.secrets, "randbelow", lambda _: next(offsets))
    monkeypatch.setattr(init, "_bindable", lambda _: True)  # every node is down
    entry = init.add_node(tmp_path / "q")
    added = {
        int(address.rsplit(":", 1)[1])
        for address in (entry.grpc, entry.peer, entry.bolt, entry.metrics)
    }
    assert first not in added and not added & assigned
