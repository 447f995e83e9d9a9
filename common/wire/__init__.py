"""The wire edge: generated protobuf/gRPC modules, re-exported under stable names.

Nothing outside the link/admin/enrollment edges imports these: sources, rules and storage work
on the domain types in ``trailwarden.common.model`` and ``trailwarden.manager.analysis.alert``.
"""

from trailwarden.common.wire._generated import (
    admin_pb2,
    admin_pb2_grpc,
    enrollment_pb2,
    enrollment_pb2_grpc,
    link_pb2,
    link_pb2_grpc,
)

REFUSAL_METADATA_KEY = "trailwarden-refusal"
"""Trailing metadata of a link the manager refuses for good (value: revoked, superseded,
unknown); the agent stops retrying on it. Without it a PERMISSION_DENIED stays retryable."""

__all__ = [
    "REFUSAL_METADATA_KEY",
    "admin_pb2",
    "admin_pb2_grpc",
    "enrollment_pb2",
    "enrollment_pb2_grpc",
    "link_pb2",
    "link_pb2_grpc",
]
