// #/queue: job counts by state for every queue, kept current by QueueCounts events (or polling).

import { api } from "../api.js";
import { h, num, tableWrap } from "../dom.js";
import { onLive } from "../live.js";
import { changeDetector, loader } from "./common.js";

const STATES = ["waiting", "active", "delayed", "prioritized", "waiting-children", "completed", "failed"];

export function render(main) {
  const errors = h("div");
  const slot = h("div");
  const updated = h("p", { class: "muted small", "aria-live": "off" });
  main.replaceChildren(h("h1", {}, "Queue monitor"), errors, slot, updated,
    h("p", { class: "muted small" }, "Failed jobs are dead letters: inspect, retry or discard them on the ",
      h("a", { href: "#/failed" }, "Failed jobs"), " page."));
  const show = changeDetector((queues) => slot.replaceChildren(tableWrap(countsTable(queues), "Queue counts")));
  const apply = (queues) => {
    show(queues);
    updated.textContent = `Updated ${new Date().toLocaleTimeString()}`;
  };
  const reload = loader(() => api("/api/queue"), (answer) => apply(answer.queues), errors);
  const stop = onLive((type, data) => {
    if (type === "QueueCounts") apply(data.queues);
    else if (type === "Poll") apply(data.queue.queues);
    else if (type === "Resync") reload();
  });
  reload();
  return stop;
}

function countsTable(queues) {
  const names = Object.keys(queues).sort();
  return h("table", { class: "queue" },
    h("caption", {}, "Jobs by state in each queue"),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Queue"),
      STATES.map((s) => h("th", { scope: "col", class: "num" }, s.replace("-", " "))))),
    h("tbody", {}, names.length ? names.map((name) => h("tr", { dataset: { queue: name } },
      h("th", { scope: "row" }, name),
      STATES.map((s) => h("td", { class: `num${s === "failed" && queues[name][s] ? " bad" : ""}`, dataset: { state: s } },
        num(queues[name][s] ?? 0))))) : h("tr", {}, h("td", { colspan: STATES.length + 1, class: "empty" }, "No queues."))));
}
