"""Encryption at rest: the key-encryption key, versioned data keys, sealing and index MACs.

Owns:
- loading the key-encryption key (KEK) from a key file that only its owner may read (mode
  0600 or stricter; anything looser is refused) or from the ``QUIVER_KEK`` environment
  variable (64 hex digits);
- the keyring: versioned 256-bit data keys, each wrapped by the KEK (AES-256-GCM) and kept
  in ``keyring.json`` beside the data, plus versioned index keys for HMACs (the graph says
  which version its index entries are under; rotating one means rebuilding the indexes,
  ``GraphStore.rotate_index_key``);
- sealing a value: AES-256-GCM, a fresh random 96-bit nonce per value (drawn from the OS
  ``NONCE_BATCH`` at a time, see ``_Nonces``), the record's key as associated data (so a
  value moved under another key fails to open), and a header naming the data key's version
  (so keys rotate without rewriting old data at once);
- counting encryptions per data key and rotating long before the random-nonce bound: NIST
  SP 800-38D allows 2**32 random-nonce messages per key; we rotate at 2**31 (configurable).
  The count survives restarts by reserving blocks of it in the keyring before use, so a
  crash can only waste counts, never reuse them;
- the keyed HMAC (HMAC-SHA-256, truncated to 128 bits) that turns property values and names
  into index and token keys without storing them.

Must never: write, log or put into an exception message any key material, plaintext value or
ciphertext. Errors name the record key (ids and opaque tokens only) and a key *version*.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEK_ENV_VAR: Final = "QUIVER_KEK"
KEY_BYTES: Final = 32
NONCE_BYTES: Final = 12
TAG_BYTES: Final = 16
MAC_BYTES: Final = 16

FORMAT_PLAINTEXT: Final = 0x00
"""Header byte of a value written with encryption switched off (tests and benchmarks only)."""
FORMAT_AES_GCM_V1: Final = 0x01
"""Header byte of ``version(4, big endian) | nonce(12) | ciphertext | tag(16)``."""
HEADER_BYTES: Final = 1 + 4 + NONCE_BYTES

NONCE_BOUND_MESSAGES: Final = 1 << 32
"""Random-nonce bound per key (NIST SP 800-38D, section 8.3)."""
DEFAULT_ROTATE_AFTER: Final = 1 << 31
"""Encryptions after which a data key is rotated: half the bound, well before it."""
DEFAULT_RESERVE_BLOCK: Final = 1 << 20
"""Encryptions reserved (persisted) at a time; a crash wastes at most this many."""

NONCE_BATCH: Final = 256
"""Nonces drawn from the OS in one ``os.urandom`` call."""

KEYRING_FILE: Final = "keyring.json"
KEYRING_FORMAT: Final = 1


class IntegrityError(Exception):
    """A stored value failed authentication: tampered, moved to another key, or wrong key.

    Carries Neo4j's ``Neo.DatabaseError.General.StorageDamageDetected``: the store found
    damage it will not paper over. The message names the record key, never its contents.
    """

    status_code = "Neo.DatabaseError.General.StorageDamageDetected"

    def __init__(self, record: str, reason: str) -> None:
        super().__init__(f"{self.status_code}: integrity check failed for {record}: {reason}")
        self.record = record
        self.reason = reason


class KeyConfigurationError(Exception):
    """The key-encryption key is missing, malformed or kept unsafely.

    ``Neo.ClientError.Security.Forbidden``: the store refuses to run with a key that others
    could read, or without one.
    """

    status_code = "Neo.ClientError.Security.Forbidden"

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.status_code}: {message}")


def describe_record(aad: bytes) -> str:
    """How errors name a record: its column family and key in hex (keys hold only ids,
    opaque tokens and MACs, so naming them reveals no data)."""
    family, sep, key = aad.partition(b":")
    if sep and family.isascii() and family.isalpha():
        return f"{family.decode()} record key {key.hex()}"
    return f"record key {aad.hex()}"


# -- the key-encryption key ------------------------------------------------------------------


def _parse_key(raw: bytes, source: str) -> bytes:
    text = raw.strip()
    if len(raw) == KEY_BYTES and len(text) != 2 * KEY_BYTES:
        return raw
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise KeyConfigurationError(
            f"{source} must hold {KEY_BYTES} raw bytes or {2 * KEY_BYTES} hex digits"
        ) from None
    if len(key) != KEY_BYTES:
        raise KeyConfigurationError(f"{source} must hold a {KEY_BYTES * 8}-bit key")
    return key


def load_kek(key_file: Path | None = None, environ: Mapping[str, str] | None = None) -> bytes:
    """The KEK from `key_file` (0600 or stricter) or else from ``$QUIVER_KEK``."""
    if key_file is not None:
        try:
            fd = os.open(key_file, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as error:
            raise KeyConfigurationError(
                f"cannot open key file {key_file}: {error.strerror}"
            ) from None
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise KeyConfigurationError(f"key file {key_file} is not a regular file")
            if mode & 0o077:
                raise KeyConfigurationError(
                    f"key file {key_file} has mode {stat.S_IMODE(mode):04o}; "
                    "it must be readable by its owner only (0600)"
                )
            raw = os.read(fd, 4096)
        finally:
            os.close(fd)
        return _parse_key(raw, f"key file {key_file}")
    env = os.environ if environ is None else environ
    value = env.get(KEK_ENV_VAR)
    if value is None:
        raise KeyConfigurationError(f"no key file given and ${KEK_ENV_VAR} is not set")
    return _parse_key(value.encode("ascii", "replace"), f"${KEK_ENV_VAR}")


def write_key_file(path: Path) -> None:
    """Create a new random KEK at `path`, mode 0600; never overwrites an existing file."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, os.urandom(KEY_BYTES).hex().encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)


