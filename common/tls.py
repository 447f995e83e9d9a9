"""All TLS and PKI material is built here, and only here.

- The manager's CA (EC P-256), its server certificate, admin and agent certificates.
- Identities live in a certificate's URI SAN: ``spiffe://trailwarden/agent/<id>`` for agents,
  ``spiffe://trailwarden/admin/<name>`` for admins. Nothing else is ever trusted for identity.
- Private keys are written 0600 and refused when group/others can read them.
- gRPC credentials and channel options (keepalive settings that never trip ``too_many_pings``).
- CA pinning for enrollment: the agent reads the manager's chain over TLS, keeps the
  certificate whose SHA-256 matches ``--ca-sha256``, and only then trusts it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import socket
import ssl
import stat
import uuid
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trailwarden.common.errors import (
    CaPinError,
    CredentialsError,
    InsecureKeyFileError,
    PkiError,
)

URI_PREFIX = "spiffe://trailwarden/"
CA_VALIDITY_DAYS = 3650
LEAF_VALIDITY_DAYS = 825
CLOCK_SKEW = dt.timedelta(minutes=5)

# Client pings every 30 s; the server allows pings every 10 s, so keepalive never earns a
# GOAWAY "too_many_pings", while dead peers are still noticed within a minute.
CLIENT_KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 30_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
)
SERVER_KEEPALIVE_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_ping_strikes", 0),
)
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""Largest gRPC message either side accepts (a batch of big records)."""


class Role(Enum):
    AGENT = "agent"
    ADMIN = "admin"


# ---- keys ------------------------------------------------------------------------------------


def new_private_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def key_to_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def write_private_file(path: Path, data: bytes) -> None:
    """Write a secret file that is 0600 from its first byte (no window where others can read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_public_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def check_private_file(path: Path) -> None:
    """Refuse a key (or credentials) file that group or others can access."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError as exc:
        raise CredentialsError(f"{path}: missing") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InsecureKeyFileError(
            f"{path}: permissions {stat.filemode(mode)} let others read a private key; "
            f"run: chmod 600 {path}"
        )


def read_private_file(path: Path) -> bytes:
    check_private_file(path)
    return path.read_bytes()


def load_private_key(pem: bytes, where: str) -> ec.EllipticCurvePrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise CredentialsError(f"{where}: not a usable private key: {exc}") from exc
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CredentialsError(f"{where}: expected an EC private key")
    return key


# ---- certificates ----------------------------------------------------------------------------


def load_cert(pem: bytes, where: str = "certificate") -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise PkiError(f"{where}: not a PEM certificate: {exc}") from exc


def cert_to_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def fingerprint(cert: x509.Certificate | bytes) -> str:
    """SHA-256 of the DER certificate, lowercase hex without separators."""
    if isinstance(cert, bytes):
        cert = load_cert(cert)
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def normalise_fingerprint(text: str) -> str:
    """Accept ``AB:CD:…``, ``sha256:abcd…`` or plain hex."""
    cleaned = text.strip().lower().removeprefix("sha256:").replace(":", "")
    if len(cleaned) != 64 or any(c not in "0123456789abcdef" for c in cleaned):
        raise CaPinError(f"--ca-sha256 {text!r} is not a SHA-256 fingerprint (64 hex digits)")
    return cleaned


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "TrailWarden"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
        ]
    )


def create_ca(
    common_name: str = "TrailWarden CA",
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = new_private_key()
    subject = _name(common_name)
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=CA_VALIDITY_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
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
    return key, cert


def _leaf(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: Any,
    common_name: str,
    sans: list[x509.GeneralName],
    usage: x509.ObjectIdentifier,
    days: int,
) -> x509.Certificate:
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )


def issue_server_cert(
    ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate, names: list[str]
) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    """The manager's certificate; ``names`` are host names and IP addresses it answers to."""
    import ipaddress

    sans: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    key = new_private_key()
    cert = _leaf(
        ca_key,
        ca_cert,
        key.public_key(),
        names[0],
        sans,
        ExtendedKeyUsageOID.SERVER_AUTH,
        LEAF_VALIDITY_DAYS,
    )
    return key, cert


def identity_uri(role: Role, ident: str) -> str:
    return f"{URI_PREFIX}{role.value}/{ident}"


def issue_client_cert(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    public_key: Any,
    role: Role,
    ident: str,
    common_name: str,
    days: int = LEAF_VALIDITY_DAYS,
) -> x509.Certificate:
    sans: list[x509.GeneralName] = [x509.UniformResourceIdentifier(identity_uri(role, ident))]
    return _leaf(
        ca_key, ca_cert, public_key, common_name, sans, ExtendedKeyUsageOID.CLIENT_AUTH, days
    )


