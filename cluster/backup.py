"""``quiver backup`` and ``quiver restore``: online, encrypted, checksummed backups.

Owns the backup directory, the manifest, taking a backup from a running cluster, verifying
one by restoring it, retention, the schedule, and seeding a new cluster from a backup.

Taking: the member streams its state (``Admin.Backup``: the sealed snapshot stream of
``store.snapshot``, the same one a lagging follower receives) after it has applied the
leader's commit index as of the start, so a backup holds every write acknowledged before
``quiver backup take`` began. It comes from a follower (the most up to date one that
answers; the leader only when no follower does, or when asked with ``--from``), so the
leader's disk and CPU are spared.

A backup directory (default ``DIR/backups``)::

    backup-<UTC time>-<applied index>.qbackup   the stream: length-prefixed sealed chunks
    backup-<UTC time>-<applied index>.json      its manifest, written last (atomically)
    .lock                                       held while a backup is written or pruned
    .verify-*/                                  a restore being verified (locked in use)

The stream is sealed under a fresh key wrapped by the cluster's key-encryption key: a backup
opens only with that cluster's ``key`` file. Each chunk is authenticated, the last carries a
SHA-256 of the records and their counts, and the manifest a SHA-256 of the whole file, so a
damaged backup is found without the key as well as with it. A ``.qbackup`` without a manifest
is incomplete (the taker died) and retention removes it.

Verifying proves a backup restores: the file's checksum, then a whole restore of it into a
scratch member (the graph, every index and constraint, the security state, and the log's
first snapshot), reopened and counted. The manifest records what it found.

Restoring seeds a new cluster (``quiver init`` of a new directory, then every member's store
seeded with ``NodeStore.seed``): same graph, users, roles and privileges, new CA, new keys,
new ports; the old cluster's member addresses are left out. Start it with ``quiver up``.

Must never: leave a file that looks like a complete backup and is not (the manifest comes
after the fsync of the stream); delete the newest complete backups that retention keeps;
write into an existing cluster directory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import struct
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import grpc

from cluster import errors
from cluster.client import Client, connect
from cluster.config import CLUSTER_FILE, load_cluster, load_node_config
from cluster.errors import QuiverError
from cluster.statemachine import MEMBER_PREFIX, StateMachine
from proto import admin_pb2, admin_pb2_grpc
from raft.types import ConfState
from store.crypto import IntegrityError, StreamKeys, atomic_write, fsync_dir, load_kek
from store.node_store import NodeStore
from store.snapshot import MAX_CHUNK_BYTES, SnapshotError, read_snapshot_file

BACKUP_DIR: Final = "backups"
SUFFIX: Final = ".qbackup"
MANIFEST_FORMAT: Final = 1
LOCK_FILE: Final = ".lock"
SCRATCH_PREFIX: Final = ".verify-"
ABANDONED_SCRATCH_S: Final = 3600.0
MAX_BACKUP_CHUNK_BYTES: Final = MAX_CHUNK_BYTES + 4096
WAIT_FOR_INDEX_S: Final = 60.0
"""How long the member may take to apply the leader's commit index before streaming."""
STREAM_TIMEOUT_S: Final = 3600.0
"""The whole stream's deadline."""
STATUS_TIMEOUT_S: Final = 2.0
READ_BYTES: Final = 1 << 20
STORAGE_DAMAGE: Final = "Neo.DatabaseError.General.StorageDamageDetected"
_U32 = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Manifest:
    """What a complete backup says of itself (``<name>.json``)."""

    name: str
    taken_at: str
    cluster_id: int
    node: int
    applied_index: int
    bytes: int
    chunks: int
    sha256: str
    verified: dict[str, Any] | None = None
    """``{"at", "nodes", "relationships", "users"}`` once ``verify`` restored it."""

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "name": self.name,
            "taken_at": self.taken_at,
            "cluster_id": self.cluster_id,
            "node": self.node,
            "applied_index": self.applied_index,
            "bytes": self.bytes,
            "chunks": self.chunks,
            "sha256": self.sha256,
            "verified": self.verified,
        }

    @classmethod
    def from_json(cls, doc: object) -> Manifest:
        """ValueError for anything but a manifest this version writes."""
        if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
            raise ValueError("not a manifest of format 1")
        verified = doc.get("verified")
        if verified is not None and not isinstance(verified, dict):
            raise ValueError("'verified' is not an object")
        try:
            return cls(
                name=str(doc["name"]),
                taken_at=str(doc["taken_at"]),
                cluster_id=int(doc["cluster_id"]),
                node=int(doc["node"]),
                applied_index=int(doc["applied_index"]),
                bytes=int(doc["bytes"]),
                chunks=int(doc["chunks"]),
                sha256=str(doc["sha256"]),
                verified=verified,
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"a field is missing or malformed ({error})") from None


