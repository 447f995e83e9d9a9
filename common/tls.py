"""All TLS and PKI material is built here, and only here.

- The manager's CA (EC P-256), its server certificate, admin and agent certificates.
- Identities live in a certificate's URI SAN: ``spiffe://trailwarden/agent/<id>`` for agents,
  ``spiffe://trailwarden/admin/<name>`` for admins. Nothing else is ever trusted for identity.
- Private keys are serialised here; common/keyfiles.py writes them 0600 and refuses loose ones.
- The admin credentials bundle (address, CA, admin certificate and key in one 0600 file).
- CA pinning for enrollment: the agent reads the manager's chain over TLS, keeps the
  certificate whose SHA-256 matches ``--ca-sha256``, and only then trusts it.

Handing the PEM bytes to gRPC is common/channels.py's job: a running agent needs that and its
key file, never this module, which loads cryptography (~10 MiB of RSS).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import socket
import ssl
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from trailwarden.common.errors import (
    CaPinError,
    CredentialsError,
    InsecureKeyFileError,
    PkiError,
)
from trailwarden.common.keyfiles import read_private_file, write_private_file

URI_PREFIX = "spiffe://trailwarden/"
CA_VALIDITY_DAYS = 3650
LEAF_VALIDITY_DAYS = 825
CLOCK_SKEW = dt.timedelta(minutes=5)


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
    ca_key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    names: list[str],
    days: int = LEAF_VALIDITY_DAYS,
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
        days,
    )
    return key, cert


def server_names(cert: x509.Certificate) -> list[str]:
    """The DNS names and IP addresses a server certificate answers to, in its SAN's order."""
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    names: list[str] = []
    for entry in san:
        if isinstance(entry, x509.DNSName):
            names.append(entry.value)
        elif isinstance(entry, x509.IPAddress):
            names.append(str(entry.value))
    return names


def not_after_ms(cert: x509.Certificate) -> int:
    """When the certificate expires, in Unix milliseconds."""
    return int(cert.not_valid_after_utc.timestamp() * 1000)


def load_certs(pem: bytes, where: str = "certificate bundle") -> list[x509.Certificate]:
    """Every certificate of a PEM bundle (a trust bundle holds two CAs during a rotation)."""
    try:
        certs = x509.load_pem_x509_certificates(pem)
    except ValueError as exc:
        raise PkiError(f"{where}: not a PEM certificate bundle: {exc}") from exc
    return certs


def issuer_among(cert: x509.Certificate, cas: list[x509.Certificate]) -> x509.Certificate | None:
    """The CA of ``cas`` whose key signed ``cert``, or None (checked by signature, not name:
    during a rotation the two CAs may carry similar names)."""
    for ca in cas:
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return ca
    return None


def public_keys_match(key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> bool:
    """Whether ``cert`` certifies ``key``'s public key (a renewed key and its certificate)."""
    return bool(key.public_key() == cert.public_key())


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


# ---- HTTPS (the web console) -----------------------------------------------------------------


def https_server_context(cert_path: Path, key_path: Path) -> ssl.SSLContext:
    """A TLS 1.2+ server context for the web console from a PEM chain and its 0600 key file.

    The key file's permissions are checked first (common/keyfiles.py); a certificate and key
    that do not load, or do not belong together, are refused naming both files.
    """
    from trailwarden.common.keyfiles import check_private_file

    check_private_file(key_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # Forward-secret AEAD suites only for TLS 1.2 (TLS 1.3 suites are all of that kind).
    context.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20")
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    context.set_alpn_protocols(["http/1.1"])
    try:
        context.load_cert_chain(cert_path, key_path)
    except FileNotFoundError as exc:
        raise PkiError(f"console certificate: {exc.filename}: file not found") from exc
    except (ssl.SSLError, OSError) as exc:
        raise PkiError(
            f"console certificate {cert_path} with key {key_path} cannot be used: {exc}"
        ) from exc
    return context


def https_client_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A verifying TLS 1.2+ client context (webhooks, SMTP STARTTLS): the system's CAs, or only
    ``ca_file``'s (a PEM bundle) for a receiver with a private CA. Host names are checked."""
    context = ssl.create_default_context()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if ca_file is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (ssl.SSLError, OSError) as exc:
            raise PkiError(f"CA file {ca_file} cannot be used: {exc}") from exc
    return context


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
