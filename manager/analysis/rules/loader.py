"""Load Wazuh XML rule files into a linked ``Ruleset``, collecting every error.

A ruleset is one or more files or directories (``*.xml`` inside, in name order, like Wazuh's
``ruleset/rules``). Loading never stops at the first problem: unknown elements or attributes,
duplicate IDs, missing parents, bad patterns, unreadable lists, cycles are all collected, each
with file:line, and the ruleset is refused with ``RulesetError`` holding them all.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from trailwarden.common.errors import RuleError, RulesetError
from trailwarden.manager.analysis.policy import FIELDS as POLICY_FIELDS
from trailwarden.manager.analysis.policy import PREFIX as POLICY_PREFIX
from trailwarden.manager.analysis.rules.lists import ListCache
from trailwarden.manager.analysis.rules.model import (
    LOOKUPS,
    DescriptionPart,
    FieldTest,
    ListTest,
    LogTest,
    Rule,
    Ruleset,
    try_order,
)
from trailwarden.manager.analysis.rules.regex import KINDS, Pattern, PatternError, compile_pattern
from trailwarden.manager.analysis.rules.xmlnodes import Node, parse_nodes

log = logging.getLogger(__name__)

RULE_ATTRIBUTES = frozenset(
    {"id", "level", "frequency", "timeframe", "ignore", "maxsize", "overwrite", "noalert"}
)
MAX_RULE_ID = 999_999
MAX_LEVEL = 16

OPTIONS = frozenset({"no_full_log", "no_log", "no_counter", "alert_by_email", "no_email_alert"})
"""Wazuh's rule ``<options>``, all honoured: ``no_full_log`` (no ``full_log`` in the alert),
``no_log`` (matches without alerting), ``no_counter`` (no ``rule.firedtimes``),
``alert_by_email`` / ``no_email_alert`` (``rule.mail`` true / false)."""

COMPLIANCE_ELEMENTS = ("pci_dss", "gdpr", "hipaa", "nist_800_53", "tsc", "gpg13", "cis")
"""``<pci_dss>10.6.1,10.2.4</pci_dss>`` and friends: the same as the ``pci_dss_10.6.1`` group
names Wazuh's own rules use, and written to the same ``rule.pci_dss`` (...) alert fields."""

STATIC_FIELD_ELEMENTS = frozenset(
    {
        "same_source_ip", "same_srcip", "different_srcip", "not_same_source_ip",
        "same_user", "different_user", "not_same_user", "same_srcuser", "different_srcuser",
        "same_dstip", "different_dstip", "same_srcport", "different_srcport", "same_dstport",
        "different_dstport", "same_location", "different_location", "same_id", "different_id",
        "same_protocol", "different_protocol", "same_action", "different_action", "same_url",
        "different_url", "same_status", "different_status", "same_data", "different_data",
        "same_extra_data", "different_extra_data", "same_system_name", "different_system_name",
        "srcip", "dstip", "srcport", "dstport", "user", "url", "id", "action", "status",
        "protocol", "data", "extra_data", "system_name", "hostname", "program_name", "location",
        "srcgeoip", "dstgeoip",
    }
)  # fmt: skip
"""Elements over Wazuh's static fields (``srcip``, ``user``...), which its syslog decoders
fill and its JSON decoder (the one CloudTrail events pass) leaves empty: refused with a hint
to test the CloudTrail field itself (``<field>``, ``<same_field>``)."""

_VAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)")
_DESCRIPTION_FIELD = re.compile(r"\$\(([^)\s]+)\)")
_LIST_SPLIT = re.compile(r"[,\s]+")


def load_ruleset(paths: Sequence[Path], lists_root: Path | None = None) -> Ruleset:
    """Load and link the rules in ``paths`` (files or directories); RulesetError if broken."""
    loader = _Loader(ListCache(Path(lists_root) if lists_root is not None else None))
    files = list(_rule_files(paths, loader.errors))
    for file in files:
        loader.load_file(file)
    ruleset = loader.link(tuple(str(f) for f in files))
    if files and not loader.rules and not loader.errors:
        loader.errors.append(RuleError("the ruleset holds no rules at all"))
    if loader.errors:
        # File order as given, then line order: the way a user fixes them.
        order = {str(f): i for i, f in enumerate(files)}
        raise RulesetError(
            sorted(loader.errors, key=lambda e: (order.get(e.file, len(order)), e.line))
        )
    log.debug("stage=rules loaded rules=%d files=%d", len(ruleset.rules), len(files))
    return ruleset


