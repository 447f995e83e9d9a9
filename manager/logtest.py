"""``trailwarden logtest`` and ``trailwarden rules check``: try rules without a running manager.

``logtest`` (like ``wazuh-logtest``) reads CloudTrail records from files or stdin (``{"Records":
[...]}`` objects, JSON arrays or JSON lines, gzipped or not), runs each through the same
``Analyzer`` the manager uses, and prints the decoded fields, every rule tried and the alert.
Correlation state is kept across the events of one run, so a burst of failed logins in a file
shows the frequency rule firing on the right event. ``--json`` prints one JSON object per
record for machines; ``--rules``/``--lists-root`` test another ruleset.

``rules check PATH...`` loads a ruleset and reports every problem with file:line; ``rules doc``
writes the default ruleset's tables into docs/RULES.md (``manager/ruleset/document.py``).

Exit codes: 0 fine; 1 input unreadable or ruleset refused (problems on stderr); 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TextIO

from trailwarden.common.errors import DecodeError, ObjectError, RulesetError
from trailwarden.common.logfile import ParsedObject, parse_object, read_file
from trailwarden.common.model import AgentRef, SourceMeta
from trailwarden.manager.analysis.pipeline import Analyzer, Outcome
from trailwarden.manager.analysis.policy import policy_facts
from trailwarden.manager.analysis.rules import Ruleset, default_ruleset_paths
from trailwarden.manager.analysis.ruleset import load_rules
from trailwarden.manager.ruleset.document import write_or_check

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
MANAGER_NAME = "logtest"


def register(subparsers: Any) -> None:
    """Add the ``logtest`` and ``rules`` subcommands to an argparse subparsers object."""
    logtest = subparsers.add_parser(
        "logtest",
        help="run CloudTrail records through the rules and show decoding, rules tried, alert",
        description=__doc__.split("\n\n")[1] if __doc__ else None,
    )
    logtest.add_argument(
        "files", nargs="*", metavar="FILE", help="record files ('-' or none: read stdin)"
    )
    _ruleset_arguments(logtest)
    logtest.add_argument("--json", action="store_true", help="one JSON object per record")
    logtest.add_argument("--agent-id", default="000", help="agent ID to attribute records to")
    logtest.add_argument("--agent-name", default="logtest", help="agent name for the records")
    logtest.set_defaults(func=run_logtest)

    rules = subparsers.add_parser("rules", help="work with rule files")
    actions = rules.add_subparsers(dest="rules_command", required=True)
    check = actions.add_parser("check", help="validate a ruleset (every error with file:line)")
    check.add_argument("paths", nargs="+", metavar="PATH", help="rule files or directories")
    check.add_argument("--lists-root", type=Path, help="where <list> paths resolve")
    check.add_argument(
        "--with-defaults",
        action="store_true",
        help="check the files together with the shipped ruleset (for child rules of 80202)",
    )
    check.add_argument("--json", action="store_true", help="machine-readable result")
    check.set_defaults(func=run_rules_check)
    doc = actions.add_parser(
        "doc", help="write the default ruleset's tables into docs/RULES.md (between its markers)"
    )
    doc.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=Path("docs/RULES.md"),
        help="the page to write or check (default docs/RULES.md)",
    )
    doc.add_argument("--check", action="store_true", help="exit 1 if PATH is out of date")
    doc.set_defaults(func=run_rules_doc)


def _ruleset_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rules",
        action="append",
        type=Path,
        metavar="PATH",
        help="rule file or directory (repeatable; default: the shipped ruleset)",
    )
    parser.add_argument(
        "--with-defaults",
        action="store_true",
        help="load the shipped ruleset too, before the --rules files (for child rules of 80202)",
    )
    parser.add_argument(
        "--lists-root", type=Path, help="where <list> paths resolve (e.g. a Wazuh install root)"
    )


def _load(
    paths: Sequence[Path] | None, with_defaults: bool, lists_root: Path | None, err: TextIO
) -> Ruleset | None:
    chosen = list(paths or [])
    if with_defaults or not chosen:
        chosen = [*default_ruleset_paths(), *chosen]
    try:
        return load_rules(chosen, lists_root)
    except RulesetError as exc:
        print(exc, file=err)
        return None


# -- logtest ------------------------------------------------------------------------------------


def run_logtest(
    args: argparse.Namespace,
    out: TextIO | None = None,
    err: TextIO | None = None,
    stdin: Any = None,
) -> int:
    """Handler of ``trailwarden logtest``."""
    out = out or sys.stdout
    err = err or sys.stderr
    ruleset = _load(args.rules, args.with_defaults, args.lists_root, err)
    if ruleset is None:
        return EXIT_FAILED
    analyzer = Analyzer(ruleset, MANAGER_NAME)
    agent = AgentRef(args.agent_id, args.agent_name)
    status = EXIT_OK
    for where, parsed in _inputs(args.files or ["-"], stdin, err):
        if parsed is None:
            status = EXIT_FAILED
            continue
        for problem in parsed.problems:
            print(f"{where}: skipped {problem}", file=err)
        for index, outcome in analyse_records(analyzer, parsed, where, agent):
            if args.json:
                out.write(json.dumps(outcome_json(where, index, outcome), default=str) + "\n")
            else:
                _print_text(out, where, index, outcome)
    return status


def analyse_records(
    analyzer: Analyzer, parsed: ParsedObject, where: str, agent: AgentRef
) -> Iterator[tuple[int, Outcome]]:
    """Each record of ``parsed`` through ``analyzer`` with the rule trace: ``(index, outcome)``.

    Shared by this command and the console's rule-test box, so both show the same thing."""
    source = SourceMeta(source="logtest", key=where)
    for item in parsed.records:
        try:
            outcome = analyzer.analyse(item.record, item.raw, source, agent, trace=True)
        except DecodeError as exc:
            outcome = Outcome(event={}, error=str(exc))
        yield item.index, outcome


