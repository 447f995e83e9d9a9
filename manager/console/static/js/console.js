// TrailWarden console: what every page shares — API calls, URL state, the time-range toolbar,
// filter chips, formatting. Record data is attacker-controlled text: it only ever reaches the
// page through textContent (TW.el), never innerHTML.
"use strict";

const TW = (() => {
  const RANGES = [["15m", "Last 15 minutes"], ["1h", "Last hour"], ["24h", "Last 24 hours"],
                  ["7d", "Last 7 days"], ["30d", "Last 30 days"], ["custom", "Custom…"]];
  const FILTER_LABELS = {
    rule: "Rule", level: "Level ≥", agent: "Agent", account: "Account", region: "Region",
    user: "Principal", event: "Event", q: "Text", source: "Source", bucket: "Bucket",
    ip: "Source IP", error: "Error", service: "Service", group: "Group", mitre: "MITRE",
  };
  const STATE_KEYS = ["range", "from", "to", "basis"];
  const numberFormat = new Intl.NumberFormat("en-US");

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function fmtNum(n) { return numberFormat.format(Number(n) || 0); }

  function fmtTime(iso) {
    if (!iso) return "—";
    const d = new Date(iso);
    if (isNaN(d)) return String(iso);
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "").replace("Z", "") + " UTC";
  }

  function params() { return new URLSearchParams(window.location.search); }

  function stateParams() {
    // Range + basis + filters of the current URL, for API calls.
    const out = new URLSearchParams();
    for (const [k, v] of params()) {
      if (STATE_KEYS.includes(k) || k in FILTER_LABELS) out.append(k, v);
    }
    return out;
  }

  function navigate(mutate) {
    const next = params();
    mutate(next);
    const query = next.toString();
    history.pushState(null, "", window.location.pathname + (query ? "?" + query : ""));
    window.dispatchEvent(new Event("tw:state"));
  }

  function addFilter(name, value) {
    if (!(name in FILTER_LABELS) || value === undefined || value === null || value === "") return;
    navigate((p) => {
      if (name === "rule") {
        if (!p.getAll("rule").includes(String(value))) p.append("rule", String(value));
      } else p.set(name, String(value));
    });
  }

  function removeFilter(name, value) {
    navigate((p) => {
      const kept = p.getAll(name).filter((v) => v !== value);
      p.delete(name);
      kept.forEach((v) => p.append(name, v));
    });
  }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  async function api(path, query) {
    const url = path + (query && query.toString() ? "?" + query.toString() : "");
    const response = await fetch(url, { headers: { Accept: "application/json" },
                                        credentials: "same-origin" });
    return answer(response);
  }

  async function post(path, body, contentType) {
    const token = document.querySelector('meta[name="csrf-token"]');
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": contentType || "application/json",
                 "X-CSRF-Token": token ? token.content : "", Accept: "application/json" },
      body: body === undefined ? "" : body,
    });
    return answer(response);
  }

  async function answer(response) {
    if (response.status === 401) {
      window.location.href = "/login?next=" + encodeURIComponent(location.pathname + location.search);
      throw new ApiError(401, "signed out");
    }
    let data = null;
    try { data = await response.json(); } catch (e) { data = null; }
    if (!response.ok) {
      const message = data && data.error ? data.error : `${response.status} ${response.statusText}`;
      throw new ApiError(response.status, message);
    }
    return data;
  }

  function isAdmin() { return document.body.dataset.role === "admin"; }

  function stateMessage(kind, text) {
    return el("p", { class: "state " + kind, role: kind === "error" ? "alert" : null, text });
  }

  // The toolbar: time range picker, event/arrival switch, filter chips.
  function toolbar(options) {
    const p = params();
    const range = p.get("range") || "24h";
    const basis = p.get("basis") || "event";
    const select = el("select", { id: "range", "aria-label": "Time range" },
      RANGES.map(([value, label]) => el("option", { value, selected: value === range }, label)));
    const from = el("input", { type: "datetime-local", id: "range-from", "aria-label": "From (UTC)",
                               value: toLocal(p.get("from")) });
    const to = el("input", { type: "datetime-local", id: "range-to", "aria-label": "To (UTC)",
                             value: toLocal(p.get("to")) });
    const apply = el("button", { type: "button", id: "range-apply" }, "Apply");
    const custom = el("span", { class: "custom" + (range === "custom" ? "" : " hidden") },
                      from, " – ", to, " UTC ", apply);
    select.addEventListener("change", () => {
      if (select.value === "custom") { custom.classList.remove("hidden"); return; }
      navigate((q) => { q.set("range", select.value); q.delete("from"); q.delete("to"); });
    });
    apply.addEventListener("click", () => {
      if (!from.value) { from.focus(); return; }
      navigate((q) => {
        q.set("range", "custom");
        q.set("from", from.value + ":00Z");
        if (to.value) q.set("to", to.value + ":00Z"); else q.delete("to");
      });
    });
    const basisSwitch = el("span", { class: "basis", role: "group", "aria-label": "Time basis" },
      [["event", "Event time"], ["arrival", "Arrival time"]].map(([value, label]) =>
        el("button", { type: "button", "data-basis": value,
                       class: value === basis ? "on" : "",
                       title: value === "event" ? "Range by CloudTrail eventTime"
                                                : "Range by when the manager raised the alert",
                       onclick: () => navigate((q) => q.set("basis", value)) }, label)));
    const chips = el("div", { class: "chips", id: "chips" });
    for (const [name, value] of p) {
      if (!(name in FILTER_LABELS)) continue;
      chips.append(el("span", { class: "chip", "data-filter": name },
        `${FILTER_LABELS[name]}: ${value}`,
        el("button", { type: "button", "aria-label": `Remove filter ${name}`, class: "chip-x",
                       onclick: () => removeFilter(name, value) }, "×")));
    }
    if (!chips.childElementCount) chips.append(el("span", { class: "muted" },
      (options && options.hint) || "No filters: click a slice or bar to add one"));
    return el("div", { class: "toolbar" }, el("label", {}, "Range ", select), custom,
              basisSwitch, chips);
  }

  function toLocal(iso) {
    if (!iso) return "";
    const d = new Date(iso);
    return isNaN(d) ? "" : d.toISOString().slice(0, 16);
  }

  function describeRange(query) {
    if (!query) return "";
    const basis = query.basis === "event" ? "event time" : "arrival time";
    return `${fmtTime(query.from)} → ${fmtTime(query.to)} (by ${basis})`;
  }

  function onState(render) {
    window.addEventListener("tw:state", render);
    window.addEventListener("popstate", render);
  }

  function start(render) {
    document.addEventListener("DOMContentLoaded", () => {
      const who = document.getElementById("who-name");
      if (who) who.textContent = document.body.dataset.user || "";
      const role = document.getElementById("who-role");
      if (role) role.textContent = document.body.dataset.role || "";
      onState(render);
      render();
    });
  }

  return { el, fmtNum, fmtTime, params, stateParams, navigate, addFilter, removeFilter, api, post,
           isAdmin, stateMessage, toolbar, describeRange, start, FILTER_LABELS, ApiError };
})();
