"""Nemesis building blocks: process faults, partitions through fault proxies, fault schedules.

Owns: signalling one process (SIGKILL; SIGSTOP with a guaranteed SIGCONT), the arithmetic of
partitions (which directed links a symmetric, one-way, bridge or isolate partition cuts),
applying them as Toxiproxy toxics on per-link proxies, and seeded schedules of bounded fault
windows with a runner that always heals.

Must never: signal a process it was not given (a pid is checked against its start time, so a
reused pid is left alone), leave a process stopped or a partition in place after its owner
returns, or talk to anything but a loopback Toxiproxy API.
"""

from __future__ import annotations

import atexit
import contextlib
import enum
import json
import os
import random
import signal
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

# --- processes ------------------------------------------------------------------------------


class ProcessGone(Exception):
    """The process exited (or its pid now names another process)."""


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            text = stat.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields resume after ')'.
    fields = text[text.rfind(")") + 2 :].split()
    return int(fields[19])


@dataclass(slots=True, frozen=True)
class ProcessTarget:
    """A pid pinned to the process that held it when the target was made."""

    pid: int
    started: int | None

    @staticmethod
    def of(pid: int) -> ProcessTarget:
        started = _start_time(pid)
        if started is None:
            raise ProcessGone(f"no process {pid}")
        return ProcessTarget(pid, started)

    def alive(self) -> bool:
        return self.started is not None and _start_time(self.pid) == self.started

    def signal(self, signum: int) -> None:
        if not self.alive():
            raise ProcessGone(f"process {self.pid} is gone")
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError as error:
            raise ProcessGone(f"process {self.pid} is gone") from error


def kill(target: ProcessTarget) -> None:
    """SIGKILL: the process dies at once, losing whatever it had not made durable."""
    target.signal(signal.SIGKILL)


class _Paused:
    """Every process this module has stopped and not yet resumed; resumed at interpreter exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._targets: set[ProcessTarget] = set()
        atexit.register(self.resume_all)

    def add(self, target: ProcessTarget) -> None:
        with self._lock:
            self._targets.add(target)

    def discard(self, target: ProcessTarget) -> None:
        with self._lock:
            self._targets.discard(target)

    def resume_all(self) -> None:
        with self._lock:
            targets, self._targets = list(self._targets), set()
        for target in targets:
            with contextlib.suppress(ProcessGone):
                target.signal(signal.SIGCONT)

    def __len__(self) -> int:
        with self._lock:
            return len(self._targets)


PAUSED = _Paused()


def stop(target: ProcessTarget) -> None:
    """SIGSTOP; the process is remembered until :func:`resume` (or interpreter exit)."""
    PAUSED.add(target)
    try:
        target.signal(signal.SIGSTOP)
    except ProcessGone:
        PAUSED.discard(target)
        raise


def resume(target: ProcessTarget) -> None:
    """SIGCONT. A process that has meanwhile exited needs no resuming."""
    PAUSED.discard(target)
    with contextlib.suppress(ProcessGone):
        target.signal(signal.SIGCONT)


@contextlib.contextmanager
def paused(target: ProcessTarget) -> Iterator[ProcessTarget]:
    """Stopped for the body of the ``with``; resumed however the body ends."""
    stop(target)
    try:
        yield target
    finally:
        resume(target)


# --- partitions -----------------------------------------------------------------------------

Link = tuple[str, str]  # (sender, receiver): messages from sender to receiver are dropped


def symmetric(side_a: Collection[str], side_b: Collection[str]) -> frozenset[Link]:
    """Nobody on one side hears anybody on the other."""
    return one_way(side_a, side_b) | one_way(side_b, side_a)


def one_way(senders: Collection[str], receivers: Collection[str]) -> frozenset[Link]:
    """Messages from ``senders`` to ``receivers`` are lost; the other way still works."""
    return frozenset((s, r) for s in senders for r in receivers if s != r)


def isolate(node: str, nodes: Collection[str]) -> frozenset[Link]:
    """One node (the leader, typically) cut off from every other node, both ways."""
    return symmetric([node], [n for n in nodes if n != node])


def bridge(nodes: Sequence[str]) -> frozenset[Link]:
    """Two halves that cannot hear each other, and one node in the middle that hears both.

    Jepsen's bridge: with five nodes a, b | c | d, e — c is in both majorities.
    """
    if len(nodes) < 3:
        raise ValueError("a bridge needs at least three nodes")
    middle = len(nodes) // 2
    return symmetric(nodes[:middle], nodes[middle + 1 :])


def halves(nodes: Sequence[str], rng: random.Random) -> frozenset[Link]:
    """A random split into a majority and a minority."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    minority = len(nodes) // 2
    return symmetric(shuffled[:minority], shuffled[minority:])


class ToxiproxyError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"toxiproxy answered {status}: {body}")
        self.status = status