# -- sealing ---------------------------------------------------------------------------------


class Cipher(Protocol):
    """What the store seals values and derives index keys with."""

    def seal(self, plaintext: bytes, aad: bytes) -> bytes: ...

    def open(self, sealed: bytes, aad: bytes, record: str | None = None) -> bytes:
        """The plaintext; IntegrityError naming `record` (default: `aad`) when
        authentication fails."""
        ...

    def mac(self, data: bytes, version: int | None = None) -> bytes:
        """A keyed, deterministic MAC_BYTES-byte digest for index and token keys, under
        index key `version` (default: the current one)."""
        ...

    def index_key_version(self) -> int:
        """The current index key's version."""
        ...

    def index_key_versions(self) -> list[int]: ...

    def rotate_index_key(self) -> int:
        """Make a new index key current; returns its version. Older ones stay usable."""
        ...

    def retire_index_key(self, version: int) -> None:
        """Forget index key `version` (never the current one)."""
        ...

    def key_version(self, sealed: bytes) -> int:
        """The data key version a sealed value names (0: written without encryption)."""
        ...

    def current_version(self) -> int: ...

    def wrap_key(self, key: bytes, label: bytes) -> bytes:
        """`key` wrapped by the KEK (for streams other nodes sharing the KEK must open)."""
        ...

    def unwrap_key(self, wrapped: bytes, label: bytes) -> bytes: ...

    @property
    def encrypts(self) -> bool: ...


class PlaintextCipher:
    """No encryption at all. For the benchmark's baseline and for proving the sentinel test
    can fail; never the default. (A store written encrypted does not open with it: its
    values fail the format check with IntegrityError.)"""

    _MAC_KEY = b"quiver-plaintext-index"

    def __init__(self) -> None:
        self._index_version = 1
        self._macs: dict[int, hmac.HMAC] = {}

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        return bytes((FORMAT_PLAINTEXT,)) + plaintext

    def open(self, sealed: bytes, aad: bytes, record: str | None = None) -> bytes:
        if not sealed or sealed[0] != FORMAT_PLAINTEXT:
            raise IntegrityError(
                record or describe_record(aad), "value is not in the plaintext format"
            )
        return sealed[1:]

    def mac(self, data: bytes, version: int | None = None) -> bytes:
        # Every version's key is derived, so any version a store names opens again.
        version = version or self._index_version
        prepared = self._macs.get(version)
        if prepared is None:
            prepared = self._macs[version] = _prepared_mac(self._MAC_KEY + _u32(version))
        return _keyed_digest(prepared, data)

    def index_key_version(self) -> int:
        return self._index_version

    def index_key_versions(self) -> list[int]:
        return [self._index_version]

    def rotate_index_key(self) -> int:
        self._index_version += 1
        return self._index_version

    def retire_index_key(self, version: int) -> None:
        if version == self._index_version:
            raise ValueError("the current index key cannot be retired")

    def key_version(self, sealed: bytes) -> int:
        return 0

    def current_version(self) -> int:
        return 0

    def wrap_key(self, key: bytes, label: bytes) -> bytes:
        return key

    def unwrap_key(self, wrapped: bytes, label: bytes) -> bytes:
        return wrapped

    @property
    def encrypts(self) -> bool:
        return False


