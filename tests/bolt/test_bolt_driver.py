"""The official neo4j driver against the Bolt server over the embedded backend."""

from __future__ import annotations

import datetime as dt
import ipaddress
import math
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import neo4j
import pytest
import pytz
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from neo4j import exceptions as neo4j_errors
from neo4j import spatial
from neo4j import time as neo4j_time

from cluster.bolt import server as bolt
from cluster.bolt.embedded import EmbeddedBackend

USER, PASSWORD = "neo4j", "correct horse"
AUTH = (USER, PASSWORD)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A self-signed CA and a server certificate for 127.0.0.1 and localhost it signed."""
    directory = tmp_path_factory.mktemp("tls")
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("test CA"))
        .issuer_name(_name("test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = (directory / n for n in ("ca.pem", "node.pem", "node.key"))
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca_path, cert_path, key_path


@pytest.fixture
async def tls_server(tls_files: tuple[Path, Path, Path]) -> AsyncIterator[bolt.BoltServer]:
    _, cert, key = tls_files
    context = bolt.server_ssl_context(str(cert), str(key))
    async with bolt.BoltServer(
        EmbeddedBackend({USER: PASSWORD}), "127.0.0.1", 0, ssl_context=context
    ) as running:
        yield running


@pytest.fixture
async def server() -> AsyncIterator[bolt.BoltServer]:
    async with bolt.BoltServer(
        EmbeddedBackend({USER: PASSWORD}), "127.0.0.1", 0, insecure=True
    ) as running:
        yield running


@pytest.fixture
async def driver(server: bolt.BoltServer) -> AsyncIterator[neo4j.AsyncDriver]:
    async with neo4j.AsyncGraphDatabase.driver(f"bolt://{server.address}", auth=AUTH) as d:
        yield d


# -- TLS and authentication -------------------------------------------------------------------


async def test_bolt_over_tls_with_the_custom_ca_runs_queries(
    tls_server: bolt.BoltServer, tls_files: tuple[Path, Path, Path]
) -> None:
    ca = str(tls_files[0])
    async with neo4j.AsyncGraphDatabase.driver(
        f"bolt://localhost:{tls_server.port}",
        auth=AUTH,
        encrypted=True,
        trusted_certificates=neo4j.TrustCustomCAs(ca),
    ) as d:
        records, _, _ = await d.execute_query("RETURN 40 + 2 AS answer")
        assert records[0]["answer"] == 42


async def test_bolt_plus_s_scheme_verifies_the_server_against_the_trusted_ca(
    tls_server: bolt.BoltServer,
    tls_files: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # bolt+s trusts the system store; point OpenSSL's default file at the test CA.
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    async with neo4j.AsyncGraphDatabase.driver(
        f"bolt+s://localhost:{tls_server.port}", auth=AUTH
    ) as d:
        records, _, _ = await d.execute_query("RETURN 1 AS one")
        assert records[0]["one"] == 1
    async with neo4j.AsyncGraphDatabase.driver(
        f"neo4j+s://localhost:{tls_server.port}", auth=AUTH
    ) as d:
        records, _, _ = await d.execute_query("RETURN 2 AS two")
        assert records[0]["two"] == 2


async def test_tls_server_refuses_a_client_that_does_not_trust_its_ca(
    tls_server: bolt.BoltServer,
) -> None:
    async with neo4j.AsyncGraphDatabase.driver(
        f"bolt://localhost:{tls_server.port}",
        auth=AUTH,
        encrypted=True,
        trusted_certificates=neo4j.TrustSystemCAs(),
        connection_timeout=5,
    ) as d:
        with pytest.raises((neo4j_errors.ServiceUnavailable, ssl.SSLError)):
            await d.verify_connectivity()


async def test_plaintext_client_cannot_talk_to_the_tls_listener(
    tls_server: bolt.BoltServer,
) -> None:
    async with neo4j.AsyncGraphDatabase.driver(
        f"bolt://localhost:{tls_server.port}", auth=AUTH, connection_timeout=3
    ) as d:
        with pytest.raises(neo4j_errors.DriverError):
            await d.verify_connectivity()


async def test_wrong_password_raises_the_drivers_auth_error(server: bolt.BoltServer) -> None:
    async with neo4j.AsyncGraphDatabase.driver(
        f"bolt://{server.address}", auth=(USER, "wrong")
    ) as d:
        with pytest.raises(neo4j_errors.AuthError) as raised:
            await d.verify_connectivity()
    assert raised.value.code == "Neo.ClientError.Security.Unauthorized"


async def test_unknown_user_raises_auth_error_too(server: bolt.BoltServer) -> None:
    async with neo4j.AsyncGraphDatabase.driver(
        f"bolt://{server.address}", auth=("nobody", PASSWORD)
    ) as d:
        with pytest.raises(neo4j_errors.AuthError):
            await d.execute_query("RETURN 1")


async def test_driver_negotiates_bolt_5_8(driver: neo4j.AsyncDriver) -> None:
    info = await driver.get_server_info()
    assert info.protocol_version == (5, 8)
    assert info.agent.startswith("Neo4j/")


# -- values -----------------------------------------------------------------------------------

ROUND_TRIP_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    127,
    -129,
    2**31,
    -(2**63),
    2**63 - 1,
    1.5,
    -0.0,
    math.inf,
    "",
    "héllo ✓",
    "x" * 70_000,
    b"\x00\x01\xff",
    [1, "two", [3.0, None]],
    {"a": 1, "b": {"c": [True]}},
    neo4j_time.Date(2024, 2, 29),
    neo4j_time.Date(1, 1, 1),
    neo4j_time.Time(12, 34, 56, 789_012_345),
    neo4j_time.Time(1, 2, 3, 4, tzinfo=pytz.FixedOffset(-300)),
    neo4j_time.DateTime(2024, 3, 31, 2, 30, 0, 123_456_789),
    neo4j_time.DateTime(2024, 3, 31, 4, 30, 0, 1, tzinfo=dt.timezone(dt.timedelta(hours=2))),
    neo4j_time.Duration(years=1, months=2, days=3, hours=4, minutes=5, seconds=6, nanoseconds=7),
    neo4j_time.Duration(days=-1, seconds=-3),
    spatial.CartesianPoint((1.0, 2.0)),
    spatial.CartesianPoint((1.0, 2.0, 3.0)),
    spatial.WGS84Point((12.5, 55.7)),
    spatial.WGS84Point((12.5, 55.7, 100.0)),
]


@pytest.mark.parametrize("value", ROUND_TRIP_VALUES, ids=lambda v: type(v).__name__)
async def test_value_round_trips_through_parameters_and_results(
    driver: neo4j.AsyncDriver, value: Any
) -> None:
    records, _, _ = await driver.execute_query("RETURN $v AS v", v=value)
    got = records[0]["v"]
    if isinstance(value, float) and value == 0:
        assert math.copysign(1, got) == math.copysign(1, value)
    assert got == value
    assert type(got) is type(value) or (isinstance(value, bytes) and isinstance(got, bytearray))


async def test_named_zone_datetime_round_trips_with_its_zone(driver: neo4j.AsyncDriver) -> None:
    value = pytz.timezone("Europe/Stockholm").localize(dt.datetime(2024, 7, 1, 12, 0, 0))
    records, _, _ = await driver.execute_query("RETURN $v AS v, $v.timezone AS zone", v=value)
    assert records[0]["zone"] == "Europe/Stockholm"
    got = records[0]["v"]
    assert got.tzinfo.zone == "Europe/Stockholm"
    assert got.to_native() == value


async def test_temporal_and_spatial_values_made_by_cypher_reach_the_driver(
    driver: neo4j.AsyncDriver,
) -> None:
    records, _, _ = await driver.execute_query(
        "RETURN date('2020-01-02') AS d, localtime('10:11:12') AS lt, time('10:11:12+01:00') AS t,"
        " localdatetime('2020-01-02T03:04:05') AS ldt,"
        " datetime('2020-01-02T03:04:05[Europe/Paris]') AS zdt,"
        " duration('P1Y2M3DT4H') AS dur, point({x: 1, y: 2}) AS p,"
        " point({longitude: 1, latitude: 2, height: 3}) AS g"
    )
    row = records[0]
    assert row["d"] == neo4j_time.Date(2020, 1, 2)
    assert row["lt"] == neo4j_time.Time(10, 11, 12)
    assert row["t"].utc_offset() == dt.timedelta(hours=1)
    assert row["ldt"] == neo4j_time.DateTime(2020, 1, 2, 3, 4, 5)
    assert row["zdt"].tzinfo.zone == "Europe/Paris" and row["zdt"].hour == 3
    assert row["dur"] == neo4j_time.Duration(years=1, months=2, days=3, hours=4)
    assert row["p"] == spatial.CartesianPoint((1.0, 2.0))
    assert row["g"] == spatial.WGS84Point((1.0, 2.0, 3.0))


async def test_nodes_relationships_and_paths_reach_the_driver(driver: neo4j.AsyncDriver) -> None:
    records, _, _ = await driver.execute_query(
        "CREATE p = (a:Person {name: 'Ada'})-[r:KNOWS {since: 1843}]->(b:Person:Scientist"
        " {name: 'Charles'})<-[:MET]-(a) RETURN a, r, b, p"
    )
    a, r, b, p = records[0]["a"], records[0]["r"], records[0]["b"], records[0]["p"]
    assert isinstance(a, neo4j.graph.Node) and a.labels == {"Person"} and a["name"] == "Ada"
    assert b.labels == {"Person", "Scientist"}
    assert isinstance(r, neo4j.graph.Relationship) and r.type == "KNOWS" and r["since"] == 1843
    assert r.start_node.element_id == a.element_id and r.end_node.element_id == b.element_id
    assert isinstance(p, neo4j.graph.Path)
    assert [n["name"] for n in p.nodes] == ["Ada", "Charles", "Ada"]
    assert [rel.type for rel in p.relationships] == ["KNOWS", "MET"]
    met = p.relationships[1]
    assert met.start_node.element_id == a.element_id  # walked against its direction
    assert met.end_node.element_id == b.element_id


async def test_nodes_cannot_be_sent_as_parameters(driver: neo4j.AsyncDriver) -> None:
    records, _, _ = await driver.execute_query("CREATE (n:X) RETURN n")
    with pytest.raises((neo4j_errors.CypherTypeError, TypeError, ValueError)):
        await driver.execute_query("RETURN $n AS n", n=records[0]["n"])


# -- transactions, bookmarks, failures ---------------------------------------------------------


async def _count(driver: neo4j.AsyncDriver, label: str) -> int:
    records, _, _ = await driver.execute_query(f"MATCH (n:{label}) RETURN count(n) AS c")
    return int(records[0]["c"])


async def test_explicit_transaction_commits_and_rolls_back(driver: neo4j.AsyncDriver) -> None:
    async with driver.session() as session:
        tx = await session.begin_transaction(metadata={"app": "test"}, timeout=10)
        await tx.run("CREATE (:T {i: 1})")
        result = await tx.run("MATCH (n:T) RETURN count(n) AS c")
        assert (await result.single())["c"] == 1  # a transaction reads its own writes
        await tx.rollback()
        assert await _count(driver, "T") == 0
        tx = await session.begin_transaction()
        await tx.run("CREATE (:T {i: 2})")
        await tx.commit()
        bookmarks = (await session.last_bookmarks()).raw_values
    assert await _count(driver, "T") == 1
    assert len(bookmarks) == 1 and next(iter(bookmarks)).startswith("quiver:")


async def test_managed_transactions_write_and_read(driver: neo4j.AsyncDriver) -> None:
    async def create(tx: neo4j.AsyncManagedTransaction, name: str) -> int:
        result = await tx.run("CREATE (n:M {name: $name}) RETURN id(n) AS id", name=name)
        return int((await result.single())["id"])

    async def names(tx: neo4j.AsyncManagedTransaction) -> list[str]:
        result = await tx.run("MATCH (n:M) RETURN n.name AS name ORDER BY name")
        return [record["name"] async for record in result]

    async with driver.session() as session:
        await session.execute_write(create, "b")
        await session.execute_write(create, "a")
        assert await session.execute_read(names) == ["a", "b"]


async def test_writing_in_a_read_transaction_is_refused(driver: neo4j.AsyncDriver) -> None:
    async def write(tx: neo4j.AsyncManagedTransaction) -> None:
        await tx.run("CREATE (:Nope)")

    async with driver.session() as session:
        with pytest.raises(neo4j_errors.ClientError) as raised:
            await session.execute_read(write)
    assert raised.value.code == "Neo.ClientError.Statement.AccessMode"


async def test_bookmarks_from_a_write_are_accepted_by_a_later_session(
    driver: neo4j.AsyncDriver,
) -> None:
    async with driver.session() as session:
        await (await session.run("CREATE (:B)")).consume()
        bookmarks = await session.last_bookmarks()
    assert next(iter(bookmarks.raw_values)).startswith("quiver:")
    async with driver.session(bookmarks=bookmarks, default_access_mode="READ") as session:
        record = await (await session.run("MATCH (n:B) RETURN count(n) AS c")).single()
        assert record["c"] == 1


async def test_summary_carries_counters_and_query_type(driver: neo4j.AsyncDriver) -> None:
    _, summary, _ = await driver.execute_query("CREATE (a:S {x: 1})-[:R]->(b:S) RETURN a")
    assert summary.counters.nodes_created == 2
    assert summary.counters.relationships_created == 1
    assert summary.counters.properties_set == 1
    assert summary.counters.contains_updates
    assert summary.query_type == "rw"
    assert summary.database == "neo4j"


async def test_session_goes_on_after_a_failed_query_and_a_failed_transaction(
    driver: neo4j.AsyncDriver,
) -> None:
    async with driver.session() as session:
        with pytest.raises(neo4j_errors.CypherSyntaxError):
            await (await session.run("RETURN (")).consume()
        assert (await (await session.run("RETURN 1 AS one")).single())["one"] == 1
        tx = await session.begin_transaction()
        await tx.run("CREATE (:F)")
        with pytest.raises(neo4j_errors.ClientError):
            await (await tx.run("RETURN 1 / 0")).consume()
        await tx.close()
        assert (await (await session.run("RETURN 2 AS two")).single())["two"] == 2
    assert await _count(driver, "F") == 0


async def test_large_result_streams_in_batches(driver: neo4j.AsyncDriver) -> None:
    async with driver.session(fetch_size=100) as session:
        result = await session.run("UNWIND range(1, 2500) AS i RETURN i")
        values = [record["i"] async for record in result]
    assert values == list(range(1, 2501))


# -- databases and routing ---------------------------------------------------------------------


async def test_an_unknown_database_is_database_not_found(driver: neo4j.AsyncDriver) -> None:
    with pytest.raises(neo4j_errors.ClientError) as raised:
        await driver.execute_query("RETURN 1", database_="nosuchdb")
    assert raised.value.code == "Neo.ClientError.Database.DatabaseNotFound"
    records, _, _ = await driver.execute_query("RETURN 1 AS one", database_="neo4j")
    assert records[0]["one"] == 1


async def test_system_database_answers_show_databases(driver: neo4j.AsyncDriver) -> None:
    records, _, _ = await driver.execute_query("SHOW DATABASES", database_="system")
    assert {record["name"] for record in records} == {"neo4j", "system"}


async def test_neo4j_scheme_routes_reads_and_writes_to_the_single_server(
    server: bolt.BoltServer,
) -> None:
    async with neo4j.AsyncGraphDatabase.driver(f"neo4j://{server.address}", auth=AUTH) as d:
        await d.execute_query("CREATE (:Routed)")
        records, _, _ = await d.execute_query(
            "MATCH (n:Routed) RETURN count(n) AS c", routing_=neo4j.RoutingControl.READ
        )
        assert records[0]["c"] == 1
        table = d._pool.routing_tables["neo4j"]  # the driver's own view of ROUTE's answer
        expected = {str(server.address)}
        assert {str(a) for a in table.routers} == expected
        assert {str(a) for a in table.readers} == expected
        assert {str(a) for a in table.writers} == expected
        assert table.ttl == 300


# -- older negotiated versions and the RocksDB store --------------------------------------------


@pytest.mark.parametrize("version", [(5, 1), (5, 4), (5, 6), (5, 7)])
async def test_older_bolt_versions_work_and_report_a_wrong_password_as_auth_error(
    version: tuple[int, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bolt, "MAX_VERSION", version)
    async with bolt.BoltServer(
        EmbeddedBackend({USER: PASSWORD}), "127.0.0.1", 0, insecure=True
    ) as running:
        async with neo4j.AsyncGraphDatabase.driver(f"bolt://{running.address}", auth=AUTH) as d:
            assert (await d.get_server_info()).protocol_version == version
            records, _, _ = await d.execute_query(
                "RETURN $d AS d", d=neo4j_time.DateTime(2024, 1, 2, 3, 4, 5, tzinfo=pytz.UTC)
            )
            assert records[0]["d"] == neo4j_time.DateTime(2024, 1, 2, 3, 4, 5, tzinfo=pytz.UTC)
            with pytest.raises(neo4j_errors.CypherSyntaxError):
                await d.execute_query("RETURN (")
        async with neo4j.AsyncGraphDatabase.driver(
            f"bolt://{running.address}", auth=(USER, "nope")
        ) as d:
            with pytest.raises(neo4j_errors.AuthError):
                await d.verify_connectivity()


async def test_embedded_backend_over_the_encrypted_rocksdb_store(tmp_path: Path) -> None:
    from store.crypto import Keyring
    from store.graph import GraphStore

    graph = GraphStore(tmp_path / "graph", Keyring(tmp_path, bytes(range(32))))
    try:
        backend = EmbeddedBackend({USER: PASSWORD}, graph=graph)
        async with (
            bolt.BoltServer(backend, "127.0.0.1", 0, insecure=True) as running,
            neo4j.AsyncGraphDatabase.driver(f"bolt://{running.address}", auth=AUTH) as d,
        ):
            await d.execute_query(
                "CREATE (:R {when: date('2024-05-06'), where: point({x: 1, y: 2})})"
            )
            records, _, _ = await d.execute_query("MATCH (n:R) RETURN n.when AS w, n.where AS p")
            assert records[0]["w"] == neo4j_time.Date(2024, 5, 6)
            assert records[0]["p"] == spatial.CartesianPoint((1.0, 2.0))
    finally:
        graph.close()
