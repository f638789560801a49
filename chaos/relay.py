"""A byte relay between a Unix socket and TCP: how a chaos harness reaches a node inside a
network namespace.

Owns one listener and, per accepted connection, one connection upstream, with bytes copied
both ways until either side closes. Each end is ``unix:/path`` or ``host:port``. Two of them
carry a client's connection into a namespace without any interface, address or route in
the host's namespace: one in the host's namespace (``127.0.0.1:P`` to ``unix:/path``), one
inside the node's (``unix:/path`` to the node's client port), the socket file crossing
between them, since namespaces share the filesystem.

Must never: listen anywhere but a Unix socket or loopback, or keep more than
``MAX_CONNECTIONS`` open.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
from collections.abc import Sequence
from typing import Final

MAX_CONNECTIONS: Final = 256
CHUNK_BYTES: Final = 64 * 1024
CONNECT_TIMEOUT_S: Final = 5.0


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while chunk := await reader.read(CHUNK_BYTES):
            writer.write(chunk)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(ConnectionError, OSError):
            writer.close()


async def _connect(address: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if address.startswith("unix:"):
        return await asyncio.open_unix_connection(address[5:])
    host, _, port = address.rpartition(":")
    return await asyncio.open_connection(host, int(port))


async def serve(listen: str, upstream: str) -> None:
    slots = asyncio.Semaphore(MAX_CONNECTIONS)

    async def relay(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        if slots.locked():
            client_writer.close()
            return
        async with slots:
            try:
                upstream_reader, upstream_writer = await asyncio.wait_for(
                    _connect(upstream), CONNECT_TIMEOUT_S
                )
            except (OSError, TimeoutError):
                client_writer.close()  # the node is down: the client sees a reset
                return
            async with asyncio.TaskGroup() as pipes:
                pipes.create_task(_pipe(client_reader, upstream_writer))
                pipes.create_task(_pipe(upstream_reader, client_writer))

    if listen.startswith("unix:"):
        path = listen[5:]
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        server = await asyncio.start_unix_server(relay, path)
    else:
        host, _, port = listen.rpartition(":")
        if host != "127.0.0.1":
            raise ValueError("a relay listens on a Unix socket or on 127.0.0.1 only")
        path = ""
        server = await asyncio.start_server(relay, host, int(port))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with server:
        await stop.wait()
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos.relay")
    parser.add_argument("listen", help="unix:/path or 127.0.0.1:port to listen on")
    parser.add_argument("upstream", help="unix:/path or host:port to relay to")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.listen, args.upstream))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