def backup_dir(directory: Path, to: Path | None = None) -> Path:
    return to if to is not None else directory / BACKUP_DIR


def _manifest_path(stream: Path) -> Path:
    return stream.with_suffix(".json")


def _write_manifest(stream: Path, manifest: Manifest) -> None:
    """The manifest beside the backup file `stream` (atomically, durably)."""
    data = json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode() + b"\n"
    atomic_write(_manifest_path(stream), data)


def _read_manifest(stream: Path) -> Manifest:
    """The manifest beside `stream`; ValueError when it does not parse, OSError when it
    cannot be read (FileNotFoundError: there is none)."""
    try:
        doc = json.loads(_manifest_path(stream).read_text())
    except UnicodeDecodeError as error:
        raise ValueError(str(error)) from None
    return Manifest.from_json(doc)


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """The backup directory's lock: one writer or pruner at a time; a second one is told."""
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+b") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise QuiverError(
                errors.UNAVAILABLE, f"another backup or prune is running in {folder}"
            ) from None
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# -- taking -----------------------------------------------------------------------------------


def _choose_source(client: Client, from_node: int) -> tuple[int, int, str]:
    """(member to stream from, index it must have applied, why that member)."""
    statuses: dict[int, admin_pb2.NodeStatus] = {}
    for member in client.members:
        with contextlib.suppress(QuiverError):
            statuses[member.id] = client.node_status(member.id, STATUS_TIMEOUT_S)
    leaders = [s for s in statuses.values() if s.role == admin_pb2.ROLE_LEADER]
    if not leaders:
        raise QuiverError(
            errors.UNAVAILABLE,
            "no leader answers: a backup needs one to know what is committed (election "
            "running, or a majority down?)",
        )
    leader = max(leaders, key=lambda s: s.term)
    # The highest commit index any member knows: a leader elected a moment ago may not know
    # yet of what its predecessor committed.
    committed = max(s.commit_index for s in statuses.values())
    if from_node:
        if from_node not in statuses:
            raise QuiverError(errors.UNAVAILABLE, f"n{from_node} does not answer")
        return from_node, committed, "as asked"
    followers = [
        s
        for s in statuses.values()
        if s.role in (admin_pb2.ROLE_FOLLOWER, admin_pb2.ROLE_LEARNER) and s.leader_id
    ]
    if followers:
        best = max(followers, key=lambda s: (s.applied_index, -s.id))
        return best.id, committed, "a follower"
    return leader.id, committed, "the leader: no follower answers"


def take(
    directory: Path,
    to: Path | None = None,
    from_node: int = 0,
    stream_timeout_s: float = STREAM_TIMEOUT_S,
) -> tuple[Manifest, str]:
    """Stream a backup from a member into the backup directory; its manifest and a word on
    where it came from."""
    folder = backup_dir(directory, to)
    cluster = load_cluster(directory)
    client = connect(directory)
    try:
        with _locked(folder):
            node_id, min_index, why = _choose_source(client, from_node)
            stub = admin_pb2_grpc.AdminStub(client._channel(client._member(node_id)))
            request = admin_pb2.BackupRequest(
                min_index=min_index, wait_ms=int(WAIT_FOR_INDEX_S * 1000)
            )
            partial = folder / f".partial-{secrets.token_hex(8)}{SUFFIX}"
            try:
                manifest = _receive(
                    stub.Backup(request, timeout=stream_timeout_s),
                    partial,
                    cluster.cluster_id,
                    min_index,
                )
            except grpc.RpcError as error:
                raise errors.from_rpc_error(error) from None
            finally:
                partial.unlink(missing_ok=True)
            _write_manifest(folder / (manifest.name + SUFFIX), manifest)
    finally:
        client.close()
    return manifest, f"from n{node_id} ({why})"


