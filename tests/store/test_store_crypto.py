"""Encryption at rest: sealing, key files, rotation, counters and integrity errors."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from store.crypto import (
    HEADER_BYTES,
    KEK_ENV_VAR,
    NONCE_BATCH,
    NONCE_BYTES,
    IntegrityError,
    KeyConfigurationError,
    Keyring,
    load_kek,
    write_key_file,
)

KEK = bytes(range(32))


def test_sealed_value_round_trips_and_hides_the_plaintext(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK)
    sealed = ring.seal(b"secret-value", b"n\x00\x01")
    assert b"secret-value" not in sealed
    assert ring.open(sealed, b"n\x00\x01") == b"secret-value"


def test_every_seal_uses_a_fresh_nonce(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK)
    sealed = {ring.seal(b"same", b"k") for _ in range(100)}
    assert len(sealed) == 100


def _nonce(sealed: bytes) -> bytes:
    return sealed[HEADER_BYTES - NONCE_BYTES : HEADER_BYTES]


def test_nonces_stay_distinct_across_threads_and_os_batches(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK)
    per_thread = 3 * NONCE_BATCH
    seen: list[list[bytes]] = []

    def seal_many() -> None:
        seen.append([_nonce(ring.seal(b"same", b"k")) for _ in range(per_thread)])

    threads = [threading.Thread(target=seal_many) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    nonces = [n for batch in seen for n in batch]
    assert len(nonces) == 4 * per_thread
    assert len(set(nonces)) == len(nonces)


def test_a_forked_child_never_hands_out_its_parents_nonces(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK)
    ring.seal(b"v", b"k")  # the parent now holds drawn, unused nonces
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next nonces, then leave at once
        try:
            os.write(write, b"".join(_nonce(ring.seal(b"v", b"k")) for _ in range(8)))
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        child = pipe.read()
    os.waitpid(pid, 0)
    parent = {_nonce(ring.seal(b"v", b"k")) for _ in range(NONCE_BATCH)}
    assert len(child) == 8 * NONCE_BYTES
    assert not {child[i : i + NONCE_BYTES] for i in range(0, len(child), NONCE_BYTES)} & parent


def test_value_moved_to_another_key_fails_naming_the_record(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK)
    sealed = ring.seal(b"v", b"\x01\x02")
    with pytest.raises(IntegrityError) as caught:
        ring.open(sealed, b"\x01\x03")
    assert "0103" in str(caught.value)
    assert caught.value.status_code.startswith("Neo.DatabaseError.")


def test_flipped_byte_fails_without_leaking_ciphertext_or_key(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK)
    sealed = bytearray(ring.seal(b"plaintext-here", b"k"))
    sealed[-1] ^= 0x01
    with pytest.raises(IntegrityError) as caught:
        ring.open(bytes(sealed), b"k")
    message = str(caught.value)
    assert bytes(sealed).hex() not in message
    assert KEK.hex() not in message
    assert "plaintext-here" not in message


def test_wrong_kek_cannot_open_the_keyring(tmp_path: Path) -> None:
    Keyring(tmp_path, KEK).seal(b"v", b"k")
    with pytest.raises(IntegrityError, match="wrong key-encryption key"):
        Keyring(tmp_path, bytes(32))


def test_rotation_keeps_old_values_readable_and_seals_new_ones_with_the_new_key(
    tmp_path: Path,
) -> None:
    ring = Keyring(tmp_path, KEK)
    old = ring.seal(b"old", b"a")
    assert ring.rotate() == 2
    new = ring.seal(b"new", b"b")
    assert (ring.key_version(old), ring.key_version(new)) == (1, 2)
    reopened = Keyring(tmp_path, KEK)
    assert reopened.open(old, b"a") == b"old"
    assert reopened.open(new, b"b") == b"new"
    assert reopened.current_version() == 2


def test_key_rotates_before_its_encryption_limit(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK, rotate_after=10, reserve_block=4)
    versions = [ring.key_version(ring.seal(b"x", b"k")) for _ in range(25)]
    assert versions == [1] * 10 + [2] * 10 + [3] * 5
    assert all(ring.encryptions(v) <= 10 for v in ring.versions())


def test_encryption_count_survives_a_restart_conservatively(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK, rotate_after=100, reserve_block=8)
    for _ in range(3):
        ring.seal(b"x", b"k")
    reopened = Keyring(tmp_path, KEK, rotate_after=100, reserve_block=8)
    # The reserved block counts as used: a crash may waste counts, never reuse them.
    assert reopened.encryptions(1) == 8


def test_index_mac_is_keyed_and_deterministic(tmp_path: Path) -> None:
    ring = Keyring(tmp_path / "a", KEK)
    other = Keyring(tmp_path / "b", KEK)
    assert ring.mac(b"alice") == Keyring(tmp_path / "a", KEK).mac(b"alice")
    assert ring.mac(b"alice") != other.mac(b"alice")
    assert b"alice" not in ring.mac(b"alice")


def test_key_file_with_loose_permissions_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "kek"
    write_key_file(path)
    assert len(load_kek(path)) == 32
    os.chmod(path, 0o644)
    with pytest.raises(KeyConfigurationError, match="0644"):
        load_kek(path)


def test_kek_from_the_environment(tmp_path: Path) -> None:
    assert load_kek(environ={KEK_ENV_VAR: KEK.hex()}) == KEK
    with pytest.raises(KeyConfigurationError):
        load_kek(environ={})
    with pytest.raises(KeyConfigurationError) as caught:
        load_kek(environ={KEK_ENV_VAR: "zz" * 32})
    assert "zz" * 32 not in str(caught.value)


def test_rewrapping_under_a_new_kek_keeps_every_value_readable(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK)
    sealed = ring.seal(b"value", b"k")
    mac = ring.mac(b"index")
    new_kek = bytes(reversed(KEK))
    ring.rewrap(new_kek)
    with pytest.raises(IntegrityError):
        Keyring(tmp_path, KEK)
    reopened = Keyring(tmp_path, new_kek)
    assert reopened.open(sealed, b"k") == b"value"
    assert reopened.mac(b"index") == mac


def test_index_keys_rotate_persist_and_retire(tmp_path: Path) -> None:
    ring = Keyring(tmp_path, KEK)
    assert ring.index_key_versions() == [1]
    first = ring.mac(b"value")
    assert ring.rotate_index_key() == 2 and ring.index_key_version() == 2
    assert ring.mac(b"value") != first
    assert ring.mac(b"value", 1) == first
    ring.rewrap(bytes(reversed(KEK)))
    reopened = Keyring(tmp_path, bytes(reversed(KEK)))
    assert reopened.index_key_versions() == [1, 2] and reopened.index_key_version() == 2
    assert reopened.mac(b"value", 1) == first
    with pytest.raises(ValueError):
        reopened.retire_index_key(2)
    reopened.retire_index_key(1)
    with pytest.raises(IntegrityError, match="index key v1"):
        Keyring(tmp_path, bytes(reversed(KEK))).mac(b"value", 1)


def test_a_keyring_from_before_index_key_versions_opens_as_version_1(tmp_path: Path) -> None:
    import json

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    ring = Keyring(tmp_path, KEK)
    doc = json.loads((tmp_path / "keyring.json").read_bytes())
    index_key = os.urandom(32)
    nonce = os.urandom(12)
    wrapped = nonce + AESGCM(KEK).encrypt(nonce, index_key, b"index-key")
    del doc["index_keys"], doc["index_current"]
    doc["index_key"] = wrapped.hex()
    (tmp_path / "keyring.json").write_text(json.dumps(doc))
    legacy = Keyring(tmp_path, KEK)
    assert legacy.index_key_versions() == [1]
    import hashlib
    import hmac

    assert legacy.mac(b"v") == hmac.digest(index_key, b"v", hashlib.sha256)[:16]
    assert ring.current_version() == legacy.current_version()
