"""Certificate rotation without restarts: ``quiver certs rotate`` on the cluster directory, and
the node's side that picks the new files up while it runs.

``rotate`` issues every node a new certificate and key (same names and addresses) into the
cluster directory; with ``new_ca`` it first makes a new CA whose certificate leads the trust
bundle ``ca.pem`` while the old CA stays in it, so peers and clients on either generation
trust each other during the change; ``retire_old_ca`` later drops every CA but the current one
from the bundle. Every file is written to a temporary name and renamed over the old one.

``CertificateReloader`` is the node's view of its TLS files: ``check`` re-reads them and
returns new material when they changed and the key matches the certificate (a rotation caught
between its two renames is read again at the next check).
``server_credentials`` are gRPC server credentials whose certificate fetcher hands the current
material to every new handshake; connections already open keep the certificate they
negotiated.

Must never: write a private key readable by anyone but its owner (0600), or hand gRPC a
certificate that does not match its key.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from cluster import pki
from cluster.config import load_cluster, load_node_config

CERT_POLL_S: Final = 1.0
"""How often a running node reads its certificate files to see whether they changed."""
MAX_TRUSTED_CAS: Final = 4
"""A trust bundle holds at most this many CA certificates (rotations not yet retired)."""

log = logging.getLogger("quiver.certs")


class RotationError(Exception):
    """A rotation that cannot be done as asked (no CA key, too many CAs in the bundle)."""


# -- the cluster directory's side (quiver certs rotate) ----------------------------------------


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(temporary, mode)
    os.replace(temporary, path)


def _key_pem(authority: pki.Authority) -> bytes:
    return authority.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _extra_names(cert: x509.Certificate, node_id: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The DNS names and addresses a node certificate carries beyond the ones every node
    certificate gets, so that the new certificate names the node the same way."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return (), ()
    implied_dns = {f"{pki.node_name(node_id)}.quiver", "localhost"}
    hosts = tuple(n for n in san.get_values_for_type(x509.DNSName) if n not in implied_dns)
    addresses = tuple(
        str(a) for a in san.get_values_for_type(x509.IPAddress) if str(a) != "127.0.0.1"
    )
    return hosts, addresses


@dataclass(slots=True, frozen=True)
class Rotated:
    """What a rotation wrote: each node's new certificate serial, and the trusted CAs."""

    serials: dict[int, int]
    trusted_cas: int


def rotate(directory: Path, new_ca: bool = False, retire_old_ca: bool = False) -> Rotated:
    """New node certificates (and with `new_ca` a new CA, trusted beside the old one) into
    the cluster directory; running nodes pick them up within ``CERT_POLL_S``."""
    cluster = load_cluster(directory)
    ca_path = cluster.ca_path
    ca_key_path = ca_path.with_suffix(".key")
    if not ca_key_path.exists():
        raise RotationError(f"no CA key at {ca_key_path}: certificates cannot be issued here")
    trusted = x509.load_pem_x509_certificates(ca_path.read_bytes())
    authority = pki.load(ca_path, ca_key_path)
    if new_ca:
        if len(trusted) >= MAX_TRUSTED_CAS:
            raise RotationError(
                f"{ca_path} already trusts {len(trusted)} CAs: retire the old ones first "
                "(quiver certs rotate --retire-old-ca)"
            )
        authority = pki.make_ca()
        trusted = [authority.cert, *trusted]
        # The bundle first, so that nothing ever sees a certificate of a CA it does not trust.
        _write_atomically(ca_path, b"".join(_cert_pem(c) for c in trusted), 0o644)
        _write_atomically(ca_key_path, _key_pem(authority), 0o600)
    serials: dict[int, int] = {}
    for entry in cluster.nodes:
        config = load_node_config(directory / entry.config)
        old = x509.load_pem_x509_certificate(config.cert.read_bytes())
        hosts, addresses = _extra_names(old, entry.id)
        issued = pki.issue_node(authority, entry.id, hosts, addresses)
        # Key first: a node that reads between the two renames sees a mismatch and waits.
        _write_atomically(config.key, _key_pem(issued), 0o600)
        _write_atomically(config.cert, _cert_pem(issued.cert), 0o644)
        serials[entry.id] = issued.cert.serial_number
    if retire_old_ca:
        current = authority.cert.public_bytes(serialization.Encoding.DER)
        kept = [c for c in trusted if c.public_bytes(serialization.Encoding.DER) == current]
        _write_atomically(ca_path, b"".join(_cert_pem(c) for c in kept), 0o644)
        trusted = kept
    return Rotated(serials, len(trusted))


