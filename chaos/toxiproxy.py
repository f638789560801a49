"""A fault-injecting TCP proxy server that speaks Toxiproxy 2.x's HTTP API, on loopback.

Owns: the proxies (each a listener on 127.0.0.1 that forwards every accepted connection to
its upstream) and the toxics that degrade them — ``latency`` (with jitter), ``timeout``,
``bandwidth``, ``reset_peer``, ``slow_close``, ``limit_data``, ``slicer`` and ``noop`` — on
the ``upstream`` (client to server) or ``downstream`` (server to client) stream, each applied
to a connection with probability ``toxicity``. The HTTP API has Toxiproxy's routes, JSON
shapes, status codes and error bodies (``{"error": "proxy not found", "status": 404}``), so
the ``toxiproxy-python`` client and the Go client drive it, and tests written against it run
unchanged against a real Toxiproxy (which ``docker-compose.yml`` uses).

Must never: listen or connect anywhere but loopback (a non-loopback ``listen`` or
``upstream`` is refused with 400 unless the server is built with ``loopback_only=False``);
hold unbounded data (each direction of a connection buffers at most
``MAX_QUEUED_CHUNKS`` reads of ``READ_CHUNK_BYTES``); be imported by production code.

Known differences from Toxiproxy: ``reset_peer`` resets both sockets of the connection;
there are no metrics, HTTP toxics or ``limit_time``/``slow_open`` toxics.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import random
import signal
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

VERSION = "2.12.0-quiver"
DEFAULT_API_PORT = 8474
READ_CHUNK_BYTES = 32 * 1024
MAX_QUEUED_CHUNKS = 16
MAX_HTTP_HEADER_BYTES = 64 * 1024
MAX_HTTP_BODY_BYTES = 1024 * 1024
HTTP_IDLE_TIMEOUT_S = 60.0
UPSTREAM_CONNECT_TIMEOUT_S = 5.0
# Bandwidth is paced in slices of this length so that a large chunk is not one long sleep.
BANDWIDTH_SLICE_S = 0.1

STREAMS = ("upstream", "downstream")

# Each toxic type's attributes and their defaults (all integers), in Toxiproxy's JSON order.
TOXIC_ATTRIBUTES: dict[str, dict[str, int]] = {
    "noop": {},
    "latency": {"latency": 0, "jitter": 0},
    "timeout": {"timeout": 0},
    "bandwidth": {"rate": 0},
    "reset_peer": {"timeout": 0},
    "slow_close": {"delay": 0},
    "limit_data": {"bytes": 0},
    "slicer": {"average_size": 0, "size_variation": 0, "delay": 0},
}


class ApiError(Exception):
    """An error with Toxiproxy's status code and message."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def body(self) -> dict[str, Any]:
        return {"error": self.message, "status": self.status}


def _bad_body(detail: str) -> ApiError:
    return ApiError(f"bad request body: {detail}", 400)


PROXY_NOT_FOUND = ApiError("proxy not found", 404)
PROXY_EXISTS = ApiError("proxy already exists", 409)
INVALID_STREAM = ApiError("stream was invalid, can be either upstream or downstream", 400)
INVALID_TOXIC_TYPE = ApiError("invalid toxic type", 400)
TOXIC_EXISTS = ApiError("toxic already exists", 409)
TOXIC_NOT_FOUND = ApiError("toxic not found", 404)


def _missing_field(name: str) -> ApiError:
    return ApiError(f"missing required field: {name}", 400)


