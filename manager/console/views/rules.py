"""The rules page: every loaded rule with its fire count in the range, its source, a rule test.

- ``/api/rules``: id, level, description, groups, MITRE, ``file:line``, parent rules, and how
  many alerts it raised in the page's range and filters.
- ``/api/rules/{id}``: the same plus the rule's XML as written in its file.
- ``POST /api/rules/test``: CloudTrail records in the body (``{"Records": [...]}``, a JSON array
  or JSON lines) through the manager's ruleset — ``logtest``'s own code
  (``manager/logtest.py: logtest_json``), so the box and the command agree. Nothing is stored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from trailwarden.common.errors import NotFoundError, ObjectError, QueryError
from trailwarden.manager.analysis.rules.model import Rule
from trailwarden.manager.console.views.alerts import mitre_url
from trailwarden.manager.console.views.common import JSONResponse, ViewContext, blocking
from trailwarden.manager.console.views.params import parse_console_query
from trailwarden.manager.console.views.ruleset import RulesetCache
from trailwarden.manager.logtest import logtest_json

MAX_TEST_BYTES = 1_000_000
"""The most a rule test may paste (a CloudTrail file is delivered in pieces below this)."""
MAX_XML_LINES = 80


def rule_json(rule: Rule, fired: int) -> dict[str, Any]:
    return {
        "id": rule.id,
        "level": rule.level,
        "description": rule.description_source,
        "groups": list(rule.groups),
        "mitre": [{"id": t, "url": mitre_url(t)} for t in rule.mitre_ids],
        "location": rule.location,
        "if_sid": list(rule.if_sid),
        "if_group": list(rule.if_group),
        "correlation": rule.is_correlation,
        "fired": fired,
    }


def rule_xml(rule: Rule) -> str:
    """The rule's ``<rule>`` element as it is written in its file ('' if unreadable)."""
    try:
        lines = Path(rule.file).read_text(encoding="utf-8").splitlines()
    except OSError:
        return ""
    start = max(0, rule.line - 1)
    taken: list[str] = []
    for line in lines[start : start + MAX_XML_LINES]:
        taken.append(line)
        if "</rule>" in line or (len(taken) == 1 and line.rstrip().endswith("/>")):
            break
    return "\n".join(taken)


def routes(ctx: ViewContext, rulesets: RulesetCache) -> list[BaseRoute]:
    def fired_counts(request: Request) -> dict[str, int]:
        cq = parse_console_query(request.query_params)
        result = ctx.store.stats(cq.stats_query("rule"))  # top 0: every rule that fired
        return {b.key: b.count for b in result.buckets}

    async def rule_list(request: Request) -> Response:
        fired = await blocking(fired_counts, request)
        ruleset = rulesets.get()
        rules = sorted(ruleset.rules.values(), key=lambda r: (r.file, r.line))
        return JSONResponse(
            {
                "rules": [rule_json(r, fired.get(r.id, 0)) for r in rules],
                "files": list(ruleset.sources),
            }
        )

    async def rule_detail(request: Request) -> Response:
        rule = rulesets.get().rules.get(request.path_params["rule_id"])
        if rule is None:
            raise NotFoundError(f"no rule {request.path_params['rule_id']!r} is loaded")
        fired = await blocking(fired_counts, request)
        return JSONResponse(
            {"rule": rule_json(rule, fired.get(rule.id, 0)), "xml": await blocking(rule_xml, rule)}
        )

    async def rule_test(request: Request) -> Response:
        body = b""
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_TEST_BYTES:
                raise QueryError(f"rule test: at most {MAX_TEST_BYTES:,} bytes of records")
        if not body.strip():
            raise QueryError("rule test: paste one or more CloudTrail records")
        try:
            results, problems = await blocking(logtest_json, rulesets.get(), body, "<console>")
        except ObjectError as exc:
            raise QueryError(f"rule test: {exc}") from exc
        return JSONResponse({"results": results, "problems": problems})

    return [
        Route("/api/rules", rule_list),
        Route("/api/rules/test", rule_test, methods=["POST"]),
        Route("/api/rules/{rule_id}", rule_detail),
    ]
