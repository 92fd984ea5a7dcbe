// #/runs/<id>: one run's summary and its feed imports, live.

import { api } from "../api.js";
import { badge, debounce, duration, h, num, time } from "../dom.js";
import { onLive } from "../live.js";
import { changeDetector, loader } from "./common.js";
import { EntryTable } from "./entries.js";

export function render(main, [runId]) {
  const summary = h("dl", { class: "facts" });
  const errors = h("div");
  const table = new EntryTable("Feeds of this run");
  main.replaceChildren(
    h("p", { class: "crumbs" }, h("a", { href: "#/history" }, "Import history"), " › run"),
    h("h1", {}, "Run ", h("code", {}, runId)),
    errors, summary, table.el,
  );
  const show = changeDetector((run) => {
    summary.replaceChildren(...facts(run));
    table.setCaption(`Feeds of run ${run.run_id}: ${run.feeds.length}`);
    table.setEntries(run.feeds.map((e) => ({ ...e, trigger: run.trigger })), "This run has no feeds.");
  });
  const reload = loader(() => api(`/api/runs/${encodeURIComponent(runId)}`), show, errors);
  const reloadSoon = debounce(reload, 300);
  const stop = onLive((type, data) => {
    if (type === "Poll" || type === "Resync") reloadSoon();
    else if (data?.run_id === runId) {
      const applied = table.apply(type, data); // batch counts show at once; other changes reload totals
      if (!applied || type !== "BatchProcessed") reloadSoon();
    }
  });
  reload();
  return () => {
    stop();
    reloadSoon.cancel();
  };
}

function facts(run) {
  const t = run.totals || {};
  return [
    ["Status", badge(run.status)], ["Trigger", run.trigger],
    ["Started", time(run.started_at)], ["Finished", time(run.finished_at)],
    ["Duration", duration(run.duration_s)], ["Fetched", num(t.total_fetched)],
    ["New", num(t.new)], ["Updated", num(t.updated)], ["Unchanged", num(t.unchanged)], ["Failed", num(t.failed)],
    ["Expired", num(t.expired)],
  ].map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v)));
}
