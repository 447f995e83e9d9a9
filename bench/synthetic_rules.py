"""Detections shaped like the default ruleset's, generated for measuring a larger ruleset.

The 0351/0352 detections of issue 17 are written elsewhere; to measure what ~120 more
detections cost before they exist, ``synthetic_rules`` writes that many children of 80202 in the
shapes the real ones have (eventName and eventSource exact, success only, plus a request field
pattern, a pcre2 test over the record or a policy fact), one per CloudTrail API it is given.
Given the APIs most frequent in the data, every synthetic rule is a candidate for many events
and fails only on a test after eventName and eventSource (a root caller, a bucket name, an
open CIDR, a policy fact), as a real detection fails on the look-alikes of its API: a
pessimistic stand-in (real detections watch rarer APIs, so most events meet none of them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any
from xml.sax.saxutils import escape

FIRST_ID = 190000
"""Above the IDs the project and users take (local rules start at 100000)."""

_EXTRA_TESTS = (
    '    <field name="aws.userIdentity.type">^Root$</field>\n',
    '    <field name="aws.requestParameters.bucketName">^prod-|^backup-</field>\n',
    '    <regex type="pcre2">"cidrIp(?:v4|v6)?"\\s*:\\s*"[^"]*/0"</regex>\n',
    '    <field name="trailwarden.policy.allows_all_actions">^true$</field>\n',
)
_TECHNIQUES = ("T1562.008", "T1098.003", "T1530", "T1485", "T1078.004", "T1537")


def frequent_apis(records: Iterable[dict[str, Any]], count: int) -> list[tuple[str, str]]:
    """The ``count`` (eventSource, eventName) pairs most frequent in ``records``."""
    seen = Counter(
        (str(r.get("eventSource", "")), str(r.get("eventName", "")))
        for r in records
        if r.get("eventSource") and r.get("eventName")
    )
    return [pair for pair, _ in seen.most_common(count)]


def synthetic_rules(apis: Sequence[tuple[str, str]], count: int) -> str:
    """A rule file of ``count`` detections, children of 80202, cycling over ``apis``."""
    rules = []
    for index in range(count):
        source, name = apis[index % len(apis)]
        rule_id = FIRST_ID + index
        rules.append(
            f'  <rule id="{rule_id}" level="{5 + index % 8}">\n'
            "    <if_sid>80202</if_sid>\n"
            f'    <field name="aws.eventName">^{escape(name)}$|^BenchOnly{index}$</field>\n'
            f'    <field name="aws.eventSource">^{escape(source)}$</field>\n'
            f"{_EXTRA_TESTS[index % len(_EXTRA_TESTS)]}"
            '    <match negate="yes">"errorCode"</match>\n'
            f"    <description>Bench detection {rule_id}: $(aws.eventName) on "
            "$(aws.requestParameters.bucketName) by $(aws.userIdentity.arn).</description>\n"
            f"    <mitre><id>{_TECHNIQUES[index % len(_TECHNIQUES)]}</id></mitre>\n"
            "    <group>bench,pci_dss_10.6.1,nist_800_53_AU.6,</group>\n"
            "    <options>no_full_log</options>\n"
            "  </rule>\n"
        )
    return '<group name="bench,">\n' + "".join(rules) + "</group>\n"
