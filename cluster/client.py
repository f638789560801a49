"""The Python client: ``cluster.connect(...)`` (synchronous) and ``cluster.connect_async(...)``
(asyncio, on ``grpc.aio``).

Owns the I/O of a client: channels over TLS to the members, leader discovery (the Admin
status of any node names the leader), the Run stream, explicit transactions, and the pauses
between retries. Every decision — which node, whether and when to retry, what the leader is,
which bookmark to carry, the request id — is made by ``cluster.session.Session``, which both
clients are, so the two behave alike: writes and linearizable reads go to the leader; causal
and stale reads to a replica in the client's zone when there is one; a retryable error is
retried with backoff under a deadline, each retry with the *same* request id (client id,
sequence) so that the cluster applies a write at most once.

Must never: retry with a new request id, retry forever, or retry a commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, Final

import grpc
import grpc.aio
import grpc.experimental

from cluster import errors
from cluster.config import ClusterFile, load_cluster
from cluster.errors import QuiverError
from cluster.security.client_auth import (
    AuthInterceptor,
    Metadata,
    async_interceptors,
    auth_metadata,
    credentials_file,
)
from cluster.session import (
    DEFAULT_TIMEOUT_S,
    MAX_WRITE_LANES,
    STATUS_TIMEOUT_S,
    Call,
    ClientError,
    DatabaseError,
    Member,
    Record,
    Result,
    ResultBuilder,
    Session,
    TransientError,
    client_error,
    typed,
)
from cluster.transport import CHANNEL_OPTIONS
from proto import admin_pb2, admin_pb2_grpc, client_pb2, client_pb2_grpc

SYNC_CHANNEL_OPTIONS: Final = (
    *CHANNEL_OPTIONS,
    (grpc.experimental.ChannelOptions.SingleThreadedUnaryStream, 1),
)
"""The synchronous client's channels read a ``Run`` stream on the calling thread. By default
grpcio starts a thread per unary-stream call to poll it; measured here, reading on the
caller's thread takes the client's CPU per statement from 0.96 to 0.55 ms. The calling
thread is the only one that reads a call's responses, which is all this client does."""

__all__ = [
    "AsyncClient",
    "AsyncTransaction",
    "Client",
    "ClientError",
    "DatabaseError",
    "QuiverError",
    "Record",
    "Result",
    "Transaction",
    "TransientError",
    "connect",
    "connect_async",
]

_Member = Member  # the name tests and tools used before the session was factored out


def _rpc_error(error: grpc.RpcError) -> QuiverError:
    return typed(errors.from_rpc_error(error))


class _Connected(Session):
    """What both clients are made of: the session, the channels' TLS credentials and the
    metadata that authenticates every call."""

    def __init__(
        self,
        members: Iterable[Member],
        credentials: grpc.ChannelCredentials,
        zone: str | None = None,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        *,
        client_id: str | None = None,
        discover_members: bool = False,
        impersonate: str = "",
        metadata: Metadata = (),
    ) -> None:
        super().__init__(
            members,
            zone=zone,
            timeout_s=timeout_s,
            client_id=client_id,
            discover_members=discover_members,
            impersonate=impersonate,
        )
        self.credentials = credentials
        self.metadata = metadata
        """Sent with every call (the user's credentials: `client_auth.auth_metadata`)."""


# -- synchronous -------------------------------------------------------------------------------