def logtest_json(
    ruleset: Ruleset, data: bytes, where: str, agent: AgentRef | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """``logtest --json`` on ``data`` (the console's rule test): one object per record, and the
    problems of records that could not be read. ObjectError if ``data`` is not records at all."""
    parsed = parse_object(data, where)
    analyzer = Analyzer(ruleset, MANAGER_NAME)
    agent = agent or AgentRef("000", "logtest")
    results = [
        outcome_json(where, index, outcome)
        for index, outcome in analyse_records(analyzer, parsed, where, agent)
    ]
    return results, [str(problem) for problem in parsed.problems]


def _inputs(
    names: Sequence[str], stdin: Any, err: TextIO
) -> Iterator[tuple[str, ParsedObject | None]]:
    for name in names:
        try:
            if name == "-":
                stream = stdin if stdin is not None else sys.stdin.buffer
                yield "<stdin>", parse_object(stream.read(), "<stdin>")
            else:
                yield name, read_file(name)
        except (ObjectError, OSError) as exc:
            print(f"{name}: {exc}", file=err)
            yield name, None


def outcome_json(where: str, index: int, outcome: Outcome) -> dict[str, Any]:
    """One record's decoding, rules tried, matched rule and alert, as ``logtest --json``."""
    rule = outcome.rule
    return {
        "source": where,
        "index": index,
        "error": outcome.error or None,
        "event": outcome.event,
        "policy_facts": _policy_facts(outcome),
        "trace": [
            {"rule": s.rule_id, "depth": s.depth, "matched": s.matched, "note": s.note}
            for s in outcome.trace
        ],
        "rule": None
        if rule is None
        else {"id": rule.id, "level": rule.level, "location": rule.location},
        "alert": outcome.alert.to_wazuh() if outcome.alert is not None else None,
        "sigma": {
            "tried": [{"rule": rule_id, "matched": hit} for rule_id, hit in outcome.sigma_trace],
            "matched": [hit.rule_id for hit in outcome.sigma_hits],
            "alerts": [alert.to_wazuh() for alert in outcome.sigma_alerts],
        },
        "rule_errors": list(outcome.rule_errors),
    }


def _policy_facts(outcome: Outcome) -> dict[str, str] | None:
    """The ``trailwarden.policy.*`` fields rules can test on this event, if it has a policy."""
    facts = policy_facts(outcome.event) if outcome.event else {}
    known = {name: value for name, value in facts.items() if value is not None}
    return known or None


def _print_text(out: TextIO, where: str, index: int, outcome: Outcome) -> None:
    out.write(f"** Record {index} of {where}\n")
    if outcome.error:
        out.write(f"**Phase 1: decoding failed: {outcome.error}\n\n")
        return
    out.write("**Phase 1: Completed decoding.\n")
    for key, value in flatten(outcome.event):
        out.write(f"\t{key}: {json.dumps(value, ensure_ascii=False)}\n")
    for key, value in (_policy_facts(outcome) or {}).items():
        out.write(f"\t{key}: {json.dumps(value)}  (computed from the request's policy)\n")
    out.write("\n**Phase 2: Rules tried.\n")
    for step in outcome.trace:
        mark = "match" if step.matched else "no"
        note = f"  ({step.note})" if step.note else ""
        out.write(f"\t{'  ' * step.depth}{step.rule_id}: {mark}{note}\n")
    _print_sigma(out, outcome)
    for error in outcome.rule_errors:
        out.write(f"\t!! {error}\n")
    rule = outcome.rule
    if rule is None:
        out.write("\n**No rule matched.\n\n")
        return
    out.write("\n**Phase 3: Completed filtering (rules).\n")
    alert = outcome.alert
    out.write(f"\tid: '{rule.id}'\n\tlevel: '{rule.level}'\n")
    if alert is not None:
        out.write(f"\tdescription: '{alert.rule.description}'\n")
        out.write(f"\tgroups: {json.dumps(list(alert.rule.groups))}\n")
        out.write(f"\tfiredtimes: '{alert.rule.firedtimes}'\n")
        if alert.rule.mitre_ids:
            out.write(f"\tmitre.id: {json.dumps(list(alert.rule.mitre_ids))}\n")
        out.write("**Alert to be generated.\n\n")
    else:
        out.write(f"\tdescription: '{rule.description_source}'\n")
        out.write("**No alert (level 0 or the rule's options silence it).\n\n")


def _print_sigma(out: TextIO, outcome: Outcome) -> None:
    if not outcome.sigma_trace:
        return
    out.write("\n**Sigma rules tried.\n")
    for rule_id, matched in outcome.sigma_trace:
        out.write(f"\t{rule_id}: {'match' if matched else 'no'}\n")
    for alert in outcome.sigma_alerts:
        out.write(
            f"**Sigma alert: id '{alert.rule.id}' level '{alert.rule.level}' "
            f"description '{alert.rule.description}'\n"
        )


def flatten(value: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted ``(path, leaf)`` pairs of a nested event, in key order (for display)."""
    for key, item in value.items():
        path = f"{prefix}{key}"
        if isinstance(item, Mapping) and item:
            yield from flatten(item, path + ".")
        else:
            yield path, item


# -- rules check --------------------------------------------------------------------------------


def run_rules_check(
    args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None
) -> int:
    """Handler of ``trailwarden rules check``."""
    out = out or sys.stdout
    err = err or sys.stderr
    paths = [*default_ruleset_paths(), *args.paths] if args.with_defaults else list(args.paths)
    try:
        ruleset = load_rules(paths, args.lists_root)
    except RulesetError as exc:
        if args.json:
            problems = [{"file": e.file, "line": e.line, "message": e.reason} for e in exc.errors]
            out.write(json.dumps({"ok": False, "errors": problems}) + "\n")
        else:
            for problem in exc.errors:
                print(problem, file=err)
            print(f"ruleset refused: {len(exc.errors)} error(s)", file=err)
        return EXIT_FAILED
    if args.json:
        out.write(
            json.dumps({"ok": True, "rules": len(ruleset.rules), "files": list(ruleset.sources)})
            + "\n"
        )
    else:
        out.write(f"OK: {len(ruleset.rules)} rules from {len(ruleset.sources)} file(s)\n")
    return EXIT_OK


def run_rules_doc(args: argparse.Namespace) -> int:
    """Handler of ``trailwarden rules doc``."""
    return write_or_check(args.path, check=args.check)


# -- standalone entry point -----------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m trailwarden.manager.logtest logtest|rules ...`` (same as ``trailwarden``)."""
    from trailwarden.common.cli import interruptible

    interruptible()
    parser = argparse.ArgumentParser(prog="trailwarden")
    register(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
