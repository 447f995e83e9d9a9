// The alerts table: admin alerts' filters, cursor paging, export, and live new alerts (SSE).
"use strict";

(() => {
  const { el } = TW;
  const FORM_FIELDS = [["rule", "Rule ID"], ["level", "Min level"], ["agent", "Agent ID"],
                       ["account", "Account"], ["region", "Region"], ["user", "Principal"],
                       ["event", "Event name"], ["q", "Text search"]];
  const PAGE_SIZE = 50;
  let source = null;
  let tokens = [""];  // tokens[i] opens page i (cursor paging: "newer" goes back a token)
  let current = 0;

  function render() {
    tokens = [""];
    current = 0;
    const main = document.getElementById("main");
    const form = filterForm();
    const live = el("span", { id: "live-status", class: "live off", "data-state": "off" }, "Live: off");
    const liveToggle = el("button", { type: "button", id: "live-toggle" }, "Go live");
    liveToggle.addEventListener("click", () => (source ? stopLive(live, liveToggle)
                                                         : startLive(live, liveToggle)));
    const exports = el("span", { class: "exports" }, "Export: ",
      el("a", { id: "export-jsonl", href: exportUrl("jsonl"), download: true }, "JSON lines"), " · ",
      el("a", { id: "export-csv", href: exportUrl("csv"), download: true }, "CSV"));
    const table = el("table", { class: "table", id: "alerts-table" },
      el("thead", {}, el("tr", {}, ["Time (UTC)", "Event time (UTC)", "Level", "Rule", "Description",
        "Principal", "Event", "Account", "Region", "Source IP", "Agent"].map((h) => el("th", {}, h)))),
      el("tbody", {}));
    const pager = el("div", { class: "pager" },
      el("button", { type: "button", id: "page-prev", disabled: true }, "← Newer"),
      el("span", { id: "page-number" }, "Page 1"),
      el("button", { type: "button", id: "page-next", disabled: true }, "Older →"));
    main.replaceChildren(el("h1", {}, "Alerts"), TW.toolbar({ hint: "No filters" }), form,
                         el("div", { class: "table-actions" }, live, liveToggle, exports),
                         el("div", { id: "table-state" }), el("div", { class: "scroll" }, table), pager);
    pager.querySelector("#page-next").addEventListener("click", () => load(current + 1));
    pager.querySelector("#page-prev").addEventListener("click", () => load(Math.max(0, current - 1)));
    if (source) { stopLive(); startLive(live, liveToggle); }
    load(0);
  }

  function filterForm() {
    const p = TW.params();
    const inputs = FORM_FIELDS.map(([name, label]) =>
      el("label", {}, label, el("input", { name, value: p.getAll(name).join(","),
                                           type: name === "level" ? "number" : "text",
                                           min: name === "level" ? 0 : null,
                                           max: name === "level" ? 16 : null })));
    const form = el("form", { class: "filters", id: "filters" }, inputs,
                    el("button", { type: "submit" }, "Apply filters"));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      TW.navigate((q) => {
        for (const [name] of FORM_FIELDS) {
          q.delete(name);
          const value = form.elements[name].value.trim();
          if (!value) continue;
          if (name === "rule") value.split(",").map((s) => s.trim()).filter(Boolean).forEach((v) => q.append("rule", v));
          else q.set(name, value);
        }
      });
    });
    return form;
  }

  function exportUrl(format) {
    const q = TW.stateParams();
    q.set("format", format);
    return "/api/alerts/export?" + q.toString();
  }

  async function load(index) {
    const state = document.getElementById("table-state");
    const body = document.querySelector("#alerts-table tbody");
    const query = TW.stateParams();
    query.set("limit", String(PAGE_SIZE));
    if (tokens[index]) query.set("page_token", tokens[index]);
    state.replaceChildren(TW.stateMessage("loading", "Loading…"));
    let data;
    try {
      data = await TW.api("/api/alerts", query);
    } catch (error) {
      state.replaceChildren(TW.stateMessage("error", error.message));
      return;
    }
    current = index;
    tokens = tokens.slice(0, index + 1);
    if (data.next_page_token) tokens.push(data.next_page_token);
    body.replaceChildren(...data.alerts.map((a) => row(a, false)));
    state.replaceChildren(data.alerts.length ? el("span", { class: "muted" }, TW.describeRange(data.query))
      : TW.stateMessage("empty", "No alerts in this range — widen it."));
    document.getElementById("page-number").textContent = `Page ${TW.fmtNum(index + 1)}`;
    document.getElementById("page-prev").disabled = index === 0;
    document.getElementById("page-next").disabled = !data.next_page_token;
  }

  function row(alert, fresh) {
    const open = () => { window.location.href = "/alerts/" + encodeURIComponent(alert.id); };
    const tr = el("tr", { class: "clickable" + (fresh ? " fresh" : ""), "data-alert-id": alert.id,
                          tabindex: 0, onclick: open,
                          onkeydown: (e) => { if (e.key === "Enter") open(); } },
      el("td", { class: "time" }, TW.fmtTime(alert.timestamp).replace(" UTC", "")),
      el("td", { class: "time" }, TW.fmtTime(alert.event_time).replace(" UTC", "")),
      el("td", {}, el("span", { class: "level l" + Math.min(15, alert.level) }, alert.level)),
      el("td", {}, alert.rule_id),
      el("td", { class: "desc", title: alert.description }, alert.description),
      cut(alert.user), cut(alert.event_name), el("td", {}, alert.account || "—"),
      el("td", {}, alert.region || "—"), cut(alert.source_ip),
      cut(alert.agent_name || alert.agent_id));
    return tr;
  }

  function cut(text) {
    return el("td", { class: "cut", title: text || null }, text || "—");
  }

  function startLive(status, toggle) {
    const query = TW.stateParams();
    source = new EventSource("/api/alerts/live?" + query.toString());
    const set = (state, text) => {
      const node = document.getElementById("live-status");
      if (!node) return;
      node.dataset.state = state;
      node.className = "live " + state;
      node.textContent = text;
    };
    set("connecting", "Live: connecting…");
    if (toggle) toggle.textContent = "Stop live";
    source.addEventListener("ready", () => set("on", "Live: on"));
    source.addEventListener("open", () => set("on", "Live: on"));
    source.addEventListener("alert", (event) => {
      const alert = JSON.parse(event.data);
      const body = document.querySelector("#alerts-table tbody");
      if (!body) return;
      const emptyNote = document.querySelector("#table-state .empty");
      if (emptyNote) emptyNote.remove();
      body.prepend(row(alert, true));
    });
    source.addEventListener("failed", (event) => set("error", "Live: store unavailable"));
    // EventSource reconnects by itself, sending Last-Event-ID: show it meanwhile.
    source.addEventListener("error", () => set("connecting", "Live: reconnecting…"));
  }

  function stopLive(status, toggle) {
    if (source) source.close();
    source = null;
    const node = document.getElementById("live-status");
    if (node) { node.dataset.state = "off"; node.className = "live off"; node.textContent = "Live: off"; }
    const button = toggle || document.getElementById("live-toggle");
    if (button) button.textContent = "Go live";
  }

  TW.start(render);
})();
