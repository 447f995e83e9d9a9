"""The default ruleset as Markdown tables: the generated part of docs/RULES.md.

    python -m trailwarden.manager.ruleset.document [--check] [PATH]    (or: trailwarden rules doc)

One table a file of the default ruleset (``manager/ruleset/*.xml``, load order): each rule's ID,
level, MITRE techniques with their tactics (from ``mitre.py``, as the alert gets them), the
compliance groups, what fires it (parent, the fields it tests, the record text it needs) and its
description. The tables replace what lies between ``BEGIN`` and ``END`` in PATH (default
``docs/RULES.md``); the prose around them is kept. ``--check`` writes nothing and exits 1 when
PATH differs from what the rules say (a test runs it: a rule added without regenerating fails).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from trailwarden.manager.analysis.alert import COMPLIANCE
from trailwarden.manager.analysis.mitre import TECHNIQUES
from trailwarden.manager.analysis.rules import Ruleset, default_ruleset_paths, load_ruleset
from trailwarden.manager.analysis.rules.model import Rule
from trailwarden.manager.analysis.rules.regex import Pattern

BEGIN = "<!-- rules:begin -->"
END = "<!-- rules:end -->"
COMMAND = "python -m trailwarden.manager.ruleset.document"
HEADER = (
    "| ID | Lvl | MITRE (tactic) | Compliance | Fires on | Description |",
    "|---|---|---|---|---|---|",
)
SUCCESS_ONLY = '"errorCode"'
"""The ``<match negate="yes">`` every detection of a successful call carries."""


def render(ruleset: Ruleset) -> str:
    """The generated Markdown (without the markers) for a loaded ruleset."""
    by_file: dict[str, list[Rule]] = {}
    for rule in sorted(ruleset.rules.values(), key=lambda r: r.order):
        by_file.setdefault(Path(rule.file).name, []).append(rule)
    parts = [
        f"Generated from the rules by `{COMMAND}`: do not edit by hand. Field names are "
        "CloudTrail's (`aws.` left out); `a, b` lists exact values, `~` a pattern, `!~` a "
        "negated one, `record ~` a test over the whole record."
    ]
    for name, rules in by_file.items():
        parts.append(f"### {name}\n\n" + "\n".join([*HEADER, *(_row(rule) for rule in rules)]))
    return "\n\n".join(parts) + "\n"


def _row(rule: Rule) -> str:
    cells = (
        rule.id,
        str(rule.level),
        "<br>".join(_technique(t) for t in rule.mitre_ids),
        _compliance(rule.groups),
        "; ".join(_fires_on(rule)),
        rule.description_source,
    )
    return "| " + " | ".join(_cell(text) for text in cells) + " |"


def _technique(technique_id: str) -> str:
    known = TECHNIQUES.get(technique_id)
    if known is None:
        return technique_id
    name, tactics = known
    return f"{technique_id} {name} ({', '.join(tactics)})"


def _compliance(groups: Sequence[str]) -> str:
    found: dict[str, list[str]] = {}
    for group in groups:
        framework = next((c for c in COMPLIANCE if group.startswith(c + "_")), None)
        if framework is not None:
            found.setdefault(framework, []).append(group[len(framework) + 1 :])
    return "<br>".join(f"{name}: {', '.join(controls)}" for name, controls in found.items())


def _fires_on(rule: Rule) -> list[str]:
    out = []
    parents = [*rule.if_sid, *(f"group {g}" for g in rule.if_group)]
    if parents:
        out.append("child of " + ", ".join(parents))
    if rule.frequency:
        matched = [*rule.if_matched_sid, *(f"group {g}" for g in rule.if_matched_group)]
        window = f"{rule.frequency} of {' / '.join(matched)} within {rule.timeframe} s"
        if rule.same_fields:
            window += ", same " + ", ".join(_short(f) for f in rule.same_fields)
        if rule.different_fields:
            window += ", different " + ", ".join(_short(f) for f in rule.different_fields)
        out.append(window)
    out.extend(f"{_short(test.name)}{_pattern(test.pattern)}" for test in rule.fields)
    for test in rule.log_tests:
        if test.pattern.negated and test.pattern.source == SUCCESS_ONLY:
            out.append("succeeded (no errorCode)")
        else:
            out.append(f"record{_pattern(test.pattern)}")
    out.extend(f"{_short(test.name)} {test.lookup} list" for test in rule.lists)
    return out


def _pattern(pattern: Pattern) -> str:
    if pattern.exact is not None and not pattern.negated:
        values = [part.strip("^$") for part in pattern.source.split("|")]
        return ": " + ", ".join(values)
    kind = " (pcre2)" if pattern.kind == "pcre2" else ""
    return f" {'!~' if pattern.negated else '~'} `{pattern.source}`{kind}"


def _short(name: str) -> str:
    return name.removeprefix("aws.")


def _cell(text: str) -> str:
    # GitHub's tables split on | even inside code spans, unless it is escaped.
    return text.replace("|", "\\|").replace("\n", " ")


def updated(document: str, generated: str) -> str:
    """``document`` with the text between the markers replaced by ``generated``."""
    start, end = document.find(BEGIN), document.find(END)
    if start < 0 or end < start:
        raise ValueError(f"the document has no {BEGIN} ... {END} section")
    return document[: start + len(BEGIN)] + "\n" + generated + document[end:]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=Path("docs/RULES.md"),
        help="the page to write or check (default docs/RULES.md)",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if PATH is out of date")
    args = parser.parse_args(argv)
    return write_or_check(args.path, check=args.check)


def write_or_check(path: Path, *, check: bool) -> int:
    """Regenerate ``path`` (or, with ``check``, say whether it is up to date): 0 fine, 1 not."""
    try:
        document = path.read_text(encoding="utf-8")
        fresh = updated(document, render(load_ruleset(default_ruleset_paths())))
    except (OSError, ValueError) as exc:
        print(f"{path}: {exc}", file=sys.stderr)
        return 1
    if check:
        if fresh != document:
            print(f"{path} is out of date: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if fresh != document:
        path.write_text(fresh, encoding="utf-8")
    print(f"{path}: {len(fresh.splitlines())} lines, rules from the default ruleset")
    return 0


if __name__ == "__main__":
    sys.exit(main())