def _receive(
    responses: Iterator[admin_pb2.BackupChunk], partial: Path, cluster: int, min_index: int = 0
) -> Manifest:
    """Write the stream to `partial`, fsync it and move it to its name; its manifest. A
    stream of a state older than `min_index` is refused."""
    digest = hashlib.sha256()
    size = chunks = 0
    applied = node = 0
    last = False
    with open(partial, "wb") as file:
        os.fchmod(file.fileno(), 0o600)
        for response in responses:
            if last:
                raise QuiverError(STORAGE_DAMAGE, "the backup stream went on after its last chunk")
            if len(response.data) > MAX_BACKUP_CHUNK_BYTES:
                raise QuiverError(STORAGE_DAMAGE, "a backup chunk is larger than any stream's")
            if chunks and (response.applied_index, response.node_id) != (applied, node):
                raise QuiverError(STORAGE_DAMAGE, "the backup stream changed its source")
            applied, node, last = response.applied_index, response.node_id, response.last
            framed = _U32.pack(len(response.data)) + response.data
            file.write(framed)
            digest.update(framed)
            size += len(framed)
            chunks += 1
        if not last:
            raise QuiverError(errors.SERVICE_UNAVAILABLE, "the backup stream ended before its end")
        if applied < min_index:
            raise QuiverError(
                errors.UNAVAILABLE,
                f"n{node} streamed its state at index {applied}, before {min_index}: retry",
            )
        file.flush()
        os.fsync(file.fileno())
    taken = datetime.now(UTC)
    name = f"backup-{taken:%Y%m%dT%H%M%S}.{taken.microsecond:06d}Z-{applied}"
    if partial.with_name(name + SUFFIX).exists():  # the same microsecond: never overwrite
        raise QuiverError(errors.UNAVAILABLE, f"{name} exists already: take it again")
    os.replace(partial, partial.with_name(name + SUFFIX))
    fsync_dir(partial.parent)
    return Manifest(
        name=name,
        taken_at=taken.isoformat(timespec="seconds"),
        cluster_id=cluster,
        node=node,
        applied_index=applied,
        bytes=size,
        chunks=chunks,
        sha256=digest.hexdigest(),
    )


# -- listing, checking, retention -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Listed:
    path: Path
    manifest: Manifest | None
    problem: str = ""
    """Why there is no manifest: ``incomplete`` (none: the taker died before writing it;
    retention removes these) or ``unreadable manifest: ...`` (kept: a newer version's, or
    damaged; look at it)."""


def list_backups(folder: Path) -> list[Listed]:
    """Every backup in `folder`, oldest first (names sort by time)."""
    found = []
    for path in sorted(folder.glob(f"backup-*{SUFFIX}")):
        try:
            found.append(Listed(path, _read_manifest(path)))
        except FileNotFoundError:
            found.append(Listed(path, None, "incomplete"))
        except (OSError, ValueError) as error:
            found.append(Listed(path, None, f"unreadable manifest: {error}"))
    return found


def resolve(directory: Path, name: str, to: Path | None = None) -> Path:
    """A backup named by its path, file name or name (in the backup directory)."""
    candidates = [Path(name), backup_dir(directory, to) / name]
    candidates += [c.with_name(c.name + SUFFIX) for c in candidates]
    for candidate in candidates:
        if candidate.is_file() and candidate.name.endswith(SUFFIX):
            return candidate
    if name == "latest":
        complete = [b for b in list_backups(backup_dir(directory, to)) if b.manifest]
        if complete:
            return complete[-1].path
    raise QuiverError(errors.INVALID_REQUEST, f"no backup {name!r} (see 'quiver backup list')")