def _is_loopback(address: str) -> bool:
    host, _, _port = address.rpartition(":")
    host = host.strip("[]")
    if host in ("localhost", ""):
        return host == "localhost"
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _split_address(address: str) -> tuple[str, int]:
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise _bad_body(f"address {address!r} is not host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


# --- toxics ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Toxic:
    name: str
    type: str
    stream: str
    toxicity: float
    attributes: dict[str, int]
    # Bumped on every update, so each connection re-rolls its toxicity and restarts state.
    generation: int = 0

    def to_json(self) -> dict[str, Any]:
        toxicity: float | int = self.toxicity
        if float(toxicity).is_integer():
            toxicity = int(toxicity)  # Go marshals float32 1.0 as 1
        return {
            "attributes": dict(self.attributes),
            "name": self.name,
            "type": self.type,
            "stream": self.stream,
            "toxicity": toxicity,
        }


def _parse_attributes(kind: str, given: Any, base: dict[str, int]) -> dict[str, int]:
    if given is None:
        return dict(base)
    if not isinstance(given, dict):
        raise _bad_body("json: attributes must be an object")
    attributes = dict(base)
    for name, value in given.items():
        if name not in attributes:
            continue  # Go's decoder ignores unknown fields
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad_body(
                f"json: cannot unmarshal {type(value).__name__} into Go struct field "
                f"{kind}.attributes.{name} of type int64"
            )
        attributes[name] = value
    return attributes


def _parse_toxicity(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad_body("json: toxicity must be a number")
    return float(value)


# --- connections ----------------------------------------------------------------------------


class _Closed(Exception):
    """The connection is over; the direction's pump stops."""


@dataclass(slots=True)
class _ToxicState:
    generation: int
    active: bool
    activated_at: float
    bytes_sent: int = 0


@dataclass(slots=True, eq=False)
class _Connection:
    client_reader: asyncio.StreamReader
    client_writer: asyncio.StreamWriter
    upstream_reader: asyncio.StreamReader
    upstream_writer: asyncio.StreamWriter
    closed: asyncio.Event = field(default_factory=asyncio.Event)

    def close(self, reset: bool = False) -> None:
        if self.closed.is_set():
            return
        self.closed.set()
        for writer in (self.client_writer, self.upstream_writer):
            if reset:
                sock = writer.get_extra_info("socket")
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                writer.transport.abort()
            else:
                writer.close()


class Proxy:
    """One named proxy: a loopback listener and the connections it forwards."""

    def __init__(self, name: str, listen: str, upstream: str, rng: random.Random) -> None:
        self.name = name
        self.listen = listen
        self.upstream = upstream
        self.enabled = False
        self.toxics: dict[str, Toxic] = {}
        self._rng = rng
        self._server: asyncio.Server | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._connections: set[_Connection] = set()
        self._changed = asyncio.Event()

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "listen": self.listen,
            "upstream": self.upstream,
            "enabled": self.enabled,
            "toxics": [toxic.to_json() for toxic in self.ordered_toxics()],
        }

    def ordered_toxics(self, stream: str | None = None) -> list[Toxic]:
        # Toxiproxy lists upstream toxics first, then downstream, each in order of addition.
        return [
            toxic
            for direction in STREAMS
            for toxic in self.toxics.values()
            if toxic.stream == direction and (stream is None or stream == direction)
        ]

    def toxics_changed(self) -> None:
        old, self._changed = self._changed, asyncio.Event()
        old.set()

    async def start(self) -> None:
        if self.enabled:
            return
        host, port = _split_address(self.listen)
        try:
            self._server = await asyncio.start_server(self._accept, host, port)
        except OSError as error:
            raise ApiError(f"listen tcp {self.listen}: {error.strerror or error}", 500) from error
        sockname = self._server.sockets[0].getsockname()
        self.listen = f"{sockname[0]}:{sockname[1]}"
        self.enabled = True

    async def stop(self) -> None:
        if not self.enabled:
            return
        self.enabled = False
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for connection in list(self._connections):
            connection.close()
        handlers = list(self._handlers)
        for handler in handlers:
            handler.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        if server is not None:
            await server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        finally:
            self._handlers.discard(task)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        host, port = _split_address(self.upstream)
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(
                asyncio.open_connection(host, port), UPSTREAM_CONNECT_TIMEOUT_S
            )
        except (OSError, TimeoutError) as error:
            log.info("proxy %s: upstream %s unreachable: %s", self.name, self.upstream, error)
            writer.close()
            return
        connection = _Connection(reader, writer, upstream_reader, upstream_writer)
        self._connections.add(connection)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._pump(connection, "upstream"))
                group.create_task(self._pump(connection, "downstream"))
        finally:
            self._connections.discard(connection)
            connection.close()

    async def _pump(self, connection: _Connection, stream: str) -> None:
        if stream == "upstream":
            source, sink = connection.client_reader, connection.upstream_writer
        else:
            source, sink = connection.upstream_reader, connection.client_writer
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(MAX_QUEUED_CHUNKS)
        async with asyncio.TaskGroup() as group:
            reader = group.create_task(self._read(source, queue))
            try:
                await _Direction(self, connection, stream, queue, sink, self._rng).run()
            except _Closed:
                pass
            except (ConnectionError, OSError) as error:
                log.debug("proxy %s %s: %s", self.name, stream, error)
            finally:
                reader.cancel()
                connection.close()

    @staticmethod
    async def _read(
        source: asyncio.StreamReader, queue: asyncio.Queue[tuple[float, bytes]]
    ) -> None:
        while True:
            try:
                data = await source.read(READ_CHUNK_BYTES)
            except (ConnectionError, OSError):
                data = b""
            await queue.put((time.monotonic(), data))
            if not data:
                return

    def changed_event(self) -> asyncio.Event:
        return self._changed


