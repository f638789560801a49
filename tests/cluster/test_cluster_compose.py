"""docker-compose.yml against `quiver init --hosts`: every node service runs `quiver serve`
on a config that init writes for its host name, publishes the client port that config
listens on (only on the host's loopback), and the certificate names the host, so peers and
clients reach each other by service name over TLS. With Debian's docker-compose installed
(CI installs it), the file must also pass `docker-compose config -q`."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

from conftest import quiver
from cryptography import x509

REPO = Path(__file__).resolve().parents[2]
HOSTS = ("node1", "node2", "node3")


def _services(text: str) -> dict[str, str]:
    """Service name -> its block of lines (enough structure for this file's shape)."""
    body = text.split("\nservices:\n", 1)[1].split("\nnetworks:\n", 1)[0]
    blocks = re.split(r"\n  (?=[a-z0-9_-]+:\n)", "\n" + body)
    return {block.split(":", 1)[0].strip(): block for block in blocks if block.strip()}


def test_compose_runs_the_nodes_that_init_hosts_configures(tmp_path: Path) -> None:
    directory = tmp_path / "compose"
    result = quiver("init", "--dir", str(directory), "--hosts", ",".join(HOSTS))
    assert result.returncode == 0, result.stderr
    services = _services((REPO / "docker-compose.yml").read_text())
    assert {"node1", "node2", "node3", "toxiproxy"} <= set(services)
    for node_id, host in enumerate(HOSTS, start=1):
        block = services[host]
        command = re.search(r"command: \[(.*)\]", block)
        assert command is not None
        args = json.loads(f"[{command.group(1)}]")
        assert args[:2] == ["serve", "--config"]
        mounted = args[2].removeprefix("/etc/quiver/")
        assert "./.quiver/compose:/etc/quiver:ro" in block
        config = json.loads((directory / mounted).read_text())
        assert config["id"] == node_id and f"hostname: {host}" in block
        port = config["listen_grpc"].rsplit(":", 1)[1]
        assert config["listen_grpc"].startswith("0.0.0.0:")
        assert re.search(rf'"127\.0\.0\.1:\d+:{port}"', block), "client port not published"
        assert config["data_dir"] == "/var/lib/quiver"
        assert f"{host}-data:/var/lib/quiver" in block
        peers = {p["id"]: p for p in config["peers"]}
        assert peers[node_id]["peer"] == f"{host}:7100" and peers[node_id]["grpc"] == (
            f"{host}:{port}"
        )
        cert = x509.load_pem_x509_certificate(
            (directory / mounted).with_name("cert.pem").read_bytes()
        )
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        assert host in names.get_values_for_type(x509.DNSName)
    cluster = json.loads((directory / "cluster.json").read_text())
    assert [n["grpc"] for n in cluster["nodes"]] == [f"{h}:7000" for h in HOSTS]
    assert "not yet" not in (REPO / "docker-compose.yml").read_text()

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


def test_init_hosts_refuses_bad_host_lists(tmp_path: Path) -> None:
    for hosts in ("node1,node2", "node1,node1,node2", "node1,Bad_Host,node3"):
        result = quiver("init", "--dir", str(tmp_path / hosts), "--hosts", hosts)
        assert result.returncode != 0
        assert result.stderr.startswith("Neo.ClientError.Request.Invalid: --hosts")