def _checked_manifest(path: Path) -> Manifest:
    """The manifest of the backup at `path`, once the file matches its size and SHA-256."""
    try:
        manifest = _read_manifest(path)
    except (OSError, ValueError) as error:
        raise QuiverError(
            STORAGE_DAMAGE, f"{path.name} has no readable manifest ({error})"
        ) from None
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(READ_BYTES):
            digest.update(block)
    if path.stat().st_size != manifest.bytes or digest.hexdigest() != manifest.sha256:
        raise QuiverError(
            STORAGE_DAMAGE, f"{path.name} does not match its manifest's size and SHA-256"
        )
    return manifest


def _keep_meta(key: bytes) -> bool:
    """Application records a restored cluster keeps: not the old one's member addresses."""
    return not key.startswith(MEMBER_PREFIX)


def _seed(
    data_dir: Path, kek: bytes, path: Path, source_kek: bytes, voters: tuple[int, ...]
) -> None:
    store = NodeStore(data_dir, kek)
    try:
        store.seed(
            read_snapshot_file(path),
            ConfState(voters=voters),
            keys=StreamKeys(source_kek),
            keep_meta=_keep_meta,
        )
    finally:
        store.close()


def _open_failure(path: Path, error: Exception) -> QuiverError:
    return QuiverError(STORAGE_DAMAGE, f"{path.name} does not restore: {error}")


@contextlib.contextmanager
def _scratch(folder: Path) -> Iterator[Path]:
    """A scratch directory in `folder`, locked while in use: ``prune`` removes the ones a
    killed ``verify`` left, never one in use."""
    with (
        tempfile.TemporaryDirectory(prefix=SCRATCH_PREFIX, dir=folder) as scratch,
        open(Path(scratch) / LOCK_FILE, "wb") as lock,
    ):
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield Path(scratch)