class _Direction:
    """One direction of one connection: takes chunks in order and passes them through toxics."""

    def __init__(
        self,
        proxy: Proxy,
        connection: _Connection,
        stream: str,
        queue: asyncio.Queue[tuple[float, bytes]],
        sink: asyncio.StreamWriter,
        rng: random.Random,
    ) -> None:
        self.proxy = proxy
        self.connection = connection
        self.stream = stream
        self.queue = queue
        self.sink = sink
        self.rng = rng
        self.states: dict[str, _ToxicState] = {}

    def active_toxics(self) -> list[tuple[Toxic, _ToxicState]]:
        now = time.monotonic()
        current = self.proxy.ordered_toxics(self.stream)
        names = {toxic.name for toxic in current}
        for name in list(self.states):
            if name not in names:
                del self.states[name]
        active: list[tuple[Toxic, _ToxicState]] = []
        for toxic in current:
            state = self.states.get(toxic.name)
            if state is None or state.generation != toxic.generation:
                roll = self.rng.random() < toxic.toxicity
                state = _ToxicState(toxic.generation, roll, now)
                self.states[toxic.name] = state
            if state.active:
                active.append((toxic, state))
        return active

    async def _wait(self, awaitable: Awaitable[Any] | None, until: float | None) -> bool:
        """Wait for ``awaitable``, a toxic change, the connection's end, or ``until``.

        True when ``awaitable`` finished (or there was none and the deadline passed).
        """
        changed = self.proxy.changed_event()
        waiters: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(changed.wait()),
            asyncio.ensure_future(self.connection.closed.wait()),
        ]
        target: asyncio.Future[Any] | None = None
        if awaitable is not None:
            target = asyncio.ensure_future(awaitable)
            waiters.append(target)
        timeout = None if until is None else max(0.0, until - time.monotonic())
        try:
            done, _ = await asyncio.wait(waiters, timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            for waiter in waiters[:2]:
                waiter.cancel()
        if self.connection.closed.is_set():
            raise _Closed
        if target is not None:
            return target in done
        return until is not None and time.monotonic() >= until

    async def run(self) -> None:
        pending: asyncio.Task[tuple[float, bytes]] | None = None
        try:
            while True:
                toxics = self.active_toxics()
                kinds = {toxic.type: (toxic, state) for toxic, state in reversed(toxics)}
                if "timeout" in kinds:
                    await self._timeout(*kinds["timeout"])
                    continue
                if pending is None:
                    pending = asyncio.ensure_future(self.queue.get())
                if not await self._wait(pending, None):
                    continue
                arrived, data = pending.result()
                pending = None
                if "reset_peer" in kinds:
                    toxic, _ = kinds["reset_peer"]
                    await asyncio.sleep(toxic.attributes["timeout"] / 1000)
                    self.connection.close(reset=True)
                    raise _Closed
                if not data:
                    if "slow_close" in kinds:
                        await asyncio.sleep(kinds["slow_close"][0].attributes["delay"] / 1000)
                    raise _Closed
                await self._deliver(arrived, data, toxics)
        finally:
            if pending is not None:
                pending.cancel()

    async def _timeout(self, toxic: Toxic, state: _ToxicState) -> None:
        """Drop data until the toxic goes; close the connection after ``timeout`` ms if set."""
        timeout_ms = toxic.attributes["timeout"]
        until = state.activated_at + timeout_ms / 1000 if timeout_ms > 0 else None
        changed = self.proxy.changed_event()
        while not changed.is_set():
            get = asyncio.ensure_future(self.queue.get())
            try:
                got = await self._wait(get, until)
            finally:
                get.cancel()
            if until is not None and time.monotonic() >= until:
                raise _Closed
            if got and not get.result()[1]:
                raise _Closed  # the source closed; nothing more will come

    async def _deliver(
        self, arrived: float, data: bytes, toxics: list[tuple[Toxic, _ToxicState]]
    ) -> None:
        pieces = [data]
        for toxic, state in toxics:
            attributes = toxic.attributes
            if toxic.type == "latency":
                jitter = attributes["jitter"]
                delay_ms = attributes["latency"] + (
                    self.rng.uniform(-jitter, jitter) if jitter else 0
                )
                release = arrived + max(0.0, delay_ms) / 1000
                await self._sleep_until(release)
            elif toxic.type == "limit_data":
                allowed = attributes["bytes"] - state.bytes_sent
                kept: list[bytes] = []
                for piece in pieces:
                    if allowed <= 0:
                        break
                    kept.append(piece[:allowed])
                    allowed -= len(kept[-1])
                state.bytes_sent += sum(len(piece) for piece in kept)
                pieces = kept
                if state.bytes_sent >= attributes["bytes"]:
                    await self._write(pieces, None, 0)
                    raise _Closed
            elif toxic.type == "slicer":
                pieces = [
                    slice_
                    for piece in pieces
                    for slice_ in self._slices(
                        piece, attributes["average_size"], attributes["size_variation"]
                    )
                ]
        bandwidth = next((t for t, _ in toxics if t.type == "bandwidth"), None)
        slicer = next((t for t, _ in toxics if t.type == "slicer"), None)
        await self._write(
            pieces,
            bandwidth.attributes["rate"] if bandwidth is not None else None,
            slicer.attributes["delay"] if slicer is not None else 0,
        )

    def _slices(self, data: bytes, average: int, variation: int) -> list[bytes]:
        if average <= 0:
            return [data]
        out: list[bytes] = []
        start = 0
        while start < len(data):
            size = average + (self.rng.randint(-variation, variation) if variation else 0)
            size = max(1, size)
            out.append(data[start : start + size])
            start += size
        return out

    async def _write(self, pieces: list[bytes], rate_kbps: int | None, delay_us: int) -> None:
        for index, piece in enumerate(pieces):
            if index and delay_us:
                await self._sleep_until(time.monotonic() + delay_us / 1_000_000)
            if rate_kbps:
                # Pace at rate KB/s in slices of BANDWIDTH_SLICE_S.
                step = max(1, int(rate_kbps * 1000 * BANDWIDTH_SLICE_S))
                for start in range(0, len(piece), step):
                    part = piece[start : start + step]
                    await self._send(part)
                    await self._sleep_until(time.monotonic() + len(part) / (rate_kbps * 1000))
            else:
                await self._send(piece)

    async def _send(self, data: bytes) -> None:
        if self.connection.closed.is_set():
            raise _Closed
        self.sink.write(data)
        await self.sink.drain()

    async def _sleep_until(self, until: float) -> None:
        while time.monotonic() < until:
            if self.connection.closed.is_set():
                raise _Closed
            await asyncio.sleep(min(0.05, max(0.0, until - time.monotonic())))


# --- the HTTP API ---------------------------------------------------------------------------


@dataclass(slots=True)
class _Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass(slots=True)
class _Response:
    status: int
    body: Any = None  # JSON value, or None for no body
    text: str | None = None


_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Request Entity Too Large",
    500: "Internal Server Error",
}


