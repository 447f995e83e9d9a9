"""How `trailwarden admin …` prints: aligned tables, UTC times, messages as JSON dicts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format


def ms_to_text(ms: int) -> str:
    """``YYYY-MM-DD HH:MM:SS`` (UTC) of a Unix time in milliseconds; ``-`` for 0 (never)."""
    if not ms:
        return "-"
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def table(rows: list[list[str]], header: list[str]) -> str:
    """Columns padded to their widest cell, two spaces apart, no trailing blanks."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]
    ]
    return "\n".join(line.rstrip() for line in lines)


def to_dict(message: Any) -> dict[str, Any]:
    """A protobuf message as ``--json`` prints it (field names as in the .proto, defaults kept)."""
    return json_format.MessageToDict(
        message, preserving_proto_field_name=True, always_print_fields_with_no_presence=True
    )