@dataclass(slots=True)
class _DataKey:
    version: int
    aead: AESGCM
    wrapped: bytes
    reserved: int
    """Encryptions the keyring file allows before it must be rewritten."""
    used: int


def _u32(value: int) -> bytes:
    return value.to_bytes(4, "big")


def _index_label(version: int) -> bytes:
    return b"index-key-%d" % version


class _Nonces:
    """Fresh random 96-bit nonces, each handed out once, drawn from ``os.urandom``
    ``NONCE_BATCH`` at a time: disjoint slices of the kernel's random output, as random as a
    call per nonce. Why: ``os.urandom`` releases the GIL, and a storage thread then waited
    for it again while the event loop thread ran, up to the 5 ms switch interval. An applied
    write seals about nine records, and under 64 writers that wait was a third of apply's
    time (profiled on a leader: 1.55 s of 4.25 s in ``os.urandom``).

    A process made by ``fork`` starts with an empty buffer (``os.register_at_fork``), so a
    parent and its child never hand out the same nonces.
    """

    def __init__(self) -> None:
        self.forget()

    def forget(self) -> None:
        """Nothing drawn, a new lock: in a child after fork (another thread may have held
        the old lock)."""
        self._lock = threading.Lock()
        self._buffer = b""
        self._at = 0

    def take(self) -> bytes:
        with self._lock:
            at = self._at
            if at >= len(self._buffer):
                self._buffer = os.urandom(NONCE_BYTES * NONCE_BATCH)
                at = 0
            self._at = at + NONCE_BYTES
            return self._buffer[at : at + NONCE_BYTES]


_NONCES = _Nonces()
os.register_at_fork(after_in_child=_NONCES.forget)


def _wrap(kek: AESGCM, key: bytes, label: bytes) -> bytes:
    nonce = _NONCES.take()
    return nonce + kek.encrypt(nonce, key, label)


def _unwrap(kek: AESGCM, wrapped: bytes, label: bytes) -> bytes:
    try:
        return kek.decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], label)
    except InvalidTag:
        raise IntegrityError(
            f"keyring entry {label.decode()}",
            "does not unwrap: wrong key-encryption key, or the keyring was altered",
        ) from None


class StreamKeys:
    """Wraps and unwraps stream keys with a bare KEK, as a ``Keyring`` under that KEK does:
    for opening a stream (a backup) sealed by a cluster whose keyring is not at hand."""

    def __init__(self, kek: bytes) -> None:
        if len(kek) != KEY_BYTES:
            raise KeyConfigurationError(f"the key-encryption key must be {KEY_BYTES} bytes")
        self._kek = AESGCM(kek)

    def wrap_key(self, key: bytes, label: bytes) -> bytes:
        return _wrap(self._kek, key, b"stream-key/" + label)

    def unwrap_key(self, wrapped: bytes, label: bytes) -> bytes:
        return _unwrap(self._kek, wrapped, b"stream-key/" + label)

    @property
    def encrypts(self) -> bool:
        return True