# -- the running node's side --------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class TlsMaterial:
    """One consistent reading of a node's TLS files (PEM bytes)."""

    ca: bytes
    cert: bytes
    key: bytes
    serial: int
    generation: int


def _matches(cert_pem: bytes, key_pem: bytes) -> int | None:
    """The certificate's serial when the key is the certificate's key, else None."""
    try:
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):  # half written, encrypted, unknown
        return None
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if cert.public_key().public_bytes(der, spki) != key.public_key().public_bytes(der, spki):
        return None
    return cert.serial_number


class CertificateReloader:
    """The node's current TLS material, re-read when the files change."""

    def __init__(self, ca: Path, cert: Path, key: Path) -> None:
        self._paths = (ca, cert, key)
        self._lock = threading.Lock()
        material = self._read(1)
        if material is None:
            raise ValueError(f"{key} is not the key of {cert}")
        self._material = material

    @property
    def current(self) -> TlsMaterial:
        with self._lock:
            return self._material

    def _read(self, generation: int) -> TlsMaterial | None:
        ca, cert, key = (path.read_bytes() for path in self._paths)
        serial = _matches(cert, key)
        if serial is None:
            return None
        return TlsMaterial(ca, cert, key, serial, generation)

    def check(self) -> TlsMaterial | None:
        """New material when the files changed and hold a matching pair, else None.
        The files are compared by content (a few kilobytes), not by modification time, which
        the kernel keeps only to a few milliseconds. Blocking: call it off the event loop."""
        current = self.current
        try:
            ca, cert, key = (path.read_bytes() for path in self._paths)
        except OSError as error:  # a file renamed over right now: look again next time
            log.warning("certificate files not readable: %s", error)
            return None
        if (ca, cert, key) == (current.ca, current.cert, current.key):
            return None
        serial = _matches(cert, key)
        if serial is None:
            log.info("certificate and key do not match (yet): retrying at the next check")
            return None
        material = TlsMaterial(ca, cert, key, serial, current.generation + 1)
        with self._lock:
            self._material = material
        log.info("TLS certificate reloaded (serial %x)", material.serial)
        return material

    def server_credentials(self, require_client_auth: bool) -> grpc.ServerCredentials:
        """gRPC server credentials that hand each new handshake the current certificate
        (and, with client authentication, the current trust bundle)."""
        served = [0]

        def configuration(material: TlsMaterial) -> grpc.ServerCertificateConfiguration:
            return grpc.ssl_server_certificate_configuration(
                [(material.key, material.cert)],
                root_certificates=material.ca if require_client_auth else None,
            )

        def fetch() -> grpc.ServerCertificateConfiguration | None:
            material = self.current
            if material.generation == served[0]:
                return None  # gRPC keeps what it has
            served[0] = material.generation
            return configuration(material)

        initial = self.current
        served[0] = initial.generation
        return grpc.dynamic_ssl_server_credentials(
            configuration(initial), fetch, require_client_authentication=require_client_auth
        )

    def peer_channel_credentials(self) -> grpc.ChannelCredentials:
        material = self.current
        return grpc.ssl_channel_credentials(
            root_certificates=material.ca, private_key=material.key, certificate_chain=material.cert
        )

    def client_channel_credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(root_certificates=self.current.ca)
