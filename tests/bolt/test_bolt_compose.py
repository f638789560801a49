"""docker-compose.yml publishes each node's Bolt port: the port the config of
`quiver init --hosts` has the node listen on for Neo4j drivers, on the host's loopback only,
a different host port per node; and the file stays valid for `docker-compose config -q`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from cluster.init import init_cluster

REPO = Path(__file__).resolve().parents[2]
HOSTS = ("node1", "node2", "node3")


def test_compose_publishes_every_nodes_bolt_port_on_loopback(tmp_path: Path) -> None:
    cluster = init_cluster(tmp_path / "compose", hosts=HOSTS)
    text = (REPO / "docker-compose.yml").read_text()
    published: set[str] = set()
    for entry, host in zip(cluster.nodes, HOSTS, strict=True):
        config = json.loads((cluster.directory / entry.config).read_text())
        port = config["listen_bolt"].rsplit(":", 1)[1]
        assert config["listen_bolt"] == f"0.0.0.0:{port}"
        assert entry.bolt == f"{host}:{port}", "ROUTE advertises the service name"
        block = text.split(f"\n  {host}:\n", 1)[1].split("\n\n", 1)[0]
        found = re.findall(rf'"127\.0\.0\.1:(\d+):{port}"', block)
        assert len(found) == 1, f"{host}: Bolt port {port} not published on loopback"
        published.add(found[0])
    assert len(published) == len(HOSTS)

    compose = shutil.which("docker-compose")
    if compose is not None:
        checked = subprocess.run(
            [compose, "-f", str(REPO / "docker-compose.yml"), "config", "-q"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert checked.returncode == 0, checked.stderr
