"""The literal texts a pcre2 pattern needs: a value without them is refused before the regex,
and that never changes what matches."""

from __future__ import annotations

import pytest

from trailwarden.manager.analysis.rules.needles import needles
from trailwarden.manager.analysis.rules.regex import compile_pattern


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ('"cidrIp(?:v4|v6)?"\\s*:\\s*"[^"]*/0"', ('"cidrIp',)),
        (
            '"URI"\\s*:\\s*"https?://acs|"x-amz-acl"\\s*:\\s*\\[?',
            ('"URI"', '"x-amz-acl"'),
        ),
        ("^arn:aws:iam::", ("arn:aws:iam::",)),
        ("abcd?e", ("abc",)),  # d may be absent
        ("abc+d", ("abc",)),  # c once or more: what follows is not at a fixed place
        ("\\.amazonaws\\.com$", (".amazonaws.com",)),
        ("ab|abcdef", None),  # one alternative too short to be worth a scan
        ("(?:foo|bar)baz", None),
        ("(?i)errorcode", None),  # inline flags: the literal may match in another case
        ("\\sfoo", None),
        ("foo(", None),  # unbalanced: leave it to the engine
    ],
)
def test_needles(source: str, expected: tuple[str, ...] | None) -> None:
    assert needles(source) == expected


@pytest.mark.parametrize(
    ("source", "value", "matches"),
    [
        ('"cidrIp(?:v4|v6)?"\\s*:\\s*"[^"]*/0"', '{"cidrIpv6": "::/0"}', True),
        ('"cidrIp(?:v4|v6)?"\\s*:\\s*"[^"]*/0"', '{"cidrIp": "10.0.0.0/8"}', False),
        ('"cidrIp(?:v4|v6)?"\\s*:\\s*"[^"]*/0"', '{"CIDRIP": "0.0.0.0/0"}', False),  # cased
        ('"x"|"y-z"\\s*:\\s*1', '{"y-z": 1}', True),
        ("(?<=ab)cde", "abcde", True),  # backtracking engine, gated the same way
        ("(?<=ab)cde", "xbcdf", False),
    ],
)
def test_gated_patterns_match_as_the_engine_does(source: str, value: str, matches: bool) -> None:
    assert compile_pattern(source, "pcre2").test(value) is matches
    assert compile_pattern(source, "pcre2", negate=True).test(value) is not matches
