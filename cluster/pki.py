"""The cluster's certificates: a CA, node certificates for server and client use.

Owns the X.509 shapes. A node certificate names its node twice: the subject common name
``node-<id>`` and a DNS subject alternative name ``node-<id>.quiver``; peers check that name
against the current membership. Every certificate carries ``127.0.0.1`` and ``localhost``
as SANs so that clients on loopback verify the server by address.

Must never: write a private key readable by anyone but its owner (0600).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CERT_VALIDITY_DAYS: Final = 825
CA_VALIDITY_DAYS: Final = 3650
NODE_NAME_PREFIX: Final = "node-"


def node_name(node_id: int) -> str:
    return f"{NODE_NAME_PREFIX}{node_id}"


def node_id_from_name(name: str) -> int | None:
    """The node id a certificate name states, or None when it names no node."""
    if not name.startswith(NODE_NAME_PREFIX):
        return None
    digits = name[len(NODE_NAME_PREFIX) :].removesuffix(".quiver")
    if not digits.isdigit():
        return None
    return int(digits)


@dataclass(slots=True, frozen=True)
class Authority:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    def pem(self) -> tuple[bytes, bytes]:
        """The private key (PKCS#8, unencrypted) and the certificate, in PEM."""
        return _key_pem(self.key), self.cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = _key_pem(key)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def make_ca(common_name: str = "Quiver cluster CA") -> Authority:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(key, cert)


def issue(
    authority: Authority,
    common_name: str,
    dns_names: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> Authority:
    """A certificate for server and client use, signed by `authority`."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    san = x509.SubjectAlternativeName(
        [
            *(x509.DNSName(name) for name in dns_names),
            x509.DNSName("localhost"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            *(x509.IPAddress(ipaddress.ip_address(address)) for address in ip_addresses),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(authority.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERT_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(san, critical=False)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(authority.key.public_key()),
            critical=False,
        )
        .sign(authority.key, hashes.SHA256())
    )
    return Authority(key, cert)


def issue_node(
    authority: Authority,
    node_id: int,
    hosts: tuple[str, ...] = (),
    ip_addresses: tuple[str, ...] = (),
) -> Authority:
    """A node's certificate; `hosts` are extra DNS names it is reached by (containers),
    `ip_addresses` extra addresses (a chaos run's network namespaces)."""
    name = node_name(node_id)
    return issue(authority, name, (f"{name}.quiver", *hosts), ip_addresses)


def save(authority: Authority, cert_path: Path, key_path: Path) -> None:
    _write_cert(cert_path, authority.cert)
    _write_private_key(key_path, authority.key)


def load(cert_path: Path, key_path: Path) -> Authority:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path} does not hold an EC private key")
    return Authority(key, cert)
