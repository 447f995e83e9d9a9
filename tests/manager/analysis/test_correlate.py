"""Correlation state stays bounded over a long run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.manager.analysis.helpers import RULES, fired, record, run
from trailwarden.manager.analysis.correlate import Correlator, Window
from trailwarden.manager.analysis.pipeline import Analyzer
from trailwarden.manager.analysis.rules import Ruleset, load_ruleset

T0 = datetime(2026, 11, 20, tzinfo=UTC)
# Module-level, not a fixture: hypothesis runs the property many times.
_SEMANTICS = load_ruleset([RULES / "semantics.xml"])


def _failure(seconds: int, ip: str) -> dict[str, object]:
    return record(
        eventSource="signin.amazonaws.com",
        eventName="ConsoleLogin",
        eventTime=(T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        sourceIPAddress=ip,
        responseElements={"ConsoleLogin": "Failure"},
    )


def test_memory_is_flat_over_a_day_of_distinct_keys(semantics_ruleset: Ruleset) -> None:
    # 100021 correlates on same_field sourceIPAddress: a day of failures from ever-new IPs.
    analyzer = Analyzer(semantics_ruleset, "m")
    analyzer._correlator.max_keys_per_rule = 500  # a small cap makes the bound visible
    sizes = []
    for i in range(20_000):
        second = i * 86_400 // 20_000
        run(analyzer, _failure(second, f"10.{i // 65536}.{i // 256 % 256}.{i % 256}"))
        if i % 5_000 == 4_999:
            sizes.append(analyzer.stats()["correlation_entries"])
    window = analyzer._correlator.windows["100021"]
    assert len(window.entries) <= 500
    assert max(sizes) <= 500
    assert sizes[-1] <= sizes[0] + 10


def test_sweep_drops_keys_outside_the_timeframe(semantics_ruleset: Ruleset) -> None:
    rule = semantics_ruleset.rules["100021"]
    window = Window(rule, max_keys=10_000)
    analyzer = Analyzer(semantics_ruleset, "m")
    for i in range(100):
        run(analyzer, _failure(i, f"192.0.2.{i}"))
    source = analyzer._correlator.windows["100021"]
    assert len(source.entries) == 100
    source.newest += 10_000
    source.sweep()
    assert source.entries == {}
    assert window.size() == 0


def test_entries_per_key_are_capped(semantics_ruleset: Ruleset) -> None:
    analyzer = Analyzer(semantics_ruleset, "m")
    correlator: Correlator = analyzer._correlator
    # The same IP over and over, each time firing and clearing, or piling up below N.
    for i in range(1_000):
        run(analyzer, _failure(i * 200, "198.51.100.7"))  # 200 s apart: never 4 in 120 s
    assert correlator.state_size() <= correlator.windows["100021"].maxlen
    assert fired(run(analyzer, _failure(1_000 * 200 + 1, "198.51.100.7"))) == "100020"


def test_event_time_reads_cloudtrail_times_as_utc_with_fallbacks() -> None:
    from trailwarden.manager.analysis.correlate import event_time
    from trailwarden.manager.analysis.rules.matcher import EventView

    def view(aws: dict[str, object]) -> EventView:
        return EventView({"aws": aws}, b"{}")

    expected = T0.timestamp()
    assert event_time(view({"eventTime": "2026-11-20T00:00:00Z"})) == expected
    assert event_time(view({"eventTime": "2026-11-20T00:00:00"})) == expected
    assert event_time(view({"eventTime": "junk", "@timestamp": "2026-11-20T00:00:00.000Z"})) == (
        expected
    )
    assert event_time(view({}), clock=lambda: 42.0) == 42.0


_steps = st.lists(
    st.tuples(st.integers(0, 90), st.sampled_from(["192.0.2.1", "192.0.2.2"]), st.booleans()),
    max_size=40,
)


@given(_steps)
@settings(max_examples=150, deadline=None)
def test_frequency_matches_a_reference_model(steps: list[tuple[int, str, bool]]) -> None:
    """100021: the 4th failure from one IP within 120 s fires; the count then starts again."""
    analyzer = Analyzer(_SEMANTICS, "m")
    earlier: dict[str, list[int]] = {}
    now = 0
    for gap, ip, failed in steps:
        now += gap
        rec = _failure(now, ip)
        if not failed:
            rec["responseElements"] = {"ConsoleLogin": "Success"}
        got = fired(run(analyzer, rec))
        if not failed:
            assert got == "100001"
            continue
        window = [t for t in earlier.get(ip, []) if now - t <= 120]
        if len(window) >= 3:
            assert got == "100021"
            earlier[ip] = []
        else:
            assert got == "100020"
            earlier.setdefault(ip, []).append(now)
