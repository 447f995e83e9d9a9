"""Wazuh's pattern languages on RE2 (and the limited backtracking engine): semantics, refusals,
and linear time."""

from __future__ import annotations

import time

import pytest

from trailwarden.manager.analysis.rules.regex import (
    BACKTRACK_LIMIT_SECONDS,
    MatchLimitError,
    PatternError,
    compile_pattern,
)


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        ("ConsoleLogin", "ConsoleLogin", True),
        ("consolelogin", "ConsoleLogin", True),  # case-insensitive
        ("Login", "ConsoleLogin", True),  # found anywhere
        ("^Console", "ConsoleLogin", True),
        ("^Login", "ConsoleLogin", False),
        ("Login$", "ConsoleLogin", True),
        ("^ConsoleLogin$", "ConsoleLogins", False),
        ("StopLogging|DeleteTrail", "DeleteTrail", True),
        ("!Success", "Failure", True),
        ("!Success", "Success", False),
        ("a.b", "axb", False),  # '.' is literal in osmatch
    ],
)
def test_osmatch(pattern: str, value: str, expected: bool) -> None:
    assert compile_pattern(pattern, "osmatch").test(value) is expected


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        (r"\.+", "AccessDenied", True),
        (r"\.+", "", False),
        (r"^\d+$", "123456789012", True),
        (r"^\d+$", "12a", False),
        (r"\w+@\w+", "mail bob@example", True),
        (r"user-\w+", "USER-x_1", True),  # case-insensitive, \w includes _ - @
        (r"a\sb", "a b", True),
        (r"a\Sb", "a b", False),
        (r"\p", "x;", True),
        (r"t3.micro", "t3xmicro", False),  # '.' is literal in osregex
        (r"\(x\)", "(x)", True),
        (r"^(Stop|Delete)\w+$", "deleteTrail", True),
        (r"AccessDenied", "Client.AccessDeniedException", True),
    ],
)
def test_osregex(pattern: str, value: str, expected: bool) -> None:
    assert compile_pattern(pattern, "osregex").test(value) is expected


def test_pcre2_is_case_sensitive_and_negatable() -> None:
    assert compile_pattern(r"^admin-\d{2}$", "pcre2").test("admin-42")
    assert not compile_pattern(r"^admin", "pcre2").test("Admin")
    assert compile_pattern(r"(?i)^admin", "pcre2").test("Admin")
    assert compile_pattern("^admin", "pcre2", negate=True).test("root")


@pytest.mark.parametrize("bad", [r"(a)\2", "(unclosed", "x{2,1}", "a**"])
def test_malformed_pcre2_is_refused(bad: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(bad, "pcre2")


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        (r"^(?!^$|^-$).*", "AccessDenied", True),  # Wazuh's rule 80367
        (r"^(?!^$|^-$).*", "-", False),
        (r"^(?!^$|^-$).*", "", False),
        (r"^(\w+)-\1$", "abc-abc", True),  # back-reference
        (r"^(\w+)-\1$", "abc-abd", False),
        (r"(?<!arn:aws:iam::)root", "user/root", True),  # look-behind
        (r"(?<!arn:aws:iam::)root", "arn:aws:iam::root", False),
        (r"^(?>a+)b", "aaab", True),  # atomic group
        (r"^a++b", "aaab", True),  # possessive quantifier
    ],
)
def test_pcre2_beyond_re2_runs_on_the_backtracking_engine(
    pattern: str, value: str, expected: bool
) -> None:
    compiled = compile_pattern(pattern, "pcre2")
    assert compiled.backtracking
    assert compiled.test(value) is expected
    assert compile_pattern(pattern, "pcre2", negate=True).test(value) is not expected


def test_pcre2_that_re2_runs_stays_on_re2() -> None:
    assert not compile_pattern(r"^(?:AccessDenied|UnauthorizedAccess)$", "pcre2").backtracking
    assert not compile_pattern(r"^(a+)+$", "pcre2").backtracking


def test_a_catastrophic_backtracking_match_is_stopped_at_the_limit() -> None:
    # A back-reference inside a repeated alternation: exponential on the backtracking engine
    # when the subject almost matches.
    catastrophic = compile_pattern(r"^((a|aa)\2?)+$", "pcre2")
    started = time.monotonic()
    with pytest.raises(MatchLimitError) as caught:
        catastrophic.test("a" * 40 + "b")
    elapsed = time.monotonic() - started
    assert elapsed < BACKTRACK_LIMIT_SECONDS * 20, elapsed
    assert "backtracking match limit" in str(caught.value)
    # The same pattern on an easy subject still answers.
    assert catastrophic.test("aaa")


@pytest.mark.parametrize("bad", ["(x", "x)", r"\q", "+x", "x\\"])
def test_malformed_osregex_is_refused(bad: str) -> None:
    with pytest.raises(PatternError):
        compile_pattern(bad, "osregex")


def test_literal_patterns_expose_exact_values_for_indexing() -> None:
    assert compile_pattern("^A$|^b$", "osregex").exact == frozenset({"a", "b"})
    assert compile_pattern("A", "osregex").exact is None
    assert compile_pattern("^A$", "osregex", negate=True).exact is None


def test_pathological_patterns_run_in_linear_time() -> None:
    evil = "a" * 100_000 + "!"
    patterns = [
        compile_pattern(r"^(a+)+$", "pcre2"),
        compile_pattern(r"(a|aa)*c", "pcre2"),
        compile_pattern(r"^(\w+\w+)+$", "osregex"),
        compile_pattern(r"\w*\w*\w*\w*\w*\w*b", "osregex"),
    ]
    started = time.perf_counter()
    for pattern in patterns:
        assert pattern.test(evil) is False
    assert time.perf_counter() - started < 0.5