def cert_identity(cert: x509.Certificate) -> tuple[Role, str] | None:
    """(role, id) from the certificate's URI SAN, or None when it carries no TrailWarden URI."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return None
    for uri in san.get_values_for_type(x509.UniformResourceIdentifier):
        if uri.startswith(URI_PREFIX):
            role_name, _, ident = uri[len(URI_PREFIX) :].partition("/")
            if ident:
                try:
                    return Role(role_name), ident
                except ValueError:
                    return None
    return None


def build_csr(key: ec.EllipticCurvePrivateKey, name: str) -> bytes:
    csr = (
        x509.CertificateSigningRequestBuilder().subject_name(_name(name)).sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def load_csr(pem: bytes) -> x509.CertificateSigningRequest:
    """A CSR whose self-signature verifies (the requester holds the key)."""
    try:
        csr = x509.load_pem_x509_csr(pem)
    except ValueError as exc:
        raise PkiError(f"not a PEM certificate request: {exc}") from exc
    if not csr.is_signature_valid:
        raise PkiError("certificate request signature does not verify")
    if not isinstance(csr.public_key(), ec.EllipticCurvePublicKey):
        raise PkiError("certificate request must carry an EC public key")
    return csr


# ---- gRPC credentials -----------------------------------------------------------------------


def server_credentials(
    key_pem: bytes, cert_pem: bytes, ca_pem: bytes, *, require_client_auth: bool
) -> grpc.ServerCredentials:
    # The chain includes the CA so that enrolling agents can pin it by fingerprint.
    return grpc.ssl_server_credentials(
        [(key_pem, cert_pem + ca_pem)],
        root_certificates=ca_pem if require_client_auth else None,
        require_client_auth=require_client_auth,
    )


def client_channel_credentials(
    ca_pem: bytes, cert_pem: bytes | None = None, key_pem: bytes | None = None
) -> grpc.ChannelCredentials:
    return grpc.ssl_channel_credentials(
        root_certificates=ca_pem, private_key=key_pem, certificate_chain=cert_pem
    )


def channel_options(server_name: str = "") -> list[tuple[str, Any]]:
    options: list[tuple[str, Any]] = list(CLIENT_KEEPALIVE_OPTIONS)
    options += [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return options


def server_options() -> list[tuple[str, Any]]:
    return [
        *SERVER_KEEPALIVE_OPTIONS,
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]


# ---- CA pinning for enrollment ---------------------------------------------------------------


def fetch_pinned_ca(host: str, port: int, pin: str, timeout: float = 10.0) -> bytes:
    """The manager's CA certificate (PEM), taken from its TLS chain only if it matches ``pin``.

    The chain is read without verification — that is safe because nothing from it is trusted
    unless its SHA-256 equals the fingerprint the admin gave out of band.
    """
    expected = normalise_fingerprint(pin)
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_alpn_protocols(["h2"])
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls_sock,
        ):
            chain = _unverified_chain(tls_sock)
    except (OSError, ssl.SSLError) as exc:
        raise CaPinError(f"cannot read the manager's certificate at {host}:{port}: {exc}") from exc
    seen = []
    for der in chain:
        cert = x509.load_der_x509_certificate(der)
        got = fingerprint(cert)
        seen.append(got)
        if got == expected:
            return cert_to_pem(cert)
    raise CaPinError(
        f"the manager at {host}:{port} did not present a CA with SHA-256 {expected} "
        f"(it presented {', '.join(seen) or 'nothing'}); check --ca-sha256 against the "
        f"fingerprint `trailwarden manager init` printed"
    )


def _unverified_chain(tls_sock: ssl.SSLSocket) -> list[bytes]:
    public = getattr(tls_sock, "get_unverified_chain", None)  # Python >= 3.13
    if public is not None:
        return [bytes(c) for c in public()]
    certs = tls_sock._sslobj.get_unverified_chain()  # type: ignore[attr-defined]  # 3.10-3.12
    return [c.public_bytes(ssl._ssl.ENCODING_DER) for c in certs]  # type: ignore[attr-defined]


# ---- admin credentials bundle ----------------------------------------------------------------


@dataclass(frozen=True)
class AdminBundle:
    """What an admin needs to talk to a manager: address, CA, admin certificate and key."""

    address: str
    """host:port of the manager's link/admin service."""
    server_name: str
    """Name to verify the manager's certificate against ('' = the host in ``address``)."""
    ca_pem: bytes
    cert_pem: bytes
    key_pem: bytes

    def save(self, path: Path) -> None:
        payload = {
            "format": "trailwarden-admin-credentials/1",
            "address": self.address,
            "server_name": self.server_name,
            "ca_pem": self.ca_pem.decode(),
            "cert_pem": self.cert_pem.decode(),
            "key_pem": self.key_pem.decode(),
        }
        write_private_file(path, json.dumps(payload, indent=2).encode())

    @classmethod
    def load(cls, path: Path) -> AdminBundle:
        try:
            data = json.loads(read_private_file(path))
            return cls(
                address=data["address"],
                server_name=data.get("server_name", ""),
                ca_pem=data["ca_pem"].encode(),
                cert_pem=data["cert_pem"].encode(),
                key_pem=data["key_pem"].encode(),
            )
        except InsecureKeyFileError:
            raise
        except CredentialsError as exc:
            raise CredentialsError(
                f"admin credentials {path} not found: pass --credentials FILE or set "
                f"TRAILWARDEN_CREDENTIALS (manager init writes <home>/admin.credentials)"
            ) from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CredentialsError(f"{path}: not an admin credentials bundle: {exc}") from exc
