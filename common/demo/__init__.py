"""``trailwarden demo``: the whole system on one machine, with an S3 emulator, in one command."""

from __future__ import annotations

from trailwarden.common.demo.cli import handler, register

__all__ = ["handler", "register"]
