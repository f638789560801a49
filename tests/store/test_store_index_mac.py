"""The index MAC (blind index keys, name keys) computed from a prepared HMAC state is the
same HMAC-SHA256 as ``hmac.digest`` under each index key version, survives a reopen, and a
retired version cannot be used."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from store.crypto import MAC_BYTES, IntegrityError, Keyring, PlaintextCipher

KEK = bytes(range(32))


def test_the_index_mac_is_hmac_sha256_under_each_index_key(tmp_path: Path) -> None:
    keyring = Keyring(tmp_path, KEK)
    data = b"\x02" + bytes(8)
    first = keyring.index_key_version()
    second = keyring.rotate_index_key()
    for version in (first, second):
        key = keyring._index_keys[version][0]
        expected = hmac.digest(key, data, hashlib.sha256)[:MAC_BYTES]
        assert keyring.mac(data, version) == expected
    assert keyring.mac(data) == keyring.mac(data, second) != keyring.mac(data, first)
    reopened = Keyring(tmp_path, KEK)
    assert reopened.mac(data, first) == keyring.mac(data, first)
    keyring.retire_index_key(first)
    with pytest.raises(IntegrityError):
        keyring.mac(data, first)
    plaintext = PlaintextCipher()
    for version in (1, 2):
        key = b"quiver-plaintext-index" + version.to_bytes(4, "big")
        expected = hmac.digest(key, data, hashlib.sha256)[:MAC_BYTES]
        assert plaintext.mac(data, version) == expected
