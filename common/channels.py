"""gRPC transport security and options: mutual-TLS credentials from PEM bytes, keepalive and
message-size limits, the same for every channel and server.

The PEM material itself is made in common/tls.py; this module only hands it to gRPC, so a
running agent's link loads it without loading cryptography.
"""

from __future__ import annotations

from typing import Any

import grpc

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


def describe_rpc_error(exc: grpc.RpcError, address_hint: str = "") -> str:
    """One line an admin can act on, from a failed admin call."""
    code = exc.code() if hasattr(exc, "code") else None
    details = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.UNAVAILABLE:
        return f"manager unreachable{(' at ' + address_hint) if address_hint else ''}: {details}"
    name = code.name if code is not None else "ERROR"
    return f"{name}: {details}"
