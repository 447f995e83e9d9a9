"""``python -m trailwarden.common.generator generate ...`` (same as ``trailwarden generate``)."""

from __future__ import annotations

import sys

from trailwarden.common.generator.cli import main

sys.exit(main())