def _abandoned(scratch: Path) -> bool:
    """A scratch directory nobody uses: its lock is free (or, lockless, it is old)."""
    try:
        with open(scratch / LOCK_FILE, "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
    except BlockingIOError:
        return False
    except FileNotFoundError:  # between its creation and its lock, or older than locks
        with contextlib.suppress(FileNotFoundError):
            return time.time() - scratch.stat().st_mtime > ABANDONED_SCRATCH_S
        return False


def verify(path: Path, key_file: Path) -> Manifest:
    """Prove that the backup at `path` restores: checksum, then a whole restore into a
    scratch member beside it, reopened and counted; the manifest, updated with the counts."""
    manifest = _checked_manifest(path)
    source_kek = load_kek(key_file)
    scratch_kek = secrets.token_bytes(32)
    with _scratch(path.parent) as scratch:
        data_dir = scratch / "data"
        try:
            _seed(data_dir, scratch_kek, path, source_kek, (1,))
            store = NodeStore(data_dir, scratch_kek)
        except (SnapshotError, IntegrityError, ValueError) as error:
            raise _open_failure(path, error) from None
        try:
            graph = store.graph
            if store.log.snapshot().metadata.index != manifest.applied_index:
                raise QuiverError(
                    STORAGE_DAMAGE,
                    f"{path.name} restores at index {store.log.snapshot().metadata.index}, "
                    f"its manifest says {manifest.applied_index}",
                )
            found = {
                "at": datetime.now(UTC).isoformat(timespec="seconds"),
                "nodes": graph.count_nodes(),
                "relationships": graph.count_relationships(),
                "users": len(StateMachine(graph).security().users),
            }
        finally:
            store.close()
    verified = dataclasses.replace(manifest, verified=found)
    if not path.exists():
        raise QuiverError(errors.INVALID_REQUEST, f"{path.name} was removed while verified")
    _write_manifest(path, verified)  # a prune meanwhile: the next one removes it
    return verified


def prune(folder: Path, keep: int) -> list[str]:
    """Keep the newest `keep` complete backups; remove older ones, incomplete ones (no
    manifest: their taker died), manifests without a backup, and what killed takers and
    verifiers left. A backup whose manifest does not read is kept. The names removed."""
    if keep < 1:
        raise QuiverError(errors.INVALID_REQUEST, "--keep must be at least 1")
    removed = []
    with _locked(folder):
        backups = list_backups(folder)
        complete = [b.path for b in backups if b.manifest is not None]
        incomplete = [b.path for b in backups if b.problem == "incomplete"]
        for path in complete[:-keep] + incomplete:
            _manifest_path(path).unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            removed.append(path.name)
        for manifest in folder.glob("backup-*.json"):
            if not manifest.with_suffix(SUFFIX).exists():
                manifest.unlink(missing_ok=True)
                removed.append(manifest.name)
        for partial in folder.glob(f".partial-*{SUFFIX}"):
            partial.unlink(missing_ok=True)
            removed.append(partial.name)
        for scratch in folder.glob(f"{SCRATCH_PREFIX}*"):
            if scratch.is_dir() and _abandoned(scratch):
                shutil.rmtree(scratch, ignore_errors=True)
                removed.append(scratch.name)
    if removed:
        fsync_dir(folder)
    return removed


def schedule(
    directory: Path,
    every_s: float,
    keep: int,
    rounds: int = 0,
    to: Path | None = None,
    from_node: int = 0,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = lambda line: print(line, file=sys.stderr),
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Take, verify and prune every `every_s` seconds, `rounds` times (0: until stopped).
    A failed round is reported and the next one comes on time; the number that failed."""
    if every_s < 1:
        raise QuiverError(errors.INVALID_REQUEST, "--every must be at least 1 second")
    key_file = _key_file(directory)
    failed = 0
    done = 0
    while not rounds or done < rounds:
        started = time.monotonic()
        try:
            manifest, source = take(directory, to, from_node)
            manifest = verify(backup_dir(directory, to) / (manifest.name + SUFFIX), key_file)
            removed = prune(backup_dir(directory, to), keep)
            say(f"{describe(manifest)} {source}; removed {len(removed)}")
        except QuiverError as error:
            failed += 1
            warn(f"{error.code}: {error.message}")
        done += 1
        if not rounds or done < rounds:
            sleep(max(0.0, every_s - (time.monotonic() - started)))
    return failed


def describe(manifest: Manifest) -> str:
    verified = manifest.verified
    state = (
        f"verified {verified['at']}: {verified['nodes']} nodes, "
        f"{verified['relationships']} relationships, {verified['users']} users"
        if verified
        else "not verified"
    )
    return f"{manifest.name}  index {manifest.applied_index}  {manifest.bytes} bytes  {state}"


def _key_file(directory: Path) -> Path:
    """The cluster's key-encryption key file, as its first node's configuration names it."""
    cluster = load_cluster(directory)
    return load_node_config(directory / cluster.nodes[0].config).key_file


# -- restoring --------------------------------------------------------------------------------


def restore(
    path: Path,
    target: Path,
    key_file: Path,
    credentials: Path | None,
    **init_options: Any,
) -> tuple[Manifest, bool]:
    """Seed a new cluster in `target` (absent, or an empty directory) from the backup at
    `path`, opened with `key_file`. With users in the backup, the cluster's
    ``credentials.json`` becomes a copy of `credentials` (the backed-up cluster's), when
    given. Returns the manifest and whether the backup holds users.

    The cluster is built in a hidden directory beside `target` and renamed to it once every
    member is seeded: a restore that fails or is killed leaves no cluster at `target`."""
    from cluster.init import InitError, init_cluster

    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise QuiverError(
            errors.INVALID_REQUEST, f"{target} exists and is not empty: restore into a new one"
        )
    manifest = _checked_manifest(path)
    source_kek = load_kek(key_file)
    target.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f".{target.name}.restoring-", dir=target.parent))
    try:
        try:
            cluster = init_cluster(building, **init_options)
        except InitError as error:
            raise QuiverError(errors.INVALID_REQUEST, str(error)) from None
        voters = tuple(node.id for node in cluster.nodes)
        has_users = False
        for node in cluster.nodes:
            config = load_node_config(building / node.config)
            kek = load_kek(config.key_file)
            try:
                _seed(config.data_dir, kek, path, source_kek, voters)
            except (SnapshotError, IntegrityError, ValueError) as error:
                raise _open_failure(path, error) from None
            if node.id == voters[0]:
                store = NodeStore(config.data_dir, kek)
                has_users = bool(StateMachine(store.graph).security().users)
                store.close()
        if has_users and credentials is not None and credentials.is_file():
            atomic_write(cluster.credentials_path, credentials.read_bytes())
        if target.exists():
            target.rmdir()
        building.rename(target)
        fsync_dir(target.parent)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return manifest, has_users


# -- the command line -------------------------------------------------------------------------

_UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``15m``, ``1h``, ``7d`` -> seconds."""
    unit = _UNITS.get(text[-1:], 0)
    number = text[:-1] if unit else text
    try:
        value = float(number) * (unit or 1)
    except ValueError:
        raise QuiverError(
            errors.INVALID_REQUEST, f"not a duration: {text!r} (seconds, or with s, m, h or d)"
        ) from None
    if not 0 < value < float("inf"):
        raise QuiverError(errors.INVALID_REQUEST, f"not a positive duration: {text!r}")
    return value


def run_backup(args: Any) -> int:
    directory = Path(args.dir)
    to = Path(args.to) if args.to else None
    folder = backup_dir(directory, to)
    if args.keep < 0:
        raise QuiverError(errors.INVALID_REQUEST, "--keep must be at least 1")
    if args.action in ("prune", "schedule") and not args.keep:
        raise QuiverError(errors.INVALID_REQUEST, f"{args.action} needs --keep N")
    if args.rounds < 0:
        raise QuiverError(errors.INVALID_REQUEST, "--rounds must be 0 (no end) or more")
    if args.action == "take":
        manifest, source = take(directory, to, args.from_node)
        if not args.no_verify:
            manifest = verify(folder / (manifest.name + SUFFIX), _key_file(directory))
        print(f"{describe(manifest)}  {source}")
        if args.keep:
            for name in prune(folder, args.keep):
                print(f"removed {name}")
    elif args.action == "list":
        backups = list_backups(folder)
        if args.format == "json":
            print(
                json.dumps(
                    [
                        {"file": str(b.path), "complete": b.manifest is not None}
                        | ({"problem": b.problem} if b.problem else {})
                        | (b.manifest.to_json() if b.manifest else {})
                        for b in backups
                    ],
                    indent=2,
                )
            )
        else:
            for backup in backups:
                manifest = backup.manifest
                print(describe(manifest) if manifest else f"{backup.path.name}  {backup.problem}")
            if not backups:
                print(f"no backups in {folder}")
    elif args.action == "verify":
        path = resolve(directory, args.name or "latest", to)
        print(describe(verify(path, _key_file(directory))))
    elif args.action == "prune":
        removed = prune(folder, args.keep)
        print("\n".join(f"removed {name}" for name in removed) or "nothing to remove")
    else:
        every_s = parse_duration(args.every)
        failed = schedule(directory, every_s, args.keep, args.rounds, to, args.from_node)
        return 1 if failed else 0
    return 0


def run_restore(args: Any) -> int:
    path = Path(args.backup)
    source = Path(args.from_dir) if args.from_dir else None
    if source is None and path.parent.name == BACKUP_DIR:
        source = path.parent.parent
    if not path.is_file() and source is not None:
        path = resolve(source, args.backup)
    if not path.is_file():
        raise QuiverError(errors.INVALID_REQUEST, f"no backup file {args.backup!r}")
    if args.key_file:
        key_file = Path(args.key_file)
    elif source is not None and (source / CLUSTER_FILE).exists():
        key_file = _key_file(source)
    else:
        raise QuiverError(
            errors.INVALID_REQUEST,
            "which key opens this backup? Give --key-file, or --from-dir with the backed-up "
            "cluster's directory",
        )
    credentials = None
    if source is not None and (source / CLUSTER_FILE).exists():
        credentials = load_cluster(source).credentials_path
    target = Path(args.dir)
    manifest, has_users = restore(
        path, target, key_file, credentials, nodes=args.nodes, zones=args.zones
    )
    print(f"restored {manifest.name} (index {manifest.applied_index}) into {target}")
    if has_users and credentials is not None and credentials.is_file():
        print(f"{target / 'credentials.json'}: copied from {credentials}")
    elif has_users:
        print(
            "the backup's users, roles and privileges are restored, with their passwords; "
            f"{target / 'credentials.json'} holds a new password none of them has (no "
            "credentials file of the backed-up cluster was found): log in as one of them"
        )
    print(f"start it with: quiver up --dir {target}")
    return 0
