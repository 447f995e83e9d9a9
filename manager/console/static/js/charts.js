// Chart drawing for the overview (Apache ECharts, vendored under /static/vendor/echarts).
// Every chart calls onPick(key) when a slice, bar or stack is clicked; the overview turns that
// into a filter chip. The "(other)" slice is not a value and is not clickable.
"use strict";

const TWCharts = (() => {
  const OTHER = "(other)";
  const palette = ["#3b82c4", "#e07b39", "#4caf7d", "#c94f6d", "#8e6fc2", "#d4a72c",
                   "#4bb3b8", "#9c6b4e", "#7a8b99", "#d46fb0", "#b0b0b0"];
  let worldLoaded = null;

  function make(node) {
    const chart = echarts.init(node, null, { renderer: "canvas" });
    new ResizeObserver(() => chart.resize()).observe(node);
    return chart;
  }

  function label(bucket) { return bucket.label ? `${bucket.key} — ${bucket.label}` : bucket.key; }

  function pie(node, buckets, onPick) {
    const chart = make(node);
    chart.setOption({
      color: palette,
      tooltip: { trigger: "item", renderMode: "richText", valueFormatter: TW.fmtNum },
      legend: { type: "scroll", orient: "vertical", right: 0, top: "middle", width: "40%",
                textStyle: { width: 150, overflow: "truncate" } },
      series: [{
        type: "pie", radius: ["35%", "70%"], center: ["30%", "50%"], avoidLabelOverlap: true,
        label: { show: false },
        data: buckets.map((b) => ({ name: b.key || "(none)", value: b.count, key: b.key,
                                    other: !!b.other, tip: label(b) })),
      }],
    });
    chart.on("click", (event) => {
      if (event.data && !event.data.other) onPick(event.data.key);
    });
    return chart;
  }

  function bar(node, buckets, onPick) {
    const chart = make(node);
    const rows = buckets.slice().reverse();
    chart.setOption({
      color: palette,
      grid: { left: 8, right: 48, top: 8, bottom: 8, containLabel: true },
      tooltip: { trigger: "axis", renderMode: "richText", axisPointer: { type: "shadow" }, valueFormatter: TW.fmtNum },
      xAxis: { type: "value", axisLabel: { formatter: TW.fmtNum } },
      yAxis: { type: "category", data: rows.map((b) => b.key || "(none)"),
               axisLabel: { width: 170, overflow: "truncate" } },
      series: [{ type: "bar", data: rows.map((b) => ({ value: b.count, key: b.key, other: !!b.other })),
                 label: { show: true, position: "right", formatter: (p) => TW.fmtNum(p.value) } }],
    });
    chart.on("click", (event) => {
      if (event.data && !event.data.other) onPick(event.data.key);
    });
    return chart;
  }

  function area(node, data, onPick) {
    const chart = make(node);
    // Axis labels: "MM-DD HH:MM" (the panel says UTC); the tooltip shows the same.
    const times = data.times.map((t) => t.slice(5, 16).replace("T", " "));
    chart.setOption({
      color: palette,
      tooltip: { trigger: "axis", renderMode: "richText", valueFormatter: TW.fmtNum },
      legend: { type: "scroll", top: 0 },
      grid: { left: 8, right: 16, top: 32, bottom: 8, containLabel: true },
      xAxis: { type: "category", boundaryGap: false, data: times },
      yAxis: { type: "value", minInterval: 1, axisLabel: { formatter: TW.fmtNum } },
      series: data.stacks.map((s) => ({
        name: s.key || "(none)", type: "line", stack: "all", areaStyle: {}, symbol: "none",
        emphasis: { focus: "series" }, data: s.counts, triggerLineEvent: true,
      })),
    });
    chart.on("click", (event) => {
      const name = event.seriesName;
      if (name && name !== OTHER) onPick(name === "(none)" ? "" : name);
    });
    chart.on("legendselectchanged", () => null);
    return chart;
  }

  async function world() {
    if (!worldLoaded) {
      worldLoaded = fetch("/static/vendor/world/world.json", { credentials: "same-origin" })
        .then((r) => { if (!r.ok) throw new Error("world map geometry missing"); return r.json(); })
        .then((geo) => echarts.registerMap("world", geo));
    }
    return worldLoaded;
  }

  async function map(node, countries) {
    await world();
    const chart = make(node);
    const max = Math.max(1, ...countries.map((c) => c.count));
    chart.setOption({
      tooltip: { trigger: "item", renderMode: "richText",
                 formatter: (p) => `${p.name}: ${TW.fmtNum(p.value || 0)}` },
      visualMap: { min: 0, max, left: 8, bottom: 8, calculable: false,
                   inRange: { color: ["#dbe9f6", "#1f5f99"] }, text: ["more", "fewer"] },
      series: [{ type: "map", map: "world", roam: true, emphasis: { label: { show: false } },
                 data: countries.map((c) => ({ name: c.name, value: c.count })) }],
    });
    return chart;
  }

  return { pie, bar, area, map };
})();
