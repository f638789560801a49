"""The Toxiproxy-compatible proxy, driven by the real toxiproxy-python client.

Every proxy forwards to a small TCP echo server on 127.0.0.1; each toxic is shown doing its
thing by what a client socket observes, with generous time bounds and deadlines, never
sleep-and-hope.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests
from toxiproxy import Toxiproxy
from toxiproxy.exceptions import InvalidToxic, NotFound, ProxyExists

from chaos.toxiproxy import BackgroundToxiproxy

SOCKET_TIMEOUT_S = 5.0


@dataclass
class Harness:
    background: BackgroundToxiproxy
    client: Toxiproxy
    echo: str  # host:port of the echo server
    closer: str  # host:port of a server that closes each connection at once
    api: str

    def url(self, path: str) -> str:
        return f"http://{self.api}{path}"


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()


async def _close_at_once(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _close(server: asyncio.Server) -> None:
    server.close()
    await server.wait_closed()


@pytest.fixture
def harness() -> Iterator[Harness]:
    with BackgroundToxiproxy(seed=7) as background:
        echo = background.run(asyncio.start_server(_echo, "127.0.0.1", 0))
        closer = background.run(asyncio.start_server(_close_at_once, "127.0.0.1", 0))
        client = Toxiproxy()
        client.update_api_consumer(background.host, background.port)
        try:
            yield Harness(
                background,
                client,
                f"127.0.0.1:{echo.sockets[0].getsockname()[1]}",
                f"127.0.0.1:{closer.sockets[0].getsockname()[1]}",
                f"{background.host}:{background.port}",
            )
        finally:
            for server in (echo, closer):
                background.run(_close(server))


def connect(listen: str) -> socket.socket:
    host, port = listen.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=SOCKET_TIMEOUT_S)
    sock.settimeout(SOCKET_TIMEOUT_S)
    return sock


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def round_trip_s(listen: str, payload: bytes = b"ping") -> float:
    with connect(listen) as sock:
        started = time.monotonic()
        sock.sendall(payload)
        assert recv_exactly(sock, len(payload)) == payload
        return time.monotonic() - started


def recv_until_closed(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


# --- proxies --------------------------------------------------------------------------------


def test_proxy_lifecycle_create_list_disable_enable_delete(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.echo, name="echo")
    assert proxy.enabled is True
    assert proxy.listen.startswith("127.0.0.1:") and not proxy.listen.endswith(":0")
    assert set(harness.client.proxies()) == {"echo"}
    assert round_trip_s(proxy.listen) < 2.0

    proxy.disable()
    assert harness.client.get_proxy("echo").enabled is False
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.listen)

    proxy.enable()
    assert harness.client.get_proxy("echo").enabled is True
    assert round_trip_s(proxy.listen) < 2.0

    with proxy.down(), pytest.raises(ConnectionRefusedError):
        connect(proxy.listen)
    assert round_trip_s(proxy.listen) < 2.0

    assert proxy.destroy()
    assert harness.client.get_proxy("echo") is None
    with pytest.raises(ConnectionRefusedError):
        connect(proxy.listen)


def test_disabling_a_proxy_drops_its_open_connections(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.echo, name="echo")
    with connect(proxy.listen) as sock:
        sock.sendall(b"x")
        assert recv_exactly(sock, 1) == b"x"
        proxy.disable()
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(10) == b""


def test_proxy_json_shape_matches_toxiproxy(harness: Harness) -> None:
    created = requests.post(
        harness.url("/proxies"), json={"name": "p", "upstream": harness.echo}, timeout=5
    )
    assert created.status_code == 201
    body = created.json()
    assert set(body) == {"name", "listen", "upstream", "enabled", "toxics"}
    assert body["toxics"] == [] and body["enabled"] is True
    listing = requests.get(harness.url("/proxies"), timeout=5)
    assert listing.status_code == 200 and listing.json() == {"p": body}
    updated = requests.post(harness.url("/proxies/p"), json={"enabled": False}, timeout=5)
    assert updated.status_code == 200 and updated.json()["enabled"] is False
    assert requests.get(harness.url("/version"), timeout=5).json()["version"]
    assert requests.delete(harness.url("/proxies/p"), timeout=5).status_code == 204


def test_error_bodies_for_unknown_proxy_duplicate_name_and_bad_toxics(harness: Harness) -> None:
    missing = requests.get(harness.url("/proxies/nope"), timeout=5)
    assert missing.status_code == 404
    assert missing.json() == {"error": "proxy not found", "status": 404}
    assert requests.delete(harness.url("/proxies/nope"), timeout=5).status_code == 404

    requests.post(harness.url("/proxies"), json={"name": "p", "upstream": harness.echo}, timeout=5)
    duplicate = requests.post(
        harness.url("/proxies"), json={"name": "p", "upstream": harness.echo}, timeout=5
    )
    assert duplicate.status_code == 409
    assert duplicate.json() == {"error": "proxy already exists", "status": 409}

    no_upstream = requests.post(harness.url("/proxies"), json={"name": "q"}, timeout=5)
    assert no_upstream.status_code == 400
    assert no_upstream.json() == {"error": "missing required field: upstream", "status": 400}

    toxics = harness.url("/proxies/p/toxics")
    bad_type = requests.post(toxics, json={"type": "gremlins"}, timeout=5)
    assert bad_type.json() == {"error": "invalid toxic type", "status": 400}
    bad_stream = requests.post(toxics, json={"type": "latency", "stream": "sideways"}, timeout=5)
    assert bad_stream.status_code == 400
    assert "stream was invalid" in bad_stream.json()["error"]
    assert requests.post(toxics, json={"type": "latency"}, timeout=5).status_code == 200
    again = requests.post(toxics, json={"type": "latency"}, timeout=5)
    assert again.json() == {"error": "toxic already exists", "status": 409}
    gone = requests.delete(harness.url("/proxies/p/toxics/nope"), timeout=5)
    assert gone.json() == {"error": "toxic not found", "status": 404}

    not_loopback = requests.post(
        harness.url("/proxies"), json={"name": "r", "upstream": "192.0.2.1:80"}, timeout=5
    )
    assert not_loopback.status_code == 400

    # The client library maps the status codes to its exceptions.
    with pytest.raises(NotFound):
        harness.client.get_proxy("p").destroy_toxic("nope")
    with pytest.raises(ProxyExists):
        harness.client.create(upstream=harness.echo, name="p")
    with pytest.raises(InvalidToxic):
        harness.client.get_proxy("p").add_toxic(type="gremlins")


def test_toxics_are_listed_updated_and_removed(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.echo, name="echo")
    proxy.add_toxic(type="latency", attributes={"latency": 10})
    proxy.add_toxic(type="bandwidth", stream="upstream", name="slow", attributes={"rate": 100})
    toxics = proxy.toxics()
    assert set(toxics) == {"latency_downstream", "slow"}
    assert toxics["latency_downstream"].attributes == {"latency": 10, "jitter": 0}
    assert toxics["slow"].stream == "upstream"
    shown = requests.get(harness.url("/proxies/echo/toxics/slow"), timeout=5).json()
    assert shown == {
        "attributes": {"rate": 100},
        "name": "slow",
        "type": "bandwidth",
        "stream": "upstream",
        "toxicity": 1,
    }
    updated = requests.post(
        harness.url("/proxies/echo/toxics/slow"),
        json={"attributes": {"rate": 5}, "toxicity": 0.5},
        timeout=5,
    ).json()
    assert updated["attributes"] == {"rate": 5} and updated["toxicity"] == 0.5
    proxy.destroy_toxic("slow")
    assert set(proxy.toxics()) == {"latency_downstream"}
    assert harness.client.reset()
    assert proxy.toxics() == {}


# --- toxics ---------------------------------------------------------------------------------


def test_latency_delays_each_round_trip(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.echo, name="echo")
    assert round_trip_s(proxy.listen) < 0.25
    proxy.add_toxic(type="latency", attributes={"latency": 300, "jitter": 50})
    delayed = round_trip_s(proxy.listen)
    assert 0.25 <= delayed < 3.0, delayed
    proxy.add_toxic(type="latency", stream="upstream", attributes={"latency": 200})
    both = round_trip_s(proxy.listen)
    assert 0.45 <= both < 4.0, both
    proxy.destroy_toxic("latency_downstream")
    proxy.destroy_toxic("latency_upstream")
    assert round_trip_s(proxy.listen) < 0.45  # both latencies (0.5 s together) are gone


def test_latency_with_toxicity_zero_never_applies(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.echo, name="echo")
    proxy.add_toxic(type="latency", toxicity=0.0, attributes={"latency": 2000})
    assert round_trip_s(proxy.listen) < 1.5


def test_reset_peer_resets_the_connection(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.echo, name="echo")
    proxy.add_toxic(type="reset_peer", attributes={"timeout": 0})
    with connect(proxy.listen) as sock:
        sock.sendall(b"hello")
        with pytest.raises(ConnectionResetError):
            # The RST may arrive before or after a first empty read.
            for _ in range(100):
                if not sock.recv(10):
                    sock.sendall(b"more")


def test_limit_data_closes_after_the_byte_limit(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.echo, name="echo")
    proxy.add_toxic(type="limit_data", attributes={"bytes": 10})
    with connect(proxy.listen) as sock:
        sock.sendall(b"0123456789abcdefghij" * 5)
        try:
            received = recv_until_closed(sock)
        except ConnectionResetError:
            pytest.fail("limit_data must close, not reset")
    assert received == b"0123456789"


def test_timeout_stops_data_and_closes_after_its_timeout(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.echo, name="echo")
    proxy.add_toxic(type="timeout", attributes={"timeout": 0})
    with connect(proxy.listen) as sock:
        sock.settimeout(0.5)
        sock.sendall(b"lost")
        with pytest.raises(TimeoutError):
            sock.recv(10)
        proxy.destroy_toxic("timeout_downstream")
        sock.settimeout(SOCKET_TIMEOUT_S)
        sock.sendall(b"after")
        assert recv_exactly(sock, 5) == b"after"

    proxy.add_toxic(type="timeout", attributes={"timeout": 300})
    with connect(proxy.listen) as sock:
        started = time.monotonic()
        sock.sendall(b"lost")
        assert recv_until_closed(sock) == b""
        assert 0.2 <= time.monotonic() - started < 4.0


def test_bandwidth_throttles_to_its_rate(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.echo, name="echo")
    payload = bytes(range(256)) * 80  # 20 KiB
    fast = round_trip_s(proxy.listen, payload)
    proxy.add_toxic(type="bandwidth", attributes={"rate": 20})  # 20 KB/s
    slow = round_trip_s(proxy.listen, payload)
    assert slow >= 0.8, slow
    assert slow < 6.0 and fast < 0.5


def test_slicer_delivers_everything_in_small_delayed_pieces(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.echo, name="echo")
    proxy.add_toxic(
        type="slicer", attributes={"average_size": 10, "size_variation": 0, "delay": 20_000}
    )
    with connect(proxy.listen) as sock:
        payload = b"x" * 100
        sock.sendall(payload)
        pieces: list[bytes] = []
        while sum(map(len, pieces)) < len(payload):
            chunk = sock.recv(1000)
            assert chunk
            pieces.append(chunk)
    assert b"".join(pieces) == payload
    assert len(pieces) >= 3 and max(map(len, pieces)) < 100


def test_slow_close_delays_the_close(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.closer, name="closer")
    with connect(proxy.listen) as sock:
        started = time.monotonic()
        assert recv_until_closed(sock) == b""
        quick = time.monotonic() - started
    proxy.add_toxic(type="slow_close", attributes={"delay": 500})
    with connect(proxy.listen) as sock:
        started = time.monotonic()
        assert recv_until_closed(sock) == b""
        slow = time.monotonic() - started
    assert quick < 0.4 and 0.45 <= slow < 4.0, (quick, slow)


def test_toxics_added_to_an_open_connection_take_effect(harness: Harness) -> None:
    proxy = harness.client.create(upstream=harness.echo, name="echo")
    with connect(proxy.listen) as sock:
        sock.sendall(b"a")
        assert recv_exactly(sock, 1) == b"a"
        proxy.add_toxic(type="latency", attributes={"latency": 300})
        started = time.monotonic()
        sock.sendall(b"b")
        assert recv_exactly(sock, 1) == b"b"
        assert time.monotonic() - started >= 0.25


def test_main_refuses_a_non_loopback_host() -> None:
    from chaos.toxiproxy import main

    with pytest.raises(SystemExit):
        main(["--host", "0.0.0.0", "--port", "0"])


def test_main_serves_the_api_until_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", "from chaos.toxiproxy import main; main(['--port', '0'])"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # bounded: the process prints it or exits
        assert line.startswith("toxiproxy API on 127.0.0.1:"), line
        address = line.split()[-1]
        version = requests.get(f"http://{address}/version", timeout=5)
        assert version.status_code == 200 and "version" in version.json()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
