"""Prometheus metrics: every node answers GET /metrics with its Raft state, its statements
and its administration; labels come from a closed set; the endpoint refuses what is not a
scrape and bounds what it reads."""

from __future__ import annotations

import asyncio
import urllib.request

import pytest
from conftest import LocalCluster, wait_for
from prometheus_client.parser import text_string_to_metric_families

from cluster.config import load_cluster
from cluster.errors import QuiverError
from cluster.metrics import MAX_REQUEST_HEAD_BYTES, NodeMetrics
from cluster.node import Node


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://{address}/metrics", timeout=5) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        return _samples(response.read().decode())


def test_every_node_reports_its_raft_state_and_its_statements(local_cluster: LocalCluster) -> None:
    cluster = local_cluster
    leader = wait_for("a leader", cluster.leader)
    addresses = {node.id: node.metrics for node in load_cluster(cluster.directory).nodes}
    assert all(addresses.values())
    scraped = {node_id: _scrape(address) for node_id, address in addresses.items()}
    roles = {
        node_id: [name for (metric, labels), v in s.items() if metric == "quiver_raft_role" and v
                  for _, name in labels]
        for node_id, s in scraped.items()
    }  # fmt: skip
    assert roles == {n: ["leader" if n == leader else "follower"] for n in addresses}
    assert scraped[leader][("quiver_raft_leaderships_won_total", ())] >= 1
    for node_id, samples in scraped.items():
        assert samples[("quiver_raft_leader", ())] == leader
        assert samples[("quiver_raft_voters", ())] == 3
        assert samples[("quiver_node_info", (("id", str(node_id)), ("version", "0.1.0"),
                                             ("zone", f"zone-{node_id}")))] == 1  # fmt: skip
    follower = next(n for n in addresses if n != leader)
    assert ("quiver_raft_follower_lag_entries", (("peer", str(follower)),)) in scraped[leader]

    ok = ("quiver_statements_total", (("database", "neo4j"), ("outcome", "ok")))
    syntax = (
        "quiver_statements_total",
        (("database", "neo4j"), ("outcome", "Neo.ClientError.Statement.SyntaxError")),
    )
    before = _scrape(addresses[leader])
    with cluster.node_client(leader) as client:
        for i in range(5):
            client.run("CREATE (:Counted {i: $i})", {"i": i})
        with pytest.raises(QuiverError):
            client.run("RETURN nothing_here")
    after = _scrape(addresses[leader])
    assert after[ok] - before.get(ok, 0) == 5
    assert after[syntax] - before.get(syntax, 0) == 1
    count = ("quiver_statement_duration_seconds_count", (("database", "neo4j"),))
    assert after[count] - before.get(count, 0) == 6
    applied = after[("quiver_raft_applied_index", ())]
    assert applied >= 5 and after[("quiver_raft_commit_index", ())] >= applied


def test_labels_come_from_a_closed_set(unstarted_node: Node) -> None:
    metrics = unstarted_node.metrics
    metrics.statement("neo4j", "ok", 0.001)
    metrics.statement("a-database-nobody-has", "Neo.ClientError.Database.DatabaseNotFound", 0.001)
    metrics.statement("system", "something\nelse", 0.001)
    samples = _samples(metrics.render().decode())
    statements = {labels for name, labels in samples if name == "quiver_statements_total"}
    assert statements == {
        (("database", "neo4j"), ("outcome", "ok")),
        (("database", "other"), ("outcome", "Neo.ClientError.Database.DatabaseNotFound")),
        (("database", "system"), ("outcome", "other")),
    }
    assert ("quiver_raft_term", ()) not in samples  # not started: no Raft state yet
    assert samples[("quiver_open_transactions", ())] == 0


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    writer.write_eof()
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    return answer


def test_the_endpoint_answers_scrapes_only(unstarted_node: Node) -> None:
    metrics = NodeMetrics(unstarted_node)

    async def scenario() -> list[bytes]:
        server = await metrics.serve("127.0.0.1:0")
        port = server.sockets[0].getsockname()[1]
        try:
            return [
                await _exchange(port, request)
                for request in (
                    b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"HEAD /metrics HTTP/1.1\r\n\r\n",
                    b"GET /other HTTP/1.1\r\n\r\n",
                    b"POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
                    b"GET /metrics HTTP/1.1\r\nX: " + b"a" * MAX_REQUEST_HEAD_BYTES + b"\r\n\r\n",
                    b"GET /metr",  # the client gives up half-way
                )
            ]
        finally:
            server.close()

    scrape, head, missing, post, huge, half = asyncio.run(scenario())
    assert scrape.startswith(b"HTTP/1.1 200 OK\r\n") and b"quiver_node_info{" in scrape
    assert head.startswith(b"HTTP/1.1 200 OK\r\n") and head.endswith(b"\r\n\r\n")
    assert missing.startswith(b"HTTP/1.1 404 ")
    assert post.startswith(b"HTTP/1.1 405 ") and b"Allow: GET, HEAD" in post
    assert huge.startswith(b"HTTP/1.1 400 ")
    assert half.startswith(b"HTTP/1.1 400 ")