class Client(_Connected):
    """The synchronous client: ``client.run(...)``, ``with client.transaction() as tx:``,
    ``for record in client.stream(...)``. Threads may share one (each write takes its own
    request-id lane; see `Session`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._channels: dict[str, grpc.Channel] = {}
        self._queries: dict[str, client_pb2_grpc.QueryStub] = {}
        self._channels_lock = threading.Lock()  # threads may share a client

    def _channel(self, member: Member) -> grpc.Channel:
        with self._channels_lock:
            channel = self._channels.get(member.address)
            if channel is None:
                channel = grpc.secure_channel(
                    member.address, self.credentials, options=SYNC_CHANNEL_OPTIONS
                )
                if self.metadata:
                    channel = grpc.intercept_channel(channel, AuthInterceptor(self.metadata))
                self._channels[member.address] = channel
            return channel

    def _query(self, member: Member) -> client_pb2_grpc.QueryStub:
        """The member's ``Query`` stub, one per channel (a stub makes a callable per method
        on every construction)."""
        stub = self._queries.get(member.address)
        if stub is None:
            stub = client_pb2_grpc.QueryStub(self._channel(member))
            self._queries[member.address] = stub
        return stub

    def close(self) -> None:
        with self._channels_lock:
            channels, self._channels = self._channels, {}
            self._queries = {}
        for channel in channels.values():
            channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- discovery ----------------------------------------------------------------------------

    def node_status(
        self, node_id: int, timeout_s: float = STATUS_TIMEOUT_S
    ) -> admin_pb2.NodeStatus:
        stub = admin_pb2_grpc.AdminStub(self._channel(self._member(node_id)))
        try:
            status: admin_pb2.NodeStatus = stub.Status(admin_pb2.StatusRequest(), timeout=timeout_s)
        except grpc.RpcError as error:
            raise _rpc_error(error) from None
        return status

    def find_leader(self) -> int:
        """Ask the members who leads; 0 when none answers with a leader."""
        for member in self.discovery_order():
            try:
                status = self.node_status(member.id)
            except QuiverError:
                continue
            if leader := self.observe_status(status, time.monotonic()):
                return leader
        return 0

    def _pick(self, to_leader: bool, attempt: int) -> Member:
        if self.needs_discovery(to_leader, time.monotonic()):
            self.find_leader()
        return self.choose(to_leader, attempt, time.monotonic())

    # -- queries ------------------------------------------------------------------------------

    def run(
        self,
        query: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        mode: str = "write",
        consistency: str = "causal",
        timeout_s: float | None = None,
    ) -> Result:
        """Run one auto-commit statement; retried on retryable errors with the same id."""
        call = self.prepare_run(query, parameters, mode, consistency)
        return self._call(call, timeout_s)

    def system(
        self,
        query: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> Result:
        """An administration command on the ``system`` database (CREATE USER, GRANT ...,
        SHOW USERS), run on the leader through Raft; retried with the same request id."""
        call = self.prepare_run(query, parameters, "write", "causal")
        call.request.database = "system"
        return self._call(call, timeout_s)

    def _call(self, call: Call, timeout_s: float | None) -> Result:
        """Attempts of one call until an answer, a final error or the deadline; then its
        write lane is free again."""
        try:
            retry = self.retry(timeout_s, time.monotonic())
            while True:
                member = self._pick(call.to_leader, retry.attempt)
                try:
                    result = self._run_once(
                        member, call.request, retry.call_timeout_s(time.monotonic())
                    )
                except QuiverError as error:
                    pause = self.failed(error, member, call.to_leader, retry, time.monotonic())
                    if pause is None:
                        raise
                    time.sleep(pause)
                    continue
                self.succeeded(member, call.to_leader, result.bookmark)
                return result
        finally:
            self.finish(call)

    def stream(
        self,
        query: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        consistency: str = "causal",
        fetch_size: int = 0,
        timeout_s: float | None = None,
    ) -> Iterator[Record]:
        """A read's records as their batches (of `fetch_size`; 0: the server's) arrive.
        Retried as `run` is until the first record is handed out; an error after that ends
        the iteration with it. Leaving the loop early cancels the call."""
        call = self.prepare_run(query, parameters, "read", consistency)
        call.request.fetch_size = fetch_size
        retry = self.retry(timeout_s, time.monotonic())
        while True:
            member = self._pick(call.to_leader, retry.attempt)
            builder = ResultBuilder(keep_rows=False)
            delivered = False
            stub = self._query(member)
            responses = stub.Run(call.request, timeout=retry.call_timeout_s(time.monotonic()))
            try:
                for response in responses:
                    for row in builder.add(response):
                        delivered = True
                        yield Record(builder.columns, row)
            except grpc.RpcError as rpc_error:
                error = _rpc_error(rpc_error)
                now = time.monotonic()
                pause = None if delivered else self.failed(error, member, False, retry, now)
                if pause is None:
                    raise error from None
                time.sleep(pause)
                continue
            finally:
                responses.cancel()
            self.succeeded(member, call.to_leader, builder.summary.bookmark)
            return

    def _run_once(self, member: Member, request: client_pb2.RunRequest, timeout_s: float) -> Result:
        stub = self._query(member)
        builder = ResultBuilder()
        try:
            for response in stub.Run(request, timeout=timeout_s):
                builder.add(response)
        except grpc.RpcError as error:
            raise _rpc_error(error) from None
        return builder.result(member.id)

    @contextmanager
    def transaction(
        self, timeout_s: float | None = None, mode: str = "write"
    ) -> Iterator[Transaction]:
        """``with client.transaction() as tx: tx.run(...)``: commits when the block ends,
        rolls back when it raises. `mode` as for :meth:`begin`."""
        transaction = self.begin(timeout_s, mode)
        try:
            yield transaction
        except BaseException:
            transaction.rollback()
            raise
        if transaction.open:
            transaction.commit()

    def begin(self, timeout_s: float | None = None, mode: str = "write") -> Transaction:
        """Open a transaction (with bounded retries): a "write" one on the leader (found,
        and followed), a "read" one (read-only) on a replica as a causal read would be."""
        request = self.prepare_begin(timeout_s, mode)
        to_leader = mode == "write"
        retry = self.retry(None, time.monotonic())
        while True:
            member = self._pick(to_leader, retry.attempt)
            stub = self._query(member)
            try:
                response = stub.Begin(request, timeout=retry.call_timeout_s(time.monotonic()))
            except grpc.RpcError as rpc_error:
                error = _rpc_error(rpc_error)
                pause = self.failed(error, member, to_leader, retry, time.monotonic())
                if pause is None:
                    raise error from None
                time.sleep(pause)
                continue
            self.succeeded(member, to_leader, "")
            return Transaction(self, member, response.transaction_id)


class Transaction:
    """An explicit transaction: its statements read the graph as it was when it began plus
    their own writes. A write one runs on the leader; its commit is refused with a
    retryable ``Neo.TransientError.Transaction.Outdated`` when a write applied after it
    began changes what its statements answer (never a lost update). A read one runs on a
    replica and commits with the bookmark of the moment it read."""

    def __init__(self, client: Client, member: Member, transaction_id: str) -> None:
        self._client = client
        self._member = member
        self.transaction_id = transaction_id
        self.open = True

    def _ensure_open(self) -> None:
        if not self.open:
            raise client_error(errors.TRANSACTION_NOT_FOUND, "the transaction has ended")

    def run(self, query: str, parameters: Mapping[str, Any] | None = None) -> Result:
        self._ensure_open()
        request = Session.in_transaction(self.transaction_id, query, parameters)
        try:
            return self._client._run_once(self._member, request, self._client.timeout_s)
        except QuiverError:
            self.open = False
            raise

    def commit(self) -> str:
        """Commit; the bookmark of the commit. Not retried: a commit is not idempotent."""
        self._ensure_open()
        self.open = False
        stub = self._client._query(self._member)
        try:
            response = stub.Commit(
                client_pb2.CommitRequest(transaction_id=self.transaction_id),
                timeout=self._client.timeout_s,
            )
        except grpc.RpcError as error:
            raise _rpc_error(error) from None
        self._client.observe_bookmark(response.bookmark)
        return str(response.bookmark)

    def rollback(self) -> None:
        if not self.open:
            return
        self.open = False
        stub = self._client._query(self._member)
        try:
            stub.Rollback(
                client_pb2.RollbackRequest(transaction_id=self.transaction_id),
                timeout=STATUS_TIMEOUT_S,
            )
        except grpc.RpcError as error:
            raise _rpc_error(error) from None


# -- asynchronous ------------------------------------------------------------------------------


class AsyncClient(_Connected):
    """The asyncio client: the same session and decisions as `Client`, on ``grpc.aio``.
    Channels are opened on first use, on the running loop; many tasks may share one client
    (requests interleave; each keeps its own request id and retry budget)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._queries: dict[str, client_pb2_grpc.QueryStub] = {}
        self._discovery = asyncio.Lock()
        self._write_lanes = asyncio.Semaphore(MAX_WRITE_LANES)

    def _channel(self, member: Member) -> grpc.aio.Channel:
        channel = self._channels.get(member.address)
        if channel is None:
            channel = grpc.aio.secure_channel(
                member.address,
                self.credentials,
                options=CHANNEL_OPTIONS,
                interceptors=async_interceptors(self.metadata),
            )
            self._channels[member.address] = channel
        return channel

    def _query(self, member: Member) -> client_pb2_grpc.QueryStub:
        """The member's ``Query`` stub, one per channel."""
        stub = self._queries.get(member.address)
        if stub is None:
            stub = client_pb2_grpc.QueryStub(self._channel(member))
            self._queries[member.address] = stub
        return stub

    async def close(self) -> None:
        channels, self._channels = self._channels, {}
        self._queries = {}
        for channel in channels.values():
            await channel.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # -- discovery ----------------------------------------------------------------------------

    async def node_status(
        self, node_id: int, timeout_s: float = STATUS_TIMEOUT_S
    ) -> admin_pb2.NodeStatus:
        stub = admin_pb2_grpc.AdminStub(self._channel(self._member(node_id)))
        try:
            status: admin_pb2.NodeStatus = await stub.Status(
                admin_pb2.StatusRequest(), timeout=timeout_s
            )
        except grpc.RpcError as error:
            raise _rpc_error(error) from None
        return status

    async def find_leader(self) -> int:
        """Ask every member at once who leads; the first answer naming a leader wins (a
        paused node costs nothing while others answer); 0 when none names one."""
        asks = [asyncio.create_task(self._status_or_none(m.id)) for m in self.discovery_order()]
        try:
            for answer in asyncio.as_completed(asks):
                status = await answer
                if status is not None and (leader := self.observe_status(status, time.monotonic())):
                    return leader
            return 0
        finally:
            for ask in asks:
                ask.cancel()
            await asyncio.gather(*asks, return_exceptions=True)

    async def _status_or_none(self, node_id: int) -> admin_pb2.NodeStatus | None:
        try:
            return await self.node_status(node_id)
        except QuiverError:
            return None

    async def _pick(self, to_leader: bool, attempt: int) -> Member:
        if self.needs_discovery(to_leader, time.monotonic()):
            # One discovery at a time: tasks that queue behind it use what it found.
            async with self._discovery:
                if self.needs_discovery(to_leader, time.monotonic()):
                    await self.find_leader()
        return self.choose(to_leader, attempt, time.monotonic())

    # -- queries ------------------------------------------------------------------------------

    async def run(
        self,
        query: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        mode: str = "write",
        consistency: str = "causal",
        timeout_s: float | None = None,
    ) -> Result:
        """Run one auto-commit statement; retried on retryable errors with the same id."""
        # Past MAX_WRITE_LANES writes in flight, a write waits for a lane rather than fail.
        async with self._write_lanes if mode == "write" else contextlib.nullcontext():
            call = self.prepare_run(query, parameters, mode, consistency)
            return await self._call(call, timeout_s)

    async def system(
        self,
        query: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        timeout_s: float | None = None,
    ) -> Result:
        """`Client.system`, for asyncio."""
        async with self._write_lanes:
            call = self.prepare_run(query, parameters, "write", "causal")
            call.request.database = "system"
            return await self._call(call, timeout_s)

    async def _call(self, call: Call, timeout_s: float | None) -> Result:
        """`Client._call`, awaited."""
        try:
            retry = self.retry(timeout_s, time.monotonic())
            while True:
                member = await self._pick(call.to_leader, retry.attempt)
                try:
                    result = await self._run_once(
                        member, call.request, retry.call_timeout_s(time.monotonic())
                    )
                except QuiverError as error:
                    pause = self.failed(error, member, call.to_leader, retry, time.monotonic())
                    if pause is None:
                        raise
                    await asyncio.sleep(pause)
                    continue
                self.succeeded(member, call.to_leader, result.bookmark)
                return result
        finally:
            self.finish(call)

    async def stream(
        self,
        query: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        consistency: str = "causal",
        fetch_size: int = 0,
        timeout_s: float | None = None,
    ) -> AsyncIterator[Record]:
        """`Client.stream`, for ``async for record in client.stream(...)``. An async
        generator left early is closed (and its call cancelled) when collected, or at once
        under ``async with contextlib.aclosing(client.stream(...)) as records:``."""
        call = self.prepare_run(query, parameters, "read", consistency)
        call.request.fetch_size = fetch_size
        retry = self.retry(timeout_s, time.monotonic())
        while True:
            member = await self._pick(call.to_leader, retry.attempt)
            builder = ResultBuilder(keep_rows=False)
            delivered = False
            stub = self._query(member)
            responses = stub.Run(call.request, timeout=retry.call_timeout_s(time.monotonic()))
            try:
                async for response in responses:
                    for row in builder.add(response):
                        delivered = True
                        yield Record(builder.columns, row)
            except grpc.RpcError as rpc_error:
                error = _rpc_error(rpc_error)
                now = time.monotonic()
                pause = None if delivered else self.failed(error, member, False, retry, now)
                if pause is None:
                    raise error from None
                await asyncio.sleep(pause)
                continue
            finally:
                responses.cancel()
            self.succeeded(member, call.to_leader, builder.summary.bookmark)
            return

    async def _run_once(
        self, member: Member, request: client_pb2.RunRequest, timeout_s: float
    ) -> Result:
        stub = self._query(member)
        builder = ResultBuilder()
        try:
            async for response in stub.Run(request, timeout=timeout_s):
                builder.add(response)
        except grpc.RpcError as error:
            raise _rpc_error(error) from None
        return builder.result(member.id)

    @asynccontextmanager
    async def transaction(
        self, timeout_s: float | None = None, mode: str = "write"
    ) -> AsyncIterator[AsyncTransaction]:
        """``async with client.transaction() as tx: await tx.run(...)``: commits when the
        block ends, rolls back when it raises. `mode` as for :meth:`begin`."""
        transaction = await self.begin(timeout_s, mode)
        try:
            yield transaction
        except BaseException:
            await transaction.rollback()
            raise
        if transaction.open:
            await transaction.commit()

    async def begin(self, timeout_s: float | None = None, mode: str = "write") -> AsyncTransaction:
        """Open a transaction (with bounded retries): a "write" one on the leader (found,
        and followed), a "read" one (read-only) on a replica as a causal read would be."""
        request = self.prepare_begin(timeout_s, mode)
        to_leader = mode == "write"
        retry = self.retry(None, time.monotonic())
        while True:
            member = await self._pick(to_leader, retry.attempt)
            stub = self._query(member)
            try:
                response = await stub.Begin(request, timeout=retry.call_timeout_s(time.monotonic()))
            except grpc.RpcError as rpc_error:
                error = _rpc_error(rpc_error)
                pause = self.failed(error, member, to_leader, retry, time.monotonic())
                if pause is None:
                    raise error from None
                await asyncio.sleep(pause)
                continue
            self.succeeded(member, to_leader, "")
            return AsyncTransaction(self, member, response.transaction_id)


