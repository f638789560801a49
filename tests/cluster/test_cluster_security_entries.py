"""SECURITY entries in the state machine: applied into the graph store's application records
in the entry's batch (so a reopened store and snapshots carry them), deduplicated by request
id, all or nothing, and interleaved with graph writes without outdating them."""

from __future__ import annotations

from pathlib import Path

from cluster.security.system import Command
from cluster.statemachine import Decision, Envelope, SecurityEnvelope, StateMachine
from store.codec import encode_write_set
from store.crypto import Keyring
from store.graph import GraphStore
from store.writeset import CreateNode, WriteSet

KEK = bytes(range(32))


def _graph(path: Path) -> GraphStore:
    return GraphStore(path / "graph", Keyring(path, KEK))


def _security(seq: int, *commands: Command) -> bytes:
    return SecurityEnvelope("admin-client", seq, bytes([seq]) * 16, commands).encode()


def test_security_entries_apply_persist_dedup_and_refuse_alike(tmp_path: Path) -> None:
    graph = _graph(tmp_path)
    sm = StateMachine(graph)
    boot = Command("bootstrap_admin", {"name": "admin", "hash": "h0"})
    assert sm.apply_entry(2, _security(1, boot)).decision is Decision.APPLY
    create = Command("create_user", {"name": "alice", "hash": "h1"})
    outcome = sm.apply_entry(3, _security(2, create))
    assert outcome.decision is Decision.APPLY and not outcome.error
    state = sm.security()
    assert state.users["alice"].credential_index == 3

    # A retry of the same request is a duplicate and changes nothing.
    again = sm.apply_entry(4, _security(2, create))
    assert again.decision is Decision.DUPLICATE and again.original_index == 3
    assert sm.security() is state

    # A command that breaks a rule: refused with its code, nothing changed.
    refused = sm.apply_entry(5, _security(3, create))
    assert refused.error and refused.error_code == "Neo.ClientError.General.InvalidArguments"
    assert sm.security() is state and sm.applied_index == 5

    # A graph write after security entries is not outdated by them.
    write = Envelope(
        "", 0, 5, b"w" * 16, {}, encode_write_set(WriteSet((CreateNode(1, ("A",), ()),)))
    )
    assert sm.apply_entry(6, write.encode()).decision is Decision.APPLY
    replayed = sm.apply_entry(3, _security(2, create))
    assert replayed.decision is Decision.NOOP
    graph.close()

    reopened = StateMachine(_graph(tmp_path))
    assert reopened.security() == state
    assert set(reopened.security().users) == {"admin", "alice"}
    reopened.graph.close()
