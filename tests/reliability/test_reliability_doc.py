"""docs/RELIABILITY.md is generated from the reliability tests and must match them."""

from __future__ import annotations

from tests.reliability.reliability_doc import AREAS, DOCUMENT, collect, render


def test_every_reliability_test_says_what_it_proves() -> None:
    proofs = collect()  # raises naming any test without an AREA or a docstring
    assert {p.area for p in proofs} == set(AREAS)


def test_reliability_doc_matches_the_tests() -> None:
    assert DOCUMENT.exists(), "run: python -m tests.reliability.reliability_doc --write"
    assert DOCUMENT.read_text() == render(), (
        "docs/RELIABILITY.md disagrees with the tests; run: "
        "python -m tests.reliability.reliability_doc --write"
    )
