"""Nemesis building blocks: process signals, partitions through proxies, fault schedules."""

from __future__ import annotations

import asyncio
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.nemesis import (
    PAUSED,
    FaultKind,
    FaultWindow,
    ProcessGone,
    ProcessTarget,
    ProxyNetwork,
    ScheduleLimits,
    ToxiproxyClient,
    bridge,
    halves,
    isolate,
    kill,
    one_way,
    paused,
    run_schedule,
    schedule,
    symmetric,
)
from chaos.toxiproxy import BackgroundToxiproxy

DEADLINE_S = 10.0


def wait_for(condition: Callable[[], bool], deadline_s: float = DEADLINE_S) -> bool:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        text = stat.read()
    return text[text.rfind(")") + 2]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=DEADLINE_S)


# --- processes ------------------------------------------------------------------------------


def test_kill_ends_the_process_with_sigkill(sleeper: subprocess.Popen[bytes]) -> None:
    target = ProcessTarget.of(sleeper.pid)
    kill(target)
    assert sleeper.wait(timeout=DEADLINE_S) == -9
    with pytest.raises(ProcessGone):
        kill(target)


def test_paused_process_is_stopped_inside_and_resumed_after(
    sleeper: subprocess.Popen[bytes],
) -> None:
    target = ProcessTarget.of(sleeper.pid)
    with paused(target):
        assert wait_for(lambda: process_state(sleeper.pid) == "T")
        assert len(PAUSED) == 1
    assert wait_for(lambda: process_state(sleeper.pid) in "SR")
    assert len(PAUSED) == 0


def test_paused_process_is_resumed_even_when_the_body_fails(
    sleeper: subprocess.Popen[bytes],
) -> None:
    target = ProcessTarget.of(sleeper.pid)
    with pytest.raises(RuntimeError), paused(target):
        assert wait_for(lambda: process_state(sleeper.pid) == "T")
        raise RuntimeError("the test failed while the node was paused")
    assert wait_for(lambda: process_state(sleeper.pid) in "SR")


def test_resume_all_resumes_whatever_is_left_stopped(sleeper: subprocess.Popen[bytes]) -> None:
    from chaos.nemesis import stop

    stop(ProcessTarget.of(sleeper.pid))
    assert wait_for(lambda: process_state(sleeper.pid) == "T")
    PAUSED.resume_all()  # what atexit runs
    assert wait_for(lambda: process_state(sleeper.pid) in "SR")


def test_a_reused_pid_is_not_signalled(sleeper: subprocess.Popen[bytes]) -> None:
    target = ProcessTarget.of(sleeper.pid)
    impostor = ProcessTarget(target.pid, (target.started or 0) + 1)
    with pytest.raises(ProcessGone):
        kill(impostor)
    assert sleeper.poll() is None


# --- partition arithmetic -------------------------------------------------------------------

NODES = ["n1", "n2", "n3", "n4", "n5"]


def test_symmetric_partition_cuts_both_directions_between_sides() -> None:
    cut = symmetric(["n1", "n2"], ["n3"])
    assert cut == {("n1", "n3"), ("n2", "n3"), ("n3", "n1"), ("n3", "n2")}


def test_one_way_partition_cuts_one_direction_only() -> None:
    assert one_way(["n1"], ["n2", "n3"]) == {("n1", "n2"), ("n1", "n3")}


def test_isolate_cuts_a_node_from_everyone_else() -> None:
    cut = isolate("n2", NODES)
    assert len(cut) == 8 and all("n2" in link for link in cut)


def test_bridge_keeps_the_middle_node_connected_to_both_halves() -> None:
    cut = bridge(NODES)
    assert not any("n3" in link for link in cut)
    assert ("n1", "n4") in cut and ("n5", "n2") in cut and ("n1", "n2") not in cut
    # Both n1-n2-n3 and n3-n4-n5 are majorities that can each elect a leader.


