"""Prometheus metrics of one node: ``GET /metrics`` on ``listen_metrics`` (plain HTTP, on
loopback unless configured otherwise, like Neo4j's metrics endpoint).

Owns the node's registry (its own, never the process-global one), the instruments the node
updates as things happen (statements, cluster administration, leaderships won), the
collector that reads Raft, transaction and apply state when scraped, and the small HTTP
server that answers scrapes on the node's event loop, so the collector reads that state
between two steps of the loop, never beside one.

The names (all ``quiver_``): ``statements_total{database,outcome}`` and
``statement_duration_seconds{database}`` (every statement of either face: gRPC and Bolt;
``outcome`` is ``ok`` or the Neo4j status code), ``admin_acts_total{action,outcome}``
(backups, membership, leadership), ``raft_leaderships_won_total``, ``raft_term``,
``raft_commit_index``, ``raft_applied_index``, ``raft_first_index``, ``raft_snapshot_index``,
``raft_role{role}`` (1 for the current one), ``raft_leader`` (the leader's id, 0: none),
``raft_voters``, ``raft_learners``, ``raft_follower_lag_entries{peer}`` (on the leader),
``snapshots_installed_total``, ``snapshots_taken_total``, ``open_transactions``,
``open_transaction_bytes``, ``apply_backlog_bytes``, ``node_info{id,zone,version}``, and the
process's CPU, memory and file descriptors (``process_*``).

Must never: expose a value of the graph, a query text or a user name; let a scraper hold the
node (each request is bounded in size, time and number of connections).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Final

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from proto import admin_pb2

if TYPE_CHECKING:
    from cluster.node import Node

STATEMENT_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
MAX_REQUEST_HEAD_BYTES: Final = 8 << 10
REQUEST_TIMEOUT_S: Final = 5.0
MAX_CONNECTIONS: Final = 16
"""Scrapes served at once; more are answered 503 and closed."""
DATABASES: Final = frozenset({"neo4j", "system"})
_OUTCOME: Final = re.compile(r"ok|cancelled|Neo\.[A-Za-z]+\.[A-Za-z]+\.[A-Za-z]+")
_ROLES: Final = {
    admin_pb2.ROLE_LEADER: "leader",
    admin_pb2.ROLE_FOLLOWER: "follower",
    admin_pb2.ROLE_CANDIDATE: "candidate",
    admin_pb2.ROLE_LEARNER: "learner",
}


def _version() -> str:
    try:
        return version("quiver")
    except PackageNotFoundError:
        return "unknown"


class _NodeState(Collector):
    """Gauges and counters read from the node when scraped."""

    def __init__(self, node: Node) -> None:
        self._node = node
        self._version = _version()

    def collect(self) -> Iterator[Metric]:
        node = self._node
        info = GaugeMetricFamily(
            "quiver_node_info", "This node: id, zone, version", labels=["id", "zone", "version"]
        )
        info.add_metric([str(node.id), node.config.zone, self._version], 1)
        yield info
        yield from _gauges(
            ("quiver_open_transactions", "Explicit transactions open", len(node._transactions)),
            (
                "quiver_open_transaction_bytes",
                "Write state held by open explicit transactions",
                node._open_write_bytes,
            ),
            (
                "quiver_apply_backlog_bytes",
                "Committed entries waiting for the apply thread",
                node._apply_backlog_bytes,
            ),
        )
        if node.raw is None:
            return  # not started: no Raft state yet
        status = node.status()
        yield from _gauges(
            ("quiver_raft_term", "The current Raft term", status.term),
            ("quiver_raft_commit_index", "The highest index known committed", status.commit_index),
            ("quiver_raft_applied_index", "The highest log index applied", status.applied_index),
            ("quiver_raft_first_index", "The first index still in the log", status.first_index),
            ("quiver_raft_snapshot_index", "The newest snapshot's index", status.snapshot_index),
            ("quiver_raft_leader", "The leader this node knows of (0: none)", status.leader_id),
            ("quiver_raft_voters", "Voters in the configuration", len(status.voters)),
            ("quiver_raft_learners", "Learners in the configuration", len(status.learners)),
        )  # fmt: skip
        role = GaugeMetricFamily("quiver_raft_role", "1 for this node's role", labels=["role"])
        for value, name in _ROLES.items():
            role.add_metric([name], 1 if status.role == value else 0)
        yield role
        if status.match_index:
            lag = GaugeMetricFamily(
                "quiver_raft_follower_lag_entries",
                "On the leader: entries each member's log trails the leader's commit index",
                labels=["peer"],
            )
            for peer, matched in sorted(status.match_index.items()):
                if peer != node.id:
                    lag.add_metric([str(peer)], max(0, status.commit_index - matched))
            yield lag
        yield CounterMetricFamily(
            "quiver_snapshots_installed",
            "Snapshots received and installed",
            value=status.snapshots_installed,
        )
        yield CounterMetricFamily(
            "quiver_snapshots_taken",
            "Snapshots taken of this node's state",
            value=status.snapshots_taken,
        )


def _gauges(*specs: tuple[str, str, float]) -> Iterator[Metric]:
    for name, text, value in specs:
        yield GaugeMetricFamily(name, text, value=value)


class NodeMetrics:
    """A node's instruments and its registry."""

    def __init__(self, node: Node) -> None:
        self.registry = CollectorRegistry()  # collected when scraped, never before
        registry = self.registry
        self.statements = Counter(
            "quiver_statements",
            "Statements run, by database and outcome (ok or the Neo4j status code)",
            ["database", "outcome"],
            registry=registry,
        )
        self.statement_seconds = Histogram(
            "quiver_statement_duration_seconds",
            "Statement durations, from arrival to the last record",
            ["database"],
            buckets=STATEMENT_BUCKETS,
            registry=registry,
        )
        self.admin_acts = Counter(
            "quiver_admin_acts",
            "Cluster administration through the Admin service, by action and outcome",
            ["action", "outcome"],
            registry=registry,
        )
        self.leaderships = Counter(
            "quiver_raft_leaderships_won", "Times this node became leader", registry=registry
        )
        registry.register(_NodeState(node))
        ProcessCollector(registry=registry)
        self._connections = 0

    def statement(self, database: str, outcome: str, seconds: float) -> None:
        # Labels from a closed set, so that no client can make series without bound.
        database = database if database in DATABASES else "other"
        outcome = outcome if _OUTCOME.fullmatch(outcome) else "other"
        self.statements.labels(database, outcome).inc()
        self.statement_seconds.labels(database).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # -- the endpoint -------------------------------------------------------------------------

    async def serve(self, address: str) -> asyncio.Server:
        host, _, port = address.rpartition(":")
        return await asyncio.start_server(
            self._answer, host, int(port), limit=MAX_REQUEST_HEAD_BYTES
        )

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections += 1
        try:
            if self._connections > MAX_CONNECTIONS:
                await _respond(writer, 503, b"too many scrapes at once\n")
                return
            try:
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), REQUEST_TIMEOUT_S)
            except (asyncio.LimitOverrunError, asyncio.IncompleteReadError, TimeoutError):
                await _respond(writer, 400, b"bad request\n")
                return
            method, _, rest = head.partition(b" ")
            path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
            if method not in (b"GET", b"HEAD"):
                await _respond(writer, 405, b"GET /metrics\n", allow=True)
            elif path != b"/metrics":
                await _respond(writer, 404, b"GET /metrics\n")
            else:
                body = self.render()
                await _respond(
                    writer, 200, body, content_type=CONTENT_TYPE_LATEST, head=method == b"HEAD"
                )
        except (ConnectionError, TimeoutError):
            pass  # the scraper went away, or stopped reading: nothing to answer
        finally:
            self._connections -= 1
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await asyncio.wait_for(writer.wait_closed(), REQUEST_TIMEOUT_S)


_REASONS: Final = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


async def _respond(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    *,
    content_type: str = "text/plain; charset=utf-8",
    head: bool = False,
    allow: bool = False,
) -> None:
    reason = _REASONS.get(status, "Service Unavailable")
    lines = [
        f"HTTP/1.1 {status} {reason}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
        *(["Allow: GET, HEAD"] if allow else []),
    ]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body))
    await asyncio.wait_for(writer.drain(), REQUEST_TIMEOUT_S)
