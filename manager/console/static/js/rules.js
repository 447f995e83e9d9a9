// Rules: every loaded rule with its fire count in the range, its source, and the rule test box
// (the same code as `trailwarden logtest`).
"use strict";

(() => {
  const { el } = TW;

  async function render() {
    const main = document.getElementById("main");
    const list = el("div", { id: "rules-list" }, TW.stateMessage("loading", "Loading…"));
    main.replaceChildren(el("h1", {}, "Rules"), TW.toolbar({ hint: "Fire counts follow the range" }),
                         testBox(), list);
    let data;
    try {
      data = await TW.api("/api/rules", TW.stateParams());
    } catch (error) {
      list.replaceChildren(TW.stateMessage("error", error.message));
      return;
    }
    const rows = data.rules.map((r) => {
      const detail = el("tr", { class: "hidden detail" }, el("td", { colspan: 7 }));
      const tr = el("tr", { class: "clickable", "data-rule-id": r.id, onclick: () => toggle(r, detail) },
        el("td", {}, r.id), el("td", {}, el("span", { class: "level l" + Math.min(15, r.level) }, r.level)),
        el("td", { class: "desc" }, r.description), el("td", {}, r.groups.join(", ")),
        el("td", {}, r.mitre.map((t) => el("a", { href: t.url, target: "_blank", rel: "noopener noreferrer",
                                                  class: "mitre", onclick: (e) => e.stopPropagation() }, t.id))),
        el("td", { class: "num" }, TW.fmtNum(r.fired)),
        el("td", { class: "where", title: r.location }, r.location.split("/").pop()));
      return [tr, detail];
    });
    list.replaceChildren(el("p", { class: "muted" }, `${TW.fmtNum(data.rules.length)} rules from ${data.files.length} file(s)`),
      el("div", { class: "scroll" }, el("table", { class: "table", id: "rules-table" },
        el("thead", {}, el("tr", {}, ["ID", "Level", "Description", "Groups", "MITRE", "Fired", "Source"]
          .map((h) => el("th", {}, h)))), el("tbody", {}, rows.flat()))));
  }

  async function toggle(rule, detail) {
    if (!detail.classList.contains("hidden")) { detail.classList.add("hidden"); return; }
    detail.classList.remove("hidden");
    const cell = detail.firstChild;
    cell.replaceChildren(TW.stateMessage("loading", "Loading…"));
    try {
      const data = await TW.api(`/api/rules/${encodeURIComponent(rule.id)}`, TW.stateParams());
      cell.replaceChildren(el("p", {}, `${data.rule.location}`,
        data.rule.if_sid.length ? ` · child of ${data.rule.if_sid.join(", ")}` : ""),
        el("pre", { class: "xml" }, data.xml || "(source file unreadable)"));
    } catch (error) {
      cell.replaceChildren(TW.stateMessage("error", error.message));
    }
  }

  function testBox() {
    const input = el("textarea", { id: "ruletest-input", rows: 8, spellcheck: "false",
      placeholder: 'Paste CloudTrail records: {"Records": [...]}, a JSON array, or one record per line' });
    const output = el("div", { id: "ruletest-output" });
    const run = el("button", { type: "button", id: "ruletest-run" }, "Test");
    run.addEventListener("click", async () => {
      output.replaceChildren(TW.stateMessage("loading", "Testing…"));
      try {
        const data = await TW.post("/api/rules/test", input.value, "application/json");
        output.replaceChildren(...data.problems.map((p) => TW.stateMessage("error", p)),
                               ...data.results.map(result));
        if (!data.results.length && !data.problems.length) output.replaceChildren(TW.stateMessage("empty", "No records found."));
      } catch (error) {
        output.replaceChildren(TW.stateMessage("error", error.message));
      }
    });
    return el("details", { class: "card", id: "ruletest", open: true },
      el("summary", {}, "Rule test (as trailwarden logtest)"), input, el("div", {}, run), output);
  }

  function flatten(value, prefix, out) {
    for (const [key, item] of Object.entries(value || {})) {
      const path = prefix + key;
      if (item && typeof item === "object" && !Array.isArray(item) && Object.keys(item).length) flatten(item, path + ".", out);
      else out.push([path, item]);
    }
    return out;
  }

  function result(r) {
    const section = el("section", { class: "card ruletest-result", "data-index": r.index });
    section.append(el("h3", {}, `Record ${r.index}`));
    if (r.error) { section.append(TW.stateMessage("error", `Decoding failed: ${r.error}`)); return section; }
    section.append(el("details", {}, el("summary", {}, "Phase 1: decoded fields"),
      el("table", { class: "table compact" }, el("tbody", {}, flatten(r.event, "", []).map(([k, v]) =>
        el("tr", {}, el("td", { class: "where" }, k), el("td", {}, JSON.stringify(v))))))));
    section.append(el("h4", {}, "Phase 2: rules tried"),
      el("ul", { class: "trace" }, r.trace.map((s) => el("li", { class: s.matched ? "match" : "no",
        style: null, "data-depth": s.depth }, "  ".repeat(s.depth), `${s.rule}: ${s.matched ? "match" : "no"}`,
        s.note ? ` (${s.note})` : ""))));
    if (!r.rule) { section.append(el("p", { class: "muted", "data-result": "none" }, "No rule matched.")); return section; }
    section.append(el("h4", {}, "Phase 3: ", el("span", { class: "ruletest-rule", "data-rule": r.rule.id },
      `rule ${r.rule.id} (level ${r.rule.level}) at ${r.rule.location}`)));
    section.append(r.alert
      ? el("details", {}, el("summary", {}, `**Alert to be generated: ${r.alert.rule.description}`),
           el("pre", { class: "json ruletest-alert" }, JSON.stringify(r.alert, null, 2)))
      : el("p", { class: "muted" }, "No alert (level 0 or the rule's options silence it)."));
    return section;
  }

  TW.start(render);
})();
