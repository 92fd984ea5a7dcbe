// #/failed: dead letters (jobs that used up their attempts) with retry one / retry all / discard.

import { api, query } from "../api.js";
import { field, h, num, select, tableWrap, time } from "../dom.js";
import { onLive } from "../live.js";
import { attempt, notify } from "../notice.js";
import { changeDetector, loader, pager } from "./common.js";

export function render(main, _params, search) {
  const state = { queue: search.get("queue") || "", page: 1, page_size: 20 };
  const errors = h("div");
  const slot = h("div");
  const queuePick = select("queue", [["", "All queues"]], state.queue);
  const retryAll = h("button", { type: "button", class: "primary" }, "Retry all");
  main.replaceChildren(
    h("h1", {}, "Failed jobs"),
    h("div", { class: "toolbar" }, field("Queue", queuePick), retryAll),
    errors, slot,
  );

  const show = changeDetector((list) => slot.replaceChildren(
    tableWrap(failedTable(list, act), "Failed jobs"),
    pager(list, (page, size) => {
      Object.assign(state, { page, page_size: size });
      reload();
    }, "failed jobs"),
  ));
  const reload = loader(() => api(`/api/failed${query(state)}`), show, errors);

  async function act(label, path, method) {
    const done = await attempt(() => api(path, { method }));
    if (done !== undefined) notify(label);
    reload();
  }
  retryAll.addEventListener("click", async () => {
    const answer = await attempt(() => api("/api/failed/retry", { method: "POST" }));
    if (answer) notify(`Retried ${answer.retried} job${answer.retried === 1 ? "" : "s"}.`);
    reload();
  });
  queuePick.addEventListener("change", () => {
    Object.assign(state, { queue: queuePick.value, page: 1 });
    reload();
  });
  api("/api/queue").then(({ queues }) => queuePick.append(
    ...Object.keys(queues).sort().map((q) => h("option", { value: q, selected: q === state.queue }, q)),
  )).catch(() => {});

  let failedCount = null; // reload when a queue's failed count moves
  const stop = onLive((type, data) => {
    const queues = type === "QueueCounts" ? data.queues : type === "Poll" ? data.queue.queues : null;
    if (type === "Resync") reload();
    if (!queues) return;
    const count = Object.values(queues).reduce((sum, q) => sum + (q.failed || 0), 0);
    if (failedCount !== null && count !== failedCount) reload();
    failedCount = count;
  });
  reload();
  return stop;
}

function failedTable(list, act) {
  const rows = list.items.map((job) => {
    const path = `/api/failed/${encodeURIComponent(job.id)}`;
    return h("tr", { dataset: { id: job.id } },
      h("td", {}, h("div", {}, job.name), h("div", { class: "muted small" }, `${job.queue} · ${job.job_id}`)),
      h("td", { class: "wrap reason" }, job.reason || "—"),
      h("td", { class: "num" }, num(job.attempts)),
      h("td", {}, time(job.failed_at)),
      h("td", { class: "wrap" }, summary(job.summary || {})),
      h("td", {}, h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => act(`Retried ${job.name} ${job.job_id}.`, `${path}/retry`, "POST") }, "Retry"),
        h("button", {
          type: "button", class: "danger",
          onclick: () => confirm(`Discard failed job ${job.job_id}? It will not be retried.`)
            && act(`Discarded ${job.job_id}.`, path, "DELETE"),
        }, "Discard"))));
  });
  if (!rows.length) rows.push(h("tr", {}, h("td", { colspan: 6, class: "empty" }, "No failed jobs. ")));
  return h("table", { class: "failed" },
    h("caption", {}, `Failed jobs: ${list.total}`),
    h("thead", {}, h("tr", {}, ["Job", "Reason", "Attempts", "Failed at", "Summary", "Actions"]
      .map((t) => h("th", { scope: "col", class: t === "Attempts" ? "num" : null }, t)))),
    h("tbody", {}, rows));
}

// The job's data summary: run and entry as links, everything else as "key: value".
function summary(data) {
  return h("ul", { class: "summary" }, Object.entries(data).filter(([, v]) => v !== null && v !== "").map(([key, value]) => {
    if (key === "run_id") return h("li", {}, "run ", h("a", { href: `#/runs/${encodeURIComponent(value)}` }, value));
    if (key === "entry_id") return h("li", {}, "import ", h("a", { href: `#/imports/${encodeURIComponent(value)}` }, value));
    return h("li", {}, `${key.replace(/_/g, " ")}: ${typeof value === "object" ? JSON.stringify(value) : value}`);
  }));
}