class ToxiproxyServer:
    """The API server and its proxies. ``await start()``, then ``await stop()``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_API_PORT,
        seed: int | None = None,
        loopback_only: bool = True,
    ) -> None:
        if loopback_only and not _is_loopback(f"{host}:0"):
            raise ValueError(f"the API listens on loopback only, not {host}")
        self.host = host
        self.port = port
        self.loopback_only = loopback_only
        self.proxies: dict[str, Proxy] = {}
        self._rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.Task[None]] = set()
        self._lock = asyncio.Lock()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._client, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for proxy in list(self.proxies.values()):
            await proxy.stop()
        clients = list(self._clients)
        for client in clients:
            client.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()
            self._server = None

    # -- HTTP plumbing --

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._clients.add(task)
        try:
            while True:
                try:
                    request = await asyncio.wait_for(_read_request(reader), HTTP_IDLE_TIMEOUT_S)
                except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
                    return
                except ApiError as error:
                    await _write_response(writer, _Response(error.status, error.body()), False)
                    return
                if request is None:
                    return
                response = await self._route(request)
                keep_alive = request.headers.get("connection", "").lower() != "close"
                await _write_response(writer, response, keep_alive)
                if not keep_alive:
                    return
        finally:
            self._clients.discard(task)
            writer.close()

    async def _route(self, request: _Request) -> _Response:
        if request.headers.get("user-agent", "").startswith("Mozilla/"):
            return _Response(403, text="User agent not allowed\n")
        parts = [part for part in request.path.split("?")[0].split("/") if part]
        routes: dict[tuple[str, ...], dict[str, Callable[..., Awaitable[_Response]]]] = {
            ("reset",): {"POST": self._reset},
            ("version",): {"GET": self._version},
            ("populate",): {"POST": self._populate},
            ("proxies",): {"GET": self._proxy_index, "POST": self._proxy_create},
            ("proxies", "*"): {
                "GET": self._proxy_show,
                "POST": self._proxy_update,
                "PATCH": self._proxy_update,
                "DELETE": self._proxy_delete,
            },
            ("proxies", "*", "toxics"): {"GET": self._toxic_index, "POST": self._toxic_create},
            ("proxies", "*", "toxics", "*"): {
                "GET": self._toxic_show,
                "POST": self._toxic_update,
                "PATCH": self._toxic_update,
                "DELETE": self._toxic_delete,
            },
        }
        shape = tuple("*" if i % 2 else part for i, part in enumerate(parts))
        if len(parts) >= 1 and parts[0] != "proxies":
            shape = tuple(parts)
        methods = routes.get(shape)
        if methods is None:
            return _Response(404, text="404 page not found\n")
        handler = methods.get(request.method)
        if handler is None:
            return _Response(405, text="")
        args = [parts[i] for i in range(1, len(parts), 2)]
        async with self._lock:
            try:
                return await handler(request, *args)
            except ApiError as error:
                return _Response(error.status, error.body())

    # -- handlers --

    def _json_body(self, request: _Request) -> Any:
        try:
            return json.loads(request.body or b"null")
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise _bad_body(str(error)) from error

    def _proxy(self, name: str) -> Proxy:
        proxy = self.proxies.get(name)
        if proxy is None:
            raise PROXY_NOT_FOUND
        return proxy

    def _check_addresses(self, listen: str, upstream: str) -> None:
        if self.loopback_only:
            for what, address in (("listen", listen), ("upstream", upstream)):
                if not _is_loopback(address):
                    raise _bad_body(f"{what} {address!r} is not a loopback address")
        _split_address(listen)
        _split_address(upstream)

    async def _reset(self, _request: _Request) -> _Response:
        for proxy in self.proxies.values():
            await proxy.start()
            proxy.toxics.clear()
            proxy.toxics_changed()
        return _Response(204)

    async def _version(self, _request: _Request) -> _Response:
        return _Response(200, {"version": VERSION})

    async def _proxy_index(self, _request: _Request) -> _Response:
        return _Response(200, {name: proxy.to_json() for name, proxy in self.proxies.items()})

    async def _create(self, data: Any) -> Proxy:
        if not isinstance(data, dict):
            raise _bad_body("json: a proxy must be an object")
        name = data.get("name") or ""
        upstream = data.get("upstream") or ""
        listen = data.get("listen") or "127.0.0.1:0"
        enabled = data.get("enabled", True)
        if not isinstance(name, str) or not name:
            raise _missing_field("name")
        if not isinstance(upstream, str) or not upstream:
            raise _missing_field("upstream")
        if not isinstance(listen, str) or not isinstance(enabled, bool):
            raise _bad_body("json: listen must be a string and enabled a boolean")
        if name in self.proxies:
            raise PROXY_EXISTS
        self._check_addresses(listen, upstream)
        proxy = Proxy(name, listen, upstream, self._rng)
        if enabled:
            await proxy.start()
        self.proxies[name] = proxy
        return proxy

    async def _proxy_create(self, request: _Request) -> _Response:
        proxy = await self._create(self._json_body(request))
        return _Response(201, proxy.to_json())

    async def _populate(self, request: _Request) -> _Response:
        data = self._json_body(request)
        if not isinstance(data, list):
            raise _bad_body("json: populate takes an array of proxies")
        created: list[dict[str, Any]] = []
        for item in data:
            if not isinstance(item, dict):
                raise _bad_body("json: a proxy must be an object")
            existing = self.proxies.get(str(item.get("name", "")))
            if existing is not None and (
                existing.upstream != item.get("upstream")
                or existing.listen != item.get("listen", existing.listen)
            ):
                await existing.stop()
                del self.proxies[existing.name]
                existing = None
            if existing is None:
                try:
                    created.append((await self._create(item)).to_json())
                except ApiError as error:
                    return _Response(error.status, {**error.body(), "proxies": created})
        return _Response(201, {"proxies": created})

    async def _proxy_show(self, _request: _Request, name: str) -> _Response:
        return _Response(200, self._proxy(name).to_json())

    async def _proxy_update(self, request: _Request, name: str) -> _Response:
        proxy = self._proxy(name)
        data = self._json_body(request)
        if not isinstance(data, dict):
            raise _bad_body("json: a proxy must be an object")
        listen = data.get("listen", proxy.listen)
        upstream = data.get("upstream", proxy.upstream)
        enabled = data.get("enabled", proxy.enabled)
        if not (isinstance(listen, str) and isinstance(upstream, str)) or not isinstance(
            enabled, bool
        ):
            raise _bad_body("json: listen/upstream must be strings and enabled a boolean")
        self._check_addresses(listen, upstream)
        if (listen, upstream) != (proxy.listen, proxy.upstream):
            was_enabled = proxy.enabled
            await proxy.stop()
            proxy.listen, proxy.upstream = listen, upstream
            if was_enabled and enabled:
                await proxy.start()
        if enabled and not proxy.enabled:
            await proxy.start()
        elif not enabled and proxy.enabled:
            await proxy.stop()
        return _Response(200, proxy.to_json())

    async def _proxy_delete(self, _request: _Request, name: str) -> _Response:
        proxy = self._proxy(name)
        await proxy.stop()
        del self.proxies[name]
        return _Response(204)

    async def _toxic_index(self, _request: _Request, name: str) -> _Response:
        return _Response(200, [toxic.to_json() for toxic in self._proxy(name).ordered_toxics()])

    async def _toxic_create(self, request: _Request, name: str) -> _Response:
        proxy = self._proxy(name)
        data = self._json_body(request)
        if not isinstance(data, dict):
            raise _bad_body("json: a toxic must be an object")
        stream = data.get("stream") or "downstream"
        if stream not in STREAMS:
            raise INVALID_STREAM
        kind = data.get("type")
        toxic_name = data.get("name") or f"{kind}_{stream}"
        if not isinstance(kind, str) or kind not in TOXIC_ATTRIBUTES:
            raise INVALID_TOXIC_TYPE
        if not isinstance(toxic_name, str):
            raise _bad_body("json: name must be a string")
        if toxic_name in proxy.toxics:
            raise TOXIC_EXISTS
        toxicity = _parse_toxicity(data.get("toxicity", 1.0))
        attributes = _parse_attributes(kind, data.get("attributes"), TOXIC_ATTRIBUTES[kind])
        toxic = Toxic(toxic_name, kind, stream, toxicity, attributes)
        proxy.toxics[toxic_name] = toxic
        proxy.toxics_changed()
        return _Response(200, toxic.to_json())

    async def _toxic_show(self, _request: _Request, name: str, toxic_name: str) -> _Response:
        toxic = self._proxy(name).toxics.get(toxic_name)
        if toxic is None:
            raise TOXIC_NOT_FOUND
        return _Response(200, toxic.to_json())

    async def _toxic_update(self, request: _Request, name: str, toxic_name: str) -> _Response:
        proxy = self._proxy(name)
        toxic = proxy.toxics.get(toxic_name)
        if toxic is None:
            raise TOXIC_NOT_FOUND
        data = self._json_body(request)
        if not isinstance(data, dict):
            raise _bad_body("json: a toxic must be an object")
        attributes = _parse_attributes(toxic.type, data.get("attributes"), toxic.attributes)
        toxicity = _parse_toxicity(data.get("toxicity", toxic.toxicity))
        toxic.attributes, toxic.toxicity = attributes, toxicity
        toxic.generation += 1
        proxy.toxics_changed()
        return _Response(200, toxic.to_json())

    async def _toxic_delete(self, _request: _Request, name: str, toxic_name: str) -> _Response:
        proxy = self._proxy(name)
        if proxy.toxics.pop(toxic_name, None) is None:
            raise TOXIC_NOT_FOUND
        proxy.toxics_changed()
        return _Response(204)


async def _read_request(reader: asyncio.StreamReader) -> _Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as error:
        if not error.partial:
            return None
        raise
    except asyncio.LimitOverrunError as error:
        raise ApiError("request header too large", 400) from error
    if len(head) > MAX_HTTP_HEADER_BYTES:
        raise ApiError("request header too large", 400)
    lines = head.decode("latin-1").split("\r\n")
    try:
        method, path, _version = lines[0].split(" ", 2)
    except ValueError as error:
        raise ApiError("malformed request line", 400) from error
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length > MAX_HTTP_BODY_BYTES:
        raise ApiError("request body too large", 413)
    body = await reader.readexactly(length) if length else b""
    return _Request(method.upper(), path, headers, body)


async def _write_response(
    writer: asyncio.StreamWriter, response: _Response, keep_alive: bool
) -> None:
    if response.text is not None:
        payload = response.text.encode()
        content_type = "text/plain; charset=utf-8"
    elif response.body is not None:
        payload = json.dumps(response.body, separators=(",", ":")).encode()
        if response.status >= 400:
            payload += b"\n"  # Go's http.Error ends the body with a newline
        content_type = "application/json"
    else:
        payload, content_type = b"", ""
    lines = [f"HTTP/1.1 {response.status} {_REASONS.get(response.status, 'Unknown')}"]
    if content_type:
        lines.append(f"Content-Type: {content_type}")
    if response.status != 204:
        lines.append(f"Content-Length: {len(payload)}")
    lines.append("Connection: keep-alive" if keep_alive else "Connection: close")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
    await writer.drain()


class BackgroundToxiproxy:
    """A server on its own event loop in a daemon thread, for synchronous tests and tools.

    >>> with BackgroundToxiproxy() as toxiproxy:
    ...     host, port = toxiproxy.host, toxiproxy.port  # point toxiproxy-python here
    """

    STARTUP_TIMEOUT_S = 10.0

    def __init__(self, host: str = "127.0.0.1", port: int = 0, seed: int | None = None) -> None:
        self.server = ToxiproxyServer(host, port, seed)
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    def run(self, coroutine: Awaitable[Any], timeout_s: float = STARTUP_TIMEOUT_S) -> Any:
        """Run a coroutine on the server's loop and wait for its result."""

        async def wrapped() -> Any:
            return await coroutine

        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout_s)

    @staticmethod
    async def _cancel_others() -> None:
        """Cancel and join what else runs on the loop (servers a test started on it)."""
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    def start(self) -> BackgroundToxiproxy:
        self._thread.start()
        self.run(self.server.start())
        return self

    def stop(self) -> None:
        try:
            self.run(self.server.stop())
            self.run(self._cancel_others())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(self.STARTUP_TIMEOUT_S)
            if not self._thread.is_alive():
                self.loop.close()

    def __enter__(self) -> BackgroundToxiproxy:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


# --- entry point ----------------------------------------------------------------------------


async def serve(host: str, port: int, seed: int | None, ready: Callable[[str], None]) -> None:
    """Run a server until SIGINT or SIGTERM."""
    server = ToxiproxyServer(host, port, seed)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    ready(server.address)
    try:
        await stop.wait()
    finally:
        await server.stop()


def main(argv: list[str] | None = None) -> int:
    """``quiver chaos proxy [--host 127.0.0.1] [--port 8474] [--seed N]``."""
    parser = argparse.ArgumentParser(
        prog="quiver chaos proxy",
        description="A Toxiproxy-compatible fault proxy (HTTP API) on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="API address (loopback only)")
    parser.add_argument("--port", type=int, default=DEFAULT_API_PORT, help="API port")
    parser.add_argument("--seed", type=int, default=None, help="seed for jitter and toxicity")
    args = parser.parse_args(argv)
    if not _is_loopback(f"{args.host}:0"):
        parser.error(f"--host must be a loopback address, not {args.host}")
    asyncio.run(
        serve(args.host, args.port, args.seed, lambda a: print(f"toxiproxy API on {a}", flush=True))
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
