"""Realistic CloudTrail trails for demos, tests and benchmarks.

    generate_records(accounts, regions, events, scenarios, seed, start) -> list[dict]
    write_objects(records, out, ...) -> list[str]        # a directory or s3://bucket[/prefix]
    SCENARIOS: name -> Scenario(description, expected_rules, build)

Modules: ``identity`` (principals), ``records`` (one record), ``documented`` (Wazuh's page),
``detections`` (added detections), ``noise`` (read-only background), ``catalogue``,
``generate``, ``layout`` (S3 key layout, grouping), ``writer`` + ``s3`` (output), ``cli``.
"""

from __future__ import annotations

from trailwarden.common.generator.catalogue import (
    DOCUMENTED_RULES,
    SCENARIOS,
    Scenario,
    expected_rules,
    resolve,
)
from trailwarden.common.generator.generate import generate_records
from trailwarden.common.generator.layout import LogObject, plan_objects
from trailwarden.common.generator.records import REQUIRED_FIELDS
from trailwarden.common.generator.writer import write_objects

__all__ = [
    "DOCUMENTED_RULES",
    "REQUIRED_FIELDS",
    "SCENARIOS",
    "LogObject",
    "Scenario",
    "expected_rules",
    "generate_records",
    "plan_objects",
    "resolve",
    "write_objects",
]
