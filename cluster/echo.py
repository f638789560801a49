"""A bare gRPC echo service for ``quiver bench cluster``: the limit a Quiver node is measured
against. Same stack as a node's client port (grpc.aio, TLS with the node's certificate, the
same channel options, the same handler kind as a node's ``Query.Run``), and the same message
shapes: a unary request answered by a stream of responses whose sizes the caller names.
Nothing else: no Raft, no disk, no query.

Run as ``python -m cluster.echo --cert C --key K --listen 127.0.0.1:PORT``; it serves until
SIGTERM. Must never: listen beyond loopback in the benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import grpc

from cluster import eventloop
from cluster.transport import SERVER_OPTIONS

METHOD: Final = "/quiver.bench.Echo/Echo"
MAX_RESPONSES: Final = 16
MAX_RESPONSE_BYTES: Final = 1 << 20
_HEAD = struct.Struct(">B")
_SIZE = struct.Struct(">I")


def request(size: int, response_sizes: Sequence[int]) -> bytes:
    """A request of `size` bytes asking for responses of `response_sizes` bytes."""
    head = _HEAD.pack(len(response_sizes)) + b"".join(_SIZE.pack(n) for n in response_sizes)
    return head + b"\0" * max(0, size - len(head))


async def _echo(data: bytes, context: grpc.aio.ServicerContext) -> bytes:  # type: ignore[type-arg]
    """The responses asked for: every one but the last written as it comes, the last returned
    to go out with the status, as a node serves ``Query.Run`` (``service.add_query_service``:
    on the wire, the frames of a server stream)."""
    count = min(_HEAD.unpack_from(data)[0], MAX_RESPONSES)
    last = b""
    for i in range(count):
        if i:
            await context.write(last)
        (size,) = _SIZE.unpack_from(data, _HEAD.size + i * _SIZE.size)
        last = b"\0" * min(size, MAX_RESPONSE_BYTES)
    return last


async def serve(cert: Path, key: Path, listen: str) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    handler = grpc.unary_unary_rpc_method_handler(_echo)
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("quiver.bench.Echo", {"Echo": handler}),)
    )
    credentials = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    server.add_secure_port(listen, credentials)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cluster.echo")
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--listen", required=True)
    args = parser.parse_args(argv)
    # The node's loop ($QUIVER_EVENT_LOOP, inherited): the same stack doing no work.
    eventloop.run(serve(Path(args.cert), Path(args.key), args.listen))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