@settings(max_examples=50, deadline=None, derandomize=True)
@given(st.integers(3, 9), st.integers(0, 2**32 - 1))
def test_halves_split_into_a_connected_majority_and_minority(size: int, seed: int) -> None:
    nodes = [f"n{i}" for i in range(size)]
    cut = halves(nodes, random.Random(seed))
    reachable = {n: {m for m in nodes if m != n and (n, m) not in cut} for n in nodes}
    sides = {frozenset({n, *reachable[n]}) for n in nodes}
    assert len(sides) == 2
    assert sorted(len(side) for side in sides) == [size // 2, size - size // 2]


# --- partitions through the proxy -----------------------------------------------------------


class Node:
    """A stand-in node: records every byte it receives and answers each read with 'ack'."""

    def __init__(self) -> None:
        self.received = bytearray()
        self.server: asyncio.Server | None = None

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(4096):
                self.received += data
                writer.write(b"ack")
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


@pytest.fixture
def network() -> Iterator[tuple[ProxyNetwork, dict[str, Node], BackgroundToxiproxy]]:
    names = ["a", "b", "c"]
    with BackgroundToxiproxy() as background:
        nodes = {name: Node() for name in names}
        client = ToxiproxyClient(f"{background.host}:{background.port}")
        for node in nodes.values():
            node.server = background.run(asyncio.start_server(node.handle, "127.0.0.1", 0))
        for sender in names:
            for receiver in names:
                if sender != receiver:
                    server = nodes[receiver].server
                    assert server is not None
                    port = server.sockets[0].getsockname()[1]
                    client.create_proxy(f"{sender}->{receiver}", "127.0.0.1:0", f"127.0.0.1:{port}")
        yield ProxyNetwork(client, names), nodes, background


def send_through(net: ProxyNetwork, sender: str, receiver: str, message: bytes) -> bytes:
    """Send from sender to receiver via their proxy; return the replies seen within 0.3 s."""
    listen = net.client.proxies()[f"{sender}->{receiver}"]["listen"]
    host, port = listen.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=DEADLINE_S) as sock:
        sock.sendall(message)
        sock.settimeout(0.3)
        try:
            return sock.recv(100)
        except TimeoutError:
            return b""


def test_isolating_a_node_drops_its_traffic_both_ways_until_healed(
    network: tuple[ProxyNetwork, dict[str, Node], BackgroundToxiproxy],
) -> None:
    net, nodes, _ = network
    with net.partitioned(isolate("a", ["a", "b", "c"])):
        assert send_through(net, "a", "b", b"a1") == b""
        assert send_through(net, "b", "a", b"b1") == b""
        assert send_through(net, "b", "c", b"b2") == b"ack"
    assert b"a1" not in nodes["b"].received and b"b1" not in nodes["a"].received
    assert nodes["c"].received == b"b2"
    assert send_through(net, "a", "b", b"a3") == b"ack"
    assert send_through(net, "b", "a", b"b3") == b"ack"


def test_one_way_partition_lets_the_other_direction_through(
    network: tuple[ProxyNetwork, dict[str, Node], BackgroundToxiproxy],
) -> None:
    net, nodes, _ = network
    net.partition(one_way(["a"], ["b"]))  # b no longer hears a
    try:
        assert send_through(net, "a", "b", b"from-a") == b""
        # b's message reaches a, but a's reply to b is lost.
        assert send_through(net, "b", "a", b"from-b") == b""
        assert wait_for(lambda: bytes(nodes["a"].received) == b"from-b")
        assert nodes["b"].received == b""
    finally:
        net.heal()
    assert send_through(net, "a", "b", b"again") == b"ack"


# --- schedules ------------------------------------------------------------------------------


@settings(max_examples=100, deadline=None, derandomize=True)
@given(
    st.floats(1, 600),
    st.floats(0.1, 5),
    st.floats(0, 20),
    st.floats(0, 3),
    st.integers(0, 2**32 - 1),
)
def test_schedules_are_bounded_sequential_and_reproducible(
    total: float, min_fault: float, extra: float, gap: float, seed: int
) -> None:
    limits = ScheduleLimits(total, min_fault, min_fault + extra, gap, gap * 2)
    windows = schedule(limits, list(FaultKind), seed)
    assert windows == schedule(limits, list(FaultKind), seed)
    previous_end = 0.0
    for window in windows:
        assert limits.min_fault_s <= window.duration_s <= limits.max_fault_s
        assert window.start_s >= previous_end + limits.min_gap_s - 1e-9
        assert window.end_s <= total
        previous_end = window.end_s


def test_run_schedule_applies_then_heals_each_window_in_order() -> None:
    windows = [
        FaultWindow(0.0, 0.05, FaultKind.PAUSE, 1),
        FaultWindow(0.1, 0.05, FaultKind.PARTITION, 2),
    ]
    log: list[str] = []

    def apply(window: FaultWindow) -> Callable[[], None]:
        log.append(f"apply {window.kind.value}")
        return lambda: log.append(f"heal {window.kind.value}")

    ran = run_schedule(windows, apply, threading.Event())
    assert log == ["apply pause", "heal pause", "apply partition", "heal partition"]
    assert all(healed >= applied + 0.04 for _, applied, healed in ran)


def test_run_schedule_heals_when_stopped_mid_fault() -> None:
    stop = threading.Event()
    healed = threading.Event()

    def apply(_window: FaultWindow) -> Callable[[], None]:
        stop.set()  # someone stops the run while the fault is in place
        return healed.set

    started = time.monotonic()
    ran = run_schedule([FaultWindow(0.0, 60.0, FaultKind.KILL, 0)], apply, stop)
    assert healed.is_set() and len(ran) == 1
    assert time.monotonic() - started < 5.0