def _rule_files(paths: Sequence[Path], errors: list[RuleError]) -> Iterable[Path]:
    if not paths:
        errors.append(RuleError("no rule files given"))
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix == ".xml" and p.is_file())
            if not found:
                errors.append(RuleError("directory holds no *.xml rule files", file=str(path)))
            yield from found
        elif path.is_file():
            yield path
        else:
            errors.append(RuleError("no such file or directory", file=str(path)))


def _split(text: str) -> tuple[str, ...]:
    return tuple(part for part in _LIST_SPLIT.split(text) if part)


class _Loader:
    def __init__(self, lists: ListCache) -> None:
        self.lists = lists
        self.errors: list[RuleError] = []
        self.rules: dict[str, Rule] = {}
        self.order = 0

    def error(self, message: str, file: Path | str, line: int) -> None:
        self.errors.append(RuleError(message, file=str(file), line=line))

    # -- files and groups ----------------------------------------------------------------------

    def load_file(self, file: Path) -> None:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            self.errors.append(RuleError(f"cannot read: {exc}", file=str(file)))
            return
        try:
            nodes = parse_nodes(text, str(file))
        except RuleError as exc:
            self.errors.append(exc)
            return
        rule_elements = sum(_count_rules(node) for node in nodes)
        if rule_elements == 0:
            self.errors.append(
                RuleError(
                    "holds no rules: a Wazuh rule file has <group> elements holding <rule> "
                    "elements (is this file empty, or not a rule file?)",
                    file=str(file),
                    line=nodes[0].line if nodes else 1,
                )
            )
            return
        variables: dict[str, str] = {}
        for node in nodes:
            if node.tag == "var":
                name = node.attrs.get("name", "")
                if not name:
                    self.error("<var> without a name", file, node.line)
                variables[name] = node.text
            elif node.tag == "group":
                self.load_group(node, file, variables, ())
            elif node.tag == "rule":
                self.load_rule(node, file, variables, ())
            else:
                self.error(
                    f"unknown element <{node.tag}> (expected <group> or <var>)", file, node.line
                )

    def load_group(
        self, node: Node, file: Path, variables: dict[str, str], outer: tuple[str, ...]
    ) -> None:
        for attr in node.attrs:
            if attr != "name":
                self.error(f"unknown attribute {attr!r} on <group>", file, node.line)
        groups = outer + tuple(g for g in node.attrs.get("name", "").split(",") if g.strip())
        groups = tuple(g.strip() for g in groups)
        for child in node.children:
            if child.tag == "rule":
                self.load_rule(child, file, variables, groups)
            elif child.tag == "group":
                self.load_group(child, file, variables, groups)
            else:
                self.error(f"unknown element <{child.tag}> in <group>", file, child.line)

    # -- one rule ------------------------------------------------------------------------------

    def load_rule(
        self, node: Node, file: Path, variables: dict[str, str], groups: tuple[str, ...]
    ) -> None:
        errors_before = len(self.errors)
        attrs = node.attrs
        for attr in attrs:
            if attr not in RULE_ATTRIBUTES:
                self.error(f"unknown attribute {attr!r} on <rule>", file, node.line)
        rule_id = self._int_attr(attrs, "id", file, node.line, 1, MAX_RULE_ID, required=True)
        level = self._int_attr(attrs, "level", file, node.line, 0, MAX_LEVEL, required=True)
        frequency = self._int_attr(attrs, "frequency", file, node.line, 2, 9999)
        timeframe = self._int_attr(attrs, "timeframe", file, node.line, 1, 10_000_000)
        ignore = self._int_attr(attrs, "ignore", file, node.line, 1, 10_000_000)
        overwrite_text = attrs.get("overwrite", "no").lower()
        if overwrite_text not in ("yes", "no"):
            self.error(f"overwrite={attrs['overwrite']!r}: use yes or no", file, node.line)
        overwrite = overwrite_text == "yes"
        maxsize = self._int_attr(attrs, "maxsize", file, node.line, 1, 9999)
        rule = Rule(
            id=str(rule_id),
            level=level,
            file=str(file),
            line=node.line,
            frequency=frequency,
            timeframe=timeframe,
            ignore=ignore,
            maxsize=maxsize,
        )
        own_groups: list[str] = []
        info: list[str] = []
        mitre: list[str] = []
        options: set[str] = set()
        fields: list[FieldTest] = []
        log_tests: list[LogTest] = []
        lists: list[ListTest] = []
        description: str | None = None
        for child in node.children:
            text = _VAR.sub(lambda m: variables.get(m.group(1), m.group(0)), child.text)
            tag = child.tag
            if tag == "description":
                description = child.text
            elif tag == "group":
                own_groups.extend(g.strip() for g in text.split(",") if g.strip())
            elif tag == "mitre":
                for item in child.children:
                    if item.tag != "id" or not item.text:
                        self.error(f"<mitre> holds <{item.tag}>, expected <id>", file, item.line)
                    else:
                        mitre.append(item.text)
            elif tag == "options":
                for option in (o.strip() for o in text.split(",")):
                    if option in OPTIONS:
                        options.add(option)
                    elif option:
                        self.error(
                            f"unknown option {option!r} in rule {rule_id} "
                            f"(Wazuh's options: {', '.join(sorted(OPTIONS))})",
                            file,
                            child.line,
                        )
            elif tag in COMPLIANCE_ELEMENTS:
                own_groups.extend(f"{tag}_{c.strip()}" for c in text.split(",") if c.strip())
            elif tag == "if_sid":
                rule.if_sid += _split(text)
            elif tag == "if_group":
                rule.if_group += _split(text)
            elif tag == "if_matched_sid":
                rule.if_matched_sid += _split(text)
            elif tag == "if_matched_group":
                rule.if_matched_group += _split(text)
            elif tag == "same_field":
                rule.same_fields += (text,)
            elif tag in ("different_field", "not_same_field"):
                rule.different_fields += (text,)
            elif tag == "decoded_as":
                rule.decoded_as = text
            elif tag == "field":
                test = self._field(child, text, file)
                if test is not None:
                    fields.append(test)
            elif tag in ("match", "regex"):
                default = "osmatch" if tag == "match" else "osregex"
                pattern = self._pattern(child, text, default, file, {"type", "negate"})
                if pattern is not None:
                    log_tests.append(LogTest(tag, pattern))
            elif tag == "list":
                test_list = self._list(child, text, file)
                if test_list is not None:
                    lists.append(test_list)
            elif tag == "info":
                for attr in child.attrs:
                    if attr != "type":
                        self.error(f"unknown attribute {attr!r} on <info>", file, child.line)
                kind = child.attrs.get("type", "text")
                if kind not in ("text", "link", "cve", "osvdb"):
                    self.error(
                        f"<info type={kind!r}>: use text, link, cve or osvdb", file, child.line
                    )
                if child.text:
                    info.append(child.text)
            elif tag in STATIC_FIELD_ELEMENTS:
                self.error(
                    f"<{tag}> in rule {rule_id} tests one of Wazuh's static fields, which "
                    "CloudTrail events (decoded as JSON) never set: test the CloudTrail field "
                    'instead, e.g. <field name="aws.sourceIPAddress"> or '
                    "<same_field>aws.sourceIPAddress</same_field>",
                    file,
                    child.line,
                )
            else:
                self.error(
                    f"unknown or unsupported element <{tag}> in rule {rule_id}", file, child.line
                )
        if description is None:
            self.error(f"rule {rule_id} has no <description>", file, node.line)
            description = ""
        rule.description_source = description
        rule.description = _parse_description(description)
        rule.groups = groups + tuple(own_groups)
        rule.mitre_ids = tuple(mitre)
        rule.options = frozenset(options)
        rule.info = tuple(info)
        rule.fields = tuple(fields)
        rule.log_tests = tuple(log_tests)
        rule.lists = tuple(lists)
        if "noalert" in attrs:
            rule.options |= {"noalert"}
        self._check_correlation(rule, file, node.line)
        if len(self.errors) > errors_before or rule_id == 0:
            return
        existing = self.rules.get(rule.id)
        if existing is not None and not overwrite:
            self.error(
                f"duplicate rule id {rule.id} (first defined at {existing.location})",
                file,
                node.line,
            )
            return
        if existing is not None:
            rule.order = existing.order
        else:
            self.order += 1
            rule.order = self.order
        self.rules[rule.id] = rule

    def _check_correlation(self, rule: Rule, file: Path, line: int) -> None:
        rule.is_correlation = bool(rule.if_matched_sid or rule.if_matched_group)
        rule.stateful = rule.is_correlation or bool(rule.ignore)
        uses = rule.frequency or rule.timeframe or rule.same_fields or rule.different_fields
        if uses and not rule.is_correlation:
            self.error(
                f"rule {rule.id}: frequency/timeframe/same_field/different_field need "
                "if_matched_sid or if_matched_group",
                file,
                line,
            )
        if rule.is_correlation and not rule.timeframe:
            self.error(
                f"rule {rule.id}: if_matched_sid/if_matched_group need a timeframe", file, line
            )

    def _int_attr(
        self,
        attrs: dict[str, str],
        name: str,
        file: Path,
        line: int,
        low: int,
        high: int,
        required: bool = False,
    ) -> int:
        raw = attrs.get(name)
        if raw is None:
            if required:
                self.error(f"<rule> without {name!r}", file, line)
            return 0
        try:
            value = int(raw)
        except ValueError:
            self.error(f"{name}={raw!r} is not a whole number", file, line)
            return 0
        if not low <= value <= high:
            self.error(f"{name}={value} out of range {low}..{high}", file, line)
            return 0
        return value

    def _pattern(
        self, node: Node, text: str, default: str, file: Path, allowed: set[str]
    ) -> Pattern | None:
        for attr in node.attrs:
            if attr not in allowed:
                self.error(f"unknown attribute {attr!r} on <{node.tag}>", file, node.line)
        kind = node.attrs.get("type", default).lower()
        if kind == "sregex":
            kind = "osmatch"
        negate = node.attrs.get("negate", "no").lower()
        if negate not in ("yes", "no"):
            self.error(f"negate={negate!r}: use yes or no", file, node.line)
        if kind not in KINDS:
            self.error(f"type={kind!r}: use osmatch, osregex or pcre2", file, node.line)
            return None
        try:
            return compile_pattern(text, kind, negate == "yes")
        except PatternError as exc:
            self.error(f"bad {kind} pattern {text!r} in <{node.tag}>: {exc}", file, node.line)
            return None

    def _field(self, node: Node, text: str, file: Path) -> FieldTest | None:
        name = node.attrs.get("name", "")
        if not name:
            self.error("<field> without a name", file, node.line)
            return None
        if name.startswith(POLICY_PREFIX) and name not in POLICY_FIELDS:
            # A misspelt fact would be a test that never matches: refuse it instead.
            known = ", ".join(POLICY_FIELDS)
            self.error(f"<field> {name!r} is not a policy fact (known: {known})", file, node.line)
            return None
        pattern = self._pattern(node, text, "osregex", file, {"name", "type", "negate"})
        if pattern is None:
            return None
        return FieldTest(name, pattern)

    def _list(self, node: Node, text: str, file: Path) -> ListTest | None:
        for attr in node.attrs:
            if attr not in ("field", "lookup", "check_value"):
                self.error(f"unknown attribute {attr!r} on <list>", file, node.line)
        name = node.attrs.get("field", "")
        lookup = node.attrs.get("lookup", "match_key")
        if not name:
            self.error("<list> without a field", file, node.line)
            return None
        if lookup not in LOOKUPS:
            self.error(
                f"lookup={lookup!r} not supported (use {', '.join(LOOKUPS)})", file, node.line
            )
            return None
        try:
            entries = self.lists.load(text, file, node.line)
        except RuleError as exc:
            self.errors.append(exc)
            return None
        check = None
        if "check_value" in node.attrs:
            try:
                check = compile_pattern(node.attrs["check_value"], "osregex")
            except PatternError as exc:
                self.error(f"bad check_value: {exc}", file, node.line)
                return None
        return ListTest(name, lookup, entries, check)

    # -- the tree ------------------------------------------------------------------------------

    def link(self, sources: tuple[str, ...]) -> Ruleset:
        rules = sorted(self.rules.values(), key=lambda r: r.order)
        by_group: dict[str, list[Rule]] = {}
        for rule in rules:
            for group in rule.groups:
                by_group.setdefault(group, []).append(rule)
        roots: list[Rule] = []
        ruleset = Ruleset(rules=dict(self.rules), roots=roots, sources=sources)
        for rule in rules:
            parents = self._parents(rule, by_group)
            if parents is None:
                continue
            if not parents:
                roots.append(rule)
            for parent in parents:
                parent.children.append(rule)
            for sid in rule.if_matched_sid:
                # Without if_sid/if_group the matched rule is also the parent, reported there.
                if sid not in self.rules and (rule.if_sid or rule.if_group):
                    self.error(
                        f"rule {rule.id}: if_matched_sid {sid} does not exist", rule.file, rule.line
                    )
                ruleset.sid_listeners.setdefault(sid, []).append(rule)
            for group in rule.if_matched_group:
                ruleset.group_listeners.setdefault(group, []).append(rule)
        # Wazuh's try order among siblings (and roots): higher level first, then load order
        # (analysisd inserts each rule before the first sibling of lower level).
        roots.sort(key=try_order)
        for rule in rules:
            rule.children.sort(key=try_order)
        self._check_cycles(rules)
        return ruleset

    def _parents(self, rule: Rule, by_group: dict[str, list[Rule]]) -> list[Rule] | None:
        element = "if_sid" if rule.if_sid else "if_matched_sid"
        parent_ids = rule.if_sid or (rule.if_matched_sid if not rule.if_group else ())
        parent_groups = rule.if_group or (
            rule.if_matched_group if not rule.if_sid and not rule.if_matched_sid else ()
        )
        parents: list[Rule] = []
        ok = True
        for sid in parent_ids:
            parent = self.rules.get(sid)
            if parent is None:
                self.error(
                    f"rule {rule.id}: parent rule {sid} ({element}) does not exist",
                    rule.file,
                    rule.line,
                )
                ok = False
            elif parent is rule:
                self.error(f"rule {rule.id} names itself as parent", rule.file, rule.line)
                ok = False
            else:
                parents.append(parent)
        for group in parent_groups:
            members = [r for r in by_group.get(group, ()) if r is not rule]
            if not members:
                self.error(
                    f"rule {rule.id}: no rule has group {group!r} (if_group)", rule.file, rule.line
                )
                ok = False
            parents.extend(m for m in members if m not in parents)
        return parents if ok else None

    def _check_cycles(self, rules: list[Rule]) -> None:
        state: dict[str, int] = {}

        def visit(rule: Rule) -> bool:
            mark = state.get(rule.id, 0)
            if mark == 1:
                self.error(
                    f"rule {rule.id} is its own ancestor (if_sid/if_group cycle)",
                    rule.file,
                    rule.line,
                )
                return False
            if mark == 2:
                return True
            state[rule.id] = 1
            for child in rule.children:
                if not visit(child):
                    state[rule.id] = 2
                    return False
            state[rule.id] = 2
            return True

        for rule in rules:
            visit(rule)


def _count_rules(node: Node) -> int:
    if node.tag == "rule":
        return 1
    return sum(_count_rules(child) for child in node.children) if node.tag == "group" else 0


def _parse_description(text: str) -> tuple[DescriptionPart, ...]:
    parts: list[DescriptionPart] = []
    pos = 0
    for match in _DESCRIPTION_FIELD.finditer(text):
        if match.start() > pos:
            parts.append(DescriptionPart(text[pos : match.start()]))
        parts.append(DescriptionPart(match.group(0), match.group(1)))
        pos = match.end()
    if pos < len(text):
        parts.append(DescriptionPart(text[pos:]))
    return tuple(parts)
