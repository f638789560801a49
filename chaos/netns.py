"""Real network faults for root: network namespaces, veth links, nftables drops, iptables loss.

Owns a *lab*: a set of network namespaces named ``quiver-chaos-<tag>-<name>``, veth links
whose both ends (and every address) live inside those namespaces, the processes started in
them, and the nftables/iptables rules that partition them or drop a fraction of packets.
Teardown deletes every namespace the lab made — which removes its links, addresses and rules
with it — and kills its processes, even when the test body failed.

This kernel has no ``netem``: delay, if wanted, needs NFQUEUE; latency belongs to the proxy.

Must never: touch the host's own namespace (no interface, address, route or rule outside the
lab's namespaces), name a namespace without the ``quiver-`` prefix, or run without root.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

NAMESPACE_PREFIX = "quiver-chaos-"
COMMAND_TIMEOUT_S = 10.0
PROCESS_STOP_TIMEOUT_S = 5.0
MAX_NAMESPACES_PER_LAB = 64
# Link i gets 10.237.i.0/30: .1 on the first namespace, .2 on the second.
LINK_SUBNET = "10.237"


class NetnsError(Exception):
    """A command failed; carries its stderr."""


def is_root() -> bool:
    return os.geteuid() == 0


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def available() -> bool:
    """Namespaces can be made here: root and iproute2."""
    return is_root() and have("ip")


def _run(args: Sequence[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(
            list(args), capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired as error:
        raise NetnsError(f"{' '.join(args)}: timed out after {COMMAND_TIMEOUT_S}s") from error
    if check and result.returncode != 0:
        raise NetnsError(f"{' '.join(args)}: {result.stderr.strip()}")
    return result


def list_namespaces() -> list[str]:
    output = _run(["ip", "netns", "list"]).stdout
    return [line.split()[0] for line in output.splitlines() if line.strip()]


def cleanup_stale(prefix: str = NAMESPACE_PREFIX) -> list[str]:
    """Delete namespaces a crashed run left behind (only those under the chaos prefix)."""
    if not prefix.startswith(NAMESPACE_PREFIX):
        raise ValueError(f"only namespaces under {NAMESPACE_PREFIX!r} may be cleaned up")
    removed = []
    for name in list_namespaces():
        if name.startswith(prefix):
            _run(["ip", "netns", "delete", name], check=False)
            removed.append(name)
    return removed


@dataclass(slots=True, frozen=True)
class LinkAddresses:
    a: str
    b: str
    a_interface: str
    b_interface: str


_LIVE_LABS: set[NetnsLab] = set()
_LIVE_LOCK = threading.Lock()


def _teardown_live_labs() -> None:
    with _LIVE_LOCK:
        labs = list(_LIVE_LABS)
    for lab in labs:
        lab.teardown()


atexit.register(_teardown_live_labs)


class NetnsLab:
    """Namespaces, links and rules for one test; a context manager that always tears down.

    >>> with NetnsLab() as lab:
    ...     a, b = lab.namespace("a"), lab.namespace("b")
    ...     link = lab.link(a, b)
    ...     lab.nft_drop(b, source=link.a)     # b stops hearing a
    """

    def __init__(self, tag: str | None = None) -> None:
        if not available():
            raise NetnsError("network namespaces need root and iproute2")
        self.tag = tag or uuid.uuid4().hex[:8]
        self.prefix = f"{NAMESPACE_PREFIX}{self.tag}-"
        self.namespaces: list[str] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        self._links = 0

    def __enter__(self) -> NetnsLab:
        with _LIVE_LOCK:
            _LIVE_LABS.add(self)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.teardown()

    def namespace(self, name: str) -> str:
        """Create ``quiver-chaos-<tag>-<name>`` with its loopback up; return its name."""
        if len(self.namespaces) >= MAX_NAMESPACES_PER_LAB:
            raise NetnsError(f"a lab holds at most {MAX_NAMESPACES_PER_LAB} namespaces")
        full = self.prefix + name
        # Recorded before it exists, so a half-made namespace is still torn down.
        self.namespaces.append(full)
        _run(["ip", "netns", "add", full])
        _run(["ip", "-n", full, "link", "set", "lo", "up"])
        return full

    def _own(self, namespace: str) -> None:
        if namespace not in self.namespaces:
            raise NetnsError(f"{namespace} is not one of this lab's namespaces")

    def link(self, a: str, b: str) -> LinkAddresses:
        """A veth pair between two of the lab's namespaces, each end addressed inside."""
        self._own(a)
        self._own(b)
        if self._links >= 255:
            raise NetnsError("a lab holds at most 255 links")
        index = self._links
        self._links += 1
        a_interface, b_interface = f"qv{index}a", f"qv{index}b"
        _run(
            [
                "ip",
                "link",
                "add",
                a_interface,
                "netns",
                a,
                "type",
                "veth",
                "peer",
                "name",
                b_interface,
                "netns",
                b,
            ]
        )
        addresses = LinkAddresses(
            f"{LINK_SUBNET}.{index}.1", f"{LINK_SUBNET}.{index}.2", a_interface, b_interface
        )
        for namespace, interface, address in (
            (a, a_interface, addresses.a),
            (b, b_interface, addresses.b),
        ):
            _run(["ip", "-n", namespace, "addr", "add", f"{address}/30", "dev", interface])
            _run(["ip", "-n", namespace, "link", "set", interface, "up"])
        return addresses

    def exec_args(self, namespace: str, argv: Sequence[str]) -> list[str]:
        self._own(namespace)
        return ["ip", "netns", "exec", namespace, *argv]

    def run(self, namespace: str, argv: Sequence[str], check: bool = True) -> str:
        return _run(self.exec_args(namespace, argv), check=check).stdout

    def popen(self, namespace: str, argv: Sequence[str]) -> subprocess.Popen[bytes]:
        """Start a process inside a namespace; it is killed at teardown."""
        process = subprocess.Popen(
            self.exec_args(namespace, argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self.processes.append(process)
        return process

    def can_connect(self, namespace: str, host: str, port: int, timeout_s: float = 1.0) -> bool:
        """Whether a TCP connection from inside ``namespace`` to host:port succeeds."""
        probe = (
            "import socket,sys\n"
            f"try: socket.create_connection(({host!r}, {port}), timeout={timeout_s}).close()\n"
            "except OSError: sys.exit(1)\n"
        )
        result = _run(self.exec_args(namespace, [sys.executable, "-c", probe]), check=False)
        return result.returncode == 0

    # -- faults --

    def nft_drop(self, namespace: str, source: str) -> None:
        """Inside ``namespace``, drop every packet arriving from ``source`` (one way)."""
        if not have("nft"):
            raise NetnsError("nft is not installed")
        self.run(namespace, ["nft", "add", "table", "inet", "quiver_chaos"])
        self.run(
            namespace,
            [
                "nft",
                "add",
                "chain",
                "inet",
                "quiver_chaos",
                "input",
                "{ type filter hook input priority 0 ; policy accept ; }",
            ],
        )
        self.run(
            namespace,
            ["nft", "add", "rule", "inet", "quiver_chaos", "input", "ip", "saddr", source, "drop"],
        )

    def nft_heal(self, namespace: str) -> None:
        if have("nft"):
            self.run(namespace, ["nft", "delete", "table", "inet", "quiver_chaos"], check=False)

    def iptables_loss(self, namespace: str, probability: float) -> None:
        """Inside ``namespace``, drop each arriving packet with ``probability``."""
        if not have("iptables"):
            raise NetnsError("iptables is not installed")
        if not 0.0 <= probability <= 1.0:
            raise ValueError("probability must be within [0, 1]")
        self.run(
            namespace,
            [
                "iptables",
                "-A",
                "INPUT",
                "-m",
                "statistic",
                "--mode",
                "random",
                "--probability",
                f"{probability:.4f}",
                "-j",
                "DROP",
            ],
        )

    def iptables_heal(self, namespace: str) -> None:
        if have("iptables"):
            self.run(namespace, ["iptables", "-F", "INPUT"], check=False)

    # -- teardown --

    def teardown(self) -> None:
        """Kill the lab's processes and delete its namespaces; safe to call twice."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=PROCESS_STOP_TIMEOUT_S)
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()
        self.processes.clear()
        failures = []
        for namespace in reversed(self.namespaces):
            result = _run(["ip", "netns", "delete", namespace], check=False)
            if result.returncode != 0 and namespace in list_namespaces():
                failures.append(f"{namespace}: {result.stderr.strip()}")
        self.namespaces.clear()
        with _LIVE_LOCK:
            _LIVE_LABS.discard(self)
        if failures:
            raise NetnsError("teardown left namespaces behind: " + "; ".join(failures))
