"""The `opencypher-compliance` suite (PyPI) through its Bolt adapter against Quiver: the
number of its 133 catalog tests that pass may not drop below the committed floor
(compliance_floor.txt beside this file; ArcadeDB passes 133, FalkorDB 129, Kùzu 78).

Twice: over a plaintext Bolt server on the embedded engine with the suite's own `bolt`
adapter exactly as a user would configure it (its adapter speaks `bolt://` without TLS), and
against a real three-node cluster with the same adapter taught TLS with the cluster CA and
`neo4j://` routing — the path an application takes."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import neo4j
import pytest
from bolt_cluster_helpers import helpers
from opencypher_compliance.adapters.bolt import BoltAdapter
from opencypher_compliance.runner import run_compliance

from cluster.bolt.embedded import EmbeddedBackend
from cluster.bolt.server import BoltServer

FLOOR = int((Path(__file__).with_name("compliance_floor.txt")).read_text().strip())
USER, PASSWORD = "neo4j", "compliance password"
START_TIMEOUT_S = 10.0


@pytest.fixture
def plaintext_bolt_port() -> Iterator[int]:
    """A plaintext Bolt server over the embedded engine, on its own event loop thread (the
    suite drives the synchronous driver from this thread)."""
    started = threading.Event()
    state: dict[str, Any] = {}

    async def serve() -> None:
        server = BoltServer(EmbeddedBackend({USER: PASSWORD}), "127.0.0.1", 0, insecure=True)
        await server.start()
        state.update(port=server.port, loop=asyncio.get_running_loop(), stop=asyncio.Event())
        started.set()
        try:
            await state["stop"].wait()
        finally:
            await server.close()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), name="bolt-compliance")
    thread.start()
    try:
        assert started.wait(START_TIMEOUT_S), "the Bolt server did not start"
        yield int(state["port"])
    finally:
        if "loop" in state:
            state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(START_TIMEOUT_S)
    assert not thread.is_alive()


def _report(results: dict[str, Any]) -> int:
    failures = [
        f"{r['element']}: {r.get('error', '')}" for r in results["results"] if r["result"] != "pass"
    ]
    meta = results["metadata"]
    print(f"opencypher-compliance: {meta['passed']}/{meta['total_tests']}", *failures, sep="\n  ")
    return int(meta["passed"])


def test_opencypher_compliance_through_its_bolt_adapter_meets_the_floor(
    plaintext_bolt_port: int,
) -> None:
    config = {
        "database": {
            "name": "quiver",
            "adapter": "bolt",
            "host": "127.0.0.1",
            "port": plaintext_bolt_port,
            "auth": {"username": USER, "password": PASSWORD},
            "options": {"database_name": "neo4j"},
        }
    }
    results = run_compliance(config=config)
    assert results["metadata"]["total_tests"] >= FLOOR
    assert _report(results) >= FLOOR


class _TlsRoutingBoltAdapter(BoltAdapter):
    """The suite's Bolt adapter over `neo4j://` with TLS and a custom CA."""

    def __init__(self, ca_file: Path) -> None:
        self.ca_file = ca_file

    def connect(self, host: str, port: int, auth: dict[str, str], **options: Any) -> None:
        self._driver = neo4j.GraphDatabase.driver(
            f"neo4j://{host}:{port}",
            auth=(auth["username"], auth["password"]),
            encrypted=True,
            trusted_certificates=neo4j.TrustCustomCAs(str(self.ca_file)),
            connection_timeout=5,
            max_transaction_retry_time=10,
        )
        self._db = options.get("database_name")
        self._driver.verify_connectivity()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Any]:
    yield from helpers.start_cluster(tmp_path)


@pytest.mark.slow
def test_opencypher_compliance_against_a_cluster_over_tls_meets_the_floor(cluster: Any) -> None:
    helpers.wait_for("a leader", cluster.leader)
    directory = cluster.directory
    credentials = json.loads((directory / "credentials.json").read_text())
    first = json.loads((directory / "cluster.json").read_text())["nodes"][0]
    host, _, port = str(first["bolt"]).rpartition(":")
    adapter = _TlsRoutingBoltAdapter(directory / "ca.pem")
    adapter.connect(
        host,
        int(port),
        {"username": credentials["user"], "password": credentials["password"]},
        database_name="neo4j",
    )
    try:
        results = run_compliance(
            config={"database": {"name": "quiver-cluster", "adapter": "bolt"}},
            adapter_instance=adapter,
        )
    finally:
        adapter.close()
    assert _report(results) >= FLOOR
