// #/charts: new/updated/failed per run over time, and fetch duration per feed (from /api/stats).

import { api } from "../api.js";
import { debounce, duration, h, num, shortDate, tableWrap } from "../dom.js";
import { lineChart, stackedBars } from "../chart.js";
import { onLive } from "../live.js";
import { changeDetector, loader } from "./common.js";

const SERIES = [
  { key: "new", label: "new", color: "#2e9d5b" },
  { key: "updated", label: "updated", color: "#3b7dd8" },
  { key: "failed", label: "failed", color: "#d64545" },
  { key: "unchanged", label: "unchanged", color: "#a7b1bd" },
];

export function render(main) {
  const errors = h("div");
  const runsSlot = h("section", { "aria-labelledby": "runs-chart-h" });
  const feedsSlot = h("section", { "aria-labelledby": "feeds-chart-h" });
  const withUnchanged = h("input", { type: "checkbox", id: "with-unchanged" });
  main.replaceChildren(h("h1", {}, "Charts"), errors, runsSlot, feedsSlot);
  let stats = null;
  const draw = () => {
    runsSlot.replaceChildren(h("h2", { id: "runs-chart-h" }, "Jobs per run"),
      h("label", { class: "check" }, withUnchanged, " include unchanged"),
      ...runsChart(stats.runs, withUnchanged.checked, runsSlot.clientWidth));
    feedsSlot.replaceChildren(h("h2", { id: "feeds-chart-h" }, "Fetch duration per feed"), ...feedCharts(stats.feeds));
  };
  withUnchanged.addEventListener("change", () => stats && draw());
  const show = changeDetector((answer) => {
    stats = answer;
    draw();
  });
  const reload = loader(() => api("/api/stats?limit=50"), show, errors);
  const reloadSoon = debounce(reload, 500);
  const stop = onLive((type) => {
    if (type === "RunFinished" || type === "RunStarted" || type === "Resync" || type === "Poll") reloadSoon();
  });
  reload();
  return () => {
    stop();
    reloadSoon.cancel();
  };
}

function runsChart(runs, withUnchanged, width) {
  if (!runs.length) return [h("p", { class: "muted" }, "No runs yet.")];
  const series = SERIES.filter((s) => withUnchanged || s.key !== "unchanged");
  const points = runs.map((r) => ({
    label: shortDate(r.started_at),
    values: r,
    tip: `${shortDate(r.started_at)} (${r.trigger}, ${r.status}): ${SERIES.map((s) => `${num(r[s.key])} ${s.label}`).join(", ")}`,
  }));
  const label = `Stacked bars of ${series.map((s) => s.label).join(", ")} jobs for each of the last ${runs.length} runs, oldest first`;
  return [
    legend(series),
    h("figure", { class: "chart-box" }, stackedBars(points, series, { label, format: num, width: Math.max(320, width - 24), height: width < 600 ? 220 : 280 })),
    dataTable("Jobs per run (data)", ["Started", "Trigger", "Status", "New", "Updated", "Unchanged", "Failed", "Duration"],
      runs.map((r) => [shortDate(r.started_at), r.trigger, r.status, num(r.new), num(r.updated), num(r.unchanged), num(r.failed), duration(r.duration_s)])),
  ];
}

// One small line chart per feed: its fetch time per import. Where the store recorded no fetch
// times at all, the whole import's time is drawn instead, and the note says so.
function feedCharts(feeds) {
  if (!feeds.length) return [h("p", { class: "muted" }, "No feed imports yet.")];
  const key = feeds.some((f) => f.points.some((p) => p.fetch_s != null)) ? "fetch_s" : "duration_s";
  const what = key === "fetch_s" ? "fetch" : "import";
  const note = key === "fetch_s" ? null
    : h("p", { class: "muted small" }, "No fetch times are recorded yet: these show each feed's whole import time.");
  return [note, h("div", { class: "small-multiples" }, feeds.map((feed) => {
    const values = feed.points.map((p) => p[key]).filter((v) => v != null).sort((a, b) => a - b);
    const median = values.length ? values[Math.floor(values.length / 2)] : null;
    const points = feed.points.map((p) => ({
      label: shortDate(p.started_at), value: p[key],
      tip: `${shortDate(p.started_at)}: ${what} ${duration(p[key])}, ${p.status}`,
    }));
    return h("figure", { class: "chart-box small" },
      h("figcaption", {}, h("strong", {}, feed.name), h("span", { class: "muted" }, ` · median ${duration(median)}`)),
      lineChart(points, { label: `${what} time of ${feed.name} over its last ${points.length} imports`, format: (v) => `${v}s` }));
  }))].filter(Boolean);
}

function legend(series) {
  return h("ul", { class: "legend", "aria-hidden": "true" },
    series.map((s) => h("li", {}, h("span", { class: "swatch", dataset: { color: s.key } }), s.label)));
}

function dataTable(caption, heads, rows) {
  return h("details", { class: "data" }, h("summary", {}, "Show the numbers"),
    tableWrap(h("table", {}, h("caption", {}, caption),
      h("thead", {}, h("tr", {}, heads.map((t) => h("th", { scope: "col" }, t)))),
      h("tbody", {}, rows.map((cells) => h("tr", {}, cells.map((c) => h("td", {}, c))))),
    ), caption));
}
