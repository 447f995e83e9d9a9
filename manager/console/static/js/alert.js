// One alert: its rule (with MITRE links), the full CloudTrail record, related alerts.
"use strict";

(() => {
  const { el } = TW;

  async function render() {
    const main = document.getElementById("main");
    const id = decodeURIComponent(window.location.pathname.split("/").pop());
    main.replaceChildren(el("p", {}, el("a", { href: "/alerts" }, "← Alerts")),
                         TW.stateMessage("loading", "Loading…"));
    let data;
    try {
      data = await TW.api("/api/alerts/" + encodeURIComponent(id));
    } catch (error) {
      main.replaceChildren(el("p", {}, el("a", { href: "/alerts" }, "← Alerts")),
        TW.stateMessage("error", error.status === 404 ? `No alert ${id} (it may have been pruned).`
                                                      : error.message));
      return;
    }
    const a = data.alert, rule = data.rule;
    const facts = [["Raised (UTC)", TW.fmtTime(a.timestamp)], ["Event time (UTC)", TW.fmtTime(a.event_time)],
                   ["Principal", a.user], ["Event", `${a.event_source} ${a.event_name}`],
                   ["Account", a.account], ["Region", a.region], ["Source IP", a.source_ip],
                   ["Agent", `${a.agent_name} (${a.agent_id})`], ["Alert ID", a.id]];
    main.replaceChildren(
      el("p", {}, el("a", { href: "/alerts" }, "← Alerts")),
      el("h1", {}, el("span", { class: "level l" + Math.min(15, rule.level) }, rule.level), " ",
         rule.description),
      el("section", { class: "card", id: "rule-card" }, el("h2", {}, "Rule"),
        el("dl", { class: "facts" },
          el("dt", {}, "ID"), el("dd", { id: "rule-id" }, rule.id),
          el("dt", {}, "Level"), el("dd", {}, rule.level),
          el("dt", {}, "Description"), el("dd", {}, rule.description),
          el("dt", {}, "Groups"), el("dd", {}, rule.groups.join(", ") || "—"),
          el("dt", {}, "Fired times"), el("dd", {}, TW.fmtNum(rule.firedtimes)),
          el("dt", {}, "MITRE ATT&CK"), el("dd", { id: "mitre" }, rule.mitre.length
            ? rule.mitre.map((t) => el("a", { href: t.url, target: "_blank", rel: "noopener noreferrer",
                                              class: "mitre" }, t.id)) : "—"))),
      el("section", { class: "card" }, el("h2", {}, "Event"),
        el("dl", { class: "facts" }, facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, v || "—")]))),
      el("section", { class: "card" }, el("h2", {}, "CloudTrail record"),
        el("pre", { class: "json", id: "record-json" }, JSON.stringify(data.record, null, 2))),
      el("section", { class: "card" }, el("h2", {}, "Related alerts (same principal or source IP, ±1 h)"),
        related(data.related)),
      el("details", { class: "card" }, el("summary", {}, "Alert document (alerts.json shape)"),
        el("pre", { class: "json" }, JSON.stringify(data.document, null, 2))));
  }

  function related(alerts) {
    if (!alerts.length) return TW.stateMessage("empty", "No related alerts within an hour.");
    return el("table", { class: "table compact", id: "related-table" },
      el("thead", {}, el("tr", {}, ["Event time (UTC)", "Level", "Rule", "Description", "Event", "Principal",
        "Source IP"].map((h) => el("th", {}, h)))),
      el("tbody", {}, alerts.map((r) => el("tr", { class: "clickable",
          onclick: () => { window.location.href = "/alerts/" + encodeURIComponent(r.id); } },
        el("td", { class: "time" }, TW.fmtTime(r.event_time || r.timestamp).replace(" UTC", "")),
        el("td", {}, r.level), el("td", {}, r.rule_id), el("td", {}, r.description),
        el("td", {}, r.event_name || "—"), el("td", {}, r.user || "—"),
        el("td", {}, r.source_ip || "—")))));
  }

  TW.start(render);
})();
