"""Request bodies: read with a cap, HTML form fields parsed without extra dependencies.

HTML forms here post ``application/x-www-form-urlencoded`` (the login form, the logout
button); the JSON API reads JSON. Both are read through `read_body`, which refuses a body past
its cap instead of buffering it.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.exceptions import HTTPException
from starlette.requests import Request

FORM_TYPE = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 16 * 1024
"""A login or logout form is a few hundred bytes."""
MAX_FORM_FIELDS = 32


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, or HTTP 413 as soon as it passes ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"request body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_form(body: bytes) -> dict[str, str]:
    """Fields of a urlencoded body (the first value of a repeated field wins)."""
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, f"form not readable: {exc}") from exc
    form: dict[str, str] = {}
    for key, value in pairs:
        form.setdefault(key, value)
    return form


def is_form(content_type: str) -> bool:
    return content_type.split(";", 1)[0].strip().lower() == FORM_TYPE


async def read_form(request: Request) -> dict[str, str]:
    """A urlencoded form of at most MAX_FORM_BYTES; 415 for anything else."""
    if not is_form(request.headers.get("content-type", "")):
        raise HTTPException(415, f"expected {FORM_TYPE}")
    return parse_form(await read_body(request, MAX_FORM_BYTES))