class AsyncTransaction:
    """`Transaction`, awaited: ``await tx.run(...)``, ``await tx.commit()``."""

    def __init__(self, client: AsyncClient, member: Member, transaction_id: str) -> None:
        self._client = client
        self._member = member
        self.transaction_id = transaction_id
        self.open = True

    def _ensure_open(self) -> None:
        if not self.open:
            raise client_error(errors.TRANSACTION_NOT_FOUND, "the transaction has ended")

    async def run(self, query: str, parameters: Mapping[str, Any] | None = None) -> Result:
        self._ensure_open()
        request = Session.in_transaction(self.transaction_id, query, parameters)
        try:
            return await self._client._run_once(self._member, request, self._client.timeout_s)
        except QuiverError:
            self.open = False
            raise

    async def commit(self) -> str:
        """Commit; the bookmark of the commit. Not retried: a commit is not idempotent."""
        self._ensure_open()
        self.open = False
        stub = self._client._query(self._member)
        try:
            response = await stub.Commit(
                client_pb2.CommitRequest(transaction_id=self.transaction_id),
                timeout=self._client.timeout_s,
            )
        except grpc.RpcError as error:
            raise _rpc_error(error) from None
        self._client.observe_bookmark(response.bookmark)
        return str(response.bookmark)

    async def rollback(self) -> None:
        if not self.open:
            return
        self.open = False
        stub = self._client._query(self._member)
        try:
            await stub.Rollback(
                client_pb2.RollbackRequest(transaction_id=self.transaction_id),
                timeout=STATUS_TIMEOUT_S,
            )
        except grpc.RpcError as error:
            raise _rpc_error(error) from None


