// Agents: what `admin agents --json` shows, each source's collection state and failed objects.
"use strict";

(() => {
  const { el } = TW;

  async function render() {
    const main = document.getElementById("main");
    main.replaceChildren(el("h1", {}, "Agents"), TW.stateMessage("loading", "Loading…"));
    let data;
    try {
      data = await TW.api("/api/agents");
    } catch (error) {
      main.replaceChildren(el("h1", {}, "Agents"), TW.stateMessage("error", error.message));
      return;
    }
    if (!data.agents.length) {
      main.replaceChildren(el("h1", {}, "Agents"),
        TW.stateMessage("empty", "No agents enrolled yet: create a token with `trailwarden admin token create`."));
      return;
    }
    const admin = TW.isAdmin();
    const table = el("table", { class: "table", id: "agents-table" },
      el("thead", {}, el("tr", {}, ["ID", "Name", "Status", "Version", "Last seen (UTC)", "Address",
        "Config revision", "Groups", ...(admin ? [""] : [])].map((h) => el("th", {}, h)))),
      el("tbody", {}, data.agents.map((a) => el("tr", { "data-agent-id": a.agent_id },
        el("td", {}, a.agent_id), el("td", {}, a.name),
        el("td", {}, el("span", { class: "status " + a.status.replace(/ /g, "-") }, a.status)),
        el("td", {}, a.agent_version || "—"),
        el("td", {}, Number(a.last_seen_unix_ms) ? TW.fmtTime(new Date(Number(a.last_seen_unix_ms)).toISOString()).replace(" UTC", "") : "never"),
        el("td", {}, a.address || "—"),
        el("td", {}, a.applied_config_revision || "—"),
        el("td", {}, (a.groups || []).join(", ") || "—"),
        ...(admin ? [el("td", {}, a.status === "revoked" ? "" : el("button", {
          type: "button", class: "danger", "data-revoke": a.agent_id,
          onclick: () => revoke(a) }, "Revoke"))] : [])))));
    main.replaceChildren(el("h1", {}, "Agents"), el("div", { class: "scroll" }, table),
                         el("div", { id: "agent-message" }),
                         ...data.agents.map(sources));
  }

  function sources(agent) {
    const detail = agent.status_detail;
    const title = el("h2", {}, `${agent.name} (${agent.agent_id}): sources`);
    if (!detail) return el("section", { class: "card" }, title,
                           TW.stateMessage("empty", "No status report from this agent yet."));
    const spool = `Spool: ${TW.fmtNum(detail.spool_bytes)} of ${TW.fmtNum(detail.spool_limit_bytes)} bytes, ` +
                  `${TW.fmtNum(detail.spool_batches)} batches` + (detail.fetching_paused ? " — fetching paused (spool full)" : "");
    const rows = (detail.sources || []).map((s) => el("tr", {},
      el("td", {}, s.name), el("td", {}, s.type), el("td", {}, s.state),
      el("td", {}, Number(s.last_pass_unix_ms) ? TW.fmtTime(new Date(Number(s.last_pass_unix_ms)).toISOString()) : "—"),
      el("td", { class: "num" }, TW.fmtNum(s.objects_done)), el("td", { class: "num" }, TW.fmtNum(s.records_spooled)),
      el("td", { class: "num" }, TW.fmtNum(s.objects_failed)), el("td", {}, s.last_error || "")));
    const problems = (detail.sources || []).flatMap((s) => (s.problems || []).map((p) => el("tr", {},
      el("td", {}, s.name), el("td", { class: "where" }, p.where), el("td", {}, p.reason))));
    return el("section", { class: "card", "data-agent-sources": agent.agent_id }, title, el("p", { class: "muted" }, spool),
      el("table", { class: "table compact" }, el("thead", {}, el("tr", {}, ["Source", "Type", "State",
        "Last pass", "Objects", "Records", "Failed", "Last error"].map((h) => el("th", {}, h)))),
        el("tbody", {}, rows)),
      problems.length ? el("table", { class: "table compact problems" }, el("thead", {}, el("tr", {},
        ["Source", "Failed object (bucket/key)", "Reason"].map((h) => el("th", {}, h)))), el("tbody", {}, problems))
        : el("p", { class: "muted" }, "No failed objects."));
  }

  async function revoke(agent) {
    if (!window.confirm(`Revoke agent ${agent.name} (${agent.agent_id})? Its connection is closed and refused from now on.`)) return;
    const message = document.getElementById("agent-message");
    try {
      await TW.post(`/api/agents/${encodeURIComponent(agent.agent_id)}/revoke`);
      render();
    } catch (error) {
      message.replaceChildren(TW.stateMessage("error", error.message));
    }
  }

  TW.start(render);
})();
