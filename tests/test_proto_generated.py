"""The committed protobuf/gRPC modules match their .proto sources, and they work."""

import subprocess
import sys
from pathlib import Path

from proto import client_pb2, raft_pb2

GENERATED_SUFFIXES = ("_pb2.py", "_pb2.pyi", "_pb2_grpc.py")
STALE = "generated protobuf modules are stale; run make proto"


def _generate(repo_root: Path, out_dir: Path) -> None:
    """Run exactly the protoc invocation of `make proto`, writing into out_dir."""
    sources = sorted(
        path.relative_to(repo_root).as_posix() for path in repo_root.glob("proto/*.proto")
    )
    assert sources, "no .proto sources found under proto/"
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            "-I",
            ".",
            f"--python_out={out_dir}",
            f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}",
            *sources,
        ],
        cwd=repo_root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, f"protoc failed:\n{completed.stderr}"


def _generated_files(directory: Path) -> dict[str, bytes]:
    return {
        path.name: path.read_bytes()
        for path in sorted(directory.iterdir())
        if path.name.endswith(GENERATED_SUFFIXES)
    }


def test_committed_generated_modules_are_byte_identical_to_fresh_protoc_output(
    repo_root: Path, tmp_path: Path
) -> None:
    _generate(repo_root, tmp_path)
    fresh = _generated_files(tmp_path / "proto")
    committed = _generated_files(repo_root / "proto")
    assert fresh, "protoc generated nothing"
    assert sorted(committed) == sorted(fresh), f"{STALE} (the set of files differs)"
    stale = [name for name in fresh if committed[name] != fresh[name]]
    assert not stale, f"{STALE} (differs: {', '.join(stale)})"


def test_generated_grpc_modules_import_their_messages_as_a_package() -> None:
    # `from proto import raft_pb2` is what running protoc from the repository root buys;
    # a bare `import raft_pb2` would only work by editing sys.path.
    from proto import client_pb2_grpc, raft_pb2_grpc

    assert client_pb2_grpc.QueryStub is not None
    assert raft_pb2_grpc.RaftTransportStub is not None


def test_raft_message_round_trips_through_the_wire_format() -> None:
    message = raft_pb2.Message(
        type=raft_pb2.MESSAGE_TYPE_APPEND,
        to=2,
        sender=1,
        term=7,
        log_term=6,
        index=41,
        commit=40,
        entries=[
            raft_pb2.Entry(term=7, index=42, type=raft_pb2.ENTRY_TYPE_NORMAL, data=b"\x00ws"),
            raft_pb2.Entry(term=7, index=43, type=raft_pb2.ENTRY_TYPE_CONF_CHANGE, data=b"cc"),
        ],
        snapshot=raft_pb2.Snapshot(
            data=b"snap",
            metadata=raft_pb2.SnapshotMetadata(
                index=30,
                term=5,
                conf_state=raft_pb2.ConfState(voters=[1, 2, 3], learners=[4], auto_leave=True),
            ),
        ),
        reject=True,
        reject_hint=12,
        context=b"read-1",
        lease_tick=9,
    )
    decoded = raft_pb2.Message.FromString(message.SerializeToString())
    assert decoded == message
    assert decoded.sender == 1
    assert [entry.index for entry in decoded.entries] == [42, 43]
    assert list(decoded.snapshot.metadata.conf_state.voters) == [1, 2, 3]


def test_raft_message_types_cover_the_core_and_keep_their_numbers() -> None:
    names = [
        "HUP",
        "BEAT",
        "PROPOSE",
        "APPEND",
        "APPEND_RESPONSE",
        "VOTE",
        "VOTE_RESPONSE",
        "PRE_VOTE",
        "PRE_VOTE_RESPONSE",
        "SNAPSHOT",
        "HEARTBEAT",
        "HEARTBEAT_RESPONSE",
        "UNREACHABLE",
        "SNAPSHOT_STATUS",
        "CHECK_QUORUM",
        "TRANSFER_LEADER",
        "TIMEOUT_NOW",
        "READ_INDEX",
        "READ_INDEX_RESPONSE",
    ]
    # Wire numbers must never be reused or reordered once peers exchange them.
    for number, name in enumerate(names, start=1):
        assert raft_pb2.MessageType.Value(f"MESSAGE_TYPE_{name}") == number


def test_client_value_round_trips_nested_graph_and_temporal_values() -> None:
    alice = client_pb2.Node(
        id=1,
        labels=["Person"],
        properties={"name": client_pb2.Value(string="Alice"), "age": client_pb2.Value(integer=42)},
    )
    bob = client_pb2.Node(id=2, labels=["Person"])
    knows = client_pb2.Relationship(
        id=10, type="KNOWS", start=1, end=2, properties={"since": client_pb2.Value(integer=2001)}
    )
    value = client_pb2.Value(
        list=client_pb2.ValueList(
            values=[
                client_pb2.Value(null=client_pb2.NULL_VALUE),
                client_pb2.Value(boolean=False),
                client_pb2.Value(float=-0.5),
                client_pb2.Value(bytes=b"\x00\xff"),
                client_pb2.Value(path=client_pb2.Path(nodes=[alice, bob], relationships=[knows])),
                client_pb2.Value(
                    date_time=client_pb2.DateTime(
                        seconds=1_700_000_000,
                        nanoseconds=5,
                        offset_seconds=3600,
                        zone_id="Europe/Stockholm",
                    )
                ),
                client_pb2.Value(point=client_pb2.Point(srid=4326, x=18.07, y=59.33)),
                client_pb2.Value(
                    map=client_pb2.ValueMap(
                        entries={"d": client_pb2.Value(duration=client_pb2.Duration(months=1))}
                    )
                ),
            ]
        )
    )
    decoded = client_pb2.Value.FromString(value.SerializeToString())
    assert decoded == value
    items = decoded.list.values
    assert items[0].WhichOneof("kind") == "null"
    # proto3 optional: set-but-false/zero fields still say which kind they are.
    assert items[1].WhichOneof("kind") == "boolean"
    assert items[4].path.nodes[0].properties["name"].string == "Alice"
    assert items[5].date_time.HasField("zone_id")
    assert not items[6].point.HasField("z")
    assert client_pb2.Value().WhichOneof("kind") is None
