"""Network-namespace helpers: only as root with iproute2 (nftables/iptables tests need them too).

Every namespace is named quiver-chaos-<tag>-*, every address lives inside one, and each test
checks that its namespaces are gone afterwards, including after a failing body.
"""

from __future__ import annotations

import select
import sys
import time
from collections.abc import Iterator

import pytest

from chaos import netns
from chaos.netns import NetnsLab, list_namespaces

pytestmark = pytest.mark.skipif(not netns.available(), reason="needs root and iproute2")

READY_TIMEOUT_S = 10.0

SERVER = """
import socket
listener = socket.socket()
listener.bind(({host!r}, 0))
listener.listen(16)
print(listener.getsockname()[1], flush=True)
while True:
    connection, _ = listener.accept()
    connection.close()
"""

UDP_RECEIVER = """
import socket
receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
receiver.bind(({host!r}, 0))
print(receiver.getsockname()[1], flush=True)
print(receiver.recvfrom(100)[0].decode(), flush=True)
"""

UDP_SEND = """
import socket
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"hello-from-b", ({host!r}, {port}))
"""


@pytest.fixture
def lab() -> Iterator[NetnsLab]:
    with NetnsLab() as made:
        yield made
    assert not [name for name in list_namespaces() if name.startswith(made.prefix)]


def start_server(lab: NetnsLab, namespace: str, host: str) -> int:
    process = lab.popen(namespace, [sys.executable, "-c", SERVER.format(host=host)])
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], READY_TIMEOUT_S)
    assert ready, "the server in the namespace did not start in time"
    return int(process.stdout.readline())


def test_linked_namespaces_reach_each_other_and_not_the_host(lab: NetnsLab) -> None:
    a, b = lab.namespace("a"), lab.namespace("b")
    link = lab.link(a, b)
    port = start_server(lab, b, link.b)
    assert lab.can_connect(a, link.b, port)
    # The host never got the addresses: they exist only inside the lab.
    assert link.b not in netns._run(["ip", "addr"]).stdout


def test_teardown_removes_everything_even_when_the_body_fails() -> None:
    made: NetnsLab | None = None
    with pytest.raises(RuntimeError), NetnsLab() as lab:
        made = lab
        a, b = lab.namespace("a"), lab.namespace("b")
        lab.link(a, b)
        lab.popen(a, [sys.executable, "-c", "import time; time.sleep(60)"])
        raise RuntimeError("the test failed mid-way")
    assert made is not None
    assert not [name for name in list_namespaces() if name.startswith(made.prefix)]
    assert made.processes == []


def test_namespaces_outside_the_lab_are_refused(lab: NetnsLab) -> None:
    a = lab.namespace("a")
    with pytest.raises(netns.NetnsError):
        lab.link(a, "some-other-namespace")


@pytest.mark.skipif(not netns.have("nft"), reason="needs nftables")
def test_nft_drop_cuts_one_direction_until_healed(lab: NetnsLab) -> None:
    a, b = lab.namespace("a"), lab.namespace("b")
    link = lab.link(a, b)
    port_b = start_server(lab, b, link.b)
    port_a = start_server(lab, a, link.a)
    lab.nft_drop(b, source=link.a)
    assert not lab.can_connect(a, link.b, port_b, timeout_s=0.5)
    # b -> a still flows: a datagram from b reaches a (a TCP probe cannot show this, as
    # a's SYN-ACK back to b is dropped at b's input).
    receiver = lab.popen(a, [sys.executable, "-c", UDP_RECEIVER.format(host=link.a)])
    assert receiver.stdout is not None
    ready, _, _ = select.select([receiver.stdout], [], [], READY_TIMEOUT_S)
    assert ready
    udp_port = int(receiver.stdout.readline())
    lab.run(b, [sys.executable, "-c", UDP_SEND.format(host=link.a, port=udp_port)])
    ready, _, _ = select.select([receiver.stdout], [], [], READY_TIMEOUT_S)
    assert ready and receiver.stdout.readline().strip() == b"hello-from-b"
    lab.nft_heal(b)
    assert lab.can_connect(a, link.b, port_b)
    assert lab.can_connect(b, link.a, port_a)


@pytest.mark.skipif(not netns.have("iptables"), reason="needs iptables")
def test_iptables_statistic_loss_drops_everything_at_probability_one(lab: NetnsLab) -> None:
    a, b = lab.namespace("a"), lab.namespace("b")
    link = lab.link(a, b)
    port = start_server(lab, b, link.b)
    lab.iptables_loss(b, 1.0)
    started = time.monotonic()
    assert not lab.can_connect(a, link.b, port, timeout_s=0.5)
    assert time.monotonic() - started < 5.0
    lab.iptables_heal(b)
    assert lab.can_connect(a, link.b, port)