# -- connecting --------------------------------------------------------------------------------


def _members_and_credentials(
    directory: str | Path,
    addresses: Iterable[str] | None,
    ca: str | Path | None,
    auth: tuple[str, str] | None = None,
) -> tuple[list[Member], grpc.ChannelCredentials, Metadata]:
    """Members, channel credentials (TLS with the CA) and the call metadata that
    authenticates as `auth` (default: the cluster directory's credentials file, when it
    can be read)."""

    if addresses is not None:
        if ca is None:
            raise ValueError("addresses need the CA certificate (ca=...)")
        members = [Member(i + 1, "", address) for i, address in enumerate(addresses)]
        ca_bytes = Path(ca).read_bytes()
    else:
        cluster: ClusterFile = load_cluster(Path(directory))
        members = [Member(n.id, n.zone, n.grpc) for n in cluster.nodes]
        ca_bytes = (Path(ca) if ca is not None else cluster.ca_path).read_bytes()
        if auth is None:
            auth = credentials_file(cluster.credentials_path)
    tls = grpc.ssl_channel_credentials(root_certificates=ca_bytes)
    return members, tls, auth_metadata(auth)


def connect(
    directory: str | Path = ".quiver",
    *,
    addresses: Iterable[str] | None = None,
    ca: str | Path | None = None,
    zone: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    auth: tuple[str, str] | None = None,
    impersonate: str = "",
) -> Client:
    """A client of the cluster described by ``DIR/cluster.json`` (or by `addresses`/`ca`).
    With `zone`, causal and stale reads go to that zone's replicas while they answer.
    `auth` is ``(user, password)``; by default the directory's credentials file. With
    `impersonate`, every statement runs as that user (`auth`'s user needs the
    ``IMPERSONATE`` privilege for them; ``Neo.ClientError.Security.Forbidden`` otherwise)."""
    members, credentials, metadata = _members_and_credentials(directory, addresses, ca, auth)
    return Client(
        members,
        credentials,
        metadata=metadata,
        zone=zone,
        timeout_s=timeout_s,
        discover_members=True,
        impersonate=impersonate,
    )


def connect_async(
    directory: str | Path = ".quiver",
    *,
    addresses: Iterable[str] | None = None,
    ca: str | Path | None = None,
    zone: str | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    auth: tuple[str, str] | None = None,
    impersonate: str = "",
) -> AsyncClient:
    """`connect`, for asyncio: ``async with connect_async(...) as client: await
    client.run(...)``. Nothing is dialled until the first request."""
    members, credentials, metadata = _members_and_credentials(directory, addresses, ca, auth)
    return AsyncClient(
        members,
        credentials,
        metadata=metadata,
        zone=zone,
        timeout_s=timeout_s,
        discover_members=True,
        impersonate=impersonate,
    )
