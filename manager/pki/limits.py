"""Ranges of the certificate commands' numbers, importable without loading cryptography
(argparse needs them when every `trailwarden` command starts)."""

from __future__ import annotations

SERVER_CERT_MAX_DAYS = 825
"""The longest server certificate `cert renew --days` issues (common/tls.LEAF_VALIDITY_DAYS,
the limit browsers accept)."""
MIN_OVERLAP_SECONDS = 86_400
MAX_OVERLAP_SECONDS = 365 * 86_400
DEFAULT_OVERLAP_SECONDS = 30 * 86_400
"""`ca rotate --overlap`: 1d..365d, default 30d."""