class Keyring:
    """Versioned data keys and the index key, wrapped by the KEK, in ``keyring.json``.

    Thread-safe: sealing may happen on the apply thread while the log seals on a worker.
    """

    def __init__(
        self,
        directory: Path,
        kek: bytes,
        *,
        rotate_after: int = DEFAULT_ROTATE_AFTER,
        reserve_block: int = DEFAULT_RESERVE_BLOCK,
    ) -> None:
        if len(kek) != KEY_BYTES:
            raise KeyConfigurationError(f"the key-encryption key must be {KEY_BYTES} bytes")
        if not 0 < rotate_after < NONCE_BOUND_MESSAGES:
            raise ValueError("rotate_after must be positive and below the nonce bound")
        if reserve_block <= 0:
            raise ValueError("reserve_block must be positive")
        self._path = Path(directory) / KEYRING_FILE
        self._kek = AESGCM(kek)
        self._streams = StreamKeys(kek)
        self._rotate_after = rotate_after
        self._reserve_block = min(reserve_block, rotate_after)
        self._lock = threading.Lock()
        self._keys: dict[int, _DataKey] = {}
        self._current = 0
        self._index_keys: dict[int, tuple[bytes, bytes]] = {}
        """version -> (index key, the key wrapped by the KEK)."""
        self._index_macs: dict[int, hmac.HMAC] = {}
        """version -> HMAC-SHA256 keyed with that index key, no data yet (see mac)."""
        self._index_current = 0
        if self._path.exists():
            self._load()
        else:
            Path(directory).mkdir(parents=True, exist_ok=True)
            self._add_index_key_locked(save=False)
            self._add_key_locked()

    # -- persistence --------------------------------------------------------------------------

    def _load(self) -> None:
        try:
            doc = json.loads(self._path.read_bytes())
            if doc["format"] != KEYRING_FORMAT:
                raise ValueError("unknown keyring format")
            if "index_keys" in doc:
                index_entries = [
                    (int(item["version"]), bytes.fromhex(item["wrapped"]))
                    for item in doc["index_keys"]
                ]
                index_current = int(doc["index_current"])
            else:  # written before index keys had versions: one key, version 1
                index_entries = [(1, bytes.fromhex(doc["index_key"]))]
                index_current = 1
            entries = [
                (int(item["version"]), bytes.fromhex(item["wrapped"]), int(item["reserved"]))
                for item in doc["keys"]
            ]
            current = int(doc["current"])
        except (ValueError, KeyError, TypeError) as error:
            raise IntegrityError(f"keyring {self._path.name}", f"malformed ({error})") from None
        legacy = "index_keys" not in doc
        for version, wrapped in index_entries:
            label = b"index-key" if legacy else _index_label(version)
            key = _unwrap(self._kek, wrapped, label)
            self._index_keys[version] = (key, _wrap(self._kek, key, _index_label(version)))
            self._index_macs[version] = _prepared_mac(key)
        if index_current not in self._index_keys:
            raise IntegrityError(f"keyring {self._path.name}", "current index key missing")
        self._index_current = index_current
        for version, wrapped, reserved in entries:
            key = _unwrap(self._kek, wrapped, b"data-key-%d" % version)
            # After a restart nothing below `reserved` may be used again: it might have been.
            self._keys[version] = _DataKey(version, AESGCM(key), wrapped, reserved, reserved)
        if current not in self._keys:
            raise IntegrityError(f"keyring {self._path.name}", "current key version missing")
        self._current = current
        if self._keys[current].used >= self._rotate_after:
            self._add_key_locked()

    def _save_locked(self) -> None:
        doc = {
            "format": KEYRING_FORMAT,
            "current": self._current,
            "index_current": self._index_current,
            "index_keys": [
                {"version": version, "wrapped": self._index_keys[version][1].hex()}
                for version in sorted(self._index_keys)
            ],
            "keys": [
                {"version": key.version, "wrapped": key.wrapped.hex(), "reserved": key.reserved}
                for key in sorted(self._keys.values(), key=lambda k: k.version)
            ],
        }
        atomic_write(self._path, json.dumps(doc, sort_keys=True).encode())

    def _add_index_key_locked(self, save: bool = True) -> int:
        version = max(self._index_keys, default=0) + 1
        key = os.urandom(KEY_BYTES)
        self._index_keys[version] = (key, _wrap(self._kek, key, _index_label(version)))
        self._index_macs[version] = _prepared_mac(key)
        self._index_current = version
        if save:
            self._save_locked()
        return version

    def _add_key_locked(self) -> int:
        version = max(self._keys, default=0) + 1
        key = os.urandom(KEY_BYTES)
        wrapped = _wrap(self._kek, key, b"data-key-%d" % version)
        self._keys[version] = _DataKey(version, AESGCM(key), wrapped, self._reserve_block, 0)
        self._current = version
        self._save_locked()
        return version

    # -- the Cipher protocol ------------------------------------------------------------------

    def current_version(self) -> int:
        return self._current

    def versions(self) -> list[int]:
        return sorted(self._keys)

    def encryptions(self, version: int) -> int:
        """Encryptions counted against data key `version` (an upper bound after restarts)."""
        return self._keys[version].used

    def rotate(self) -> int:
        """Start a new data key: new writes use it, old values stay readable."""
        with self._lock:
            return self._add_key_locked()

    def retire(self, version: int) -> None:
        """Forget data key `version` for good: whatever it sealed becomes unreadable, so
        only retire a version nothing uses any more (``NodeStore.retire_unused_keys``)."""
        with self._lock:
            if version == self._current:
                raise ValueError("the current data key cannot be retired")
            if version not in self._keys:
                raise KeyError(f"no data key v{version}")
            del self._keys[version]
            self._save_locked()

    def rewrap(self, new_kek: bytes) -> None:
        """Rotate the key-encryption key: every data key and index key is wrapped
        again under `new_kek` (no data is rewritten). Streams wrapped under the old KEK
        (snapshot files) must be taken again."""
        if len(new_kek) != KEY_BYTES:
            raise KeyConfigurationError(f"the key-encryption key must be {KEY_BYTES} bytes")
        old = self._kek
        new = AESGCM(new_kek)
        with self._lock:
            for version, (index_key, wrapped) in list(self._index_keys.items()):
                _unwrap(old, wrapped, _index_label(version))  # the old KEK must still fit
                self._index_keys[version] = (
                    index_key,
                    _wrap(new, index_key, _index_label(version)),
                )
            for key in self._keys.values():
                label = b"data-key-%d" % key.version
                key.wrapped = _wrap(new, _unwrap(old, key.wrapped, label), label)
            self._kek = new
            self._streams = StreamKeys(new_kek)
            self._save_locked()

    def seal(self, plaintext: bytes, aad: bytes) -> bytes:
        with self._lock:
            key = self._keys[self._current]
            if key.used >= self._rotate_after:
                key = self._keys[self._add_key_locked()]
            if key.used >= key.reserved:
                key.reserved = min(key.reserved + self._reserve_block, self._rotate_after)
                self._save_locked()
            key.used += 1
            assert key.used <= key.reserved <= self._rotate_after < NONCE_BOUND_MESSAGES
        nonce = _NONCES.take()
        header = bytes((FORMAT_AES_GCM_V1,)) + key.version.to_bytes(4, "big") + nonce
        return header + key.aead.encrypt(nonce, plaintext, aad)

    def open(self, sealed: bytes, aad: bytes, record: str | None = None) -> bytes:
        # The hot path of every read: no work beyond the decryption unless it fails.
        if len(sealed) < HEADER_BYTES + TAG_BYTES or sealed[0] != FORMAT_AES_GCM_V1:
            raise IntegrityError(record or describe_record(aad), "value is not encrypted")
        key = self._keys.get(int.from_bytes(sealed[1:5], "big"))
        if key is None:
            version = int.from_bytes(sealed[1:5], "big")
            raise IntegrityError(
                record or describe_record(aad), f"names unknown data key v{version}"
            )
        try:
            return key.aead.decrypt(sealed[5:HEADER_BYTES], sealed[HEADER_BYTES:], aad)
        except InvalidTag:
            raise IntegrityError(
                record or describe_record(aad),
                f"authentication failed under data key v{key.version} "
                "(tampered, moved from another key, or written with another key)",
            ) from None

    def key_version(self, sealed: bytes) -> int:
        if not sealed or sealed[0] != FORMAT_AES_GCM_V1:
            return 0
        return int.from_bytes(sealed[1:5], "big")

    def mac(self, data: bytes, version: int | None = None) -> bytes:
        prepared = self._index_macs.get(self._index_current if version is None else version)
        if prepared is None:
            raise IntegrityError(f"index key v{version}", "not in the keyring (retired?)")
        return _keyed_digest(prepared, data)

    def index_key_version(self) -> int:
        return self._index_current

    def index_key_versions(self) -> list[int]:
        return sorted(self._index_keys)

    def rotate_index_key(self) -> int:
        with self._lock:
            return self._add_index_key_locked()

    def retire_index_key(self, version: int) -> None:
        with self._lock:
            if version == self._index_current:
                raise ValueError("the current index key cannot be retired")
            if version not in self._index_keys:
                raise KeyError(f"no index key v{version}")
            del self._index_keys[version]
            del self._index_macs[version]
            self._save_locked()

    def wrap_key(self, key: bytes, label: bytes) -> bytes:
        return self._streams.wrap_key(key, label)

    def unwrap_key(self, wrapped: bytes, label: bytes) -> bytes:
        return self._streams.unwrap_key(wrapped, label)

    @property
    def encrypts(self) -> bool:
        return True


def _prepared_mac(key: bytes) -> hmac.HMAC:
    """HMAC-SHA256 under `key`, before any data: its key schedule done once."""
    return hmac.new(key, digestmod=hashlib.sha256)


def _keyed_digest(prepared: hmac.HMAC, data: bytes) -> bytes:
    # ``hmac.digest(key, data, hashlib.sha256)`` would set the key up again on every call
    # (about 4 us with OpenSSL 3, a point lookup's largest single cost after decryption);
    # a copy of the keyed state costs about a quarter of that. The prepared state is never
    # updated itself, so concurrent copies are safe. Same bytes as hmac.digest.
    mac = prepared.copy()
    mac.update(data)
    return mac.digest()[:MAC_BYTES]


def atomic_write(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so that a crash leaves the old or the new file, whole."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
