"""Three real nodes elect a leader; writes sent to any node are applied everywhere, and a
causal read carrying the write's bookmark sees it on every replica."""

from __future__ import annotations

import json

from conftest import LocalCluster, quiver, wait_for


def test_three_nodes_elect_one_leader_and_report_it_in_status(local_cluster: LocalCluster) -> None:
    leader = wait_for("a leader", local_cluster.leader)
    result = quiver("status", "--dir", str(local_cluster.directory), "--format", "json")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    roles = {node["id"]: node["role"] for node in doc["nodes"]}
    assert roles[leader] == "leader"
    assert sorted(roles.values()) == ["follower", "follower", "leader"]
    assert {node["zone"] for node in doc["nodes"]} == {"zone-1", "zone-2", "zone-3"}
    assert doc["survives_zone_loss"] is True
    for node in doc["nodes"]:
        assert set(node) >= {
            "id",
            "zone",
            "role",
            "term",
            "commit_index",
            "applied_index",
            "lag",
            "pid",
            "health",
        }
        assert node["health"] == "ok" and node["pid"] > 0


def test_a_write_on_any_node_is_read_on_every_replica_with_its_bookmark(
    local_cluster: LocalCluster,
) -> None:
    leader = wait_for("a leader", local_cluster.leader)
    members = [member.id for member in local_cluster.client.members]
    for writer in members:  # followers forward the write to the leader
        node_client = local_cluster.node_client(writer)
        written = node_client.run(
            "CREATE (p:Person {name: $name}) RETURN p.name AS name", {"name": f"via-n{writer}"}
        )
        assert written.rows == [[f"via-n{writer}"]]
        assert written.counters["nodes_created"] == 1
        assert written.bookmark.startswith("quiver:")
        for reader in members:
            reader_client = local_cluster.node_client(reader)
            reader_client.bookmarks = {written.bookmark}
            read = reader_client.run(
                "MATCH (p:Person {name: $name}) RETURN count(p) AS n",
                {"name": f"via-n{writer}"},
                mode="read",
                consistency="causal",
            )
            assert read.served_by == reader
            assert read.rows == [[1]], f"n{reader} missed the write made via n{writer}"
            assert read.applied_index >= int(written.bookmark.split(":")[1])
            reader_client.close()
        node_client.close()
    linearizable = local_cluster.client.run(
        "MATCH (p:Person) RETURN count(p) AS n", mode="read", consistency="linearizable"
    )
    assert linearizable.rows == [[3]]
    assert local_cluster.leader() == leader


def test_query_command_prints_the_json_shape_of_design(local_cluster: LocalCluster) -> None:
    wait_for("a leader", local_cluster.leader)
    directory = str(local_cluster.directory)
    created = quiver(
        "query",
        "--dir",
        directory,
        "--format",
        "json",
        "-c",
        "CREATE (a:City {name: $name})-[r:ROAD {km: 5}]->(b:City) RETURN a, r",
        "-p",
        "name=Uppsala",
    )
    assert created.returncode == 0, created.stderr
    doc = json.loads(created.stdout)
    assert doc["columns"] == ["a", "r"]
    node, rel = doc["rows"][0]
    assert node == {"id": node["id"], "labels": ["City"], "properties": {"name": "Uppsala"}}
    assert rel["type"] == "ROAD" and rel["start"] == node["id"]
    assert rel["properties"] == {"km": 5} and set(rel) == {
        "id",
        "type",
        "start",
        "end",
        "properties",
    }
    assert doc["bookmark"].startswith("quiver:")
    assert doc["counters"]["nodes_created"] == 2
    assert doc["counters"]["relationships_created"] == 1
    failed = quiver("query", "--dir", directory, "-c", "RETURN 1 +")
    assert failed.returncode != 0
    assert failed.stderr.splitlines() == [failed.stderr.strip()]
    assert failed.stderr.startswith("Neo.ClientError.Statement.SyntaxError: ")
    assert failed.stderr.count("Neo.ClientError") == 1
