// The overview: Wazuh's AWS dashboard panels and ours, each fetched on its own so one slow
// panel does not hold the others. Clicking a slice, bar or stack adds it as a filter.
"use strict";

(() => {
  const { el } = TW;
  let charts = [];
  let generation = 0;

  async function render() {
    const mine = ++generation;
    charts.forEach((c) => c.dispose());
    charts = [];
    const main = document.getElementById("main");
    const range = el("p", { class: "range-note", id: "range-note" });
    const grid = el("div", { class: "grid", id: "panels" });
    const query = TW.stateParams();
    const table = el("a", { href: "/alerts" + (query.toString() ? "?" + query.toString() : ""),
                            id: "open-alerts", class: "open-alerts" }, "Open these alerts in the table →");
    main.replaceChildren(el("h1", {}, "Overview"), TW.toolbar(), el("div", { class: "under-toolbar" }, range, table), grid);
    let listing;
    try {
      listing = await TW.api("/api/panels");
    } catch (error) {
      grid.replaceChildren(TW.stateMessage("error", `Panels unavailable: ${error.message}`));
      return;
    }
    for (const panel of listing.panels) {
      const body = el("div", { class: "panel-body" }, TW.stateMessage("loading", "Loading…"));
      const card = el("section", { class: `panel panel-${panel.kind}`, "data-panel": panel.name,
                                   "aria-busy": "true" },
                      el("h2", {}, panel.title), body);
      grid.append(card);
      TW.api(`/api/panels/${panel.name}`, query)
        .then((data) => {
          if (mine !== generation) return;
          if (panel.name === "total") range.textContent = TW.describeRange(data.query);
          draw(panel, data, body);
        })
        .catch((error) => {
          if (mine !== generation) return;
          body.replaceChildren(TW.stateMessage("error", error.message));
        })
        .finally(() => card.setAttribute("aria-busy", "false"));
    }
  }

  function pick(panel) {
    return (key) => TW.addFilter(panel.by, key);
  }

  function empty(body) {
    body.replaceChildren(TW.stateMessage("empty", "No alerts in this range — widen it."));
  }

  async function draw(panel, data, body) {
    if (panel.kind === "total") {
      body.replaceChildren(el("div", { class: "big-number", id: "total-count",
                                       "data-count": data.total }, TW.fmtNum(data.total)),
                           el("p", { class: "muted" }, data.total ? "alerts in the range"
                                                                  : "No alerts in this range — widen it."));
      return;
    }
    if (!data.total) { empty(body); return; }
    const note = data.partial ? el("p", { class: "muted" }, "Counted from the newest alerts only") : null;
    if (panel.kind === "detections") { drawDetections(data, body); return; }
    const node = el("div", { class: "chart" });
    body.replaceChildren(node, ...(note ? [note] : []));
    if (panel.kind === "pie") charts.push(TWCharts.pie(node, data.buckets, pick(panel)));
    else if (panel.kind === "bar") charts.push(TWCharts.bar(node, data.buckets, pick(panel)));
    else if (panel.kind === "area") charts.push(TWCharts.area(node, data, pick(panel)));
    else if (panel.kind === "map") {
      charts.push(await TWCharts.map(node, data.countries));
      const others = Object.entries(data.not_placed || {})
        .map(([kind, count]) => `${TW.fmtNum(count)} ${kind}`).join(", ");
      body.append(el("p", { class: "muted" }, others ? `Not on the map: ${others}.` : "",
                     " ", data.attribution || ""));
    }
  }

  function drawDetections(data, body) {
    const rows = data.rules.map((r) => el("tr", {},
      el("td", {}, el("a", { href: "#", onclick: (e) => { e.preventDefault(); TW.addFilter("rule", r.key); } }, r.key)),
      el("td", {}, r.label),
      el("td", {}, r.mitre.length ? r.mitre.map((t) => el("a", {
        href: t.url, target: "_blank", rel: "noopener noreferrer", class: "mitre" }, t.id)) : "—"),
      el("td", { class: "num" }, TW.fmtNum(r.count))));
    body.replaceChildren(el("table", { class: "table compact" },
      el("thead", {}, el("tr", {}, el("th", {}, "Rule"), el("th", {}, "Description"),
                         el("th", {}, "MITRE"), el("th", { class: "num" }, "Alerts"))),
      el("tbody", {}, rows)));
  }

  TW.start(render);
})();
