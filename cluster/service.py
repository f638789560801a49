"""The gRPC faces of a node on its client port: ``quiver.v1.Query`` and ``quiver.v1.Admin``.

Owns the translation between requests and the node's read and write paths, the forwarding
of writes from a follower to the leader (one hop: a forwarded request that meets a
non-leader fails with ``Neo.ClientError.Cluster.NotALeader`` naming the leader, which the
client library follows), and errors as Neo4j status codes in trailing metadata.

Must never: answer a write before it is applied, or forward a request twice.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any, Final, TypeVar

import grpc

from cluster import errors
from cluster.config import NodeEntry
from cluster.errors import QuiverError
from cluster.node import (
    CAUSAL_WAIT_S,
    COUNTER_FIELDS,
    DEFAULT_CATCH_UP_S,
    FETCH_SIZE,
    FORWARDED_METADATA,
    Answer,
    BackupStream,
    MemberChange,
    Node,
    parse_bookmarks,
)
from cluster.security.node_security import SESSION_METADATA, SYSTEM_DATABASE
from cluster.security.privileges import DEFAULT_DATABASE
from cluster.security.sessions import FORBIDDEN, Session
from cluster.transport import MAX_MESSAGE_BYTES
from cluster.values import ValueConversionError, parameter_from_proto, write_value
from proto import admin_pb2, admin_pb2_grpc, client_pb2, client_pb2_grpc

log = logging.getLogger("quiver.service")
_T = TypeVar("_T")

Context = grpc.aio.ServicerContext  # type: ignore[type-arg]
FORWARD_TIMEOUT_S = 30.0


async def _abort(context: Context, error: QuiverError) -> None:
    await context.abort(
        errors.grpc_status(error.code), error.message, errors.trailing_metadata(error)
    )


STALLED_CLIENT_S: Final = 60.0
"""How long a Run response may wait for the client to take it (gRPC flow control) before the
call ends: a client that stopped reading a large answer, with no deadline of its own, held
it (up to the engine's 2M rows) in the node's memory for as long as its connection lived."""
INLINE_PARAMETER_BYTES: Final = 64 << 10
"""Parameters up to this size (as received) are converted on the event loop; larger ones in
a thread: a list of 5M integers took 5-10 s to convert, all that time holding the event
loop, which runs Raft (heartbeats, votes) on the node."""


async def _parameters_of(request: client_pb2.RunRequest) -> dict[str, Any]:
    if sum(value.ByteSize() for value in request.parameters.values()) <= INLINE_PARAMETER_BYTES:
        return _parameters(request)
    return await asyncio.to_thread(_parameters, request)


def _parameters(request: client_pb2.RunRequest) -> dict[str, Any]:
    try:
        return {key: parameter_from_proto(value) for key, value in request.parameters.items()}
    except ValueConversionError as error:
        raise QuiverError(errors.INVALID_REQUEST, f"bad parameter: {error}") from None


_COUNTERS = frozenset(COUNTER_FIELDS) - {"contains_updates"}


MAX_RESPONSE_RECORD_BYTES: Final = 4 << 20
"""A Run response holds records of at most about this many bytes (then the next begins),
whatever the fetch size. gRPC refuses a message over 64 MiB (transport.MAX_MESSAGE_BYTES),
and the event loop builds each message in one go: 200 rows of 1 MiB strings made one 200 MB
message that the leader spent long enough on to lose its leadership, then failed to send
(RESOURCE_EXHAUSTED, which the client saw as an UnknownError)."""
MAX_RECORD_BYTES: Final = MAX_MESSAGE_BYTES - (1 << 20)
"""A single record larger than this cannot be sent in one message: the statement fails."""


def _too_large_record(size: int) -> QuiverError:
    return QuiverError(
        errors.TOO_LARGE,
        f"a result record takes {size} bytes; at most {MAX_RECORD_BYTES} fit one message",
    )


def answer_responses(answer: Answer, fetch_size: int) -> Iterator[client_pb2.RunResponse]:
    """The answer as a Run stream: one message per batch of `fetch_size` rows, or fewer
    when they reach ``MAX_RESPONSE_RECORD_BYTES`` (at least one message), the first
    carrying the header and the last the summary. Built in place: a message handed to a
    repeated field or to ``CopyFrom`` is copied (serialized and parsed again). A value no
    message can carry raises QuiverError (before the message that would hold it)."""
    size = fetch_size or FETCH_SIZE
    response = client_pb2.RunResponse()
    header = response.header
    header.SetInParent()
    header.columns.extend(answer.columns)
    records = response.records.records
    batch_rows = batch_bytes = 0
    for row in answer.rows:
        if batch_rows >= size or batch_bytes >= MAX_RESPONSE_RECORD_BYTES:
            yield response
            response = client_pb2.RunResponse()
            records = response.records.records
            batch_rows = batch_bytes = 0
        record = records.add()
        values = record.values
        try:
            for value in row:
                write_value(values.add(), value)
        except ValueConversionError as error:
            raise QuiverError(
                "Neo.ClientError.General.MemoryPoolOutOfMemoryError",
                f"a result value cannot be sent: {error}",
            ) from None
        record_bytes = record.ByteSize()
        if record_bytes > MAX_RECORD_BYTES:
            raise _too_large_record(record_bytes)
        batch_rows += 1
        batch_bytes += record_bytes
    summary = response.summary
    counters = summary.counters
    counters.SetInParent()
    updates = False
    for name, count in answer.counters.items():
        # A zero is the field's default (no presence in proto3): not set, the
        # same bytes, and a read's eleven zeros cost nothing.
        if count and name in _COUNTERS:
            setattr(counters, name, count)
            updates = True
    if updates:
        counters.contains_updates = True
    if answer.bookmark:
        summary.bookmark = answer.bookmark
    summary.applied_index = answer.applied_index
    summary.query_type = answer.query_type  # type: ignore[assignment]
    yield response


def _is_forwarded(metadata: tuple[tuple[str, str | bytes], ...]) -> bool:
    return any(key == FORWARDED_METADATA for key, _ in metadata)


def client_address(context: Context) -> str:
    """``host:port`` of the caller (gRPC says ``ipv4:h:p`` / ``ipv6:[h]:p``)."""
    peer = context.peer() or ""
    return peer.split(":", 1)[1] if peer.startswith(("ipv4:", "ipv6:")) else peer


async def authenticate(
    node: Node,
    context: Context,
    metadata: tuple[tuple[str, str | bytes], ...] | None = None,
    address: str | None = None,
) -> Session:
    """Who the call is (token or Basic credentials); after a password, the session token
    goes back in the trailing metadata so that the client can use it instead. Trailing:
    it rides on the call's status, where initial metadata would be a send of its own on
    every call. `metadata` and `address`: the call's, when the caller already has them."""
    session, by_password = await node.security.authenticate_metadata(
        tuple(context.invocation_metadata() or ()) if metadata is None else metadata,
        client_address(context) if address is None else address,
    )
    if by_password:
        context.set_trailing_metadata(((SESSION_METADATA, session.token),))
    return session


class _Held:
    """The newest response of a statement served by ``run_answering_with_status``, held
    back until the next one comes (then written) or the statement ends (then returned, to
    go out with the status)."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.response: client_pb2.RunResponse | None = None

    async def hold(self, response: client_pb2.RunResponse) -> None:
        await self.flush()
        self.response = response

    async def flush(self) -> None:
        if self.response is not None:
            response, self.response = self.response, None
            try:
                await asyncio.wait_for(
                    self.context.write(response.SerializeToString()), STALLED_CLIENT_S
                )
            except TimeoutError:
                await _abort(
                    self.context,
                    QuiverError(
                        errors.INVALID_REQUEST,
                        f"the client took no response for {STALLED_CLIENT_S:.0f} s",
                    ),
                )

    def last(self) -> bytes:
        # A statement answers with a response at least, or aborts (raising out of _run);
        # an empty message would read as an empty answer all the same.
        return b"" if self.response is None else self.response.SerializeToString()


class QueryService(client_pb2_grpc.QueryServicer):
    def __init__(self, node: Node) -> None:
        self.node = node

    async def Run(
        self, request: client_pb2.RunRequest, context: Context
    ) -> AsyncIterator[client_pb2.RunResponse]:
        """One statement, as a stream of responses (``add_QueryServicer_to_server``'s
        kind; a node serves :meth:`run_answering_with_status`)."""
        async for response in self._run(request, context, None):
            yield response

    async def run_answering_with_status(
        self, request: client_pb2.RunRequest, context: Context
    ) -> bytes:
        """One statement for :func:`add_query_service`: every message but the last written
        as it comes, the last returned to go out with the status (see there)."""
        held = _Held(context)
        async for response in self._run(request, context, held):
            await held.hold(response)
        return held.last()

    async def _run(
        self, request: client_pb2.RunRequest, context: Context, held: _Held | None
    ) -> AsyncIterator[client_pb2.RunResponse]:
        """One statement; recorded in the query log here unless forwarded to this node (the
        node the client talked to records it). With `held`, a failure after some responses
        sends the one held back before the error, as a stream would have."""
        started = time.monotonic()
        node = self.node
        security = node.security
        session: Session | None = None
        impersonated = request.impersonated_user
        if request.transaction_id:
            impersonated = security.transaction_user(request.transaction_id) or impersonated
        address = client_address(context)
        metadata = tuple(context.invocation_metadata() or ())
        forwarded = _is_forwarded(metadata)
        logged = not forwarded

        async def record(rows: int, outcome: str) -> None:
            if logged and session is not None:
                await security.log_query(
                    user=session.user,
                    impersonated=impersonated,
                    client=address,
                    database=request.database or DEFAULT_DATABASE,
                    query=request.query,
                    parameters=request.parameters,
                    started=started,
                    rows=rows,
                    outcome=outcome,
                )

        try:
            session = await authenticate(node, context, metadata, address)
            parameters = await _parameters_of(request)
            if request.database not in ("", DEFAULT_DATABASE, SYSTEM_DATABASE):
                raise QuiverError(
                    "Neo.ClientError.Database.DatabaseNotFound",
                    f"Database does not exist. Database name: '{request.database}'.",
                )
            acting = await security.acting(session, impersonated, address)
            restriction = None
            if request.database != SYSTEM_DATABASE:
                restriction = await security.graph_restriction(acting, address)
            if request.database == SYSTEM_DATABASE and node.is_leader():
                answer = await security.system(
                    acting, request.query, parameters, address,
                    request.client_id, request.sequence,
                )  # fmt: skip
            elif request.database == SYSTEM_DATABASE:
                if forwarded:
                    raise node._not_leader_error()
                rows = 0
                async for response in self._forward(request, session):
                    rows += len(response.records.records)
                    yield response
                await record(rows, "ok")
                return
            elif request.transaction_id:
                answer = await node.run_in_transaction(
                    request.transaction_id, request.query, parameters, session.user
                )
            elif request.access_mode == client_pb2.ACCESS_MODE_READ:
                answer = await node.read(
                    request.query,
                    parameters,
                    request.consistency,
                    list(request.bookmarks),
                    restriction,
                )
            elif node.is_leader():
                answer = await node.write(
                    request.query,
                    parameters,
                    request.client_id,
                    request.sequence,
                    restriction,
                )
            else:
                if forwarded:
                    raise node._not_leader_error()
                rows = 0
                async for response in self._forward(request, session):
                    rows += len(response.records.records)
                    yield response
                await record(rows, "ok")
                return
        except QuiverError as error:
            if session is not None and error.code == FORBIDDEN:
                # The engine refused a write (or the database refused access): audited.
                await security.authorization_failed(session, address, request.query)
            await record(0, error.code)
            if held is not None:
                await held.flush()
            await _abort(context, error)
            return
        await record(len(answer.rows), "ok")
        try:
            for response in answer_responses(answer, request.fetch_size):
                yield response
        except QuiverError as error:
            if held is not None:
                await held.flush()
            await _abort(context, error)

    async def _forward(
        self, request: client_pb2.RunRequest, session: Session
    ) -> AsyncIterator[client_pb2.RunResponse]:
        channel = await self.node.forward_channel()
        stub = client_pb2_grpc.QueryStub(channel)
        metadata = ((FORWARDED_METADATA, "1"), (SESSION_METADATA, session.token))
        call = stub.Run(request, metadata=metadata, timeout=FORWARD_TIMEOUT_S)
        try:
            async for response in call:
                yield response
        except grpc.aio.AioRpcError as error:
            raise errors.from_rpc_error(error) from None

    async def Begin(
        self, request: client_pb2.BeginRequest, context: Context
    ) -> client_pb2.BeginResponse:
        try:
            session = await authenticate(self.node, context)
            security = self.node.security
            address = client_address(context)
            acting = await security.acting(session, request.impersonated_user, address)
            await security.check_graph_access(acting, address)
            read_only = request.access_mode == client_pb2.ACCESS_MODE_READ
            if request.bookmarks and (read_only or self.node.is_leader()):
                # The transaction sees them (a deposed leader that still thinks it leads waits
                # and times out instead of beginning on a state older than the bookmarks).
                await self.node.wait_applied(
                    parse_bookmarks(list(request.bookmarks)),
                    CAUSAL_WAIT_S,
                    errors.BOOKMARK_TIMEOUT,
                )
            tx_id = await self.node.begin(
                request.client_id,
                request.timeout_ms,
                security.graph_privileges(acting),
                owner=session.user,
                read_only=read_only,
            )
        except QuiverError as error:
            await _abort(context, error)
            raise AssertionError("unreachable") from error
        security.remember_transaction(tx_id, acting.user if acting is not session else "")
        return client_pb2.BeginResponse(transaction_id=tx_id)

    async def Commit(
        self, request: client_pb2.CommitRequest, context: Context
    ) -> client_pb2.CommitResponse:
        try:
            session = await authenticate(self.node, context)
            owned = self.node.has_transaction(request.transaction_id, session.user)
            try:
                committed = await self.node.commit(request.transaction_id, session.user)
            finally:
                if owned:  # ended either way
                    self.node.security.forget_transaction(request.transaction_id)
        except QuiverError as error:
            await _abort(context, error)
            raise AssertionError("unreachable") from error
        return client_pb2.CommitResponse(bookmark=committed)

    async def Rollback(
        self, request: client_pb2.RollbackRequest, context: Context
    ) -> client_pb2.RollbackResponse:
        try:
            session = await authenticate(self.node, context)
        except QuiverError as error:
            await _abort(context, error)
            raise AssertionError("unreachable") from error
        if self.node.rollback(request.transaction_id, session.user):
            self.node.security.forget_transaction(request.transaction_id)
        return client_pb2.RollbackResponse()


def add_query_service(service: QueryService, server: grpc.aio.Server) -> None:
    """``quiver.v1.Query`` on `server`, as ``add_QueryServicer_to_server`` would, except
    that ``Run`` is served by a handler of grpc's unary kind: grpc.aio sends a unary
    answer's message together with the status, in one batch, where a streaming handler's
    last message and the status are two (two trips through gRPC's completion queue, its
    poller thread and the event loop). The client cannot tell: on the wire a server stream
    of one message and a unary answer are the same frames, and a longer answer's leading
    messages are written one by one as before (``context.write``), only the last goes with
    the status."""
    handlers = {
        "Run": grpc.unary_unary_rpc_method_handler(
            service.run_answering_with_status,
            request_deserializer=client_pb2.RunRequest.FromString,
            response_serializer=None,  # the handler serializes: its writes are bytes too
        ),
        "Begin": grpc.unary_unary_rpc_method_handler(
            service.Begin,
            request_deserializer=client_pb2.BeginRequest.FromString,
            response_serializer=client_pb2.BeginResponse.SerializeToString,
        ),
        "Commit": grpc.unary_unary_rpc_method_handler(
            service.Commit,
            request_deserializer=client_pb2.CommitRequest.FromString,
            response_serializer=client_pb2.CommitResponse.SerializeToString,
        ),
        "Rollback": grpc.unary_unary_rpc_method_handler(
            service.Rollback,
            request_deserializer=client_pb2.RollbackRequest.FromString,
            response_serializer=client_pb2.RollbackResponse.SerializeToString,
        ),
    }
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("quiver.v1.Query", handlers),)
    )
    server.add_registered_method_handlers("quiver.v1.Query", handlers)


class AdminService(admin_pb2_grpc.AdminServicer):
    """Status is open (clients find the leader with it); changes and backups need an admin,
    and each one lands in the security log (``cluster_admin``: who, from where, what, how
    it ended) and in the metrics (``quiver_admin_acts_total``)."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._audits: set[asyncio.Future[None]] = set()
        """Audit records of backups whose call ended under them, being written."""

    def _check_admin(self, session: Session) -> None:
        state = self.node.security.state()
        if state.users and not state.is_admin(session.user):
            raise QuiverError(
                FORBIDDEN,
                f"cluster administration needs the admin role (user '{session.user}')",
            )

    async def _audit(
        self, address: str, session: Session | None, action: str, outcome: str, **fields: Any
    ) -> None:
        self.node.metrics.admin_acts.labels(action, outcome).inc()
        await self.node.security.authenticator.record(
            "cluster_admin",
            user=session.user if session is not None else "",
            client=address,
            action=action,
            outcome=outcome,
            **fields,
        )

    async def _act(
        self, context: Context, action: str, target: int, act: Callable[[], Awaitable[_T]]
    ) -> _T:
        """Run the admin act `act()` for an admin caller, audited however it ends once the
        caller is known (a failed login is the authenticator's to log); a refusal goes back
        as the call's status."""
        address = client_address(context)
        session = await self._admin_session(context, address)
        try:
            self._check_admin(session)
            result = await act()
        except QuiverError as error:
            await self._audit(address, session, action, error.code, target=target)
            await _abort(context, error)
            raise AssertionError("unreachable") from error
        await self._audit(address, session, action, "ok", target=target)
        return result

    async def _admin_session(self, context: Context, address: str) -> Session:
        try:
            return await authenticate(self.node, context, address=address)
        except QuiverError as error:
            await _abort(context, error)
            raise AssertionError("unreachable") from error

    async def Status(
        self, request: admin_pb2.StatusRequest, context: Context
    ) -> admin_pb2.NodeStatus:
        return self.node.status()

    async def TransferLeader(
        self, request: admin_pb2.TransferLeaderRequest, context: Context
    ) -> admin_pb2.TransferLeaderResponse:
        leader = await self._act(
            context, "transfer-leader", request.to, lambda: self.node.transfer_leader(request.to)
        )
        return admin_pb2.TransferLeaderResponse(leader_id=leader)

    async def Partition(
        self, request: admin_pb2.PartitionRequest, context: Context
    ) -> admin_pb2.PartitionResponse:
        async def partition() -> None:
            self.node.partition(list(request.peers))

        await self._act(context, "partition", 0, partition)
        return admin_pb2.PartitionResponse()

    async def _member_change(
        self, kind: MemberChange, request: admin_pb2.MemberChangeRequest, context: Context
    ) -> admin_pb2.MemberChangeResponse:
        member = None
        if kind is MemberChange.ADD_LEARNER:
            member = NodeEntry(
                request.node_id, request.zone, request.grpc, request.peer, "", request.bolt
            )
        catch_up_s = (request.catch_up_timeout_ms or 0) / 1000 or DEFAULT_CATCH_UP_S
        index, conf = await self._act(
            context,
            kind.name.lower().replace("_", "-"),
            request.node_id,
            lambda: self.node.change_membership(kind, request.node_id, member, catch_up_s),
        )
        return admin_pb2.MemberChangeResponse(
            voters=conf.voters, learners=conf.learners, index=index
        )

    async def AddLearner(
        self, request: admin_pb2.MemberChangeRequest, context: Context
    ) -> admin_pb2.MemberChangeResponse:
        return await self._member_change(MemberChange.ADD_LEARNER, request, context)

    async def Promote(
        self, request: admin_pb2.MemberChangeRequest, context: Context
    ) -> admin_pb2.MemberChangeResponse:
        return await self._member_change(MemberChange.PROMOTE, request, context)

    async def Demote(
        self, request: admin_pb2.MemberChangeRequest, context: Context
    ) -> admin_pb2.MemberChangeResponse:
        return await self._member_change(MemberChange.DEMOTE, request, context)

    async def RemoveMember(
        self, request: admin_pb2.MemberChangeRequest, context: Context
    ) -> admin_pb2.MemberChangeResponse:
        return await self._member_change(MemberChange.REMOVE, request, context)

    async def Backup(
        self, request: admin_pb2.BackupRequest, context: Context
    ) -> AsyncIterator[admin_pb2.BackupChunk]:
        # The stream may end while this generator waits at a yield (the client went away):
        # gRPC then ends the call without closing the generator, and the call's context is
        # gone by the time the generator is collected. So the address is read now, and the
        # end of the call (``ended``) closes the stream and audits it, whatever the
        # generator does later.
        address = client_address(context)
        session: Session | None = None
        stream: BackupStream | None = None
        state = {"outcome": "cancelled", "applied": 0, "sent": 0, "audited": False}

        def audit() -> Awaitable[None]:
            state["audited"] = True
            return self._audit(
                address, session, "backup", str(state["outcome"]),
                applied_index=state["applied"], bytes=state["sent"],
            )  # fmt: skip

        def ended(_: object) -> None:
            if stream is not None:
                stream.close()
            if not state["audited"]:
                task = asyncio.ensure_future(audit())
                self._audits.add(task)
                task.add_done_callback(self._audits.discard)

        context.add_done_callback(ended)
        try:
            session = await authenticate(self.node, context, address=address)
            self._check_admin(session)
            stream = await self.node.open_backup(request.min_index, request.wait_ms / 1000)
            state["applied"] = stream.applied_index
            chunk = await stream.next()
            while chunk is not None:
                following = await stream.next()
                yield admin_pb2.BackupChunk(
                    applied_index=stream.applied_index,
                    node_id=self.node.id,
                    data=chunk,
                    last=following is None,
                )
                state["sent"] = int(state["sent"]) + len(chunk)
                chunk = following
            state["outcome"] = "ok"
        except QuiverError as error:
            state["outcome"] = error.code
            state["audited"] = session is None  # a failed login: the authenticator's to log
            await _abort(context, error)
        except Exception:
            state["outcome"] = errors.UNKNOWN
            raise
        finally:
            if stream is not None:
                stream.close()
            if state["outcome"] != "cancelled" and not state["audited"]:
                await audit()