class ToxiproxyClient:
    """A small, typed client of the Toxiproxy HTTP API (stdlib only)."""

    REQUEST_TIMEOUT_S = 10.0

    def __init__(self, address: str) -> None:
        self.base = f"http://{address}"

    def request(self, method: str, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.base + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json", "User-Agent": "quiver-chaos"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.REQUEST_TIMEOUT_S) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            raise ToxiproxyError(error.code, error.read().decode(errors="replace")) from error
        return json.loads(payload) if payload else None

    def create_proxy(self, name: str, listen: str, upstream: str) -> dict[str, Any]:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": True}
        result: dict[str, Any] = self.request("POST", "/proxies", body)
        return result

    def proxies(self) -> dict[str, Any]:
        result: dict[str, Any] = self.request("GET", "/proxies")
        return result

    def set_enabled(self, name: str, enabled: bool) -> None:
        self.request("POST", f"/proxies/{name}", {"enabled": enabled})

    def set_upstream(self, name: str, upstream: str) -> None:
        """Point a proxy at another upstream (Toxiproxy restarts it; its toxics stay)."""
        self.request("POST", f"/proxies/{name}", {"upstream": upstream})

    def add_toxic(
        self, proxy: str, name: str, kind: str, stream: str, attributes: dict[str, int]
    ) -> None:
        toxic = {"name": name, "type": kind, "stream": stream, "attributes": attributes}
        try:
            self.request("POST", f"/proxies/{proxy}/toxics", toxic)
        except ToxiproxyError as error:
            if error.status != 409:  # already in place: applying twice is applying once
                raise

    def remove_toxic(self, proxy: str, name: str) -> None:
        try:
            self.request("DELETE", f"/proxies/{proxy}/toxics/{name}")
        except ToxiproxyError as error:
            if error.status != 404:
                raise


PARTITION_TOXIC = "quiver-partition"


@dataclass
class ProxyNetwork:
    """Nodes that reach each other only through one proxy per directed link.

    ``proxy_name(a, b)`` names the proxy that ``a`` connects through to reach ``b``. On that
    connection, ``upstream`` carries a's messages to b and ``downstream`` b's replies to a.
    So "b no longer hears a" drops the upstream of proxy (a, b) and the downstream of
    proxy (b, a): every byte a sends to b is lost, on either connection.
    """

    client: ToxiproxyClient
    nodes: Sequence[str]
    proxy_name: Callable[[str, str], str] = lambda a, b: f"{a}->{b}"
    cut: set[Link] = field(default_factory=set)

    def _toxics_for(self, link: Link) -> list[tuple[str, str]]:
        sender, receiver = link
        return [
            (self.proxy_name(sender, receiver), "upstream"),
            (self.proxy_name(receiver, sender), "downstream"),
        ]

    def partition(self, links: Collection[Link]) -> None:
        """Drop all traffic on ``links`` (in addition to whatever is already cut)."""
        for link in links:
            for proxy, stream in self._toxics_for(link):
                # timeout 0: data is dropped and the connection held open, as a silent
                # network does; a closed connection would tell the peer too much.
                self.client.add_toxic(
                    proxy, f"{PARTITION_TOXIC}-{stream}", "timeout", stream, {"timeout": 0}
                )
            self.cut.add(link)

    def heal(self) -> None:
        """Remove every partition toxic from every link proxy, including ones not recorded."""
        for sender in self.nodes:
            for receiver in self.nodes:
                if sender == receiver:
                    continue
                for proxy, stream in self._toxics_for((sender, receiver)):
                    self.client.remove_toxic(proxy, f"{PARTITION_TOXIC}-{stream}")
        self.cut.clear()

    @contextlib.contextmanager
    def partitioned(self, links: Collection[Link]) -> Iterator[None]:
        self.partition(links)
        try:
            yield
        finally:
            self.heal()


# --- schedules ------------------------------------------------------------------------------


class FaultKind(enum.Enum):
    KILL = "kill"
    PAUSE = "pause"
    PARTITION = "partition"
    LATENCY = "latency"


@dataclass(slots=True, frozen=True)
class FaultWindow:
    start_s: float
    duration_s: float
    kind: FaultKind
    seed: int  # for the choices inside the fault (which node, which split)

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


@dataclass(slots=True, frozen=True)
class ScheduleLimits:
    total_s: float
    min_fault_s: float = 1.0
    max_fault_s: float = 10.0
    min_gap_s: float = 1.0
    max_gap_s: float = 5.0
    # A bound on windows no matter how long the run, so a schedule is always small.
    max_windows: int = 10_000

    def __post_init__(self) -> None:
        if not 0 < self.min_fault_s <= self.max_fault_s:
            raise ValueError("need 0 < min_fault_s <= max_fault_s")
        if not 0 <= self.min_gap_s <= self.max_gap_s:
            raise ValueError("need 0 <= min_gap_s <= max_gap_s")


def schedule(
    limits: ScheduleLimits, kinds: Sequence[FaultKind], seed: int
) -> tuple[FaultWindow, ...]:
    """One fault at a time: gap, fault, gap, fault, ... all ending by ``total_s``.

    The same seed gives the same schedule.
    """
    if not kinds:
        return ()
    rng = random.Random(seed)
    windows: list[FaultWindow] = []
    now = 0.0
    while len(windows) < limits.max_windows:
        start = now + rng.uniform(limits.min_gap_s, limits.max_gap_s)
        duration = rng.uniform(limits.min_fault_s, limits.max_fault_s)
        if start + duration > limits.total_s:
            break
        windows.append(FaultWindow(start, duration, rng.choice(list(kinds)), rng.getrandbits(32)))
        now = start + duration
    return tuple(windows)


Apply = Callable[[FaultWindow], Callable[[], None]]


def run_schedule(
    windows: Sequence[FaultWindow],
    apply: Apply,
    stop: threading.Event,
    clock: Callable[[], float] = time.monotonic,
) -> list[tuple[FaultWindow, float, float]]:
    """Apply each window's fault at its start and heal it at its end, relative to now.

    ``apply(window)`` starts a fault and returns the function that heals it. The heal runs
    however the wait ends — its end, ``stop`` being set, or an exception. Returns what ran:
    (window, applied at, healed at), in seconds since the run began.
    """
    began = clock()
    ran: list[tuple[FaultWindow, float, float]] = []
    for window in windows:
        if stop.wait(max(0.0, began + window.start_s - clock())):
            break
        applied_at = clock() - began
        heal = apply(window)
        try:
            stop.wait(max(0.0, began + window.end_s - clock()))
        finally:
            heal()
            ran.append((window, applied_at, clock() - began))
        if stop.is_set():
            break
    return ran
