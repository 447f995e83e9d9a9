"""The console's pages and JSON API: overview, alerts (detail, export, live), agents, rules.

``routes(ctx)`` gives every route; the console app (``manager/console``) puts them behind its
sign-in, session and CSRF layers. Every read goes through the ``AlertStore`` protocol with
queries built by ``manager/store/query.py`` (``views/params.py`` translates the URL).
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from trailwarden.manager.console.views import agents, alerts, live, overview, pages, rules
from trailwarden.manager.console.views.common import ViewContext
from trailwarden.manager.console.views.ruleset import RulesetCache


def routes(ctx: ViewContext) -> list[BaseRoute]:
    """Every page and API route of the console (behind the console's auth middleware)."""
    rulesets = RulesetCache(ctx.config, ctx.running_rules)
    return [
        *pages.routes(),
        *overview.routes(ctx, rulesets),
        *live.routes(ctx),  # before alerts: /api/alerts/live is not an alert ID
        *alerts.routes(ctx),
        *agents.routes(ctx),
        *rules.routes(ctx, rulesets),
    ]
